"""Is a piece of text storable? Valid Unicode, no NUL, no non-characters.

JSON may carry a lone surrogate (``"\\ud800"``): Python keeps it in a ``str`` and the
failure comes later, far from the request (a page, a CSV export, the sweeper), when the
text is encoded as UTF-8. PostgreSQL refuses NUL in text. Unicode's non-characters
(U+FDD0..U+FDEF and the last two code points of every plane) are reserved for a
program's internal use and never mean anything in an interchanged answer. All three are
refused at the boundary (web/input_guard.py), and `quizapp doctor text` repairs rows
stored before that check existed, with the same rule.

Ordinary control characters (tab, newline, carriage return) stay allowed: essays need
them, and they encode and store without trouble.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

REPLACEMENT = "\ufffd"

# (first, last, why): every code point that cannot be stored, inclusive ranges.
FORBIDDEN_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0000, 0x0000, "a NUL character"),
    (0xD800, 0xDBFF, "half of a surrogate pair (a high surrogate without its partner)"),
    (0xDC00, 0xDFFF, "half of a surrogate pair (a low surrogate without its partner)"),
    (0xFDD0, 0xFDEF, "a Unicode non-character"),
    *(
        (plane * 0x10000 + 0xFFFE, plane * 0x10000 + 0xFFFF, "a Unicode non-character")
        for plane in range(17)
    ),
)


def _class() -> str:
    parts = []
    for first, last, _why in FORBIDDEN_RANGES:
        parts.append(f"\\U{first:08x}" if first == last else f"\\U{first:08x}-\\U{last:08x}")
    return "[" + "".join(parts) + "]"


# One character class, searched in C (about 2 ms for a 100,000-character essay, and
# ASCII text, most of what arrives, only needs a NUL search): cheap enough for every
# request.
_FORBIDDEN = re.compile(_class())


def is_forbidden(code_point: int) -> bool:
    return any(first <= code_point <= last for first, last, _ in FORBIDDEN_RANGES)


def describe(code_point: int) -> str:
    for first, last, why in FORBIDDEN_RANGES:
        if first <= code_point <= last:
            return f"U+{code_point:04X}, {why}"
    return f"U+{code_point:04X}"


def invalid_characters(text: str) -> Iterator[tuple[int, int]]:
    """(0-based index, code point) of every character of `text` that cannot be stored."""
    for match in _FORBIDDEN.finditer(text):
        yield match.start(), ord(match.group())


def invalid_text_reason(text: str) -> str | None:
    """None if `text` can be stored; otherwise where the first bad character is and what
    it is, for a person: ``"position 4: U+D800, half of a surrogate pair (…)"``.
    Positions count characters from 1, as an editor does."""
    if text.isascii() and "\x00" not in text:
        return None
    match = _FORBIDDEN.search(text)
    if match is None:
        return None
    return f"position {match.start() + 1}: {describe(ord(match.group()))}"


def repaired(text: str) -> str:
    """`text` with every character that cannot be stored replaced by U+FFFD, the
    character Unicode reserves for "something was here that could not be represented":
    lengths and positions are kept, so the rest of an answer reads as it was typed."""
    return _FORBIDDEN.sub(REPLACEMENT, text)
