"""Long operations in the browser: progress streamed while the work runs in the request.

A view that may take a while (regrade, roster import) writes its work once, as a
generator of progress `Step`s that returns an `Outcome` (see services/progress.py), and
answers with `respond(work)`:

- a page that asked for progress (static/progress.js posts the same form with fetch()
  and `Accept: application/x-ndjson`) gets the steps as they happen, one JSON object a
  line, then one final line:

      {"progress": 1500, "total": 10000}      counted steps (at most one per 1 % or 0.25 s)
      {"stage": "Writing 40 new mark(s)"}      a phase without a count (the final write)
      {"done": true, "redirect": "/staff/…"}   applied: go there (a notice travels along)
      {"done": true, "html": "<!doctype…"}     a result page (a dry run, a preview)
      {"error": "…", "html": "…"}              refused, nothing applied (html optional)

- a plain form post (no JavaScript) runs the same work and gets the page or the
  redirect as before: progressive enhancement, one code path.

Stateless: nothing is kept between requests and no thread outlives one, so any worker
of any machine can serve any request. The work itself keeps "compute first, write at
the end" (no step is yielded inside a write transaction), so a slow or vanished client
never holds a database lock; a client that goes away mid-stream closes the generator,
which ends the read transaction and writes nothing.

Headers leave before the work starts, so a streamed answer can neither set a cookie nor
change its status code: the message for the next page travels in the redirect URL,
signed (`?notice=`), and is flashed by that page (see init_app).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import (
    Flask,
    Response,
    current_app,
    flash,
    redirect,
    request,
    stream_with_context,
)
from itsdangerous import BadSignature, URLSafeTimedSerializer

from quizapp.heartbeat import beat, paced
from quizapp.services.errors import ServiceError
from quizapp.services.progress import Steps, Throttle, run

NDJSON = "application/x-ndjson"
NOTICE_MAX_AGE = 600  # seconds: a notice is for the page the browser goes to next


@dataclass(frozen=True)
class Outcome:
    """How a long operation ended, for either kind of client."""

    html: str | None = None  # a page to show: a dry run, a preview, a form with errors
    redirect: str | None = None  # applied: where to go next
    notice: str = ""  # flashed on the next page
    category: str = "success"
    error: str = ""  # refused, nothing applied: why (the page, if any, says more)
    status: int = 200  # of the page, for a plain form post

    @classmethod
    def page(cls, html: str, status: int = 200) -> Outcome:
        return cls(html=html, status=status)

    @classmethod
    def done(cls, url: str, notice: str = "", category: str = "success") -> Outcome:
        return cls(redirect=url, notice=notice, category=category)

    @classmethod
    def refused(cls, message: str, html: str | None = None, status: int = 400) -> Outcome:
        return cls(html=html, error=message, status=status)


def wanted() -> bool:
    """Did the page ask for a progress stream? (Only an explicit Accept does: a browser's
    `*/*` or no header at all gets the plain page.)"""
    return any(value == NDJSON and quality > 0 for value, quality in request.accept_mimetypes)


def respond(work: Steps[Outcome]) -> Any:
    """Stream `work` to a page that asked for progress; run it for a plain form post."""
    if wanted():
        return stream(work)
    return answer(run(work))


def answer(outcome: Outcome) -> Any:
    """An outcome known at once (a form with errors, say), for either kind of client."""
    if wanted():
        return Response(_line(_final(outcome)), status=outcome.status, mimetype=NDJSON)
    if outcome.redirect is not None:
        if outcome.notice:
            flash(outcome.notice, outcome.category)
        return redirect(outcome.redirect)
    if outcome.html is not None:
        return outcome.html, outcome.status
    from quizapp.web.errors import error_response

    return error_response(outcome.status, outcome.error)


def error_line(message: str, status: int) -> Response:
    """An error answered before any work started (CSRF, login, 403, bad input)."""
    return Response(_line({"error": message}), status=status, mimetype=NDJSON)


def stream(work: Steps[Outcome]) -> Response:
    throttle = Throttle(fraction=0.01, seconds=0.25)

    def lines() -> Iterator[str]:
        try:
            while True:
                try:
                    step = next(work)
                except StopIteration as stop:
                    final = _final(stop.value)
                    break
                except ServiceError as exc:
                    final = {"error": exc.message}
                    break
                except Exception:
                    current_app.logger.exception("%s failed mid-stream", request.endpoint)
                    final = {"error": "Something went wrong on the server; nothing was applied."}
                    break
                # Every step, shown or not, is progress: it keeps a sync worker alive past
                # gunicorn's timeout (quizapp/heartbeat.py). A client that stops reading
                # still gets its worker killed at the timeout.
                beat()
                if step.stage:
                    yield _line({"stage": step.stage})
                elif throttle.due(step.done, step.total):
                    yield _line({"progress": step.done, "total": step.total})
        finally:
            # Also when the client went away: the work ends its transaction, unwritten.
            work.close()
        yield _line(final)

    return Response(
        # Lines wait for room on the connection, beating while the client takes them.
        stream_with_context(paced(lines(), request.environ)),
        mimetype=NDJSON,
        # Proxies such as nginx would otherwise hold the lines back until the end.
        headers={"X-Accel-Buffering": "no"},
    )


def _final(outcome: Outcome) -> dict[str, Any]:
    if outcome.error:
        final: dict[str, Any] = {"error": outcome.error}
        if outcome.html is not None:
            final["html"] = outcome.html
        return final
    if outcome.redirect is not None:
        url = outcome.redirect
        if outcome.notice:
            token = _signer().dumps([outcome.category, outcome.notice])
            url += ("&" if "?" in url else "?") + "notice=" + token
        return {"done": True, "redirect": url}
    return {"done": True, "html": outcome.html or ""}


def _line(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.config["SECRET_KEY"]), salt="quizapp.notice")


def init_app(app: Flask) -> None:
    @app.before_request
    def flash_notice() -> None:
        """A notice carried by a streamed operation's redirect (signed, so nobody can put
        words on a staff page with a crafted link) becomes a flash on this page."""
        token = request.args.get("notice")
        if not token or request.method != "GET":
            return
        try:
            category, message = _signer().loads(token, max_age=NOTICE_MAX_AGE)
        except (BadSignature, ValueError, TypeError):
            return
        flash(str(message), str(category))
