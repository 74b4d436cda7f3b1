"""The binds of one SMPP app: kept up, fed with submits, and listened to.

``SmppConnector.start`` runs one supervisor per bind (``Config.binds`` transceivers, or as many
transmitter and receiver pairs). A supervisor binds, waits for the session to end, and binds
again after a backoff (``reconnect_min_seconds`` doubling to ``reconnect_max_seconds``, back
to the minimum after a session that stayed up), so a refused bind, an unbind or a dropped link
only delays: messages claimed meanwhile wait for a bind up to the response timeout and are
otherwise handed back (``Retry``), and the dispatcher claims nothing for an app that is not
``ready``.

``send`` splits the text into parts (``tidings.domain.sms_encoding.smpp_parts``: UDH
concatenation, GSM-7 or UCS-2) and submits them in order, each through the next bound session
with a free window slot. Answers map onto outcomes:

    ESME_ROK                                   next part; Accepted with every part's id
    ESME_RTHROTTLED, ESME_RMSGQFUL, generic_nack  the app pauses (0.25 s doubling to 8 s,
                                               reset by the next success); Retry after the pause
    ESME_RSYSERR, ESME_RX_T_APPN, ESME_RSUBMITFAIL, no answer, link lost   Retry
    any other status                           Reject, with the status's name as the code

A message whose later part fails after earlier parts were accepted is retried whole (delivery
is at-least-once; the phone may show the earlier parts twice).

A deliver_sm is a delivery receipt when its esm_class says so (or it carries the
``receipted_message_id`` TLV): it becomes a ``StatusUpdate`` for the id in the canonical form
of ``dlr_id_format`` (an ``UnknownStatus`` for a stat word we do not map). Any other
deliver_sm is an ``InboundMessage``, or an ``InboundPart`` when it is one part of a long one
(a concatenation header): the parts are kept in the database and joined once all are in.
Either is handed to ``on_events`` and acknowledged only once that returns (stored); if it
raises, the SMSC is answered ``ESME_RX_T_APPN`` and sends it again.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import smpp34

from tidings.domain.ids import new_id
from tidings.domain.smpp_receipts import RECEIPT_STATES, parse_receipt, receipt_key, submit_key
from tidings.domain.sms_encoding import decode_short_message, parse_udh, smpp_parts
from tidings.domain.states import MessageState
from tidings.providers.base import (
    Accepted,
    InboundMessage,
    InboundPart,
    OutboundSms,
    Reject,
    Retry,
    SendOutcome,
    StatusUpdate,
    UnknownStatus,
    WebhookEvent,
)
from tidings.providers.sms.smpp import Config
from tidings.providers.sms.smpp.pdu import BindMode, Pdu, Status, status_name
from tidings.providers.sms.smpp.session import (
    BindRefused,
    LinkLost,
    SessionSettings,
    SmppSession,
    SubmitAnswer,
    SubmitTimeout,
)

log = logging.getLogger(__name__)


EventsHandler = Callable[[Sequence[WebhookEvent]], Awaitable[object]]
"""Stores what a deliver_sm carried; raises when it could not (the SMSC then resends)."""

SLOW_DOWN: Final = frozenset({Status.ESME_RTHROTTLED, Status.ESME_RMSGQFUL})
RETRYABLE: Final = frozenset({Status.ESME_RSYSERR, Status.ESME_RX_T_APPN,
                              Status.ESME_RSUBMITFAIL, Status.ESME_RUNKNOWNERR})
PAUSE_FIRST_SECONDS: Final = 0.25
PAUSE_MAX_SECONDS: Final = 8.0
STAYED_UP_SECONDS: Final = 10.0
"""A session that lasted this long resets the reconnect backoff to its minimum."""
RECEIPT_ESM_TYPES: Final = frozenset({0x04, 0x20})
"""esm_class message types (bits 2-5) of an SMSC delivery receipt and an intermediate
notification."""
UDHI: Final = 0x40
MESSAGE_PAYLOAD_TAG: Final = 0x0424
RECEIPTED_ID_TAG: Final = 0x001E


class SmppConnector:
    """One app's binds; ``start`` it, ``send`` through it, ``stop`` it."""

    def __init__(self, account_id: str, config: Config, password: str,
                 on_events: EventsHandler) -> None:
        self.account_id = account_id
        self.config = config
        self._password = password
        self._on_events = on_events
        self._sessions: list[SmppSession] = []  # bound, able to send
        self._has_session = asyncio.Event()
        self._next_session = itertools.count()
        self._supervisors: list[asyncio.Task[None]] = []
        self._stopping = False
        self._references = itertools.count(random.randrange(256))
        self._paused_until = 0.0
        self._pause = 0.0
        self._next_slot = 0.0
        self.last_error: str | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        modes = ([BindMode.TRANSCEIVER] if self.config.bind_mode == "transceiver"
                 else [BindMode.TRANSMITTER, BindMode.RECEIVER])
        for number in range(self.config.binds):
            for mode in modes:
                self._supervisors.append(asyncio.create_task(
                    self._keep_bound(mode), name=f"smpp:{self.account_id}:{mode.name}{number}"))

    async def stop(self) -> None:
        """Unbind every session and stop binding again."""
        self._stopping = True
        for task in self._supervisors:
            task.cancel()
        await asyncio.gather(*self._supervisors, return_exceptions=True)
        self._supervisors.clear()


    @property
    def ready(self) -> bool:
        """At least one bind that can send is up."""
        return bool(self._sessions)

    def _settings(self, mode: BindMode) -> SessionSettings:
        config = self.config
        return SessionSettings(
            host=config.host, port=config.port, system_id=config.system_id,
            password=self._password, system_type=config.system_type, mode=mode,
            window=config.window, enquire_link_seconds=config.enquire_link_seconds,
            response_timeout=config.response_timeout_seconds,
            connect_timeout=config.response_timeout_seconds)

    async def _keep_bound(self, mode: BindMode) -> None:
        config = self.config
        delay = config.reconnect_min_seconds
        loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                session = await SmppSession.open(self._settings(mode), self._deliver)
            except BindRefused as exc:
                self._note(f"{mode.name.lower()} bind refused: {status_name(exc.status)}")
            except OSError as exc:
                self._note(f"{mode.name.lower()} bind failed: {type(exc).__name__} {exc}")
            except Exception:  # a bug must not end the binding for good
                log.exception("smpp app %s: binding raised", self.account_id)
            else:
                bound_at = loop.time()
                log.info("smpp app %s: %s bound to %s:%d", self.account_id, mode.name.lower(),
                         config.host, config.port)
                self.last_error = None
                try:
                    if mode.sends:
                        self._sessions.append(session)
                        self._has_session.set()
                    reason = await asyncio.shield(session.closed)
                except asyncio.CancelledError:
                    await session.unbind()
                    raise
                finally:
                    self._forget(session)
                self._note(f"{mode.name.lower()} bind ended: {reason}")
                if loop.time() - bound_at >= STAYED_UP_SECONDS:
                    delay = config.reconnect_min_seconds
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, config.reconnect_max_seconds)

    def _forget(self, session: SmppSession) -> None:
        if session in self._sessions:
            self._sessions.remove(session)
        if not self._sessions:
            self._has_session.clear()

    def _note(self, problem: str) -> None:
        self.last_error = problem
        log.warning("smpp app %s: %s", self.account_id, problem)

    # --- sending --------------------------------------------------------------------------

    async def send(self, message: OutboundSms) -> SendOutcome:
        """Submit every part of ``message`` and say what became of it (module docstring)."""
        config = self.config
        source, source_ton, source_npi = source_address(message.sender_id, config)
        destination = message.to.removeprefix("+")
        try:
            parts = smpp_parts(message.text, next(self._references) % 256, config.data_coding)
        except ValueError as exc:
            return Reject("unencodable", str(exc))
        ids: list[str] = []
        for part in parts:
            submit_sm = smpp34.SubmitSm(
                source, destination, part.short_message,
                source_addr_ton=source_ton, source_addr_npi=source_npi,
                dest_addr_ton=config.dest_addr_ton, dest_addr_npi=config.dest_addr_npi,
                esm_class=UDHI if part.esm_class_udhi else 0, data_coding=part.data_coding,
                registered_delivery=1 if config.registered_delivery else 0).encode()
            answer = await self._submit(submit_sm)
            if not isinstance(answer, SubmitAnswer):
                return answer
            ids.append(answer.message_id)
        return Accepted(tuple(submit_key(id_, config.dlr_id_format) for id_ in ids),
                        raw={"message_ids": ids})

    async def _submit(self, submit_sm: bytes) -> SubmitAnswer | Retry | Reject:
        await self._pace()
        session = await self._sending_session()
        if session is None:
            return Retry("smpp_not_bound", self.last_error or "no bind is up")
        try:
            answer = await session.submit(submit_sm)
        except LinkLost as exc:
            return Retry("smpp_link_lost", str(exc))
        except SubmitTimeout as exc:
            return Retry("smpp_timeout", str(exc))
        if answer.status == Status.ESME_ROK:
            self._pause = 0.0
            return answer
        name = "generic_nack" if answer.nacked else status_name(answer.status)
        reason = (f"the SMSC answered generic_nack ({status_name(answer.status)})"
                  if answer.nacked else f"the SMSC answered {name}")
        if answer.nacked or answer.status in SLOW_DOWN:
            pause = self._slow_down()
            return Retry(name, reason, retry_after=pause)
        if answer.status in RETRYABLE:
            return Retry(name, reason)
        return Reject(name, reason)

    async def _sending_session(self) -> SmppSession | None:
        if not self._sessions:
            try:
                async with asyncio.timeout(self.config.response_timeout_seconds):
                    await self._has_session.wait()
            except TimeoutError:
                return None
        sessions = self._sessions
        if not sessions:
            return None
        return sessions[next(self._next_session) % len(sessions)]

    async def _pace(self) -> None:
        """Wait out a throttling pause, then for the next slot of ``throughput``."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._paused_until > now:
            await asyncio.sleep(self._paused_until - now)
            now = loop.time()
        if self.config.throughput is not None:
            slot = max(now, self._next_slot)
            self._next_slot = slot + 1.0 / self.config.throughput
            if slot > now:
                await asyncio.sleep(slot - now)

    def _slow_down(self) -> float:
        self._pause = min(max(self._pause * 2, PAUSE_FIRST_SECONDS), PAUSE_MAX_SECONDS)
        loop = asyncio.get_running_loop()
        self._paused_until = max(self._paused_until, loop.time() + self._pause)
        return self._pause

    # --- receiving ------------------------------------------------------------------------

    async def _deliver(self, pdu: Pdu) -> int:
        event = deliver_sm_event(pdu, self.config)
        if event is None:
            return Status.ESME_ROK  # unreadable: logged; acknowledged, or it comes back forever
        await self._on_events([event])
        return Status.ESME_ROK


def deliver_sm_event(pdu: Pdu, config: Config) -> WebhookEvent | None:
    """What one deliver_sm carries: a receipt (``StatusUpdate``/``UnknownStatus``), an
    ``InboundMessage``, or an ``InboundPart`` of a long one; None (logged) when it cannot be
    read."""
    try:
        decoded = smpp34.decode(pdu.wire())
    except smpp34.SmppError as exc:
        log.warning("smpp: unreadable deliver_sm (%s)", exc)
        return None
    if not isinstance(decoded, smpp34.DeliverSm):
        return None
    tlvs = {tlv.tag: tlv.value for tlv in decoded.tlvs}
    if (decoded.esm_class & 0x3C) in RECEIPT_ESM_TYPES or RECEIPTED_ID_TAG in tlvs:
        receipt = parse_receipt(decoded.short_message, tlvs, decoded.data_coding)
        if receipt is None:
            log.warning("smpp: a delivery receipt without an id or a stat: %r",
                        decoded.short_message[:160])
            return None
        key = receipt_key(receipt.message_id, config.dlr_id_format)
        state = RECEIPT_STATES.get(receipt.stat)
        if state is None:
            return UnknownStatus(key, receipt.stat)
        failed = state is MessageState.FAILED
        return StatusUpdate(key, state, receipt.stat,
                            error_code=receipt.err if failed else None,
                            occurred_at=receipt.done_at)
    payload = decoded.short_message or tlvs.get(MESSAGE_PAYLOAD_TAG, b"")
    concatenation = None
    if decoded.esm_class & UDHI:
        try:
            concatenation, payload = parse_udh(payload)
        except ValueError as exc:
            log.warning("smpp: an inbound message with an unreadable header (%s)", exc)
            return None
    message = InboundMessage(
        provider_message_id=f"smpp-{new_id()}",
        from_number=_number(decoded.source_addr, decoded.source_addr_ton),
        to_number=_number(decoded.destination_addr, decoded.dest_addr_ton),
        text=decode_short_message(payload, decoded.data_coding))
    if concatenation is not None and concatenation.total > 1:
        return InboundPart(message, concatenation.reference, concatenation.total,
                           concatenation.sequence)
    return message


def source_address(sender_id: str | None, config: Config) -> tuple[str, int, int]:
    """The submit_sm source address and its TON/NPI: the configured ones when set, else by the
    sender's shape (alphanumeric 5/0, ``+`` and digits 1/1, other digits 0/1)."""
    sender = sender_id or ""
    if sender.startswith("+") and sender[1:].isdigit():
        address, ton, npi = sender[1:], 1, 1
    elif sender.isdigit():
        address, ton, npi = sender, 0, 1
    else:
        address, ton, npi = sender, 5, 0
    return (address,
            config.source_addr_ton if config.source_addr_ton is not None else ton,
            config.source_addr_npi if config.source_addr_npi is not None else npi)


def _number(address: str, ton: int) -> str:
    """An address as the inbound path takes it: international numbers (TON 1, longer than a
    short code's 8 digits) with ``+``; short codes and other addresses as given."""
    return f"+{address}" if ton == 1 and address.isdigit() and len(address) > 8 else address
