"""overrides: "no time limit" and "no close"

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 15:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("quiz_overrides") as batch:
        batch.add_column(
            sa.Column("no_time_limit", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(
            sa.Column("no_close", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("quiz_overrides") as batch:
        batch.drop_column("no_close")
        batch.drop_column("no_time_limit")
