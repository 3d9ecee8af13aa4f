"""Bank upload in the browser, for staff without a shell: upload → report → import.

1. `/staff/bank-upload/` takes a zip, or the files of a folder (`webkitdirectory`).
2. `check` unpacks it within the bounds of services/bank_upload.py, runs the validator
   (`quizapp bank validate`'s report, file:line) and stores nothing. The page carries
   the canonical archive of the accepted files back to the browser (base64 in a hidden
   field) with a token: the archive's SHA-256 and the staff member's id, signed with
   itsdangerous (the app's secret, a salt of its own) and timestamped, valid for
   TOKEN_MAX_AGE. Nothing is kept on the server between the steps, so any gunicorn
   worker on any machine answers the next one.
3. `preview` shows any question of the uploaded bank for any seed (bank/preview.py,
   images inline); `check` again re-validates the carried archive (back to the report).
4. `import_` verifies the token against the archive, then imports exactly those bytes,
   validated again, all or nothing, through import_bank, audited as ``bank_upload``.

Only these posts, and only for a signed-in staff member, get a body limit of BODY_LIMIT
instead of the app's MAX_CONTENT_LENGTH (the upload, or the archive in base64).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, MultipleFileField
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from werkzeug.datastructures import FileStorage
from wtforms import HiddenField, IntegerField, SelectField
from wtforms.validators import DataRequired, NumberRange, Optional

from quizapp.services.bank_upload import (
    MAX_FILES,
    MAX_MEMBER_BYTES,
    MAX_UNPACKED_BYTES,
    MAX_UPLOAD_BYTES,
    CheckedUpload,
    Unpacked,
    archive_digest,
    check_upload,
    collect_files,
    import_upload,
    preview_uploaded_question,
    unpack,
    unpack_zip,
)
from quizapp.services.errors import InvalidInput
from quizapp.web import db_session, now
from quizapp.web.security import current_account, staff_required

bp = Blueprint("bank_upload", __name__, url_prefix="/staff/bank-upload")

# The largest body: the upload itself (MAX_UPLOAD_BYTES) or the canonical archive
# carried back in base64 (4/3 of at most MAX_UPLOAD_BYTES), plus the form around it.
BODY_LIMIT = MAX_UPLOAD_BYTES * 4 // 3 + 1_000_000
# A folder upload sends one part per file.
_FORM_PARTS = MAX_FILES + 100
# How long a report stays importable: a working day of checking previews.
TOKEN_MAX_AGE = 12 * 3600
MAX_SEED = 2**63 - 1
_LARGE_POSTS = ("bank_upload.check", "bank_upload.preview", "bank_upload.import_")


class UploadForm(FlaskForm):
    archive_file = FileField("A zip file of the bank")
    folder = MultipleFileField("…or the bank's folder")


class CarriedForm(FlaskForm):
    """The checked upload, carried back by the browser: archive, signed token, name."""

    archive = HiddenField(validators=[DataRequired()])
    token = HiddenField(validators=[DataRequired()])
    source = HiddenField()
    key = SelectField("Question", validate_choice=False)
    seed = IntegerField("Seed", default=0, validators=[Optional(), NumberRange(0, MAX_SEED)])


@bp.url_value_preprocessor
def _allow_large_uploads(_endpoint: str | None, _values: dict[str, Any] | None) -> None:
    # Runs before every before_request hook, so before CSRFProtect reads the form; only
    # a signed-in staff member gets the larger limit, on these posts only.
    if request.endpoint in _LARGE_POSTS and _is_staff():
        request.max_content_length = BODY_LIMIT
        request.max_form_memory_size = BODY_LIMIT
        request.max_form_parts = _FORM_PARTS


def _is_staff() -> bool:
    return bool(current_user.is_authenticated and current_account().is_staff)


def _signer() -> TimestampSigner:
    return TimestampSigner(current_app.config["SECRET_KEY"], salt="quizapp-bank-upload")


def _token(digest: str) -> str:
    return _signer().sign(f"{current_account().id}:{digest}").decode()


def _carried_archive(form: CarriedForm) -> bytes:
    """The archive the browser sent back, if the token vouches for exactly these bytes
    and this staff member; InvalidInput otherwise."""
    try:
        archive = base64.b64decode(form.archive.data or "", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(
            "The checked bank was damaged on its way back; upload it again."
        ) from None
    try:
        signed = _signer().unsign(form.token.data or "", max_age=TOKEN_MAX_AGE).decode()
    except SignatureExpired:
        raise InvalidInput("This report is too old; upload the bank again.") from None
    except BadSignature:
        raise InvalidInput(
            "The checked bank was altered on its way back; upload it again."
        ) from None
    if signed != f"{current_account().id}:{archive_digest(archive)}":
        raise InvalidInput("The checked bank was altered on its way back; upload it again.")
    return archive


def _zone() -> str:
    return str(current_app.config["QUIZAPP_TIMEZONE"])


def _limits() -> dict[str, int]:
    return {
        "max_upload_mb": MAX_UPLOAD_BYTES // 1_000_000,
        "max_unpacked_mb": MAX_UNPACKED_BYTES // 1_000_000,
        "max_member_mb": MAX_MEMBER_BYTES // 1_000_000,
        "max_files": MAX_FILES,
    }


def _render_index(form: UploadForm, status: int = 200, error: str = "") -> Any:
    page = render_template("staff/bank_upload.html", form=form, error=error, **_limits())
    return page, status


@bp.route("/")
@staff_required
def index() -> Any:
    return _render_index(UploadForm())


def _received(form: UploadForm) -> tuple[Unpacked, str]:
    """The accepted files of the upload and a name for it; InvalidInput if none came."""
    upload = form.archive_file.data
    if isinstance(upload, FileStorage) and upload.filename:
        return unpack_zip(upload.read(MAX_UPLOAD_BYTES + 1)), upload.filename[:200]
    files = [f for f in form.folder.data or [] if isinstance(f, FileStorage) and f.filename]
    if files:
        budget = MAX_UPLOAD_BYTES + 1
        read: list[tuple[str, bytes]] = []
        for f in files:
            data = f.read(budget)
            budget = max(budget - len(data), 1)
            read.append((f.filename or "", data))
        top = (files[0].filename or "").replace("\\", "/").split("/")[0]
        return collect_files(read), f"folder {top}" if len(files) > 1 else top
    raise InvalidInput("Choose a zip file or a folder.")


@bp.route("/check", methods=["POST"])
@staff_required
def check() -> Any:
    """The validator's report on an upload (or on the carried archive, again); nothing
    is stored. 400 with every problem, file:line, when the bank has any."""
    carried = CarriedForm()
    if carried.archive.data:
        if not carried.validate_on_submit():
            raise InvalidInput("The form was incomplete; upload the bank again.")
        unpacked, source = unpack(_carried_archive(carried)), (carried.source.data or "")[:200]
    else:
        form = UploadForm()
        if not form.validate_on_submit():
            return _render_index(form, 400, "The form has expired; try again.")
        try:
            unpacked, source = _received(form)
        except InvalidInput as exc:
            return _render_index(form, exc.status, exc.message)
    try:
        checked = check_upload(unpacked, _zone())
    except InvalidInput as exc:
        return _render_index(UploadForm(), exc.status, exc.message)
    return _report(checked, source, 200 if checked.ok else 400)


def _carry(checked_archive: bytes, source: str, key: str = "", seed: int = 0) -> CarriedForm:
    return CarriedForm(
        formdata=None,
        archive=base64.b64encode(checked_archive).decode(),
        token=_token(archive_digest(checked_archive)),
        source=source,
        key=key,
        seed=seed,
    )


def _report(checked: CheckedUpload, source: str, status: int) -> Any:
    carried = _carry(checked.archive, source)
    carried.key.choices = [(key, f"{key}: {title}") for key, title, _ in checked.questions]
    page = render_template(
        "staff/bank_upload_report.html",
        checked=checked,
        source=source,
        carried=carried,
        max_seed=MAX_SEED,
    )
    return page, status


@bp.route("/preview", methods=["POST"])
@staff_required
def preview() -> Any:
    """One question of the uploaded bank for one seed; `step` moves to the seed before
    or after."""
    form = CarriedForm()
    if not form.validate_on_submit():
        raise InvalidInput("Choose a question and a seed (a whole number, 0 or more).")
    archive = _carried_archive(form)
    seed = form.seed.data or 0
    step = request.form.get("step", "")
    if step == "previous":
        seed = max(seed - 1, 0)
    elif step == "next":
        seed = min(seed + 1, MAX_SEED)
    key = form.key.data or ""
    item, location = preview_uploaded_question(archive, key, seed, _zone())
    source = (form.source.data or "")[:200]
    carried = _carry(archive, source, key, seed)
    carried.key.choices = [(key, key)]
    return render_template(
        "staff/bank_upload_preview.html",
        item=item,
        location=location,
        seed=seed,
        max_seed=MAX_SEED,
        carried=carried,
        source=source,
    )


@bp.route("/import", methods=["POST"])
@staff_required
def import_() -> Any:
    """Import exactly the archive the report showed, all or nothing, audited."""
    form = CarriedForm()
    if not form.validate_on_submit():
        raise InvalidInput("The confirmation was incomplete; upload the bank again.")
    archive = _carried_archive(form)
    source = (form.source.data or "")[:200]
    report = import_upload(db_session(), archive, current_account(), now(), _zone(), source=source)
    flash(f"Bank imported from {source or 'the upload'}: {report.summary()}", "success")
    return redirect(url_for("bank_upload.index"))
