"""A fake of MSG91's flow (OneAPI) send API and balance query, with v2 delivery reports.

Paths, auth and bodies are MSG91's (see ``tidings/providers/sms/msg91.py`` for the sources and
what is assumed)::

    POST /api/v5/flow/  (and /api/v5/flow)   {"type": "success", "message": "<request id>"}
    GET  /api/balance.php?authkey=&type=     the route's credits as plain text

The ``authkey`` header (a query parameter for balance.php) must be one of the fake's keys, else
401 ``{"type": "error", "message": "Authentication failure"}`` (balance.php answers the text
``Authentication failure``). A flow request is checked as MSG91 would: a body that is not a
JSON object, no ``template_id`` (or legacy ``flow_id``), a template the fake does not know
(when ``templates`` is given), no ``recipients`` or a recipient without an international
``mobiles`` number are each a 400 ``{"type": "error", "message": ...}``. The authentication
failure body is MSG91's as third-party clients record it; its status and the other error texts
are the fake's own [U]. Request ids are 24 hex digits, like MSG91's.

With ``dlr_url``, every recipient of an accepted request is reported there in MSG91's v2 form
(``application/x-www-form-urlencoded``, field ``data`` = a JSON array with the request id and
one ``report`` entry per number, ``status`` ``1``/``DELIVERED`` unless ``script_delivery``
says otherwise), from a background task per event loop with its own httpx client, retried a
few times on a connection error or 5xx. ``reports`` records what was delivered.

Standalone: ``python -m tests.fakes.msg91 --port N --auth-key K [--auth-key K2]
[--dlr-url U] [--delay-ms N] [--balance 1500]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import secrets
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.server import ReportQueue, run_forever

IST = timezone(timedelta(hours=5, minutes=30))
_MOBILE = re.compile(r"^[1-9][0-9]{7,14}$")
_DESCRIPTIONS = {"1": "DELIVERED", "2": "FAILED", "9": "NDNC", "16": "REJECTED",
                 "17": "BLOCKED", "25": "REJECTED"}
_NOT_VARIABLES = frozenset({"mobiles"})


@dataclass(frozen=True)
class RecordedSend:
    """One accepted flow request: the JSON MSG91 would have received, and the id it answered."""

    request_id: str
    auth_key: str
    template_id: str
    sender: str | None
    recipients: tuple[Mapping[str, Any], ...]
    body: Mapping[str, Any]

    @property
    def variables(self) -> tuple[dict[str, Any], ...]:
        """Each recipient's variables (everything but ``mobiles``)."""
        return tuple({k: v for k, v in r.items() if k not in _NOT_VARIABLES}
                     for r in self.recipients)


@dataclass(frozen=True)
class DeliveredReport:
    """One v2 delivery report post: ``status`` is the receiver's last HTTP answer (``None``
    when no attempt got one) after ``attempts`` tries."""

    url: str
    data: list[dict[str, Any]]
    status: int | None
    attempts: int


@dataclass(frozen=True)
class CannedAnswer:
    status: int
    body: str | dict[str, Any] | list[Any]
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """How messages to a number end: MSG91's status code, its ``desc`` and ``failedReason``."""

    status: str = "1"
    desc: str = "DELIVERED"
    failed_reason: str = ""


class FakeMsg91:
    """MSG91 for the given auth keys; ``app`` is the ASGI app.

    ``templates``, when given, are the only template ids the fake accepts. ``delay_ms`` delays
    every answer. ``balance`` is what balance.php answers. ``dlr_attempts`` and
    ``dlr_retry_seconds`` bound the retries of a delivery report; ``clock`` gives report dates.
    """

    def __init__(
        self,
        auth_keys: Iterable[str],
        *,
        dlr_url: str | None = None,
        templates: Collection[str] | None = None,
        delay_ms: int = 0,
        balance: str = "1500",
        dlr_attempts: int = 5,
        dlr_retry_seconds: float = 0.2,
        dlr_concurrency: int = 64,
        clock: Callable[[], datetime] = lambda: datetime.now(IST),
    ) -> None:
        self.auth_keys = frozenset(auth_keys)
        self.dlr_url = dlr_url
        self.templates = frozenset(templates) if templates is not None else None
        self.delay_ms = delay_ms
        self.balance = balance
        self.dlr_attempts = dlr_attempts
        self.dlr_retry_seconds = dlr_retry_seconds
        self.dlr_concurrency = dlr_concurrency
        self.clock = clock
        self.sends: list[RecordedSend] = []
        self.requests: list[tuple[str, str]] = []
        self.reports: list[DeliveredReport] = []
        self._canned: deque[CannedAnswer] = deque()
        self._outcomes: dict[str, Outcome] = {}
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(8)
        self._reports: ReportQueue[RecordedSend] = ReportQueue(self._report, dlr_concurrency)
        self.app = Starlette(routes=[
            Route("/api/v5/flow/", self._flow, methods=["POST"]),
            Route("/api/v5/flow", self._flow, methods=["POST"]),
            Route("/api/balance.php", self._balance, methods=["GET"]),
        ])

    # --- scripting ---

    def fail_next(self, count: int = 1, status: int = 500,
                  body: str | dict[str, Any] | None = None,
                  headers: Mapping[str, str] | None = None) -> None:
        """Answer the next ``count`` flow requests with ``status`` and ``body`` (by default
        ``{"type": "error", "message": "Internal Server Error"}``) instead of taking them."""
        canned = CannedAnswer(status, body if body is not None else _error("Internal Server Error"),
                              dict(headers or {}))
        self._canned.extend([canned] * count)

    def malformed_next(self, count: int = 1, body: str = "<html>Bad Gateway</html>") -> None:
        """Answer the next ``count`` flow requests 200 with ``body`` (by default not JSON)."""
        self._canned.extend([CannedAnswer(200, body)] * count)

    def script_delivery(self, mobiles: str, status: str = "2", desc: str | None = None,
                        failed_reason: str = "") -> None:
        """Reports for ``mobiles`` (``91XXXXXXXXXX``) carry ``status`` (an MSG91 code)."""
        self._outcomes[mobiles] = Outcome(status, desc or _DESCRIPTIONS.get(status, "UNKNOWN"),
                                          failed_reason)

    @property
    def reports_pending(self) -> int:
        """Delivery reports queued or being posted right now."""
        return self._reports.pending

    # --- endpoints ---

    async def _flow(self, request: Request) -> Response:
        self.requests.append(("POST", request.url.path))
        await self._pause()
        auth_key = request.headers.get("authkey", "")
        if auth_key not in self.auth_keys:
            return JSONResponse(_error("Authentication failure"), 401)
        if self._canned:
            canned = self._canned.popleft()
            if isinstance(canned.body, str):
                return Response(canned.body, canned.status, dict(canned.headers))
            return JSONResponse(canned.body, canned.status, dict(canned.headers))
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse(_error("Invalid JSON body"), 400)
        invalid = self._invalid(body)
        if invalid is not None:
            return JSONResponse(_error(invalid), 400)
        template_id = str(body.get("template_id") or body.get("flow_id"))
        sent = RecordedSend(
            request_id=f"{self._id_prefix}{next(self._ids):08x}",
            auth_key=auth_key,
            template_id=template_id,
            sender=body.get("sender") if isinstance(body.get("sender"), str) else None,
            recipients=tuple(body["recipients"]),
            body=body,
        )
        self.sends.append(sent)
        if self.dlr_url:
            self._reports.put(sent)
        return JSONResponse({"message": sent.request_id, "type": "success"})

    def _invalid(self, body: Mapping[str, Any]) -> str | None:
        template_id = body.get("template_id") or body.get("flow_id")
        if not isinstance(template_id, str) or not template_id:
            return "template_id is missing"
        if self.templates is not None and template_id not in self.templates:
            return "Invalid template_id"
        recipients = body.get("recipients")
        if not isinstance(recipients, list) or not recipients:
            return "recipients are missing"
        for recipient in recipients:
            if not isinstance(recipient, dict):
                return "recipients must be objects"
            mobiles = recipient.get("mobiles")
            if not isinstance(mobiles, str) or not all(
                    _MOBILE.match(number) for number in mobiles.split(",")):
                return "Invalid mobile number(s): use the international format, digits only"
        return None

    async def _balance(self, request: Request) -> Response:
        self.requests.append(("GET", request.url.path))
        await self._pause()
        if request.query_params.get("authkey", "") not in self.auth_keys:
            return PlainTextResponse("Authentication failure")
        if not request.query_params.get("type"):
            return PlainTextResponse("Route type is missing")
        return PlainTextResponse(self.balance)

    async def _pause(self) -> None:
        if self.delay_ms > 0:
            await asyncio.sleep(self.delay_ms / 1000)

    # --- delivery reports ---

    def v2_data(self, sent: RecordedSend) -> list[dict[str, Any]]:
        """The v2 ``data`` array MSG91 posts for ``sent``: one report entry per number."""
        date = self.clock().astimezone(IST).strftime("%Y-%m-%d %H:%M:%S")
        entries = []
        for recipient in sent.recipients:
            for number in str(recipient["mobiles"]).split(","):
                outcome = self._outcomes.get(number, Outcome())
                entries.append({
                    "date": date, "amount": "0.01", "clientid": "", "INMSID": "0", "CRQID": "0",
                    "ctCode": "900", "number": number, "credit": "1", "status": outcome.status,
                    "desc": outcome.desc, "failedReason": outcome.failed_reason,
                })
        return [{"senderId": sent.sender or "", "requestId": sent.request_id, "report": entries,
                 "userId": "270001", "campaignName": "API"}]

    async def _report(self, client: httpx.AsyncClient, sent: RecordedSend) -> None:
        url = self.dlr_url
        if url is None:
            return
        data = self.v2_data(sent)
        content = urlencode({"data": json.dumps(data, separators=(",", ":"))})
        headers = {"content-type": "application/x-www-form-urlencoded"}
        status: int | None = None
        attempt = 0
        for attempt in range(1, self.dlr_attempts + 1):
            try:
                response = await client.post(url, content=content, headers=headers)
            except httpx.TransportError:
                status = None
            else:
                status = response.status_code
                if status < 500:
                    break
            if attempt < self.dlr_attempts:
                await asyncio.sleep(self.dlr_retry_seconds * attempt)
        self.reports.append(DeliveredReport(url, data, status, attempt))


def _error(message: str) -> dict[str, str]:
    return {"type": "error", "message": message}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake MSG91 flow API on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--auth-key", action="append", required=True,
                        help="an accepted auth key (repeatable)")
    parser.add_argument("--dlr-url", default=None,
                        help="post v2 delivery reports here (the gateway's URL with ?token=)")
    parser.add_argument("--delay-ms", type=int, default=0, help="delay every answer")
    parser.add_argument("--balance", default="1500", help="what balance.php answers")
    args = parser.parse_args(argv)
    fake = FakeMsg91(args.auth_key, dlr_url=args.dlr_url, delay_ms=args.delay_ms,
                     balance=args.balance)
    run_forever(fake.app, args.port)


if __name__ == "__main__":
    main()
