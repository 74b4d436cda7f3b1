"""A fake of Vonage's legacy SMS API (``rest.nexmo.com``): sends, the balance, delivery receipts
and inbound messages, optionally signed.

Paths, auth, fields and bodies are Vonage's (see ``tidings/providers/sms/vonage.py`` for the
sources and what is assumed)::

    POST /sms/json              form; HTTP 200 {"message-count": "N", "messages": [one per part]}
    GET  /account/get-balance   Basic auth (or api_key/api_secret in the query)
                                {"value": 10.17127500, "autoReload": false}; 401
                                {"error-code": "401", "error-code-label": "authentication failed"}

``/sms/json`` answers HTTP 200 whatever happens, with a status per part, as Vonage does. It
takes ``api_key`` with ``api_secret`` (form or query), or ``api_key`` with ``timestamp`` and
``sig`` signed with the key's signature secret (``signature_method``), or HTTP Basic. Checked in
this order, each answered as one failed part ``{"status", "error-text"}``: 2 ``api_key``
missing, 32 both ``api_secret`` and ``sig``, 14 a signature that does not match, 4 a wrong
secret, then (canned answers here) 2 ``from``/``to``/``text`` missing, 3 ``to`` not 7-15 digits
or an unknown ``type``, 23 a ``callback`` over 100 characters, 9 a balance below the price. The
codes are Vonage's; the error texts are the fake's own [U] except those quoted in Vonage's docs
and SDK test data. A text is split into parts as GSM-7 (160, else 153 a part) or, with
``type=unicode``, UCS-2 (70, else 67) by character count; each part gets a 16-hex-digit id, as
Vonage's ``0A0000000123ABCD1`` style ids.

With a ``callback`` in the send, or ``dlr_url`` (the dashboard's default receipt URL), every
part is reported there: ``msisdn``, ``to`` (the sender), ``network-code``, ``messageId``,
``price``, ``status`` (``delivered`` with ``err-code`` ``0`` unless ``script_delivery`` says
otherwise), ``scts``, ``err-code``, ``api-key``, ``client-ref`` when sent, ``message-timestamp``;
as ``dlr_method`` says (``GET`` query, ``POST`` form or ``POST-JSON``), and with
``sign_webhooks`` signed (``timestamp``, ``nonce``, ``sig``: lower-case hex for ``md5hash``,
upper-case for the HMACs). Receipts go from a background task per event loop with its own httpx
client, retried a few times on a connection error or 5xx; ``reports`` records them.
``send_inbound`` posts an inbound message the same way.

Standalone: ``python -m tests.fakes.vonage --port N --credential KEY:SECRET [--credential ...]
[--signature-secret KEY:SECRET] [--signature-method sha256] [--sign-webhooks] [--dlr-url U]
[--dlr-method POST-JSON] [--delay-ms N] [--balance 10.17127500]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import hmac
import itertools
import json
import math
import re
import secrets
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import run_forever

DlrMethod = Literal["GET", "POST", "POST-JSON"]
_TO = re.compile(r"^[0-9]{7,15}$")
_TYPES = frozenset({"text", "unicode", "binary", "wappush", "vcal", "vcard"})
_HMAC_METHODS = frozenset({"md5", "sha1", "sha256", "sha512"})
_NETWORK = "23410"


def vonage_signature(params: Mapping[str, str], secret: str, method: str) -> str:
    """Vonage's signature of ``params`` (``sig`` left out), as Vonage sends it: lower-case hex
    for ``md5hash``, upper-case for the HMAC methods."""
    signed = "".join(f"&{name}={value.replace('&', '_').replace('=', '_')}"
                     for name, value in sorted(params.items()) if name != "sig")
    if method == "md5hash":
        return hashlib.md5((signed + secret).encode()).hexdigest()
    if method not in _HMAC_METHODS:
        raise ValueError(f"unknown signature method {method!r}")
    return hmac.new(secret.encode(), signed.encode(), method).hexdigest().upper()


@dataclass(frozen=True)
class RecordedSend:
    """One accepted send: the form Vonage received (secrets included, as sent) and its parts."""

    api_key: str
    signed: bool
    form: Mapping[str, str]
    message_ids: tuple[str, ...]

    @property
    def to(self) -> str:
        return self.form["to"]


@dataclass(frozen=True)
class DeliveredReport:
    """One webhook call: ``status`` is the receiver's last HTTP answer (``None`` when no attempt
    got one) after ``attempts`` tries."""

    url: str
    method: str
    fields: Mapping[str, str]
    status: int | None
    attempts: int


@dataclass(frozen=True)
class CannedAnswer:
    status: int
    body: str | dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """How messages to a number end: the receipt ``status`` word and its ``err-code``."""

    status: str = "delivered"
    err_code: str = "0"


class FakeVonage:
    """Vonage's SMS API for ``credentials`` (API key -> API secret); ``app`` is the ASGI app.

    ``signature_secrets`` (API key -> signature secret) enable signed requests and, with
    ``sign_webhooks``, signed webhooks, with ``signature_method``. ``balance`` is the account
    balance in EUR as Vonage prints it; ``price`` is charged per part. ``delay_ms`` delays every
    answer. ``dlr_attempts`` and ``dlr_retry_seconds`` bound the retries of a webhook; ``clock``
    gives receipt times.
    """

    def __init__(
        self,
        credentials: Mapping[str, str],
        *,
        signature_secrets: Mapping[str, str] | None = None,
        signature_method: str = "md5hash",
        sign_webhooks: bool = False,
        dlr_url: str | None = None,
        dlr_method: DlrMethod = "POST-JSON",
        delay_ms: int = 0,
        balance: str = "10.17127500",
        price: str = "0.03330000",
        dlr_attempts: int = 5,
        dlr_retry_seconds: float = 0.2,
        dlr_concurrency: int = 64,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.credentials = dict(credentials)
        self.signature_secrets = dict(signature_secrets or {})
        self.signature_method = signature_method
        self.sign_webhooks = sign_webhooks
        self.dlr_url = dlr_url
        self.dlr_method: DlrMethod = dlr_method
        self.delay_ms = delay_ms
        self.balance = Decimal(balance)
        self.price = Decimal(price)
        self.dlr_attempts = dlr_attempts
        self.dlr_retry_seconds = dlr_retry_seconds
        self.dlr_concurrency = dlr_concurrency
        self.clock = clock
        self.sends: list[RecordedSend] = []
        self.requests: list[tuple[str, str]] = []
        self.reports: list[DeliveredReport] = []
        self._canned: deque[CannedAnswer] = deque()
        self._outcomes: dict[str, Outcome] = {}
        self._refusals: dict[str, tuple[str, str]] = {}
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(4).upper()
        self._queue: asyncio.Queue[tuple[str, dict[str, str]]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: asyncio.Task[None] | None = None
        self._in_flight = 0
        self.app = Starlette(routes=[
            Route("/sms/json", self._send, methods=["POST"]),
            Route("/account/get-balance", self._balance, methods=["GET"]),
        ])

    # --- scripting ---

    def fail_next(self, count: int = 1, status: int = 500, body: str | dict[str, Any] = "",
                  headers: Mapping[str, str] | None = None) -> None:
        """Answer the next ``count`` authenticated sends with ``status`` and ``body``."""
        self._canned.extend([CannedAnswer(status, body, dict(headers or {}))] * count)

    def status_next(self, count: int = 1, status: str = "1",
                    error_text: str = "Throttled") -> None:
        """Answer the next ``count`` authenticated sends 200 with one failed part."""
        self.fail_next(count, 200, _failed(status, error_text))

    def refuse(self, to: str, status: str = "7", error_text: str = "Number barred.") -> None:
        """Sends to ``to`` (digits) fail with ``status``, as Vonage refuses a barred number."""
        self._refusals[to] = (status, error_text)

    def script_delivery(self, to: str, status: str = "failed", err_code: str = "2") -> None:
        """Receipts for ``to`` (digits) carry ``status`` and ``err_code``."""
        self._outcomes[to] = Outcome(status, err_code)

    @property
    def reports_pending(self) -> int:
        """Webhooks queued or being delivered right now."""
        return (self._queue.qsize() if self._queue is not None else 0) + self._in_flight

    # --- endpoints ---

    async def _send(self, request: Request) -> Response:
        self.requests.append(("POST", request.url.path))
        await self._pause()
        params = dict(parse_qsl(request.url.query, keep_blank_values=True))
        params.update(parse_qsl((await request.body()).decode("utf-8", errors="replace"),
                                keep_blank_values=True))
        api_key, refusal = self._authenticate(request, params)
        if refusal is not None:
            return JSONResponse(refusal)
        if self._canned:
            canned = self._canned.popleft()
            if isinstance(canned.body, str):
                return Response(canned.body, canned.status, dict(canned.headers))
            return JSONResponse(canned.body, canned.status, dict(canned.headers))
        invalid = self._invalid(params)
        if invalid is not None:
            return JSONResponse(_failed(*invalid))
        unicode = params.get("type") == "unicode"
        count = _parts(params["text"], unicode)
        cost = self.price * count
        if cost > self.balance:
            return JSONResponse(_failed("9", "Partner quota exceeded"))
        self.balance -= cost
        ids = tuple(f"{self._id_prefix}{next(self._ids):08X}" for _ in range(count))
        sent = RecordedSend(api_key, "sig" in params, params, ids)
        self.sends.append(sent)
        parts = []
        for message_id in ids:
            part = {"to": params["to"], "message-id": message_id, "status": "0",
                    "remaining-balance": f"{self.balance:.8f}",
                    "message-price": f"{self.price:.8f}", "network": _NETWORK}
            if "client-ref" in params:
                part["client-ref"] = params["client-ref"]
            parts.append(part)
        url = params.get("callback") or self.dlr_url
        if url and params.get("status-report-req", "true").lower() not in ("false", "0"):
            for message_id in ids:
                self._enqueue(url, self.receipt_fields(sent, message_id))
        return JSONResponse({"message-count": str(count), "messages": parts})

    def _authenticate(self, request: Request,
                      params: Mapping[str, str]) -> tuple[str, dict[str, Any] | None]:
        basic = _basic(request.headers.get("authorization", ""))
        if basic is not None and "api_key" not in params:
            key, secret = basic
            if self.credentials.get(key) != secret:
                return key, _failed("4", "Bad Credentials")
            return key, None
        api_key = params.get("api_key", "")
        if not api_key:
            return api_key, _failed("2", "Missing api_key")
        if "sig" in params:
            if "api_secret" in params:
                return api_key, _failed("32", "Signature And API Secret Disallowed")
            secret = self.signature_secrets.get(api_key)
            expected = (vonage_signature(params, secret, self.signature_method)
                        if secret is not None else None)
            if expected is None or not hmac.compare_digest(expected.lower(),
                                                           params["sig"].lower()):
                return api_key, _failed("14", "Invalid Signature")
            return api_key, None
        if self.credentials.get(api_key) != params.get("api_secret"):
            return api_key, _failed("4", "Bad Credentials")
        return api_key, None

    def _invalid(self, params: Mapping[str, str]) -> tuple[str, str] | None:
        for name in ("from", "to", "text"):
            if not params.get(name):
                return "2", f"Missing {name} param"
        if not _TO.match(params["to"]):
            return "3", "Invalid to param"
        if params.get("type", "text") not in _TYPES:
            return "3", "Invalid type param"
        if len(params.get("callback", "")) > 100:
            return "23", "Invalid Callback Url"
        return self._refusals.get(params["to"])

    async def _balance(self, request: Request) -> Response:
        self.requests.append(("GET", request.url.path))
        await self._pause()
        basic = _basic(request.headers.get("authorization", ""))
        key, secret = basic or (request.query_params.get("api_key", ""),
                                request.query_params.get("api_secret", ""))
        if not key or self.credentials.get(key) != secret:
            return JSONResponse({"error-code": "401", "error-code-label": "authentication failed"},
                                401)
        return Response(f'{{"value": {self.balance:.8f}, "autoReload": false}}',
                        media_type="application/json")

    async def _pause(self) -> None:
        if self.delay_ms > 0:
            await asyncio.sleep(self.delay_ms / 1000)

    # --- webhooks ---

    def receipt_fields(self, sent: RecordedSend, message_id: str) -> dict[str, str]:
        """The receipt Vonage sends for one part of ``sent`` (signed when configured)."""
        now = self.clock().astimezone(UTC)
        outcome = self._outcomes.get(sent.to, Outcome())
        fields = {
            "msisdn": sent.to, "to": sent.form["from"], "network-code": _NETWORK,
            "messageId": message_id, "price": f"{self.price:.8f}", "status": outcome.status,
            "scts": now.strftime("%y%m%d%H%M"), "err-code": outcome.err_code,
            "api-key": sent.api_key, "message-timestamp": now.strftime("%Y-%m-%d %H:%M:%S"),
        }
        if "client-ref" in sent.form:
            fields["client-ref"] = sent.form["client-ref"]
        return self._signed(sent.api_key, fields)

    def inbound_fields(self, api_key: str, msisdn: str, to: str, text: str) -> dict[str, str]:
        """An inbound message to our number ``to`` from ``msisdn`` (digits)."""
        now = self.clock().astimezone(UTC)
        fields = {
            "api-key": api_key, "msisdn": msisdn, "to": to,
            "messageId": f"{self._id_prefix}{next(self._ids):08X}", "text": text,
            "type": "text", "keyword": text.split(" ", 1)[0].upper() if text else "",
            "message-timestamp": now.strftime("%Y-%m-%d %H:%M:%S"),
        }
        return self._signed(api_key, fields)

    async def send_inbound(self, url: str, *, api_key: str, msisdn: str, to: str,
                           text: str) -> DeliveredReport:
        """Deliver one inbound message to ``url`` now, as ``dlr_method`` says."""
        fields = self.inbound_fields(api_key, msisdn, to, text)
        async with httpx.AsyncClient(timeout=10.0) as client:
            return await self._deliver(client, url, fields)

    def _signed(self, api_key: str, fields: dict[str, str]) -> dict[str, str]:
        secret = self.signature_secrets.get(api_key)
        if not self.sign_webhooks or secret is None:
            return fields
        fields["timestamp"] = str(int(self.clock().timestamp()))
        fields["nonce"] = str(uuid.uuid4())
        fields["sig"] = vonage_signature(fields, secret, self.signature_method)
        return fields

    def _enqueue(self, url: str, fields: dict[str, str]) -> None:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop:
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._deliver_reports(self._queue))
        self._queue.put_nowait((url, fields))

    async def _deliver_reports(self, queue: asyncio.Queue[tuple[str, dict[str, str]]]) -> None:
        slots = asyncio.Semaphore(self.dlr_concurrency)
        running: set[asyncio.Task[DeliveredReport]] = set()
        async with httpx.AsyncClient(timeout=10.0) as client:
            while True:
                url, fields = await queue.get()
                await slots.acquire()
                self._in_flight += 1
                task = asyncio.create_task(self._deliver(client, url, fields))
                running.add(task)

                def finished(task: asyncio.Task[DeliveredReport]) -> None:
                    running.discard(task)
                    slots.release()
                    self._in_flight -= 1

                task.add_done_callback(finished)

    async def _deliver(self, client: httpx.AsyncClient, url: str,
                       fields: Mapping[str, str]) -> DeliveredReport:
        status: int | None = None
        attempt = 0
        for attempt in range(1, self.dlr_attempts + 1):
            try:
                if self.dlr_method == "GET":
                    joiner = "&" if "?" in url else "?"
                    response = await client.get(url + joiner + urlencode(fields))
                elif self.dlr_method == "POST":
                    response = await client.post(url, data=dict(fields))
                else:
                    response = await client.post(url, content=json.dumps(fields),
                                                 headers={"content-type": "application/json"})
            except httpx.TransportError:
                status = None
            else:
                status = response.status_code
                if status < 500:
                    break
            if attempt < self.dlr_attempts:
                await asyncio.sleep(self.dlr_retry_seconds * attempt)
        report = DeliveredReport(url, self.dlr_method, dict(fields), status, attempt)
        self.reports.append(report)
        return report


def _failed(status: str, error_text: str) -> dict[str, Any]:
    return {"message-count": "1", "messages": [{"status": status, "error-text": error_text}]}


def _parts(text: str, unicode: bool) -> int:
    single, multi = (70, 67) if unicode else (160, 153)
    return 1 if len(text) <= single else math.ceil(len(text) / multi)


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    key, sep, secret = decoded.partition(":")
    return (key, secret) if sep else None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Vonage SMS API on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--credential", action="append", required=True,
                        help="an accepted API_KEY:API_SECRET pair (repeatable)")
    parser.add_argument("--signature-secret", action="append", default=[],
                        help="API_KEY:SIGNATURE_SECRET for signed requests/webhooks (repeatable)")
    parser.add_argument("--signature-method", default="md5hash",
                        choices=["md5hash", "md5", "sha1", "sha256", "sha512"])
    parser.add_argument("--sign-webhooks", action="store_true", help="sign receipts and inbound")
    parser.add_argument("--dlr-url", default=None,
                        help="default receipt URL (the gateway's DLR URL with ?token=)")
    parser.add_argument("--dlr-method", default="POST-JSON", choices=["GET", "POST", "POST-JSON"])
    parser.add_argument("--delay-ms", type=int, default=0, help="delay every answer")
    parser.add_argument("--balance", default="10.17127500", help="the account balance, EUR")
    args = parser.parse_args(argv)
    fake = FakeVonage(
        dict(pair.split(":", 1) for pair in args.credential),
        signature_secrets=dict(pair.split(":", 1) for pair in args.signature_secret),
        signature_method=args.signature_method, sign_webhooks=args.sign_webhooks,
        dlr_url=args.dlr_url, dlr_method=args.dlr_method, delay_ms=args.delay_ms,
        balance=args.balance)
    run_forever(fake.app, args.port)


if __name__ == "__main__":
    main()
