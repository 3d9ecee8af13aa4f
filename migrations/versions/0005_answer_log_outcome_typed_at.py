"""answer log: refused saves kept as evidence

A save that arrives stale, after the deadline's grace, or after the attempt finished is
now logged with its outcome (NULL: accepted, as every row before this migration was),
and the time the browser says the value was typed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 15:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("answer_log") as batch:
        batch.add_column(
            sa.Column(
                "outcome",
                sa.Enum(
                    "stale",
                    "late",
                    "after_finish",
                    name="log_outcome",
                    native_enum=False,
                    create_constraint=True,
                    length=20,
                ),
                nullable=True,
            )
        )
        batch.add_column(sa.Column("typed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("answer_log") as batch:
        batch.drop_column("typed_at")
        batch.drop_column("outcome")
