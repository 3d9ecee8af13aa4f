"""Staff tables stay readable at any width, and the live monitor acts on a row (issue 16,
item 9), through the test client:

- every body cell of every staff table carries its column's header as data-label (the
  stylesheet shows it when a narrow screen turns rows into cards; tests/browser checks
  that it is drawn), rows of a different shape (an empty table's message) excepted;
- each running attempt on the monitor links to extra time for that student and to
  finalise now, and those pages state the student's current deadline before applying;
- the audit trail shows each event's details as "key: value" lines, escaped, with who
  did it.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from quizapp.models import Quiz, User
from quizapp.services import attempts as svc
from quizapp.services.audit import record_now
from tests.conftest import QUIZ1_OPENS, Auth
from tests.functional.helpers import csrf_of

GRACE = timedelta(seconds=10)
NOW = QUIZ1_OPENS + timedelta(hours=1)


@pytest.fixture
def quiz(session, sample_bank) -> Quiz:
    return session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()


@pytest.fixture
def running(session, quiz, users, clock):
    clock.set(NOW + timedelta(minutes=15))
    alice = session.get(User, users["alice"])
    attempt = svc.start_attempt(session, quiz.id, alice, NOW, GRACE)
    slot = next(
        e.slot for e, q in svc.attempt_questions(session, attempt) if q.key == "cnn-output-width"
    )
    svc.save_answers(session, attempt.id, {slot: ["15"]}, 1, NOW, GRACE, "10.0.0.1")
    return attempt


@pytest.fixture
def staff_client(client, users):
    Auth(client).login("staff")
    return client


class Tables(HTMLParser):
    """Each table's column headers (thead) and, per body row, each cell's data-label."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self._where: str = ""
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.tables.append({"headers": [], "rows": [], "class": a.get("class") or ""})
        elif tag in ("thead", "tbody"):
            self._where = tag
        elif tag == "tr" and self._where == "tbody" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("th", "td") and self.tables:
            if self._where == "thead":
                self._text = []
            elif self._where == "tbody":
                self.tables[-1]["rows"][-1].append((a.get("data-label"), a.get("colspan")))

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "th" and self._text is not None:
            self.tables[-1]["headers"].append(" ".join("".join(self._text).split()))
            self._text = None
        elif tag in ("thead", "tbody"):
            self._where = ""


def tables_of(page: str) -> list[dict]:
    parser = Tables()
    parser.feed(page)
    return parser.tables


def assert_cells_labelled(page: str, path: str) -> int:
    """Every body cell of every table with a header row is labelled with its header."""
    checked = 0
    for table in tables_of(page):
        headers = table["headers"]
        if not headers:
            continue  # a two-column list of facts: each row's th is its label
        for row in table["rows"]:
            if any(colspan for _, colspan in row):
                continue  # "No attempt in progress." across the table
            assert [label for label, _ in row] == headers, (path, headers, row)
            checked += 1
    return checked


def test_every_staff_table_labels_its_cells(staff_client, session, quiz, running, users):
    from tests.functional.test_statistics_pages import _submit

    _submit(session, quiz.id, users["bob"], 0.5)
    record_now(session, "override", NOW, actor_id=users["staff"], quiz_id=quiz.id, reason="x")
    pages = [
        "/staff/",
        f"/staff/quiz/{quiz.id}",
        f"/staff/quiz/{quiz.id}/preflight",
        f"/staff/quiz/student/{users['alice']}",
        f"/staff/quiz/student/{users['bob']}",
        "/staff/roster/",
        f"/staff/marking/quiz/{quiz.id}",
        f"/staff/stats/quiz/{quiz.id}",
        "/staff/audit?quiz=quiz1-foundations",
        "/staff/preview/",
    ]
    rows = 0
    for path in pages:
        response = staff_client.get(path)
        assert response.status_code == 200, path
        rows += assert_cells_labelled(response.get_data(as_text=True), path)
    assert rows >= 20


def test_each_monitor_row_offers_extra_time_and_finalise(staff_client, quiz, running):
    page = staff_client.get(f"/staff/quiz/{quiz.id}").get_data(as_text=True)
    (table,) = tables_of(page)
    assert table["headers"][-1] == "Actions"
    assert f'href="/staff/quiz/{quiz.id}/intervene?student=alice"' in page
    assert f'href="/staff/quiz/attempt/{running.id}/finalise"' in page
    # The links are described by their row's student, for a screen reader's list of links.
    assert f'<th scope="row" data-label="Student" id="live-{running.id}">' in page
    assert page.count(f'aria-describedby="live-{running.id}"') == 2
    # monitor.js re-renders rows from live.json: it gets the same URLs from the table,
    # with a placeholder for the attempt id that a real id can never equal by accident.
    assert f'data-intervene-url="/staff/quiz/{quiz.id}/intervene"' in page
    assert 'data-finalise-url="/staff/quiz/attempt/2147483647/finalise"' in page


def test_the_extra_time_form_states_the_current_deadline(staff_client, quiz, running):
    live = staff_client.get(f"/staff/quiz/{quiz.id}/live.json").get_json()
    (row,) = live["attempts"]
    page = staff_client.get(f"/staff/quiz/{quiz.id}/intervene?student=alice").get_data(as_text=True)
    section = page[page.index('id="current-deadline"') :]
    section = section[: section.index("</section>")]
    assert "alice: current deadline" in section
    assert f"<strong>{row['deadline_local']}</strong>" in section
    assert "(45:00 left)" in section and row["deadline_local"].endswith("GMT")
    # Refused for want of a reason: the deadline is still stated beside the errors.
    again = staff_client.post(
        f"/staff/quiz/{quiz.id}/intervene",
        data={"student": "alice", "extra_minutes": "5", "csrf_token": csrf_of(page)},
    )
    assert again.status_code == 400
    assert f"<strong>{row['deadline_local']}</strong>" in again.get_data(as_text=True)


def test_the_extra_time_form_for_a_student_without_a_running_attempt(staff_client, quiz):
    page = staff_client.get(f"/staff/quiz/{quiz.id}/intervene?student=bob").get_data(as_text=True)
    assert "bob has no attempt at this quiz in progress" in page
    plain = staff_client.get(f"/staff/quiz/{quiz.id}/intervene").get_data(as_text=True)
    assert 'id="current-deadline"' not in plain


def test_finalise_and_reopen_pages_state_the_deadline(staff_client, session, running):
    page = staff_client.get(f"/staff/quiz/attempt/{running.id}/finalise").get_data(as_text=True)
    assert re.search(r"<dt>Current deadline</dt><dd><strong>[^<]+ GMT</strong></dd>", page)
    svc.submit_attempt(session, running, NOW + timedelta(minutes=20), GRACE)
    page = staff_client.get(f"/staff/quiz/attempt/{running.id}/reopen").get_data(as_text=True)
    assert re.search(r"<dt>Deadline it had</dt><dd>[^<]+ GMT</dd>", page)


def test_the_audit_trail_shows_details_as_lines_escaped(staff_client, session, quiz, users):
    record_now(
        session,
        "override",
        NOW,
        actor_id=users["staff"],
        subject_id=users["alice"],
        quiz_id=quiz.id,
        ip="10.1.2.3",
        reason="<script>alert(1)</script> fire alarm",
        extra_minutes=10,
        no_time_limit=False,
        groups=["lab-a", "lab-b"],
        previous={"time_limit": 60},
        closes_at=None,
    )
    page = staff_client.get("/staff/audit?student=alice").get_data(as_text=True)
    (table,) = tables_of(page)
    assert table["headers"] == [
        "Time", "Action", "Student", "By", "Quiz", "Attempt", "Address and session", "Details",
    ]  # fmt: skip
    body = page[page.index("<tbody>") :]
    lines = re.findall(r'<span class="detail">(.*?)</span>\s*(?=<span class="detail">|</td>)', body)
    assert lines == [
        '<span class="detail-key">closes at:</span> none',
        '<span class="detail-key">extra minutes:</span> 10',
        '<span class="detail-key">groups:</span> [&#34;lab-a&#34;, &#34;lab-b&#34;]',
        '<span class="detail-key">no time limit:</span> false',
        '<span class="detail-key">previous:</span> {&#34;time_limit&#34;: 60}',
        '<span class="detail-key">reason:</span> &lt;script&gt;alert(1)&lt;/script&gt; fire alarm',
    ]
    assert "<script>alert" not in page
    assert '<td data-label="By">staff</td>' in body
    assert '{"closes_at"' not in page and json.dumps({"extra_minutes": 10}) not in page
