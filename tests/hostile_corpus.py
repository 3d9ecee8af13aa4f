"""Hostile values a student can send, in one place: the grading fuzz test
(tests/fuzz/test_grading_fuzz.py), the bounds regressions (tests/unit/qtypes/test_bounds.py)
and the worst-case benchmark (bench/grading_worst.py) all read them from here.

Each entry is something that once cost (or could cost) unbounded work somewhere in a
question type: huge exponents for exact arithmetic, long digit strings, nesting for
parsers, inputs that make backtracking regular expressions explode, matrices and lists
as large as the API allows, and spellings of NaN and infinity.

The sizes are the API's (quizapp/web/api.py: MAX_VALUES values of at most
MAX_VALUE_CHARS characters each); a few values go beyond it on purpose, to stand for rows
stored before a bound existed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from quizapp.web.api import MAX_VALUE_CHARS, MAX_VALUES

__all__ = [
    "HOSTILE",
    "HOSTILE_LISTS",
    "MAX_VALUE_CHARS",
    "MAX_VALUES",
    "stored_shapes",
    "submissions",
]


def _nested(depth: int, inner: str = "1") -> str:
    return "(" * depth + inner + ")" * depth


def _matrix_rows(cells: int) -> str:
    """`[[1,2],[1,2],...]` with `cells` entries."""
    return "[" + ",".join("[1,2]" for _ in range(cells // 2)) + "]"


# name -> one text value, as typed into one box.
HOSTILE: dict[str, str] = {
    # Exact arithmetic: Fraction(Decimal(...)) of these builds integers of up to
    # billions of bits (issue 12, reproduction 1).
    "1e99999999": "1e99999999",
    "1e999999999": "1e999999999",
    "-1e-999999999": "-1e-999999999",
    "0e999999999": "0e999999999",
    "1E+999999999": "1E+999999999",
    "unicode minus 1e999999999": "\u22121e999999999",
    "unicode minus 5": "\u22125",
    "1e1000 (at the bound)": "1e1000",
    "1e1001 (beyond)": "1e1001",
    "1e-1000 (at the bound)": "1e-1000",
    "30 nines": "9" * 30,
    "31 nines": "9" * 31,
    "64 ones": "1" * 64,
    "9 x MAX_VALUE_CHARS": "9" * MAX_VALUE_CHARS,
    "spaced digits": "1 " * (MAX_VALUE_CHARS // 2),
    "0.000...1 (64 chars)": "0." + "0" * 61 + "1",
    # Not numbers at all: stored, graded unreadable.
    "nan": "nan",
    "NaN": "NaN",
    "-nan": "-nan",
    "inf": "inf",
    "-inf": "-inf",
    "Infinity": "Infinity",
    "1e309": "1e309",
    "-1e309": "-1e309",
    "0x1p99999": "0x1p99999",
    "1_000": "1_000",
    "1,5": "1,5",
    "abc": "abc",
    "e5": "e5",
    ".": ".",
    "--1": "--1",
    "arabic-indic digits": "\u0661\u0662\u0663",
    # Expressions: powers towers, huge literals, nesting for the parser.
    "9**9**9**9": "9**9**9**9",
    "9^9^9^9": "9^9^9^9",
    "10^10^10": "10^10^10",
    "(3/7)^1000": "(3/7)^1000",
    "1e999999 literal": "1e999999*x",
    "499-digit literal": "9" * 499,
    "exp tower": "exp(" * 50 + "x" + ")" * 50,
    "unary minus x499": "-" * 499 + "x",
    "nested 60": _nested(60, "x"),
    "nested 250": _nested(250, "x"),
    "nested 10,000": _nested(10_000),
    "1+1+... (500 chars)": "1+" * 249 + "1",
    "sigmoid chain": "*".join(["sigmoid(x)"] * 45),
    "max of 20": "max(" + ",".join(["x^x"] * 20) + ")",
    # Regular expressions: backtracking food for (a+)+b, .*\d+.*\d+.*kg, a*a*a*b.
    "a*40!": "a" * 40 + "!",
    "a*MAX_VALUE_CHARS!": "a" * (MAX_VALUE_CHARS - 1) + "!",
    "digits then no kg": "1 " * 250 + "k",
    "a*499!": "a" * 499 + "!",
    # Matrices: as many cells as the API lets through, and more (old rows).
    "matrix 10^5 cells": _matrix_rows(100_000),
    "matrix 1000 cells": " ".join(["1"] * 1_000),
    "matrix 1001 cells": " ".join(["1"] * 1_001),
    "matrix 1000 rows": "\n".join(["1"] * 1_000),
    "matrix 25x40 of 1e999": "\n".join([" ".join(["1e999"] * 40)] * 25),
    "matrix 25x40 of 30 digits e-999": "\n".join([" ".join(["9" * 30 + "e-999"] * 40)] * 25),
    "matrix 25x40 of 1e1001": "\n".join([" ".join(["1e1001"] * 40)] * 25),
    "matrix ragged": "1 2\n3",
    "matrix huge entries": " ".join(["9" * 30 + "e1000"] * 600),
    "matrix ] then spaces": "]" + " " * (MAX_VALUE_CHARS - 2) + "[",
    "vector 32x16x...": "x".join(["32"] * 5_000),
    # Text: normalisation growth, odd code points, whitespace.
    "U+FDFA x500": "\ufdfa" * 500,
    "combining marks": "a" + "\u0301" * 499,
    "lone surrogate": "\ud800abc",
    "NUL": "1\x00",
    "spaces": " " * MAX_VALUE_CHARS,
    "newlines": "\n" * MAX_VALUE_CHARS,
    "words": "word " * (MAX_VALUE_CHARS // 5),
    # Choice letters.
    "A": "A",
    "Z": "Z",
    "AA": "AA",
    "A x MAX_VALUE_CHARS": "A" * MAX_VALUE_CHARS,
}

# name -> a whole submission of several values (checkboxes, matching, ordering, parts).
HOSTILE_LISTS: dict[str, list[str]] = {
    "MAX_VALUES x A": ["A"] * MAX_VALUES,
    "MAX_VALUES letters": [chr(ord("A") + i % 26) for i in range(MAX_VALUES)],
    "MAX_VALUES x long": ["A" * MAX_VALUE_CHARS] * MAX_VALUES,
    "MAX_VALUES x empty": [""] * MAX_VALUES,
    "duplicates": ["A", "A", "B", "B"],
    "MAX_VALUES x 1e999999999": ["1e999999999"] * MAX_VALUES,
}


def submissions(boxes: int) -> Iterator[tuple[str, list[str]]]:
    """Every hostile submission for a question with `boxes` form values: each text in one
    box, each text in every box, and the lists."""
    for name, value in HOSTILE.items():
        yield name, [value]
        if boxes > 1:
            yield f"{name} (every box)", [value] * boxes
    yield from HOSTILE_LISTS.items()


def stored_shapes(keys: Sequence[str]) -> Iterator[tuple[str, object]]:
    """Values as they might sit in the answers table from before a bound existed: raw
    texts, lists of them and mappings of `keys` (part ids, left indices) to them."""
    width = max(len(keys), 1)
    for name, value in HOSTILE.items():
        yield name, value
        yield f"[{name}]", [value] * width
        yield f"{{{name}}}", dict.fromkeys(keys or ["0"], value)
    for name, values in HOSTILE_LISTS.items():
        yield name, values
