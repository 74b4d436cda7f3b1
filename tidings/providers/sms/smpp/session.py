"""One SMPP session: a TCP connection to an SMSC, bound, with a window of outstanding submits.

``SmppSession.open`` connects and binds (``BindRefused`` carries the SMSC's status). Then:

- ``submit`` writes a submit_sm under the next sequence number once a window slot is free and
  waits for the answer with that sequence number: a submit_sm_resp or a generic_nack
  (``SubmitAnswer``), ``LinkLost`` when the link goes first, ``SubmitTimeout`` after
  ``response_timeout`` (the slot is freed; a late answer is dropped);
- a deliver_sm from the SMSC is handed to ``on_deliver``, and answered with the status it
  returns only after it returns, so a receipt the caller has not stored is not acknowledged;
- enquire_link is answered at once, and sent after ``enquire_link_seconds`` without traffic;
  no answer in ``response_timeout`` drops the link;
- an unbind from the SMSC is answered and ends the session.

The session never reconnects: ``closed`` resolves (with the reason) and the connector opens a
new one.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tidings.providers.sms.smpp.pdu import (
    MAX_SEQUENCE,
    BindMode,
    Command,
    Pdu,
    PduReader,
    Status,
    bind_body,
    message_id_of,
    pack,
    status_name,
)

log = logging.getLogger(__name__)

UNBIND_WAIT_SECONDS = 2.0
"""At most this long for unbind_resp when stopping: a dead SMSC must not hold up a shutdown."""

DeliverHandler = Callable[[Pdu], Awaitable[int]]
"""Takes a deliver_sm; answers the command_status to acknowledge it with (after storing it)."""


@dataclass(frozen=True)
class SessionSettings:
    """Where and how one session binds. ``password`` is a credential: never logged."""

    host: str
    port: int
    system_id: str
    password: str
    system_type: str
    mode: BindMode
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""
    window: int = 32
    enquire_link_seconds: float = 30.0
    response_timeout: float = 10.0
    connect_timeout: float = 10.0

    def __repr__(self) -> str:
        return (f"SessionSettings({self.mode.name.lower()} {self.system_id}@"
                f"{self.host}:{self.port})")


@dataclass(frozen=True)
class SubmitAnswer:
    """The SMSC's answer to one submit_sm: ``status`` (0 is accepted), ``message_id`` ("" unless
    accepted), ``nacked`` when it came as a generic_nack."""

    status: int
    message_id: str = ""
    nacked: bool = False


class BindRefused(Exception):
    """The SMSC answered the bind with an error status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"bind refused: {status_name(status)}")
        self.status = status


class LinkLost(Exception):
    """The session ended (link dropped, unbind, timeout) before the answer came."""


class SubmitTimeout(Exception):
    """No answer to a submit_sm within the response timeout."""


class SmppSession(asyncio.Protocol):
    """A bound session; make it with ``open``."""

    def __init__(self, settings: SessionSettings, on_deliver: DeliverHandler) -> None:
        self.settings = settings
        self._on_deliver = on_deliver
        self._reader = PduReader()
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._sequence = 0
        self._pending: dict[int, tuple[asyncio.Future[Pdu], asyncio.TimerHandle | None]] = {}
        self._window = asyncio.Semaphore(settings.window)
        self._tasks: set[asyncio.Task[None]] = set()  # deliver_sm being stored
        self._keep_alive_task: asyncio.Task[None] | None = None
        self._last_heard = self._loop.time()
        self._connected = self._loop.create_future()
        self.closed: asyncio.Future[str] = self._loop.create_future()
        """Resolves with the reason once the session has ended."""
        self.bound = False

    # --- lifecycle ------------------------------------------------------------------------

    @classmethod
    async def open(cls, settings: SessionSettings, on_deliver: DeliverHandler) -> SmppSession:
        """Connect and bind; raises ``BindRefused`` or ``OSError`` (``TimeoutError`` and
        ``ConnectionError`` among them)."""
        session = cls(settings, on_deliver)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(settings.connect_timeout):
                await loop.create_connection(lambda: session, settings.host, settings.port)
                response = await session._request(
                    settings.mode.value,
                    bind_body(settings.system_id, settings.password, settings.system_type,
                              settings.addr_ton, settings.addr_npi, settings.address_range))
        except (LinkLost, SubmitTimeout) as exc:
            session._abort("bind unanswered")
            raise ConnectionError(f"the bind was not answered: {exc}") from exc
        except BaseException:
            session._abort("bind failed")
            raise
        if response.status != Status.ESME_ROK:
            session._abort("bind refused")
            raise BindRefused(response.status)
        session.bound = True
        session._keep_alive_task = asyncio.create_task(session._keep_alive())
        return session

    async def unbind(self) -> None:
        """Unbind politely (waiting up to the response timeout for unbind_resp), then close."""
        if self.closed.done():
            return
        self.bound = False
        try:
            async with asyncio.timeout(min(self.settings.response_timeout, UNBIND_WAIT_SECONDS)):
                await self._request(Command.UNBIND, b"")
        except (LinkLost, SubmitTimeout, TimeoutError):
            pass  # an SMSC may close the link before its unbind_resp: unbound all the same
        self._abort("unbound by us")

    # --- submits --------------------------------------------------------------------------

    async def submit(self, submit_sm: bytes) -> SubmitAnswer:
        """Send an encoded submit_sm (its sequence number is replaced by the session's) and
        wait for the SMSC's answer. Raises ``LinkLost`` or ``SubmitTimeout``."""
        async with self._window:
            if self.closed.done():
                raise LinkLost(self.closed.result())
            pdu = bytearray(submit_sm)
            sequence = self._next_sequence()
            struct.pack_into("!I", pdu, 12, sequence)
            answer = await self._await_answer(sequence, bytes(pdu))
        if answer.command_id == Command.GENERIC_NACK:
            return SubmitAnswer(answer.status or Status.ESME_RSYSERR, nacked=True)
        if answer.status != Status.ESME_ROK:
            return SubmitAnswer(answer.status)
        return SubmitAnswer(Status.ESME_ROK, message_id_of(answer))

    @property
    def outstanding(self) -> int:
        """Requests written and not answered yet."""
        return len(self._pending)

    # --- requests and answers -------------------------------------------------------------

    def _next_sequence(self) -> int:
        self._sequence = self._sequence % MAX_SEQUENCE + 1
        return self._sequence

    async def _request(self, command_id: int, body: bytes) -> Pdu:
        sequence = self._next_sequence()
        return await self._await_answer(sequence, pack(command_id, sequence, body))

    async def _await_answer(self, sequence: int, wire: bytes) -> Pdu:
        if self._transport is None or self.closed.done():
            raise LinkLost(self.closed.result() if self.closed.done() else "not connected")
        answer: asyncio.Future[Pdu] = self._loop.create_future()
        timer = self._loop.call_later(self.settings.response_timeout, self._expire, sequence)
        self._pending[sequence] = (answer, timer)
        self._transport.write(wire)
        return await answer

    def _expire(self, sequence: int) -> None:
        entry = self._pending.pop(sequence, None)
        if entry is not None and not entry[0].done():
            entry[0].set_exception(SubmitTimeout(
                f"no answer within {self.settings.response_timeout:g}s"))

    def _answered(self, pdu: Pdu) -> None:
        entry = self._pending.pop(pdu.sequence, None)
        if entry is None:
            if pdu.command_id == Command.GENERIC_NACK and pdu.sequence == 0:
                log.warning("smpp %r: generic_nack %s for an unreadable PDU", self.settings,
                            status_name(pdu.status))
            return  # late answer to a request that timed out
        answer, timer = entry
        if timer is not None:
            timer.cancel()
        if not answer.done():
            answer.set_result(pdu)

    # --- requests from the SMSC -----------------------------------------------------------

    def _requested(self, pdu: Pdu) -> None:
        command = pdu.command_id
        if command == Command.DELIVER_SM:
            self._spawn(self._answer_deliver(pdu))
        elif command == Command.ENQUIRE_LINK:
            self._write(pack(Command.ENQUIRE_LINK_RESP, pdu.sequence))
        elif command == Command.UNBIND:
            self._write(pack(Command.UNBIND_RESP, pdu.sequence))
            self.bound = False
            self._abort("unbound by the SMSC")
        else:
            self._write(pack(Command.GENERIC_NACK, pdu.sequence, status=Status.ESME_RINVCMDID))

    async def _answer_deliver(self, pdu: Pdu) -> None:
        try:
            status = await self._on_deliver(pdu)
        except Exception:
            log.exception("smpp %r: storing a deliver_sm failed; the SMSC will resend it",
                          self.settings)
            status = Status.ESME_RX_T_APPN
        self._write(pack(Command.DELIVER_SM_RESP, pdu.sequence, b"\0", status))

    def _write(self, wire: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(wire)

    async def _keep_alive(self) -> None:
        """enquire_link after ``enquire_link_seconds`` without hearing from the SMSC."""
        interval = self.settings.enquire_link_seconds
        while not self.closed.done():
            idle = self._loop.time() - self._last_heard
            if idle < interval:
                await asyncio.sleep(interval - idle)
                continue
            try:
                await self._request(Command.ENQUIRE_LINK, b"")
            except SubmitTimeout:
                self._abort("enquire_link went unanswered")
                return
            except LinkLost:
                return
            self._last_heard = self._loop.time()

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _abort(self, reason: str) -> None:
        if not self.closed.done():
            self.closed.set_result(reason)
        if self._transport is not None:
            self._transport.abort()
        self._fail_pending(reason)

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for answer, timer in pending.values():
            if timer is not None:
                timer.cancel()
            if not answer.done():
                answer.set_exception(LinkLost(reason))
        keep_alive = self._keep_alive_task
        if keep_alive is not None and keep_alive is not asyncio.current_task():
            keep_alive.cancel()

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self._last_heard = self._loop.time()
        try:
            pdus = self._reader.feed(data)
        except ValueError as exc:
            self._abort(f"unreadable stream: {exc}")
            return
        for pdu in pdus:
            if pdu.is_response:
                self._answered(pdu)
            else:
                self._requested(pdu)

    def connection_lost(self, exc: Exception | None) -> None:
        self.bound = False
        reason = f"link lost: {exc}" if exc else "link closed by the SMSC"
        if not self.closed.done():
            self.closed.set_result(reason)
        self._fail_pending(self.closed.result())
