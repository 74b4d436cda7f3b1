"""A fake of CEQUENS's Sign-In and SMS send APIs, with push delivery reports.

Paths, auth and bodies are CEQUENS's (see ``tidings/providers/sms/cequens.py`` for the sources
and what is assumed)::

    POST /auth/v1/tokens/ (and without the slash)  {"apiKey", "userName"} ->
        {"replyCode": 0, ..., "data": {"access_token": "<jwt>"}}
    POST /sms/v1/messages  (Authorization: Bearer <api token or issued jwt>) ->
        {"replyCode": 0, "replyMessage": "Request handled successfully", "requestId",
         "clientRequestId": 0, "requestTime", "data": {"SentSMSIDs": [{"SMSId"}],
         "InvalidRecipients": ""}}

A bearer token that is neither one of the fake's API tokens nor a JWT it issued is a 401; a
sign-in with an unknown pair is a 401 too. A send is checked as CEQUENS documents it, each
failure a 400 envelope with the documented code in ``replyCode`` and its text in
``replyMessage`` (where CEQUENS puts the code, and the 400, are the fake's assumption): -6 no
valid recipient (invalid numbers go to ``InvalidRecipients``), -8 bad ``messageType``, -9 empty
text, -12 no ``senderName`` (or one outside ``sender_names`` when given), -13/-14 ``flashing``
or ``acknowledgement`` not 0/1, -17 not enough credits (one credit per recipient). The 401
bodies are the fake's own.

With a ``dlrUrl`` in the send, each accepted recipient is reported there as a ``GET`` whose
query string (added to the URL's own, so its ``token`` stays) carries ``clientMessageId``,
``messageId`` (the ``SMSId``), ``statusId`` (``1`` unless ``script_delivery`` says otherwise),
``statusMessage``, ``senderName``, ``recipient``, ``accountId`` and ``submitDate``: names the
fake chose, since CEQUENS shows only their descriptions. It runs from a background task per
event loop with its own httpx client, retried a few times on a connection error or 5xx;
``reports`` records what was delivered.

Standalone: ``python -m tests.fakes.cequens --port N --api-token T [--user NAME:KEY]
[--credits 1000] [--delay-ms N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import secrets
import uuid
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import run_forever

_NUMBER = re.compile(r"^[1-9][0-9]{7,14}$")
_STATUS_TEXT = {"1": "Delivered", "2": "UnDelivered", "3": "Sent", "4": "Buffered",
                "5": "Blocked", "16": "SMSC Rejected", "17": "In Progress", "1200": "UNKNOWN"}
ACCOUNT_ID = 31337


@dataclass(frozen=True)
class RecordedSend:
    """One accepted send: the JSON CEQUENS received, the token it came with, the SMS ids."""

    token: str
    sms_ids: tuple[str, ...]
    recipients: tuple[str, ...]
    body: Mapping[str, Any]


@dataclass(frozen=True)
class DeliveredReport:
    """One push-DLR call: ``status`` is the receiver's last HTTP answer (``None`` when no
    attempt got one) after ``attempts`` tries."""

    url: str
    status: int | None
    attempts: int


@dataclass(frozen=True)
class CannedAnswer:
    status: int
    body: str | dict[str, Any] | list[Any]
    headers: Mapping[str, str] = field(default_factory=dict)


class FakeCequens:
    """CEQUENS for the given API tokens and sign-in pairs (``{user name: API key}``); ``app``
    is the ASGI app. ``credits`` is the balance in recipients; ``sender_names``, when given,
    are the only senders accepted; ``delay_ms`` delays every answer."""

    def __init__(
        self,
        api_tokens: Iterable[str] = (),
        *,
        users: Mapping[str, str] | None = None,
        credits: int = 1000,
        sender_names: Collection[str] | None = None,
        delay_ms: int = 0,
        dlr_attempts: int = 5,
        dlr_retry_seconds: float = 0.2,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.api_tokens = set(api_tokens)
        self.users = dict(users or {})
        self.credits = credits
        self.sender_names = frozenset(sender_names) if sender_names is not None else None
        self.delay_ms = delay_ms
        self.dlr_attempts = dlr_attempts
        self.dlr_retry_seconds = dlr_retry_seconds
        self.clock = clock
        self.sends: list[RecordedSend] = []
        self.requests: list[tuple[str, str]] = []
        self.issued: list[str] = []
        self.reports: list[DeliveredReport] = []
        self._canned: deque[CannedAnswer] = deque()
        self._outcomes: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._queue: asyncio.Queue[tuple[str, str, Mapping[str, Any]]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: asyncio.Task[None] | None = None
        self.app = Starlette(routes=[
            Route("/auth/v1/tokens/", self._sign_in, methods=["POST"]),
            Route("/auth/v1/tokens", self._sign_in, methods=["POST"]),
            Route("/sms/v1/messages", self._send, methods=["POST"]),
        ])

    # --- scripting ---

    def fail_next(self, count: int = 1, status: int = 500,
                  body: str | dict[str, Any] | None = None,
                  headers: Mapping[str, str] | None = None) -> None:
        """Answer the next ``count`` sends with ``status`` and ``body`` instead of taking
        them (by default an envelope with replyCode 500, "Internal Server Error")."""
        canned = CannedAnswer(status, body if body is not None
                              else _envelope(500, "Internal Server Error"), dict(headers or {}))
        self._canned.extend([canned] * count)

    def malformed_next(self, count: int = 1, body: str = "<html>Bad Gateway</html>") -> None:
        """Answer the next ``count`` sends 200 with ``body`` (by default not JSON)."""
        self._canned.extend([CannedAnswer(200, body)] * count)

    def script_delivery(self, recipient: str, status_id: str = "2") -> None:
        """Reports for ``recipient`` (international digits) carry ``status_id``."""
        self._outcomes[recipient] = status_id

    # --- endpoints ---

    async def _sign_in(self, request: Request) -> Response:
        self.requests.append(("POST", request.url.path))
        await self._pause()
        body = await _json(request)
        user = body.get("userName") if isinstance(body, dict) else None
        key = body.get("apiKey") if isinstance(body, dict) else None
        if not isinstance(user, str) or self.users.get(user) != key:
            return JSONResponse(_envelope(401, "Invalid user name or API key"), 401)
        token = f"eyJhbGciOiJIUzI1NiJ9.{secrets.token_urlsafe(24)}.{secrets.token_urlsafe(16)}"
        self.issued.append(token)
        return JSONResponse({**_envelope(0, "Request handled successfully"),
                             "data": {"access_token": token}})

    async def _send(self, request: Request) -> Response:
        self.requests.append(("POST", request.url.path))
        await self._pause()
        auth = request.headers.get("authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        if not token or (token not in self.api_tokens and token not in self.issued):
            return JSONResponse(_envelope(401, "Unauthorized: invalid or expired token"), 401)
        if self._canned:
            canned = self._canned.popleft()
            if isinstance(canned.body, str):
                return Response(canned.body, canned.status, dict(canned.headers))
            return JSONResponse(canned.body, canned.status, dict(canned.headers))
        body = await _json(request)
        if not isinstance(body, dict):
            return JSONResponse(_envelope(400, "Invalid JSON body"), 400)
        invalid = self._invalid(body)
        if invalid is not None:
            return JSONResponse(_envelope(*invalid), 400)
        numbers = [n.strip() for n in str(body.get("recipients", "")).split(",") if n.strip()]
        valid = [n for n in numbers if _NUMBER.match(n)]
        if not valid:
            return JSONResponse(_envelope(-6, "At least one valid recipient required"), 400)
        if len(valid) > self.credits:
            return JSONResponse(_envelope(-17, "Not Enough Credits"), 400)
        self.credits -= len(valid)
        ids = tuple(str(uuid.uuid4()) for _ in valid)
        self.sends.append(RecordedSend(token, ids, tuple(valid), body))
        dlr_url = body.get("dlrUrl")
        if isinstance(dlr_url, str) and dlr_url:
            for sms_id, number in zip(ids, valid, strict=True):
                self._enqueue(dlr_url, sms_id, {**body, "recipients": number})
        return JSONResponse({
            **_envelope(0, "Request handled successfully"),
            "data": {"SentSMSIDs": [{"SMSId": sms_id} for sms_id in ids],
                     "InvalidRecipients": ",".join(n for n in numbers if n not in valid)},
        })

    def _invalid(self, body: Mapping[str, Any]) -> tuple[int, str] | None:
        sender = body.get("senderName")
        if not isinstance(sender, str) or not sender or (
                self.sender_names is not None and sender not in self.sender_names):
            return -12, "Invalid Sender Name"
        if body.get("messageType") not in ("text", "unicode"):
            return -8, "Invalid Message Type, only [text] and [unicode] are supported"
        text = body.get("messageText")
        if not isinstance(text, str) or not text:
            return -9, "Empty Message Text"
        if body.get("flashing", 0) not in (0, 1):
            return -13, "Flashing should be 0 or 1"
        if body.get("acknowledgement", 0) not in (0, 1):
            return -14, "Acknowledgment should be 0 or 1"
        if not isinstance(body.get("recipients"), str):
            return -6, "At least one valid recipient required"
        return None

    async def _pause(self) -> None:
        if self.delay_ms > 0:
            await asyncio.sleep(self.delay_ms / 1000)

    # --- delivery reports ---

    def report_query(self, sms_id: str, body: Mapping[str, Any]) -> dict[str, str]:
        """The query parameters of the push DLR for one recipient of an accepted send."""
        recipient = str(body["recipients"])
        status_id = self._outcomes.get(recipient, "1")
        return {
            "clientMessageId": str(body.get("clientMessageId", 0)),
            "messageId": sms_id,
            "statusId": status_id,
            "statusMessage": _STATUS_TEXT.get(status_id, "UNKNOWN"),
            "senderName": str(body.get("senderName", "")),
            "recipient": recipient,
            "accountId": str(ACCOUNT_ID),
            "submitDate": self.clock().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
        }

    def _enqueue(self, url: str, sms_id: str, body: Mapping[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop:
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._deliver_reports(self._queue))
        self._queue.put_nowait((url, sms_id, body))

    async def _deliver_reports(
            self, queue: asyncio.Queue[tuple[str, str, Mapping[str, Any]]]) -> None:
        async with httpx.AsyncClient(timeout=10.0) as client:
            while True:
                url, sms_id, body = await queue.get()
                await self._report(client, _with_query(url, self.report_query(sms_id, body)))

    async def _report(self, client: httpx.AsyncClient, url: str) -> None:
        status: int | None = None
        attempt = 0
        for attempt in range(1, self.dlr_attempts + 1):
            try:
                response = await client.get(url)
            except httpx.TransportError:
                status = None
            else:
                status = response.status_code
                if status < 500:
                    break
            if attempt < self.dlr_attempts:
                await asyncio.sleep(self.dlr_retry_seconds * attempt)
        self.reports.append(DeliveredReport(url, status, attempt))


def _with_query(url: str, extra: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *extra.items()])
    return urlunsplit(parts._replace(query=query))


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


def _envelope(code: int, message: str) -> dict[str, Any]:
    return {"replyCode": code, "replyMessage": message, "requestId": str(uuid.uuid1()),
            "clientRequestId": 0,
            "requestTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
            "data": None}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake CEQUENS SMS API on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-token", action="append", default=[],
                        help="an accepted bearer API token (repeatable)")
    parser.add_argument("--user", action="append", default=[],
                        help="a sign-in pair NAME:API_KEY (repeatable)")
    parser.add_argument("--credits", type=int, default=1000, help="recipients it will take")
    parser.add_argument("--delay-ms", type=int, default=0, help="delay every answer")
    args = parser.parse_args(argv)
    users = dict(pair.split(":", 1) for pair in args.user)
    fake = FakeCequens(args.api_token, users=users, credits=args.credits,
                       delay_ms=args.delay_ms)
    run_forever(fake.app, args.port)


if __name__ == "__main__":
    main()
