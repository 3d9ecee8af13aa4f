"""The test platform's gradebook: the AGS 2.0 score endpoint of its line item
(`POST <lineitem>/scores`, Assignment and Grade Services 2.0 §3.4), installed on a
Platform's route table.

It checks what a platform checks (a bearer token granting the score scope, the score
media type, the fields) and keeps every score it accepted, in order, and the result per
user as a platform does: a score whose timestamp is older than the one held is ignored
(§3.4.3). Hooks: `answer_with` (statuses to answer the next posts with, e.g. 500, then
normal service), `gate` (posts wait until it is set: a slow VLE), `delay`.
`duplicates()` lists scores accepted twice for the same user and timestamp.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.lti.platform import Platform, Reply, Request

SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
ACTIVITY = {"Initialized", "Started", "InProgress", "Submitted", "Completed"}
GRADING = {"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"}


@dataclass
class Gradebook:
    platform: Platform
    path: str = "/lineitems/1/scores"
    accepted: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # userId -> score
    ignored: list[dict[str, Any]] = field(default_factory=list)  # older than the result
    answer_with: list[int] = field(default_factory=list)
    refusal: dict[str, Any] = field(
        default_factory=lambda: {"error": "unknown_user", "error_description": "no such user"}
    )
    gate: threading.Event | None = None
    delay: float = 0.0
    posts: int = 0

    def install(self) -> Gradebook:
        self.platform.routes[("POST", self.path)] = self.receive
        return self

    def receive(self, request: Request) -> Reply:
        self.posts += 1
        if self.gate is not None:
            self.gate.wait(30)
        if self.delay:
            time.sleep(self.delay)
        if SCORE_SCOPE not in self.platform.bearer_scopes(request):
            return Reply(401, {"error": "invalid_token"})
        if request.headers.get("content-type", "").split(";")[0].strip() != SCORE_TYPE:
            return Reply(415, {"error": "unsupported media type"})
        if self.answer_with:
            status = self.answer_with.pop(0)
            body = self.refusal if 400 <= status < 500 else {"error": "internal error"}
            return Reply(status, body)
        score = request.json()
        assert isinstance(score.get("userId"), str) and score["userId"], score
        assert score["activityProgress"] in ACTIVITY, score
        assert score["gradingProgress"] in GRADING, score
        assert isinstance(score.get("timestamp"), str), score
        if "scoreGiven" in score:
            assert 0 <= score["scoreGiven"] <= score["scoreMaximum"], score
        held = self.results.get(score["userId"])
        if held is not None and score["timestamp"] < held["timestamp"]:
            self.ignored.append(score)
            return Reply(200)
        self.accepted.append(score)
        self.results[score["userId"]] = score
        return Reply(204)

    def duplicates(self) -> list[tuple[str, str]]:
        seen = Counter((s["userId"], s["timestamp"]) for s in self.accepted)
        return [key for key, count in seen.items() if count > 1]


def install_gradebook(platform: Platform, **options: Any) -> Gradebook:
    return Gradebook(platform, **options).install()
