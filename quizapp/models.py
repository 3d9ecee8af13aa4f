"""SQLAlchemy 2.x typed models: tables and columns only, no rules.

Times are timezone-aware UTC everywhere (UTCDateTime), marks are exact fractions
stored as text ("7/3"), and unique constraints guard every race the design names.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from quizapp.domain.lti_scores import ScoreState
from quizapp.domain.timing import AttemptState

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every engine (SQLite stores no zone; we add it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ExactFraction(TypeDecorator[Fraction]):
    """A Fraction stored as text, so 1/3 of a mark stays exactly 1/3."""

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: Fraction | None, dialect: Dialect) -> str | None:
        return None if value is None else str(Fraction(value))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Fraction | None:
        return None if value is None else Fraction(value)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), Fraction: ExactFraction(), dict[str, Any]: JSON}


class Role(enum.StrEnum):
    STUDENT = "student"
    STAFF = "staff"


class FinishReason(enum.StrEnum):
    SUBMITTED = "submitted"  # the student pressed submit
    DEADLINE = "deadline"  # the deadline ended it (the page at zero, a request, or the sweeper)
    STAFF = "staff"  # finalised by staff


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as the value text with a CHECK, portable across SQLite and PostgreSQL.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=20,
        values_callable=lambda e: [m.value for m in e],
    )


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.STUDENT)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    # Accommodation, stored once per student and applied to every quiz.
    time_factor: Mapped[Fraction] = mapped_column(default=Fraction(1))
    extra_minutes: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Bumped when every session of the user must end at once: "sign out everywhere", a
    # password change or reset, the account disabled. A session made under an older
    # version is refused at its next request.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    last_login_at: Mapped[datetime | None]
    # Single sign-on: "<issuer> <subject>" of the identity provider's account, set at the
    # first SSO sign-in (the subject is stable; usernames and e-mails may change).
    sso_subject: Mapped[str | None] = mapped_column(String(400), unique=True)

    attempts: Mapped[list[Attempt]] = relationship(back_populates="user")

    @property
    def is_staff(self) -> bool:
        return self.role is Role.STAFF

    # The four members Flask-Login expects, without importing Flask into the models.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)


class AuthSession(Base):
    """One signed-in browser session, by the SHA-256 of the id its cookie carries: logout
    revokes this row only (a student's other device keeps working), and a cookie replayed
    after logout finds it revoked."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the id
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_version: Mapped[int]
    method: Mapped[str] = mapped_column(String(20))  # password, sso, invitation, lti
    created_at: Mapped[datetime]
    ip: Mapped[str] = mapped_column(String(64), default="")
    revoked_at: Mapped[datetime | None]


class Invitation(Base):
    """A one-time, expiring link to set a password, by the SHA-256 of its token (the
    token itself is only ever in the link)."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    emailed_at: Mapped[datetime | None]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Question(Base):
    """A question's stable id and the version new attempts use."""

    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    current_version_id: Mapped[int | None] = mapped_column(ForeignKey("question_versions.id"))


class BankAsset(Base):
    """An image of the bank as it was imported, by the SHA-256 of its bytes. A question
    version's spec names its images by that digest (bank/assets.py), so an edited image
    is a new row and the attempts that showed the old one keep showing it. Rows are never
    changed or deleted."""

    __tablename__ = "bank_assets"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(40))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QuestionVersion(Base):
    """An immutable question spec; a changed question becomes a new version."""

    __tablename__ = "question_versions"
    __table_args__ = (UniqueConstraint("question_key", "content_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    question_key: Mapped[str] = mapped_column(String(100), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    qtype: Mapped[str] = mapped_column(String(40))
    spec: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Quiz(Base):
    __tablename__ = "quizzes"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime | None]
    time_limit_seconds: Mapped[int | None]
    extend_close_for_accommodation: Mapped[bool] = mapped_column(default=True)
    max_attempts: Mapped[int] = mapped_column(default=1)
    grading: Mapped[str] = mapped_column(String(20), default="highest")
    shuffle_slots: Mapped[bool] = mapped_column(default=False)
    flag_concurrent_use: Mapped[bool] = mapped_column(default=True, server_default=true())
    release: Mapped[dict[str, Any]]
    timezone: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(500), default="")
    content_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    slots: Mapped[list[QuizSlot]] = relationship(
        back_populates="quiz", order_by="QuizSlot.number", cascade="all, delete-orphan"
    )


class QuizSlot(Base):
    """One slot as imported: a fixed question key, or the candidate keys of a pool."""

    __tablename__ = "quiz_slots"
    __table_args__ = (UniqueConstraint("quiz_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id", ondelete="CASCADE"))
    number: Mapped[int]
    marks: Mapped[Fraction]
    pool: Mapped[str | None] = mapped_column(String(100))
    candidates: Mapped[list[str]] = mapped_column(JSON)

    quiz: Mapped[Quiz] = relationship(back_populates="slots")


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (
        UniqueConstraint("quiz_id", "user_id", "number"),
        # At most one attempt in progress per student and quiz: the database, not a
        # check-then-insert, makes a double click or a second tab start one attempt.
        Index(
            "uq_attempts_one_in_progress",
            "quiz_id",
            "user_id",
            unique=True,
            sqlite_where=text("state = 'in_progress'"),
            postgresql_where=text("state = 'in_progress'"),
        ),
        Index("ix_attempts_state_deadline", "state", "deadline_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    number: Mapped[int]
    state: Mapped[AttemptState] = mapped_column(_enum(AttemptState, "attempt_state"))
    seed: Mapped[int]
    layout: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    started_at: Mapped[datetime]
    deadline_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    finish_reason: Mapped[FinishReason | None] = mapped_column(_enum(FinishReason, "finish_reason"))
    score: Mapped[Fraction | None]
    max_score: Mapped[Fraction]
    receipt: Mapped[str | None] = mapped_column(String(32))
    # Set when answers arrived from two browser sessions or addresses at once: a flag for
    # staff to look at, never a block (a student may switch laptops honestly).
    concurrent_use_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="attempts")
    quiz: Mapped[Quiz] = relationship()


class Answer(Base):
    """The current answer per attempt and slot: the one with the highest client sequence."""

    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("attempt_id", "slot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"))
    slot: Mapped[int]
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    saved_at: Mapped[datetime]


class LogOutcome(enum.StrEnum):
    """Why a save in the answer log did not become the answer (None: it did)."""

    STALE = "stale"  # a newer answer (higher sequence) was already stored
    LATE = "late"  # arrived after the deadline and its grace: refused, kept as evidence
    AFTER_FINISH = "after_finish"  # arrived after the student submitted or staff finished it


class AnswerLog(Base):
    """Append-only: every save that reached the server, for disputes and appeals.

    Accepted saves have no outcome; a refused one (stale, late) is kept all the same,
    so nothing a student sent is silently dropped."""

    __tablename__ = "answer_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(
        ForeignKey("attempts.id", ondelete="CASCADE"), index=True
    )
    slot: Mapped[int]
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime]
    ip: Mapped[str] = mapped_column(String(64), default="")
    client: Mapped[str] = mapped_column(
        String(32), default="", server_default=""
    )  # browser session
    outcome: Mapped[LogOutcome | None] = mapped_column(
        _enum(LogOutcome, "log_outcome"), default=None
    )
    # When the browser says the value was typed (its own clock: evidence, never a rule).
    typed_at: Mapped[datetime | None]


class Mark(Base):
    """A mark for one slot of one attempt. Rows are never changed: history is kept;
    the newest row per (attempt, slot) is the current mark."""

    __tablename__ = "marks"
    __table_args__ = (Index("ix_marks_attempt_slot", "attempt_id", "slot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"))
    slot: Mapped[int]
    version_id: Mapped[int] = mapped_column(ForeignKey("question_versions.id"))
    fraction: Mapped[Fraction]
    marks: Mapped[Fraction]
    status: Mapped[str] = mapped_column(String(20))
    feedback: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(20), default="auto")  # auto, regrade, manual
    created_at: Mapped[datetime]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class UserGroup(Base):
    """Membership of a roster group (a seminar group, a cohort with a shared override)."""

    __tablename__ = "user_groups"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), index=True)


class QuizOverride(Base):
    """Staff's change to one quiz for one student or one group; None keeps the quiz value."""

    __tablename__ = "quiz_overrides"
    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (group_name IS NULL)", name="student_or_group"),
        Index(
            "uq_quiz_overrides_student",
            "quiz_id",
            "user_id",
            unique=True,
            sqlite_where=text("user_id IS NOT NULL"),
            postgresql_where=text("user_id IS NOT NULL"),
        ),
        Index(
            "uq_quiz_overrides_group",
            "quiz_id",
            "group_name",
            unique=True,
            sqlite_where=text("group_name IS NOT NULL"),
            postgresql_where=text("group_name IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    group_name: Mapped[str | None] = mapped_column(String(100))
    opens_at: Mapped[datetime | None]
    closes_at: Mapped[datetime | None]
    time_limit_seconds: Mapped[int | None]
    max_attempts: Mapped[int | None]
    # "Unlimited": no time limit at all, or a window that never closes for them.
    no_time_limit: Mapped[bool] = mapped_column(default=False, server_default=false())
    no_close: Mapped[bool] = mapped_column(default=False, server_default=false())
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SlotFlag(Base):
    """A question the student flagged for review during an attempt."""

    __tablename__ = "slot_flags"
    __table_args__ = (UniqueConstraint("attempt_id", "slot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"))
    slot: Mapped[int]


class RateLimitCounter(Base):
    """The sign-in throttle's counters (a `limits` storage, quizapp/ratelimit.py), shared
    by every app process and machine."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int]
    expires_at: Mapped[float]


class AuditEvent(Base):
    """Who did what to whom, when and from where: append-only evidence."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_subject_at", "subject_id", "at"),
        Index("ix_audit_log_quiz_at", "quiz_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    quiz_id: Mapped[int | None] = mapped_column(ForeignKey("quizzes.id", ondelete="SET NULL"))
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("attempts.id", ondelete="SET NULL"))
    ip: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# --- LTI 1.3 (issue 14, docs/lti.md) ----------------------------------------------------


class LtiPlatform(Base):
    """A VLE registered with quizapp (Blackboard, Moodle, Canvas ...): who signs its
    launches (`issuer`), our client id there, and where its login and keys are."""

    __tablename__ = "lti_platforms"
    __table_args__ = (UniqueConstraint("issuer", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    client_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(200), default="")
    auth_login_url: Mapped[str] = mapped_column(String(500))
    auth_token_url: Mapped[str] = mapped_column(String(500))
    jwks_url: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LtiDeployment(Base):
    """A deployment of quizapp in a platform (one per course or per site): launches
    naming another deployment id are refused."""

    __tablename__ = "lti_deployments"
    __table_args__ = (UniqueConstraint("platform_id", "deployment_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(255))


class LtiToolKey(Base):
    """quizapp's own signing keys, published at /lti/jwks.json. The newest active key
    signs; the previous one stays published until retired, so a platform holding the old
    key set still verifies what was signed before a rotation."""

    __tablename__ = "lti_tool_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(100), unique=True)
    private_key_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]


class LtiNonce(Base):
    """Nonces of accepted launches, kept until their ID token expires: the unique
    constraint makes each one single use, on every app process at once."""

    __tablename__ = "lti_nonces"
    __table_args__ = (UniqueConstraint("platform_id", "nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"))
    nonce: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(index=True)


class LtiPerson(Base):
    """Who a platform's `sub` is in quizapp, linked at the first launch."""

    __tablename__ = "lti_people"
    __table_args__ = (UniqueConstraint("platform_id", "sub"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"))
    sub: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    linked_at: Mapped[datetime]


class LtiContext(Base):
    """A course in a platform, as its launches describe it: where its membership list
    (NRPS) is. Updated at every launch (platforms may move their service URLs)."""

    __tablename__ = "lti_contexts"
    __table_args__ = (UniqueConstraint("platform_id", "context_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(255))
    context_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(255), default="")
    memberships_url: Mapped[str] = mapped_column(String(500), default="")
    updated_at: Mapped[datetime]


class LtiResourceLink(Base):
    """A link in the VLE that opens a quiz, and its gradebook column (the AGS line item)
    when the platform offers one: where marks for that quiz are posted."""

    __tablename__ = "lti_resource_links"
    __table_args__ = (UniqueConstraint("platform_id", "resource_link_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"))
    context_id: Mapped[int | None] = mapped_column(
        ForeignKey("lti_contexts.id", ondelete="SET NULL")
    )
    resource_link_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(255), default="")
    quiz_id: Mapped[int | None] = mapped_column(
        ForeignKey("quizzes.id", ondelete="SET NULL"), index=True
    )
    lineitem_url: Mapped[str] = mapped_column(String(500), default="")
    lineitems_url: Mapped[str] = mapped_column(String(500), default="")
    ags_scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime]


class LtiScore(Base):
    """The score outbox (LTI AGS): the latest score to send for one student to one
    link's line item, written in the same transaction as the mark it comes from and sent
    later by `quizapp lti scores send`, never during a request. A newer score replaces
    one not sent yet (`revision` counts the replacements, so a sender that posted an
    older revision does not mark the newer one sent)."""

    __tablename__ = "lti_scores"
    __table_args__ = (
        UniqueConstraint("link_id", "user_id"),
        Index("ix_lti_scores_state_next_try_at", "state", "next_try_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("lti_resource_links.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id", ondelete="CASCADE"), index=True)
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("attempts.id", ondelete="SET NULL"))
    score_given: Mapped[Fraction | None]
    score_maximum: Mapped[Fraction]
    activity_progress: Mapped[str] = mapped_column(String(20))
    grading_progress: Mapped[str] = mapped_column(String(20))
    scored_at: Mapped[datetime]  # the score's AGS timestamp: when the mark was set
    state: Mapped[ScoreState] = mapped_column(_enum(ScoreState, "lti_score_state"))
    revision: Mapped[int] = mapped_column(default=1)
    tries: Mapped[int] = mapped_column(default=0)
    next_try_at: Mapped[datetime]
    last_error: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
