"""Hostile or broken YAML in a bank is a located problem (file:line), never a traceback,
and never work out of proportion to the file: an alias bomb does not expand, tags do not
build Python objects, deep nesting does not exhaust the stack."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from quizapp.bank.loader import MAX_YAML_DEPTH, load_bank

ROOT = Path(__file__).resolve().parents[2]

# Nine levels of nine aliases: 9^9 (387 million) strings once expanded. Before the
# composer refused aliases, `bank validate` on this took 3 GB and 40 s.
BILLION_LAUGHS = "\n".join(
    ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 9)}]" for i in range(1, 9)]
    + ["questions: *lol8", ""]
)

QUESTION = """\
questions:
  - id: q1
    type: short_text
    stem: What is the capital of France?
    marks: 1
    answers:
      - text: {answer}
"""

CASES = {
    # name: (file text, line, words the message must contain)
    "alias bomb": (BILLION_LAUGHS, 1, "anchors and aliases"),
    "one alias": (
        "questions:\n  - &q {id: q1}\n  - *q\n",
        2,
        "anchors and aliases",
    ),
    "merge key": (
        "base: &base {type: short_text}\nquestions:\n  - <<: *base\n    id: q1\n",
        1,
        "anchors and aliases",
    ),
    "python object": (
        QUESTION.format(answer="!!python/object:os.system {x: 1}"),
        7,
        "!!python/object:os.system",
    ),
    "python apply": (
        QUESTION.format(answer='!!python/object/apply:os.system ["echo hi"]'),
        7,
        "!!python/object/apply:os.system",
    ),
    "python tag on a whole question": (
        "questions:\n  - !!python/object:os.system\n    id: q1\n",
        2,
        "not allowed in a bank",
    ),
    "custom tag": (QUESTION.format(answer="!secret Paris"), 7, "!secret"),
    "int tag on text": (QUESTION.format(answer="!!int Paris"), 7, "!!int"),
    "str tag": (QUESTION.format(answer="!!str 007"), 7, 'put text in quotes instead, e.g. "007"'),
    "omap": (QUESTION.format(answer="!!omap [a: 1]"), 7, "!!omap"),
    "impossible date": ("quiz:\n  id: q\n  opens: 2027-13-45\n", 3, "month must be in 1..12"),
    "integer of 5,000 digits": (QUESTION.format(answer="9" * 5000), 7, "cannot read this value"),
    "deep nesting": (
        "questions: " + "[" * 100_000 + "]" * 100_000 + "\n",
        1,
        f"nested more than {MAX_YAML_DEPTH} levels",
    ),
    "lone surrogate escape": (QUESTION.format(answer='"Par\\ud800is"'), 7, "position 4: U+D800"),
    "NUL escape": (QUESTION.format(answer='"Paris\\0"'), 7, "position 6: U+0000"),
    "non-character in a key": ('questions:\n  - id: q1\n    "\\uFDD0": x\n', 3, "U+FDD0"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_yaml_is_a_located_problem(tmp_path, name):
    text, line, words = CASES[name]
    (tmp_path / "bank.yaml").write_text(text)
    started = time.perf_counter()
    bank = load_bank(tmp_path)
    assert time.perf_counter() - started < 5
    assert [(p.file, p.line, p.field) for p in bank.problems] == [("bank.yaml", line, "(yaml)")]
    assert words in bank.problems[0].message
    assert bank.questions == {}


def test_plain_tags_an_author_may_use_still_work(tmp_path):
    (tmp_path / "bank.yaml").write_text(
        textwrap.dedent(
            """\
            questions: !!seq
              - !!map
                id: q1
                type: short_text
                stem: ! 007 is a number here?
                marks: 1
                answers:
                  - text: ! yes
            """
        )
    )
    bank = load_bank(tmp_path)
    assert bank.problems == []
    assert bank.questions["q1"].question.stem == "007 is a number here?"


def _validate(path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`quizapp bank validate PATH` in a real process with 1 GB of address space and a
    minute: what the bomb used to exceed."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    env = dict(
        os.environ,
        QUIZAPP_INSTANCE_PATH=str(tmp_path / "instance"),
        QUIZAPP_DATABASE_URL=f"sqlite:///{tmp_path / 'unused.db'}",
    )
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from quizapp.cli import main; main()",
            "bank",
            "validate",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
        preexec_fn=limit,
    )


@pytest.mark.parametrize(
    "name",
    ["alias bomb", "python apply", "int tag on text", "deep nesting", "lone surrogate escape"],
)
def test_bank_validate_reports_file_and_line_without_a_traceback(tmp_path, name):
    text, line, words = CASES[name]
    bank = tmp_path / "bank"
    bank.mkdir()
    (bank / "hostile.yaml").write_text(text)
    started = time.perf_counter()
    result = _validate(bank, tmp_path)
    assert time.perf_counter() - started < 30
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert f"hostile.yaml:{line}: (yaml): " in result.stderr
    assert words in result.stderr
    assert "1 problem(s)" in result.stderr
