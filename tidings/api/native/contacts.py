"""``/contacts/…``: the tenant's contact directory and its CSV import."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field, field_validator

from tidings.api.deps import DbSession, Reader, RuntimeDep, requires
from tidings.api.pagination import Pagination
from tidings.api.schemas import ErrorBody, Page, RequestBody
from tidings.domain.roles import Permission
from tidings.services import contact_import, contacts
from tidings.services.auth import Principal
from tidings.services.contacts import (
    MAX_ATTRIBUTES,
    MAX_EMAIL_LENGTH,
    MAX_LABEL_LENGTH,
    MAX_LABELS,
    MAX_NAME_LENGTH,
    AttributeValue,
    ContactChanges,
    ContactFilters,
    ContactView,
)

router = APIRouter(prefix="/contacts", tags=["contacts"],
                   responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody},
                              403: {"model": ErrorBody}, 404: {"model": ErrorBody}})

ContactsWriter = Annotated[Principal, Depends(requires(Permission.CONTACTS_WRITE))]

ATTRIBUTE_FILTER_PREFIX = "attr."
MAX_PHONE_INPUT_LENGTH = 64
MAX_SEARCH_LENGTH = 200

Label = Annotated[str, Field(min_length=1, max_length=MAX_LABEL_LENGTH)]
LabelList = Annotated[list[Label], Field(max_length=MAX_LABELS)]
_ATTRIBUTES_HELP = ("Custom attributes: names of 1 to 64 characters of A-Z a-z 0-9 _ . -, values "
                    "a string (at most 1,000 characters), number, boolean or null; at most 100.")


class ContactBody(BaseModel):
    id: str
    phone: str = Field(description="E.164.")
    name: str | None
    email: str | None
    segments: list[str] = Field(description="Sorted.")
    tags: list[str] = Field(description="Sorted.")
    attributes: dict[str, AttributeValue]
    created_at: datetime
    updated_at: datetime


class ContactCreate(RequestBody):
    phone: str = Field(min_length=1, max_length=MAX_PHONE_INPUT_LENGTH,
                       description="E.164, or national in the tenant's default region.")
    name: str | None = Field(default=None, max_length=MAX_NAME_LENGTH)
    email: str | None = Field(default=None, max_length=MAX_EMAIL_LENGTH)
    segments: LabelList = Field(default_factory=list)
    tags: LabelList = Field(default_factory=list)
    attributes: dict[str, AttributeValue] = Field(default_factory=dict,
                                                  max_length=MAX_ATTRIBUTES,
                                                  description=_ATTRIBUTES_HELP)


class ContactPatch(RequestBody):
    phone: str | None = Field(default=None, min_length=1, max_length=MAX_PHONE_INPUT_LENGTH)
    name: str | None = Field(default=None, max_length=MAX_NAME_LENGTH,
                             description="null clears it.")
    email: str | None = Field(default=None, max_length=MAX_EMAIL_LENGTH,
                              description="null clears it.")
    segments: LabelList | None = Field(default=None, description="Replaces the whole list.")
    tags: LabelList | None = Field(default=None, description="Replaces the whole list.")
    attributes: dict[str, AttributeValue] | None = Field(
        default=None, max_length=2 * MAX_ATTRIBUTES,
        description="Merged key by key; a null value removes that key. " + _ATTRIBUTES_HELP)

    @field_validator("phone", "segments", "tags", "attributes")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Only given values are validated, so this rejects an explicit null.
        if value is None:
            raise ValueError("may not be null")
        return value


class RejectedRowBody(BaseModel):
    row: int = Field(description="Data row number: 1 is the first row after the header.")
    reason: str


class ImportReportBody(BaseModel):
    total: int = Field(description="Data rows read (blank rows are not counted).")
    created: int
    updated: int
    rejected_count: int
    rejected: list[RejectedRowBody] = Field(description="The first 1,000 rejected rows.")
    rejected_truncated: bool = Field(description="Whether more rows were rejected than listed.")


def _contact_body(view: ContactView) -> ContactBody:
    return ContactBody(id=view.id, phone=view.phone, name=view.name, email=view.email,
                       segments=view.segments, tags=view.tags, attributes=view.attributes,
                       created_at=view.created_at, updated_at=view.updated_at)


@router.post("/bulk-import/", response_model=ImportReportBody,
             summary="Import contacts from a CSV file (contacts.write)",
             responses={409: {"model": ErrorBody}})
async def bulk_import(file: Annotated[UploadFile, File(description="The CSV file (UTF-8).")],
                      caller: ContactsWriter, session: DbSession,
                      runtime: RuntimeDep) -> ImportReportBody:
    """Upsert contacts by phone from a multipart ``file`` field holding a CSV.

    The first row names the columns (any case): ``phone`` (required), ``name``, ``email``,
    ``segments`` and ``tags`` (several separated by ``;``); any other column becomes a custom
    attribute with the cell's text (empty cells are skipped). A new phone creates a contact; a
    known one (or one earlier in the file) is updated: a non-empty name or email overwrites,
    segments and tags are added, attributes merged. Bad rows are listed in ``rejected`` by data
    row number (1 = the first row after the header) and the others are kept.

    400 ``invalid_csv`` for an empty file or a bad header (no phone column, unnamed, repeated or
    badly named columns) and ``invalid_encoding`` for a file that is not UTF-8 (a BOM is fine);
    nothing is imported then.
    """
    await file.seek(0)
    report = await contact_import.import_contacts(session, tenant_id=caller.tenant_id,
                                                  source=file.file, now=runtime.clock())
    return ImportReportBody(
        total=report.total, created=report.created, updated=report.updated,
        rejected_count=report.rejected_count,
        rejected=[RejectedRowBody(row=r.row, reason=r.reason) for r in report.rejected],
        rejected_truncated=report.rejected_truncated)


@router.get("/", response_model=Page[ContactBody], summary="The tenant's contacts, newest first")
async def list_contacts(
        request: Request, caller: Reader, session: DbSession, page: Pagination,
        search: Annotated[str | None, Query(
            max_length=MAX_SEARCH_LENGTH,
            description="Case-insensitive text in the phone, name or email.")] = None,
        segment: Annotated[str | None, Query(max_length=MAX_LABEL_LENGTH,
                                             description="Only contacts in this segment.")] = None,
        tag: Annotated[str | None, Query(max_length=MAX_LABEL_LENGTH,
                                         description="Only contacts with this tag.")] = None,
) -> Page[ContactBody]:
    """Filters combine with AND. Besides ``search``, ``segment`` and ``tag``, any query
    parameter ``attr.<name>=<value>`` keeps contacts whose attribute ``<name>`` has the text
    ``<value>`` (a number matches in decimal, a boolean as ``true``/``false``); give several to
    require them all. In ``search``, spaces, dashes, dots and brackets are ignored when
    matching the phone (stored in E.164)."""
    attributes = tuple((key[len(ATTRIBUTE_FILTER_PREFIX):], value)
                       for key, value in request.query_params.multi_items()
                       if key.startswith(ATTRIBUTE_FILTER_PREFIX))
    found = await contacts.list_contacts(
        session, tenant_id=caller.tenant_id,
        filters=ContactFilters(search=search, segment=segment, tag=tag, attributes=attributes),
        limit=page.limit, offset=page.offset)
    return page.page([_contact_body(v) for v in found.items], found.total)


@router.post("/", response_model=ContactBody, status_code=201,
             summary="Create a contact (contacts.write)", responses={409: {"model": ErrorBody}})
async def create_contact(body: ContactCreate, caller: ContactsWriter, session: DbSession,
                         runtime: RuntimeDep) -> ContactBody:
    """The phone is normalised to E.164 (a national number is read in the tenant's default
    region) and must be new to the tenant (409 ``duplicate_phone``). Segments and tags are
    de-duplicated and returned sorted; null attribute values are dropped."""
    view = await contacts.create_contact(
        session, tenant_id=caller.tenant_id, phone=body.phone, name=body.name,
        email=body.email, segments=body.segments, tags=body.tags, attributes=body.attributes,
        now=runtime.clock())
    return _contact_body(view)


@router.get("/{contact_id}/", response_model=ContactBody, summary="One contact")
async def get_contact(contact_id: str, caller: Reader, session: DbSession) -> ContactBody:
    return _contact_body(await contacts.get_contact(session, tenant_id=caller.tenant_id,
                                                    contact_id=contact_id))


@router.patch("/{contact_id}/", response_model=ContactBody,
              summary="Change a contact (contacts.write)", responses={409: {"model": ErrorBody}})
async def update_contact(contact_id: str, body: ContactPatch, caller: ContactsWriter,
                         session: DbSession, runtime: RuntimeDep) -> ContactBody:
    """A partial update: only the fields given change.

    - ``phone``, ``name``, ``email``: replaced (``name``/``email`` null clear them; ``phone``
      may not be null and must not be another contact's: 409 ``duplicate_phone``).
    - ``segments``, ``tags``: the list given replaces the whole list (``[]`` empties it).
    - ``attributes``: merged key by key into the stored ones; a key with a null value is
      removed, keys not given are kept. At most 100 attributes may remain.
    """
    view = await contacts.update_contact(
        session, tenant_id=caller.tenant_id, contact_id=contact_id,
        changes=ContactChanges(**body.model_dump(exclude_unset=True)), now=runtime.clock())
    return _contact_body(view)


@router.delete("/{contact_id}/", status_code=204, response_class=Response,
               summary="Delete a contact (contacts.write)")
async def delete_contact(contact_id: str, caller: ContactsWriter,
                         session: DbSession) -> Response:
    await contacts.delete_contact(session, tenant_id=caller.tenant_id, contact_id=contact_id)
    return Response(status_code=204)
