"""Message parts: the per-part provider ids of long messages (SMPP), for receipts per part;
parts of long inbound messages waiting for the rest

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_parts",
        sa.Column("message_id", sa.String(length=26), nullable=False),
        sa.Column("part", sa.SmallInteger(), nullable=False),
        sa.Column("channel_account_id", sa.String(length=26), nullable=False),
        sa.Column("provider_message_id", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("provider_status", sa.String(length=40), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"],
                                name=op.f("fk_message_parts_message_id_messages"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id", "part", name=op.f("pk_message_parts")),
    )
    op.create_index("ix_message_parts_channel_account_id_provider_message_id", "message_parts",
                    ["channel_account_id", "provider_message_id"])
    op.create_table(
        "pending_inbound_parts",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("channel_account_id", sa.String(length=26), nullable=False),
        sa.Column("from_number", sa.String(length=64), nullable=False),
        sa.Column("to_number", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.Integer(), nullable=False),
        sa.Column("total", sa.SmallInteger(), nullable=False),
        sa.Column("sequence", sa.SmallInteger(), nullable=False),
        sa.Column("provider_message_id", sa.String(length=100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["channel_account_id"], ["channel_accounts.id"],
                                name=op.f("fk_pending_inbound_parts_channel_account_id_"
                                          "channel_accounts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_inbound_parts")),
    )
    op.create_index("uq_pending_inbound_parts_part", "pending_inbound_parts",
                    ["channel_account_id", "from_number", "to_number", "reference", "total",
                     "sequence"], unique=True)
    op.create_index("ix_pending_inbound_parts_created_at", "pending_inbound_parts",
                    ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_pending_inbound_parts_created_at", table_name="pending_inbound_parts")
    op.drop_index("uq_pending_inbound_parts_part", table_name="pending_inbound_parts")
    op.drop_table("pending_inbound_parts")
    op.drop_index("ix_message_parts_channel_account_id_provider_message_id",
                  table_name="message_parts")
    op.drop_table("message_parts")
