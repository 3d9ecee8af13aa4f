"""Property-based fuzzing of the roster CSV parser: any bytes give located problems or
rows, never an exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quizapp.domain.roster import parse_roster_bytes

HEADER = "username,name,email,extra_time_percent,extra_minutes,groups\r\n"
cells = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["alice", "25", "-5", "abc", "1e9", "50%", "", "a;b;c", "=SUM(A1)", "\x00"]),
)
rows = st.lists(st.lists(cells, min_size=0, max_size=8), max_size=6)
fuzz = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))


def _csv(table: list[list[str]]) -> str:
    return "".join(
        ",".join('"' + c.replace('"', '""') + '"' for c in row) + "\r\n" for row in table
    )


@fuzz
@given(rows, st.booleans())
def test_any_table_is_parsed_or_reported_by_line(table, bom):
    data = (("\ufeff" if bom else "") + HEADER + _csv(table)).encode("utf-8", "surrogatepass")
    parsed = parse_roster_bytes(data)
    if not parsed.ok:
        assert all(str(p).startswith("line ") or "file" in str(p) for p in parsed.problems)


@fuzz
@given(st.binary(max_size=600))
def test_any_bytes_are_parsed_or_reported(data):
    parsed = parse_roster_bytes(data)
    assert parsed.ok or parsed.problems
