"""YAML → Moodle XML → YAML keeps every question Moodle can express (issue 15, item 3).

A question comes back the same when its type, title, marks, stem, general feedback and
images are the same, the student sees the same thing (the same options, items, labels,
in the same variant), the described correct answer is the same, and every answer tried
(the model answer, the listed wrong ones, each option, numbers at and past the
tolerance, ...) earns the same fraction with the same feedback. What Moodle cannot
express is in the export's report instead, with the question's file and line.
"""

from __future__ import annotations

import itertools
import random
import re
from fractions import Fraction
from pathlib import Path

import pytest

from quizapp.bank.formats.moodle_export import Exported, export_bank, parameter_values
from quizapp.bank.formats.moodle_xml import read_moodle_xml
from quizapp.bank.formats.yaml_writer import write_bank
from quizapp.bank.loader import Bank, LoadedQuestion, load_bank
from quizapp.bank.validate import validate_bank
from quizapp.domain.qtypes.base import Response, Variant
from quizapp.domain.qtypes.calculated import Calculated
from quizapp.domain.qtypes.numeric import Numeric, format_exact
from quizapp.domain.render import render_markdown

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "question_bank"
PURPOSE_MADE = ROOT / "tests" / "data" / "moodle_export_bank"
MOODLE = ROOT / "tests" / "data" / "moodle"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_FROZEN = re.compile(r"\]\([^)#]*#sha256=([0-9a-f]{64})\)")


def round_trip(bank_dir: Path, out: Path) -> tuple[Bank, Exported, Bank]:
    original = load_bank(bank_dir)
    assert original.problems == []
    exported = export_bank(original)
    converted = read_moodle_xml(exported.xml, "export.xml")
    assert converted.skipped == [], converted.report_lines()
    # A question exported without a change also imports without one (a Moodle setting
    # the importer has to approximate, such as no penalty for a wrong choice, would show).
    changed = {n.question for n in exported.notes}
    titles = {q.question.title for k, q in original.questions.items() if k not in changed}
    assert [n for n in converted.notes if n.question in titles] == []
    write_bank(converted, out)
    again = load_bank(out)
    assert again.problems == []
    return original, exported, again


_PRE = re.compile(r"(<pre\b.*?</pre>)", re.DOTALL)


def text(markdown: str) -> str:
    """The HTML a text renders to, with each image named by its content's SHA-256, and
    white space outside code blocks collapsed (a browser shows it as one space)."""
    rendered = render_markdown(_FROZEN.sub(r"](\1)", markdown))
    pieces = _PRE.split(rendered)
    return "".join(p if p.startswith("<pre") else re.sub(r"\s+", " ", p) for p in pieces)


def stem(loaded: LoadedQuestion, variant: Variant) -> str:
    """The stem of one variant as stored (images frozen: their address names the file's
    SHA-256, so two copies of an image compare equal)."""
    params = loaded.question.body.text_params(variant)
    return _PLACEHOLDER.sub(lambda m: params.get(m[1], m[0]), loaded.spec["stem"])


def candidates(loaded: LoadedQuestion, variant: Variant) -> list[Response]:
    """Answers to grade with both versions: the model answer, the listed wrong ones,
    and answers around them."""
    body = loaded.question.body
    found: list[Response] = [body.model_response(variant), *body.wrong_responses(variant)]
    listed = getattr(body, "listed_answers", None)
    if listed is not None:
        found += [entry.response for entry in listed(variant)]
    kind = loaded.question.type_name
    options = getattr(body, "options", ())
    if kind in ("single_choice", "true_false"):
        found += [o.key for o in options]
    elif kind == "multiple_response":
        keys = [o.key for o in options]
        found += [list(c) for n in (1, 2, len(keys)) for c in itertools.combinations(keys, n)]
    elif kind in ("numeric", "calculated"):
        numeric = body if isinstance(body, Numeric) else None
        for value in list(found):
            if isinstance(value, str):
                number = Fraction(value)
                tolerance = numeric.tolerance_for(number) if numeric else Fraction(1, 100)
                for step in (tolerance, tolerance * 2 + Fraction(1, 1000), Fraction(1, 3)):
                    found += [format_exact(number + step, None), format_exact(number - step, None)]
        found.append("not a number")
    elif kind == "short_text":
        found += [a.source for a in body.answers if a.text is not None]  # type: ignore[attr-defined]
        found += [str(found[0]).upper(), "adam optimiser", "something else"]
    elif kind in ("ordering", "matching"):
        model = list(body.model_response(variant))
        rng = random.Random(7)
        for _ in range(6):
            shuffled = model[:]
            rng.shuffle(shuffled)
            found.append(shuffled)
    elif kind == "multi_part":
        model = body.model_response(variant)
        for wrong in body.wrong_responses(variant):
            found.append(wrong)
        found += [{k: v for k, v in model.items() if k != key} for key in model]
        found.append({key: "4" for key in model})
    return found


def assert_same(a: LoadedQuestion, b: LoadedQuestion) -> None:
    qa, qb = a.question, b.question
    assert (qb.type_name, qb.title, qb.marks) == (qa.type_name, qa.title, qa.marks)
    assert set(qa.tags) <= set(qb.tags)
    assert text(b.spec.get("feedback", "")) == text(a.spec.get("feedback", ""))
    if isinstance(qa.body, Calculated):
        assert isinstance(qb.body, Calculated)
        values_a = {p.name: parameter_values(p) for p in qa.body.parameters}
        values_b = {p.name: sorted(parameter_values(p)) for p in qb.body.parameters}
        assert values_b == {k: sorted(v) for k, v in values_a.items()}
    if qa.type_name == "essay":
        for field in ("min_words", "max_words", "marking_guide"):
            assert a.spec.get(field) == b.spec.get(field)
    for seed in range(4):
        variant = qa.body.make_variant(random.Random(seed))
        assert text(stem(b, variant)) == text(stem(a, variant))
        assert qb.body.view(variant) == qa.body.view(variant)
        assert qb.body.describe_answer(variant) == qa.body.describe_answer(variant)
        if not qa.body.auto_graded:
            continue
        for response in candidates(a, variant):
            ga, gb = qa.body.grade(variant, response), qb.body.grade(variant, response)
            assert (gb.fraction, gb.status, text(gb.feedback)) == (
                ga.fraction,
                ga.status,
                text(ga.feedback),
            ), (qa.key, seed, response)


def test_the_sample_bank_comes_back_the_same(tmp_path: Path) -> None:
    original, exported, again = round_trip(SAMPLE, tmp_path)
    reported = {n.question for n in exported.notes}
    assert set(exported.questions) | reported == set(original.questions)
    kept = [k for k in exported.questions if k not in reported]
    assert len(kept) >= 20
    for key in kept:
        assert_same(original.questions[key], again.questions[key])
    # What Moodle cannot say is in the report, with where the question is.
    lines = exported.report_lines()
    assert (
        "questions/gradients.yaml:3: act-silu-derivative: not exported: "
        "Moodle has no algebraic-expression answer" in "\n".join(lines)
    )
    assert any("cnn-output-shape-vector: not exported: Moodle has no vector" in x for x in lines)
    assert validate_bank(again, seeds=5) == []


def test_every_exportable_type_comes_back_the_same(tmp_path: Path) -> None:
    original, exported, again = round_trip(PURPOSE_MADE, tmp_path)
    exportable = sorted(k for k, q in original.questions.items() if q.file != "not_in_moodle.yaml")
    assert {n.question for n in exported.notes if n.file != "not_in_moodle.yaml"} == set()
    assert sorted(k for k in exported.questions if k in exportable) == exportable
    types = {original.questions[k].question.type_name for k in exportable}
    assert types == {
        "single_choice",
        "multiple_response",
        "true_false",
        "numeric",
        "calculated",
        "multi_part",
        "short_text",
        "matching",
        "ordering",
        "essay",
    }
    for key in exportable:
        assert_same(original.questions[key], again.questions[key])
    # Folders became categories, and came back as folders.
    assert again.questions["rt-numeric"].file == "maths/questions.yaml"
    assert again.questions["rt-essay"].file == "words/questions.yaml"
    assert validate_bank(again, seeds=10) == []


def test_what_moodle_cannot_express_is_reported_per_question() -> None:
    exported = export_bank(load_bank(PURPOSE_MADE))
    notes = {n.question: n for n in exported.notes}
    assert {k for k, n in notes.items() if n.skipped} == {
        "rt-algebraic",
        "rt-vector",
        "rt-partial-order",
        "rt-pattern-only",
    }
    assert notes["rt-partial-order"].line == 13
    assert "partial order" in notes["rt-partial-order"].message
    assert "all_or_nothing" in notes["rt-all-or-nothing"].message
    assert "significant_figures" in notes["rt-significant-figures"].message
    assert "the same answers are right" in notes["rt-numeric-relative"].message
    assert not notes["rt-all-or-nothing"].skipped
    assert "rt-algebraic" not in exported.questions
    assert "rt-all-or-nothing" in exported.questions
    assert notes["rt-vector"].render() == (
        "not_in_moodle.yaml:8: rt-vector: not exported: Moodle has no vector or matrix answer"
    )


@pytest.mark.parametrize("fixture", sorted(MOODLE.glob("*.xml")), ids=lambda p: p.name)
def test_real_moodle_exports_re_import_identically(fixture: Path, tmp_path: Path) -> None:
    """Moodle's file → YAML → our Moodle XML → YAML: the same bank both times."""
    first = read_moodle_xml(fixture.read_bytes(), fixture.name)
    write_bank(first, tmp_path / "first")
    bank = load_bank(tmp_path / "first")
    assert bank.problems == []
    _, exported, again = round_trip(tmp_path / "first", tmp_path / "second")
    assert exported.skipped == []
    assert sorted(again.questions) == sorted(bank.questions)
    for key, loaded in bank.questions.items():
        assert_same(loaded, again.questions[key])
        assert again.questions[key].file == loaded.file
