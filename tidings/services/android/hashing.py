"""Privacy hashing: for ``ANDROID`` apps with ``privacy_hashing`` on, once a phone has taken a
message (past ``Pending``/``Cancelling``) and ``hashing_delay_seconds`` have passed, its
content becomes a SHA-256 digest and each number the first 16 hex characters of the SHA-256 of
the E.164 number, in the header and in the ``messages`` rows alike. Encrypted messages are
left alone: the server never saw their plaintext."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import AndroidMessage, ChannelAccount, Message
from tidings.domain.android import hash_content, hash_phone
from tidings.providers.sms.android import Config

BATCH = 500
_UNTAKEN = ("Pending", "Cancelling")


async def hash_processed_messages(session: AsyncSession, now: datetime) -> int:
    """Hash what is due (module docstring), up to ``BATCH`` messages per app; answers how many
    messages were hashed."""
    apps = list((await session.execute(select(ChannelAccount).where(
        ChannelAccount.provider == "ANDROID", ChannelAccount.status == "active"))).scalars())
    hashed = 0
    for app in apps:
        config = Config.model_validate(app.config)
        if not config.privacy_hashing:
            continue
        headers = list((await session.execute(select(AndroidMessage).where(
            AndroidMessage.channel_account_id == app.id, AndroidMessage.is_hashed.is_(False),
            AndroidMessage.is_encrypted.is_(False), AndroidMessage.state.not_in(_UNTAKEN),
            AndroidMessage.updated_at <= now - timedelta(seconds=config.hashing_delay_seconds))
            .limit(BATCH))).scalars())
        if not headers:
            continue
        rows = (await session.execute(select(Message).where(
            Message.android_message_id.in_([header.id for header in headers])))).scalars()
        for row in rows:
            row.text = hash_content(row.text)
            row.to_number = hash_phone(row.to_number)
            row.updated_at = now
        for header in headers:
            if header.text is not None:
                header.text = hash_content(header.text)
            if header.data is not None:
                header.data = hash_content(header.data)
            header.is_hashed = True
            header.updated_at = now
        hashed += len(headers)
    await session.flush()
    return hashed
