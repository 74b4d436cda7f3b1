"""SMS pipeline: channel accounts, DLT templates, messages, events, batches, tenant timezone

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 06:08:08.536676
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_accounts",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sender_id", sa.String(length=32), nullable=True),
        sa.Column("dlt_entity_id", sa.String(length=40), nullable=True),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("credentials", sa.Text(), nullable=False),
        sa.Column(
            "credential_keys",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("webhook_token", sa.String(length=64), nullable=False),
        sa.Column("rate_limit", sa.String(length=32), nullable=False),
        sa.Column("daily_limit", sa.Integer(), nullable=True),
        sa.Column("price_per_segment_minor", sa.BigInteger(), nullable=True),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("daily_day", sa.Date(), nullable=True),
        sa.Column("daily_sent", sa.Integer(), nullable=False),
        sa.Column("daily_segments", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_channel_accounts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_accounts")),
    )
    with op.batch_alter_table("channel_accounts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_channel_accounts_tenant_id_kind", ["tenant_id", "kind"], unique=False
        )

    op.create_table(
        "dlt_templates",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("dlt_template_id", sa.String(length=40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sender_id", sa.String(length=32), nullable=True),
        sa.Column("category", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_dlt_templates_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dlt_templates")),
    )
    with op.batch_alter_table("dlt_templates", schema=None) as batch_op:
        batch_op.create_index(
            "uq_dlt_templates_tenant_id_dlt_template_id",
            ["tenant_id", "dlt_template_id"],
            unique=True,
        )

    op.create_table(
        "batches",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("channel_account_id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column(
            "rejected_rows",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_account_id"],
            ["channel_accounts.id"],
            name=op.f("fk_batches_channel_account_id_channel_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_batches_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
    )
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.create_index("ix_batches_tenant_id_id", ["tenant_id", "id"], unique=False)

    op.create_table(
        "messages",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("channel_account_id", sa.String(length=26), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("client_ref", sa.String(length=128), nullable=True),
        sa.Column("batch_id", sa.String(length=26), nullable=True),
        sa.Column("to_number", sa.String(length=32), nullable=False),
        sa.Column("from_number", sa.String(length=32), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("encoding", sa.String(length=8), nullable=False),
        sa.Column("segments", sa.SmallInteger(), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("dlt_template_id", sa.String(length=40), nullable=True),
        sa.Column("dlt_entity_id", sa.String(length=40), nullable=True),
        sa.Column(
            "dlt_variables",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("callback_url", sa.String(length=2000), nullable=True),
        sa.Column("price_minor", sa.BigInteger(), nullable=True),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("provider_message_id", sa.String(length=100), nullable=True),
        sa.Column("provider_status", sa.String(length=40), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_detail", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_account_id"],
            ["channel_accounts.id"],
            name=op.f("fk_messages_channel_account_id_channel_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_messages_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_batch_id_state", ["batch_id", "state"], unique=False)
        batch_op.create_index(
            "ix_messages_account_queue",
            ["channel_account_id", "state", sa.text("priority DESC"), "next_attempt_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_messages_channel_account_id_provider_message_id",
            ["channel_account_id", "provider_message_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_messages_state_next_attempt_at", ["state", "next_attempt_at"], unique=False
        )
        batch_op.create_index("ix_messages_tenant_id_id", ["tenant_id", "id"], unique=False)
        batch_op.create_index(
            "uq_messages_inbound_provider_message_id",
            ["channel_account_id", "provider_message_id"],
            unique=True,
            sqlite_where=sa.text("direction = 'inbound'"),
            postgresql_where=sa.text("direction = 'inbound'"),
        )
        batch_op.create_index(
            "uq_messages_tenant_id_client_ref", ["tenant_id", "client_ref"], unique=True
        )

    op.create_table(
        "unmatched_reports",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("channel_account_id", sa.String(length=26), nullable=False),
        sa.Column("provider_message_id", sa.String(length=100), nullable=False),
        sa.Column(
            "report",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_account_id"],
            ["channel_accounts.id"],
            name=op.f("fk_unmatched_reports_channel_account_id_channel_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unmatched_reports")),
    )
    with op.batch_alter_table("unmatched_reports", schema=None) as batch_op:
        batch_op.create_index(
            "ix_unmatched_reports_channel_account_id_provider_message_id",
            ["channel_account_id", "provider_message_id"],
            unique=False,
        )
        batch_op.create_index("ix_unmatched_reports_created_at", ["created_at"], unique=False)

    op.create_table(
        "message_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("message_id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state_from", sa.String(length=16), nullable=True),
        sa.Column("state_to", sa.String(length=16), nullable=True),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_events_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_events")),
    )
    with op.batch_alter_table("message_events", schema=None) as batch_op:
        batch_op.create_index("ix_message_events_message_id_id", ["message_id", "id"], unique=False)

    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("timezone")

    with op.batch_alter_table("message_events", schema=None) as batch_op:
        batch_op.drop_index("ix_message_events_message_id_id")

    op.drop_table("message_events")
    with op.batch_alter_table("unmatched_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_unmatched_reports_created_at")
        batch_op.drop_index("ix_unmatched_reports_channel_account_id_provider_message_id")

    op.drop_table("unmatched_reports")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_account_queue")
        batch_op.drop_index("uq_messages_tenant_id_client_ref")
        batch_op.drop_index(
            "uq_messages_inbound_provider_message_id",
            sqlite_where=sa.text("direction = 'inbound'"),
            postgresql_where=sa.text("direction = 'inbound'"),
        )
        batch_op.drop_index("ix_messages_tenant_id_id")
        batch_op.drop_index("ix_messages_state_next_attempt_at")
        batch_op.drop_index("ix_messages_channel_account_id_provider_message_id")
        batch_op.drop_index("ix_messages_batch_id_state")

    op.drop_table("messages")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_index("ix_batches_tenant_id_id")

    op.drop_table("batches")
    with op.batch_alter_table("dlt_templates", schema=None) as batch_op:
        batch_op.drop_index("uq_dlt_templates_tenant_id_dlt_template_id")

    op.drop_table("dlt_templates")
    with op.batch_alter_table("channel_accounts", schema=None) as batch_op:
        batch_op.drop_index("ix_channel_accounts_tenant_id_kind")

    op.drop_table("channel_accounts")
