"""``tidings wallet credit``: the only way money enters a tenant's wallet (no HTTP endpoint)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from tidings.cli.common import (
    JsonOption,
    TenantOption,
    emit,
    emit_json,
    load_settings,
    open_database,
    run,
)
from tidings.config import Settings
from tidings.domain.clock import utc_now
from tidings.services.wallet import credit_wallet, get_wallet

wallet_app = typer.Typer(help="Credit tenants' wallets.", no_args_is_help=True)


@dataclass(frozen=True)
class Credit:
    entry_id: str
    amount_minor: int
    balance_minor: int
    currency: str


@wallet_app.command("credit")
def wallet_credit(
    tenant: TenantOption,
    amount_minor: Annotated[int, typer.Option(
        help="Amount in minor units (cents): 1000 is 10.00; negative to correct a mistake.",
        show_default=False)],
    reason: Annotated[str, typer.Option(help="Why, for the ledger (1 to 200 characters).",
                                        show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Add an amount to a tenant's wallet and record it in its ledger.

    With --json, prints {"entry_id", "tenant_id", "amount_minor", "balance_minor", "currency"}.
    A change that would take the balance below zero is refused (exit 1).
    """
    credit = run(_credit(load_settings(), tenant_id=tenant, amount_minor=amount_minor,
                         reason=reason))
    if as_json:
        emit_json({"entry_id": credit.entry_id, "tenant_id": tenant,
                   "amount_minor": credit.amount_minor, "balance_minor": credit.balance_minor,
                   "currency": credit.currency})
        return
    emit(f"Credited {credit.amount_minor} (minor units of {credit.currency}) to tenant "
         f"{tenant}: the balance is now {credit.balance_minor}.")


async def _credit(settings: Settings, *, tenant_id: str, amount_minor: int,
                  reason: str) -> Credit:
    async with open_database(settings) as database, database.unit_of_work() as session:
        entry = await credit_wallet(session, tenant_id=tenant_id, amount_minor=amount_minor,
                                    reason=reason, now=utc_now())
        wallet = await get_wallet(session, tenant_id, recent=0)
        return Credit(entry.id, entry.amount_minor, entry.balance_after_minor, wallet.currency)
