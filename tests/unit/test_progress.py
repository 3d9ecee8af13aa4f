"""Progress helpers: driving a step generator, throttling reports, and the pure parts of
static/progress.js (run under node when it is installed)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from quizapp.services.progress import Step, Throttle, run

PROGRESS_JS = Path(__file__).resolve().parents[2] / "quizapp" / "static" / "progress.js"


def _work(total: int):
    for done in range(total + 1):
        yield Step(done, total)
    yield Step(stage="Writing")
    return "result"


def test_run_returns_the_result_and_reports_counted_steps_only():
    seen: list[tuple[int, int]] = []
    assert run(_work(3), lambda done, total: seen.append((done, total))) == "result"
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert run(_work(2)) == "result"  # no callback: just the result


def test_run_lets_a_failure_through_and_closes_the_work():
    closed = []

    def failing():
        try:
            yield Step(0, 1)
            raise ValueError("bad row")
        finally:
            closed.append(True)

    with pytest.raises(ValueError, match="bad row"):
        run(failing())
    assert closed == [True]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_throttle_passes_the_first_every_tenth_and_the_last():
    clock = Clock()
    throttle = Throttle(fraction=0.1, seconds=1.0, clock=clock)
    passed = [done for done in range(0, 101) if throttle.due(done, 100)]
    assert passed == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert not throttle.due(100, 100), "the last report is passed on once"


def test_throttle_passes_a_slow_step_after_the_time_limit():
    clock = Clock()
    throttle = Throttle(fraction=0.1, seconds=1.0, clock=clock)
    assert throttle.due(0, 1000)
    clock.now = 0.5
    assert not throttle.due(1, 1000)
    clock.now = 1.6
    assert throttle.due(2, 1000)
    assert not throttle.due(2, 1000), "no movement, nothing new to say"


def test_throttle_copes_with_an_empty_total():
    throttle = Throttle(clock=Clock())
    assert throttle.due(0, 0)
    assert not throttle.due(0, 0)


JS_CASES = r"""
const p = require(process.argv[2]);
const out = {};
function counted(chunks) {
  const c = new p.CsvRowCounter();
  chunks.forEach((t) => c.push(t));
  return c.end();
}
out.plain = counted(["\ufeffa,b\r\n1,2\r\n", "3,4\r\n"]);
out.split_crlf = counted(["a,b\r", "\n1,2\r\n"]);
out.quoted_newlines = counted(['a,b\r\n1,"line one\r\nline two ""quoted""', '\r\nmore"\r\n2,x\r\n']);
out.no_final_newline = counted(["a,b\r\n1,2"]);
out.empty = counted(["\ufeff"]);
const s = new p.LineSplitter();
out.lines = [].concat(s.push('{"progress":1,'), s.push('"total":2}\n{"sta'), s.push('ge":"x"}\n\n{"done":true}'), s.end());
out.names = [
  p.filenameFrom('attachment; filename="quiz1-scores-20270118T1200Z.csv"', "x.csv"),
  p.filenameFrom("attachment; filename*=UTF-8''caf%C3%A9.csv", "x.csv"),
  p.filenameFrom('attachment; filename="../evil/name.csv"', "x.csv"),
  p.filenameFrom(null, "fallback.csv"),
];
let now = 0;
const a = new p.Announcer(() => now);
out.announced = [];
for (let done = 0; done <= 100; done += 1) {
  now += 150;  // a report every 150 ms
  if (a.due(done, 100)) out.announced.push(done);
}
out.again = a.due(100, 100);
const fast = new p.Announcer(() => now);
out.fast = [];
for (let done = 0; done <= 300; done += 1) {
  now += 5;  // 300 reports in 1.5 s
  if (fast.due(done, 300)) out.fast.push(done);
}
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_progress_js_counts_csv_rows_splits_lines_and_names_files(tmp_path):
    script = tmp_path / "cases.js"
    script.write_text(JS_CASES)
    result = subprocess.run(
        ["node", str(script), str(PROGRESS_JS)], capture_output=True, text=True, check=True
    )
    out = json.loads(result.stdout)
    assert out["plain"] == 3
    assert out["split_crlf"] == 2
    assert out["quoted_newlines"] == 3, "line breaks inside quotes are not rows"
    assert out["no_final_newline"] == 2
    assert out["empty"] == 0
    assert [json.loads(line) for line in out["lines"]] == [
        {"progress": 1, "total": 2},
        {"stage": "x"},
        {"done": True},
    ]
    assert out["names"] == [
        "quiz1-scores-20270118T1200Z.csv",
        "café.csv",
        ".._evil_name.csv",
        "fallback.csv",
    ]
    # The live text: at most every 10 % and never twice within a second; the end always.
    assert out["announced"] == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert out["again"] is False
    assert out["fast"] == [0, 200, 300]  # 1 s passed at report 200; then the end
