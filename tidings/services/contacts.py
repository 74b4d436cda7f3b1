"""A tenant's contacts: create, read, list, change and delete one; and the rules every contact
obeys, shared with the CSV import (``services.contact_import``).

The rules (each broken one is ``InvalidInput`` naming the field):
- ``phone`` is stored in E.164; a number written without ``+`` is read in the tenant's
  ``default_region``. It is unique within the tenant (``Conflict(duplicate_phone)``).
- ``name`` is at most 200 characters, ``email`` a valid address of at most 320; both are
  trimmed, and an empty one is stored as null.
- ``segments`` and ``tags`` are sets of names of 1 to 100 characters (trimmed), at most 50 of
  each per contact; they are returned sorted.
- ``attributes`` map keys of 1 to 64 characters of ``A-Z a-z 0-9 _ . -`` to a string (at most
  1,000 characters), a number, a boolean or null; at most 100 per contact.

Services never commit: the caller's unit of work does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import Contact
from tidings.db.repos import contacts as repo
from tidings.db.repos.contacts import SEGMENT, TAG, Labels
from tidings.db.repos.contacts import ContactFilters as ContactFilters  # the list filters
from tidings.db.repos.listing import fetch_page
from tidings.db.repos.scoped import get_owned
from tidings.domain.ids import new_id
from tidings.domain.phone import InvalidPhone, to_e164
from tidings.errors import Conflict, InvalidInput, NotFound
from tidings.services.tenancy import get_tenant

MAX_NAME_LENGTH = 200
MAX_EMAIL_LENGTH = 320
MAX_LABEL_LENGTH = 100
MAX_LABELS = 50
MAX_ATTRIBUTE_KEY_LENGTH = 64
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_VALUE_LENGTH = 1000
_ATTRIBUTE_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
ATTRIBUTE_KEY_PATTERN = f"^{_ATTRIBUTE_KEY.pattern}$"

AttributeValue = str | int | float | bool | None


@dataclass(frozen=True)
class ContactView:
    """A contact as the API shows it: its labels as sorted lists."""

    id: str
    phone: str
    name: str | None
    email: str | None
    segments: list[str]
    tags: list[str]
    attributes: dict[str, AttributeValue]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ContactPage:
    items: list[ContactView]
    total: int


class _Unset(Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET


@dataclass(frozen=True)
class ContactChanges:
    """A partial update: fields left ``UNSET`` keep their value.

    ``name``/``email`` None clears them; ``segments``/``tags`` replace the whole set;
    ``attributes`` merge key by key, a None value removing that key.
    """

    phone: str | _Unset = UNSET
    name: str | None | _Unset = UNSET
    email: str | None | _Unset = UNSET
    segments: Sequence[str] | _Unset = UNSET
    tags: Sequence[str] | _Unset = UNSET
    attributes: Mapping[str, AttributeValue] | _Unset = UNSET


# --- the rules ---------------------------------------------------------------------------------

def clean_phone(text: str, region: str) -> str:
    """``text`` in E.164, reading national numbers in ``region``; ``InvalidInput`` on ``phone``."""
    try:
        return to_e164(text, region)
    except InvalidPhone:
        raise InvalidInput.for_field(
            "phone", f"not a valid phone number (numbers without + are read as {region} "
                     "numbers)") from None


def clean_name(name: str | None) -> str | None:
    name = (name or "").strip()
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput.for_field("name", f"must be at most {MAX_NAME_LENGTH} characters")
    return name or None


def clean_email(email: str | None) -> str | None:
    """The normalised address, None for an empty one; ``InvalidInput`` on ``email``."""
    email = (email or "").strip()
    if not email:
        return None
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidInput.for_field("email", f"must be at most {MAX_EMAIL_LENGTH} characters")
    try:
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidInput.for_field("email", f"not a valid email address: {exc}") from None


def clean_labels(field: str, names: Iterable[str]) -> frozenset[str]:
    """The distinct trimmed names; each 1 to 100 characters and at most 50 of them."""
    cleaned = set()
    for raw in names:
        name = raw.strip()
        if not name or len(name) > MAX_LABEL_LENGTH:
            raise InvalidInput.for_field(field, f"each must be 1 to {MAX_LABEL_LENGTH} characters")
        cleaned.add(name)
    if len(cleaned) > MAX_LABELS:
        raise InvalidInput.for_field(field, f"at most {MAX_LABELS} per contact")
    return frozenset(cleaned)


def attribute_key_problem(key: str) -> str | None:
    """Why ``key`` cannot name an attribute, or None."""
    if _ATTRIBUTE_KEY.fullmatch(key) is None:
        return (f"attribute names are 1 to {MAX_ATTRIBUTE_KEY_LENGTH} characters of "
                "A-Z a-z 0-9 _ . -")
    return None


def check_attribute_count(attributes: Mapping[str, object]) -> None:
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidInput.for_field("attributes", f"at most {MAX_ATTRIBUTES} per contact")


def clean_attributes(attributes: Mapping[str, AttributeValue]) -> dict[str, AttributeValue]:
    """``attributes`` checked key by key (keys, value types and lengths); the count is checked
    by ``check_attribute_count`` on the result a change would leave."""
    cleaned: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        if problem := attribute_key_problem(key):
            raise InvalidInput.for_field(f"attributes.{key}", problem)
        if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_VALUE_LENGTH:
            raise InvalidInput.for_field(
                f"attributes.{key}", f"must be at most {MAX_ATTRIBUTE_VALUE_LENGTH} characters")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput.for_field(f"attributes.{key}", "must be a finite number")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InvalidInput.for_field(f"attributes.{key}",
                                         "must be a string, a number, a boolean or null")
        cleaned[key] = value
    return cleaned


async def tenant_region(session: AsyncSession, tenant_id: str) -> str:
    """The region national phone numbers of ``tenant_id`` are read in."""
    return (await get_tenant(session, tenant_id)).default_region


# --- use cases ---------------------------------------------------------------------------------

def _view(contact: Contact, labels: Labels) -> ContactView:
    return ContactView(id=contact.id, phone=contact.phone, name=contact.name,
                       email=contact.email, segments=sorted(labels.segments),
                       tags=sorted(labels.tags), attributes=dict(contact.attributes),
                       created_at=contact.created_at, updated_at=contact.updated_at)


async def _owned_contact(session: AsyncSession, tenant_id: str, contact_id: str) -> Contact:
    contact = await get_owned(session, Contact, tenant_id, contact_id)
    if contact is None:
        raise NotFound(f"contact {contact_id} not found", "contact_not_found")
    return contact


def _duplicate_phone(phone: str) -> Conflict:
    return Conflict(f"a contact with phone {phone} already exists", "duplicate_phone")


async def _flush_guarding_phone(session: AsyncSession, phone: str) -> None:
    """Flush; a concurrent writer that took ``phone`` first surfaces as ``duplicate_phone``."""
    try:
        await session.flush()
    except IntegrityError:
        raise _duplicate_phone(phone) from None


async def create_contact(session: AsyncSession, *, tenant_id: str, phone: str,
                         name: str | None = None, email: str | None = None,
                         segments: Iterable[str] = (), tags: Iterable[str] = (),
                         attributes: Mapping[str, AttributeValue] | None = None,
                         now: datetime) -> ContactView:
    """Add a contact to ``tenant_id`` (the rules are in the module docstring); null
    attribute values are dropped.

    Raises ``InvalidInput`` on a broken rule and ``Conflict(duplicate_phone)`` when the tenant
    already has the phone; nothing is written then.
    """
    e164 = clean_phone(phone, await tenant_region(session, tenant_id))
    labels = Labels(clean_labels("segments", segments), clean_labels("tags", tags))
    cleaned = {k: v for k, v in clean_attributes(attributes or {}).items() if v is not None}
    check_attribute_count(cleaned)
    contact = Contact(id=new_id(), tenant_id=tenant_id, phone=e164, name=clean_name(name),
                      email=clean_email(email), attributes=cleaned, created_at=now,
                      updated_at=now)
    if await repo.phone_owner(session, tenant_id, e164) is not None:
        raise _duplicate_phone(e164)
    session.add(contact)
    await _flush_guarding_phone(session, e164)
    await repo.add_labels(session, tenant_id,
                          [(contact.id, SEGMENT, n) for n in labels.segments]
                          + [(contact.id, TAG, n) for n in labels.tags])
    return _view(contact, labels)


async def get_contact(session: AsyncSession, *, tenant_id: str, contact_id: str) -> ContactView:
    """The contact; ``NotFound(contact_not_found)`` when unknown or another tenant's."""
    contact = await _owned_contact(session, tenant_id, contact_id)
    labels = await repo.labels_of(session, [contact.id])
    return _view(contact, labels.get(contact.id, Labels()))


async def list_contacts(session: AsyncSession, *, tenant_id: str, filters: ContactFilters,
                        limit: int, offset: int) -> ContactPage:
    """One page of the tenant's contacts passing ``filters``, newest first, with the total.

    Raises ``InvalidInput`` on ``attr.<name>`` when a filtered attribute name is not one an
    attribute can have.
    """
    for name, _value in filters.attributes:
        if problem := attribute_key_problem(name):
            raise InvalidInput.for_field(f"attr.{name}", problem)
    found, total = await fetch_page(session, repo.filtered_contacts(tenant_id, filters),
                                    limit=limit, offset=offset)
    labels = await repo.labels_of(session, [c.id for c in found])
    return ContactPage([_view(c, labels.get(c.id, Labels())) for c in found], total)


async def update_contact(session: AsyncSession, *, tenant_id: str, contact_id: str,
                         changes: ContactChanges, now: datetime) -> ContactView:
    """Apply ``changes`` (see ``ContactChanges``) to the contact and return it.

    Raises ``NotFound(contact_not_found)``, ``InvalidInput`` on a broken rule (including more
    than 100 attributes after the merge), ``Conflict(duplicate_phone)`` when the new phone is
    another contact's; nothing is written then.
    """
    contact = await _owned_contact(session, tenant_id, contact_id)
    stored = (await repo.labels_of(session, [contact.id])).get(contact.id, Labels())
    segments = (stored.segments if isinstance(changes.segments, _Unset)
                else clean_labels("segments", changes.segments))
    tags = stored.tags if isinstance(changes.tags, _Unset) else clean_labels("tags", changes.tags)
    name = contact.name if isinstance(changes.name, _Unset) else clean_name(changes.name)
    email = contact.email if isinstance(changes.email, _Unset) else clean_email(changes.email)
    attributes: dict[str, Any] = dict(contact.attributes)
    if not isinstance(changes.attributes, _Unset):
        for key, value in clean_attributes(changes.attributes).items():
            if value is None:
                attributes.pop(key, None)
            else:
                attributes[key] = value
        check_attribute_count(attributes)
    phone = contact.phone
    if not isinstance(changes.phone, _Unset):
        phone = clean_phone(changes.phone, await tenant_region(session, tenant_id))
        if phone != contact.phone and await repo.phone_owner(session, tenant_id, phone):
            raise _duplicate_phone(phone)
    contact.phone, contact.name, contact.email = phone, name, email
    contact.attributes = attributes
    contact.updated_at = now
    await _flush_guarding_phone(session, contact.phone)
    if segments != stored.segments:
        await repo.replace_labels(session, tenant_id=tenant_id, contact_id=contact.id,
                                  kind=SEGMENT, names=segments)
    if tags != stored.tags:
        await repo.replace_labels(session, tenant_id=tenant_id, contact_id=contact.id,
                                  kind=TAG, names=tags)
    return _view(contact, Labels(segments, tags))


async def delete_contact(session: AsyncSession, *, tenant_id: str, contact_id: str) -> None:
    """Delete the contact and its labels; ``NotFound(contact_not_found)`` when unknown or
    another tenant's."""
    contact = await _owned_contact(session, tenant_id, contact_id)
    session.expunge(contact)
    await repo.delete_contact(session, tenant_id=tenant_id, contact_id=contact.id)
