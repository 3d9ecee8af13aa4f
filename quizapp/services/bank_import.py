"""Sync a loaded bank into the database: all or nothing, versioned, idempotent."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from quizapp.bank.assets import ASSET_TYPES, frozen_digests
from quizapp.bank.loader import Bank, LoadedQuiz
from quizapp.db import unit_of_work
from quizapp.domain.questions import canonical_json
from quizapp.domain.release import policy_after_import
from quizapp.models import BankAsset, Question, QuestionVersion, Quiz, QuizSlot, utcnow
from quizapp.services.errors import InvalidInput


@dataclass
class ImportReport:
    new_questions: list[str] = field(default_factory=list)
    new_versions: list[str] = field(default_factory=list)
    unchanged_questions: int = 0
    new_quizzes: list[str] = field(default_factory=list)
    updated_quizzes: list[str] = field(default_factory=list)
    unchanged_quizzes: int = 0
    # Quizzes whose release policy was set in the browser: kept (the YAML's policy is the
    # same as when it was set), or replaced by the YAML's changed policy.
    release_kept: list[str] = field(default_factory=list)
    release_replaced: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(
            self.new_questions or self.new_versions or self.new_quizzes or self.updated_quizzes
        )

    def summary(self) -> str:
        return (
            f"questions: {len(self.new_questions)} new, {len(self.new_versions)} changed, "
            f"{self.unchanged_questions} unchanged; quizzes: {len(self.new_quizzes)} new, "
            f"{len(self.updated_quizzes)} changed, {self.unchanged_quizzes} unchanged"
            + "".join(
                f"; release policy set in the browser kept for {key}" for key in self.release_kept
            )
            + "".join(
                f"; release policy set in the browser replaced by the YAML's new one for {key}"
                for key in self.release_replaced
            )
        )


def import_bank(
    session: Session,
    bank: Bank,
    *,
    record: Callable[[Session, ImportReport], None] | None = None,
) -> ImportReport:
    """Write a validated bank in one transaction. A bank with any problem writes nothing.

    A question whose content changed becomes a new immutable version; attempts already
    started keep the version in their layout. Importing the same bank twice changes nothing.
    `record` adds the caller's audit event in the same transaction (an upload from the
    browser: the import and its audit commit together or not at all).
    """
    if not bank.ok:
        raise InvalidInput(f"The bank has {len(bank.problems)} problem(s); nothing was imported.")
    report = ImportReport()
    with unit_of_work(session):
        _sync_questions(session, bank, report)
        for loaded in bank.quizzes.values():
            _sync_quiz(session, loaded, report)
        if record is not None:
            record(session, report)
    return report


def _sync_questions(session: Session, bank: Bank, report: ImportReport) -> None:
    rows = {
        q.key: q for q in session.scalars(select(Question).where(Question.key.in_(bank.questions)))
    }
    current_hashes = dict(
        session.execute(
            select(QuestionVersion.id, QuestionVersion.content_hash).where(
                QuestionVersion.id.in_(
                    [r.current_version_id for r in rows.values() if r.current_version_id]
                )
            )
        ).all()
    )
    for key, loaded in sorted(bank.questions.items()):
        row = rows.get(key)
        if (
            row is not None
            and row.current_version_id is not None
            and current_hashes.get(row.current_version_id) == loaded.hash
        ):
            report.unchanged_questions += 1
            continue
        # Reverting to an earlier text reuses that version rather than duplicating it.
        version = session.scalars(
            select(QuestionVersion).where(
                QuestionVersion.question_key == key, QuestionVersion.content_hash == loaded.hash
            )
        ).first()
        if version is None:
            version = QuestionVersion(
                question_key=key,
                content_hash=loaded.hash,
                qtype=loaded.question.type_name,
                spec=loaded.spec,
                source=f"{loaded.file}:{loaded.line}",
            )
            session.add(version)
            _store_images(session, bank, frozen_digests(canonical_json(loaded.spec)))
            session.flush()
        if row is None:
            session.add(Question(key=key, current_version_id=version.id))
            report.new_questions.append(key)
        else:
            row.current_version_id = version.id
            report.new_versions.append(key)


def _store_images(session: Session, bank: Bank, digests: set[str]) -> None:
    """Keep the bytes of every image a new version names, once per digest."""
    if not digests:
        return
    missing = digests - set(
        session.scalars(select(BankAsset.digest).where(BankAsset.digest.in_(digests)))
    )
    for digest in sorted(missing):
        path = bank.assets[digest]
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise InvalidInput(
                f"{path.name} changed while the bank was being imported; nothing was imported: "
                "import it again."
            )
        media_type = ASSET_TYPES[path.suffix.lower()]
        session.add(BankAsset(digest=digest, media_type=media_type, data=data))


def _quiz_hash(loaded: LoadedQuiz) -> str:
    quiz = loaded.quiz
    data = {
        "title": quiz.title,
        "description": quiz.description,
        "opens": quiz.window.opens_at.isoformat(),
        "closes": quiz.window.closes_at.isoformat() if quiz.window.closes_at else None,
        "limit": quiz.window.time_limit.total_seconds() if quiz.window.time_limit else None,
        "extend": quiz.window.extend_close_for_accommodation,
        "attempts": quiz.max_attempts,
        "grading": quiz.grading.value,
        "shuffle": quiz.shuffle_slots,
        "flag_concurrent_use": quiz.flag_concurrent_use,
        "release": quiz.release.to_json(),
        "timezone": quiz.timezone,
        "slots": [[str(s.marks), list(s.candidates), s.pool] for s in loaded.slots],
    }
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


def _sync_quiz(session: Session, loaded: LoadedQuiz, report: ImportReport) -> None:
    quiz_def = loaded.quiz
    digest = _quiz_hash(loaded)
    # Read afresh inside the write transaction: the policy may have been set since this
    # session last looked (the release policy set in the browser is kept, see below).
    quiz = session.scalars(
        select(Quiz).where(Quiz.key == quiz_def.key).execution_options(populate_existing=True)
    ).first()
    if quiz is not None and quiz.content_hash == digest:
        report.unchanged_quizzes += 1
        return
    if quiz is None:
        quiz = Quiz(key=quiz_def.key)
        session.add(quiz)
        report.new_quizzes.append(quiz_def.key)
    else:
        report.updated_quizzes.append(quiz_def.key)
    window = quiz_def.window
    quiz.title = quiz_def.title
    quiz.description = quiz_def.description
    quiz.opens_at = window.opens_at
    quiz.closes_at = window.closes_at
    quiz.time_limit_seconds = int(window.time_limit.total_seconds()) if window.time_limit else None
    quiz.extend_close_for_accommodation = window.extend_close_for_accommodation
    quiz.max_attempts = quiz_def.max_attempts
    quiz.grading = quiz_def.grading.value
    quiz.shuffle_slots = quiz_def.shuffle_slots
    quiz.flag_concurrent_use = quiz_def.flag_concurrent_use
    from_yaml = quiz_def.release.to_json()
    stored = quiz.release if quiz.id is not None else None
    quiz.release = policy_after_import(stored, from_yaml)
    if stored is not None and "yaml" in stored:
        kept = quiz.release == stored
        (report.release_kept if kept else report.release_replaced).append(quiz_def.key)
    quiz.timezone = quiz_def.timezone
    quiz.source = f"{loaded.file}:{loaded.line}"
    quiz.content_hash = digest
    quiz.updated_at = utcnow()
    # Slots describe future attempts only; started attempts carry their own layout.
    quiz.slots.clear()
    session.flush()
    for plan in loaded.slots:
        quiz.slots.append(
            QuizSlot(
                number=plan.number,
                marks=plan.marks,
                pool=plan.pool,
                candidates=list(plan.candidates),
            )
        )


def open_for_demo(session: Session, quiz_keys: Sequence[str], now: datetime) -> None:
    """Demo only (`quizapp demo`): these quizzes get a 24-hour window that opened an hour
    ago, whatever their YAML says, so the demo can be tried at once."""
    with unit_of_work(session):
        for quiz in session.scalars(select(Quiz).where(Quiz.key.in_(quiz_keys))):
            quiz.opens_at = now - timedelta(hours=1)
            quiz.closes_at = now + timedelta(hours=23)
