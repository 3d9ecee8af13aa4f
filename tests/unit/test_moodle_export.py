"""quizapp bank export --to moodle-xml: the XML Moodle reads, formulas, the report, the CLI.

The round trip through our own importer is tests/unit/test_moodle_export_round_trip.py;
here, the file is checked for what Moodle itself needs.
"""

from __future__ import annotations

import base64
import random
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from flask import Flask

from quizapp.bank.formats.moodle_export import export_bank, moodle_formula, percent_text
from quizapp.bank.formats.moodle_xml import _formula, read_moodle_xml
from quizapp.bank.formats.yaml_writer import write_bank
from quizapp.bank.loader import load_bank
from quizapp.bank.validate import validate_bank
from quizapp.domain.expressions import parse_expression

ROOT = Path(__file__).resolve().parents[2]
BANK = ROOT / "tests" / "data" / "moodle_export_bank"
MOODLE = ROOT / "tests" / "data" / "moodle"


@pytest.fixture(scope="module")
def xml() -> ET.Element:
    return ET.fromstring(export_bank(load_bank(BANK)).xml)


def question(root: ET.Element, idnumber: str) -> ET.Element:
    (found,) = [q for q in root.iter("question") if q.findtext("idnumber") == idnumber]
    return found


def test_folders_become_categories_before_their_questions(xml: ET.Element) -> None:
    order = [q.findtext("category/text") or q.findtext("idnumber") for q in xml.iter("question")]
    assert order[0] == "$course$/top"
    maths = order.index("$course$/top/maths")
    words = order.index("$course$/top/words")
    assert maths < order.index("rt-numeric") < words < order.index("rt-essay")
    assert question(xml, "rt-single-choice").findtext("name/text") == (
        "Initialisation for ReLU networks"
    )
    tags = [t.text for t in question(xml, "rt-single-choice").iter("text") if t.text == "rt-init"]
    assert tags == ["rt-init"]


def test_choices_carry_moodle_fractions_and_feedback(xml: ET.Element) -> None:
    single = question(xml, "rt-single-choice")
    assert single.findtext("single") == "true"
    answers = single.findall("answer")
    assert [a.get("fraction") for a in answers] == ["100", "33.33333", "0"]
    assert answers[1].findtext("feedback/text") == (
        "<p>Close, but ReLU zeroes half of the variance.</p>"
    )
    multiple = question(xml, "rt-multiple-response")
    assert multiple.findtext("single") == "false"
    # Right minus wrong is Moodle's own sum: +1/3 per correct option, -1/3 per wrong one.
    fractions = [a.get("fraction") for a in multiple.findall("answer")]
    assert fractions == ["33.33333", "33.33333", "33.33333", "-33.33333", "-33.33333"]
    assert multiple.findtext("shuffleanswers") == "false"


def test_markdown_becomes_html_with_mathjax_delimiters(xml: ET.Element) -> None:
    stem = question(xml, "rt-single-choice").findtext("questiontext/text") or ""
    inline = '<span class="math inline">\\(n\\)</span>'
    assert f"A layer with fan-in {inline} is followed by a <strong>ReLU</strong>." in stem
    assert '<pre><code class="language-python">torch.nn.init.kaiming_normal_(w)' in stem
    option = question(xml, "rt-single-choice").find("answer")
    assert option is not None and option.findtext("text") == (
        '<span class="math inline">\\(\\mathcal{N}(0,\\, 2/n)\\)</span> (He)'
    )


def test_images_travel_as_base64_files_named_by_pluginfile(xml: ET.Element) -> None:
    text = question(xml, "rt-numeric").find("questiontext")
    assert text is not None
    assert '<img src="@@PLUGINFILE@@/conv.png"' in (text.findtext("text") or "")
    (file,) = text.findall("file")
    assert file.attrib == {"name": "conv.png", "path": "/", "encoding": "base64"}
    png = (BANK / "maths" / "images" / "conv.png").read_bytes()
    assert base64.b64decode(file.text or "") == png


def test_numerical_answers_keep_tolerance_feedback_credit_and_unit(xml: ET.Element) -> None:
    numeric = question(xml, "rt-numeric")
    rows = [
        (a.get("fraction"), a.findtext("text"), a.findtext("tolerance"))
        for a in numeric.findall("answer")
    ]
    assert rows == [
        ("100", "7", "0.5"),
        ("0", "27", "0"),
        ("0", "9", "0.5"),
        ("50", "5", "0"),
    ]
    assert numeric.findtext("units/unit/unit_name") == "pixels"
    assert numeric.findtext("units/unit/multiplier") == "1"


def test_calculated_parameters_become_synchronised_dataset_items(xml: ET.Element) -> None:
    calculated = question(xml, "rt-calculated")
    assert calculated.findtext("answer/text") == "{w} - {lr} * {g}"
    assert calculated.findtext("answer/tolerancetype") == "2"  # nominal (absolute)
    assert "\\(\\eta = {lr}\\)</span>" in (calculated.findtext("questiontext/text") or "")
    definitions = calculated.findall("dataset_definitions/dataset_definition")
    assert [d.findtext("name/text") for d in definitions] == ["lr", "w", "g"]
    rows = list(
        zip(
            *[[i.findtext("value") for i in d.iter("dataset_item")] for d in definitions],
            strict=True,
        )
    )
    # Moodle draws item k of every dataset together: every combination is one item.
    assert len(rows) == len(set(rows)) == 3 * 5 * 4
    assert definitions[1].findtext("minimum/text") == "-2"
    assert definitions[1].findtext("maximum/text") == "2"


@pytest.mark.parametrize(
    "formula",
    [
        "w - lr*g",
        "x^2 + 2^-1",
        "sigma(x) * (1 - sigmoid(x))",
        "relu(x - 1) + ln(x + 5) + log(x + 5, 2)",
        "mod(x, 3) + mod(-x, 2.5)",
        "round(x / 3) + round(x, 1) + floor(x / 2) + ceil(x) + abs(-x)",
        "pi * e + sqrt(x^2) + min(x, 2) + max(x) + exp(-x)",
    ],
)
def test_formulas_mean_the_same_in_moodle(formula: str) -> None:
    names = ["x", "w", "lr", "g"]
    moodle = moodle_formula(formula, names)
    assert "^" not in moodle and "**" not in moodle
    back = parse_expression(_formula(moodle, names), variables=names)
    ours = parse_expression(formula, variables=names)
    rng = random.Random(1)
    for _ in range(20):
        env = {name: round(rng.uniform(-4, 4), 2) for name in names}
        assert back.evaluate(env) == pytest.approx(ours.evaluate(env), rel=1e-12)


def test_percentages_are_written_as_moodle_does() -> None:
    from fractions import Fraction

    assert [percent_text(Fraction(n, d)) for n, d in [(1, 1), (1, 2), (1, 3), (-1, 6), (1, 8)]] == [
        "100",
        "50",
        "33.33333",
        "-16.66667",
        "12.5",
    ]


def test_the_real_moodle_shortanswer_fixture_converts_and_validates(tmp_path: Path) -> None:
    fixture = MOODLE / "shortanswer_testquestion.moodle.xml"
    converted = read_moodle_xml(fixture.read_bytes(), fixture.name)
    (only,) = converted.questions
    assert only.folder == ("test-questions",)
    assert only.spec["type"] == "short_text"
    assert only.spec["answers"] == [
        {"text": "frog", "feedback": "Frog is a very good answer."},
        {"text": "toad", "fraction": 0.8, "feedback": "Toad is an OK good answer."},
    ]
    # Moodle's catch-all "*" (0 %, with feedback) has no equivalent: reported at line 12.
    assert converted.report_lines() == [
        "shortanswer_testquestion.moodle.xml:12: shortanswer-001: converted with a change: "
        "answer 3: the catch-all '*' (0 %) is implied"
    ]
    write_bank(converted, tmp_path)
    bank = load_bank(tmp_path)
    assert bank.problems == []
    assert validate_bank(bank, seeds=5) == []
    body = bank.questions["shortanswer-001"].question.body
    assert body.grade({}, "Toad").fraction == pytest.approx(0.8)


def test_cli_export_writes_the_file_prints_the_report_and_strict_fails(
    app: Flask, tmp_path: Path
) -> None:
    runner = app.test_cli_runner()
    out = tmp_path / "bank.xml"
    result = runner.invoke(args=["bank", "export", "--to", "moodle-xml", str(BANK), str(out)])
    assert result.exit_code == 0, result.output
    assert "not_in_moodle.yaml:8: rt-vector: not exported: Moodle has no vector" in result.output
    assert "question(s) written to" in result.output
    assert ET.fromstring(out.read_bytes()).tag == "quiz"
    strict = runner.invoke(
        args=["bank", "export", "--to", "moodle-xml", "--strict", str(BANK), str(out)]
    )
    assert strict.exit_code == 1
    clean = runner.invoke(
        args=["bank", "export", "--to", "moodle-xml", "--strict", str(BANK / "words"), "-"]
    )
    assert clean.exit_code == 0, clean.output
    assert "<idnumber>rt-essay</idnumber>" in clean.stdout


def test_cli_refuses_a_bank_with_problems(app: Flask, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("questions:\n  - id: x\n    type: nonsense\n")
    result = app.test_cli_runner().invoke(
        args=["bank", "export", "--to", "moodle-xml", str(tmp_path), str(tmp_path / "o.xml")]
    )
    assert result.exit_code == 1
    assert "nothing was exported" in result.output
    assert not (tmp_path / "o.xml").exists()
