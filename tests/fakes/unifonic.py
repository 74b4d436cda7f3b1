"""A fake of Unifonic's SMS REST API (``/rest/SMS/messages``), with delivery reports.

Path, auth and bodies are Unifonic's (see ``tidings/providers/sms/unifonic.py`` for the sources
and what is assumed)::

    POST /rest/SMS/messages  (form body, or the query)   {"success": true, "message": "",
                                                          "errorCode": "ER-00", "data": {
                                                          "MessageID": 42000348806924, ...}}

The ``AppSid`` field must be one of the fake's, else HTTP 401 ``{"success": false, "message":
"Authentication failed", "data": {}}`` (no ``AppSid`` at all: 402 "Missing parameter AppSid").
A send is then checked with Unifonic's documented HTTP statuses, each answered with the
envelope ``{"success": false, "message": <text>, "data": {}}`` (that the envelope comes with
them, and without an ``errorCode``, is the fake's assumption): 422 no ``Recipient``, 449 empty
``Body``, 410 a ``Recipient`` that is not digits, 406 a ``MessageType`` other than 1/3/5/6,
480 a ``SenderID`` outside ``senders`` (when given), 409 a ``CorrelationID`` seen before (when
``reject_duplicates``). A number shorter than 9 digits answers 200 ``{"success": false,
"message": "Dest num is too short", "errorCode": "ER-04", "data": {}}`` (Unifonic's documented
failure body) and an empty ``balance`` 200 with ``ER-01`` "No rate found or insufficient
funds". Message ids are 14-digit integers like Unifonic's.

Every accepted message is reported, as JSON ``{"MessageID", "DLR", "Recipient",
"TimeCreated", "SCTS", "DLRTimestamp"}`` (the names of Unifonic's support article; failures add
``ErrorCode`` and ``Comments``), to its ``statusCallback`` when the send gave one, else to
``dlr_url``, from a background task per event loop with its own httpx client, retried a few
times on a connection error or 5xx. ``DLR`` is ``Delivered`` unless ``script_delivery`` says
otherwise. ``reports`` records what was delivered.

Standalone: ``python -m tests.fakes.unifonic --port N --app-sid S [--app-sid S2]
[--dlr-url U] [--sender UNISMS] [--delay-ms N] [--balance 1000.00]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import random
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import ReportQueue, run_forever

KSA = timezone(timedelta(hours=3))
PRICE_PER_UNIT = Decimal("0.05")
CURRENCY = "SAR"
_MESSAGE_TYPES = frozenset({"1", "3", "5", "6"})
_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€")


@dataclass(frozen=True)
class RecordedSend:
    """One accepted send: the fields Unifonic would have received and the id it answered."""

    message_id: int
    app_sid: str
    sender_id: str | None
    recipient: str
    body: str
    correlation_id: str | None
    status_callback: str | None
    units: int
    fields: Mapping[str, str]


@dataclass(frozen=True)
class DeliveredReport:
    """One report post: ``status`` is the receiver's last HTTP answer (``None`` when no
    attempt got one) after ``attempts`` tries."""

    url: str
    body: Mapping[str, str]
    status: int | None
    attempts: int


@dataclass(frozen=True)
class CannedAnswer:
    status: int
    body: str | dict[str, Any] | list[Any]
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """How messages to a number end: the ``DLR`` word, and for failures an ``ER-xx`` code and
    a comment."""

    dlr: str = "Delivered"
    error_code: str = ""
    comments: str = ""


class FakeUnifonic:
    """Unifonic for the given AppSids; ``app`` is the ASGI app.

    ``senders``, when given, are the only sender ids accepted. ``balance`` (a decimal string,
    SAR) pays ``PRICE_PER_UNIT`` per message part. ``delay_ms`` delays every answer.
    ``dlr_attempts`` and ``dlr_retry_seconds`` bound the retries of a report; ``clock`` gives
    the times reports carry.
    """

    def __init__(
        self,
        app_sids: Iterable[str],
        *,
        dlr_url: str | None = None,
        senders: Collection[str] | None = None,
        balance: str = "1000.00",
        reject_duplicates: bool = False,
        delay_ms: int = 0,
        dlr_attempts: int = 5,
        dlr_retry_seconds: float = 0.2,
        dlr_concurrency: int = 64,
        clock: Callable[[], datetime] = lambda: datetime.now(KSA),
    ) -> None:
        self.app_sids = frozenset(app_sids)
        self.dlr_url = dlr_url
        self.senders = frozenset(senders) if senders is not None else None
        self.balance = Decimal(balance)
        self.reject_duplicates = reject_duplicates
        self.delay_ms = delay_ms
        self.dlr_attempts = dlr_attempts
        self.dlr_retry_seconds = dlr_retry_seconds
        self.dlr_concurrency = dlr_concurrency
        self.clock = clock
        self.sends: list[RecordedSend] = []
        self.requests: list[tuple[str, str]] = []
        self.reports: list[DeliveredReport] = []
        self._canned: deque[CannedAnswer] = deque()
        self._outcomes: dict[str, Outcome] = {}
        self._correlations: set[str] = set()
        self._ids = itertools.count(42_000_000_000_000 + random.randrange(10**9))
        self._reports: ReportQueue[RecordedSend] = ReportQueue(self._report, dlr_concurrency)
        self.app = Starlette(routes=[
            Route("/rest/SMS/messages", self._send, methods=["POST"]),
        ])

    # --- scripting ---

    def fail_next(self, count: int = 1, status: int = 599,
                  body: str | dict[str, Any] | None = None,
                  headers: Mapping[str, str] | None = None) -> None:
        """Answer the next ``count`` sends with ``status`` and ``body`` (by default the envelope
        with "Request failed") instead of taking them."""
        canned = CannedAnswer(status, body if body is not None else _failure("Request failed"),
                              dict(headers or {}))
        self._canned.extend([canned] * count)

    def malformed_next(self, count: int = 1, body: str = "<html>Bad Gateway</html>") -> None:
        """Answer the next ``count`` sends 200 with ``body`` (by default not JSON)."""
        self._canned.extend([CannedAnswer(200, body)] * count)

    def script_delivery(self, recipient: str, dlr: str = "Undeliverable",
                        error_code: str = "ER-05",
                        comments: str = "No route found for the destination number") -> None:
        """Reports for ``recipient`` (digits, no ``+``) carry ``dlr``; a ``Delivered`` one
        carries no error."""
        if dlr.lower() == "delivered":
            error_code = comments = ""
        self._outcomes[recipient] = Outcome(dlr, error_code, comments)

    @property
    def reports_pending(self) -> int:
        """Reports queued or being posted right now."""
        return self._reports.pending

    # --- endpoint ---

    async def _send(self, request: Request) -> Response:
        self.requests.append(("POST", request.url.path))
        await self._pause()
        fields = dict(request.query_params)
        raw = await request.body()
        if raw:
            fields.update(parse_qsl(raw.decode("utf-8", errors="replace"),
                                    keep_blank_values=True))
        app_sid = fields.get("AppSid", "")
        if not app_sid:
            return JSONResponse(_failure("Missing parameter AppSid"), 402)
        if app_sid not in self.app_sids:
            return JSONResponse(_failure("Authentication failed"), 401)
        if self._canned:
            canned = self._canned.popleft()
            if isinstance(canned.body, str):
                return Response(canned.body, canned.status, dict(canned.headers))
            return JSONResponse(canned.body, canned.status, dict(canned.headers))
        invalid = self._invalid(fields)
        if invalid is not None:
            return JSONResponse(_failure(invalid[1]), invalid[0])
        recipient = fields["Recipient"]
        if len(recipient) < 9:
            return JSONResponse(_failure("Dest num is too short", "ER-04"))
        text = fields["Body"]
        units = _units(text)
        cost = PRICE_PER_UNIT * units
        if self.balance < cost:
            return JSONResponse(_failure("No rate found or insufficient funds", "ER-01"))
        correlation = fields.get("CorrelationID") or None
        if correlation is not None:
            self._correlations.add(correlation)
        self.balance -= cost
        sent = RecordedSend(
            message_id=next(self._ids), app_sid=app_sid, sender_id=fields.get("SenderID"),
            recipient=recipient, body=text, correlation_id=correlation,
            status_callback=fields.get("statusCallback") or None, units=units, fields=fields)
        self.sends.append(sent)
        if sent.status_callback or self.dlr_url:
            self._reports.put(sent)
        return JSONResponse({
            "success": True, "message": "", "errorCode": "ER-00",
            "data": {
                "MessageID": sent.message_id, "CorrelationID": correlation or "",
                "Status": "Sent", "NumberOfUnits": units, "Cost": float(cost),
                "Balance": float(self.balance), "Recipient": recipient,
                "TimeCreated": _stamp(self.clock(), millis=True), "CurrencyCode": CURRENCY,
            },
        })

    def _invalid(self, fields: Mapping[str, str]) -> tuple[int, str] | None:
        recipient = fields.get("Recipient", "")
        if not recipient:
            return 422, "No recipient parameter specified"
        if not fields.get("Body", "").strip():
            return 449, "Message body is empty"
        if not recipient.isascii() or not recipient.isdigit():
            return 410, "Invalid recipient format"
        message_type = fields.get("MessageType")
        if message_type is not None and message_type not in _MESSAGE_TYPES:
            return 406, "Wrong parameter format"
        sender = fields.get("SenderID")
        if sender is not None and self.senders is not None and sender not in self.senders:
            return 480, "This user cannot use specified SenderID"
        correlation = fields.get("CorrelationID")
        if self.reject_duplicates and correlation and correlation in self._correlations:
            return 409, "This message is duplicate"
        return None

    async def _pause(self) -> None:
        if self.delay_ms > 0:
            await asyncio.sleep(self.delay_ms / 1000)

    # --- delivery reports ---

    def report_body(self, sent: RecordedSend) -> dict[str, str]:
        """The JSON the fake posts for ``sent``."""
        outcome = self._outcomes.get(sent.recipient, Outcome())
        now = self.clock()
        body = {"MessageID": str(sent.message_id), "DLR": outcome.dlr,
                "Recipient": sent.recipient, "TimeCreated": _stamp(now), "SCTS": _stamp(now),
                "DLRTimestamp": _stamp(now)}
        if outcome.error_code:
            body["ErrorCode"] = outcome.error_code
        if outcome.comments:
            body["Comments"] = outcome.comments
        return body

    async def _report(self, client: httpx.AsyncClient, sent: RecordedSend) -> None:
        url = sent.status_callback or self.dlr_url
        if url is None:
            return
        body = self.report_body(sent)
        status: int | None = None
        attempt = 0
        for attempt in range(1, self.dlr_attempts + 1):
            try:
                response = await client.post(url, json=body)
            except httpx.TransportError:
                status = None
            else:
                status = response.status_code
                if status < 500:
                    break
            if attempt < self.dlr_attempts:
                await asyncio.sleep(self.dlr_retry_seconds * attempt)
        self.reports.append(DeliveredReport(url, body, status, attempt))


def _failure(message: str, error_code: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"success": False, "message": message}
    if error_code is not None:
        body["errorCode"] = error_code
    body["data"] = {}
    return body


def _units(text: str) -> int:
    """Message parts: 160/153 characters for GSM-7 text, 70/67 otherwise."""
    single, part = (160, 153) if all(char in _GSM7 for char in text) else (70, 67)
    return 1 if len(text) <= single else math.ceil(len(text) / part)


def _stamp(moment: datetime, *, millis: bool = False) -> str:
    local = moment.astimezone(KSA)
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{local.microsecond // 1000:03d}" if millis else text


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Unifonic SMS API on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--app-sid", action="append", required=True,
                        help="an accepted AppSid (repeatable)")
    parser.add_argument("--dlr-url", default=None,
                        help="post reports here when a send gives no statusCallback "
                             "(the gateway's URL with ?token=)")
    parser.add_argument("--sender", action="append", default=None,
                        help="an accepted SenderID (repeatable; default: any)")
    parser.add_argument("--delay-ms", type=int, default=0, help="delay every answer")
    parser.add_argument("--balance", default="1000.00", help="the starting balance (SAR)")
    args = parser.parse_args(argv)
    try:
        Decimal(args.balance)
    except InvalidOperation:
        parser.error("--balance must be a decimal number")
    fake = FakeUnifonic(args.app_sid, dlr_url=args.dlr_url, senders=args.sender,
                        delay_ms=args.delay_ms, balance=args.balance)
    run_forever(fake.app, args.port)


if __name__ == "__main__":
    main()
