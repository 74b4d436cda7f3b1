"""Tenant-wide webhook endpoints: where ``message.status`` and ``message.inbound`` events go.

An endpoint is a URL (``services.callback_urls``: http(s), not an internal address unless
``TIDINGS_CALLBACK_ALLOW_PRIVATE_NETWORKS``), the events it takes and the secret that signs its
callbacks (HMAC-SHA256, ``domain.callbacks.hmac_headers``). A secret the tenant gives is stored
encrypted and never shown again; without one, a secret is generated and shown once, in the
answer to the registration. Another tenant's endpoint is ``NotFound``. The tenant's own secret
(``tenant_signing_secret``) signs the callbacks of sends that name a ``callback_url``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import Tenant, WebhookEndpoint
from tidings.db.repos.scoped import get_owned, owned_by
from tidings.domain.crypto import SecretBox
from tidings.domain.ids import new_id
from tidings.errors import InvalidInput, NotFound
from tidings.services.callback_urls import UnsafeCallbackUrl, check_callback_url

MESSAGE_STATUS: Final = "message.status"
MESSAGE_INBOUND: Final = "message.inbound"
EVENTS: Final = (MESSAGE_STATUS, MESSAGE_INBOUND)
SECRET_MIN: Final = 16
SECRET_MAX: Final = 256
MAX_ENDPOINTS: Final = 20
"""Endpoints per tenant: each event is one delivery per subscribed endpoint."""


@dataclass(frozen=True)
class CreatedEndpoint:
    endpoint: WebhookEndpoint
    generated_secret: str | None
    """The secret made for the endpoint when the tenant gave none (shown once)."""


def secret_context(endpoint_id: str) -> bytes:
    """The associated data that binds an endpoint's secret token to that endpoint."""
    return f"webhook_endpoints:{endpoint_id}:secret".encode()


def tenant_secret_context(tenant_id: str) -> bytes:
    """The associated data that binds a tenant's callback secret token to that tenant."""
    return f"tenants:{tenant_id}:callback_secret".encode()


async def tenant_signing_secret(session: AsyncSession, box: SecretBox, tenant_id: str) -> str:
    """The secret that signs the tenant's per-message callbacks (a send's ``callback_url``),
    made and stored (encrypted) the first time it is needed."""
    tenant = await session.get(Tenant, tenant_id, with_for_update=True)
    if tenant is None:
        raise NotFound(f"no tenant {tenant_id}")
    if tenant.callback_secret is None:
        plain = "whsec_" + secrets.token_urlsafe(32)
        tenant.callback_secret = box.encrypt(plain.encode(),
                                             context=tenant_secret_context(tenant_id))
        await session.flush()
        return plain
    return open_tenant_secret(box, tenant_id, tenant.callback_secret)


def open_tenant_secret(box: SecretBox, tenant_id: str, sealed: str) -> str:
    """A tenant's callback secret from its stored token."""
    return box.decrypt(sealed, context=tenant_secret_context(tenant_id)).decode()


def open_secret(box: SecretBox, endpoint_id: str, sealed: str) -> str:
    """An endpoint's signing secret from its stored token (``DecryptionError`` if tampered)."""
    return box.decrypt(sealed, context=secret_context(endpoint_id)).decode()


async def callback_url_or_400(url: str, *, field: str, allow_private: bool) -> str:
    """``check_callback_url`` as an ``InvalidInput`` naming ``field``."""
    try:
        return await check_callback_url(url, allow_private=allow_private)
    except UnsafeCallbackUrl as exc:
        raise InvalidInput.for_field(field, str(exc), "invalid_callback_url") from None


def _events(events: Sequence[str]) -> list[str]:
    unknown = [event for event in events if event not in EVENTS]
    if not events or unknown or len(set(events)) != len(events):
        raise InvalidInput.for_field("events", f"must list, each once, some of: "
                                     f"{', '.join(EVENTS)}", "invalid_events")
    return list(events)


async def create_endpoint(session: AsyncSession, box: SecretBox, *, tenant_id: str, url: str,
                          events: Sequence[str], secret: str | None, allow_private: bool,
                          now: datetime) -> CreatedEndpoint:
    """Register an endpoint (``InvalidInput`` for a bad URL, events or secret)."""
    checked_url = await callback_url_or_400(url, field="url", allow_private=allow_private)
    chosen_events = _events(events)
    if secret is not None and not SECRET_MIN <= len(secret) <= SECRET_MAX:
        raise InvalidInput.for_field("secret", f"must be {SECRET_MIN} to {SECRET_MAX} "
                                     "characters (or leave it out to have one generated)")
    existing = await list_endpoints(session, tenant_id)
    if len(existing) >= MAX_ENDPOINTS:
        raise InvalidInput(f"a tenant has at most {MAX_ENDPOINTS} webhook endpoints; delete one "
                           "first", "too_many_endpoints")
    generated = None if secret is not None else "whsec_" + secrets.token_urlsafe(32)
    endpoint_id = new_id()
    plain = secret if secret is not None else generated
    assert plain is not None
    endpoint = WebhookEndpoint(id=endpoint_id, tenant_id=tenant_id, url=checked_url,
                               events=chosen_events, created_at=now,
                               secret=box.encrypt(plain.encode(),
                                                  context=secret_context(endpoint_id)))
    session.add(endpoint)
    await session.flush()
    return CreatedEndpoint(endpoint, generated)


async def list_endpoints(session: AsyncSession, tenant_id: str) -> list[WebhookEndpoint]:
    """The tenant's endpoints, oldest first."""
    found = await session.execute(owned_by(WebhookEndpoint, tenant_id)
                                  .order_by(WebhookEndpoint.id))
    return list(found.scalars())


async def delete_endpoint(session: AsyncSession, tenant_id: str, endpoint_id: str) -> None:
    """Delete the tenant's endpoint and its pending deliveries (``NotFound`` otherwise)."""
    endpoint = await get_owned(session, WebhookEndpoint, tenant_id, endpoint_id)
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    await session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint.id))
