"""``tidings tenant create|list`` and ``tidings user add``: the operator's way in.

``tenant create`` makes, in one transaction, a tenant, its owner (a new user with the given
password), its empty wallet and an owner API key (live mode, named "owner key"), applying pending
migrations first so that it works before the first ``serve``.
"""

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
    password_or_prompt,
    run,
    timestamp,
)
from tidings.config import Settings
from tidings.db.models import Tenant
from tidings.domain.clock import utc_now
from tidings.domain.keys import KeyMode
from tidings.domain.roles import Role
from tidings.errors import InvalidInput
from tidings.services.api_keys import create_api_key
from tidings.services.tenancy import (
    add_membership,
    create_tenant,
    create_user,
    find_user_by_email,
    get_tenant,
    list_tenants,
    valid_email,
)

tenant_app = typer.Typer(help="Create and list tenants.", no_args_is_help=True)
user_app = typer.Typer(help="Add users to tenants.", no_args_is_help=True)


@dataclass(frozen=True)
class CreatedTenant:
    tenant_id: str
    name: str
    region: str
    currency: str
    user_id: str
    email: str
    api_key: str


@tenant_app.command("create")
def tenant_create(
    name: Annotated[str, typer.Option(help="The tenant's name.", show_default=False)],
    email: Annotated[str, typer.Option(help="The owner's email (a new user).",
                                       show_default=False)],
    password: Annotated[str | None, typer.Option(
        help="The owner's password (8 to 256 characters); asked for on the terminal when "
             "left out.", show_default=False)] = None,
    region: Annotated[str | None, typer.Option(
        help="Default region for phone numbers written without +country, e.g. GB "
             "(default: TIDINGS_DEFAULT_REGION, else US).", show_default=False)] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a tenant with its owner user, its wallet and an owner API key (shown once).

    With --json, prints {"tenant_id", "user_id", "api_key"} and nothing else on stdout.
    """
    settings = load_settings()
    made = run(_create_tenant(settings, name=name, email=email,
                              password=password_or_prompt(password),
                              region=region or settings.default_region))
    if as_json:
        emit_json({"tenant_id": made.tenant_id, "user_id": made.user_id,
                   "api_key": made.api_key})
        return
    emit(f"Created tenant {made.name!r} ({made.tenant_id}), region {made.region}, "
         f"wallet in {made.currency}.",
         f"Owner: {made.email} (user {made.user_id}); log in with POST /token/.",
         "Owner API key, shown only now (store it somewhere safe):",
         f"  {made.api_key}",
         "Try it:",
         f"  curl {settings.public_url}/tenants/roles/ -H \"Authorization: Bearer {made.api_key}\"")


async def _create_tenant(settings: Settings, *, name: str, email: str, password: str,
                         region: str) -> CreatedTenant:
    now = utc_now()
    async with open_database(settings) as database, database.unit_of_work() as session:
        made = await create_tenant(session, name=name, owner_email=valid_email(email),
                                   owner_password=password, region=region.upper(),
                                   currency=settings.wallet_currency, now=now)
        key = await create_api_key(session, tenant_id=made.tenant.id, role=Role.OWNER,
                                   mode=KeyMode.LIVE, name="owner key",
                                   created_by=made.owner.id, now=now)
    return CreatedTenant(made.tenant.id, made.tenant.name, made.tenant.default_region,
                         settings.wallet_currency, made.owner.id, made.owner.email, key.secret)


@tenant_app.command("list")
def tenant_list(as_json: JsonOption = False) -> None:
    """List the tenants, oldest first: id, created, name (--json: a JSON array)."""
    tenants = run(_list_tenants(load_settings()))
    if as_json:
        emit_json([{"id": t.id, "name": t.name, "created_at": t.created_at.isoformat()}
                   for t in tenants])
        return
    if not tenants:
        emit("No tenants yet: create one with `tidings tenant create`.")
    for t in tenants:
        emit(f"{t.id}  {timestamp(t.created_at)}  {t.name}")


async def _list_tenants(settings: Settings) -> list[Tenant]:
    async with open_database(settings) as database, database.unit_of_work() as session:
        return await list_tenants(session)


@dataclass(frozen=True)
class AddedUser:
    user_id: str
    email: str
    new_user: bool
    has_password: bool


@user_app.command("add")
def user_add(
    tenant: TenantOption,
    email: Annotated[str, typer.Option(help="The user's email.", show_default=False)],
    role: Annotated[Role, typer.Option(help="The user's role in the tenant.",
                                       show_default=False)],
    password: Annotated[str | None, typer.Option(
        help="The password of a new user (8 to 256 characters).", show_default=False)] = None,
    as_json: JsonOption = False,
) -> None:
    """Add a user to a tenant with a role, as an active member.

    A new email makes a new user with --password. An email that already belongs to a user adds
    that user to the tenant and leaves their password as it is (--password is then ignored).
    With --json, prints {"user_id", "tenant_id", "role", "new_user"}.
    """
    settings = load_settings()
    added = run(_add_user(settings, tenant_id=tenant, email=email, role=role,
                          password=password))
    if password is not None and not added.new_user:
        typer.echo(f"note: {added.email} already had an account; its password is unchanged.",
                   err=True)
    if as_json:
        emit_json({"user_id": added.user_id, "tenant_id": tenant, "role": role.value,
                   "new_user": added.new_user})
        return
    what = "Created user" if added.new_user else "Added existing user"
    emit(f"{what} {added.email} ({added.user_id}) to tenant {tenant} as {role.value}.")
    if not added.has_password:
        emit("They have no password yet: they set one by accepting their invitation.")


async def _add_user(settings: Settings, *, tenant_id: str, email: str, role: Role,
                    password: str | None) -> AddedUser:
    now = utc_now()
    address = valid_email(email)
    async with open_database(settings) as database, database.unit_of_work() as session:
        await get_tenant(session, tenant_id)
        user = await find_user_by_email(session, address)
        new_user = user is None
        if user is None:
            if password is None:
                raise InvalidInput.for_field("password", f"is required: {address} is a new user")
            user = await create_user(session, email=address, password=password, name=None,
                                     now=now)
        await add_membership(session, tenant_id=tenant_id, user_id=user.id, role=role, now=now)
        return AddedUser(user.id, user.email, new_user, user.password_hash is not None)

