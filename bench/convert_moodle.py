"""Bench for issue 15's "Done when": convert a 1,000-question Moodle XML file (under 10 s)
and validate the converted bank with 50 seeds (under 60 s); then export the converted bank
to Moodle XML again (item 3).

The file is built by repeating the questions of the real Moodle fixtures in
tests/data/moodle (with their base64 images) under new names, in 10 categories.

    .venv/bin/python bench/convert_moodle.py [--questions 1000] [--seeds 50]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

from quizapp.bank.formats.moodle_export import export_bank
from quizapp.bank.formats.moodle_xml import read_moodle_xml
from quizapp.bank.formats.yaml_writer import write_bank
from quizapp.bank.loader import load_bank
from quizapp.bank.validate import validate_bank

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "moodle"
_QUESTION = re.compile(r'<question type="(?!category)[^"]+">.*?</question>', re.DOTALL)
_NAME = re.compile(r"<name>\s*<text>(.*?)</text>", re.DOTALL)


def big_file(count: int) -> bytes:
    questions = [q for f in sorted(DATA.glob("*.xml")) for q in _QUESTION.findall(f.read_text())]
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<quiz>\n']
    for i in range(count):
        if i % 100 == 0:
            parts.append(
                f'<question type="category"><category><text>$course$/Bench/Part {i // 100}'
                "</text></category></question>\n"
            )
        template = questions[i % len(questions)]
        parts.append(_NAME.sub(f"<name><text>Bench question {i}</text>", template, count=1))
        parts.append("\n")
    parts.append("</quiz>\n")
    return "".join(parts).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=50)
    args = parser.parse_args()
    data = big_file(args.questions)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        converted = read_moodle_xml(data, "bench.xml")
        write_bank(converted, Path(out))
        convert_s = time.perf_counter() - start
        start = time.perf_counter()
        bank = load_bank(out)
        problems = validate_bank(bank, seeds=args.seeds)
        validate_s = time.perf_counter() - start
        start = time.perf_counter()
        exported = export_bank(bank)
        export_s = time.perf_counter() - start
    print(
        f"convert: {args.questions} questions, {len(data) / 1e6:.1f} MB of Moodle XML -> "
        f"{len(converted.questions)} converted, {len(converted.skipped)} not, "
        f"{len(converted.images)} images, in {convert_s:.2f} s (limit 10 s)"
    )
    print(
        f"validate: {len(bank.questions)} questions x {args.seeds} seeds, "
        f"{len(problems)} problems, in {validate_s:.2f} s (limit 60 s)"
    )
    print(
        f"export: {len(bank.questions)} questions -> {len(exported.xml) / 1e6:.1f} MB of "
        f"Moodle XML, {len(exported.questions)} exported, {len(exported.skipped)} not, "
        f"{len(exported.notes) - len(exported.skipped)} changes reported, in {export_s:.2f} s"
    )


if __name__ == "__main__":
    main()
