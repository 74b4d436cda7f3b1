"""A tenant's own profile: its branding (custom domain, logo, email sender), its settings (name
and the default region used to read local phone numbers) and its WhatsApp Business info.

Updates are partial: a ``changes`` mapping holds only the fields to change, ``None`` clears a
branding field. Every value is checked before any is applied, so a bad one changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import Tenant
from tidings.errors import FieldError, InvalidInput
from tidings.services.tenancy import (
    CONTROL_CHARACTERS,
    checked_region,
    checked_tenant_name,
    get_tenant,
    valid_email,
)

BRANDING_FIELDS = ("custom_domain", "logo_url", "email_sender")
SETTINGS_FIELDS = ("name", "default_region", "timezone")

MAX_DOMAIN_LENGTH = 253
MAX_URL_LENGTH = 2000
MAX_SENDER_LENGTH = 320
MAX_SENDER_NAME_LENGTH = 200

_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_SENDER_RE = re.compile(r"^(?P<name>[^<>]*?)\s*<(?P<address>[^<>]*)>$")

_Checker = Callable[[str], str]  # a value in, the cleaned value out; ValueError says why not


@dataclass(frozen=True)
class Branding:
    custom_domain: str | None
    logo_url: str | None
    email_sender: str | None

    @property
    def is_set(self) -> bool:
        return any(value is not None for value in (self.custom_domain, self.logo_url,
                                                   self.email_sender))


@dataclass(frozen=True)
class WabaInfo:
    """The tenant's WhatsApp Business Accounts; ``accounts`` stays empty until WhatsApp exists."""

    configured: bool
    accounts: list[dict[str, str]] = field(default_factory=list)


def _branding(tenant: Tenant) -> Branding:
    return Branding(tenant.custom_domain, tenant.logo_url, tenant.email_sender)


async def get_branding(session: AsyncSession, tenant_id: str) -> Branding:
    """The tenant's branding; ``NotFound(tenant_not_found)`` for an unknown tenant."""
    return _branding(await get_tenant(session, tenant_id))


async def update_branding(session: AsyncSession, tenant_id: str,
                          changes: Mapping[str, str | None]) -> Branding:
    """Apply ``changes`` (keys among ``BRANDING_FIELDS``; ``None`` clears) and return the result.

    ``custom_domain`` must be a DNS hostname (stored lowercased, no trailing dot, at most 253
    characters, at least two labels, not an IP address); ``logo_url`` an absolute http or https
    URL with a host and no credentials (at most 2000 characters); ``email_sender`` an address or
    ``Name <address>`` (stored as ``address`` or ``Name <address>``, domain lowercased).
    Raises ``InvalidInput`` listing every bad field; nothing is changed then.
    """
    checkers = {"custom_domain": _hostname, "logo_url": _logo_url,
                "email_sender": _email_sender}
    cleaned = _check(changes, checkers, nullable=True)
    tenant = await get_tenant(session, tenant_id)
    for name, value in cleaned.items():
        setattr(tenant, name, value)
    await session.flush()
    return _branding(tenant)


async def get_settings(session: AsyncSession, tenant_id: str) -> Tenant:
    """The tenant (``id``, ``name``, ``default_region``, ``created_at``)."""
    return await get_tenant(session, tenant_id)


async def update_settings(session: AsyncSession, tenant_id: str,
                          changes: Mapping[str, str | None]) -> Tenant:
    """Apply ``changes`` (keys among ``SETTINGS_FIELDS``; neither may be ``None``).

    ``name`` is trimmed, 1 to 200 characters; ``default_region`` an ISO 3166-1 alpha-2 code that
    phonenumbers knows (stored uppercased); it only affects numbers normalised from now on.
    ``timezone`` an IANA zone name (``Asia/Kolkata``): SMS apps' daily counters reset at its
    midnight.
    Raises ``InvalidInput`` listing every bad field; nothing is changed then.
    """
    cleaned = _check(changes, {"name": checked_tenant_name, "default_region": checked_region,
                               "timezone": checked_timezone}, nullable=False)
    tenant = await get_tenant(session, tenant_id)
    for name, value in cleaned.items():
        setattr(tenant, name, value)
    await session.flush()
    return tenant


def checked_timezone(value: str) -> str:
    """An IANA time zone name, as given; ``ValueError`` for one the system does not know."""
    name = value.strip()
    try:
        ZoneInfo(name)
    except (KeyError, ValueError):
        raise ValueError("must be an IANA time zone name, e.g. 'Asia/Kolkata'") from None
    return name


async def whatsapp_business_info(session: AsyncSession, tenant_id: str) -> WabaInfo:
    """What WhatsApp Business Accounts the tenant has configured.

    Tidings has no WhatsApp channel yet, so this is always ``configured=False`` with no
    accounts; the WhatsApp issue adds accounts (from the tenant's WhatsApp channel accounts)
    and fills this in. The tenant is still checked (``NotFound(tenant_not_found)``).
    """
    await get_tenant(session, tenant_id)
    return WabaInfo(configured=False, accounts=[])


def _check(changes: Mapping[str, str | None], checkers: Mapping[str, _Checker],
           *, nullable: bool) -> dict[str, str | None]:
    cleaned: dict[str, str | None] = {}
    problems: list[FieldError] = []
    for name, value in changes.items():
        checker = checkers.get(name)
        if checker is None:
            problems.append(FieldError(name, "unknown field"))
        elif value is None:
            if nullable:
                cleaned[name] = None
            else:
                problems.append(FieldError(name, "must not be null"))
        else:
            try:
                cleaned[name] = checker(value)
            except ValueError as exc:
                problems.append(FieldError(name, str(exc)))
    if problems:
        raise InvalidInput("; ".join(f"{p.field}: {p.message}" for p in problems),
                           fields=problems)
    return cleaned


def _hostname(value: str) -> str:
    host = value.strip().lower().removesuffix(".")
    if not host:
        raise ValueError("must not be empty; send null to clear it")
    if len(host) > MAX_DOMAIN_LENGTH:
        raise ValueError(f"must be at most {MAX_DOMAIN_LENGTH} characters")
    labels = host.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.match(label) for label in labels):
        raise ValueError("must be a hostname such as messages.example.com")
    if labels[-1].isdigit():
        raise ValueError("must be a hostname, not an IP address")
    return host


def _logo_url(value: str) -> str:
    url = value.strip()
    if not url:
        raise ValueError("must not be empty; send null to clear it")
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() for ch in url) or CONTROL_CHARACTERS.search(url):
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ValueError("must be an http or https URL") from exc
    if parts.scheme.lower() not in ("http", "https") or not hostname:
        raise ValueError("must be an absolute http or https URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain credentials")
    return url


def _email_sender(value: str) -> str:
    text = value.strip()
    if not text:
        raise ValueError("must not be empty; send null to clear it")
    if len(text) > MAX_SENDER_LENGTH:
        raise ValueError(f"must be at most {MAX_SENDER_LENGTH} characters")
    if CONTROL_CHARACTERS.search(text):
        raise ValueError("must not contain control characters")
    match = _SENDER_RE.match(text)
    display, address = (match.group("name").strip(), match.group("address")) if match \
        else ("", text)
    try:
        address = valid_email(address)
    except InvalidInput as exc:
        raise ValueError(f"must be an email address or 'Name <address>': {exc.fields[0].message}"
                         ) from exc
    if len(display) > MAX_SENDER_NAME_LENGTH:
        raise ValueError(f"the name must be at most {MAX_SENDER_NAME_LENGTH} characters")
    sender = f"{display} <{address}>" if display else address
    if len(sender) > MAX_SENDER_LENGTH:
        raise ValueError(f"must be at most {MAX_SENDER_LENGTH} characters")
    return sender
