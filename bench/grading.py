"""Grading throughput: N attempts × 20 questions graded by the domain core, in-process.

    .venv/bin/python bench/grading.py [--attempts 10000] [--questions 20]

The issue's target: "grading 10,000 attempts × 20 questions under 10 s" on the 2-core
machine. What is timed is what finalising an attempt does per slot (quizapp.services.
attempts.finalise_attempt and services.grading): the question type's
`grade(variant, response)` and `slot_mark`,
for every auto-graded question of the sample bank (question_bank/), each attempt with
its own seed-drawn variants and a mix of right and wrong stored responses. Building the
layouts and responses is set up beforehand and not timed; the database writes of a
submit are measured by the submit wave in bench/run.py.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from quizapp.bank.loader import load_bank  # noqa: E402
from quizapp.domain.layout import Candidate, SlotPlan, build_layout  # noqa: E402
from quizapp.domain.scoring import slot_mark, total  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--attempts", type=int, default=10_000)
    parser.add_argument("--questions", type=int, default=20)
    args = parser.parse_args()

    bank = load_bank(ROOT / "question_bank")
    assert bank.ok, bank.problems
    graded = sorted(
        key
        for key, loaded in bank.questions.items()
        if getattr(type(loaded.question.body), "auto_graded", True)
        and loaded.question.body.model_response(loaded.question.body.make_variant(random.Random(0)))
        is not None
    )
    current = {key: Candidate(i + 1, bank.questions[key].question) for i, key in enumerate(graded)}
    # 20 slots, each drawing from a rotating pool of the bank's auto-graded questions, so
    # every question type takes part.
    plans = [
        SlotPlan(n + 1, Fraction(1), tuple(graded[(n + k) % len(graded)] for k in range(3)))
        for n in range(args.questions)
    ]
    started = time.perf_counter()
    work = []
    pick = random.Random(7)
    for seed in range(args.attempts):
        layout = build_layout(plans, current, seed)
        responses = []
        for entry in layout:
            body = current[entry.question_key].question.body
            wrong = body.wrong_responses(entry.variant)
            right = body.model_response(entry.variant)
            responses.append(pick.choice(wrong) if wrong and pick.random() < 0.4 else right)
        work.append((layout, responses))
    prepared = time.perf_counter() - started

    cpu, wall = time.process_time(), time.perf_counter()
    full = 0
    for layout, responses in work:
        marks = []
        for entry, response in zip(layout, responses, strict=True):
            grade = current[entry.question_key].question.body.grade(entry.variant, response)
            marks.append(slot_mark(entry.marks, grade))
        full += total(marks) == len(marks)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall

    slots = args.attempts * args.questions
    print(
        f"{len(graded)} auto-graded questions in the sample bank; layouts and responses "
        f"prepared in {prepared:.1f} s (not timed)"
    )
    print(
        f"graded {args.attempts:,} attempts × {args.questions} questions = {slots:,} "
        f"responses in {wall:.2f} s wall, {cpu:.2f} s CPU, one core "
        f"({slots / wall:,.0f} responses/s; {full:,} attempts with full marks)"
    )
    print(f"target: under 10 s -> {'met' if wall < 10 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
