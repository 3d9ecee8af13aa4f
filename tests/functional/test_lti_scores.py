"""Marks land in the VLE's gradebook (LTI AGS 2.0) through the score outbox: queued in
the transaction that changes the marks (submit, timeout sweep, manual mark, regrade,
release), posted later by the sender (`quizapp lti scores send`), never in a request.
The platform's gradebook (tests/lti/ags_service.py) checks token, media type and fields,
keeps every score it accepted and reports duplicates."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from quizapp.domain.lti_scores import ScoreState
from quizapp.domain.release import ReleasePolicy, ReleaseRule, ReleaseWhen
from quizapp.models import Attempt, LtiScore, User
from quizapp.services.attempts import finalise_expired, save_answers, start_attempt
from quizapp.services.lti_access import AccessTokens
from quizapp.services.lti_scores import _claim, send_due
from quizapp.services.marking import mark_answer
from quizapp.services.regrade import RegradeMode, RegradeOptions, commit_regrade
from quizapp.services.release import set_release_policy
from tests.functional.helpers import csrf_of, slot_of
from tests.functional.helpers import start_attempt as start_in_browser
from tests.lti.ags_service import Gradebook, install_gradebook
from tests.lti.fixtures import ALICE, SAM, audit_actions, launch, quiz_id
from tests.lti.platform import AGS_ENDPOINT, AGS_SCOPES, Person, Platform

GRACE = timedelta(seconds=10)
PAT = Person("sub-pat", email="pat@uni.example", name="Pat Student", username="pat")
QUIZ1 = "quiz1-foundations"
QUIZ2 = "quiz2-gradients-and-shapes"
QUIZ2_OPENS = datetime(2027, 1, 25, 10, 0, tzinfo=UTC)


@pytest.fixture
def gradebook(platform: Platform) -> Gradebook:
    return install_gradebook(platform)


def rows(session: Session) -> list[LtiScore]:
    session.rollback()
    fresh = select(LtiScore).order_by(LtiScore.id).execution_options(populate_existing=True)
    return list(session.scalars(fresh))


def user_id(session: Session, username: str) -> int:
    return int(session.scalars(select(User.id).where(User.username == username)).one())


def send(session: Session, clock: Any, **options: Any):  # type: ignore[no-untyped-def]
    report = send_due(session, clock(), tokens=options.pop("tokens", AccessTokens()), **options)
    session.rollback()
    return report


def submit_in_browser(client, attempt_id: int, page: str) -> None:  # type: ignore[no-untyped-def]
    response = client.post(f"/attempt/{attempt_id}/submit", data={"csrf_token": csrf_of(page)})
    assert response.status_code == 302, response.get_data(as_text=True)


def launched_and_submitted(lti_client, platform, session, key: str = QUIZ1) -> int:  # type: ignore[no-untyped-def]
    assert launch(lti_client, platform, ALICE, custom={"quiz": key}).status_code == 302
    attempt_id, page = start_in_browser(lti_client, quiz_id(session, key))
    submit_in_browser(lti_client, attempt_id, page)
    return attempt_id


def score_posts(platform: Platform) -> list[Any]:
    return [r for r in platform.requests if r.path.endswith("/scores")]


def test_a_submit_queues_the_score_and_the_sender_posts_it_to_the_line_item(
    lti_client, lti_app, platform, gradebook, session, clock
):
    attempt_id = launched_and_submitted(lti_client, platform, session)
    # The submit made no call to the VLE: no token, no score.
    assert score_posts(platform) == [] and platform.token_requests == 0
    [row] = rows(session)
    attempt = session.get(Attempt, attempt_id)
    assert row.state is ScoreState.PENDING and row.attempt_id == attempt_id
    assert row.user_id == user_id(session, "alice") and row.score_given == attempt.score

    result = lti_app.test_cli_runner().invoke(args=["lti", "scores", "send"])
    assert result.exit_code == 0 and "Sent 1 score(s)" in result.output, result.output
    [posted] = gradebook.accepted
    assert posted["userId"] == ALICE.sub
    assert posted["scoreGiven"] == float(attempt.score)
    assert posted["scoreMaximum"] == float(attempt.max_score)
    assert posted["activityProgress"] == "Completed"  # one attempt allowed, used
    assert posted["gradingProgress"] == "FullyGraded"
    assert datetime.fromisoformat(posted["timestamp"]) == attempt.finished_at
    [post] = score_posts(platform)
    assert post.headers["content-type"] == "application/vnd.ims.lis.v1.score+json"
    [row] = rows(session)
    assert row.state is ScoreState.SENT and row.sent_at == clock() and row.tries == 1
    sent = [d for action, d in audit_actions(session) if action == "lti_score_sent"]
    assert len(sent) == 1 and sent[0]["score"] == float(attempt.score)
    # Nothing is due any more: a second run posts nothing.
    assert send(session, clock).sent == 0 and len(gradebook.accepted) == 1


def test_a_line_item_url_with_a_query_gets_scores_before_the_query(
    lti_client, platform, gradebook, session, clock
):
    claim = {
        "scope": AGS_SCOPES,
        "lineitem": platform.url + "/lineitems/1?type_id=7",
        "lineitems": platform.url + "/lineitems",
    }
    launch(lti_client, platform, ALICE, custom={"quiz": QUIZ1}, claims={AGS_ENDPOINT: claim})
    attempt_id, page = start_in_browser(lti_client, quiz_id(session))
    submit_in_browser(lti_client, attempt_id, page)
    assert send(session, clock).sent == 1
    [post] = score_posts(platform)
    assert post.path == "/lineitems/1/scores" and post.query == {"type_id": "7"}


def test_the_timeout_sweeper_queues_the_score(lti_client, platform, gradebook, session, clock):
    launch(lti_client, platform, ALICE, custom={"quiz": QUIZ1})
    attempt_id, _ = start_in_browser(lti_client, quiz_id(session))
    clock.advance(minutes=61)
    session.rollback()  # a fresh snapshot: the attempt began after quiz_id's read
    assert finalise_expired(session, clock(), GRACE) == 1
    assert score_posts(platform) == []
    assert send(session, clock).sent == 1
    attempt = session.get(Attempt, attempt_id)
    [posted] = gradebook.accepted
    assert posted["scoreGiven"] == float(attempt.score)
    assert datetime.fromisoformat(posted["timestamp"]) == clock()  # when the mark was set


def test_a_manual_mark_sends_the_new_score_with_a_later_timestamp(
    lti_client, platform, gradebook, session, clock
):
    attempt_id = launched_and_submitted(lti_client, platform, session)
    assert send(session, clock).sent == 1
    clock.advance(minutes=5)
    slot = slot_of(session, attempt_id, "autodiff-reverse-mode-cost")
    mark_answer(session, attempt_id, slot, "1", "generous", user_id(session, "sam"), clock())
    [row] = rows(session)
    assert row.state is ScoreState.PENDING and row.revision == 2
    assert send(session, clock).sent == 1
    first, second = gradebook.accepted
    assert second["scoreGiven"] == first["scoreGiven"] + 1
    assert second["timestamp"] > first["timestamp"]
    assert gradebook.results[ALICE.sub] == second and gradebook.duplicates() == []


def test_a_committed_regrade_sends_the_new_scores(lti_client, platform, gradebook, session, clock):
    launched_and_submitted(lti_client, platform, session)
    assert send(session, clock).sent == 1
    clock.advance(minutes=5)
    options = RegradeOptions("autodiff-reverse-mode-cost", RegradeMode.FULL_MARKS)
    plan = commit_regrade(
        session, quiz_id(session), options, user_id(session, "sam"), clock(), GRACE
    )
    assert plan.committed
    assert send(session, clock).sent == 1
    first, second = gradebook.accepted
    assert second["scoreGiven"] == first["scoreGiven"] + 1


def test_a_policy_that_hides_marks_posts_nothing_until_they_are_released(
    lti_client, platform, gradebook, session, clock
):
    hidden = ReleasePolicy(ReleaseRule(ReleaseWhen.NEVER), ReleaseRule(ReleaseWhen.NEVER))
    set_release_policy(session, quiz_id(session), hidden, None, clock())
    launched_and_submitted(lti_client, platform, session)
    [row] = rows(session)
    assert row.state is ScoreState.HELD
    assert send(session, clock).sent == 0 and gradebook.posts == 0
    # After the close, still never: held.
    clock.advance(hours=30)
    assert send(session, clock).sent == 0 and rows(session)[0].state is ScoreState.HELD
    # Released after the window closes (it has closed): releasing queues them.
    later = ReleasePolicy(ReleaseRule(ReleaseWhen.AFTER_CLOSE), ReleaseRule(ReleaseWhen.NEVER))
    set_release_policy(session, quiz_id(session), later, user_id(session, "sam"), clock())
    assert rows(session)[0].state is ScoreState.PENDING
    assert send(session, clock).sent == 1 and len(gradebook.accepted) == 1


def test_scores_held_until_the_window_closes_go_once_it_has(
    lti_client, platform, gradebook, session, clock
):
    after_close = ReleasePolicy(
        ReleaseRule(ReleaseWhen.AFTER_CLOSE), ReleaseRule(ReleaseWhen.NEVER)
    )
    set_release_policy(session, quiz_id(session), after_close, None, clock())
    launched_and_submitted(lti_client, platform, session)
    assert send(session, clock).sent == 0 and rows(session)[0].state is ScoreState.HELD
    clock.set(datetime(2027, 1, 19, 10, 1, tzinfo=UTC))  # the 24-hour window has closed
    assert send(session, clock).sent == 1 and len(gradebook.accepted) == 1


def test_an_essay_quiz_is_pending_manual_until_marked_then_fully_graded(
    lti_client, platform, gradebook, session, clock
):
    clock.set(QUIZ2_OPENS + timedelta(minutes=5))
    launch(lti_client, platform, ALICE, custom={"quiz": QUIZ2})
    alice = session.get(User, user_id(session, "alice"))
    attempt = start_attempt(session, quiz_id(session, QUIZ2), alice, clock(), GRACE)
    essay = slot_of(session, attempt.id, "reg-overfitting-essay")
    text = "Overfitting is when a model learns the noise of its training data. " * 3
    save_answers(session, attempt.id, {essay: [text]}, 1, clock(), GRACE, owner_id=alice.id)
    page = lti_client.get(f"/attempt/{attempt.id}/submit").get_data(as_text=True)
    submit_in_browser(lti_client, attempt.id, page)
    assert send(session, clock).sent == 1
    assert gradebook.accepted[-1]["gradingProgress"] == "PendingManual"
    clock.advance(minutes=30)
    mark_answer(session, attempt.id, essay, "4", "good", user_id(session, "sam"), clock())
    assert send(session, clock).sent == 1
    final = gradebook.accepted[-1]
    assert final["gradingProgress"] == "FullyGraded"
    assert final["scoreGiven"] == gradebook.accepted[0]["scoreGiven"] + 4


def test_a_platform_that_answers_500_then_recovers_loses_nothing_and_posts_no_duplicate(
    lti_client, platform, gradebook, session, clock
):
    gradebook.answer_with = [500, 503]
    attempt_id = launched_and_submitted(lti_client, platform, session)
    report = send(session, clock)
    assert (report.sent, report.retrying) == (0, 1)
    [row] = rows(session)
    assert row.state is ScoreState.PENDING and row.tries == 1
    assert row.next_try_at == clock() + timedelta(minutes=1) and "HTTP 500" in row.last_error
    assert send(session, clock).retrying == 0  # not due yet: nothing posted
    assert gradebook.posts == 1
    clock.advance(minutes=1)
    assert send(session, clock).retrying == 1  # 503 this time; backoff doubles
    assert rows(session)[0].next_try_at == clock() + timedelta(minutes=2)
    # A mark changes meanwhile: the newer score replaces the unsent one.
    clock.advance(seconds=30)
    slot = slot_of(session, attempt_id, "autodiff-reverse-mode-cost")
    mark_answer(session, attempt_id, slot, "1", "", user_id(session, "sam"), clock())
    report = send(session, clock)
    assert report.sent == 1
    [accepted] = gradebook.accepted  # only the newest score, once
    assert accepted["scoreGiven"] == float(session.get(Attempt, attempt_id).score)
    assert gradebook.duplicates() == [] and gradebook.posts == 3
    actions = [a for a, _ in audit_actions(session) if a.startswith("lti_score")]
    assert actions == ["lti_score_retry", "lti_score_retry", "lti_score_sent"]
    clock.advance(hours=2)
    assert send(session, clock).sent == 0


def test_a_refused_score_is_kept_shown_to_staff_and_resent_on_request(
    lti_client, lti_app, platform, gradebook, session, clock
):
    gradebook.answer_with = [400]
    launched_and_submitted(lti_client, platform, session)
    report = send(session, clock)
    assert report.failed == 1
    [row] = rows(session)
    assert row.state is ScoreState.FAILED and "no such user" in row.last_error
    failed = [d for a, d in audit_actions(session) if a == "lti_score_failed"]
    assert failed and failed[0]["status"] == 400
    clock.advance(hours=3)
    assert send(session, clock).sent == 0  # refused for good: not retried by itself

    staff = lti_app.test_client()
    assert launch(staff, platform, SAM).status_code == 302  # an instructor: staff pages
    index = staff.get("/staff/").get_data(as_text=True)
    url = f"/staff/quiz/{quiz_id(session)}/vle-gradebook"
    assert f'href="{url}"' in index
    page = staff.get(url).get_data(as_text=True)
    assert "0</strong> mark(s) waiting for Test VLE" in page and "no such user" in page
    assert 'data-state="failed"' in page
    assert staff.post(url + "/resend", data={}).status_code == 400  # no CSRF token
    response = staff.post(url + "/resend", data={"csrf_token": csrf_of(page)})
    assert response.status_code == 302
    assert rows(session)[0].state is ScoreState.PENDING
    assert [a for a, _ in audit_actions(session)].count("lti_score_resend") == 1
    assert send(session, clock).sent == 1 and len(gradebook.accepted) == 1
    assert 'data-state="sent"' in staff.get(url).get_data(as_text=True)


def test_a_token_the_platform_refuses_is_retried_until_it_accepts(
    lti_client, platform, gradebook, session, clock
):
    launched_and_submitted(lti_client, platform, session)
    keys = platform.tool_jwks
    platform.tool_jwks = lambda: {"keys": []}  # the VLE does not know our key (yet)
    report = send(session, clock)
    assert report.retrying == 1 and gradebook.posts == 0
    [row] = rows(session)
    assert "token request refused" in row.last_error and "bad signature" in row.last_error
    platform.tool_jwks = keys
    clock.advance(minutes=1)
    assert send(session, clock).sent == 1 and len(gradebook.accepted) == 1


def test_a_slow_platform_never_slows_a_submit(
    lti_client, lti_app, platform, gradebook, session, clock
):
    """The VLE hangs on the first score; while the sender waits for it, another
    student submits and gets their answer at once: the submit path does no HTTP."""
    launched_and_submitted(lti_client, platform, session)
    gradebook.gate = threading.Event()
    database = lti_app.extensions["quizapp_db"]
    done: list[Any] = []

    def sender() -> None:
        with database.new_session() as own:
            done.append(send_due(own, clock(), tokens=AccessTokens()))

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while gradebook.posts == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert gradebook.posts == 1  # the sender is inside the VLE's slow answer
        other = lti_app.test_client()
        assert launch(other, platform, PAT, custom={"quiz": QUIZ1}).status_code == 302
        attempt_id, page = start_in_browser(other, quiz_id(session))
        requests_before = len(platform.requests)
        began = time.monotonic()
        submit_in_browser(other, attempt_id, page)
        took = time.monotonic() - began
        assert len(platform.requests) == requests_before  # no call to the VLE
        # The VLE's answer is held until this test lets it go, so a submit that waited
        # on it would take the HTTP timeout (10 s); the margin is for a busy machine.
        assert took < 8.0, f"a submit took {took:.2f} s while the VLE hung"
        assert not done  # the sender is still waiting
    finally:
        gradebook.gate.set()
        thread.join(30)
    assert done and done[0].sent >= 1  # Alice's, and Pat's if it was queued in time
    send(session, clock)
    assert {s["userId"] for s in gradebook.accepted} == {ALICE.sub, PAT.sub}


def test_a_claimed_score_is_not_taken_by_a_second_sender(
    lti_client, platform, gradebook, session, clock
):
    launched_and_submitted(lti_client, platform, session)
    claimed = _claim(session, clock(), 10)  # a sender that took it and has not answered
    session.rollback()
    assert len(claimed) == 1
    assert send(session, clock).sent == 0 and gradebook.posts == 0
    clock.advance(minutes=11)  # the lease ran out (that sender died): taken over
    assert send(session, clock).sent == 1


def test_a_quiz_without_a_vle_link_queues_nothing(client, auth, users, sample_bank, session):
    auth.login("alice")
    attempt_id, page = start_in_browser(client)
    submit_in_browser(client, attempt_id, page)
    assert rows(session) == []


def test_a_late_answer_accepted_by_staff_sends_the_new_score(
    lti_client, platform, gradebook, session, clock
):
    from quizapp.models import AnswerLog
    from quizapp.services.late_answers import accept_refused_answer
    from tests.functional.helpers import csrf_of, seq_base

    launch(lti_client, platform, ALICE, custom={"quiz": QUIZ1})
    attempt_id, page = start_in_browser(lti_client, quiz_id(session))
    session.rollback()  # a fresh snapshot: the attempt began after quiz_id's read
    slot = slot_of(session, attempt_id, "cnn-output-width")  # numeric, answer 16
    deadline = session.get(Attempt, attempt_id).deadline_at
    clock.set(deadline + timedelta(seconds=20))  # beyond the grace: refused, kept
    late = lti_client.put(
        f"/api/attempts/{attempt_id}/answers/{slot}",
        json={"value": "16", "seq": seq_base(page) + 1},
        headers={"X-CSRFToken": csrf_of(page)},
    )
    assert late.status_code == 409
    session.rollback()
    finalise_expired(session, clock(), GRACE)
    assert send(session, clock).sent == 1 and gradebook.accepted[0]["scoreGiven"] == 0

    log_id = session.scalars(select(AnswerLog.id).where(AnswerLog.attempt_id == attempt_id)).one()
    sam = session.get(User, user_id(session, "sam"))
    clock.advance(minutes=10)
    accept_refused_answer(session, log_id, clock(), sam, "campus network outage")
    [row] = rows(session)
    assert row.state is ScoreState.PENDING and row.revision == 2
    assert send(session, clock).sent == 1
    first, second = gradebook.accepted
    assert second["scoreGiven"] > first["scoreGiven"] == 0
    assert second["scoreGiven"] == float(session.get(Attempt, attempt_id).score)
