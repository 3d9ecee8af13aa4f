"""Moodle's embedded answers (Cloze) markers → multi_part parts.

A marker is `{weight:TYPE:answer~answer...}`; each answer is `=text`, `%50%text` or
`text` (0 %), optionally followed by `#feedback`; `\\}`, `\\~`, `\\#` and `\\/` escape.
SHORTANSWER (SA, MW; _C case-sensitive) becomes a text part, NUMERICAL (NM) a number part
with its tolerance (`=3.14:0.01`). MULTICHOICE (MC, MCV, MCH, MCS ...) has no box to choose
from inside a multi_part question, so it becomes a text part whose label lists the choices
and whose accepted answer is the correct choice's text, and is reported. MULTIRESPONSE
cannot be expressed and makes the question unconvertible.
"""

from __future__ import annotations

import html
import re
import string
from decimal import Decimal, InvalidOperation
from typing import Any

MARKER = re.compile(r"\{(\d*):([A-Z_]+):((?:\\.|[^\\}])*)\}")
_TAGS = re.compile(r"<[^>]*>")
TOKEN = "CLOZEGAP{}X"


class ClozeError(ValueError):
    pass


def _split(text: str, sep: str) -> list[str]:
    """Split on `sep` not escaped by a backslash."""
    parts, current, i = [], [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if text[i] == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(text[i])
        i += 1
    parts.append("".join(current))
    return parts


def _clean(text: str) -> str:
    text = re.sub(r"\\(.)", r"\1", text)
    return re.sub(r"\s+", " ", html.unescape(_TAGS.sub(" ", text))).strip()


def _answers(body: str) -> list[tuple[Decimal, str, str]]:
    found = []
    for raw in _split(body, "~"):
        pieces = _split(raw, "#")
        answer, feedback = pieces[0].strip(), "#".join(pieces[1:])
        fraction = Decimal(0)
        if answer.startswith("="):
            fraction, answer = Decimal(1), answer[1:]
        elif m := re.match(r"%(-?\d+(?:\.\d+)?)%", answer):
            fraction, answer = Decimal(m.group(1)) / 100, answer[m.end() :]
        found.append((fraction, _clean(answer), _clean(feedback)))
    return found


def _number(text: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ClozeError(f"{text!r} is not a number") from None
    if not value.is_finite() or abs(value.adjusted()) > 100:
        raise ClozeError(f"{text!r} is out of range")
    return value


def _numeric_wrong(
    answers: list[tuple[Decimal, str, str]],
    best: tuple[Decimal, str, str],
    answer: Decimal,
    tolerance: Decimal,
) -> list[Any]:
    """The other answers of a numerical gap: plain wrong numbers, or mappings with their
    feedback, credit and (when it differs from the gap's) tolerance."""
    from quizapp.bank.formats.moodle_xml import credit, plain_number

    wrong: list[Any] = []
    for fraction, text, feedback in answers:
        if (fraction, text, feedback) == best or text in ("", "*") or fraction >= 1:
            continue
        value_text, _, tolerance_text = text.partition(":")
        value = _number(value_text)
        own = abs(_number(tolerance_text or "0"))
        if fraction <= 0 and not feedback:
            if abs(value - answer) > tolerance:
                wrong.append(plain_number(value))
            continue
        entry: dict[str, Any] = {"answer": plain_number(value)}
        if fraction > 0:
            entry["fraction"] = credit(fraction)
        if feedback:
            entry["feedback"] = feedback
        if own != tolerance:
            entry["tolerance"] = plain_number(own)
        wrong.append(entry)
    return wrong


def cloze_parts(stem_html: str) -> tuple[str, list[dict[str, Any]], list[str]]:
    """(the stem with each marker replaced by TOKEN.format(n), the parts, notes)."""
    from quizapp.bank.formats.moodle_xml import Skip, plain_number, wildcard_pattern

    parts: list[dict[str, Any]] = []
    notes: list[str] = []

    def replace(match: re.Match[str]) -> str:
        n = len(parts)
        if n >= 26:
            raise Skip("more than 26 gaps")
        part_id = string.ascii_lowercase[n]
        weight = int(match.group(1) or "1")
        kind = match.group(2)
        try:
            answers = _answers(match.group(3))
        except ClozeError as exc:
            raise Skip(f"gap {part_id}: {exc}") from None
        part: dict[str, Any] = {"id": part_id, "label": f"({part_id})"}
        if kind in ("NUMERICAL", "NM"):
            best = [a for a in answers if a[0] >= 1]
            if not best:
                raise Skip(f"gap {part_id}: no answer is worth 100 %")
            value, _, tolerance = best[0][1].partition(":")
            try:
                answer = _number(value)
                part["answer"] = plain_number(answer)
                part["tolerance"] = plain_number(abs(_number(tolerance or "0")))
                wrong = _numeric_wrong(answers, best[0], answer, abs(_number(tolerance or "0")))
            except ClozeError as exc:
                raise Skip(f"gap {part_id}: {exc}") from None
            if wrong:
                part["wrong_answers"] = wrong
        elif kind in ("SHORTANSWER", "SA", "MW", "SHORTANSWER_C", "SAC", "MWC"):
            accepted: list[dict[str, Any]] = []
            for fraction, text, feedback in answers:
                if fraction <= 0 or not text:
                    continue
                entry: dict[str, Any] = (
                    {"pattern": wildcard_pattern(text)} if "*" in text else {"text": text}
                )
                if fraction < 1:
                    entry["fraction"] = plain_number(fraction)
                if feedback:
                    entry["feedback"] = feedback
                accepted.append(entry)
            if not any("text" in a and "fraction" not in a for a in accepted):
                raise Skip(f"gap {part_id}: no plain answer is worth 100 %")
            part["answers"] = accepted
            wrong_texts = [t for f, t, _ in answers if f <= 0 and t and "*" not in t]
            if wrong_texts:
                part["wrong_answers"] = wrong_texts
            if kind.endswith("C"):
                part["case_sensitive"] = True
        elif kind.startswith(("MULTICHOICE", "MC")) and not kind.startswith("MULTIRESPONSE"):
            correct = [a for a in answers if a[0] >= 1]
            if len(correct) != 1:
                raise Skip(f"gap {part_id}: a multiple-choice gap needs one correct choice")
            choices = ", ".join(a[1] for a in answers)
            part["label"] = f"({part_id}) one of: {choices}"
            part["answers"] = [{"text": correct[0][1]}]
            partial = [{"text": t, "fraction": plain_number(f)} for f, t, _ in answers if 0 < f < 1]
            part["answers"].extend(partial)
            wrong = [t for f, t, _ in answers if f <= 0 and t]
            if wrong:
                part["wrong_answers"] = wrong
            notes.append(
                "multiple-choice gaps became text boxes: the label lists the choices and "
                "the correct one is the accepted answer"
            )
        else:
            raise Skip(f"gap {part_id}: {kind} gaps have no equivalent")
        if weight != 1:
            part["weight"] = weight
        parts.append(part)
        return TOKEN.format(n)

    stem = MARKER.sub(replace, stem_html)
    if not parts:
        raise Skip("no gaps found in the text")
    return stem, parts, notes
