"""Contact queries: the filtered newest-first list, segment and tag labels, and the chunked bulk
writes of the CSV import (Core ``executemany``, no ORM object per row). Every read is scoped by
tenant; the writes take ids the caller has already read through a scoped query.

The bulk inserts ask for ``RETURNING`` (and ignore it): that makes SQLAlchemy send the rows as
multi-row ``INSERT … VALUES`` batches ("insertmanyvalues") instead of one statement per row, which
on asyncpg is about a third faster.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import TableValuedAlias

from tidings.db.models import Contact, ContactLabel
from tidings.db.repos.scoped import owned_by

SEGMENT = "segment"
TAG = "tag"

_CONTACTS = cast(Table, Contact.__table__)
_LABELS = cast(Table, ContactLabel.__table__)
# Characters people put in phone numbers that E.164 (what is stored) never holds.
_PHONE_PUNCTUATION = re.compile(r"[\s().\-/]")


@dataclass(frozen=True)
class ContactFilters:
    """What ``GET /contacts/`` narrows by; every given filter must hold (AND).

    ``attributes`` pairs are ``(name, value)``: the attribute's text (see ``json_text``) equals
    ``value``. ``search`` is a case-insensitive substring of the phone, name or email.
    """

    search: str | None = None
    segment: str | None = None
    tag: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Labels:
    """A contact's segments and tags."""

    segments: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class StoredContact:
    """The columns of an existing contact that the import merges into."""

    id: str
    name: str | None
    email: str | None
    attributes: dict[str, Any]


@dataclass(frozen=True)
class ContactValues:
    """One contact row to insert or update in bulk (``phone`` is ignored by updates)."""

    id: str
    phone: str
    name: str | None
    email: str | None
    attributes: dict[str, Any]


class json_text(FunctionElement[str]):
    """``json_text(column, key)``: the text of a JSON object's member, the same on SQLite and
    PostgreSQL — a string as it is, a number in decimal, a boolean as ``true``/``false``, and
    NULL for a JSON null or an absent key. ``key`` is bound, never inlined, but must be a valid
    attribute name (SQLite builds a JSON path from it)."""

    type = String()
    inherit_cache = True
    name = "json_text"


@compiles(json_text, "postgresql")
def _json_text_postgresql(element: json_text, compiler: SQLCompiler, **kw: Any) -> str:
    column, key = list(element.clauses)
    return f"({compiler.process(column, **kw)} ->> {compiler.process(key, **kw)})"


@compiles(json_text, "sqlite")
def _json_text_sqlite(element: json_text, compiler: SQLCompiler, **kw: Any) -> str:
    column, key = list(element.clauses)
    document = compiler.process(column, **kw)
    path = f"('$.\"' || {compiler.process(key, **kw)} || '\"')"
    return (f"(CASE json_type({document}, {path}) WHEN 'true' THEN 'true' "
            f"WHEN 'false' THEN 'false' "
            f"ELSE CAST(json_extract({document}, {path}) AS TEXT) END)")


def _has_label(tenant_id: str, kind: str, name: str) -> ColumnElement[bool]:
    return exists().where(ContactLabel.contact_id == Contact.id,
                          ContactLabel.tenant_id == tenant_id,
                          ContactLabel.kind == kind, ContactLabel.name == name)


def _matches_search(text: str) -> ColumnElement[bool]:
    matches = [Contact.name.icontains(text, autoescape=True),
               Contact.email.icontains(text, autoescape=True)]
    phone_text = _PHONE_PUNCTUATION.sub("", text)
    if phone_text:
        matches.append(Contact.phone.contains(phone_text, autoescape=True))
    return or_(*matches)


def filtered_contacts(tenant_id: str, filters: ContactFilters) -> Select[Contact]:
    """The tenant's contacts passing ``filters``, newest first (``created_at``, then ``id``,
    descending: a total order, so pages neither overlap nor skip)."""
    query = owned_by(Contact, tenant_id)
    if filters.search:
        query = query.where(_matches_search(filters.search))
    if filters.segment is not None:
        query = query.where(_has_label(tenant_id, SEGMENT, filters.segment))
    if filters.tag is not None:
        query = query.where(_has_label(tenant_id, TAG, filters.tag))
    for name, value in filters.attributes:
        query = query.where(json_text(Contact.attributes, name) == value)
    return query.order_by(Contact.created_at.desc(), Contact.id.desc())


async def phone_owner(session: AsyncSession, tenant_id: str, phone: str) -> str | None:
    """The id of the tenant's contact with ``phone`` (E.164), if any."""
    result = await session.execute(
        select(Contact.id).where(Contact.tenant_id == tenant_id, Contact.phone == phone))
    return result.scalar_one_or_none()


def _each_of(values: Collection[str], column: str) -> TableValuedAlias:
    """``unnest(:values) AS wanted(column)`` (PostgreSQL): one row per value, for a per-value
    lookup to be ``LATERAL``-joined to. See ``stored_by_phone`` for why."""
    return (func.unnest(sql_cast(list(values), postgresql.ARRAY(String)))
            .table_valued(column).render_derived(name="wanted"))


async def labels_of(session: AsyncSession, contact_ids: Collection[str]) -> dict[str, Labels]:
    """The labels of each of ``contact_ids`` in one query; a contact without any is absent.

    The ids must come from a tenant-scoped read (labels carry no other owner check here).
    """
    if not contact_ids:
        return {}
    columns = (_LABELS.c.contact_id, _LABELS.c.kind, _LABELS.c.name)
    if session.get_bind().dialect.name == "postgresql":
        wanted = _each_of(contact_ids, "id")
        # OFFSET 0 keeps the planner from flattening the per-id lookup into a join it may plan
        # as a scan of the whole table.
        found = select(*columns).where(_LABELS.c.contact_id == wanted.c.id).offset(0).lateral()
        query = select(found).select_from(wanted).join(found, true())
    else:
        query = select(*columns).where(_LABELS.c.contact_id.in_(contact_ids))
    found_labels: dict[str, tuple[set[str], set[str]]] = {}
    for contact_id, kind, name in await session.execute(query):
        segments, tags = found_labels.setdefault(contact_id, (set(), set()))
        (segments if kind == SEGMENT else tags).add(name)
    return {contact_id: Labels(frozenset(segments), frozenset(tags))
            for contact_id, (segments, tags) in found_labels.items()}


async def add_labels(session: AsyncSession, tenant_id: str,
                     labels: Iterable[tuple[str, str, str]]) -> None:
    """Insert ``(contact_id, kind, name)`` labels in one ``executemany``; none may exist yet."""
    rows = [{"contact_id": contact_id, "kind": kind, "name": name, "tenant_id": tenant_id}
            for contact_id, kind, name in labels]
    if rows:
        await session.execute(insert(_LABELS).returning(_LABELS.c.contact_id), rows)


async def replace_labels(session: AsyncSession, *, tenant_id: str, contact_id: str, kind: str,
                         names: Iterable[str]) -> None:
    """Make ``names`` the contact's whole set of ``kind`` labels."""
    await session.execute(delete(_LABELS).where(_LABELS.c.contact_id == contact_id,
                                                _LABELS.c.kind == kind))
    await add_labels(session, tenant_id, ((contact_id, kind, name) for name in names))


async def delete_contact(session: AsyncSession, *, tenant_id: str, contact_id: str) -> None:
    """Delete the contact and its labels."""
    await session.execute(delete(_LABELS).where(_LABELS.c.contact_id == contact_id))
    await session.execute(delete(_CONTACTS).where(_CONTACTS.c.tenant_id == tenant_id,
                                                  _CONTACTS.c.id == contact_id))


async def stored_by_phone(session: AsyncSession, tenant_id: str,
                          phones: Collection[str]) -> dict[str, StoredContact]:
    """The tenant's contacts among ``phones`` (E.164; keep it to ~1,000 per call), by phone.

    On PostgreSQL each phone is looked up on its own through the ``(tenant_id, phone)`` unique
    index (a ``LATERAL … LIMIT 1`` join). The plain ``phone IN (…)`` form lets the planner scan
    the tenant's rows instead when the table's statistics predate the import (or it was never
    analysed), and a cached generic plan then keeps scanning a table the import is growing:
    100,000 rows took minutes. SQLite always uses the unique index for the ``IN`` form.
    """
    if not phones:
        return {}
    columns = (_CONTACTS.c.phone, _CONTACTS.c.id, _CONTACTS.c.name, _CONTACTS.c.email,
               _CONTACTS.c.attributes)
    if session.get_bind().dialect.name == "postgresql":
        wanted = _each_of(phones, "phone")
        found = (select(*columns)
                 .where(_CONTACTS.c.tenant_id == tenant_id, _CONTACTS.c.phone == wanted.c.phone)
                 .limit(1).lateral("found"))
        query = select(found).select_from(wanted).join(found, true())
    else:
        query = select(*columns).where(_CONTACTS.c.tenant_id == tenant_id,
                                       _CONTACTS.c.phone.in_(phones))
    result = await session.execute(query)
    return {phone: StoredContact(contact_id, name, email, attributes or {})
            for phone, contact_id, name, email, attributes in result}


async def insert_contacts(session: AsyncSession, *, tenant_id: str,
                          contacts: Sequence[ContactValues], now: datetime) -> None:
    """Insert new contacts in one ``executemany``, created and updated at ``now``."""
    if contacts:
        await session.execute(insert(_CONTACTS).returning(_CONTACTS.c.id), [
            {"id": c.id, "tenant_id": tenant_id, "phone": c.phone, "name": c.name,
             "email": c.email, "attributes": c.attributes, "created_at": now, "updated_at": now}
            for c in contacts])


async def update_contacts(session: AsyncSession, *, tenant_id: str,
                          contacts: Sequence[ContactValues], now: datetime) -> None:
    """Overwrite name, email and attributes of existing contacts (by id) in one
    ``executemany``, updated at ``now``."""
    if not contacts:
        return
    statement = (update(_CONTACTS)
                 .where(and_(_CONTACTS.c.tenant_id == tenant_id,
                             _CONTACTS.c.id == bindparam("contact_id")))
                 .values(name=bindparam("new_name"), email=bindparam("new_email"),
                         attributes=bindparam("new_attributes", type_=_CONTACTS.c.attributes.type),
                         updated_at=bindparam("new_updated_at",
                                              type_=_CONTACTS.c.updated_at.type)))
    await session.execute(statement, [
        {"contact_id": c.id, "new_name": c.name, "new_email": c.email,
         "new_attributes": c.attributes, "new_updated_at": now}
        for c in contacts])
