"""The password rule, after NIST SP 800-63B (5.1.1.2) and OWASP ASVS (V2.1).

Length is what makes a password hard to guess, so the rule asks for length and nothing
else that a person has to work around: at least 12 characters (the length staff
passwords already needed), up to 128 so that a passphrase always fits, every character
allowed (spaces and any script; counted as Unicode code points after NFKC
normalisation, as NIST asks), no composition rules ("one digit, one capital") and no
expiry. What it refuses is what an attacker tries first: the most common passwords
(and those with a few digits or symbols stuck on), runs and repeats such as
"aaaaaaaaaaaa" or "123456789012", and passwords built on the username, the e-mail
address or the name of the service.

Pure: no Flask, no database. `password_problem` returns the message a person reads, or
None when the password is acceptable.
"""

from __future__ import annotations

import re
import unicodedata

MIN_LENGTH = 12
MAX_LENGTH = 128

RULE = (
    f"Use at least {MIN_LENGTH} characters (up to {MAX_LENGTH}); spaces and any "
    "characters are allowed, and a few unrelated words make a good password. "
    "Common passwords, runs like 123456 and your username are refused."
)

# Words that common passwords are made of: alone, doubled, or with digits and symbols
# around them ("password123!", "Welcome2024!!") they are the first guesses of any
# attacker. Compared with the letters of the password only, lower-cased.
_COMMON_WORDS = frozenset(
    """
    password passw0rd passwort motdepasse contrasena qwerty qwertz azerty asdfgh zxcvbn
    qwertyuiop asdfghjkl zxcvbnm letmein welcome iloveyou admin administrator root
    changeme secret default login master dragon monkey football baseball soccer
    sunshine princess shadow superman batman trustno abc abcdef abcdefgh abcdefghijkl
    student students university college school exam exams quiz quizzes quizapp test
    testing guest user username summer winter spring autumn january february march
    april may june july august september october november december monday tuesday
    hello hellohello whatever starwars pokemon computer internet freedom michael
    jennifer jordan hunter ranger charlie buster thomas robert daniel andrew george
    killer mustang access flower lovely loveme family friends forever blink myspace
    facebook google microsoft apple samsung chocolate cookie pepper ginger tigger
    liverpool arsenal chelsea manchester london england cricket rugby
    """.split()  # noqa: SIM905 (a block of words reads better than a list of strings)
)

# Whole passwords of 12 or more characters seen at the top of breach lists (shorter ones
# are refused by length already), compared after lower-casing and dropping spaces.
_COMMON_PASSWORDS = frozenset(
    """
    123456789012 1234567890123 12345678901234 123123123123 121212121212 123456123456
    111111111111 000000000000 987654321098 147258369147 159753159753 123654789123
    1q2w3e4r5t6y 1q2w3e4r5t6y7u 1qaz2wsx3edc 1qaz2wsx3edc4rfv zaq12wsxcde3 zaq1zaq1zaq1
    qazwsxedcrfv qazwsxedcrfvtgb 1qazxsw23edc qwertyuiop12 qwertyuiop123 qwerty123456
    q1w2e3r4t5y6 a1b2c3d4e5f6 abc123abc123 abcd1234abcd iloveyou1234 iloveyouforever
    trustno1trustno1 passwordpassword password1234 password12345 password123456
    welcome12345 welcome123456 letmein12345 changeme1234 administrator1 superman1234
    blink182blink182 princess1234 football1234 baseball1234 sunshine1234 starwars1234
    correcthorse thequickbrownfox thequickbrownfoxjumpsoverthelazydog
    ihateyou1234 mypassword123 mypassword1234 whatever1234 asdfghjkl123 asdfghjkl1234
    zxcvbnm12345 zxcvbnm123456 1234qwerasdfzxcv qwerasdfzxcv asdfasdfasdf qweqweqweqwe
    """.split()  # noqa: SIM905 (a block of words reads better than a list of strings)
)

# Runs that keyboards and counting make easy; a password that is one slice of these
# (either direction) is a run, however long.
_RUNS = (
    "abcdefghijklmnopqrstuvwxyz",
    "0123456789" * 3,
    "qwertyuiopasdfghjklzxcvbnm",
    "qwertzuiopasdfghjklyxcvbnm",
    "azertyuiopqsdfghjklmwxcvbn",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
)

_SEPARATORS = re.compile(r"[\W_]+")


def normalise(password: str) -> str:
    """NFKC, as NIST asks, so that the same password typed on two keyboards (a
    composed or decomposed accent) is the same password."""
    return unicodedata.normalize("NFKC", password)


def length(password: str) -> int:
    """Characters as a person counts them: Unicode code points after normalisation."""
    return len(normalise(password))


def password_problem(
    password: str, *, username: str = "", email: str = "", name: str = ""
) -> str | None:
    """Why `password` cannot be used by this account, as one sentence for the person
    choosing it, or None when it is acceptable."""
    text = normalise(password)
    if len(text) < MIN_LENGTH:
        return f"The password is too short: use at least {MIN_LENGTH} characters. {RULE}"
    if len(text) > MAX_LENGTH:
        return f"The password is too long: use at most {MAX_LENGTH} characters."
    folded = text.casefold()
    compact = _SEPARATORS.sub("", folded)
    for label, value in _personal_words(username, email, name):
        if value in compact:
            return f"The password contains your {label}: choose one that does not. {RULE}"
    if _is_common(compact):
        return f"This password is one of the most common ones: choose another. {RULE}"
    if _is_repetitive(compact):
        return f"The password is a repeat or a run (like aaaa or 1234): choose another. {RULE}"
    return None


def _personal_words(username: str, email: str, name: str) -> list[tuple[str, str]]:
    # Short fragments (a two-letter username, a one-letter name) would refuse too much.
    words: list[tuple[str, str]] = []
    candidates = [("username", username), ("e-mail address", email.split("@", 1)[0])]
    candidates += [("name", part) for part in name.split()]
    for label, raw in candidates:
        value = _SEPARATORS.sub("", normalise(raw).casefold())
        if len(value) >= 4 or (label == "username" and len(value) >= 3):
            words.append((label, value))
    return words


def _is_common(compact: str) -> bool:
    if compact in _COMMON_PASSWORDS:
        return True
    # A common word with only digits or symbols around it, or the same word twice:
    # "password123!", "!!welcome2024", "qwertyqwerty".
    letters = re.sub(r"[\W\d_]+", "", compact)
    if letters in _COMMON_WORDS:
        return True
    half = len(letters) // 2
    return (
        len(letters) % 2 == 0
        and letters[:half] == letters[half:]
        and letters[:half] in _COMMON_WORDS
    )


def _is_repetitive(compact: str) -> bool:
    if len(set(compact)) <= 2:
        return True
    # The same short chunk over and over: "abcabcabcabc", "ab12ab12ab12".
    for size in range(1, 7):
        if len(compact) % size == 0 and compact[:size] * (len(compact) // size) == compact:
            return True
    return any(compact in run or compact in run[::-1] for run in _RUNS)
