"""Which mark counts: the one definition of "current mark", used by every reader.

Mark rows are never updated: a regrade, a manual mark or an accepted late answer adds a
row, and the older rows are the history. So the mark that counts for an (attempt, slot)
is the newest row, the one with the highest id.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Select, func, select

from quizapp.domain.timing import AttemptState
from quizapp.models import Attempt, Mark


def newest_mark_ids(
    *,
    attempt_ids: Collection[int] | None = None,
    quiz_id: int | None = None,
    finished_only: bool = False,
) -> Select[Any]:
    """A subquery of the ids of the marks that count, for these attempts or a quiz's
    (use as `Mark.id.in_(newest_mark_ids(...))`; keep `attempt_ids` to a few hundred)."""
    newest = select(func.max(Mark.id)).group_by(Mark.attempt_id, Mark.slot)
    if attempt_ids is not None:
        newest = newest.where(Mark.attempt_id.in_(list(attempt_ids)))
    if quiz_id is not None or finished_only:
        newest = newest.join(Attempt, Attempt.id == Mark.attempt_id)
        if quiz_id is not None:
            newest = newest.where(Attempt.quiz_id == quiz_id)
        if finished_only:
            newest = newest.where(Attempt.state != AttemptState.IN_PROGRESS)
    return newest
