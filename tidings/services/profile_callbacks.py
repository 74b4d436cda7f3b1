"""Service-profile callbacks: an SMS app's inbound messages (``POST``) and the delivery
receipts of its messages (``PATCH``), to its profile's ``callback_url``, in the seed's shapes.

Inbound (profile event ``inbound``)::

    {"id": <the message's number>, "message_id": "<its id>", "endpoint": {"id", "name"},
     "organisation": {"id", "name"}, "source_address", "dest_address", "payload", "dcs",
     "pid", "submit_date"}

Delivery receipt (profile event ``delivery``), on each change of an outbound message's state::

    {"id": "<message id>", "endpoint", "organisation", "source_address", "dest_address",
     "payload", "submit_date", "delivery_date"?, "final_date"?, "status": {"id", "description"},
     "state", "error": {"code", "text"} | null}

``endpoint`` is the SMS app, ``organisation`` the tenant. Addresses are the numbers as stored
without the ``+`` (``14155550100``; a short code or sender name as it is). ``dcs`` is the data
coding scheme (0 GSM-7, 8 UCS-2), ``pid`` 0. ``status`` ids: 1 pending (queued), 2 in progress
(sending), 3 buffered (the provider took it), 4 delivered (delivered or read), 5 failed,
6 expired, 7 cancelled; ``state`` is the neutral state. ``delivery_date`` is when it was
delivered, ``final_date`` when it reached a final state; both are left out until known.
Signed with a JWT of the profile's ``api_secret`` by the sender (``pipeline.callbacks``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import CallbackDelivery, ChannelAccount, Message, ServiceProfile, Tenant
from tidings.domain.ids import new_id
from tidings.domain.segments import Encoding
from tidings.domain.states import MessageState
from tidings.services.callback_queue import MessageSnapshot, delivery_row, rfc3339

INBOUND_EVENT: Final = "inbound"
DELIVERY_EVENT: Final = "delivery"

_S = MessageState
STATUS: Final = {
    _S.QUEUED.value: (1, "pending"), _S.SENDING.value: (2, "in progress"),
    _S.SENT.value: (3, "buffered"), _S.DELIVERED.value: (4, "delivered"),
    _S.READ.value: (4, "delivered"), _S.FAILED.value: (5, "failed"),
    _S.EXPIRED.value: (6, "expired"), _S.CANCELLED.value: (7, "cancelled"),
}
"""Neutral state -> the receipt's ``status`` ``(id, description)``."""
_FINAL = frozenset({_S.DELIVERED.value, _S.READ.value, _S.FAILED.value, _S.EXPIRED.value,
                    _S.CANCELLED.value})


class _Targets:
    """The apps of some messages that have a profile taking an event, and their tenants."""

    def __init__(self, apps: dict[str, tuple[ChannelAccount, ServiceProfile]],
                 tenants: dict[str, str]) -> None:
        self.apps = apps
        self.tenant_names = tenants

    @classmethod
    async def load(cls, session: AsyncSession, app_ids: Iterable[str], event: str) -> _Targets:
        found = (await session.execute(
            select(ChannelAccount, ServiceProfile)
            .join(ServiceProfile, ServiceProfile.id == ChannelAccount.service_profile_id)
            .where(ChannelAccount.id.in_(set(app_ids))))).all()
        apps = {app.id: (app, profile) for app, profile in found if event in profile.events}
        tenants: dict[str, str] = {}
        if apps:
            found_names = await session.execute(select(Tenant.id, Tenant.name).where(
                Tenant.id.in_({app.tenant_id for app, _ in apps.values()})))
            tenants = {tenant_id: name for tenant_id, name in found_names}
        return cls(apps, tenants)

    def parties(self, app: ChannelAccount) -> dict[str, Any]:
        return {"endpoint": {"id": app.id, "name": app.name},
                "organisation": {"id": app.tenant_id,
                                 "name": self.tenant_names.get(app.tenant_id, "")}}


def _address(number: str | None) -> str:
    return (number or "").removeprefix("+")


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def inbound_body(message: Message, parties: dict[str, Any]) -> dict[str, Any]:
    """The inbound callback's body for a stored inbound ``message`` (module docstring)."""
    return {"id": message.seq, "message_id": message.id, **parties,
            "source_address": _address(message.from_number),
            "dest_address": _address(message.to_number), "payload": message.text,
            "dcs": 8 if message.encoding == Encoding.UCS2.value else 0, "pid": 0,
            "submit_date": rfc3339(message.created_at)}


def receipt_body(view: dict[str, Any], parties: dict[str, Any]) -> dict[str, Any]:
    """The delivery receipt's body for a message as ``message_view`` shows it."""
    state = view["state"]
    status_id, description = STATUS[state]
    body: dict[str, Any] = {
        "id": view["id"], **parties, "source_address": _address(view["sender_id"]),
        "dest_address": _address(view["phone"]), "payload": view["text"],
        "submit_date": rfc3339(view["created_at"])}
    if view["delivered_at"] is not None:
        body["delivery_date"] = rfc3339(view["delivered_at"])
    final = view["delivered_at"] if state in (_S.DELIVERED.value, _S.READ.value) \
        else view["completed_at"]
    if state in _FINAL and final is not None:
        body["final_date"] = rfc3339(final)
    body["status"] = {"id": status_id, "description": description}
    body["state"] = state
    body["error"] = ({"code": view["error_code"], "text": view["error_detail"]}
                     if view["error_code"] or view["error_detail"] else None)
    return body


async def enqueue_inbound(session: AsyncSession, message: Message, now: datetime) -> int:
    """Queue the inbound callback of ``message`` when its app's profile takes ``inbound``."""
    targets = await _Targets.load(session, [message.channel_account_id], INBOUND_EVENT)
    if message.channel_account_id not in targets.apps:
        return 0
    app, profile = targets.apps[message.channel_account_id]
    await session.execute(insert(CallbackDelivery), [delivery_row(
        tenant_id=message.tenant_id, event_id=new_id(), event=INBOUND_EVENT,
        message_id=message.id, url=profile.callback_url, method="POST",
        body=_dumps(inbound_body(message, targets.parties(app))), now=now,
        profile_id=profile.id)])
    return 1


async def enqueue_receipts(session: AsyncSession, snapshots: Sequence[MessageSnapshot],
                           now: datetime) -> int:
    """Queue a delivery receipt for each outbound snapshot whose app's profile takes
    ``delivery``."""
    outbound = [s for s in snapshots if s.view["direction"] != "inbound"]
    if not outbound:
        return 0
    targets = await _Targets.load(session, {s.app_id for s in outbound}, DELIVERY_EVENT)
    rows = []
    for snapshot in outbound:
        if snapshot.app_id not in targets.apps:
            continue
        app, profile = targets.apps[snapshot.app_id]
        rows.append(delivery_row(
            tenant_id=snapshot.tenant_id, event_id=new_id(), event=DELIVERY_EVENT,
            message_id=snapshot.message_id, url=profile.callback_url, method="PATCH",
            body=_dumps(receipt_body(snapshot.view, targets.parties(app))), now=now,
            profile_id=profile.id))
    if rows:
        await session.execute(insert(CallbackDelivery), rows)
    return len(rows)
