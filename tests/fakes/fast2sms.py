"""A fake of Fast2SMS's Dev API: ``bulkV2`` on the DLT routes and the wallet, with delivery
reports in the shape the provider module documents as assumed.

Paths, auth, codes and bodies are Fast2SMS's (see ``tidings/providers/sms/fast2sms.py`` for the
sources and what is assumed)::

    POST /dev/bulkV2  (JSON or form; GET with the query)   {"return": true, "request_id": ...,
                                                            "message": ["SMS sent successfully."]}
    POST /dev/wallet  (GET with ?authorization=)           {"return": true, "wallet": "75.0000",
                                                            "sms_count": 500}

The key goes in the ``authorization`` header of a POST (the query of a GET); an unknown key is
401 ``{"return": false, "status_code": 412, "message": "Invalid Authentication, Check
Authorization Key"}``. Requests are checked in the order and with the codes of Fast2SMS's
error table, each a 400 ``{"return": false, "status_code": <code>, "message": <text>}``:
403 route missing, 408 invalid route, 401 sender id missing, 402 message missing, 405 numbers
missing, 411 invalid numbers (not 10-digit Indian mobiles), 425 a ``dlt_manual`` send without
``template_id`` or ``entity_id`` (the fake has no DLT Manager for that route), 424 a ``dlt``
send whose Message_ID the fake does not know (when ``message_ids`` is given), 416 when the
wallet (``wallet``) is below the price of the send. Request ids are 15 lower-case letters and
digits.

With ``dlr_url``, every number of an accepted send is reported there as JSON ``{"request_id",
"mobile", "status", "status_description", "sender_id", "route"}`` (``Delivered`` unless
``script_delivery`` says otherwise), from a background task per event loop with its own httpx
client, retried a few times on a connection error or 5xx. ``reports`` records what was
delivered.

Standalone: ``python -m tests.fakes.fast2sms --port N --api-key K [--api-key K2]
[--dlr-url U] [--delay-ms N] [--wallet 100000.00]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import string
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import ReportQueue, run_forever

PRICE_PER_SMS = Decimal("0.15")
_NUMBER = re.compile(r"^[6-9][0-9]{9}$")
_ID_ALPHABET = string.ascii_lowercase + string.digits
_MESSAGES = {
    401: "Sender ID Missing", 402: "Message Text Missing", 403: "Route Missing",
    405: "Numbers Missing", 408: "Invalid Route", 411: "Invalid Numbers",
    412: "Invalid Authentication, Check Authorization Key", 416:
    "You don't have sufficient wallet balance", 424: "Invalid Message ID", 425: "Invalid Template",
    500: "Template/Sender id blacklisted at DLT",
}


@dataclass(frozen=True)
class RecordedSend:
    """One accepted ``bulkV2`` request, as parsed, and the id it answered."""

    request_id: str
    api_key: str
    route: str
    sender_id: str
    message: str
    numbers: tuple[str, ...]
    fields: Mapping[str, str]


@dataclass(frozen=True)
class DeliveredReport:
    """One delivery report post: ``status`` is the receiver's last HTTP answer (``None`` when
    no attempt got one) after ``attempts`` tries."""

    url: str
    body: Mapping[str, str]
    status: int | None
    attempts: int


@dataclass(frozen=True)
class CannedAnswer:
    status: int
    body: str | dict[str, Any] | list[Any]
    headers: Mapping[str, str] = field(default_factory=dict)


class FakeFast2Sms:
    """Fast2SMS for the given API keys; ``app`` is the ASGI app.

    ``message_ids``, when given, are the DLT Manager Message_IDs the ``dlt`` route accepts.
    ``wallet`` is the balance (a decimal string) that each accepted number costs
    ``PRICE_PER_SMS`` of. ``delay_ms`` delays every answer.
    """

    def __init__(
        self,
        api_keys: Iterable[str],
        *,
        dlr_url: str | None = None,
        message_ids: Collection[str] | None = None,
        wallet: str = "100000.00",
        delay_ms: int = 0,
        dlr_attempts: int = 5,
        dlr_retry_seconds: float = 0.2,
        dlr_concurrency: int = 64,
    ) -> None:
        self.api_keys = frozenset(api_keys)
        self.dlr_url = dlr_url
        self.message_ids = frozenset(message_ids) if message_ids is not None else None
        self.wallet = Decimal(wallet)
        self.delay_ms = delay_ms
        self.dlr_attempts = dlr_attempts
        self.dlr_retry_seconds = dlr_retry_seconds
        self.dlr_concurrency = dlr_concurrency
        self.sends: list[RecordedSend] = []
        self.requests: list[tuple[str, str]] = []
        self.reports: list[DeliveredReport] = []
        self._canned: deque[CannedAnswer] = deque()
        self._outcomes: dict[str, tuple[str, str]] = {}
        self._random = random.Random()
        self._reports: ReportQueue[RecordedSend] = ReportQueue(self._report, dlr_concurrency)
        self.app = Starlette(routes=[
            Route("/dev/bulkV2", self._bulk, methods=["GET", "POST"]),
            Route("/dev/wallet", self._wallet, methods=["GET", "POST"]),
        ])

    # --- scripting ---

    def fail_next(self, count: int = 1, status: int = 500,
                  body: str | dict[str, Any] | None = None,
                  headers: Mapping[str, str] | None = None) -> None:
        """Answer the next ``count`` sends with ``status`` and ``body`` (by default an HTML
        error page, as a proxy in front of Fast2SMS would) instead of taking them."""
        canned = CannedAnswer(status, body if body is not None else "<html>Server Error</html>",
                              dict(headers or {}))
        self._canned.extend([canned] * count)

    def reject_next(self, count: int = 1, status_code: int = 416) -> None:
        """Answer the next ``count`` sends with Fast2SMS's own error ``status_code`` (HTTP 400,
        or 401 for 412/413)."""
        http = 401 if status_code in (412, 413) else 400
        self.fail_next(count, http, _error(status_code))

    def malformed_next(self, count: int = 1, body: str = '{"return": true}') -> None:
        """Answer the next ``count`` sends 200 with ``body`` (by default without a request
        id)."""
        self._canned.extend([CannedAnswer(200, body)] * count)

    def script_delivery(self, number: str, status: str = "Failed",
                        description: str = "Absent subscriber") -> None:
        """Reports for ``number`` (10 digits) say ``status`` with ``description``."""
        self._outcomes[number] = (status, description)

    @property
    def reports_pending(self) -> int:
        """Delivery reports queued or being posted right now."""
        return self._reports.pending

    # --- endpoints ---

    async def _bulk(self, request: Request) -> Response:
        self.requests.append((request.method, request.url.path))
        await self._pause()
        fields, api_key = await _fields_and_key(request)
        if api_key not in self.api_keys:
            return _failure(412)
        if self._canned:
            canned = self._canned.popleft()
            if isinstance(canned.body, str):
                return Response(canned.body, canned.status, dict(canned.headers))
            return JSONResponse(canned.body, canned.status, dict(canned.headers))
        code = self._invalid(fields)
        if code is not None:
            return _failure(code)
        numbers = tuple(fields["numbers"].split(","))
        cost = PRICE_PER_SMS * len(numbers)
        if self.wallet < cost:
            return _failure(416)
        self.wallet -= cost
        sent = RecordedSend(
            request_id="".join(self._random.choices(_ID_ALPHABET, k=15)), api_key=api_key,
            route=fields["route"], sender_id=fields["sender_id"], message=fields["message"],
            numbers=numbers, fields=fields,
        )
        self.sends.append(sent)
        if self.dlr_url:
            self._reports.put(sent)
        return JSONResponse({"return": True, "request_id": sent.request_id,
                             "message": ["SMS sent successfully."]})

    def _invalid(self, fields: Mapping[str, str]) -> int | None:
        route = fields.get("route", "")
        if not route:
            return 403
        if route not in ("dlt", "dlt_manual"):
            return 408
        if not fields.get("sender_id"):
            return 401
        if not fields.get("message"):
            return 402
        numbers = fields.get("numbers", "")
        if not numbers:
            return 405
        if not all(_NUMBER.match(number) for number in numbers.split(",")):
            return 411
        if route == "dlt_manual" and not (fields.get("template_id") and fields.get("entity_id")):
            return 425
        if route == "dlt" and self.message_ids is not None and (
                fields["message"] not in self.message_ids):
            return 424
        return None

    async def _wallet(self, request: Request) -> Response:
        self.requests.append((request.method, request.url.path))
        await self._pause()
        _, api_key = await _fields_and_key(request)
        if api_key not in self.api_keys:
            return _failure(412)
        return JSONResponse({"return": True, "wallet": f"{self.wallet:.4f}",
                             "sms_count": int(self.wallet / PRICE_PER_SMS)})

    async def _pause(self) -> None:
        if self.delay_ms > 0:
            await asyncio.sleep(self.delay_ms / 1000)

    # --- delivery reports ---

    def report_body(self, sent: RecordedSend, number: str) -> dict[str, str]:
        """The JSON the fake posts for ``number`` of ``sent`` (the assumed shape)."""
        status, description = self._outcomes.get(number, ("Delivered", "Delivered"))
        return {"request_id": sent.request_id, "mobile": number, "status": status,
                "status_description": description, "sender_id": sent.sender_id,
                "route": sent.route}

    async def _report(self, client: httpx.AsyncClient, sent: RecordedSend) -> None:
        url = self.dlr_url
        if url is None:
            return
        for number in sent.numbers:
            body = self.report_body(sent, number)
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


async def _fields_and_key(request: Request) -> tuple[dict[str, str], str]:
    """The request's parameters (query for GET, JSON or form body for POST) and its key."""
    if request.method == "GET":
        fields = dict(request.query_params)
        return fields, fields.pop("authorization", "")
    raw = await request.body()
    fields = {}
    if "json" in request.headers.get("content-type", ""):
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            fields = {str(k): v if isinstance(v, str) else json.dumps(v)
                      for k, v in parsed.items()}
    else:
        fields = dict(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))
    return fields, request.headers.get("authorization", "")


def _error(status_code: int) -> dict[str, Any]:
    return {"return": False, "status_code": status_code,
            "message": _MESSAGES.get(status_code, "Error")}


def _failure(status_code: int) -> Response:
    http = 401 if status_code in (412, 413) else 400
    return JSONResponse(_error(status_code), http)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Fast2SMS Dev API on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", action="append", required=True,
                        help="an accepted API key (repeatable)")
    parser.add_argument("--dlr-url", default=None,
                        help="post delivery reports here (the gateway's URL with ?token=)")
    parser.add_argument("--delay-ms", type=int, default=0, help="delay every answer")
    parser.add_argument("--wallet", default="100000.00", help="the starting wallet balance (INR)")
    args = parser.parse_args(argv)
    try:
        Decimal(args.wallet)
    except InvalidOperation:
        parser.error("--wallet must be a decimal number")
    fake = FakeFast2Sms(args.api_key, dlr_url=args.dlr_url, delay_ms=args.delay_ms,
                        wallet=args.wallet)
    run_forever(fake.app, args.port)


if __name__ == "__main__":
    main()
