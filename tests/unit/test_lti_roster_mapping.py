"""The VLE's membership list as roster rows (domain/lti_roster.py), and the Dynamic
Registration configuration check (services/lti_registration.check_configuration):
pure, case by case."""

from __future__ import annotations

import pytest

from quizapp.domain.lti_roster import (
    Account,
    Accounts,
    Member,
    MembershipProblem,
    next_page_url,
    read_members,
    rows_from_members,
)
from quizapp.services.lti_registration import RegistrationRefused, check_configuration

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (['<https://vle.example/m?p=2>; rel="next"'], "https://vle.example/m?p=2"),
        (['<https://a/d>; rel="differences", <https://a/n>; rel=next'], "https://a/n"),
        (['<https://a/1>; rel="first last"', '<https://a/2>; REL="prev next"'], "https://a/2"),
        (['<https://a/d>; rel="differences"'], None),
        ([], None),
        (["garbage"], None),
    ],
)
def test_next_page_url(headers, expected):
    assert next_page_url(headers) == expected


def test_read_members_takes_the_fields_nrps_defines():
    [m] = read_members(
        {
            "context": {"id": "c1"},
            "members": [
                {
                    "user_id": 42,
                    "roles": [LEARNER],
                    "given_name": "Ada",
                    "family_name": "Lovelace",
                    "email": " ada@uni.example ",
                    "lis_person_sourcedid": "al123",
                    "status": "Active",
                }
            ],
        },
        7,
        "c1",
    )
    assert (m.position, m.user_id, m.name, m.email, m.sourcedid) == (
        7,
        "42",
        "Ada Lovelace",
        "ada@uni.example",
        "al123",
    )
    assert m.active and m.is_learner and not m.is_instructor and m.groups is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "not a membership container"),
        ({"members": {}}, "no list of members"),
        ({"members": ["x"]}, "member 1 is not an object"),
        ({"members": [{"roles": []}]}, "no valid user_id"),
        ({"members": [{"user_id": "u", "roles": "Learner"}]}, "roles must be a list"),
        ({"members": [{"user_id": "u", "email": 5}]}, "email is not text"),
        ({"members": [{"user_id": "u", "name": "x" * 1001}]}, "longer than 1000"),
        ({"members": [{"user_id": "u", "groups": "A"}]}, "groups must be a list"),
        ({"context": {"id": "other"}, "members": []}, "another course"),
    ],
)
def test_read_members_refuses_a_malformed_page(body, message):
    with pytest.raises(MembershipProblem, match=message):
        read_members(body, 1, "c1")


def _member(position: int, sub: str, email: str = "", **kw) -> Member:
    return Member(position, sub, roles=kw.pop("roles", (LEARNER,)), email=email, **kw)


ALICE = Account("alice", "Alice A", "alice@uni.example", is_staff=False, linked_sub="sub-a")
SAM = Account("sam", "Sam", "sam@uni.example", is_staff=True)
PAT = Account("pat", "Pat", "Pat@Uni.example", is_staff=False)
ACCOUNTS = Accounts(
    by_sub={"sub-a": ALICE},
    by_email={"alice@uni.example": [ALICE], "sam@uni.example": [SAM], "pat@uni.example": [PAT]},
    by_username={"pat": PAT, "sam": SAM},
)


def test_learners_become_rows_matched_by_link_then_email():
    mapped = rows_from_members(
        [
            _member(1, "sub-a", "renamed@uni.example", name="Alice B"),  # linked: stays alice
            _member(2, "sub-p", "PAT@uni.example", name="Pat"),  # by e-mail, any case
            _member(3, "sub-n", "New@Uni.Example", name="New One"),
        ],
        ACCOUNTS,
    )
    assert [(r.username, r.email, r.name) for r in mapped.rows] == [
        ("alice", "renamed@uni.example", "Alice B"),
        ("pat", "PAT@uni.example", "Pat"),
        ("new@uni.example", "New@Uni.Example", "New One"),
    ]
    assert mapped.links == {"pat": "sub-p", "new@uni.example": "sub-n"}
    assert not mapped.has_groups and all(r.groups is None for r in mapped.rows)


def test_match_by_username_uses_the_sourcedid():
    mapped = rows_from_members(
        [
            _member(1, "sub-p", "p@x.example", sourcedid="pat", name="Pat"),
            _member(2, "sub-q", "q@x.example", sourcedid="q42", name="Q"),
            _member(3, "sub-r", "r@x.example", name="R"),
        ],
        ACCOUNTS,
        match="username",
    )
    assert [r.username for r in mapped.rows] == ["pat", "q42"]
    assert "lis_person_sourcedid" in mapped.skipped[0].message


def test_who_is_left_alone_or_skipped_and_why():
    mapped = rows_from_members(
        [
            _member(1, "sub-s", "sam@uni.example", roles=(INSTRUCTOR,), name="Sam"),
            _member(2, "sub-t", "ta@uni.example", roles=(TA,), name="Tess"),
            _member(3, "sub-x", "x@uni.example", status="Deleted", name="X"),
            _member(4, "sub-y", "", name="Y"),
            _member(5, "sub-p", "pat@uni.example", roles=(INSTRUCTOR,), name="Pat"),
            _member(6, "sub-s2", "sam@uni.example", name="Sam as learner"),
            _member(7, "sub-z", "z@uni.example", roles=("urn:x#Mentor",), name="Z"),
            _member(8, "sub-z", "z@uni.example", name="Z again"),
            _member(9, "sub-o", "alice@uni.example", name="Other Alice"),
        ],
        ACCOUNTS,
    )
    assert mapped.rows == [] and mapped.new_staff == []
    assert mapped.links == {"sam": "sub-s"}
    alone = {n.position: n.message for n in mapped.left_alone}
    assert alone[1].startswith("instructor: staff account sam")
    assert "instructor with no quizapp account" in alone[2]
    assert alone[3].startswith("deleted in the VLE: left alone")
    assert "not made staff" in alone[5]
    assert "neither learner nor instructor" in alone[7]
    skipped = {n.position: n.message for n in mapped.skipped}
    assert "did not share their e-mail" in skipped[4]
    assert "already member 1" in skipped[6]  # Sam's account, claimed by two VLE people
    assert "listed twice" in skipped[8]
    assert "linked to another person" in skipped[9]


def test_a_learner_with_a_staff_account_is_left_alone():
    mapped = rows_from_members([_member(1, "sub-s", "sam@uni.example", name="Sam")], ACCOUNTS)
    assert mapped.rows == [] and mapped.links == {}
    assert "staff account: not imported as a student" in mapped.left_alone[0].message


def test_instructors_as_staff_and_duplicates():
    mapped = rows_from_members(
        [
            _member(1, "sub-t", "Tess@uni.example", roles=(TA,), name="Tess"),
            _member(2, "sub-b", "b@uni.example", name="B"),
            _member(3, "sub-c", "B@uni.example", name="B twin"),
        ],
        ACCOUNTS,
        instructors_as_staff=True,
    )
    assert [(s.username, s.email) for s in mapped.new_staff] == [
        ("tess@uni.example", "Tess@uni.example")
    ]
    assert [r.username for r in mapped.rows] == ["b@uni.example"]
    assert "already member 2" in mapped.skipped[0].message


def test_groups_when_any_member_carries_them():
    mapped = rows_from_members(
        [
            _member(1, "sub-a", "alice@uni.example", name="A", groups=("S1", "S2")),
            _member(2, "sub-p", "pat@uni.example", name="P"),
            _member(3, "sub-q", "q@uni.example", name="Q", groups=("x" * 101,)),
        ],
        ACCOUNTS,
    )
    assert mapped.has_groups
    assert [(r.username, r.groups) for r in mapped.rows] == [("alice", ("S1", "S2")), ("pat", ())]
    assert "group name longer" in mapped.skipped[0].message


def test_group_forms_read_from_the_page():
    [a, b] = read_members(
        {
            "members": [
                {"user_id": "a", "groups": ["S1", " S1 ", ""]},
                {"user_id": "b", "group_enrollments": [{"group_id": "g1", "name": "Lab"}, {"group_id": 7}]},
            ]
        },
        1,
    )  # fmt: skip
    assert a.groups == ("S1",) and b.groups == ("Lab", "7")


CONFIG = {
    "issuer": "https://moodle.uni.example",
    "authorization_endpoint": "https://moodle.uni.example/mod/lti/auth.php",
    "token_endpoint": "https://moodle.uni.example/mod/lti/token.php",
    "jwks_uri": "https://moodle.uni.example/mod/lti/certs.php",
    "registration_endpoint": "https://moodle.uni.example/mod/lti/openid-registration.php",
    "https://purl.imsglobal.org/spec/lti-platform-configuration": {
        "product_family_code": "moodle",
        "messages_supported": [{"type": "LtiDeepLinkingRequest"}],
    },
}
URL = "https://moodle.uni.example/mod/lti/openid-configuration.php"


def test_a_configuration_on_its_issuers_site_is_accepted():
    checked = check_configuration(CONFIG, URL)
    assert checked.issuer == CONFIG["issuer"] and checked.product == "moodle"
    assert checked.messages_supported == ("LtiDeepLinkingRequest",)
    assert check_configuration(CONFIG, "https://moodle.uni.example:443/x").issuer


@pytest.mark.parametrize(
    ("change", "url", "message"),
    [
        ({"issuer": "https://evil.example"}, URL, "same site"),
        ({"issuer": "http://moodle.uni.example"}, URL, "same site"),
        ({}, "https://moodle.uni.example:8443/c", "same site"),
        ({"issuer": None}, URL, "names no issuer"),
        ({"jwks_uri": "ftp://moodle.uni.example/k"}, URL, "usable jwks_uri"),
        ({"registration_endpoint": None}, URL, "usable registration_endpoint"),
    ],
)
def test_a_configuration_that_cannot_be_trusted_is_refused(change, url, message):
    with pytest.raises(RegistrationRefused, match=message):
        check_configuration(CONFIG | change, url)
