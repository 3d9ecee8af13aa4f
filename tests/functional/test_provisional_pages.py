"""Provisional marks on every surface (issue 16, item 6) and the VLE upload files from
the staff pages and the command line (item 10): a 5-mark essay not yet marked makes
Alice's 21 out of 26 provisional wherever it is shown, and keeps it out of every VLE file."""

from __future__ import annotations

import csv
import io
import re
from html import unescape

from quizapp.models import Quiz
from tests.integration.test_provisional_marks import LATER, _quiz2, _take

ESSAY_TEXT = "Overfitting: the model learns the noise. Weight decay and early stopping help."


def _setup(session, users, clock) -> tuple[Quiz, int]:
    alice = _take(session, users["alice"], ESSAY_TEXT)
    _take(session, users["bob"], None)
    clock.set(LATER)
    return _quiz2(session), alice.id


def test_the_student_sees_a_provisional_score_and_which_question_is_not_marked(
    client, auth, session, users, sample_bank, clock
):
    quiz, attempt_id = _setup(session, users, clock)
    auth.login("alice")
    result = unescape(client.get(f"/attempt/{attempt_id}/result").get_data(as_text=True))
    assert (
        'Score: <strong>21</strong> out of 26 — <strong class="provisional">provisional</strong>: '
        "5 marks still to be marked" in result
    )
    assert "1 answer still to be marked by staff counts 0 until then" in result
    review = unescape(client.get(f"/attempt/{attempt_id}/review").get_data(as_text=True))
    assert (
        '— <strong class="provisional">provisional</strong>: 5 marks still to be marked' in review
    )
    assert review.count("Not marked yet") == 1
    assert "to be marked by staff)" not in review  # the old "0 out of 5 (to be marked by staff)"
    dashboard = unescape(client.get("/").get_data(as_text=True))
    assert (
        'score 21 / 26 (<strong class="provisional">provisional</strong>: 5 marks still to be '
        "marked)" in dashboard
    )


def test_staff_pages_say_which_scores_are_provisional(
    client, auth, session, users, sample_bank, clock
):
    quiz, attempt_id = _setup(session, users, clock)
    auth.login("staff")
    overview = unescape(client.get(f"/staff/quiz/{quiz.id}").get_data(as_text=True))
    summary = re.search(r'<p id="provisional-summary">(.*?)</p>', overview, re.S)
    assert (
        summary
        and "1 finished attempt(s) have answers still to be marked (1 answer(s))" in summary[1]
    )
    listed = re.search(r'<ul class="needs-staff-list">(.*?)</ul>', overview, re.S)
    assert listed and "alice" in listed[1] and "bob" not in listed[1]
    assert (
        'score 21 out of 26, <strong class="provisional">provisional</strong>: 5 marks still to be marked; 1 answer(s) to mark by hand'
        in listed[1]
    )
    student = unescape(client.get(f"/staff/quiz/student/{users['alice']}").get_data(as_text=True))
    assert '<strong class="provisional">Provisional</strong>: 5 marks still to be marked' in student
    bob_page = client.get(f"/staff/quiz/student/{users['bob']}").get_data(as_text=True)
    assert "Provisional" not in bob_page

    scores = client.get(f"/staff/quiz/{quiz.id}/scores.csv").get_data(as_text=True).lstrip("\ufeff")
    rows = {r["username"]: r for r in csv.DictReader(io.StringIO(scores))}
    assert (rows["alice"]["pending_marks"], rows["bob"]["pending_marks"]) == ("5", "0")
    book = (
        client.get(f"/staff/quiz/{quiz.id}/gradebook.csv").get_data(as_text=True).lstrip("\ufeff")
    )
    rows = {r["Username"]: r for r in csv.DictReader(io.StringIO(book))}
    assert (rows["alice"]["Pending marks"], rows["alice"]["Score"]) == ("5", "21")


def test_staff_download_vle_files_that_leave_provisional_scores_out(
    client, auth, session, users, sample_bank, clock
):
    quiz, _ = _setup(session, users, clock)
    auth.login("staff")
    index = client.get("/staff/").get_data(as_text=True)
    assert f'href="/staff/quiz/{quiz.id}/vle"' in index
    page = unescape(client.get(f"/staff/quiz/{quiz.id}/vle?column_id=4242").get_data(as_text=True))
    table = re.search(r'<table class="table" id="provisional-left-out">(.*?)</table>', page, re.S)
    assert table and "alice" in table[1] and "bob" not in table[1]
    assert "1 student(s) with a final score: one row each." in page
    assert f"/staff/quiz/{quiz.id}/blackboard.csv?column_id=4242" in page

    blackboard = client.get(f"/staff/quiz/{quiz.id}/blackboard.csv?column_id=4242")
    assert blackboard.status_code == 200 and blackboard.mimetype == "text/csv"
    assert blackboard.get_data(as_text=True) == (
        '"Last Name","First Name","Username","Quiz 2: Gradients and shapes [Total Pts: 26 Score] |4242"\r\n'
        '"Björk","Bob","bob","21"\r\n'
    )
    canvas = client.get(f"/staff/quiz/{quiz.id}/canvas.csv?column=Quiz%202&column_id=77")
    assert canvas.get_data(as_text=True).splitlines()[0] == (
        "Student,ID,SIS User ID,SIS Login ID,Section,Quiz 2 (77)"
    )
    moodle = client.get(f"/staff/quiz/{quiz.id}/moodle.csv").get_data(as_text=True)
    assert "alice" not in moodle and "bob" in moodle

    refused = client.get(f"/staff/quiz/{quiz.id}/blackboard.csv?column_id=12;DROP")
    assert refused.status_code == 400
    assert "is not a column id" in unescape(refused.get_data(as_text=True))
    bad_page = unescape(client.get(f"/staff/quiz/{quiz.id}/vle?column=A|B").get_data(as_text=True))
    assert "A column name cannot contain" in bad_page


def test_the_cli_writes_vle_files_and_lists_what_it_left_out(
    app, session, users, sample_bank, clock
):
    quiz, _ = _setup(session, users, clock)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["export", "csv", "blackboard", quiz.key, "--column-id", "31337"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith('"Last Name","First Name","Username"')
    assert "[Total Pts: 26 Score] |31337" in result.stdout and '"bob","21"' in result.stdout
    assert "alice" not in result.stdout
    assert "left out, provisional: alice (5 mark(s) still to be marked)" in result.stderr
    assert "1 rows written." in result.stderr
    bad = runner.invoke(args=["export", "csv", "canvas", quiz.key, "--column-id", "x1"])
    assert bad.exit_code != 0 and "is not a column id" in bad.output
    mixed = runner.invoke(args=["export", "csv", "scores", quiz.key, "--column", "Q"])
    assert mixed.exit_code != 0 and "for the VLE files only" in mixed.output
