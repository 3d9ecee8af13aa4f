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


@dataclass(frozen=True)
class ReleasePolicy:
    marks: ReleaseRule
    answers: ReleaseRule  # correct answers and feedback

    def to_json(self) -> dict[str, dict[str, str | None]]:
        return {"marks": self.marks.to_json(), "answers": self.answers.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, dict[str, str | None]]) -> ReleasePolicy:
        return cls(ReleaseRule.from_json(data["marks"]), ReleaseRule.from_json(data["answers"]))


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
    if stored is not None and stored.get("yaml") == from_yaml:
        return dict(stored)
    return dict(from_yaml)
