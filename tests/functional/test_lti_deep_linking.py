"""LTI Deep Linking 2.0 end to end: an instructor in the VLE's "add content" flow is
launched into quizapp's quiz picker, picks quizzes, and the VLE (tests/lti/platform.py
with tests/lti/deep_linking.py's return URL) receives a signed answer it verifies with
quizapp's published keys: one ltiResourceLink per quiz, with the custom parameter that
later launches open it by and a line item out of the quiz's maximum mark."""

from __future__ import annotations

import re
from typing import Any

import pytest

from quizapp.services.exports import student_scores
from quizapp.services.lti import rotate_tool_key
from tests.functional.helpers import csrf_of
from tests.lti.deep_linking import (
    ABSENT,
    MSG,
    SENT_DATA,
    ReturnUrl,
    form_of,
    post_back,
    request_claims,
)
from tests.lti.fixtures import ALICE, SAM, audit_actions, launch, quiz_id, refusals, start_login
from tests.lti.platform import INSTRUCTOR, LEARNER, Person, new_key

PICKER = "/lti/deep-linking/"
QUIZ_1, QUIZ_2 = "quiz1-foundations", "quiz2-gradients-and-shapes"


def deep_link(client, platform, person=SAM, **settings: Any):
    """The VLE's "add content" launch for `person`: the app's answer to the posted form."""
    return launch(client, platform, person, claims=request_claims(platform, **settings))


def picker(client, platform, **settings: Any) -> str:
    response = deep_link(client, platform, **settings)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == PICKER
    page = client.get(PICKER)
    assert page.status_code == 200
    return page.get_data(as_text=True)


def pick(client, page: str, quiz_ids: list[int], button: str = "add"):
    request_id = re.search(r'name="request_id"[^>]*value="([^"]+)"', page)
    assert request_id, "no request id on the picker"
    form: dict[str, Any] = {
        "csrf_token": csrf_of(page),
        "request_id": request_id.group(1),
        "quiz": [str(i) for i in quiz_ids],
        button: "1",
    }
    return client.post(PICKER, data=form)


def maximum(session, clock, key: str):
    """The quiz's maximum mark as the scores CSV gives it (a roster student who has not
    started: the quiz's own maximum)."""
    from datetime import timedelta

    # Read to the end: a stream left half-read holds a server-side cursor on PostgreSQL.
    rows = list(student_scores(session, quiz_id(session, key), clock(), timedelta(0)))
    return rows[0].maximum


def test_an_instructor_adds_two_quizzes_with_their_gradebook_columns(
    lti_client, platform, session, clock
):
    returned = ReturnUrl(platform)
    page = picker(lti_client, platform)
    for title in ("Quiz 1: Foundations", "Quiz 2: Gradients and shapes"):
        assert title in page
    assert 'type="checkbox"' in page and "Maximum mark" in page
    one, two = quiz_id(session, QUIZ_1), quiz_id(session, QUIZ_2)
    answer = pick(lti_client, page, [one, two])
    assert answer.status_code == 200, answer.get_data(as_text=True)
    back = answer.get_data(as_text=True)
    form = form_of(back)
    assert form.action == returned.url and set(form.fields) == {"JWT"}
    assert "Back to the VLE" in back and "lti_deep_linking.js" in back  # works without JS
    policy = answer.headers["Content-Security-Policy"]
    assert f"form-action 'self' {platform.url}" in policy
    assert post_back(back) == 200, returned.refused
    first, second = returned.items
    assert [first["custom"], second["custom"]] == [{"quiz": QUIZ_1}, {"quiz": QUIZ_2}]
    assert first["type"] == "ltiResourceLink" and first["title"] == "Quiz 1: Foundations"
    assert first["url"] == "http://localhost/lti/launch"
    assert first["lineItem"] == {
        "scoreMaximum": float(maximum(session, clock, QUIZ_1)),
        "label": "Quiz 1: Foundations",
        "resourceId": QUIZ_1,
        "tag": "quizapp",
    }
    assert second["lineItem"]["scoreMaximum"] == float(maximum(session, clock, QUIZ_2))
    # No dates for the VLE to enforce: quizapp's own rules decide who may still answer.
    assert not {"available", "submission"} & (first.keys() | second.keys())
    assert returned.received[-1]["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == SENT_DATA
    linked = [d for a, d in audit_actions(session) if a == "lti_deep_link"]
    assert [d["quiz"] for d in linked] == [QUIZ_1, QUIZ_2]
    # The answer was spent: posting the picker again does not make a second one.
    again = pick(lti_client, page, [one])
    assert again.status_code == 400 and "No quiz selection in progress" in again.get_data(
        as_text=True
    )


def test_a_later_launch_of_the_new_link_opens_the_quiz(lti_client, platform, session):
    returned = ReturnUrl(platform)
    page = picker(lti_client, platform)
    post_back(pick(lti_client, page, [quiz_id(session, QUIZ_2)]).get_data(as_text=True))
    [item] = returned.items
    # The VLE made the link with the item's custom parameters; a student opens it.
    student = lti_client.application.test_client()
    response = launch(student, platform, ALICE, custom=item["custom"])
    assert response.status_code == 302
    assert response.headers["Location"] == f"/quiz/{quiz_id(session, QUIZ_2)}"


def test_inside_the_vles_frame_the_picker_comes_after_the_cookie_check(lti_client, platform):
    _, form = platform.authorize(
        start_login(lti_client, platform), SAM, claims=request_claims(platform)
    )
    framed = {"Sec-Fetch-Dest": "iframe"}
    response = lti_client.post("/lti/launch", data=form, headers=framed)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/lti/launch/check")
    checked = lti_client.get(response.headers["Location"], headers=framed)
    assert checked.status_code == 302 and checked.headers["Location"] == PICKER
    assert lti_client.get(PICKER, headers=framed).status_code == 200


def test_the_answer_is_signed_by_the_newest_tool_key(lti_client, platform, session, clock):
    newest = rotate_tool_key(session, clock())
    returned = ReturnUrl(platform)
    page = picker(lti_client, platform)
    assert post_back(pick(lti_client, page, [quiz_id(session)]).get_data(as_text=True)) == 200
    assert returned.headers[-1]["kid"] == newest.kid


@pytest.mark.parametrize(
    "person",
    [
        ALICE,  # a learner
        Person("sub-pat", email="pat@uni.example", roles=(INSTRUCTOR,)),  # not staff here
        Person("sub-sam", email="sam@uni.example", roles=(LEARNER,)),  # staff, as a learner
    ],
    ids=["learner", "instructor-without-staff-account", "staff-launching-as-learner"],
)
def test_only_an_instructor_with_a_staff_account_may_add_quizzes(
    lti_client, platform, session, person
):
    response = deep_link(lti_client, platform, person)
    assert response.status_code == 403
    assert "Only course staff can add quizapp quizzes" in response.get_data(as_text=True)
    assert refusals(session) == ["deep_linking_refused"]
    assert lti_client.get(PICKER).status_code == 302  # not signed in


@pytest.mark.parametrize("broken", ["tampered", "expired"])
def test_a_broken_deep_linking_request_is_refused_like_any_launch(
    lti_client, platform, session, clock, broken
):
    claims = request_claims(platform)
    if broken == "tampered":
        forger = new_key(str(platform.keys[0].kid))
        response = launch(lti_client, platform, SAM, claims=claims, sign_with=forger)
        reason = "bad_signature"
    else:
        _, form = platform.authorize(start_login(lti_client, platform), SAM, claims=claims)
        clock.advance(seconds=300 + 61)
        response = lti_client.post("/lti/launch", data=form)
        reason = "expired"
    assert response.status_code == 400 and refusals(session) == [reason]
    assert lti_client.get(PICKER).status_code == 302


def test_a_request_that_takes_no_resource_links_is_refused(lti_client, platform, session):
    response = deep_link(lti_client, platform, accept_types=("link", "file"))
    assert response.status_code == 400
    assert refusals(session) == ["resource_links_not_accepted"]


def test_cancel_sends_an_empty_answer_with_a_message(lti_client, platform, session):
    returned = ReturnUrl(platform)
    page = picker(lti_client, platform)
    answer = pick(lti_client, page, [], button="cancel")
    assert answer.status_code == 200 and "Nothing added" in answer.get_data(as_text=True)
    assert post_back(answer.get_data(as_text=True)) == 200, returned.refused
    assert returned.items == []
    assert returned.received[-1][MSG] == "No quiz was added from quizapp."
    assert [a for a, _ in audit_actions(session) if a.startswith("lti_deep_link")] == [
        "lti_deep_link_cancelled"
    ]


def test_adding_nothing_asks_again(lti_client, platform):
    page = picker(lti_client, platform)
    answer = pick(lti_client, page, [])
    assert answer.status_code == 400 and "Pick a quiz to add" in answer.get_data(as_text=True)


def test_one_quiz_only_when_the_vle_takes_one(lti_client, platform, session):
    returned = ReturnUrl(platform, data=ABSENT)
    page = picker(lti_client, platform, accept_multiple=False, data=ABSENT)
    assert 'type="radio"' in page and 'type="checkbox"' not in page
    one, two = quiz_id(session, QUIZ_1), quiz_id(session, QUIZ_2)
    refused = pick(lti_client, page, [one, two])
    assert refused.status_code == 400 and "one quiz at a time" in refused.get_data(as_text=True)
    answer = pick(lti_client, page, [two])
    assert post_back(answer.get_data(as_text=True)) == 200, returned.refused
    assert [i["custom"] for i in returned.items] == [{"quiz": QUIZ_2}]


def test_no_line_item_when_the_vle_ignores_them(lti_client, platform, session):
    returned = ReturnUrl(platform)
    page = picker(lti_client, platform, accept_lineitem=False)
    assert "does not make gradebook columns" in page
    post_back(pick(lti_client, page, [quiz_id(session)]).get_data(as_text=True))
    [item] = returned.items
    assert "lineItem" not in item and item["custom"] == {"quiz": QUIZ_1}


def test_the_picker_needs_a_pending_request_of_this_session(lti_client, platform, session):
    # A staff member signed in by an ordinary launch has no request to answer.
    launch(lti_client, platform, SAM, custom={"quiz": QUIZ_1})
    page = lti_client.get(PICKER)
    assert page.status_code == 400 and "No quiz selection in progress" in page.get_data(
        as_text=True
    )


def test_a_pending_request_expires(lti_client, platform, session, clock):
    picker(lti_client, platform)
    clock.advance(seconds=60 * 60 + 1)
    assert lti_client.get(PICKER).status_code == 400


def test_the_picker_refuses_a_form_without_its_csrf_token(lti_client, platform, session):
    returned = ReturnUrl(platform)
    page = picker(lti_client, platform)
    request_id = re.search(r'name="request_id"[^>]*value="([^"]+)"', page).group(1)
    response = lti_client.post(
        PICKER, data={"request_id": request_id, "quiz": [str(quiz_id(session))], "add": "1"}
    )
    assert response.status_code == 400 and returned.received == []
    assert "JWT" not in response.get_data(as_text=True)


def test_students_cannot_reach_the_picker(lti_client, platform):
    launch(lti_client, platform, ALICE, custom={"quiz": QUIZ_1})
    assert lti_client.get(PICKER).status_code == 403


def test_a_form_of_an_earlier_request_is_not_answered(lti_client, platform, session):
    returned = ReturnUrl(platform)
    page = picker(lti_client, platform)
    stale = page.replace(
        'name="request_id" type="hidden" value="', 'name="request_id" type="hidden" value="x'
    )
    assert stale != page
    response = pick(lti_client, stale, [quiz_id(session)])
    assert response.status_code == 400 and "Pick again from this list" in response.get_data(
        as_text=True
    )
    assert returned.received == []
    # The page shown now answers the pending request.
    retry = pick(lti_client, response.get_data(as_text=True), [quiz_id(session)])
    assert retry.status_code == 200 and post_back(retry.get_data(as_text=True)) == 200
