"""The statistics page judges a question only from enough attempts (issue 16, item 9):
it states the minimum, says "too few attempts to judge" below it, and flags from it on."""

from __future__ import annotations

import csv
import io
import re

from quizapp.domain.statistics import MIN_ATTEMPTS_TO_JUDGE
from quizapp.services.users import create_user
from tests.functional.test_statistics_pages import _quiz_id, _submit

JUDGED = "<strong>very easy</strong>"
NOT_JUDGED = '<em class="muted">too few attempts to judge</em>'


def _flags_column(client, quiz_id: int) -> list[str]:
    text = client.get(f"/staff/stats/quiz/{quiz_id}.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    header = rows.index([]) + 1
    return [r[rows[header].index("flags")] for r in rows[header + 1 :] if r]


def test_one_attempt_is_too_few_to_judge_and_the_page_says_why(
    client, auth, session, sample_bank, users
):
    quiz_id = _quiz_id(session)
    _submit(session, quiz_id, users["alice"], 0.5)  # half right, half not answered
    auth.login("staff")
    page = client.get(f"/staff/stats/quiz/{quiz_id}").get_data(as_text=True)
    assert "<strong>very hard</strong>" not in page and JUDGED not in page
    # Every slot has one attempt: each says so, in the table and in the CSV.
    slots = page.count('<td data-label="Flags">')
    assert slots > 1 and page.count(NOT_JUDGED) == slots
    assert set(_flags_column(client, quiz_id)) == {"too few attempts to judge"}
    # The minimum is stated on the page.
    stated = re.search(r'id="judge-minimum">(.*?)</p>', page, re.DOTALL)
    assert stated and f"<strong>{MIN_ATTEMPTS_TO_JUDGE} attempts</strong>" in stated[1]


def test_from_the_minimum_on_the_page_judges(client, auth, session, sample_bank, users):
    quiz_id = _quiz_id(session)
    students = [users["alice"], users["bob"], users["carol"]]
    students += [
        create_user(session, f"judge{i}", "a long enough password", name=f"J {i}").id
        for i in range(MIN_ATTEMPTS_TO_JUDGE - len(students))
    ]
    for user_id in students:
        _submit(session, quiz_id, user_id, 1.0)  # all right: every slot very easy
    auth.login("staff")
    page = client.get(f"/staff/stats/quiz/{quiz_id}").get_data(as_text=True)
    assert f'<td data-label="Attempts">{MIN_ATTEMPTS_TO_JUDGE}</td>' in page
    assert JUDGED in page
    # Every slot is judged; only a question drawn from a pool into a slot (a share of the
    # ten attempts) may still be too few to judge on its own.
    rows = page.split("<tr>")
    slot_rows = [r for r in rows if '<th scope="row" data-label="Slot">' in r]
    assert slot_rows and not any(NOT_JUDGED in r for r in slot_rows)
    assert all("↳" in r for r in rows if NOT_JUDGED in r)
