"""Message numbers (``messages.seq``): a sequence besides the text ids, for the callbacks whose
receivers expect an integer id (service-profile inbound callbacks)."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import Message


async def next_message_number(session: AsyncSession) -> int:
    """The next number. PostgreSQL draws it from the ``message_seq`` sequence (concurrent
    transactions never share one); on SQLite the transaction holds the only write lock
    (``BEGIN IMMEDIATE``), so the highest number so far plus one is free."""
    if session.get_bind().dialect.name == "postgresql":
        return int((await session.execute(text("SELECT nextval('message_seq')"))).scalar_one())
    highest = (await session.execute(select(func.max(Message.seq)))).scalar_one()
    return int(highest or 0) + 1
