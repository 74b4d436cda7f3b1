"""Android phones as SMS gateways: logins, devices, tokens, codes, webhooks, message headers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 12:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('android_logins',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('tenant_id', sa.String(length=26), nullable=False),
    sa.Column('channel_account_id', sa.String(length=26), nullable=False),
    sa.Column('login', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('settings', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_account_id'], ['channel_accounts.id'], name=op.f('fk_android_logins_channel_account_id_channel_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_android_logins_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_android_logins')),
    sa.UniqueConstraint('login', name=op.f('uq_android_logins_login'))
    )
    op.create_index('ix_android_logins_channel_account_id', 'android_logins', ['channel_account_id'], unique=False)
    op.create_table('android_codes',
    sa.Column('code', sa.String(length=8), nullable=False),
    sa.Column('login_id', sa.String(length=26), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['login_id'], ['android_logins.id'], name=op.f('fk_android_codes_login_id_android_logins'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_android_codes'))
    )
    op.create_table('android_devices',
    sa.Column('id', sa.String(length=21), nullable=False),
    sa.Column('tenant_id', sa.String(length=26), nullable=False),
    sa.Column('channel_account_id', sa.String(length=26), nullable=False),
    sa.Column('login_id', sa.String(length=26), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=True),
    sa.Column('push_token', sa.String(length=256), nullable=True),
    sa.Column('sim_cards', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['channel_account_id'], ['channel_accounts.id'], name=op.f('fk_android_devices_channel_account_id_channel_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['login_id'], ['android_logins.id'], name=op.f('fk_android_devices_login_id_android_logins'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_android_devices_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_android_devices')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_android_devices_token_hash'))
    )
    op.create_index('ix_android_devices_login_id', 'android_devices', ['login_id'], unique=False)
    op.create_table('android_messages',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('tenant_id', sa.String(length=26), nullable=False),
    sa.Column('channel_account_id', sa.String(length=26), nullable=False),
    sa.Column('login_id', sa.String(length=26), nullable=False),
    sa.Column('device_id', sa.String(length=21), nullable=False),
    sa.Column('ext_id', sa.String(length=36), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('data', sa.Text(), nullable=True),
    sa.Column('data_port', sa.Integer(), nullable=True),
    sa.Column('is_encrypted', sa.Boolean(), nullable=False),
    sa.Column('is_hashed', sa.Boolean(), nullable=False),
    sa.Column('with_delivery_report', sa.Boolean(), nullable=False),
    sa.Column('sim_number', sa.SmallInteger(), nullable=True),
    sa.Column('priority', sa.SmallInteger(), nullable=False),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('schedule_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('states', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_account_id'], ['channel_accounts.id'], name=op.f('fk_android_messages_channel_account_id_channel_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['login_id'], ['android_logins.id'], name=op.f('fk_android_messages_login_id_android_logins'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_android_messages_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_android_messages'))
    )
    op.create_index('ix_android_messages_device_id_state', 'android_messages', ['device_id', 'state'], unique=False)
    op.create_index('ix_android_messages_login_id_created_at', 'android_messages', ['login_id', 'created_at'], unique=False)
    op.create_index('uq_android_messages_tenant_id_ext_id', 'android_messages', ['tenant_id', 'ext_id'], unique=True)
    op.create_table('android_tokens',
    sa.Column('jti', sa.String(length=32), nullable=False),
    sa.Column('login_id', sa.String(length=26), nullable=False),
    sa.Column('scopes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['login_id'], ['android_logins.id'], name=op.f('fk_android_tokens_login_id_android_logins'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('jti', name=op.f('pk_android_tokens'))
    )
    op.create_table('android_webhooks',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('tenant_id', sa.String(length=26), nullable=False),
    sa.Column('login_id', sa.String(length=26), nullable=False),
    sa.Column('ext_id', sa.String(length=36), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('device_id', sa.String(length=21), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['login_id'], ['android_logins.id'], name=op.f('fk_android_webhooks_login_id_android_logins'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_android_webhooks_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_android_webhooks'))
    )
    op.create_index('uq_android_webhooks_login_id_ext_id', 'android_webhooks', ['login_id', 'ext_id'], unique=True)
    op.add_column('messages', sa.Column('android_message_id', sa.String(length=26), nullable=True))

    op.create_index('ix_messages_android_message_id', 'messages', ['android_message_id'], unique=False)
    # Unvalidated numbers and ciphertext of the Android surface (SQLite copies the table).
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column("to_number", existing_type=sa.String(length=32),
                              type_=sa.String(length=256), existing_nullable=False)


def downgrade() -> None:
    op.drop_index("ix_messages_android_message_id", table_name="messages")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column("to_number", existing_type=sa.String(length=256),
                              type_=sa.String(length=32), existing_nullable=False)
        batch_op.drop_column("android_message_id")
    for table in ("android_messages", "android_webhooks", "android_tokens", "android_codes",
                  "android_devices", "android_logins"):
        op.drop_table(table)
