"""A question bank uploaded in the browser: unpack with bounds, validate, preview, import.

Staff without a shell upload a zip (or the files of a folder). The upload is untrusted
input even from staff, so it is unpacked with bounds (named below) into a temporary
folder that is removed afterwards, then goes through exactly what `quizapp bank import`
does: `bank/loader.load_bank` → `bank/validate.validate_bank` → `services/bank_import.
import_bank` (all or nothing; a changed question is a new version), plus an audit event
``bank_upload`` with the counts and who.

What travels between the steps is the *canonical archive*: a zip this module writes
from the accepted files only (sorted names, fixed timestamps), so the same files always
give the same bytes and the same SHA-256. The web layer signs that digest and carries
the archive back through the browser to the preview and confirm steps (no server-side
state: any worker of any machine can answer the next step), and every step unpacks and
checks it again from scratch.
"""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

from sqlalchemy.orm import Session

from quizapp.bank.assets import ASSET_TYPES, AssetError, resolve_asset, rewrite_images
from quizapp.bank.loader import MAX_FILE_BYTES, Bank, BankProblem, load_bank
from quizapp.bank.preview import (
    PreviewItem,
    canonical_question,
    preview_question,
    question_variant,
)
from quizapp.bank.validate import DEFAULT_SEEDS, validate_bank
from quizapp.models import User
from quizapp.services import audit
from quizapp.services.bank_import import ImportReport, import_bank
from quizapp.services.errors import InvalidInput, NotFound

# The bounds of one upload. The compressed upload (zip or folder files) and the canonical
# archive carried to the next step are each at most MAX_UPLOAD_BYTES; what is unpacked
# is at most MAX_FILES files and MAX_UNPACKED_BYTES in all, each file at most
# MAX_MEMBER_BYTES (the loader's and the image limit, 2 MB) and its path at most
# MAX_PATH_CHARS characters and MAX_PATH_DEPTH folders deep. A zip bomb stops at the
# first bound it crosses: sizes are counted as the bytes come out, not read from the
# zip's own (forgeable) headers.
MAX_UPLOAD_BYTES = 20_000_000
MAX_UNPACKED_BYTES = 50_000_000
MAX_FILES = 2_000
MAX_MEMBER_BYTES = MAX_FILE_BYTES
MAX_PATH_CHARS = 255
MAX_PATH_DEPTH = 10
BANK_SUFFIXES = frozenset({".yaml", ".yml"})
ACCEPTED_SUFFIXES = BANK_SUFFIXES | frozenset(ASSET_TYPES)
# Left out without a word: what zip tools and file managers add by themselves.
_JUNK_FOLDERS = frozenset({"__MACOSX"})
_CHUNK = 64 * 1024
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class UploadRefused(InvalidInput):
    """The upload breaks a bound or is not a readable zip; nothing was unpacked."""


@dataclass(frozen=True)
class Unpacked:
    """The accepted files of an upload, by path inside the bank, and what was left out."""

    files: dict[str, bytes]
    skipped: list[str] = field(default_factory=list)

    def archive(self) -> bytes:
        """The canonical zip of the accepted files (same files, same bytes)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(self.files):
                info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                archive.writestr(info, self.files[name])
        data = buffer.getvalue()
        if len(data) > MAX_UPLOAD_BYTES:
            raise UploadRefused(
                f"The bank is larger than {MAX_UPLOAD_BYTES // 1_000_000} MB once packed."
            )
        return data


@dataclass(frozen=True)
class CheckedUpload:
    """The validator's report on an upload; nothing is stored."""

    archive: bytes  # canonical: what the confirm step imports
    digest: str  # SHA-256 of `archive`, hex
    problems: list[BankProblem]
    questions: list[tuple[str, str, str]]  # (key, title, file:line), sorted by key
    quizzes: list[tuple[str, str, str]]  # (key, title, file:line)
    skipped: list[str]
    files: int
    seeds: int

    @property
    def ok(self) -> bool:
        return not self.problems


def archive_digest(archive: bytes) -> str:
    return hashlib.sha256(archive).hexdigest()


def _clean_path(raw: str) -> str | None:
    """The path inside the bank (forward slashes), None for junk to leave out silently;
    UploadRefused for a path that could land outside the bank."""
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UploadRefused(f"{raw!r}: absolute paths are refused; nothing was unpacked.")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UploadRefused(f"{raw!r}: paths with '..' are refused; nothing was unpacked.")
    if not parts:
        return None
    if len(name) > MAX_PATH_CHARS or len(parts) > MAX_PATH_DEPTH + 1:
        raise UploadRefused(
            f"{raw[:80]!r}: paths longer than {MAX_PATH_CHARS} characters or more than "
            f"{MAX_PATH_DEPTH} folders deep are refused."
        )
    if any(p.startswith(".") or p in _JUNK_FOLDERS for p in parts):
        return None
    return "/".join(parts)


class _Budget:
    """Counts files and bytes across one upload against the bounds."""

    def __init__(self) -> None:
        self.files = 0
        self.bytes = 0

    def add_file(self) -> None:
        self.files += 1
        if self.files > MAX_FILES:
            raise UploadRefused(f"More than {MAX_FILES} files; nothing was unpacked.")

    def add_bytes(self, name: str, size: int, so_far: int) -> None:
        self.bytes += size
        if so_far > MAX_MEMBER_BYTES:
            raise UploadRefused(
                f"{name}: larger than {MAX_MEMBER_BYTES // 1_000_000} MB once unpacked; "
                "nothing was unpacked."
            )
        if self.bytes > MAX_UNPACKED_BYTES:
            raise UploadRefused(
                f"More than {MAX_UNPACKED_BYTES // 1_000_000} MB once unpacked; "
                "nothing was unpacked."
            )


def _accept(raw: str, files: dict[str, bytes], skipped: list[str], budget: _Budget) -> str | None:
    """The cleaned name if the file is to be read, else None (noted in `skipped`)."""
    name = _clean_path(raw)
    if name is None:
        return None
    if PurePosixPath(name).suffix.lower() not in ACCEPTED_SUFFIXES:
        skipped.append(name)
        return None
    if name in files:
        raise UploadRefused(f"{name}: appears twice; nothing was unpacked.")
    budget.add_file()
    return name


def unpack_zip(data: bytes) -> Unpacked:
    """The accepted files of a zip, within the bounds. Refuses (UploadRefused) paths with
    '..', absolute paths, symbolic links, encrypted members, and anything over a bound;
    leaves out (listed in `skipped`) files of other types, and hidden files silently."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadRefused(f"The upload is larger than {MAX_UPLOAD_BYTES // 1_000_000} MB.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise UploadRefused(f"This is not a readable zip file ({exc}).") from None
    files: dict[str, bytes] = {}
    skipped: list[str] = []
    budget = _Budget()
    with archive:
        members = archive.infolist()
        if len(members) > 2 * MAX_FILES + 1000:  # folders count too, but not without end
            raise UploadRefused(f"More than {MAX_FILES} files; nothing was unpacked.")
        for info in members:
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UploadRefused(
                    f"{info.filename!r}: symbolic links are refused; nothing was unpacked."
                )
            if info.is_dir():
                _clean_path(info.filename)  # a hostile folder name is refused too
                continue
            if info.flag_bits & 0x1:
                raise UploadRefused(f"{info.filename!r}: encrypted files cannot be read.")
            name = _accept(info.filename, files, skipped, budget)
            if name is None:
                continue
            files[name] = _read_member(archive, info, name, budget)
    return Unpacked(files, sorted(skipped))


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, budget: _Budget
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(_CHUNK):
                size += len(chunk)
                budget.add_bytes(name, len(chunk), size)
                chunks.append(chunk)
    except (zipfile.BadZipFile, NotImplementedError, EOFError, OSError) as exc:
        raise UploadRefused(f"{name}: cannot be unpacked ({exc}).") from None
    return b"".join(chunks)


def collect_files(uploaded: Iterable[tuple[str, bytes]]) -> Unpacked:
    """The accepted files of a folder upload (each with its path relative to the folder
    the browser sends), with the same bounds and refusals as a zip."""
    files: dict[str, bytes] = {}
    skipped: list[str] = []
    budget = _Budget()
    total = 0
    for raw, data in uploaded:
        total += len(data)
        if total > MAX_UPLOAD_BYTES:
            raise UploadRefused(f"The upload is larger than {MAX_UPLOAD_BYTES // 1_000_000} MB.")
        name = _accept(raw, files, skipped, budget)
        if name is None:
            continue
        budget.add_bytes(name, len(data), len(data))
        files[name] = data
    return Unpacked(files, sorted(skipped))


def unpack(data: bytes) -> Unpacked:
    """An upload as a zip file, or a canonical archive carried back by the browser."""
    return unpack_zip(data)


@contextmanager
def opened_bank(unpacked: Unpacked, course_zone: str) -> Iterator[Bank]:
    """The files written to a fresh temporary folder and loaded as a bank; the folder is
    removed when the block ends, whatever happens in it."""
    folder = Path(tempfile.mkdtemp(prefix="quizapp-upload-"))
    try:
        root = folder / "bank"
        root.mkdir()
        for name, data in unpacked.files.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            # "x": never through a file that is already there (a link, a duplicate).
            with target.open("xb") as out:
                out.write(data)
        yield load_bank(root, course_zone=course_zone)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_upload(unpacked: Unpacked, course_zone: str, seeds: int = DEFAULT_SEEDS) -> CheckedUpload:
    """Load and validate the upload as `quizapp bank validate` does; store nothing."""
    if not unpacked.files:
        raise UploadRefused(
            "The upload holds no bank files (.yaml or .yml)"
            + (f"; left out: {', '.join(unpacked.skipped[:10])}" if unpacked.skipped else "")
            + "."
        )
    archive = unpacked.archive()
    with opened_bank(unpacked, course_zone) as bank:
        # The loader's problems and the deep ones of every question that loaded, as
        # `quizapp bank validate` reports them.
        problems = validate_bank(bank, seeds=seeds)
        questions = [
            (key, loaded.question.title, f"{loaded.file}:{loaded.line}")
            for key, loaded in sorted(bank.questions.items())
        ]
        quizzes = [
            (key, loaded.quiz.title, f"{loaded.file}:{loaded.line}")
            for key, loaded in sorted(bank.quizzes.items())
        ]
    return CheckedUpload(
        archive=archive,
        digest=archive_digest(archive),
        problems=problems,
        questions=questions,
        quizzes=quizzes,
        skipped=unpacked.skipped,
        files=len(unpacked.files),
        seeds=seeds,
    )


def preview_uploaded_question(
    archive: bytes, key: str, seed: int, course_zone: str
) -> tuple[PreviewItem, str]:
    """Question `key` of an uploaded (not imported) bank as seed `seed` shows it, with
    images inline (data: addresses), and its file:line. NotFound if the bank has no
    such question (it may have failed to load: see the report)."""
    with opened_bank(unpack(archive), course_zone) as bank:
        loaded = bank.questions.get(key)
        if loaded is None:
            raise NotFound(f"The uploaded bank has no question {key!r} that loaded.")
        base = bank.root

        def data_uri(src: str) -> str | None:
            try:
                target = resolve_asset(base, loaded.file, src)
            except AssetError:
                return None
            kind = ASSET_TYPES[target.suffix.lower()]
            return f"data:{kind};base64,{base64.b64encode(target.read_bytes()).decode()}"

        question = canonical_question(loaded)
        try:
            item = preview_question(
                question,
                question_variant(question, seed),
                rewrite=lambda fragment: rewrite_images(fragment, data_uri),
            )
        except Exception as exc:  # a question type's bug is the report's, not a 500
            raise InvalidInput(
                f"Seed {seed} of {key} cannot be shown: {type(exc).__name__}: {exc}"
            ) from None
        return item, f"{loaded.file}:{loaded.line}"


def import_upload(
    session: Session,
    archive: bytes,
    by: User,
    now: datetime,
    course_zone: str,
    *,
    source: str = "",
    seeds: int = DEFAULT_SEEDS,
) -> ImportReport:
    """Import an uploaded bank (the canonical archive the report showed) all or nothing,
    through `import_bank` as `quizapp bank import` does, after loading and validating it
    again; audited as ``bank_upload``. InvalidInput if it has any problem."""
    unpacked = unpack(archive)
    with opened_bank(unpacked, course_zone) as bank:
        problems = validate_bank(bank, seeds=seeds)
        if problems:
            raise InvalidInput(
                f"The bank has {len(problems)} problem(s); nothing was imported. "
                "Upload it again to see them."
            )

        def record(session: Session, report: ImportReport) -> None:
            audit.record(
                session,
                "bank_upload",
                now,
                actor_id=by.id,
                source=source[:200],
                digest=archive_digest(archive),
                files=len(unpacked.files),
                new_questions=len(report.new_questions),
                changed_questions=len(report.new_versions),
                unchanged_questions=report.unchanged_questions,
                new_quizzes=len(report.new_quizzes),
                changed_quizzes=len(report.updated_quizzes),
                unchanged_quizzes=report.unchanged_quizzes,
                questions=sorted(report.new_questions + report.new_versions)[:200],
                quizzes=sorted(report.new_quizzes + report.updated_quizzes)[:200],
                by=by.username,
            )

        report = import_bank(session, bank, record=record)
    return report
