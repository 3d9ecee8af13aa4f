"""Which mark counts: the one definition of "current mark", used by every reader.

Mark rows are never updated: a regrade, a manual mark or an accepted late answer adds a
row, and the older rows are the history. So the mark that counts for an (attempt, slot)
is the newest row, the one with the highest id.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, select
from sqlalchemy.orm import aliased

from quizapp.domain.timing import AttemptState
from quizapp.models import Attempt, Mark


def is_current_mark() -> ColumnElement[bool]:
    """A condition on Mark: no newer row exists for its attempt and slot. Written as an
    anti-join because PostgreSQL runs it as one hash join; a max(id) IN-subquery became
    150,000 index look-ups there at 10,000 attempts (0.4 s against 0.06 s)."""
    newer = aliased(Mark)
    return ~exists().where(
        newer.attempt_id == Mark.attempt_id,
        newer.slot == Mark.slot,
        newer.id > Mark.id,
    )


def newest_mark_ids(
    *,
    attempt_ids: Collection[int] | None = None,
    quiz_id: int | None = None,
    finished_only: bool = False,
) -> Select[Any]:
    """A subquery of the ids of the marks that count, for these attempts or a quiz's
    (use as `Mark.id.in_(newest_mark_ids(...))`; keep `attempt_ids` to a few hundred)."""
    newest = select(Mark.id).where(is_current_mark())
    if attempt_ids is not None:
        newest = newest.where(Mark.attempt_id.in_(list(attempt_ids)))
    if quiz_id is not None or finished_only:
        newest = newest.join(Attempt, Attempt.id == Mark.attempt_id)
        if quiz_id is not None:
            newest = newest.where(Attempt.quiz_id == quiz_id)
        if finished_only:
            newest = newest.where(Attempt.state != AttemptState.IN_PROGRESS)
    return newest
