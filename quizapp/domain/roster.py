"""Reading a roster CSV: students, their accommodation and groups, every problem located.

Pure: text (or bytes) in, rows and problems out; no database. Like the bank loader,
parsing never stops at the first problem: staff fix a whole file in one pass, and a
file with any problem is applied not at all (the service refuses it).

The format (header names case-insensitive, columns in any order):

``username``, ``name``, ``email``
    required columns, and required in every row.
``extra_time_percent``
    optional: 25 means 25 % more time (a time factor of 1.25); 0 or empty means none.
``extra_minutes``
    optional: whole minutes added to every time limit; 0 or empty means none.
    A row may give one of the two, not both.
``groups``
    optional: group names separated by ``;``.

A column that is absent leaves that field alone for everyone: a file without either
extra-time column never touches accommodations, and a file without ``groups`` never
touches group membership. A column that is present is the truth for every row in the
file: an empty ``groups`` cell removes that student from all their groups, and an empty
extra-time cell removes their accommodation. Other columns are ignored (and listed, so
a misspelt header is noticed in the preview).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction

MAX_BYTES = 5_000_000
MAX_ROWS = 20_000
MAX_PERCENT = 300
MAX_EXTRA_MINUTES = 24 * 60  # more than a day of extra time is a typo; use an override
MAX_GROUPS = 50

# Column widths of the users and user_groups tables.
MAX_USERNAME = 150
MAX_NAME = 200
MAX_EMAIL = 254
MAX_GROUP = 100

REQUIRED_COLUMNS = ("username", "name", "email")
OPTIONAL_COLUMNS = ("extra_time_percent", "extra_minutes", "groups")
GROUP_SEPARATOR = ";"

# Light: something@something.tld, no spaces; the mail system is the real check.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, order=True)
class RosterProblem:
    """One problem, located: ``line 7: extra_time_percent: "abc" is not a number``."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.field}: {self.message}" if self.field else f"{where}{self.message}"


@dataclass(frozen=True)
class Accommodation:
    """A student's extra time as the roster states it (factor 1 and 0 minutes: none)."""

    time_factor: Fraction = Fraction(1)
    extra_minutes: int = 0

    @property
    def is_none(self) -> bool:
        return self.time_factor == 1 and self.extra_minutes == 0

    def describe(self) -> str:
        """For people: "none", "+25% time", "+15 min", or both."""
        parts = []
        if self.time_factor != 1:
            percent = (self.time_factor - 1) * 100
            shown = str(percent.numerator) if percent.denominator == 1 else f"{float(percent):g}"
            parts.append(f"+{shown}% time")
        if self.extra_minutes:
            parts.append(f"+{self.extra_minutes} min")
        return ", ".join(parts) or "none"


NO_ACCOMMODATION = Accommodation()


@dataclass(frozen=True)
class RosterRow:
    """One student as the file states them. None means the file has no such column."""

    line: int
    username: str
    name: str
    email: str
    accommodation: Accommodation | None = None
    groups: tuple[str, ...] | None = None


@dataclass
class ParsedRoster:
    rows: list[RosterRow] = field(default_factory=list)
    problems: list[RosterProblem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    has_accommodation: bool = False
    has_groups: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def normalise_text(text: str) -> str:
    """One canonical form of a roster's text: no BOM, LF line ends.

    Browsers send form fields with CRLF line ends whatever they were given, so the
    preview hashes this form, and the confirm step normalises again before checking.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decode_roster(data: bytes) -> tuple[str | None, list[RosterProblem]]:
    """Bytes of an uploaded file → its text, or the problem (size, NUL bytes, not UTF-8)."""
    if len(data) > MAX_BYTES:
        return None, [_file_problem(f"the file is larger than {MAX_BYTES // 1_000_000} MB")]
    if b"\x00" in data:
        return None, [_nul_problem(data.count(b"\n", 0, data.index(b"\x00")) + 1)]
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return None, [
            RosterProblem(
                line,
                "",
                "the file is not UTF-8 text (in a spreadsheet, save it as "
                '"CSV UTF-8 (comma delimited)")',
            )
        ]


def parse_roster_bytes(data: bytes) -> ParsedRoster:
    text, problems = decode_roster(data)
    if text is None:
        return ParsedRoster(problems=problems)
    return parse_roster(text)


def parse_roster(text: str) -> ParsedRoster:
    """Every row of a roster CSV, and every problem with its line number."""
    result = ParsedRoster()
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        result.problems.append(
            _file_problem(f"the file is larger than {MAX_BYTES // 1_000_000} MB")
        )
        return result
    if "\x00" in text:
        result.problems.append(_nul_problem(text.count("\n", 0, text.index("\x00")) + 1))
        return result
    reader = csv.reader(io.StringIO(normalise_text(text), newline=""), strict=True)
    try:
        records = _records(reader)
        header_line, header = next(records, (1, []))
        columns = _read_header(header, header_line, result)
        if columns is None:
            return result
        seen: dict[str, int] = {}
        for count, (line, cells) in enumerate(records, start=1):
            if count > MAX_ROWS:
                result.problems.append(
                    RosterProblem(line, "", f"the file has more than {MAX_ROWS} students")
                )
                break
            row = _read_row(line, cells, columns, len(header), result)
            if row is not None:
                key = row.username.casefold()
                if key in seen:
                    first = seen[key]
                    result.problems.append(
                        RosterProblem(
                            line,
                            "username",
                            f'"{row.username}" appears more than once (lines {first} and {line})',
                        )
                    )
                else:
                    seen[key] = line
                    result.rows.append(row)
    except csv.Error as exc:
        result.problems.append(RosterProblem(reader.line_num, "", f"not valid CSV: {exc}"))
    if not result.problems and not result.rows:
        result.problems.append(RosterProblem(2, "", "the file lists no students"))
    result.problems.sort(key=lambda p: p.line)  # stable: columns stay in order
    if result.problems:
        result.rows = []  # nothing of a bad file is usable
    return result


def _records(reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    """(first line, cells) of each record that is not blank; a quoted field may span lines."""
    line_num = getattr(reader, "line_num", 0)
    for cells in reader:
        start = line_num + 1
        line_num = getattr(reader, "line_num", line_num + 1)
        if any(cell.strip() for cell in cells):
            yield start, cells


def _column_name(raw: str) -> str:
    return re.sub(r"[\s-]+", "_", raw.strip().lower())


def _read_header(header: list[str], line: int, result: ParsedRoster) -> dict[str, int] | None:
    if not any(cell.strip() for cell in header):
        result.problems.append(RosterProblem(1, "", "the file is empty"))
        return None
    columns: dict[str, int] = {}
    for index, raw in enumerate(header):
        name = _column_name(raw)
        if not name:
            continue
        if name in columns:
            result.problems.append(
                RosterProblem(line, "header", f'column "{name}" appears more than once')
            )
        elif name in REQUIRED_COLUMNS or name in OPTIONAL_COLUMNS:
            columns[name] = index
        else:
            result.ignored_columns.append(raw.strip())
    for name in REQUIRED_COLUMNS:
        if name not in columns:
            result.problems.append(
                RosterProblem(line, "header", f'the required column "{name}" is missing')
            )
    if result.problems:
        return None
    result.has_accommodation = "extra_time_percent" in columns or "extra_minutes" in columns
    result.has_groups = "groups" in columns
    return columns


def _read_row(
    line: int, cells: list[str], columns: dict[str, int], width: int, result: ParsedRoster
) -> RosterRow | None:
    problems = result.problems
    before = len(problems)

    def problem(column: str, message: str) -> None:
        problems.append(RosterProblem(line, column, message))

    def cell(column: str) -> str:
        index = columns.get(column)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    if len(cells) > width:
        problem(
            "",
            f"{len(cells)} fields but the header has {width} "
            "(a comma inside a value needs the value in double quotes)",
        )
    username = cell("username")
    if message := username_problem(username):
        problem("username", message)
    name = _text(cell("name"), "name", MAX_NAME, problem)
    email = _text(cell("email"), "email", MAX_EMAIL, problem)
    if email and len(email) <= MAX_EMAIL and (message := email_problem(email)):
        problem("email", message)
    accommodation = _accommodation(columns, cell, problem) if result.has_accommodation else None
    groups = _groups(cell("groups"), problem) if result.has_groups else None
    if len(problems) > before:
        return None
    return RosterRow(line, username, name, email, accommodation, groups)


def username_problem(username: str) -> str | None:
    """Why a username cannot be used, or None (shared with the staff account form)."""
    if not username:
        return "is required"
    if any(ch.isspace() for ch in username):
        return f"{_show(username)} contains a space"
    if len(username) > MAX_USERNAME:
        return f"is longer than {MAX_USERNAME} characters"
    if _CONTROL.search(username):
        return "contains a control character"
    return None


def email_problem(email: str) -> str | None:
    """A light check (something@domain.tld): the mail system is the real one."""
    if not email:
        return "is required"
    if len(email) > MAX_EMAIL:
        return f"is longer than {MAX_EMAIL} characters"
    if not _EMAIL.match(email):
        return f"{_show(email)} is not an email address"
    return None


def _text(value: str, column: str, limit: int, problem: Callable[[str, str], None]) -> str:
    if not value:
        problem(column, "is required")
    elif len(value) > limit:
        problem(column, f"is longer than {limit} characters")
    elif _CONTROL.search(value):
        problem(column, "contains a control character (a line break inside the value?)")
    return value


def _accommodation(
    columns: dict[str, int],
    cell: Callable[[str], str],
    problem: Callable[[str, str], None],
) -> Accommodation | None:
    factor, minutes = Fraction(1), 0
    percent_text, minutes_text = cell("extra_time_percent"), cell("extra_minutes")
    if percent_text:
        percent = _number(percent_text.removesuffix("%").strip(), "extra_time_percent", problem)
        if percent is not None:
            if percent < 0:
                problem("extra_time_percent", f"{_show(percent_text)} is negative")
            elif percent > MAX_PERCENT:
                problem("extra_time_percent", f"{_show(percent_text)} is more than {MAX_PERCENT}")
            else:
                factor = 1 + percent / 100
    if minutes_text:
        value = _number(minutes_text, "extra_minutes", problem)
        if value is not None:
            if value.denominator != 1:
                problem("extra_minutes", f"{_show(minutes_text)} is not a whole number of minutes")
            elif value < 0:
                problem("extra_minutes", f"{_show(minutes_text)} is negative")
            elif value > MAX_EXTRA_MINUTES:
                problem("extra_minutes", f"{_show(minutes_text)} is more than {MAX_EXTRA_MINUTES}")
            else:
                minutes = int(value)
    if factor != 1 and minutes:
        problem(
            "extra_minutes",
            "give extra_time_percent or extra_minutes, not both "
            f"({_show(percent_text)} and {_show(minutes_text)})",
        )
    return Accommodation(factor, minutes)


def _number(text: str, column: str, problem: Callable[[str, str], None]) -> Fraction | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        problem(column, f"{_show(text)} is not a number")
        return None
    return Fraction(value)


def _groups(text: str, problem: Callable[[str, str], None]) -> tuple[str, ...]:
    names: list[str] = []
    for raw in text.split(GROUP_SEPARATOR):
        name = raw.strip()
        if not name or name in names:
            continue
        if len(name) > MAX_GROUP:
            problem("groups", f"{_show(name)} is longer than {MAX_GROUP} characters")
        elif _CONTROL.search(name):
            problem("groups", "a group name contains a control character")
        names.append(name)
    if len(names) > MAX_GROUPS:
        problem("groups", f"more than {MAX_GROUPS} groups")
    return tuple(names)


def _show(value: str, limit: int = 40) -> str:
    """A value quoted for a message, shortened, with control characters made visible."""
    shown = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
    return f'"{shown[:limit]}…"' if len(shown) > limit else f'"{shown}"'


def _file_problem(message: str) -> RosterProblem:
    return RosterProblem(0, "", message)


def _nul_problem(line: int) -> RosterProblem:
    return RosterProblem(line, "", "the file contains a NUL byte: it is not a CSV text file")
