"""The roster CSV parser: accepted shapes, and every bad input reported with its line."""

from __future__ import annotations

import ast
from fractions import Fraction
from pathlib import Path

import pytest

from quizapp.domain import roster
from quizapp.domain.roster import (
    MAX_ROWS,
    Accommodation,
    parse_roster,
    parse_roster_bytes,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "roster"
HEADER = "username,name,email,extra_time_percent,extra_minutes,groups\n"


def _problems(text: str) -> list[str]:
    parsed = parse_roster(text)
    assert parsed.rows == [], "a file with problems yields no rows"
    return [str(p) for p in parsed.problems]


def test_bom_crlf_utf8_quotes_and_trailing_blank_lines_are_accepted():
    parsed = parse_roster_bytes((DATA / "students_bom_crlf.csv").read_bytes())
    assert parsed.ok, parsed.problems
    assert [(r.line, r.username, r.name) for r in parsed.rows] == [
        (2, "zoe", "Zoë Martin"),
        (3, "chenwei", "陈伟"),
        (4, "obrien", "O'Brien, Sinéad"),
    ]
    zoe, chen, obrien = parsed.rows
    assert zoe.accommodation == Accommodation(Fraction(5, 4), 0)
    assert zoe.groups == ("seminar-a", "lab-1")
    assert chen.accommodation == Accommodation()  # empty cell: none
    assert obrien.accommodation == Accommodation(Fraction(3, 2), 0)
    assert obrien.groups == ()  # column present, cell empty: no groups
    assert parsed.has_accommodation and parsed.has_groups


def test_headers_in_any_order_and_case_and_optional_columns_absent():
    parsed = parse_roster("EMAIL , Name,USERNAME,Student ID\na@x.org,A,a\n")
    assert parsed.ok
    row = parsed.rows[0]
    assert (row.username, row.name, row.email) == ("a", "A", "a@x.org")
    assert row.accommodation is None and row.groups is None  # left alone when applied
    assert parsed.ignored_columns == ["Student ID"]


def test_extra_minutes_decimal_percent_and_percent_sign():
    parsed = parse_roster(
        HEADER + "a,A,a@x.org,,15,\nb,B,b@x.org,12.5%,,\nc,C,c@x.org,0,0,g1; g1 ;g2\n"
    )
    assert parsed.ok, parsed.problems
    a, b, c = parsed.rows
    assert a.accommodation == Accommodation(Fraction(1), 15)
    assert b.accommodation == Accommodation(Fraction(9, 8), 0)
    assert c.accommodation == Accommodation() and c.groups == ("g1", "g2")
    assert b.accommodation.describe() == "+12.5% time"
    assert a.accommodation.describe() == "+15 min"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("ok,O,o@x.org,abc,,", 'line 2: extra_time_percent: "abc" is not a number'),
        ("ok,O,o@x.org,-5,,", 'line 2: extra_time_percent: "-5" is negative'),
        ("ok,O,o@x.org,301,,", 'line 2: extra_time_percent: "301" is more than 300'),
        ("ok,O,o@x.org,nan,,", 'line 2: extra_time_percent: "nan" is not a number'),
        ("ok,O,o@x.org,,2.5,", 'line 2: extra_minutes: "2.5" is not a whole number of minutes'),
        ("ok,O,o@x.org,,-1,", 'line 2: extra_minutes: "-1" is negative'),
        ("ok,O,o@x.org,,1441,", 'line 2: extra_minutes: "1441" is more than 1440'),
        ("ok,O,o@x.org,,ten,", 'line 2: extra_minutes: "ten" is not a number'),
        (
            "ok,O,o@x.org,25,10,",
            'line 2: extra_minutes: give extra_time_percent or extra_minutes, not both ("25" and "10")',
        ),
        (",O,o@x.org,,,", "line 2: username: is required"),
        ("a b,O,o@x.org,,,", 'line 2: username: "a b" contains a space'),
        ("u" * 151 + ",O,o@x.org,,,", "line 2: username: is longer than 150 characters"),
        ("ok,,o@x.org,,,", "line 2: name: is required"),
        ("ok," + "n" * 201 + ",o@x.org,,,", "line 2: name: is longer than 200 characters"),
        ("ok,O,,,,", "line 2: email: is required"),
        ("ok,O,not-an-email,,,", 'line 2: email: "not-an-email" is not an email address'),
        ("ok,O,a b@x.org,,,", 'line 2: email: "a b@x.org" is not an email address'),
        ("ok,O,a@localhost,,,", 'line 2: email: "a@localhost" is not an email address'),
        ("ok,O," + "e" * 250 + "@x.org,,,", "line 2: email: is longer than 254 characters"),
        (
            "ok,O,o@x.org,,," + "g" * 101,
            'line 2: groups: "' + "g" * 40 + '…" is longer than 100 characters',
        ),
        (
            "ok,O,o@x.org,,,,extra",
            "line 2: 7 fields but the header has 6 (a comma inside a value needs the value in double quotes)",
        ),
        (
            'ok,"O\nNeil",o@x.org,,,',
            "line 2: name: contains a control character (a line break inside the value?)",
        ),
    ],
)
def test_each_bad_value_is_reported_with_its_line(row, expected):
    assert _problems(HEADER + row + "\n") == [expected]


def test_all_problems_of_a_file_in_one_pass_in_line_order():
    text = HEADER + "\n".join(
        [
            "good,Good,good@x.org,,,",  # line 2
            "x y,,bad,abc,,",  # line 3: four problems, in column order
            "good2,Good,good2@x.org,,,",  # line 4
            "",  # line 5: blank lines are skipped, but still counted
            "late,Late,late@x.org,,-3,",  # line 6
        ]
    )
    assert _problems(text) == [
        'line 3: username: "x y" contains a space',
        "line 3: name: is required",
        'line 3: email: "bad" is not an email address',
        'line 3: extra_time_percent: "abc" is not a number',
        'line 6: extra_minutes: "-3" is negative',
    ]


def test_duplicate_usernames_report_both_lines():
    text = HEADER + "ann,A,a@x.org,,,\nbob,B,b@x.org,,,\nann,A2,a2@x.org,,,\nAnn,A3,a3@x.org,,,\n"
    assert _problems(text) == [
        'line 4: username: "ann" appears more than once (lines 2 and 4)',
        'line 5: username: "Ann" appears more than once (lines 2 and 5)',
    ]


def test_a_quoted_field_spanning_lines_keeps_later_line_numbers_right():
    text = 'username,name,email,groups\na,"A",a@x.org,"g1;\ng2"\nb,B,bad,\n'
    assert _problems(text) == ['line 4: email: "bad" is not an email address']


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("username,name\na,A\n", ['line 1: header: the required column "email" is missing']),
        (
            "user,full name,mail\n",
            [
                'line 1: header: the required column "username" is missing',
                'line 1: header: the required column "name" is missing',
                'line 1: header: the required column "email" is missing',
            ],
        ),
        (
            "username,name,email,Email\n",
            ['line 1: header: column "email" appears more than once'],
        ),
        ("", ["line 1: the file is empty"]),
        ("\n\n", ["line 1: the file is empty"]),
        ("username,name,email\n\n", ["line 2: the file lists no students"]),
        (
            "username,name,email\na,A,a@x.org\nb,B,b\x00@x.org\n",
            ["line 3: the file contains a NUL byte: it is not a CSV text file"],
        ),
        (
            'username,name,email\na,"A,a@x.org\n',
            ["line 2: not valid CSV: unexpected end of data"],
        ),
    ],
)
def test_file_level_problems(text, expected):
    assert _problems(text) == expected


def test_a_file_that_is_not_utf8_is_refused_with_its_line():
    data = "username,name,email\nzoe,Zoë,z@x.org\n".encode("latin-1")
    parsed = parse_roster_bytes(data)
    assert [str(p) for p in parsed.problems] == [
        'line 2: the file is not UTF-8 text (in a spreadsheet, save it as "CSV UTF-8 (comma delimited)")'
    ]


def test_nul_bytes_in_an_upload_are_refused():
    parsed = parse_roster_bytes(b"username,name,email\x00\n")
    assert [str(p) for p in parsed.problems] == [
        "line 1: the file contains a NUL byte: it is not a CSV text file"
    ]


def test_too_many_rows():
    rows = "".join(f"u{i},U,u{i}@x.org\n" for i in range(MAX_ROWS + 1))
    problems = _problems("username,name,email\n" + rows)
    assert problems == [f"line {MAX_ROWS + 2}: the file has more than {MAX_ROWS} students"]


def test_too_many_bytes():
    big = b"username,name,email\n" + b"x" * roster.MAX_BYTES
    for parsed in (parse_roster_bytes(big), parse_roster(big.decode())):
        assert [str(p) for p in parsed.problems] == ["the file is larger than 5 MB"]


def test_exactly_max_rows_is_accepted():
    rows = "".join(f"u{i},U,u{i}@x.org\n" for i in range(MAX_ROWS))
    parsed = parse_roster("username,name,email\n" + rows)
    assert parsed.ok and len(parsed.rows) == MAX_ROWS


def test_normalise_text_makes_browser_round_trips_stable():
    text = "\ufeffusername,name,email\r\na,A,a@x.org\r\n"
    once = roster.normalise_text(text)
    assert once == "username,name,email\na,A,a@x.org\n"
    assert roster.normalise_text(once.replace("\n", "\r\n")) == once


def test_the_roster_module_is_pure():
    tree = ast.parse(Path(roster.__file__).read_text(encoding="utf-8"))
    imported = {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert not imported & {"flask", "sqlalchemy", "wtforms", "flask_wtf", "quizapp"}
