"""Moodle XML → YAML bank: real Moodle exports convert, and the converted bank validates.

Fixtures in tests/data/moodle are Moodle's own (see tests/data/moodle/README.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from quizapp.bank.formats import ConvertError
from quizapp.bank.formats.moodle_xml import read_moodle_xml
from quizapp.bank.formats.yaml_writer import write_bank
from quizapp.bank.loader import load_bank
from quizapp.bank.validate import validate_bank

DATA = Path(__file__).resolve().parent.parent / "data" / "moodle"
FIXTURES = sorted(DATA.glob("*.xml"))


def convert(path: Path, out: Path):  # type: ignore[no-untyped-def]
    converted = read_moodle_xml(path.read_bytes(), path.name)
    write_bank(converted, out)
    return converted


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.name)
def test_every_real_moodle_export_converts_into_a_bank_that_validates(
    fixture: Path, tmp_path: Path
) -> None:
    converted = convert(fixture, tmp_path)
    assert converted.questions
    bank = load_bank(tmp_path)
    assert bank.problems == []
    assert validate_bank(bank, seeds=5) == []
    assert len(bank.questions) == len(converted.questions)


def test_categories_become_folders_and_tags(tmp_path: Path) -> None:
    convert(DATA / "nested_categories_with_questions.xml", tmp_path)
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.yaml"))
    assert files == [
        "iota/kappa/lambda/questions.yaml",
        "iota/kappa/questions.yaml",
        "iota/mu/questions.yaml",
        "iota/questions.yaml",
    ]
    bank = load_bank(tmp_path)
    assert bank.questions["kappa-essay-question"].question.tags == ("kappa",)
    assert bank.questions["iota-question"].question.type_name == "true_false"


def test_cloze_becomes_multi_part_with_its_images_written_beside_the_yaml(tmp_path: Path) -> None:
    converted = convert(DATA / "multianswer.xml", tmp_path)
    folder = tmp_path / "default-for-test-images-in-backup"
    images = sorted(p.name for p in (folder / "images").iterdir())
    assert images == [
        "cloze-with-images-arizona-2.png",
        "cloze-with-images-california-state-flag.png",
        "cloze-with-images-moodle.png",
    ]
    assert (folder / "images" / images[0]).read_bytes().startswith(b"\x89PNG")
    spec = converted.questions[0].spec
    assert spec["type"] == "multi_part"
    assert [p["id"] for p in spec["parts"]] == ["a", "b", "c", "d", "e"]
    assert spec["parts"][4]["answers"][1] == {
        "text": "Marseille",
        "fraction": 0.5,
        "feedback": "No, that is the second largest city in France (after Paris).",
    }
    assert (
        "![California flag](images/cloze-with-images-california-state-flag.png)" in (spec["stem"])
    )
    # The multiple-choice gaps are reported, with the question's line.
    assert any(n.line == 12 and "multiple-choice gaps" in n.message for n in converted.notes)


def test_the_yaml_reads_as_a_person_would_write_it(tmp_path: Path) -> None:
    convert(DATA / "ordering_testexport.moodle.xml", tmp_path)
    text = (tmp_path / "questions.yaml").read_text()
    # Moodle's idnumber is the id; the name the title.
    assert text.startswith("questions:\n  - id: myid\n    type: ordering\n    title: Moodle\n")
    assert "    items:\n      - Modular\n      - Object\n" in text
    assert "    scoring: adjacent_pairs\n" in text


def test_numerical_keeps_answer_tolerance_and_unit(tmp_path: Path) -> None:
    xml = b"""<?xml version="1.0" encoding="UTF-8"?>
<quiz>
  <question type="numerical">
    <name><text>Mass</text></name>
    <questiontext format="html"><text><![CDATA[<p>How heavy is <b>it</b>?</p>]]></text></questiontext>
    <defaultgrade>2.0000000</defaultgrade>
    <answer fraction="100"><text>42</text><tolerance>0.5</tolerance></answer>
    <answer fraction="0"><text>4.2</text><tolerance>0</tolerance></answer>
    <units>
      <unit><multiplier>1</multiplier><unit_name>kg</unit_name></unit>
      <unit><multiplier>1000</multiplier><unit_name>g</unit_name></unit>
    </units>
  </question>
</quiz>"""
    converted = read_moodle_xml(xml, "units.xml")
    spec = converted.questions[0].spec
    assert spec == {
        "id": "mass",
        "type": "numeric",
        "title": "Mass",
        "marks": 2,
        "stem": "How heavy is **it**?",
        "answer": 42,
        "tolerance": 0.5,
        "wrong_answers": [4.2],
        "units": "kg",
    }
    assert [n.render("units.xml") for n in converted.notes] == [
        "units.xml:3: Mass: converted with a change: the unit 'g' (other multipliers) "
        "is not accepted"
    ]


CALCULATED = b"""<?xml version="1.0" encoding="UTF-8"?>
<quiz>
<!-- question: 7  -->
  <question type="calculatedsimple">
    <name><text>Ohm</text></name>
    <questiontext format="html"><text><![CDATA[<p>U = {u} V, R = {r} ohm. What is I?</p>]]></text></questiontext>
    <defaultgrade>1.0000000</defaultgrade>
    <answer fraction="100">
      <text>{u}/{r}</text>
      <tolerance>0.01</tolerance>
      <tolerancetype>1</tolerancetype>
      <correctanswerformat>1</correctanswerformat>
      <correctanswerlength>2</correctanswerlength>
    </answer>
    <dataset_definitions>
      <dataset_definition>
        <status><text>private</text></status>
        <name><text>u</text></name>
        <type>calculatedsimple</type>
        <distribution><text>uniform</text></distribution>
        <minimum><text>1</text></minimum>
        <maximum><text>10</text></maximum>
        <decimals><text>0</text></decimals>
        <itemcount>2</itemcount>
        <dataset_items>
          <dataset_item><number>1</number><value>4</value></dataset_item>
          <dataset_item><number>2</number><value>9</value></dataset_item>
        </dataset_items>
        <number_of_items>2</number_of_items>
      </dataset_definition>
      <dataset_definition>
        <status><text>private</text></status>
        <name><text>r</text></name>
        <type>calculatedsimple</type>
        <distribution><text>uniform</text></distribution>
        <minimum><text>1</text></minimum>
        <maximum><text>5</text></maximum>
        <decimals><text>1</text></decimals>
        <itemcount>0</itemcount>
      </dataset_definition>
    </dataset_definitions>
  </question>
  <question type="calculated">
    <name><text>Eval</text></name>
    <questiontext format="html"><text>Sum {x}</text></questiontext>
    <answer fraction="100"><text>exec({x})</text><tolerance>0.01</tolerance></answer>
    <dataset_definitions><dataset_definition><name><text>x</text></name>
      <minimum><text>1</text></minimum><maximum><text>2</text></maximum>
      <decimals><text>0</text></decimals></dataset_definition></dataset_definitions>
  </question>
</quiz>"""


def test_calculated_datasets_become_parameters_and_unsafe_formulas_are_refused(
    tmp_path: Path,
) -> None:
    converted = read_moodle_xml(CALCULATED, "calc.xml")
    spec = converted.questions[0].spec
    assert spec["stem"] == "U = {{u}} V, R = {{r}} ohm. What is I?"
    assert spec["parameters"] == {
        "u": {"values": [4, 9]},
        "r": {"range": [1, 5], "step": 0.1},
    }
    assert spec["answer"] == "u/r"
    assert spec["relative_tolerance"] == 0.01
    (skipped,) = converted.skipped
    assert skipped.line == 43 and skipped.question == "Eval"
    assert "exec" in skipped.message
    write_bank(converted, tmp_path)
    bank = load_bank(tmp_path)
    assert validate_bank(bank, seeds=20) == []


def test_unmappable_questions_are_reported_with_their_source_line() -> None:
    xml = b"""<?xml version="1.0"?>
<quiz>
  <question type="description">
    <name><text>Intro</text></name>
    <questiontext><text>Read this.</text></questiontext>
  </question>
  <question type="ddwtos">
    <name><text>Drag</text></name>
  </question>
  <question type="multichoice">
    <name><text>No right answer</text></name>
    <questiontext><text>Pick</text></questiontext>
    <single>true</single>
    <answer fraction="0"><text>a</text></answer>
    <answer fraction="0"><text>b</text></answer>
  </question>
</quiz>"""
    converted = read_moodle_xml(xml, "odd.xml")
    assert converted.questions == []
    assert [(n.line, n.question, n.skipped) for n in converted.notes] == [
        (3, "Intro", True),
        (7, "Drag", True),
        (10, "No right answer", True),
    ]
    assert "description" in converted.notes[0].message


@pytest.mark.parametrize(
    "payload",
    [
        b'<?xml version="1.0"?><!DOCTYPE quiz [<!ENTITY a "aaaa">]><quiz>&a;</quiz>',
        b'<?xml version="1.0"?><!DOCTYPE quiz SYSTEM "file:///etc/passwd"><quiz/>',
        b"<quiz><question>",
        b"<html/>",
    ],
)
def test_entities_dtds_and_broken_files_are_refused(payload: bytes) -> None:
    with pytest.raises(ConvertError):
        read_moodle_xml(payload)


def test_the_nesting_depth_is_bounded() -> None:
    with pytest.raises(ConvertError, match="nested"):
        read_moodle_xml(b"<quiz>" + b"<a>" * 100 + b"</a>" * 100 + b"</quiz>")


def test_cli_convert_writes_the_bank_and_reports(tmp_path: Path) -> None:
    from quizapp.cli import bank_convert

    result = CliRunner().invoke(
        bank_convert,
        ["--from", "moodle-xml", str(DATA / "multichoice_testquestion.moodle.xml"), str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    assert "1 question(s) written" in result.output
    assert (tmp_path / "default-for-c1" / "questions.yaml").is_file()
    again = CliRunner().invoke(
        bank_convert,
        ["--from", "moodle-xml", str(DATA / "multichoice_testquestion.moodle.xml"), str(tmp_path)],
    )
    assert again.exit_code == 1 and "exists" in again.output
