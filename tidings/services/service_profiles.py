"""Service profiles: where an SMS app's inbound messages and delivery receipts are called back.

A profile is a name, a callback URL (``services.callback_urls``: http(s), not an internal
address unless ``TIDINGS_CALLBACK_ALLOW_PRIVATE_NETWORKS``), the events it takes (``inbound``
and/or ``delivery``) and an optional ``api_secret`` that signs its callbacks (a JWT, made by the
callback sender with ``open_api_secret``). The secret is stored as a ``SecretBox`` token bound
to the profile id and never shown again; without one, callbacks carry no ``Authorization``.
SMS apps point at a profile (``channel_accounts.service_profile_id``); deleting the profile
leaves those apps without one (the foreign key sets it null) and drops its undelivered
callbacks. Another tenant's profile is ``NotFound``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Final, Literal

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import ServiceProfile
from tidings.db.repos.listing import fetch_page
from tidings.db.repos.scoped import get_owned, owned_by
from tidings.domain.crypto import SecretBox
from tidings.domain.ids import new_id
from tidings.errors import InvalidInput, NotFound
from tidings.services.webhooks import callback_url_or_400

INBOUND: Final = "inbound"
DELIVERY: Final = "delivery"
PROFILE_EVENTS: Final = (INBOUND, DELIVERY)
API_SECRET_MIN: Final = 32
"""An HS256 key should have 256 bits (RFC 7518 §3.2); PyJWT warns below 32 bytes."""
API_SECRET_MAX: Final = 512
NAME_MAX: Final = 200


class Keep(Enum):
    """The type of ``KEEP``."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP
"""``replace_profile(api_secret=KEEP)``: leave the stored secret as it is."""


@dataclass(frozen=True)
class ProfileFields:
    """What a create or a replace sets (a replace sets all three)."""

    name: str
    callback_url: str
    events: Sequence[str] = PROFILE_EVENTS


def api_secret_context(profile_id: str) -> bytes:
    """The associated data that binds a profile's ``api_secret`` token to that profile."""
    return f"service_profiles:{profile_id}:api_secret".encode()


def open_api_secret(box: SecretBox, profile_id: str, sealed: str) -> str:
    """A profile's ``api_secret`` from its stored token (``DecryptionError`` if tampered with
    or copied from another row)."""
    return box.decrypt(sealed, context=api_secret_context(profile_id)).decode()


async def create_profile(session: AsyncSession, box: SecretBox, *, tenant_id: str,
                         fields: ProfileFields, api_secret: str | None, allow_private: bool,
                         now: datetime) -> ServiceProfile:
    """Store a new profile for the tenant. Raises ``InvalidInput`` naming the field for a bad
    name, callback URL (``invalid_callback_url``), events or ``api_secret``."""
    name, url, events = await _checked(fields, allow_private)
    _check_api_secret(api_secret)
    profile_id = new_id()
    profile = ServiceProfile(id=profile_id, tenant_id=tenant_id, name=name, callback_url=url,
                             events=events, api_secret=_seal(box, profile_id, api_secret),
                             created_at=now, updated_at=now)
    session.add(profile)
    await session.flush()
    return profile


async def list_profiles_page(session: AsyncSession, tenant_id: str, *, limit: int,
                             offset: int) -> tuple[list[ServiceProfile], int]:
    """One page of the tenant's profiles, oldest first, and how many it has in all."""
    return await fetch_page(session, owned_by(ServiceProfile, tenant_id)
                            .order_by(ServiceProfile.id), limit=limit, offset=offset)


async def get_profile(session: AsyncSession, tenant_id: str, profile_id: str) -> ServiceProfile:
    """The tenant's profile ``profile_id``; ``NotFound(service_profile_not_found)`` otherwise."""
    profile = await get_owned(session, ServiceProfile, tenant_id, profile_id)
    if profile is None:
        raise NotFound(f"no service profile {profile_id}", "service_profile_not_found")
    return profile


async def replace_profile(session: AsyncSession, box: SecretBox, *, tenant_id: str,
                          profile_id: str, fields: ProfileFields,
                          api_secret: str | None | Literal[Keep.KEEP] = KEEP,
                          allow_private: bool, now: datetime) -> ServiceProfile:
    """Set the profile's name, callback URL and events; ``api_secret`` ``KEEP`` leaves the
    stored secret, ``None`` removes it, a string replaces it. ``NotFound`` for another tenant's
    profile; ``InvalidInput`` as ``create_profile``, changing nothing."""
    profile = await get_profile(session, tenant_id, profile_id)
    name, url, events = await _checked(fields, allow_private)
    if api_secret is not KEEP:
        _check_api_secret(api_secret)
        profile.api_secret = _seal(box, profile.id, api_secret)
    profile.name, profile.callback_url, profile.events = name, url, events
    profile.updated_at = now
    await session.flush()
    return profile


async def delete_profile(session: AsyncSession, tenant_id: str, profile_id: str) -> None:
    """Delete the tenant's profile (``NotFound`` otherwise). The database, not the ORM, clears
    ``service_profile_id`` on the apps that used it and deletes its callback deliveries."""
    profile = await get_profile(session, tenant_id, profile_id)
    await session.execute(delete(ServiceProfile).where(ServiceProfile.id == profile.id))


async def _checked(fields: ProfileFields, allow_private: bool) -> tuple[str, str, list[str]]:
    name = fields.name.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidInput.for_field("name", f"must be 1 to {NAME_MAX} characters")
    url = await callback_url_or_400(fields.callback_url, field="callback_url",
                                    allow_private=allow_private)
    return name, url, _events(fields.events)


def _events(events: Sequence[str]) -> list[str]:
    unknown = [event for event in events if event not in PROFILE_EVENTS]
    if not events or unknown or len(set(events)) != len(events):
        raise InvalidInput.for_field("events", f"must list, each once, some of: "
                                     f"{', '.join(PROFILE_EVENTS)}", "invalid_events")
    return list(events)


def _check_api_secret(api_secret: str | None) -> None:
    if api_secret is not None and not API_SECRET_MIN <= len(api_secret) <= API_SECRET_MAX:
        raise InvalidInput.for_field("api_secret", f"must be {API_SECRET_MIN} to "
                                     f"{API_SECRET_MAX} characters (or null for none)")


def _seal(box: SecretBox, profile_id: str, api_secret: str | None) -> str | None:
    if api_secret is None:
        return None
    return box.encrypt(api_secret.encode(), context=api_secret_context(profile_id))
