"""Bank images (next to the YAML files) for logged-in users, under content-hashed URLs.

`/assets/<sha256 prefix>/<path inside the bank>`: the digest makes the URL change when
the file does, so it can be cached for a year, and makes addresses unguessable from the
path alone. Anything else (a stale digest, `..`, a non-image, a file outside the bank)
is a plain 404.

Image addresses are resolved when a page is rendered: `asset_rewriter(source)` turns the
relative `src` an author wrote in a question from bank file `source` into this URL. An
imported version's images are frozen (bank/assets.py): their address carries the full
SHA-256, and `/assets/<sha256>/<path>` serves the bytes kept in the database, so an old
attempt keeps showing the image it was shown even after the file is edited.
The `bank_assets` template filter does the same inside templates.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath

from flask import Blueprint, abort, current_app, request, send_file, url_for
from markupsafe import Markup
from werkzeug.wrappers import Response

from quizapp.bank.assets import (
    ASSET_TYPES,
    AssetError,
    asset_digest,
    asset_path,
    find_served_asset,
    frozen_address,
    resolve_asset,
    rewrite_images,
)
from quizapp.models import BankAsset
from quizapp.web import db_session
from quizapp.web.security import user_required

bp = Blueprint("assets", __name__)

ONE_YEAR = 365 * 24 * 3600


def bank_root() -> Path:
    return Path(current_app.config["QUIZAPP_BANK_PATH"])


def source_file(source: str) -> str:
    """`questions/cnn.yaml:12` (a version's source) → `questions/cnn.yaml`."""
    name, _, line = source.rpartition(":")
    return name if name and line.isdigit() else source


def asset_url(source: str, src: str) -> str | None:
    """The served URL of image `src` written in bank file `source`; None if unservable.

    A frozen address (``…#sha256=<digest>``, written by the import) is served from the
    database, whatever the bank folder holds now; any other from the bank folder."""
    frozen = frozen_address(source_file(source), src)
    if frozen is not None:
        digest, path = frozen
        return url_for("assets.asset", digest=digest, path=path)
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
@user_required
def asset(digest: str, path: str) -> Response:
    if len(digest) == FROZEN_DIGEST_LENGTH:
        return _frozen(digest, path)
    target = find_served_asset(bank_root(), digest, path)
    if target is None:
        abort(404)
    response = send_file(target, mimetype=ASSET_TYPES[target.suffix.lower()], conditional=True)
    # The digest is in the URL: a changed file gets a new URL, so cache for ever (privately:
    # the user had to log in).
    response.headers["Cache-Control"] = f"private, max-age={ONE_YEAR}, immutable"
    return response


FROZEN_DIGEST_LENGTH = 64


def _frozen(digest: str, path: str) -> Response:
    """An image as it was when its question version was imported."""
    image = db_session().get(BankAsset, digest)
    if image is None or ASSET_TYPES.get(PurePosixPath(path).suffix.lower()) != image.media_type:
        abort(404)
    response = Response(image.data, mimetype=image.media_type)
    response.set_etag(digest)
    response.headers["Cache-Control"] = f"private, max-age={ONE_YEAR}, immutable"
    return response.make_conditional(request)
