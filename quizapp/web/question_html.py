"""A question of the attempt page as HTML, kept per process while the student has not
touched it (issue 17: the start storm's first page renders 15 questions for every student).

The HTML of a question with no answer, no flag and no save is a function of immutable
data only: the question version's id (a changed question is a new version), the variant
the attempt fixed, the question's number, slot and marks on the page, its bank source
file and the application root URLs are made under. Those are the key, so the cache cannot
serve stale content. Two exceptions are never kept: a question with an answer, a flag or a
save (rendered every time, as before), and HTML with an image, whose URL may depend on a
bank file on disk (web/assets.py asset_url). The entries are bounded (oldest out first).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, current_app, request
from markupsafe import Markup

CACHE_SIZE = 4096  # one worker's distinct (version, variant, place) pairs; ~2 KB each
_EXTENSION = "quizapp_question_html"


def _render(q: dict[str, Any]) -> Markup:
    macro = current_app.jinja_env.get_template("questions/_section.html").module.render_question  # type: ignore[attr-defined]
    return Markup(macro(q))


def question_section(q: dict[str, Any]) -> Markup:
    """`{{ question_section(q) }}`: the `<section>` of one question of the attempt page."""
    untouched = not q["values"] and not q["flagged"] and q["seq"] is None and not q["saved_at"]
    if not untouched or "version_id" not in q:
        return _render(q)
    key = (
        q["version_id"],
        json.dumps(q["variant"], sort_keys=True, separators=(",", ":")),
        q["number"],
        q["slot"],
        str(q["marks"]),
        q["source"],
        request.script_root,
    )
    cache: dict[tuple[Any, ...], Markup] = current_app.extensions[_EXTENSION]
    html = cache.get(key)
    if html is None:
        html = _render(q)
        if "<img" in html:  # an image's URL may come from a file on disk: never kept
            return html
        while cache and len(cache) >= CACHE_SIZE:  # the oldest out first
            try:
                del cache[next(iter(cache))]
            except (KeyError, RuntimeError, StopIteration):  # another thread's turn
                break
        if len(cache) < CACHE_SIZE:
            cache[key] = html
    return html


def init_app(app: Flask) -> None:
    app.extensions[_EXTENSION] = {}
    app.add_template_global(question_section, "question_section")
