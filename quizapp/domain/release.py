"""When students may see their marks, and the correct answers with feedback."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class ReleaseWhen(enum.StrEnum):
    IMMEDIATELY = "immediately"  # as soon as the attempt is finished
    AFTER_CLOSE = "after_close"  # once the quiz window has closed for everyone
    AT = "at"  # from a set time
    NEVER = "never"


@dataclass(frozen=True)
class ReleaseRule:
    when: ReleaseWhen
    at: datetime | None = None

    def is_released(self, now: datetime, closes_at: datetime | None) -> bool:
        if self.when is ReleaseWhen.IMMEDIATELY:
            return True
        if self.when is ReleaseWhen.AFTER_CLOSE:
            return closes_at is not None and now >= closes_at
        if self.when is ReleaseWhen.AT:
            return self.at is not None and now >= self.at
        return False

    def to_json(self) -> dict[str, str | None]:
        return {"when": self.when.value, "at": self.at.isoformat() if self.at else None}

    @classmethod
    def from_json(cls, data: dict[str, str | None]) -> ReleaseRule:
        at = data.get("at")
        return cls(ReleaseWhen(str(data["when"])), datetime.fromisoformat(at) if at else None)


class QuestionMarks(enum.StrEnum):
    """Whether released marks show per question while someone may still be working.

    A mark per question tells a student which of their answers are right, and so what
    the right answers are: passed on to a classmate still working (extra time, an
    override, a reopened attempt), that is the answer key. The safe default shows only
    the total until the window has closed for everyone (or the answers themselves are
    released); staff may choose otherwise, knowing what it reveals.
    """

    AFTER_CLOSE = "after_close"  # per question once closed for everyone; the total before
    WITH_TOTAL = "with_total"  # per question whenever the total is shown


@dataclass(frozen=True)
class ReleasePolicy:
    marks: ReleaseRule
    answers: ReleaseRule  # correct answers and feedback
    question_marks: QuestionMarks = QuestionMarks.AFTER_CLOSE

    def shows_question_marks(
        self, now: datetime, closes_at: datetime | None, *, marks: bool, answers: bool
    ) -> bool:
        """May a student see their mark per question now? `marks` and `answers`: are
        those released now; `closes_at`: when the quiz is closed for everyone."""
        if not marks:
            return False
        if answers or self.question_marks is QuestionMarks.WITH_TOTAL:
            return True
        return closes_at is not None and now >= closes_at

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"marks": self.marks.to_json(), "answers": self.answers.to_json()}
        # Left out at its default, so policies stored before the option existed (and
        # the YAML copies kept beside them, see policy_after_import) stay equal.
        if self.question_marks is not QuestionMarks.AFTER_CLOSE:
            data["question_marks"] = self.question_marks.value
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReleasePolicy:
        return cls(
            ReleaseRule.from_json(data["marks"]),
            ReleaseRule.from_json(data["answers"]),
            QuestionMarks(data.get("question_marks", QuestionMarks.AFTER_CLOSE.value)),
        )


DEFAULT_RELEASE = ReleasePolicy(
    marks=ReleaseRule(ReleaseWhen.AFTER_CLOSE), answers=ReleaseRule(ReleaseWhen.AFTER_CLOSE)
)


def policy_after_import(
    stored: Mapping[str, Any] | None, from_yaml: dict[str, Any]
) -> dict[str, Any]:
    """The release policy a quiz keeps when its YAML is imported again (both as stored
    JSON).

    Staff may change the policy in the browser; the stored policy then also keeps the
    YAML's policy of that moment under "yaml". A later import keeps the browser's choice
    as long as the YAML's own policy is still that one (an import that only fixes a
    title must not undo a release decided on the day), and applies the YAML's policy
    when the YAML's policy itself was changed since: the newer decision wins.
    """
    if stored is not None and _same_policy(stored.get("yaml"), from_yaml):
        return dict(stored)
    return dict(from_yaml)


def _same_policy(a: Mapping[str, Any] | None, b: Mapping[str, Any]) -> bool:
    """Equal as policies (so a field added with a default changes nothing)."""
    if a is None:
        return False
    try:
        return ReleasePolicy.from_json(a) == ReleasePolicy.from_json(b)
    except (KeyError, TypeError, ValueError):
        return a == b
