"""A scripted SMPP 3.4 SMSC for tests, on the server of PyPI ``smpp34`` 1.5.0 (Rust/tokio core,
https://github.com/Real-Time-Telecom-B-V/smpp34), driven by a scenario file.

    python -m tests.smsc.smpp34_smsc --port N --scenario F.json --events F.jsonl

It follows the test SMSC contract (``smsc-contract.md``: command line, scenario keys, events
JSONL) as far as the library's Python server allows. It always runs as a child process: the
library can crash the interpreter at exit even after a clean stop, so on SIGTERM the program
flushes the events file and leaves with ``os._exit(0)``.

Scenario keys, verified against smpp34's own client and a raw-socket client on loopback:

- supported: ``message_id_format``, ``receipts``, ``receipt_stat``, ``receipt_stats``,
  ``receipt_err``, ``receipt_id_format``, ``receipt_tlvs``, ``receipt_delay_ms``,
  ``throttle_every``, ``queue_full_every``, ``no_response_every`` (the submit's event is kept
  and never answered; the library answers each submit in a task of its own, so later submits
  are still answered), ``response_delay_ms``, ``unbind_after`` (``Esme.unbind()``), ``mo``,
  ``log_submits`` (``false`` leaves the per-submit event lines out, for the benchmark);
- ``drop_after``: supported on Linux only. The library has no call that closes a session, so
  the program finds the session's accepted socket among its own file descriptors
  (``/proc/self/fd``, matched by the peer address seen when the session bound) and shuts it
  down under the library, which then sees end-of-stream; the ESME sees the TCP connection
  close with no unbind;
- unsupported, the program exits 2 naming the key: ``refuse_binds`` (the library answers every
  bind with success before Python hears of it) and ``nack_every`` (a submit can only be
  answered with a submit_sm_resp: a dropped event is answered ``ESME_RSYSERR`` in a
  submit_sm_resp, not a generic_nack, and the event does not carry the sequence number a
  generic_nack would need);
- ``system_id`` and ``password`` are not enforced: every bind is accepted. The bind event
  records the ESME's system_id; the password and system_type never reach Python.

Events differ from the contract where the library hides things: the bind event's ``mode`` is
``"transmitter"`` or ``"receiver_or_transceiver"`` (the library only says whether the session
can receive), ``system_type`` is null, a submit's ``sequence`` is null, there is no
``enquire_link`` event (the library answers them itself), and the end of a session is always
``{"event": "disconnect"}``: an unbind from the ESME and a closed connection look the same.

Quirks of the library an ESME meets here (seen on the wire with a raw-socket client):

- pipelined submits reach Python out of wire order (the core answers each in a tokio task of
  its own), so "every Nth submit", ``unbind_after``/``drop_after`` and the message id counter
  follow that order, not the ESME's sequence numbers; with one submit in flight they match;
- a receiver bind's deliver_sm_resp is answered with generic_nack ``ESME_RINVCMDID`` and never
  matched: MOs and receipts to it are still sent, but their events have ``"status": null``
  (after one 2.5 s wait per session); transmitter+receiver pairs get receipts on the receiver;
- after ``Esme.unbind()`` the ESME's unbind_resp is answered with generic_nack
  ``ESME_RINVCMDID`` and the connection stays open until the ESME closes it; an unbind from the
  ESME closes the connection, sometimes before the unbind_resp is written;
- the server sends enquire_link every 30 s and closes a session from which it has read nothing
  for 60 s; it answers the ESME's enquire_link at once; unknown commands get generic_nack
  ``ESME_RINVCMDID``;
- rejections are submit_sm_resp with the status and no message id; a held (unanswered) submit
  gets nothing at all, also when the program ends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import stat
import sys
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any, NoReturn, TextIO

import smpp34

HOST = "127.0.0.1"
SMSC_SYSTEM_ID = "smpp34-smsc"
UNSUPPORTED_EXIT = 2
# The library answers submits beyond this many undelivered events with ESME_RMSGQFUL by
# itself; keep it far above any window so that only the scenario decides the answers.
INBOUND_CAPACITY = 1_000_000
# deliver_sm receipts awaiting their response at once; more wait their turn in a backlog.
RECEIPTS_IN_FLIGHT = 64
# A little over the library's own response timer (2 s), after which it gives up on a response.
DELIVER_SM_RESP_SECONDS = 2.5
UNMATCHED_RESP = "no deliver_sm_resp matched: smpp34 does not match them on receiver binds"
FIRST_MESSAGE_ID = 1000
ESM_CLASS_RECEIPT = 0x04
# SMPP 3.4 numbers, spelled out: smpp34 sets its ESME_* and TLV_* constants at import time,
# where type checkers cannot see them.
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_MESSAGE_PAYLOAD = 0x0424

MESSAGE_STATES = {
    "ENROUTE": 1, "DELIVRD": 2, "EXPIRED": 3, "DELETED": 4,
    "UNDELIV": 5, "ACCEPTD": 6, "UNKNOWN": 7, "REJECTD": 8,
}


class Answer(StrEnum):
    """How a submit_sm is answered; the value is the event's ``answer`` field."""

    OK = "ok"
    THROTTLED = "throttled"
    QUEUE_FULL = "queue_full"
    NONE = "none"


REJECT_STATUS = {
    Answer.THROTTLED: ESME_RTHROTTLED,
    Answer.QUEUE_FULL: ESME_RMSGQFUL,
}


class ScenarioError(Exception):
    """The scenario file is malformed (exit 1), or asks for what this library cannot do
    (``unsupported``, exit 2)."""

    def __init__(self, message: str, *, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported


@dataclass(frozen=True)
class Scenario:
    """The scenario keys of the contract, with their defaults."""

    system_id: str = "tidings"
    password: str = "s3cret"
    refuse_binds: int = 0
    message_id_format: str = "decimal"
    receipts: bool = True
    receipt_stat: str = "DELIVRD"
    receipt_stats: dict[str, str] = field(default_factory=dict)
    receipt_err: str = "000"
    receipt_id_format: str = "same"
    receipt_tlvs: bool = True
    receipt_delay_ms: int = 0
    throttle_every: int = 0
    queue_full_every: int = 0
    nack_every: int = 0
    no_response_every: int = 0
    response_delay_ms: int = 0
    unbind_after: int = 0
    drop_after: int = 0
    mo: list[dict[str, Any]] = field(default_factory=list)
    log_submits: bool = True

    @classmethod
    def from_json(cls, raw: object) -> Scenario:
        """Read a scenario object; raises ``ScenarioError`` on an unknown key, a value of the
        wrong type or format, or a key this library cannot honour (``unsupported``)."""
        if not isinstance(raw, dict):
            raise ScenarioError("the scenario must be a JSON object")
        defaults = cls()
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ScenarioError(f"unknown scenario keys: {', '.join(unknown)}")
        for key, value in raw.items():
            expected = type(getattr(defaults, key))
            if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ScenarioError(f"{key} must be an integer, not {value!r}")
            if not isinstance(value, expected):
                raise ScenarioError(f"{key} must be a {expected.__name__}, not {value!r}")
        scenario = cls(**raw)
        scenario._check()
        return scenario

    def _check(self) -> None:
        for key in ("refuse_binds", "nack_every"):
            if getattr(self, key):
                raise ScenarioError(
                    f"{key} is unsupported: smpp34's Python server "
                    + ("accepts every bind before Python sees it" if key == "refuse_binds"
                       else "cannot send generic_nack (submits only get submit_sm_resp)"),
                    unsupported=True)
        if self.drop_after and not Path("/proc/self/fd").is_dir():
            raise ScenarioError("drop_after is unsupported here: it needs /proc/self/fd",
                                unsupported=True)
        if self.message_id_format not in ("decimal", "hex"):
            raise ScenarioError(f"message_id_format {self.message_id_format!r} is not "
                                "decimal or hex")
        allowed_receipt_ids = {"same", "upper", "lower",
                               "hex" if self.message_id_format == "decimal" else "decimal"}
        if self.receipt_id_format not in allowed_receipt_ids:
            raise ScenarioError(f"receipt_id_format {self.receipt_id_format!r} does not go with "
                                f"message_id_format {self.message_id_format!r}")
        for mo in self.mo:
            if not isinstance(mo, dict) or not {"source_addr", "destination_addr",
                                                "short_message_hex"} <= set(mo):
                raise ScenarioError(f"an mo needs source_addr, destination_addr and "
                                    f"short_message_hex: {mo!r}")


class EventLog:
    """The events file: one JSON object a line, so tests can read it while the program runs.
    Lines written in one turn of the event loop are flushed together at the end of that turn,
    before the loop waits again (a flush per line cost an eighth of the program's time under
    the benchmark); a reader may see a last line half written, never a line held back."""

    def __init__(self, path: Path) -> None:
        self._file: TextIO = path.open("a", encoding="utf-8")
        self._flush_due = False

    def write(self, event: dict[str, Any]) -> None:
        self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def format_message_id(counter: int, id_format: str) -> str:
    """The id the SMSC gives in submit_sm_resp: the counter in decimal, or upper-case hex."""
    return format(counter, "X") if id_format == "hex" else str(counter)


def receipt_id(message_id: str, id_format: str) -> str:
    """How the receipt writes ``message_id`` (``receipt_id_format``, checked against the
    message id format when the scenario is read)."""
    match id_format:
        case "hex":
            return format(int(message_id), "x")
        case "decimal":
            return str(int(message_id, 16))
        case "upper":
            return message_id.upper()
        case "lower":
            return message_id.lower()
    return message_id


def message_text(short_message: bytes, data_coding: int, tlvs: list[smpp34.Tlv]) -> str:
    """The submitted text as far as a receipt quotes it: UCS-2 decoded, anything else read as
    single bytes; the message_payload TLV when short_message is empty."""
    if not short_message:
        short_message = next((t.value for t in tlvs if t.tag == TLV_MESSAGE_PAYLOAD), b"")
    if data_coding == 8:
        return short_message.decode("utf-16-be", errors="replace")
    return short_message.decode("latin-1")


def receipt_text(receipt_message_id: str, stat_word: str, err: str, submitted: datetime,
                 done: datetime, text: str) -> bytes:
    """The SMPP 3.4 Appendix B receipt text, ASCII (anything else in the quoted text is ``?``)."""
    delivered = "001" if stat_word == "DELIVRD" else "000"
    line = (f"id:{receipt_message_id} sub:001 dlvrd:{delivered} "
            f"submit date:{submitted:%y%m%d%H%M} done date:{done:%y%m%d%H%M} "
            f"stat:{stat_word} err:{err} text:{text[:20]}")
    return line.encode("ascii", errors="replace")


@dataclass(frozen=True)
class Receipt:
    """A receipt waiting to go out, and what the receipt event records."""

    session_id: str
    message_id: str
    receipt_message_id: str
    stat_word: str
    source_addr: str
    source_addr_ton: int
    source_addr_npi: int
    destination_addr: str
    dest_addr_ton: int
    dest_addr_npi: int
    text: bytes
    tlvs: list[smpp34.Tlv]


def accepted_sockets(port: int) -> dict[tuple[str, int], int]:
    """The file descriptors of TCP connections accepted on ``port`` by this process, by peer
    address, found in ``/proc/self/fd`` (the library keeps its sockets to itself)."""
    found: dict[tuple[str, int], int] = {}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            with socket.socket(fileno=os.dup(fd)) as sock:
                if (sock.family not in (socket.AF_INET, socket.AF_INET6)
                        or sock.type != socket.SOCK_STREAM or sock.getsockname()[1] != port):
                    continue
                peer = sock.getpeername()
        except OSError:  # closed meanwhile, not TCP, or the listening socket (no peer)
            continue
        found[(peer[0], peer[1])] = fd
    return found


def shut_down_socket(fd: int) -> None:
    """Close a TCP connection under the library: both directions shut, so the ESME sees the
    connection end (no unbind) and the library's reader sees end-of-stream."""
    with socket.socket(fileno=os.dup(fd)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


def delivery_outcome(sent: asyncio.Future[smpp34.DeliverSmResp]) -> dict[str, Any]:
    """The event fields for a finished deliver_sm: the command_status of its response, or why
    there is none."""
    if sent.cancelled():
        return {"error": UNMATCHED_RESP}
    if (error := sent.exception()) is not None:  # the session ended before the response
        return {"error": repr(error)}
    return {"status": sent.result().command_status}


def ignore_outcome(sent: asyncio.Future[smpp34.DeliverSmResp]) -> None:
    """Collect a deliver_sm's outcome that nobody waits for (no "never retrieved" warning)."""
    if not sent.cancelled():
        sent.exception()


class Smpp34Smsc:
    """Plays a scenario against whatever ESMEs bind: answers submits, sends receipts and MOs,
    unbinds or drops a session when told, and records it all in the events file."""

    def __init__(self, scenario: Scenario, port: int, events: EventLog) -> None:
        self.scenario = scenario
        self.port = port
        self.events = events
        self.server = smpp34.Server(HOST, port, system_id=SMSC_SYSTEM_ID,
                                    inbound_capacity=INBOUND_CAPACITY)
        self.sessions: dict[str, smpp34.Esme] = {}
        self.session_peers: dict[str, set[tuple[str, int]]] = {}
        self.submits = 0
        self.message_counter = FIRST_MESSAGE_ID
        # Submits never to be answered: dropping one would make the library answer it.
        self.held: list[smpp34.SubmitSmEvent] = []
        self.receipts_in_flight = 0
        self.receipt_backlog: deque[Receipt] = deque()
        self.tasks: set[asyncio.Task[None]] = set()
        self.unmatched_sessions: set[str] = set()
        self.mo_sent = False
        self.unbound = False
        self.dropped = False

    async def run(self) -> None:
        """Listen, print ``LISTENING <port>``, and handle server events until cancelled."""
        await self.server.start()
        print(f"LISTENING {self.port}", flush=True)
        while True:
            event = await self.server.next()
            if isinstance(event, smpp34.SubmitSmEvent):
                self._on_submit(event)
            elif isinstance(event, smpp34.Esme):
                self._on_bind(event)
            elif isinstance(event, smpp34.Unbound):
                self.sessions.pop(event.session_id, None)
                self.events.write({"event": "disconnect", "session": event.session_id})

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _on_bind(self, esme: smpp34.Esme) -> None:
        self.sessions[esme.session_id] = esme
        if self.scenario.drop_after:
            claimed = set().union(*self.session_peers.values())
            self.session_peers[esme.session_id] = set(accepted_sockets(self.port)) - claimed
        self.events.write({
            "event": "bind",
            "mode": "receiver_or_transceiver" if esme.can_receive else "transmitter",
            "system_id": esme.system_id, "system_type": None, "accepted": True,
            "session": esme.session_id,
        })
        if esme.can_receive and self.scenario.mo and not self.mo_sent:
            self.mo_sent = True
            self._spawn(self._send_mos(esme))

    def _answer_for(self, n: int) -> Answer:
        scenario = self.scenario
        if scenario.no_response_every and n % scenario.no_response_every == 0:
            return Answer.NONE
        if scenario.throttle_every and n % scenario.throttle_every == 0:
            return Answer.THROTTLED
        if scenario.queue_full_every and n % scenario.queue_full_every == 0:
            return Answer.QUEUE_FULL
        return Answer.OK

    def _on_submit(self, submit: smpp34.SubmitSmEvent) -> None:
        self.submits += 1
        n = self.submits
        answer = self._answer_for(n)
        received = datetime.now(UTC)
        if answer is Answer.NONE:
            self.held.append(submit)
            self._answered(n, submit, answer, None)
        elif self.scenario.response_delay_ms:
            asyncio.get_running_loop().call_later(
                self.scenario.response_delay_ms / 1000, self._answer, n, submit, answer, received)
        else:
            self._answer(n, submit, answer, received)

    def _answer(self, n: int, submit: smpp34.SubmitSmEvent, answer: Answer,
                received: datetime) -> None:
        message_id = None
        if answer is Answer.OK:
            message_id = format_message_id(self.message_counter, self.scenario.message_id_format)
            self.message_counter += 1
            submit.accept(message_id)
            if self.scenario.receipts and submit.registered_delivery & 1:
                self._queue_receipt(submit, message_id, received)
        else:
            submit.reject(REJECT_STATUS[answer])
        self._answered(n, submit, answer, message_id)

    def _answered(self, n: int, submit: smpp34.SubmitSmEvent, answer: Answer,
                  message_id: str | None) -> None:
        if self.scenario.log_submits:
            self.events.write({
                "event": "submit_sm", "n": n, "sequence": None,
                "source_addr": submit.source_addr, "source_addr_ton": submit.source_addr_ton,
                "source_addr_npi": submit.source_addr_npi,
                "destination_addr": submit.destination_addr,
                "dest_addr_ton": submit.dest_addr_ton, "dest_addr_npi": submit.dest_addr_npi,
                "esm_class": submit.esm_class, "data_coding": submit.data_coding,
                "registered_delivery": submit.registered_delivery,
                "short_message_hex": submit.short_message.hex(),
                "tlvs": [[t.tag, t.value.hex()] for t in submit.tlvs],
                "answer": answer.value, "message_id": message_id, "session": submit.session_id,
            })
        if n == self.scenario.unbind_after and not self.unbound:
            self.unbound = True
            self._spawn(self._unbind(submit.session_id))
        if n == self.scenario.drop_after and not self.dropped:
            self.dropped = True
            self._drop(submit.session_id)

    def _queue_receipt(self, submit: smpp34.SubmitSmEvent, message_id: str,
                       received: datetime) -> None:
        scenario = self.scenario
        stat_word = (scenario.receipt_stats.get(submit.destination_addr, "DELIVRD")
                     if scenario.receipt_stat == "by_destination" else scenario.receipt_stat)
        written_id = receipt_id(message_id, scenario.receipt_id_format)
        text = message_text(submit.short_message, submit.data_coding, submit.tlvs)
        tlvs = []
        if scenario.receipt_tlvs:
            tlvs = [
                smpp34.Tlv(TLV_RECEIPTED_MESSAGE_ID, written_id.encode() + b"\0"),
                smpp34.Tlv(TLV_MESSAGE_STATE,
                           bytes([MESSAGE_STATES.get(stat_word, MESSAGE_STATES["UNKNOWN"])])),
            ]
        receipt = Receipt(
            session_id=submit.session_id, message_id=message_id,
            receipt_message_id=written_id, stat_word=stat_word,
            source_addr=submit.destination_addr, source_addr_ton=submit.dest_addr_ton,
            source_addr_npi=submit.dest_addr_npi, destination_addr=submit.source_addr,
            dest_addr_ton=submit.source_addr_ton, dest_addr_npi=submit.source_addr_npi,
            text=receipt_text(written_id, stat_word, scenario.receipt_err, received,
                              datetime.now(UTC), text),
            tlvs=tlvs)
        if scenario.receipt_delay_ms:
            asyncio.get_running_loop().call_later(
                scenario.receipt_delay_ms / 1000, self._send_receipt, receipt)
        else:
            self._send_receipt(receipt)

    def _receiving_session(self, preferred: str) -> smpp34.Esme | None:
        """The submitting session when it can receive, else the first session that can."""
        esme = self.sessions.get(preferred)
        if esme is not None and esme.can_receive:
            return esme
        return next((s for s in self.sessions.values() if s.can_receive), None)

    def _send_receipt(self, receipt: Receipt) -> None:
        """Send a receipt without waiting for it: its event is written when the response
        comes (``_receipt_answered``), so the submit loop never waits on a receipt. At most
        ``RECEIPTS_IN_FLIGHT`` wait for a response; the rest queue up."""
        if self.receipts_in_flight >= RECEIPTS_IN_FLIGHT:
            self.receipt_backlog.append(receipt)
            return
        esme = self._receiving_session(receipt.session_id)
        if esme is None:
            self._write_receipt(receipt, {"error": "no bound session can receive"})
            return
        sent = asyncio.ensure_future(esme.deliver_sm(
            receipt.destination_addr, receipt.text,
            source_addr=receipt.source_addr, source_addr_ton=receipt.source_addr_ton,
            source_addr_npi=receipt.source_addr_npi, dest_addr_ton=receipt.dest_addr_ton,
            dest_addr_npi=receipt.dest_addr_npi, esm_class=ESM_CLASS_RECEIPT, tlvs=receipt.tlvs,
        ))
        if esme.session_id in self.unmatched_sessions:
            sent.add_done_callback(ignore_outcome)
            self._write_receipt(receipt, {"error": UNMATCHED_RESP})
            return
        self.receipts_in_flight += 1
        too_late = asyncio.get_running_loop().call_later(
            DELIVER_SM_RESP_SECONDS, self._unmatched, sent, esme.session_id)
        sent.add_done_callback(partial(self._receipt_answered, receipt, too_late))

    def _receipt_answered(self, receipt: Receipt, too_late: asyncio.TimerHandle,
                          sent: asyncio.Future[smpp34.DeliverSmResp]) -> None:
        too_late.cancel()
        self.receipts_in_flight -= 1
        self._write_receipt(receipt, delivery_outcome(sent))
        while self.receipt_backlog and self.receipts_in_flight < RECEIPTS_IN_FLIGHT:
            self._send_receipt(self.receipt_backlog.popleft())

    def _write_receipt(self, receipt: Receipt, outcome: dict[str, Any]) -> None:
        self.events.write({
            "event": "receipt", "message_id": receipt.message_id,
            "receipt_id": receipt.receipt_message_id, "stat": receipt.stat_word,
            "status": None, **outcome,
        })

    def _unmatched(self, sent: asyncio.Future[smpp34.DeliverSmResp], session_id: str) -> None:
        """No response in time: the library does not match deliver_sm_resp on receiver binds
        (it answers them with generic_nack), so stop waiting on this session's responses."""
        self.unmatched_sessions.add(session_id)
        sent.cancel()

    async def _send_mos(self, esme: smpp34.Esme) -> None:
        """The scenario's MOs, one after the other, each after the previous one's response."""
        for mo in self.scenario.mo:
            sent = asyncio.ensure_future(esme.deliver_sm(
                mo["destination_addr"], bytes.fromhex(mo["short_message_hex"]),
                source_addr=mo["source_addr"], data_coding=mo.get("data_coding", 0),
                esm_class=mo.get("esm_class", 0),
            ))
            await asyncio.wait({sent}, timeout=DELIVER_SM_RESP_SECONDS)
            if not sent.done():
                self._unmatched(sent, esme.session_id)
                await asyncio.wait({sent})
            self.events.write({"event": "mo", "source_addr": mo["source_addr"],
                               "destination_addr": mo["destination_addr"],
                               "status": None, **delivery_outcome(sent)})

    async def _unbind(self, session_id: str) -> None:
        esme = self.sessions.get(session_id)
        self.events.write({"event": "unbind", "from": "smsc", "session": session_id})
        if esme is not None:
            await esme.unbind()

    def _drop(self, session_id: str) -> None:
        """Shut the session's TCP connection; every accepted connection when the session's
        own cannot be told apart."""
        sockets = accepted_sockets(self.port)
        peers = self.session_peers.get(session_id) or set(sockets)
        for peer in peers & set(sockets):
            shut_down_socket(sockets[peer])
        self.events.write({"event": "drop", "session": session_id,
                           "peers": [f"{host}:{port}" for host, port in sorted(peers)]})


def read_scenario(path: Path) -> Scenario:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"cannot read the scenario {path}: {exc}") from exc
    return Scenario.from_json(raw)


def leave(code: int, events: EventLog) -> NoReturn:
    """Flush everything and end the process at once: the interpreter must never finalise the
    library, which can crash at exit."""
    events.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def serve(scenario: Scenario, port: int, events: EventLog) -> NoReturn:
    """Run the SMSC until SIGTERM (exit 0) or until it fails (exit 1, the error on stderr)."""
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    smsc = Smpp34Smsc(scenario, port, events)
    running = asyncio.create_task(smsc.run())
    stopped = asyncio.create_task(stopping.wait())
    await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        print(f"smpp34_smsc: {running.exception()!r}", file=sys.stderr)
        leave(1, events)
    leave(0, events)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--scenario", type=Path, required=True)
    parser.add_argument("--events", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        scenario = read_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"smpp34_smsc: {exc}", file=sys.stderr, flush=True)
        os._exit(UNSUPPORTED_EXIT if exc.unsupported else 1)  # the library is loaded already
    asyncio.run(serve(scenario, args.port, EventLog(args.events)))


if __name__ == "__main__":
    main()
