"""The password rule (NIST 800-63B / OWASP ASVS), token hashing and link expiry: pure."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest

from quizapp.domain.passwords import MAX_LENGTH, MIN_LENGTH, length, password_problem
from quizapp.services.invitations import (
    LinkState,
    absolute_link,
    link_path,
    link_state,
    new_token,
    token_digest,
)

GOOD = [
    "correct horse battery staple",  # words with spaces
    "tulip-orbit-cactus-ferry",
    "x" * 3 + "7Kp!q9ZmW2",  # no composition demanded, but nothing forbids it either
    "ÉtéÀParisAvecMaSœur",  # any script
    "私のパスワードはとても長いです",  # 15 code points
    "a" + "b7" * 5 + "zq",  # 13 characters, not a pure repeat
    "p" * 64 + "q" * 63 + "r",  # exactly the maximum, varied enough
]


@pytest.mark.parametrize("password", GOOD)
def test_good_passwords_pass(password):
    assert password_problem(password, username="alice", email="alice@uni.example") is None


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short pass", "too short"),
        ("elevenchars", "too short"),
        ("x" * (MAX_LENGTH + 1) + "yz", "too long"),
        ("password1234", "most common"),
        ("Password123!", "most common"),  # 12 characters, long enough but common
        ("Password12345!", "most common"),  # a common word with digits and symbols around it
        ("!!Welcome2024!!", "most common"),
        ("qwertyqwerty", "most common"),  # a common word twice
        ("qwertyuiop123", "most common"),
        ("iloveyou1234", "most common"),
        ("aaaaaaaaaaaa", "repeat or a run"),
        ("abababababab", "repeat or a run"),
        ("abcabcabcabc", "repeat or a run"),
        ("123456789012", "most common"),
        ("234567890123", "repeat or a run"),  # a run of digits, wrapping
        ("abcdefghijklmn", "repeat or a run"),
        ("zyxwvutsrqpon", "repeat or a run"),  # backwards
        ("qwertyuiopasdf", "repeat or a run"),  # along the keyboard
        ("my name is alice!", "username"),
        ("ALICE-loves-maths", "username"),  # any case
        ("a.l.i.c.e. is here", "username"),  # separators do not hide it
        ("adeyemi forever and ever", "name"),
        ("alice.a@uni is my password", "username"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password, why):
    problem = password_problem(
        password, username="alice", email="alice.a@uni.example", name="Alice Adeyemi"
    )
    assert problem is not None and why in problem, (password, problem)


def test_the_message_states_the_whole_rule():
    problem = password_problem("short", username="alice")
    assert problem is not None
    assert f"at least {MIN_LENGTH} characters" in problem and f"up to {MAX_LENGTH}" in problem
    assert "spaces" in problem  # tells people what is allowed, not only what is not


def test_length_counts_code_points_after_nfkc():
    decomposed = "e\u0301" * 11  # "é" typed as e + combining accent: one character each
    assert length(decomposed) == 11
    assert "too short" in (password_problem(decomposed) or "")
    assert length("ﬁ" * 6) == 12  # NFKC: the ligature is two letters


def test_short_usernames_do_not_refuse_ordinary_words():
    # "al" is in many words; a username must be at least 3 characters to be searched for.
    assert password_problem("a tall salt alarm", username="al") is None
    assert "username" in (password_problem("a tall bob alarm", username="bob") or "")


def test_token_is_long_random_and_url_safe():
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # 32 bytes, base64url


def test_only_the_tokens_sha256_is_kept():
    token = "abc-DEF_123"
    assert token_digest(token) == hashlib.sha256(token.encode()).hexdigest()
    assert len(token_digest(token)) == 64 and token not in token_digest(token)
    assert token_digest(token) != token_digest(token + "x")


def test_links():
    assert link_path("TOKEN") == "/invitation/TOKEN"
    assert absolute_link("https://quiz.example/", "T") == "https://quiz.example/invitation/T"
    assert absolute_link("", "T") == "/invitation/T"


NOW = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)


def _state(**overrides):
    facts = {
        "used_at": None,
        "expires_at": NOW + timedelta(days=7),
        "superseded": False,
        "active": True,
        "now": NOW,
    }
    return link_state(**(facts | overrides))


def test_link_state_expiry_and_use():
    assert _state() is LinkState.VALID
    assert _state(now=NOW + timedelta(days=7) - timedelta(seconds=1)) is LinkState.VALID
    assert _state(now=NOW + timedelta(days=7)) is LinkState.EXPIRED  # the expiry instant
    assert _state(used_at=NOW) is LinkState.USED
    # Used beats expired: the student is told it was used (and to sign in), not to ask.
    assert _state(used_at=NOW, now=NOW + timedelta(days=30)) is LinkState.USED
    assert _state(superseded=True) is LinkState.SUPERSEDED
    assert _state(active=False) is LinkState.DISABLED
