"""Service profiles (callback URL and JWT secret per SMS app), P2P forwarding, inbound message
numbers, deliveries signed by a profile, the tenant's secret for per-message callbacks

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 19:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "service_profiles",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("callback_url", sa.Text(), nullable=False),
        sa.Column("api_secret", sa.Text(), nullable=True),
        sa.Column("events", _JSON, nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name=op.f("fk_service_profiles_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_profiles")),
    )
    op.create_index("ix_service_profiles_tenant_id_id", "service_profiles", ["tenant_id", "id"])
    with op.batch_alter_table("channel_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("service_profile_id", sa.String(length=26), nullable=True))
        batch_op.add_column(sa.Column("p2p_enabled", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.create_foreign_key(
            batch_op.f("fk_channel_accounts_service_profile_id_service_profiles"),
            "service_profiles", ["service_profile_id"], ["id"], ondelete="SET NULL")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
    op.create_index("uq_messages_seq", "messages", ["seq"], unique=True)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE message_seq")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("callback_secret", sa.Text(), nullable=True))
    with op.batch_alter_table("callback_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("profile_id", sa.String(length=26), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_callback_deliveries_profile_id_service_profiles"),
            "service_profiles", ["profile_id"], ["id"], ondelete="CASCADE")


def downgrade() -> None:
    with op.batch_alter_table("callback_deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_callback_deliveries_profile_id_service_profiles"), type_="foreignkey")
        batch_op.drop_column("profile_id")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("callback_secret")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE message_seq")
    op.drop_index("uq_messages_seq", table_name="messages")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("seq")
    with op.batch_alter_table("channel_accounts", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_channel_accounts_service_profile_id_service_profiles"),
            type_="foreignkey")
        batch_op.drop_column("p2p_enabled")
        batch_op.drop_column("service_profile_id")
    op.drop_table("service_profiles")
