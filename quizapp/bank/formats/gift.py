"""GIFT (Moodle's "General Import Format Template") → spec dicts for this project's YAML.

A small parser for the documented syntax (docs.moodle.org/en/GIFT_format), written here:
no maintained GIFT library on PyPI parses into something we could use. Questions are
separated by blank lines; `//` lines are comments; `$CATEGORY: path` sets the folder;
`::title::` names a question; `[html]`, `[moodle]`, `[plain]`, `[markdown]` give a text's
format; `\\~ \\= \\# \\{ \\} \\:` and `\\\\` escape. The answer block decides the type:
`{}` essay, `{T}`/`{FALSE#wrong#right}` true/false, `{#3:0.5}`, `{#1..5}` numeric,
`{=a -> b ...}` matching, `{=right ~wrong}` single choice, `{~%50%a ~%50%b ~%-100%c}`
multiple response, `{=a =%50%b}` short answer; `####text` at the end is general feedback.
Text after the block (a "missing word" question) keeps a blank `_____` in the stem.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from quizapp.bank.formats import (
    MAX_INPUT_BYTES,
    MAX_QUESTIONS,
    Converted,
    ConvertedQuestion,
    ConvertError,
    IdMaker,
    Note,
)
from quizapp.bank.formats.html_markdown import escape_text, html_to_markdown, text_with_maths
from quizapp.bank.formats.moodle_xml import Skip, _number, category_folder, plain_number
from quizapp.bank.formats.moodle_xml import wildcard_pattern as _wildcard

_ESCAPES = {"~": "~", "=": "=", "#": "#", "{": "{", "}": "}", ":": ":", "\\": "\\", "n": "\n"}
_FORMAT = re.compile(r"^\s*\[(html|moodle|plain|markdown)\]")
_WEIGHT = re.compile(r"^%(-?\d+(?:\.\d+)?)%")
_TAGS = re.compile(r"<[a-zA-Z/][^>]*>")


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), text)


def _find(text: str, chars: str, start: int = 0) -> int:
    """Index of the first unescaped character of `chars` from `start`, or -1."""
    i = start
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] in chars:
            return i
        i += 1
    return -1


def _split_answers(block: str) -> list[tuple[str, str]]:
    """'=a ~b ~%50%c' → [('=', 'a'), ('~', 'b'), ('~', '%50%c')]."""
    found: list[tuple[str, str]] = []
    i = _find(block, "=~")
    while i != -1:
        j = _find(block, "=~", i + 1)
        # '=' inside '%50%' never occurs; '->' contains no marker.
        found.append((block[i], block[i + 1 : j if j != -1 else len(block)].strip()))
        i = j
    return found


def _feedback(answer: str) -> tuple[str, str]:
    i = _find(answer, "#")
    return (answer, "") if i == -1 else (answer[:i].strip(), answer[i + 1 :].strip())


def _text(raw: str, changes: list[str], where: str, default: str = "moodle") -> str:
    match = _FORMAT.match(raw)
    fmt = match.group(1) if match else default
    raw = unescape(raw[match.end() :] if match else raw).strip()
    if fmt == "markdown":
        return raw
    if fmt == "html" or _TAGS.search(raw):
        text, lost = html_to_markdown(raw)
        changes.extend(f"{where}: formatting of <{tag}> dropped, its text kept" for tag in lost)
        return text
    if fmt == "plain":
        return escape_text(raw)
    return text_with_maths(raw)


def _plain(raw: str) -> str:
    """An accepted answer: the text as typed, without format marker or escapes."""
    match = _FORMAT.match(raw)
    return unescape(raw[match.end() :] if match else raw).strip()


def _weight(answer: str) -> tuple[Decimal | None, str]:
    match = _WEIGHT.match(answer.strip())
    if match is None:
        return None, answer.strip()
    return _number(match.group(1), "weight") / 100, answer.strip()[match.end() :]


def _convert(
    title: str, stem_raw: str, block: str, after: str, changes: list[str]
) -> dict[str, Any]:
    general = ""
    cut = block.find("####")
    if cut != -1:
        block, general = block[:cut], block[cut + 4 :]
    stem_format = _FORMAT.match(stem_raw)
    stem = _text(stem_raw, changes, "stem")
    if after.strip():
        stem = f"{stem} \\_\\_\\_\\_\\_ {_text(after, changes, 'stem', 'moodle')}"
        changes.append("a missing-word question: the blank is shown as _____ in the stem")
    spec: dict[str, Any] = {"stem": stem}
    if general.strip():
        spec["feedback"] = _text(general, changes, "general feedback")
    body = block.strip()
    del stem_format
    if not body:
        spec["type"] = "essay"
        return spec
    if re.fullmatch(r"(T|TRUE|F|FALSE)(\s*#.*)?", body, re.DOTALL):
        word, _, rest = body.partition("#")
        answer = word.strip() in ("T", "TRUE")
        spec["type"] = "true_false"
        spec["answer"] = answer
        feedbacks = [f for f in (rest.split("#") if rest else [])]
        wrong_fb = _text(feedbacks[0], changes, "feedback") if feedbacks else ""
        right_fb = _text(feedbacks[1], changes, "feedback") if len(feedbacks) > 1 else ""
        if wrong_fb:
            spec[f"feedback_{str(not answer).lower()}"] = wrong_fb
        if right_fb:
            spec[f"feedback_{str(answer).lower()}"] = right_fb
        return spec
    if body.startswith("#"):
        return _numerical(spec, body[1:], changes)
    answers = _split_answers(body)
    if not answers:
        raise Skip(f"cannot read the answers {body[:40]!r}")
    if all(mark == "=" and _find(text, "-") != -1 and "->" in text for mark, text in answers):
        return _matching(spec, answers, changes)
    if any(mark == "~" for mark, _ in answers):
        return _choice(spec, answers, changes)
    return _short(spec, answers, changes)


def _numerical(spec: dict[str, Any], body: str, changes: list[str]) -> dict[str, Any]:
    spec["type"] = "numeric"
    body = body.strip()
    if _find(body, "=~") == -1:
        items = [("=", body)]
    else:
        items = _split_answers(body if body.startswith(("=", "~")) else "=" + body)
    best = None
    wrong: list[int | float | str] = []
    for mark, raw in items:
        raw, feedback = _feedback(raw)
        weight, value = _weight(raw)
        fraction = weight if weight is not None else Decimal(1 if mark == "=" else 0)
        if not value.strip():
            continue
        if ".." in value:
            low, high = (_number(v, "range") for v in value.split("..", 1))
            answer, tolerance = (low + high) / 2, (high - low) / 2
        else:
            number, _, tol = value.partition(":")
            answer, tolerance = _number(number, "answer"), abs(_number(tol or "0", "tolerance"))
        if fraction >= 1 and best is None:
            best = (answer, tolerance)
            if feedback:
                changes.append("the feedback of the correct answer is not carried over")
        elif fraction > 0:
            changes.append(f"the answer {value} gave {fraction:.0%}: partial credit is dropped")
        else:
            wrong.append(plain_number(answer))
    if best is None:
        raise Skip("no numeric answer is worth 100 %")
    spec["answer"] = plain_number(best[0])
    spec["tolerance"] = plain_number(best[1])
    wrong = [w for w in wrong if abs(Decimal(str(w)) - best[0]) > best[1]]
    if wrong:
        spec["wrong_answers"] = wrong
    return spec


def _matching(
    spec: dict[str, Any], answers: list[tuple[str, str]], changes: list[str]
) -> dict[str, Any]:
    spec["type"] = "matching"
    pairs: list[dict[str, str]] = []
    distractors: list[str] = []
    for _, raw in answers:
        left_raw, _, right_raw = raw.partition("->")
        left = _text(left_raw, changes, "pair")
        right = escape_text(_plain(right_raw))
        if left:
            pairs.append({"left": left, "right": right})
        else:
            distractors.append(right)
    if len(pairs) < 2:
        raise Skip("fewer than two pairs")
    spec["pairs"] = pairs
    rights = {p["right"] for p in pairs}
    distractors = [d for d in dict.fromkeys(distractors) if d not in rights]
    if distractors:
        spec["distractors"] = distractors
    return spec


def _choice(
    spec: dict[str, Any], answers: list[tuple[str, str]], changes: list[str]
) -> dict[str, Any]:
    options: list[dict[str, Any]] = []
    weights: list[Decimal] = []
    for i, (mark, raw) in enumerate(answers):
        raw, feedback = _feedback(raw)
        weight, text = _weight(raw)
        fraction = weight if weight is not None else Decimal(1 if mark == "=" else 0)
        weights.append(fraction)
        option: dict[str, Any] = {"text": _text(text, changes, f"answer {i + 1}")}
        if feedback:
            option["feedback"] = _text(feedback, changes, f"answer {i + 1} feedback")
        options.append(option)
    single = any(mark == "=" for mark, _ in answers) or not any(0 < w < 1 for w in weights)
    for option, fraction in zip(options, weights, strict=True):
        if single and fraction >= 1:
            option["correct"] = True
        elif single and fraction > 0:
            option["fraction"] = plain_number(fraction)
        elif not single and fraction > 0:
            option["correct"] = True
    if single:
        spec["type"] = "single_choice"
        if sum(1 for w in weights if w >= 1) != 1:
            raise Skip("a single-answer question needs exactly one answer worth 100 %")
        if any(w < 0 for w in weights):
            changes.append("negative credit became 0")
    else:
        spec["type"] = "multiple_response"
        spec["scoring"] = "right_minus_wrong"
        if len({w for w in weights if w > 0}) > 1:
            changes.append("the correct answers had different weights; each now counts the same")
        if not any(w < 0 for w in weights):
            changes.append(
                "GIFT took nothing off for a wrong choice; here each cancels a right one"
            )
    # Reorder keys so each option reads text, correct/fraction, feedback.
    spec["options"] = [
        {k: o[k] for k in ("text", "correct", "fraction", "feedback") if k in o} for o in options
    ]
    return spec


def _short(
    spec: dict[str, Any], answers: list[tuple[str, str]], changes: list[str]
) -> dict[str, Any]:
    spec["type"] = "short_text"
    accepted: list[dict[str, Any]] = []
    for _, raw in answers:
        raw, feedback = _feedback(raw)
        weight, text = _weight(raw)
        fraction = weight if weight is not None else Decimal(1)
        text = _plain(text)
        if fraction <= 0 or not text:
            if text == "*":
                changes.append("the catch-all '*' (0 %) is implied")
            continue
        entry: dict[str, Any] = {"pattern": _wildcard(text)} if "*" in text else {"text": text}
        if fraction < 1:
            entry["fraction"] = plain_number(fraction)
        if feedback:
            entry["feedback"] = _text(feedback, changes, "answer feedback")
        accepted.append(entry)
    if not any("text" in a and "fraction" not in a for a in accepted):
        raise Skip("no plain answer is worth 100 %")
    spec["answers"] = accepted
    return spec


def _blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each question: blank lines separate, // lines drop."""
    blocks: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip().startswith("//"):
            continue
        if not line.strip():
            if current:
                blocks.append((start, "\n".join(current)))
                current = []
            continue
        if not current:
            start = number
        current.append(line)
    if current:
        blocks.append((start, "\n".join(current)))
    return blocks


def read_gift(data: bytes, source: str = "questions.gift") -> Converted:
    """Convert a GIFT file; raises ConvertError if it cannot be read at all."""
    if len(data) > MAX_INPUT_BYTES:
        raise ConvertError(f"larger than {MAX_INPUT_BYTES // 1_000_000} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConvertError("is not UTF-8 text") from None
    out = Converted(source)
    ids = IdMaker()
    folder: tuple[str, ...] = ()
    count = 0
    for line, block in _blocks(text):
        if block.startswith("$CATEGORY:"):
            folder = category_folder(block[len("$CATEGORY:") :].strip())
            continue
        count += 1
        if count > MAX_QUESTIONS:
            raise ConvertError(f"more than {MAX_QUESTIONS} questions in one file")
        title = ""
        body = block.strip()
        if body.startswith("::"):
            end = body.find("::", 2)
            if end != -1:
                title, body = unescape(body[2:end]).strip(), body[end + 2 :]
        open_at = _find(body, "{")
        close_at = _find(body, "}", open_at + 1) if open_at != -1 else -1
        name = title or f"question at line {line}"
        if open_at == -1 or close_at == -1:
            out.notes.append(Note(line, name, "no answer block {...} found", skipped=True))
            continue
        changes: list[str] = []
        key = ids.make(title or body[:40])
        try:
            spec = _convert(
                title, body[:open_at], body[open_at + 1 : close_at], body[close_at + 1 :], changes
            )
        except Skip as exc:
            ids.used.discard(key)
            out.notes.append(Note(line, name, str(exc), skipped=True))
            continue
        full: dict[str, Any] = {"id": key, "type": spec.pop("type")}
        if title and title != key:
            full["title"] = title
        if folder:
            full["tags"] = [folder[-1]]
        full.update(spec)
        if not full["stem"].strip():
            ids.used.discard(key)
            out.notes.append(Note(line, name, "the question text is empty", skipped=True))
            continue
        out.questions.append(ConvertedQuestion(full, folder, line))
        for change in dict.fromkeys(changes):
            out.notes.append(Note(line, name, change))
    return out
