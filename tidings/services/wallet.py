"""A tenant's prepaid wallet: its balance in minor units of one currency, and an append-only
ledger where every change is an entry carrying the balance it left.

Only operators credit a wallet (``tidings`` CLI); no HTTP endpoint does. The balance changes by
one atomic ``UPDATE wallets SET balance_minor = balance_minor + :amount`` guarded in its
``WHERE``, so concurrent credits never lose an update and the balance never goes below zero,
on PostgreSQL as on SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import Wallet, WalletEntry
from tidings.db.repos.scoped import owned_by
from tidings.domain.ids import new_id
from tidings.errors import InvalidInput, NotFound
from tidings.services.tenancy import get_tenant

RECENT_ENTRIES = 20
MAX_REASON_LENGTH = 200
MAX_BALANCE_MINOR = 2**63 - 1  # a PostgreSQL BIGINT


@dataclass(frozen=True)
class WalletView:
    currency: str
    balance_minor: int
    entries: list[WalletEntry]


async def credit_wallet(session: AsyncSession, *, tenant_id: str, amount_minor: int,
                        reason: str, now: datetime) -> WalletEntry:
    """Add ``amount_minor`` (negative for a correction) to the tenant's wallet and record it.

    Returns the new ledger entry, whose ``balance_after_minor`` is the balance this change left.
    Raises ``NotFound(tenant_not_found)`` for an unknown tenant; ``InvalidInput`` for a zero or
    out-of-range amount, a reason that is not 1 to 200 characters once trimmed, or a change that
    would take the balance below zero (``code="insufficient_balance"``) or past the maximum.
    """
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput.for_field("reason", f"must be 1 to {MAX_REASON_LENGTH} characters")
    if amount_minor == 0 or abs(amount_minor) > MAX_BALANCE_MINOR:
        raise InvalidInput.for_field("amount_minor",
                                     f"must be non-zero and at most {MAX_BALANCE_MINOR} in size")
    # The guard is written so that no intermediate value can overflow a BIGINT.
    guard = (Wallet.balance_minor >= -amount_minor if amount_minor < 0
             else Wallet.balance_minor <= MAX_BALANCE_MINOR - amount_minor)
    result = await session.execute(
        update(Wallet)
        .where(Wallet.tenant_id == tenant_id, guard)
        .values(balance_minor=Wallet.balance_minor + amount_minor, updated_at=now)
        .returning(Wallet.balance_minor)
        .execution_options(synchronize_session=False))
    balance = result.scalar_one_or_none()
    if balance is None:
        await _explain_refusal(session, tenant_id, amount_minor)
    entry = WalletEntry(id=new_id(), tenant_id=tenant_id, amount_minor=amount_minor,
                        balance_after_minor=balance, reason=reason, created_at=now)
    session.add(entry)
    await session.flush()
    return entry


async def _explain_refusal(session: AsyncSession, tenant_id: str, amount_minor: int) -> NoReturn:
    """Raise the reason the guarded update matched no wallet."""
    await get_tenant(session, tenant_id)
    wallet = await session.get(Wallet, tenant_id, populate_existing=True)
    if wallet is None:
        raise NotFound(f"tenant {tenant_id} has no wallet", "wallet_not_found")
    if amount_minor < 0:
        raise InvalidInput.for_field(
            "amount_minor", f"would take the balance ({wallet.balance_minor}) below zero",
            "insufficient_balance")
    raise InvalidInput.for_field("amount_minor", "would take the balance past the maximum")


async def get_wallet(session: AsyncSession, tenant_id: str,
                     recent: int = RECENT_ENTRIES) -> WalletView:
    """The tenant's currency, balance and ``recent`` newest ledger entries (newest first).

    Raises ``NotFound(wallet_not_found)`` when the tenant has no wallet (every tenant gets one
    when it is created).
    """
    wallet = await session.get(Wallet, tenant_id, populate_existing=True)
    if wallet is None:
        raise NotFound(f"tenant {tenant_id} has no wallet", "wallet_not_found")
    result = await session.execute(
        owned_by(WalletEntry, tenant_id)
        .order_by(WalletEntry.created_at.desc(), WalletEntry.id.desc()).limit(recent))
    return WalletView(wallet.currency, wallet.balance_minor, list(result.scalars()))

