"""``tidings apikey create|list|revoke``: a tenant's API keys, from the operator's side.

The operator is not bound by the API's rules on who may issue which key: any role, either mode.
A key is shown once, when it is created; only its SHA-256 and display prefix are stored.
"""

from __future__ import annotations

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
    timestamp,
)
from tidings.config import Settings
from tidings.db.models import ApiKey
from tidings.domain.clock import utc_now
from tidings.domain.keys import KeyMode
from tidings.domain.roles import Role
from tidings.services.api_keys import (
    IssuedKey,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)
from tidings.services.tenancy import get_tenant

apikey_app = typer.Typer(help="Create, list and revoke tenants' API keys.", no_args_is_help=True)


@apikey_app.command("create")
def apikey_create(
    tenant: TenantOption,
    role: Annotated[Role, typer.Option(help="What the key may do.", show_default=False)],
    mode: Annotated[KeyMode, typer.Option(
        help="live (jc_live_...) or test (jc_test_..., sandbox).", show_default=False)],
    name: Annotated[str | None, typer.Option(
        help="A label to tell keys apart (default: '<role> key').", show_default=False)] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key for a tenant; the key is printed once.

    With --json, prints {"id", "api_key"} and nothing else on stdout.
    """
    issued = run(_create(load_settings(), tenant_id=tenant, role=role, mode=mode,
                         name=name or f"{role.value} key"))
    if as_json:
        emit_json({"id": issued.record.id, "api_key": issued.secret})
        return
    emit(f"Created {mode.value} {role.value} key {issued.record.id} "
         f"({issued.record.name!r}) for tenant {tenant}; shown only now:",
         f"  {issued.secret}")


async def _create(settings: Settings, *, tenant_id: str, role: Role, mode: KeyMode,
                  name: str) -> IssuedKey:
    async with open_database(settings) as database, database.unit_of_work() as session:
        await get_tenant(session, tenant_id)
        return await create_api_key(session, tenant_id=tenant_id, role=role, mode=mode,
                                    name=name, created_by=None, now=utc_now())


@apikey_app.command("list")
def apikey_list(tenant: TenantOption, as_json: JsonOption = False) -> None:
    """List a tenant's API keys, revoked ones included (never the keys themselves)."""
    keys = run(_list(load_settings(), tenant_id=tenant))
    if as_json:
        emit_json([_key_fields(key) for key in keys])
        return
    if not keys:
        emit(f"Tenant {tenant} has no API keys.")
    for key in keys:
        state = f"revoked {timestamp(key.revoked_at)}" if key.revoked_at else "active"
        emit(f"{key.id}  {key.prefix}...  {key.mode:<4}  {key.role:<9}  "
             f"created {timestamp(key.created_at)}  {state}  {key.name}")


def _key_fields(key: ApiKey) -> dict[str, str | None]:
    return {"id": key.id, "name": key.name, "role": key.role, "mode": key.mode,
            "prefix": key.prefix, "created_at": key.created_at.isoformat(),
            "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None}


async def _list(settings: Settings, *, tenant_id: str) -> list[ApiKey]:
    async with open_database(settings) as database, database.unit_of_work() as session:
        await get_tenant(session, tenant_id)
        return await list_api_keys(session, tenant_id)


@apikey_app.command("revoke")
def apikey_revoke(
    tenant: TenantOption,
    key_id: Annotated[str, typer.Option("--id", help="The key's id (from `apikey list`).",
                                        show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Revoke an API key: it stops working at once. Revoking a revoked key changes nothing."""
    key = run(_revoke(load_settings(), tenant_id=tenant, key_id=key_id))
    if as_json:
        emit_json(_key_fields(key))
        return
    emit(f"Revoked API key {key.id} ({key.name!r}) of tenant {tenant}.")


async def _revoke(settings: Settings, *, tenant_id: str, key_id: str) -> ApiKey:
    async with open_database(settings) as database, database.unit_of_work() as session:
        await get_tenant(session, tenant_id)
        return await revoke_api_key(session, tenant_id=tenant_id, key_id=key_id, now=utc_now())
