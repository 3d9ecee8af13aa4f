"""Static files with a content fingerprint in their URL, cached by browsers for a year.

Every page used to make the browser revalidate app.css and the scripts with an app
worker (Flask's default is no-cache): on exam day that is a request per file per page
for each of hundreds of students. `url_for("static", ...)` now adds `?v=<hash of the
file>`; a URL with the current fingerprint is immutable, so it may be cached for a year,
and a deploy that changes a file changes its URL, so no page runs stale JavaScript.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Flask, request

YEAR = 365 * 24 * 3600


@lru_cache(maxsize=256)
def _fingerprint(path: Path, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def fingerprint(static_root: Path, filename: str) -> str | None:
    """The content hash of a file under `static_root` (resolved), or None if it is not one."""
    path = (static_root / filename).resolve()
    if static_root not in path.parents or not path.is_file():
        return None
    stat = path.stat()
    return _fingerprint(path, stat.st_mtime_ns, stat.st_size)


def init_app(app: Flask) -> None:
    assert app.static_folder is not None
    static_folder = Path(app.static_folder).resolve()

    @app.url_defaults
    def add_fingerprint(endpoint: str, values: dict[str, Any]) -> None:
        if endpoint == "static" and "filename" in values and "v" not in values:
            version = fingerprint(static_folder, values["filename"])
            if version is not None:
                values["v"] = version

    default_max_age = app.get_send_file_max_age

    def max_age(filename: str | None) -> int | None:
        if filename and request.args.get("v") == fingerprint(static_folder, filename):
            return YEAR
        return default_max_age(filename)  # no or an old fingerprint: revalidate

    app.get_send_file_max_age = max_age  # type: ignore[method-assign]
