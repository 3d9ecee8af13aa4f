"""Progress of long operations (regrade, roster import, exports), one shape for every
consumer.

A long service is written as a generator of `Step`s that *returns* its result:

    def plan_regrade_steps(...) -> Steps[RegradePlan]:
        ...
        yield Step(done, total)
        ...
        return plan

so the same code serves three consumers without threads: `run(steps, progress)` drives
it for the CLI and the plain form posts (calling the familiar `progress(done, total)`
callback), and the web layer streams each step to the browser while the work runs in
the request (quizapp/web/progress.py). A step with a `stage` announces a phase that has
no count, such as the final write, which is done in one short transaction that never
yields (so a slow client cannot keep the database's write lock held).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Step:
    """`done` of `total` items handled; or, with `stage`, a phase without a count."""

    done: int = 0
    total: int = 0
    stage: str = ""


Steps = Generator[Step, None, T]


def run(steps: Steps[T], progress: Progress | None = None) -> T:
    """Drive `steps` to its result, passing counted steps to `progress(done, total)`."""
    while True:
        try:
            step = next(steps)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if progress is not None and not step.stage:
            progress(step.done, step.total)


class Throttle:
    """Decides which progress reports are worth passing on: the first, the last, and
    otherwise one each time at least `fraction` of the total or `seconds` have passed
    since the last one reported. Keeps terminals and screen readers from being flooded."""

    def __init__(
        self,
        fraction: float = 0.1,
        seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fraction = fraction
        self.seconds = seconds
        self.clock = clock
        self._done: int | None = None
        self._at = 0.0

    def due(self, done: int, total: int) -> bool:
        moment = self.clock()
        last = self._done
        if last is not None:
            if done == last:
                return False
            if done < total:
                moved = total > 0 and (done - last) / total >= self.fraction
                if not moved and moment - self._at < self.seconds:
                    return False
        self._done, self._at = done, moment
        return True
