"""Which text can be stored: the one rule the request guard, the API, the bank loader and
`quizapp doctor text` share."""

from __future__ import annotations

import pytest

from quizapp.domain.text_checks import (
    FORBIDDEN_RANGES,
    REPLACEMENT,
    invalid_characters,
    invalid_text_reason,
    is_forbidden,
    repaired,
)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain ASCII",
        "an essay\nwith lines,\ttabs\r\nand Windows line ends",
        "\x01\x07\x1b\x7f control characters other than NUL encode and store",
        "Ünïcödé, 中文, العربية, emoji 😀 (a pair in JSON, one code point here)",
        "\ufffd the replacement character itself",
        "\ufdcf\ufdf0 just outside the non-character block",
        "\ufffd\U0010fffd last ordinary code points of a plane",
        "\ue000 private use is allowed",
    ],
)
def test_text_that_can_be_stored(text):
    assert invalid_text_reason(text) is None
    assert list(invalid_characters(text)) == []
    assert repaired(text) == text


@pytest.mark.parametrize(
    ("text", "position", "what"),
    [
        ("\ud800abc", 1, "U+D800, half of a surrogate pair"),
        ("abc\udfff", 4, "U+DFFF, half of a surrogate pair"),
        ("x\x00y", 2, "U+0000, a NUL character"),
        ("\ufdd0", 1, "U+FDD0, a Unicode non-character"),
        ("ab\ufdef", 3, "U+FDEF, a Unicode non-character"),
        ("\ufffe", 1, "U+FFFE, a Unicode non-character"),
        ("é\uffff", 2, "U+FFFF, a Unicode non-character"),
        ("😀\U0001fffe", 2, "U+1FFFE, a Unicode non-character"),
        ("\U0010ffff", 1, "U+10FFFF, a Unicode non-character"),
    ],
)
def test_text_that_cannot_be_stored_says_where_and_what(text, position, what):
    reason = invalid_text_reason(text)
    assert reason is not None
    assert reason.startswith(f"position {position}: {what}")


def test_the_rule_is_exactly_the_listed_ranges():
    """Every code point, both ways: the regular expression used on requests and the
    table used in messages (and in docs/api/openapi.yaml) agree."""
    listed = {c for first, last, _ in FORBIDDEN_RANGES for c in range(first, last + 1)}
    assert len(listed) == 1 + 2048 + 32 + 34
    for code_point in range(0x110000):
        expected = code_point in listed
        assert is_forbidden(code_point) is expected
        assert (invalid_text_reason("a" + chr(code_point)) is not None) is expected, hex(code_point)


def test_every_bad_character_is_found_and_repaired_in_place():
    text = "\x00ok\ud800 fine \U0008ffff\ufdd5"
    assert list(invalid_characters(text)) == [(0, 0), (3, 0xD800), (10, 0x8FFFF), (11, 0xFDD5)]
    fixed = repaired(text)
    assert fixed == f"{REPLACEMENT}ok{REPLACEMENT} fine {REPLACEMENT}{REPLACEMENT}"
    assert len(fixed) == len(text)
    assert invalid_text_reason(fixed) is None
    fixed.encode("utf-8")  # what failed before: the page, the CSV, the database


def test_a_long_essay_is_checked_quickly():
    import time

    essay = "Ünïcödé text, line after line.\n" * 3300  # about 100,000 characters
    started = time.perf_counter()
    for _ in range(10):
        assert invalid_text_reason(essay) is None
    assert (time.perf_counter() - started) / 10 < 0.02
