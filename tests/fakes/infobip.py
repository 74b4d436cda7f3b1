"""A wire-accurate fake of Infobip's SMS API v3, balance and numbers, with pushed delivery reports.

Paths, auth and bodies are Infobip's (see ``tidings/providers/sms/infobip.py`` for the sources
and what is assumed)::

    POST /sms/3/messages      200 {"bulkId", "messages": [{"messageId", "status",
                                   "destination", "details": {"messageCount"}}]}
    GET  /account/1/balance   200 {"balance": 47.79134, "currency": "EUR"}
    GET  /numbers/1/numbers   200 {"numbers": [{"numberKey", "number", "capabilities", ...}],
                                   "numberCount"}

``Authorization: App <key>`` with one of the fake's keys, else 401 ``{"requestError":
{"serviceException": {"messageId": "UNAUTHORIZED", "text": "Invalid login details"}}}``. A send
whose body is not a JSON object with a non-empty ``messages`` list, each with non-empty
``destinations`` (each with a ``to``) and a non-empty ``content.text``, is a 400 ``BAD_REQUEST``
with ``validationErrors``. Every message and destination is taken, one ``messageId`` each
(``PENDING``/``PENDING_ACCEPTED``), except a ``to`` that is not 6 to 15 digits, which is
answered in the same 200 with status ``REJECTED``/``REJECTED_DESTINATION`` and not taken (that
status name and id are the fake's choice [U]).

With ``delivery_reports=True``, every taken destination whose message names
``webhooks.delivery.url`` is reported there as Infobip does: JSON ``{"results": [...]}``, a few
reports per POST when several are due for the same URL, ``DELIVERED``/``DELIVERED_TO_HANDSET``
unless ``script_delivery`` says otherwise. They go out from one background task per event loop
with its own httpx client, so they never slow the send answers; a POST that cannot connect or
gets a 5xx is retried a few times after a short pause. ``reports`` records what was delivered.

Kept lean for the 100,000-message benchmark: ids come from a counter, a send is parsed once and
recorded as a small slotted object (its whole message entry only with ``keep_messages``), and
nothing is copied per request; with ``record=False`` nothing is kept per request at all, only
the ``taken`` count.

``inbound_body`` builds the body Infobip forwards for an incoming SMS.

Standalone: ``python -m tests.fakes.infobip --port N --api-key K [--api-key K2]
[--delivery-reports] [--delay-ms N] [--balance 47.79134] [--currency EUR] [--no-record]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import secrets
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import run_forever

DEFAULT_NUMBERS = ("447860041117",)
REPORTS_PER_POST = 50
_DESTINATION = re.compile(r"^\+?[0-9]{6,15}$")
_PENDING = {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED",
            "description": "Message sent to next instance"}
_REJECTED_DESTINATION = {"groupId": 5, "groupName": "REJECTED", "id": 14,
                         "name": "REJECTED_DESTINATION", "description": "Invalid destination"}
_NO_ERROR = {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR",
             "description": "No Error", "permanent": False}


@dataclass(frozen=True, slots=True)
class RecordedSend:
    """One taken destination: its ``messageId``, the request's ``bulkId``, the key it came
    with, and the fields of its message entry."""

    message_id: str
    bulk_id: str
    api_key: str
    to: str
    sender: str | None
    text: str
    delivery_url: str | None
    message: Mapping[str, Any] | None
    """The whole message entry as sent, kept only with ``keep_messages``."""


@dataclass(frozen=True)
class DeliveredReports:
    """One delivery-report POST: ``status`` is the receiver's last HTTP answer (``None`` when
    no attempt got one) after ``attempts`` tries."""

    url: str
    results: list[dict[str, Any]]
    status: int | None
    attempts: int


@dataclass(frozen=True)
class Delivery:
    """How messages to a number end: Infobip's status object and error object."""

    status: Mapping[str, Any]
    error: Mapping[str, Any]


@dataclass(frozen=True)
class CannedAnswer:
    status: int
    body: str | dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)
    hang_seconds: float = 0.0


_DELIVERED = Delivery(
    {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET",
     "description": "Message delivered to handset"}, _NO_ERROR)


def request_error(message_id: str, text: str,
                  validation_errors: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    """Infobip's ``requestError.serviceException`` error body."""
    exception: dict[str, Any] = {"messageId": message_id, "text": text}
    if validation_errors:
        exception["validationErrors"] = dict(validation_errors)
    return {"requestError": {"serviceException": exception}}


def inbound_body(*, message_id: str, from_: str, to: str, text: str,
                 received_at: str = "2026-11-24T12:00:00.000+0000") -> dict[str, Any]:
    """The JSON Infobip forwards to a number's inbound URL for one incoming SMS (numbers in
    international format without ``+``)."""
    keyword, _, rest = text.partition(" ")
    return {"results": [{
        "messageId": message_id, "from": from_, "to": to, "text": text, "cleanText": rest,
        "keyword": keyword.upper(), "receivedAt": received_at, "smsCount": 1,
        "price": {"pricePerMessage": 0, "currency": "EUR"}, "callbackData": None,
    }], "messageCount": 1, "pendingMessageCount": 0}


class FakeInfobip:
    """Infobip for the given API keys; ``app`` is the ASGI app.

    ``sends`` records every taken destination (with its whole message entry when
    ``keep_messages``), ``requests`` every request as ``(method, path)``, ``reports`` every
    delivery-report POST; with ``record=False`` none of the three grows and ``taken`` counts
    the destinations taken. ``fail_next``, ``hang_next`` (a timeout: nothing taken) and
    ``malformed_next`` script the next send answers. ``delay_ms`` delays every answer;
    ``balance`` is written into the balance answer as it is given (a JSON number);
    ``numbers`` are the account's SMS numbers; ``clock`` gives report dates.
    """

    def __init__(
        self,
        api_keys: Iterable[str],
        *,
        delivery_reports: bool = False,
        delay_ms: int = 0,
        balance: str = "47.79134",
        currency: str = "EUR",
        numbers: Sequence[str] = DEFAULT_NUMBERS,
        report_attempts: int = 5,
        report_retry_seconds: float = 0.2,
        report_concurrency: int = 32,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        record: bool = True,
        keep_messages: bool = False,
    ) -> None:
        self.api_keys = frozenset(api_keys)
        self.record = record
        self.keep_messages = keep_messages
        self.taken = 0
        self.delivery_reports = delivery_reports
        self.delay_ms = delay_ms
        self.balance = balance
        self.currency = currency
        self.numbers = list(numbers)
        self.report_attempts = report_attempts
        self.report_retry_seconds = report_retry_seconds
        self.report_concurrency = report_concurrency
        self.clock = clock
        self.sends: list[RecordedSend] = []
        self.requests: list[tuple[str, str]] = []
        self.reports: list[DeliveredReports] = []
        self._canned: deque[CannedAnswer] = deque()
        self._deliveries: dict[str, Delivery] = {}
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(6)
        self._queue: asyncio.Queue[RecordedSend] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: asyncio.Task[None] | None = None
        self._in_flight = 0
        self.app = Starlette(
            routes=[
                Route("/sms/3/messages", self._send, methods=["POST"]),
                Route("/account/1/balance", self._balance, methods=["GET"]),
                Route("/numbers/1/numbers", self._numbers, methods=["GET"]),
            ],
            exception_handlers={404: self._not_found},
        )

    # --- scripting ---

    def fail_next(self, count: int = 1, status: int = 500,
                  body: str | dict[str, Any] | None = None,
                  headers: Mapping[str, str] | None = None) -> None:
        """Answer the next ``count`` sends with ``status`` and ``body`` (by default Infobip's
        ``GENERAL_ERROR``, or ``TOO_MANY_REQUESTS`` for a 429) instead of taking them."""
        if body is None:
            body = (request_error("TOO_MANY_REQUESTS", "Too many requests") if status == 429
                    else request_error("GENERAL_ERROR",
                                       "Something went wrong. Please contact support."))
        self._canned.extend([CannedAnswer(status, body, dict(headers or {}))] * count)

    def hang_next(self, count: int = 1, seconds: float = 2.0) -> None:
        """Hold the next ``count`` sends for ``seconds`` (past a client's timeout), then answer
        504 ``GATEWAY_TIMEOUT`` without taking them: a provider that timed out before it
        accepted anything."""
        body = request_error("GATEWAY_TIMEOUT", "Gateway timeout")
        self._canned.extend([CannedAnswer(504, body, hang_seconds=seconds)] * count)

    def malformed_next(self, count: int = 1, body: str = "<html>Bad Gateway</html>") -> None:
        """Answer the next ``count`` sends 200 with ``body`` (by default not JSON)."""
        self._canned.extend([CannedAnswer(200, body)] * count)

    def script_delivery(self, to: str, group: str = "UNDELIVERABLE",
                        name: str = "UNDELIVERABLE_NOT_DELIVERED",
                        error_id: int = 1, error_name: str = "EC_UNKNOWN_SUBSCRIBER",
                        error_description: str = "Unknown Subscriber") -> None:
        """Reports for ``to`` (digits, as sent) end in ``group``/``name`` with that error."""
        group_ids = {"PENDING": 1, "UNDELIVERABLE": 2, "DELIVERED": 3, "EXPIRED": 4,
                     "REJECTED": 5}
        self._deliveries[to] = Delivery(
            {"groupId": group_ids.get(group, 0), "groupName": group, "id": 9, "name": name,
             "description": name.replace("_", " ").capitalize()},
            {"groupId": 1, "groupName": "HANDSET_ERRORS", "id": error_id, "name": error_name,
             "description": error_description, "permanent": True})

    @property
    def reports_pending(self) -> int:
        """Delivery reports queued or being posted right now."""
        return (self._queue.qsize() if self._queue is not None else 0) + self._in_flight

    # --- endpoints ---

    async def _send(self, request: Request) -> Response:
        if self.record:
            self.requests.append(("POST", "/sms/3/messages"))
        # The body is in before the delay: a send whose client gave up waiting is still taken.
        raw = await request.body()
        await self._pause()
        api_key = self._api_key(request)
        if api_key is None:
            return _unauthorized()
        if self._canned:
            canned = self._canned.popleft()
            if canned.hang_seconds:
                await asyncio.sleep(canned.hang_seconds)
            if isinstance(canned.body, str):
                return Response(canned.body, canned.status, dict(canned.headers),
                                media_type="application/json")
            return JSONResponse(canned.body, canned.status, dict(canned.headers))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        invalid = _invalid(body)
        if invalid is not None:
            return JSONResponse(request_error("BAD_REQUEST", "Bad request", invalid), 400)
        bulk_id = f"{self._prefix}-b{next(self._ids)}"
        answers = []
        for message in body["messages"]:
            webhooks = message.get("webhooks")
            delivery = webhooks.get("delivery") if isinstance(webhooks, dict) else None
            url = delivery.get("url") if isinstance(delivery, dict) else None
            sender = message.get("sender")
            for destination in message["destinations"]:
                to = destination["to"]
                message_id = f"{self._prefix}-{next(self._ids)}"
                if not _DESTINATION.match(to):
                    answers.append({"messageId": message_id, "status": _REJECTED_DESTINATION,
                                    "destination": to, "details": {"messageCount": 1}})
                    continue
                sent = RecordedSend(message_id, bulk_id, api_key, to,
                                    sender if isinstance(sender, str) else None,
                                    message["content"]["text"],
                                    url if isinstance(url, str) else None,
                                    message if self.keep_messages else None)
                self.taken += 1
                if self.record:
                    self.sends.append(sent)
                if self.delivery_reports and sent.delivery_url:
                    self._enqueue(sent)
                answers.append({"messageId": message_id, "status": _PENDING, "destination": to,
                                "details": {"messageCount": 1}})
        return JSONResponse({"bulkId": bulk_id, "messages": answers})

    async def _balance(self, request: Request) -> Response:
        if self.record:
            self.requests.append(("GET", request.url.path))
        await self._pause()
        if self._api_key(request) is None:
            return _unauthorized()
        content = f'{{"balance":{self.balance},"currency":{json.dumps(self.currency)}}}'
        return Response(content, 200, media_type="application/json")

    async def _numbers(self, request: Request) -> Response:
        if self.record:
            self.requests.append(("GET", request.url.path))
        await self._pause()
        if self._api_key(request) is None:
            return _unauthorized()
        numbers = [{"numberKey": f"{index:032X}", "number": number, "country": "GB",
                    "type": "VIRTUAL_LONG_NUMBER", "capabilities": ["SMS", "VOICE"],
                    "shared": False} for index, number in enumerate(self.numbers, 1)]
        return JSONResponse({"numbers": numbers, "numberCount": len(numbers)})

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        return JSONResponse(request_error("NOT_FOUND", "Requested resource not found"), 404)

    async def _pause(self) -> None:
        if self.delay_ms > 0:
            await asyncio.sleep(self.delay_ms / 1000)

    def _api_key(self, request: Request) -> str | None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        return key if scheme == "App" and key in self.api_keys else None

    # --- delivery reports ---

    def report(self, sent: RecordedSend) -> dict[str, Any]:
        """The delivery report Infobip pushes for ``sent``."""
        outcome = self._deliveries.get(sent.to, _DELIVERED)
        at = self.clock().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
        return {"bulkId": sent.bulk_id, "price": {"pricePerMessage": 0.01, "currency": "EUR"},
                "status": dict(outcome.status), "error": dict(outcome.error),
                "messageId": sent.message_id, "to": sent.to, "sender": sent.sender or "",
                "sentAt": at, "doneAt": at, "messageCount": 1}

    def _enqueue(self, sent: RecordedSend) -> None:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop:
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._deliver_reports(self._queue))
        self._queue.put_nowait(sent)

    async def _deliver_reports(self, queue: asyncio.Queue[RecordedSend]) -> None:
        slots = asyncio.Semaphore(self.report_concurrency)
        running: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(timeout=10.0) as client:
            while True:
                batch = [await queue.get()]
                while len(batch) < REPORTS_PER_POST and not queue.empty():
                    batch.append(queue.get_nowait())
                by_url: dict[str, list[RecordedSend]] = {}
                for sent in batch:
                    by_url.setdefault(sent.delivery_url or "", []).append(sent)
                for url, group in by_url.items():
                    await slots.acquire()
                    self._in_flight += len(group)
                    task = asyncio.create_task(self._post(client, url, group))
                    running.add(task)

                    def finished(task: asyncio.Task[None], size: int = len(group)) -> None:
                        running.discard(task)
                        slots.release()
                        self._in_flight -= size

                    task.add_done_callback(finished)

    async def _post(self, client: httpx.AsyncClient, url: str,
                    group: list[RecordedSend]) -> None:
        results = [self.report(sent) for sent in group]
        content = json.dumps({"results": results}, separators=(",", ":"))
        headers = {"content-type": "application/json"}
        status: int | None = None
        attempt = 0
        for attempt in range(1, self.report_attempts + 1):
            try:
                response = await client.post(url, content=content, headers=headers)
            except httpx.TransportError:
                status = None
            else:
                status = response.status_code
                if status < 500:
                    break
            if attempt < self.report_attempts:
                await asyncio.sleep(self.report_retry_seconds * attempt)
        if self.record:
            self.reports.append(DeliveredReports(url, results, status, attempt))


def _invalid(body: Any) -> dict[str, list[str]] | None:
    """Infobip-style ``validationErrors`` for a send body, or ``None`` when it is valid."""
    if not isinstance(body, dict):
        return {"body": ["must be a JSON object"]}
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return {"messages": ["must not be empty"]}
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            return {where: ["must be an object"]}
        destinations = message.get("destinations")
        if not isinstance(destinations, list) or not destinations:
            return {f"{where}.destinations": ["must not be empty"]}
        if not all(isinstance(d, dict) and isinstance(d.get("to"), str) and d["to"]
                   for d in destinations):
            return {f"{where}.destinations[].to": ["must not be blank"]}
        content = message.get("content")
        if not isinstance(content, dict) or not isinstance(content.get("text"), str) or (
                not content["text"]):
            return {f"{where}.content.text": ["must not be blank"]}
    return None


def _unauthorized() -> Response:
    return JSONResponse(request_error("UNAUTHORIZED", "Invalid login details"), 401)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Infobip SMS API on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", action="append", required=True,
                        help="an accepted API key (repeatable)")
    parser.add_argument("--delivery-reports", action="store_true",
                        help="push delivery reports to each message's webhooks.delivery.url")
    parser.add_argument("--delay-ms", type=int, default=0, help="delay every answer")
    parser.add_argument("--balance", default="47.79134", help="the balance, a JSON number")
    parser.add_argument("--currency", default="EUR")
    parser.add_argument("--no-record", action="store_true",
                        help="keep nothing per request (long benchmarks)")
    args = parser.parse_args(argv)
    fake = FakeInfobip(args.api_key, delivery_reports=args.delivery_reports,
                       delay_ms=args.delay_ms, balance=args.balance, currency=args.currency,
                       record=not args.no_record)
    run_forever(fake.app, args.port)


if __name__ == "__main__":
    main()
