"""Vector and matrix answers with a numeric tolerance per element.

Spec::

    type: matrix
    answer: [[1, 0.5], [0, 2], [3, -1]]   # a matrix (list of rows), or a flat list: a vector
    tolerance: 0.01                      # or relative_tolerance (per element), default 0
    scoring: all_or_nothing              # or per_element (fraction of entries correct)
    shape_hint: "$\\partial L/\\partial W$"  # optional: named in the feedback on a wrong shape
    labels: [N, C, H, W]                 # optional, vectors only: names of the entries
    wrong_answers:                       # optional distractors, each a matrix (or vector),
      - [[1, 0, 3], [0.5, 2, -1]]
      - {answer: [[1, 0], [0.5, 2], [3, 1]], feedback: "Check the sign of the last entry"}
      # or with partial credit: {answer: ..., fraction: 0.5, feedback: ...}

Students type rows separated by new lines or `;`, entries separated by spaces or commas.
Brackets are ignored, so `[[1, 2], [3, 4]]`, `1 2; 3 4` and `(1, 2, 3)` all read. A
vector may be typed as one row or one column; for vectors `×`/`x` between numbers also
separates entries, so a CNN output shape can be typed `32×16×14×14`.

The shape is checked first: a wrong shape scores 0 with feedback such as
"expected 3×2, got 2×3: check the layout of ∂L/∂W". Then
entries are compared exactly (Fractions) within the tolerance, like numeric answers. A
response that is not right but matches a listed wrong answer given as a mapping (entry by
entry, within the tolerance; any shape) gets its feedback, and its `fraction` instead of
the score it would have had (when `fraction:` is left out, the score is unchanged).

View: input "matrix"; extra = {"rows": r, "cols": c, "vector": bool, "labels": [html],
"shape_hint_html": html} (a vector of n entries has rows 1, cols n). The shape is part of
the question; no values are shown. Form: one text value (a textarea).
Stored response: the text exactly as typed, or None.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, ClassVar, Self, TypeVar

from quizapp.domain.qtypes import register
from quizapp.domain.qtypes.base import (
    UNANSWERED,
    AnswerOutOfBounds,
    Grade,
    GradeStatus,
    InvalidSubmission,
    QuestionType,
    Response,
    StudentView,
    Variant,
    unreadable,
)
from quizapp.domain.qtypes.numeric import (
    MAX_DIGITS,
    ListedAnswer,
    NumberOutOfBounds,
    UnreadableNumber,
    format_exact,
    looks_like_number,
    read_answer_feedback,
    read_number,
)
from quizapp.domain.render import render_inline
from quizapp.domain.spec import SpecReader, parse_exact

# Bounds on a student's matrix (and on the author's answer, so every answer can be
# typed). Grading reads every entry as a bounded number (numeric.read_number) but makes
# exact Fractions only of a matrix whose shape fits the question.
MAX_INPUT_LENGTH = 20_000  # characters
MAX_ROWS = 500
MAX_COLUMNS = 500
MAX_ENTRIES = 1_000
MATRIX_BOUNDS = (
    f"a matrix may have at most {MAX_ROWS} rows, {MAX_COLUMNS} columns, "
    f"{MAX_ENTRIES} entries and {MAX_INPUT_LENGTH} characters"
)
MATRIX_RULES = ("all_or_nothing", "per_element")

_T = TypeVar("_T")
Rows = tuple[tuple[Fraction, ...], ...]
Tokens = tuple[tuple[str, ...], ...]
Typed = tuple[tuple[Decimal, ...], ...]

# `\s*(?:,\s*)?` rather than `\s*,?\s*`: the two adjacent `\s*` made Python's engine
# try every split of a long run of spaces after a `]` (quadratic: 0.3 s for 20,000).
_BETWEEN_ROWS = re.compile(r"\]\s*(?:,\s*)?\[")
_BRACKETS = re.compile(r"[\[\]()]")
_ROW_SPLIT = re.compile(r"[;\n\r]+")
_ENTRY_SPLIT = re.compile(r"[,\s]+")
_TIMES = re.compile(r"(?<=[\d.])\s*[x×*]\s*(?=[\d.+\-\u2212])")


class UnreadableMatrix(ValueError):
    pass


class MatrixOutOfBounds(UnreadableMatrix):
    """Beyond MATRIX_BOUNDS, or holding a number beyond numeric.NUMBER_BOUNDS: unreadable
    when graded, refused when saved."""


def read_typed(text: str, *, vector: bool = False) -> Typed:
    """Rows of numbers as typed, each checked against the number bounds; raise
    UnreadableMatrix (MatrixOutOfBounds beyond a bound) with a reason."""
    return _rows(text, vector, read_number)


def check_bounds(text: str, *, vector: bool = False) -> None:
    """What accept() needs: raise MatrixOutOfBounds beyond a bound (UnreadableMatrix for
    an unreadable matrix, which is stored all the same). Cheaper than read_typed, so that
    saving and then grading the largest matrix stays within a few milliseconds."""
    _rows(text, vector, _bounded_token)


def _bounded_token(token: str) -> str:
    if len(token) <= MAX_DIGITS and "e" not in token and "E" not in token:
        return token  # too short for too many digits, and no exponent
    read_number(token)
    return token


def _token(token: str) -> str:
    if not looks_like_number(token):
        read_number(token)  # raises, with the reason
    return token


def _rows(text: str, vector: bool, read: Callable[[str], _T]) -> tuple[tuple[_T, ...], ...]:
    if len(text) > MAX_INPUT_LENGTH:
        raise MatrixOutOfBounds(
            f"it is longer than {MAX_INPUT_LENGTH} characters ({MATRIX_BOUNDS})"
        )
    if vector:
        text = _TIMES.sub(" ", text)
    text = _BRACKETS.sub(" ", _BETWEEN_ROWS.sub(";", text))
    rows: list[tuple[_T, ...]] = []
    total = 0
    # maxsplit: a line of 10,000 entries is refused after splitting off 502, not all of
    # them (separators merge, so only the first and last piece can be empty).
    for line in _ROW_SPLIT.split(text, MAX_ROWS + 1):
        tokens = [t for t in _ENTRY_SPLIT.split(line, MAX_COLUMNS + 1) if t]
        if not tokens:
            continue
        total += len(tokens)
        if total > MAX_ENTRIES:
            raise MatrixOutOfBounds(f"it has more than {MAX_ENTRIES} entries ({MATRIX_BOUNDS})")
        if len(rows) >= MAX_ROWS:
            raise MatrixOutOfBounds(f"it has more than {MAX_ROWS} rows ({MATRIX_BOUNDS})")
        if len(tokens) > MAX_COLUMNS:
            raise MatrixOutOfBounds(
                f"row {len(rows) + 1} has more than {MAX_COLUMNS} entries ({MATRIX_BOUNDS})"
            )
        row = []
        for column, token in enumerate(tokens, start=1):
            try:
                row.append(read(token))
            except NumberOutOfBounds as exc:
                raise MatrixOutOfBounds(f"row {len(rows) + 1}, entry {column}: {exc}") from None
            except UnreadableNumber as exc:
                raise UnreadableMatrix(f"row {len(rows) + 1}, entry {column}: {exc}") from None
        if rows and len(row) != len(rows[0]):
            raise UnreadableMatrix(
                f"row {len(rows) + 1} has {len(row)} entries but row 1 has {len(rows[0])}"
            )
        rows.append(tuple(row))
    if not rows:
        raise UnreadableMatrix("it is empty")
    return tuple(rows)


def _values(tokens: Tokens) -> Rows:
    rows = []
    for r, row in enumerate(tokens, start=1):
        values = []
        for c, token in enumerate(row, start=1):
            try:
                values.append(Fraction(read_number(token)))
            except UnreadableNumber as exc:
                raise UnreadableMatrix(f"row {r}, entry {c}: {exc}") from None
        rows.append(tuple(values))
    return tuple(rows)


def parse_matrix(text: str, *, vector: bool = False) -> Rows:
    """Rows of exact numbers as typed; raise UnreadableMatrix with a reason."""
    return tuple(tuple(Fraction(v) for v in row) for row in read_typed(text, vector=vector))


def _shape(rows: Sequence[Sequence[object]]) -> str:
    return f"{len(rows)}×{len(rows[0])}"


def _read_answer(spec: SpecReader, key: str | tuple[str, int], raw: Any) -> Rows | None:
    """A matrix (list of lists) or vector (flat list, stored as one row) from the spec."""
    path = spec.path + (key if isinstance(key, tuple) else (key,))
    if not isinstance(raw, list) or not raw:
        spec.problems.add(path, "expected a list of numbers or a list of rows")
        return None
    nested = [isinstance(item, list) for item in raw]
    if any(nested) and not all(nested):
        spec.problems.add(path, "mixes rows (lists) and numbers")
        return None
    raw_rows = raw if all(nested) else [raw]
    rows: list[tuple[Fraction, ...]] = []
    ok = True
    for r, raw_row in enumerate(raw_rows):
        if not raw_row:
            spec.problems.add(path + (r,), "an empty row")
            ok = False
            continue
        row = []
        for c, value in enumerate(raw_row):
            where = path + ((r, c) if all(nested) else (c,))
            try:
                row.append(parse_exact(value))
            except (ValueError, ZeroDivisionError) as exc:
                spec.problems.add(where, str(exc))
                ok = False
        if rows and len(row) != len(rows[0]) and ok:
            spec.problems.add(
                path + (r,), f"has {len(row)} entries but the first row has {len(rows[0])}"
            )
            ok = False
        rows.append(tuple(row))
    if ok and (
        sum(len(r) for r in rows) > MAX_ENTRIES
        or len(rows) > MAX_ROWS
        or len(rows[0]) > MAX_COLUMNS
    ):
        spec.problems.add(path, f"too large for students to type: {MATRIX_BOUNDS}")
        ok = False
    return tuple(rows) if ok else None


@dataclass(frozen=True)
class WrongMatrix:
    """A listed wrong matrix with its own feedback and, optionally, credit."""

    index: int
    rows: Rows
    fraction: Fraction | None  # None: what it scores anyway
    feedback: str


@register
@dataclass(frozen=True)
class Matrix(QuestionType):
    """See the module docstring for the spec, input format and scoring."""

    answer: Rows  # a vector is one row with `vector` set
    vector: bool
    tolerance: Fraction
    relative: bool
    scoring: str
    shape_hint: str
    labels: tuple[str, ...]
    wrong_answers: tuple[Rows, ...]
    feedback_answers: tuple[WrongMatrix, ...] = ()

    type_name: ClassVar[str] = "matrix"

    @classmethod
    def read(cls, spec: SpecReader) -> Self:
        raw = spec.raw("answer")
        if raw is None:
            spec.problem("answer", "is required")
        answer = _read_answer(spec, "answer", raw) if raw is not None else None
        vector = isinstance(raw, list) and bool(raw) and not isinstance(raw[0], list)
        absolute = spec.exact("tolerance", required=False, non_negative=True)
        relative = spec.exact("relative_tolerance", required=False, non_negative=True)
        if absolute is not None and relative is not None:
            spec.problem("relative_tolerance", "give tolerance or relative_tolerance, not both")
        scoring = spec.one_of("scoring", MATRIX_RULES, default="all_or_nothing")
        hint = spec.text("shape_hint", required=False)
        labels = tuple(spec.text_list("labels"))
        answer = answer or ((Fraction(0),),)
        if labels and not vector:
            spec.problem("labels", "labels are for vectors (a flat answer list) only")
        elif labels and len(labels) != len(answer[0]):
            spec.problem("labels", f"expected {len(answer[0])} labels, one per entry")
        wrong = []
        listed = []
        for i, raw_wrong in enumerate(spec.items("wrong_answers", required=False)):
            if isinstance(raw_wrong, dict):
                sub = SpecReader(raw_wrong, spec.path + ("wrong_answers", i), spec.problems)
                raw_rows = sub.raw("answer")
                if raw_rows is None:
                    sub.problem("answer", "is required")
                rows = _read_answer(sub, "answer", raw_rows) if raw_rows is not None else None
                fraction, feedback = read_answer_feedback(sub)
                sub.reject_unknown()
                if rows is not None:
                    wrong.append(rows)
                    listed.append(WrongMatrix(i, rows, fraction, feedback))
                continue
            rows = _read_answer(spec, ("wrong_answers", i), raw_wrong)
            if rows is not None:
                wrong.append(rows)
        return cls(
            answer=answer,
            vector=vector,
            tolerance=relative if relative is not None else (absolute or Fraction(0)),
            relative=relative is not None,
            scoring=scoring,
            shape_hint=hint,
            labels=labels,
            wrong_answers=tuple(wrong),
            feedback_answers=tuple(listed),
        )

    @property
    def rows(self) -> int:
        return len(self.answer)

    @property
    def cols(self) -> int:
        return len(self.answer[0])

    def view(self, variant: Variant) -> StudentView:
        return StudentView(
            input="matrix",
            extra={
                "rows": self.rows,
                "cols": self.cols,
                "vector": self.vector,
                "labels": [render_inline(label) for label in self.labels],
                "shape_hint_html": render_inline(self.shape_hint) if self.shape_hint else "",
            },
        )

    def accept(self, variant: Variant, submitted: Sequence[str]) -> Response:
        if len(submitted) > 1:
            raise InvalidSubmission("one answer only")
        text = submitted[0] if submitted else ""
        if not text.strip():
            return None
        try:
            check_bounds(text, vector=self.vector)
        except MatrixOutOfBounds as exc:
            raise AnswerOutOfBounds(f"This matrix cannot be accepted: {exc}.") from None
        except UnreadableMatrix:
            pass  # stored as typed, graded unreadable with the reason
        return text

    def _shape_feedback(self, given: Tokens) -> str:
        if self.vector:
            count = len(given) * len(given[0])
            if len(given) > 1 and len(given[0]) > 1:
                got = f"a {_shape(given)} matrix"
            else:
                got = f"{count} {'entry' if count == 1 else 'entries'}"
            message = f"expected a vector of {self.cols} entries, got {got}"
        else:
            message = f"expected {self.rows}×{self.cols}, got {_shape(given)}"
        if self.shape_hint:
            message += f": check the layout of {self.shape_hint}"
        return message[0].upper() + message[1:] + "."

    def _fit(self, given: Tokens) -> Tokens | None:
        """`given` in the answer's layout, or None when its shape is wrong."""
        if self.vector and len(given[0]) == 1 and len(given) > 1:
            given = (tuple(row[0] for row in given),)  # a column typed for a vector
        if len(given) != self.rows or len(given[0]) != self.cols:
            return None
        return given

    def _entry_ok(self, got: Fraction, want: Fraction) -> bool:
        allowed = self.tolerance * abs(want) if self.relative else self.tolerance
        return abs(got - want) <= allowed

    def grade(self, variant: Variant, response: Response) -> Grade:
        if response is None or (isinstance(response, str) and not response.strip()):
            return UNANSWERED
        if not isinstance(response, str):
            return unreadable("it is not text")
        # Tokens first, each only checked to look like a number; exact values are made
        # only of a matrix whose shape fits, so the work is the question's size, not the
        # student's.
        try:
            given = _rows(response, self.vector, _token)
            fitted = self._fit(given)
            if fitted is None:
                listed = self._listed(given, None)
                if listed is not None:
                    return listed
                return Grade(Fraction(0), GradeStatus.INCORRECT, self._shape_feedback(given))
            values = _values(fitted)
        except UnreadableMatrix as exc:
            return unreadable(str(exc))
        grade = self._score(values)
        if grade.fraction < 1:
            listed = self._listed(fitted, grade.fraction)
            if listed is not None:
                return listed
        return grade

    def _listed(self, given: Tokens, score: Fraction | None) -> Grade | None:
        """The grade of a listed wrong answer that `given` matches, or None. `score` is
        what `given` earns by itself (None: a wrong shape, 0)."""
        for entry in self.feedback_answers:
            want, typed = entry.rows, given
            if self.vector and len(want) == 1 and len(typed[0]) == 1 and len(typed) > 1:
                typed = (tuple(row[0] for row in typed),)  # a column typed for a vector
            if len(typed) != len(want) or len(typed[0]) != len(want[0]):
                continue
            values = _values(typed)  # the size of a listed answer: bounded by the author
            if all(
                self._entry_ok(got, w)
                for got_row, want_row in zip(values, want, strict=True)
                for got, w in zip(got_row, want_row, strict=True)
            ):
                fraction = entry.fraction if entry.fraction is not None else score
                return Grade.from_fraction(fraction or Fraction(0), entry.feedback)
        return None

    def _score(self, values: Rows) -> Grade:
        total = self.rows * self.cols
        right = sum(
            1
            for got_row, want_row in zip(values, self.answer, strict=True)
            for got, want in zip(got_row, want_row, strict=True)
            if self._entry_ok(got, want)
        )
        if self.scoring == "all_or_nothing":
            return Grade.from_fraction(Fraction(int(right == total)))
        feedback = f"{right} of {total} entries are correct." if 0 < right < total else ""
        return Grade.from_fraction(Fraction(right, total), feedback)

    def model_response(self, variant: Variant) -> Response:
        return _format(self.answer)

    def listed_answers(self, variant: Variant) -> list[ListedAnswer]:
        """The wrong answers listed with feedback or credit, with what each must earn."""
        return [
            ListedAnswer(e.index, _format(e.rows), e.fraction, e.feedback)
            for e in self.feedback_answers
        ]

    def wrong_responses(self, variant: Variant) -> list[Response]:
        out = [_format(rows) for rows in self.wrong_answers]
        if not self.vector and self.rows != self.cols:
            transposed = tuple(zip(*self.answer, strict=True))
            out.append(_format(transposed))
        return out

    def describe_response(self, variant: Variant, response: Response) -> str:
        if response is None:
            return "(no answer)"
        return " ; ".join(line.strip() for line in str(response).splitlines() if line.strip())

    def describe_answer(self, variant: Variant) -> str:
        text = " ; ".join(" ".join(format_exact(v, None) for v in row) for row in self.answer)
        if self.tolerance:
            bound = (
                f"{format_exact(self.tolerance * 100, None)} %"
                if self.relative
                else format_exact(self.tolerance, None)
            )
            text += f" (each entry ± {bound})"
        return text


def _format(rows: Rows) -> str:
    return "\n".join(" ".join(format_exact(v, None) for v in row) for row in rows)
