"""``expire_invitations`` and the invitation rules that need no HTTP to show."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from tests.conftest import FakeClock, TenantFactory
from tidings.db.models import Membership, User
from tidings.domain.roles import Role
from tidings.errors import Conflict
from tidings.runtime import Runtime
from tidings.services.members import accept_invitation, expire_invitations, invite_member

WEEK = timedelta(days=7)


async def invite(runtime: Runtime, tenant_id: str, email: str, clock: FakeClock) -> str:
    """Invite ``email`` (committed) and return the invitation token."""
    async with runtime.sessions() as session:
        invitation = await invite_member(session, tenant_id=tenant_id, inviter_role=Role.OWNER,
                                         invited_by=None, email=email, role=Role.VIEWER,
                                         ttl=WEEK, now=clock())
        await session.commit()
    return invitation.token


async def state(runtime: Runtime) -> tuple[set[tuple[str, str]], set[str]]:
    """``({(email, membership status)}, {emails of all users})``."""
    async with runtime.sessions() as session:
        rows = (await session.execute(select(User.email, Membership.status).join(
            Membership, Membership.user_id == User.id))).all()
        users = set((await session.execute(select(User.email))).scalars())
    return {(row.email, row.status) for row in rows}, users


async def test_expire_invitations_deletes_only_pending_invitations_past_their_expiry(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant, other = await tenants.create(), await tenants.create()
    await invite(runtime, tenant.tenant_id, "expired@example.com", clock)
    accepted = await invite(runtime, tenant.tenant_id, "accepted@example.com", clock)
    await invite(runtime, tenant.tenant_id, other.owner_email, clock)  # a user with a password
    clock.advance(3 * 24 * 3600)
    await invite(runtime, tenant.tenant_id, "recent@example.com", clock)
    async with runtime.sessions() as session:
        await accept_invitation(session, token=accepted, password="long enough pw", name=None,
                                now=clock())
        await session.commit()
    clock.advance(4 * 24 * 3600)  # the first three invitations expire exactly now

    async with runtime.sessions() as session:
        removed = await expire_invitations(session, clock())
        await session.commit()

    memberships, users = await state(runtime)
    assert removed == 2
    assert memberships == {(tenant.owner_email, "active"), (other.owner_email, "active"),
                           ("accepted@example.com", "active"), ("recent@example.com", "pending")}
    assert "expired@example.com" not in users  # invited, never set a password, belongs nowhere
    assert other.owner_email in users


async def test_expire_invitations_with_nothing_expired_returns_zero(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    await invite(runtime, tenant.tenant_id, "fresh@example.com", clock)
    clock.advance(WEEK.total_seconds() - 1)
    async with runtime.sessions() as session:
        assert await expire_invitations(session, clock()) == 0
        await session.commit()
    memberships, _users = await state(runtime)
    assert ("fresh@example.com", "pending") in memberships


async def test_an_invited_user_pending_in_two_tenants_is_kept_until_both_expire(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    first, second = await tenants.create(), await tenants.create()
    await invite(runtime, first.tenant_id, "shared@example.com", clock)
    clock.advance(24 * 3600)
    await invite(runtime, second.tenant_id, "shared@example.com", clock)
    clock.advance(WEEK.total_seconds() - 24 * 3600)
    async with runtime.sessions() as session:
        assert await expire_invitations(session, clock()) == 1
        await session.commit()
    memberships, users = await state(runtime)
    assert ("shared@example.com", "pending") in memberships
    assert "shared@example.com" in users


async def test_two_concurrent_invitations_of_one_email_make_one_and_a_409(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()

    async def attempt() -> str:
        try:
            await invite(runtime, tenant.tenant_id, "racing@example.com", clock)
        except Conflict as exc:
            return exc.code
        return "invited"

    outcomes = await asyncio.gather(attempt(), attempt())

    assert sorted(outcomes) == ["already_member", "invited"]
    memberships, _users = await state(runtime)
    assert ("racing@example.com", "pending") in memberships
