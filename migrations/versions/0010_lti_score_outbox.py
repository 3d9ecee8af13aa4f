"""LTI AGS: the score outbox, one row per (resource link, student) holding the latest
score to send to the line item, its state, tries and next try

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 19:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lti_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("quiz_id", sa.Integer(), nullable=False),
        sa.Column("attempt_id", sa.Integer(), nullable=True),
        sa.Column("score_given", sa.String(length=64), nullable=True),
        sa.Column("score_maximum", sa.String(length=64), nullable=False),
        sa.Column("activity_progress", sa.String(length=20), nullable=False),
        sa.Column("grading_progress", sa.String(length=20), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "held",
                "sent",
                "failed",
                name="lti_score_state",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["attempts.id"],
            name=op.f("fk_lti_scores_attempt_id_attempts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["lti_resource_links.id"],
            name=op.f("fk_lti_scores_link_id_lti_resource_links"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["quiz_id"],
            ["quizzes.id"],
            name=op.f("fk_lti_scores_quiz_id_quizzes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_lti_scores_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_scores")),
        sa.UniqueConstraint("link_id", "user_id", name=op.f("uq_lti_scores_link_id_user_id")),
    )
    op.create_index(op.f("ix_lti_scores_quiz_id"), "lti_scores", ["quiz_id"], unique=False)
    op.create_index(op.f("ix_lti_scores_user_id"), "lti_scores", ["user_id"], unique=False)
    op.create_index(
        "ix_lti_scores_state_next_try_at", "lti_scores", ["state", "next_try_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_lti_scores_state_next_try_at", table_name="lti_scores")
    op.drop_index(op.f("ix_lti_scores_user_id"), table_name="lti_scores")
    op.drop_index(op.f("ix_lti_scores_quiz_id"), table_name="lti_scores")
    op.drop_table("lti_scores")
