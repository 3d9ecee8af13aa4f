"""Bank images (next to the YAML files) for logged-in users, under content-hashed URLs.

`/assets/<sha256 prefix>/<path inside the bank>`: the digest makes the URL change when
the file does, so it can be cached for a year, and makes addresses unguessable from the
path alone. Anything else (a stale digest, `..`, a non-image, a file outside the bank)
is a plain 404.

Image addresses are resolved when a page is rendered: `asset_rewriter(source)` turns the
relative `src` an author wrote in a question from bank file `source` into this URL.
The `bank_assets` template filter does the same inside templates.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Blueprint, abort, current_app, send_file, url_for
from markupsafe import Markup
from werkzeug.wrappers import Response

from quizapp.bank.assets import (
    ASSET_TYPES,
    AssetError,
    asset_digest,
    asset_path,
    find_served_asset,
    resolve_asset,
    rewrite_images,
)
from quizapp.web.security import student_required

bp = Blueprint("assets", __name__)

ONE_YEAR = 365 * 24 * 3600


def bank_root() -> Path:
    return Path(current_app.config["QUIZAPP_BANK_PATH"])


def source_file(source: str) -> str:
    """`questions/cnn.yaml:12` (a version's source) → `questions/cnn.yaml`."""
    name, _, line = source.rpartition(":")
    return name if name and line.isdigit() else source


def asset_url(source: str, src: str) -> str | None:
    """The served URL of image `src` written in bank file `source`; None if unservable."""
    base = bank_root()
    try:
        target = resolve_asset(base, source_file(source), src)
    except AssetError:
        return None
    return url_for("assets.asset", digest=asset_digest(target), path=asset_path(base, target))


def asset_rewriter(source: str) -> Callable[[str], str]:
    """HTML → the same HTML with the images of bank file `source` pointing at /assets/."""
    return lambda fragment: rewrite_images(fragment, lambda src: asset_url(source, src))


@bp.app_template_filter("bank_assets")
def bank_assets_filter(fragment: str, source: str) -> Markup:
    """`{{ q.stem_html|bank_assets(q.source) }}`: sanitised HTML with served image URLs."""
    return Markup(asset_rewriter(source)(str(fragment)))  # already sanitised


@bp.route("/assets/<digest>/<path:path>")
@student_required
def asset(digest: str, path: str) -> Response:
    target = find_served_asset(bank_root(), digest, path)
    if target is None:
        abort(404)
    response = send_file(target, mimetype=ASSET_TYPES[target.suffix.lower()], conditional=True)
    # The digest is in the URL: a changed file gets a new URL, so cache for ever (privately:
    # the user had to log in).
    response.headers["Cache-Control"] = f"private, max-age={ONE_YEAR}, immutable"
    return response
