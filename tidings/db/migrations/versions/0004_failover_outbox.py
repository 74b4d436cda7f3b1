"""Failover routes on messages, and the provider-agnostic outbox's jobs

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.add_column("messages", sa.Column("route", _JSON, nullable=True))
    op.create_table(
        "outbox_jobs",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("preferred_provider_slug", sa.String(length=40), nullable=True),
        sa.Column("meta", _JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["id"], ["messages.id"],
                                name=op.f("fk_outbox_jobs_id_messages"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name=op.f("fk_outbox_jobs_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_jobs")),
    )
    op.create_index("uq_outbox_jobs_tenant_id_idempotency_key", "outbox_jobs",
                    ["tenant_id", "idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_table("outbox_jobs")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("route")
