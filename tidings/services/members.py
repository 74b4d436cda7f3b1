"""A tenant's members: listing them, inviting by email, accepting an invitation, changing a
member's role, removing a member, and sweeping invitations nobody accepted.

Invitations. ``invite_member`` makes a *pending* membership (creating the user, without a
password, when the email is new) and returns a one-time token; only its SHA-256 is stored, and it
expires after ``settings.invite_ttl_seconds``. Tidings sends no email: the inviter hands the
token to the invitee, who calls ``accept_invitation`` with it. A user without a password sets one
then; a user who already has one proves it (it is not changed). Accepting activates the
membership and burns the token. ``expire_invitations`` deletes pending memberships past their
expiry, and with them invited users who never set a password and belong nowhere else.

Role rules (from ``domain.roles.may_grant``): the actor needs ``members.manage`` (checked by the
API); nobody but an owner may invite, promote to, demote from or remove an owner; and the last
active owner of a tenant can be neither removed nor demoted (``Conflict(last_owner)``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import Membership, User
from tidings.db.repos.listing import fetch_page
from tidings.domain.ids import new_id
from tidings.domain.keys import new_one_time_token, sha256_hex
from tidings.domain.passwords import hash_password, password_problem, verify_password
from tidings.domain.roles import Role, may_grant
from tidings.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from tidings.services.tenancy import (
    ACTIVE,
    PENDING,
    create_user,
    find_user_by_email,
    valid_email,
)

MAX_NAME_LENGTH = 200
_CHUNK = 500  # ids per IN (...) list, well under SQLite's bound-parameter limit


@dataclass(frozen=True)
class Member:
    """One membership as the API shows it; ``joined_at`` is None while the invite is pending."""

    user_id: str
    membership_id: str
    email: str
    name: str | None
    role: Role
    status: str
    joined_at: datetime | None


@dataclass(frozen=True)
class Invitation:
    """A new pending membership; ``token`` exists only here, never in the database."""

    member: Member
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class Acceptance:
    tenant_id: str
    user_id: str
    role: Role


def _member(membership: Membership, user: User) -> Member:
    return Member(user_id=user.id, membership_id=membership.id, email=user.email, name=user.name,
                  role=Role(membership.role), status=membership.status,
                  joined_at=membership.accepted_at)


async def list_members(session: AsyncSession, tenant_id: str, *, limit: int,
                       offset: int) -> tuple[list[Member], int]:
    """One page of the tenant's members, active and pending, oldest first, and their count."""
    query = (select(Membership).where(Membership.tenant_id == tenant_id)
             .order_by(Membership.created_at, Membership.id))
    memberships, total = await fetch_page(session, query, limit=limit, offset=offset)
    result = await session.execute(
        select(User).where(User.id.in_([m.user_id for m in memberships])))
    users = {user.id: user for user in result.scalars()}
    return [_member(m, users[m.user_id]) for m in memberships], total


async def invite_member(session: AsyncSession, *, tenant_id: str, inviter_role: Role,
                        invited_by: str | None, email: str, role: Role, ttl: timedelta,
                        now: datetime) -> Invitation:
    """A pending membership of ``email`` in ``tenant_id`` with ``role``, and its token.

    Creates the user (without a password) when the email is new. ``invited_by`` is the inviting
    user's id, or the API key's id when a key invited. An invitation that expired but has not
    been swept yet is replaced by the new one.

    Raises ``Forbidden(permission_denied)`` when ``inviter_role`` may not grant ``role``,
    ``InvalidInput`` for a bad email, ``Conflict(already_member)`` when the user is already an
    active member or holds a live invitation.
    """
    if not may_grant(inviter_role, role):
        raise Forbidden(f"role {inviter_role.value} may not grant role {role.value}",
                        "permission_denied")
    address = valid_email(email)
    token = new_one_time_token()
    expires_at = now + ttl
    # A concurrent request may create this user or membership between our read and our write:
    # the savepoint is rolled back and the invitation tried once more, when the second read
    # sees what the other request committed and answers accordingly.
    for attempt in (1, 2):
        try:
            async with session.begin_nested():
                user, membership = await _write_invitation(
                    session, tenant_id=tenant_id, address=address, role=role,
                    invited_by=invited_by, token=token, expires_at=expires_at, now=now)
            return Invitation(_member(membership, user), token, expires_at)
        except (IntegrityError, Conflict) as exc:
            lost_race = isinstance(exc, IntegrityError) or exc.code == "duplicate_email"
            if not lost_race:
                raise
            if attempt == 2:
                raise Conflict(f"{address} was just invited by another request",
                               "already_member") from exc
    raise AssertionError("unreachable")


async def _write_invitation(session: AsyncSession, *, tenant_id: str, address: str, role: Role,
                            invited_by: str | None, token: str, expires_at: datetime,
                            now: datetime) -> tuple[User, Membership]:
    """Create or renew the pending membership of ``address``; see ``invite_member``."""
    user = await find_user_by_email(session, address)
    membership = None
    if user is None:
        user = await create_user(session, email=address, password=None, name=None, now=now)
    else:
        membership = await _find_membership(session, tenant_id, user.id)
        if membership is not None and not _expired_invite(membership, now):
            raise Conflict(f"{address} is already a member of this tenant", "already_member")
    if membership is None:
        membership = Membership(id=new_id(), tenant_id=tenant_id, user_id=user.id,
                                status=PENDING, role=role.value, created_at=now)
        session.add(membership)
    membership.role = role.value
    membership.invite_token_hash = sha256_hex(token)
    membership.invite_expires_at = expires_at
    membership.invited_by = invited_by
    membership.created_at = now
    await session.flush()
    return user, membership


def _expired_invite(membership: Membership, now: datetime) -> bool:
    return (membership.status == PENDING and membership.invite_expires_at is not None
            and membership.invite_expires_at <= now)


async def accept_invitation(session: AsyncSession, *, token: str, password: str,
                            name: str | None, now: datetime) -> Acceptance:
    """Activate the pending membership whose token is ``token`` and burn the token.

    A user without a password sets ``password`` (and ``name``, when given); a user who has one
    must give it, and keeps it (``name`` is then only used if they had none).

    Raises ``InvalidInput(invalid_invite)`` for an unknown, used or expired token,
    ``InvalidInput`` for an unacceptable new password or name, ``Unauthorized(invalid_credentials)``
    when an existing user's password does not match.
    """
    result = await session.execute(
        select(Membership).where(Membership.invite_token_hash == sha256_hex(token),
                                 Membership.status == PENDING).with_for_update())
    membership = result.scalar_one_or_none()
    if membership is None or _expired_invite(membership, now):
        raise InvalidInput("the invitation is unknown, already used or expired", "invalid_invite")
    user = await session.get(User, membership.user_id)
    if user is None:  # the foreign key cascades, so only a concurrent delete gets here
        raise InvalidInput("the invitation is unknown, already used or expired", "invalid_invite")
    clean_name = _clean_name(name)
    if user.password_hash is None:
        if problem := password_problem(password):
            raise InvalidInput.for_field("password", problem)
        user.password_hash = await asyncio.to_thread(hash_password, password)
        user.name = clean_name or user.name
    else:
        if not await asyncio.to_thread(verify_password, user.password_hash, password):
            raise Unauthorized("the password does not match this user's password",
                               "invalid_credentials")
        user.name = user.name or clean_name
    membership.status = ACTIVE
    membership.accepted_at = now
    membership.invite_token_hash = None
    membership.invite_expires_at = None
    await session.flush()
    return Acceptance(membership.tenant_id, user.id, Role(membership.role))


def _clean_name(name: str | None) -> str | None:
    if name is None or not name.strip():
        return None
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput.for_field("name", f"must be at most {MAX_NAME_LENGTH} characters")
    return name


async def change_member_role(session: AsyncSession, *, tenant_id: str, actor_role: Role,
                             user_id: str, role: Role) -> Member:
    """Give the member ``user_id`` of ``tenant_id`` the role ``role`` (a pending member's
    invitation then grants the new role).

    Raises ``NotFound(member_not_found)`` (also for another tenant's member),
    ``Forbidden(permission_denied)`` when ``actor_role`` may not grant the member's current or
    new role, ``Conflict(last_owner)`` when it would demote the last active owner.
    """
    membership, user = await _member_for_change(session, tenant_id, user_id, actor_role)
    if not may_grant(actor_role, role):
        raise Forbidden(f"role {actor_role.value} may not grant role {role.value}",
                        "permission_denied")
    if role is not Role.OWNER:
        await _keep_an_owner(session, membership)
    membership.role = role.value
    await session.flush()
    return _member(membership, user)


async def remove_member(session: AsyncSession, *, tenant_id: str, actor_role: Role,
                        user_id: str) -> None:
    """Remove ``user_id`` from ``tenant_id`` (for a pending member: withdraw the invitation).

    The user keeps their other memberships; an invited user who never set a password and
    belongs nowhere else is deleted. Their access ends at once (membership is checked on every
    request). Raises like ``change_member_role``: ``NotFound(member_not_found)``,
    ``Forbidden(permission_denied)``, ``Conflict(last_owner)``.
    """
    membership, _user = await _member_for_change(session, tenant_id, user_id, actor_role)
    await _keep_an_owner(session, membership)
    await session.delete(membership)
    await session.flush()
    await _forget_invited_users(session, [user_id])


async def _member_for_change(session: AsyncSession, tenant_id: str, user_id: str,
                             actor_role: Role) -> tuple[Membership, User]:
    membership = await _find_membership(session, tenant_id, user_id)
    user = await session.get(User, user_id) if membership is not None else None
    if membership is None or user is None:
        raise NotFound(f"member {user_id} not found", "member_not_found")
    current = Role(membership.role)
    if not may_grant(actor_role, current):
        raise Forbidden(f"role {actor_role.value} may not change a member with role "
                        f"{current.value}", "permission_denied")
    return membership, user


async def _find_membership(session: AsyncSession, tenant_id: str,
                           user_id: str) -> Membership | None:
    result = await session.execute(select(Membership).where(
        Membership.tenant_id == tenant_id, Membership.user_id == user_id))
    return result.scalar_one_or_none()


async def _keep_an_owner(session: AsyncSession, leaving: Membership) -> None:
    """``Conflict(last_owner)`` if ``leaving`` is the tenant's only active owner. The owners'
    rows are locked (PostgreSQL) so two owners removing each other cannot both succeed."""
    if leaving.role != Role.OWNER.value or leaving.status != ACTIVE:
        return
    result = await session.execute(
        select(Membership.id).where(Membership.tenant_id == leaving.tenant_id,
                                    Membership.role == Role.OWNER.value,
                                    Membership.status == ACTIVE).with_for_update())
    if all(owner_id == leaving.id for owner_id in result.scalars()):
        raise Conflict("a tenant must keep at least one active owner", "last_owner")


async def expire_invitations(session: AsyncSession, now: datetime) -> int:
    """Delete every tenant's pending memberships whose invitation expired at or before ``now``,
    and the invited users left with no password and no membership; return how many memberships
    were deleted. Accepted memberships are never touched. Meant for the periodic scheduler."""
    result = await session.execute(
        select(Membership.id, Membership.user_id).where(Membership.status == PENDING,
                                                        Membership.invite_expires_at <= now))
    expired = result.all()
    ids = [row.id for row in expired]
    for start in range(0, len(ids), _CHUNK):
        await session.execute(
            delete(Membership).where(Membership.id.in_(ids[start:start + _CHUNK]),
                                     Membership.status == PENDING)
            .execution_options(synchronize_session=False))
    await _forget_invited_users(session, [row.user_id for row in expired])
    return len(ids)


async def _forget_invited_users(session: AsyncSession, user_ids: Sequence[str]) -> None:
    """Delete those of ``user_ids`` who never set a password and belong to no tenant."""
    unique = sorted(set(user_ids))
    for start in range(0, len(unique), _CHUNK):
        await session.execute(
            delete(User).where(User.id.in_(unique[start:start + _CHUNK]),
                               User.password_hash.is_(None),
                               ~exists().where(Membership.user_id == User.id))
            .execution_options(synchronize_session=False))
