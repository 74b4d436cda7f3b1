"""A fake of 4jawaly's SMS API v1: send, the packages balance and the sender names, with
delivery reports in the shape third-party code records.

Paths, auth and bodies are 4jawaly's (see ``tidings/providers/sms/fourjawaly.py`` for the
sources and what is assumed)::

    POST /api/v1/account/area/sms/send     {"job_id", "messages": [{"inserted_numbers",
                                            "message": {...}, "no_package", "has_more_iso_code"
                                            [, "error_numbers"]}], "code": 200, "message"}
    GET  /api/v1/account/area/me/packages  {"code": 200, "message", "total_balance", "items"}
    GET  /api/v1/account/area/senders      {"code": 200, "message", "items": {"current_page",
                                            "data": [{"id", "sender_name", ...}], "last_page",
                                            "per_page", "total"}}

Every call needs ``Authorization: Basic base64(app_key:app_secret)`` of a known pair, else 401
``{"message": "Unauthenticated."}`` (assumed). A send is checked in this order: no message list
or an empty ``text`` is 422 ``{"messages": [{"text": ["حقل messages.0.text مطلوب."]}]}``; a
sender that is not one of ``senders`` is 400 ``{"code": 400, "message": "اسم المرسل غير موجود
او لا تملك صلاحية", "not_senders": [...]}``; numbers that are not 8 to 15 digits go to
``error_numbers``; when the points (one per number) run out the rest go to ``no_package``. Ids
are UUID job ids and increasing message ids.

With ``dlr_url`` (or a message's own ``webhook``), each accepted message is reported there as
JSON ``{"sms_message": {...}, "numbers": [{"msg_id", "number", "country_iso", "status",
"error_code_string"}]}`` (status 3 unless ``script_delivery`` says otherwise), from a task per
event loop with its own client, retried a few times on a connection error or 5xx. ``reports``
records what was delivered.

Standalone: ``python -m tests.fakes.fourjawaly --port N --app-key K --app-secret S
[--sender ACME] [--dlr-url U] [--points 100000] [--delay-ms N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import re
import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import run_forever

_NUMBER = re.compile(r"^[0-9]{8,15}$")
_EMPTY_TEXT = "حقل messages.{index}.text مطلوب."
_BAD_SENDER = "اسم المرسل غير موجود او لا تملك صلاحية"
_DONE = "تمت العملية بنجاح"


@dataclass(frozen=True)
class RecordedSend:
    """One message object of an accepted send: its job id, 4jawaly message id and fields."""

    job_id: str
    message_id: int
    app_key: str
    sender: str
    text: str
    numbers: tuple[str, ...]
    webhook: str | None


@dataclass(frozen=True)
class DeliveredReport:
    """One report post: ``status`` is the receiver's last HTTP answer (``None`` when no attempt
    got one) after ``attempts`` tries."""

    url: str
    body: Mapping[str, Any]
    status: int | None
    attempts: int


@dataclass(frozen=True)
class CannedAnswer:
    status: int
    body: str | dict[str, Any] | list[Any]
    headers: Mapping[str, str] = field(default_factory=dict)


class FakeFourJawaly:
    """4jawaly for the given ``(app_key, app_secret)`` pairs; ``app`` is the ASGI app.

    ``senders`` are the approved sender names (status 1, listed in this order). ``points`` is
    the SMS balance, one point per accepted number. ``delay_ms`` delays every answer.
    """

    def __init__(
        self,
        credentials: Iterable[tuple[str, str]],
        *,
        senders: Sequence[str] = ("ACME",),
        points: int = 100_000,
        dlr_url: str | None = None,
        delay_ms: int = 0,
        dlr_attempts: int = 5,
        dlr_retry_seconds: float = 0.2,
    ) -> None:
        self.tokens = {
            base64.b64encode(f"{key}:{secret}".encode()).decode("ascii"): key
            for key, secret in credentials
        }
        self.senders = list(senders)
        self.points = points
        self.dlr_url = dlr_url
        self.delay_ms = delay_ms
        self.dlr_attempts = dlr_attempts
        self.dlr_retry_seconds = dlr_retry_seconds
        self.sends: list[RecordedSend] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.reports: list[DeliveredReport] = []
        self._canned: deque[CannedAnswer] = deque()
        self._outcomes: dict[str, tuple[int, str | None]] = {}
        self._next_id = 59041643
        self._queue: asyncio.Queue[RecordedSend] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.app = Starlette(routes=[
            Route("/api/v1/account/area/sms/send", self._send, methods=["POST"]),
            Route("/api/v1/account/area/me/packages", self._packages, methods=["GET"]),
            Route("/api/v1/account/area/senders", self._senders, methods=["GET"]),
        ])

    # --- scripting ---

    def fail_next(self, count: int = 1, status: int = 500,
                  body: str | dict[str, Any] | None = None,
                  headers: Mapping[str, str] | None = None) -> None:
        """Answer the next ``count`` sends with ``status`` and ``body`` (by default an HTML
        page, as Cloudflare in front of 4jawaly would) instead of taking them."""
        canned = CannedAnswer(status, body if body is not None else "<html>Error</html>",
                              dict(headers or {}))
        self._canned.extend([canned] * count)

    def script_delivery(self, number: str, status: int = 4,
                        error: str | None = "UNDELIV") -> None:
        """Reports for ``number`` (digits) say ``status`` with ``error_code_string``."""
        self._outcomes[number] = (status, error)

    # --- endpoints ---

    async def _send(self, request: Request) -> Response:
        key = await self._enter(request)
        if key is None:
            return _unauthenticated()
        if self._canned:
            canned = self._canned.popleft()
            if isinstance(canned.body, str):
                return Response(canned.body, canned.status, dict(canned.headers))
            return JSONResponse(canned.body, canned.status, dict(canned.headers))
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages:
            return JSONResponse({"messages": [{"text": [_EMPTY_TEXT.format(index=0)]}]}, 422)
        for index, entry in enumerate(messages):
            if not isinstance(entry, dict) or not str(entry.get("text") or "").strip():
                return JSONResponse({"messages": [{"text": [_EMPTY_TEXT.format(index=index)]}]},
                                    422)
        refused = sorted({str(entry.get("sender")) for entry in messages
                          if entry.get("sender") not in self.senders})
        if refused:
            return JSONResponse({"code": 400, "message": _BAD_SENDER, "not_senders": refused},
                                400)
        job_id = str(uuid.uuid1())
        answers = [self._take(key, job_id, entry) for entry in messages]
        return JSONResponse({"job_id": job_id, "messages": answers, "code": 200,
                             "message": _DONE})

    def _take(self, key: str, job_id: str, entry: Mapping[str, Any]) -> dict[str, Any]:
        numbers = entry.get("numbers")
        numbers = [str(n) for n in numbers] if isinstance(numbers, list) else []
        errors = [{"number": n, "country": None, "error": "رقم غير صحيح"}
                  for n in numbers if not _NUMBER.match(n)]
        valid = [n for n in numbers if _NUMBER.match(n)]
        inserted, no_package = valid[:max(self.points, 0)], valid[max(self.points, 0):]
        self.points -= len(inserted)
        text = str(entry["text"])
        webhook = entry.get("webhook") if isinstance(entry.get("webhook"), str) else None
        self._next_id += 1
        record = {
            "account_id": 16448, "approve_status": 3, "job_id": job_id, "webhook": webhook,
            "text": text, "is_encrypted": 1, "sender_id": 217302,
            "sender_name": entry["sender"], "encoding": _encoding(text), "length": len(text),
            "per_message": 160 if _encoding(text) == "GSM_7BIT" else 70, "messages": 1,
            "send_at": None, "send_at_zone": None, "send_at_system": None,
            "updated_at": "2026-11-24T12:00:00.000000Z",
            "created_at": "2026-11-24T12:00:00.000000Z", "id": self._next_id,
        }
        answer: dict[str, Any] = {"inserted_numbers": len(inserted), "message": record,
                                  "no_package": no_package, "has_more_iso_code": []}
        if errors:
            answer["error_numbers"] = errors
        if inserted:
            sent = RecordedSend(job_id, self._next_id, key, str(entry["sender"]), text,
                                tuple(inserted), webhook)
            self.sends.append(sent)
            if webhook or self.dlr_url:
                self._enqueue(sent)
        return answer

    async def _packages(self, request: Request) -> Response:
        if await self._enter(request) is None:
            return _unauthenticated()
        return JSONResponse({"code": 200, "message": "تم", "total_balance": self.points,
                             "items": [{"id": 11111, "package_points": 100_000,
                                        "current_points": self.points, "is_active": 1,
                                        "expire_at": "2027-01-29T21:00:00.000000Z"}]})

    async def _senders(self, request: Request) -> Response:
        if await self._enter(request) is None:
            return _unauthenticated()
        try:
            size = max(1, int(request.query_params.get("page_size", "10")))
            page = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            return JSONResponse({"code": 422, "message": "page and page_size are numbers"}, 422)
        status = request.query_params.get("status", "")
        names = self.senders if status in ("", "1") else []
        chunk = names[(page - 1) * size:page * size]
        last = max(1, -(-len(names) // size))
        data = [{"id": 1000 + index, "sender_name": name, "status": 1, "is_default": 0,
                 "note": None, "created_at": "2024-01-31T10:53:51.000000Z",
                 "updated_at": "2024-01-31T10:53:51.000000Z"}
                for index, name in enumerate(chunk, start=(page - 1) * size)]
        return JSONResponse({"code": 200, "message": "تم", "items": {
            "current_page": page, "data": data, "last_page": last, "per_page": size,
            "total": len(names)}})

    async def _enter(self, request: Request) -> str | None:
        """Record the request, wait ``delay_ms`` and answer the app key of its Basic token."""
        self.requests.append((request.method, request.url.path,
                              dict(request.query_params)))
        if self.delay_ms > 0:
            await asyncio.sleep(self.delay_ms / 1000)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError):
            return None
        return self.tokens.get(token.strip())

    # --- delivery reports ---

    def report_body(self, sent: RecordedSend) -> dict[str, Any]:
        """The JSON the fake posts for ``sent``."""
        numbers = []
        for number in sent.numbers:
            status, error = self._outcomes.get(number, (3, None))
            numbers.append({"msg_id": sent.job_id, "number": number,
                            "country_iso": "SA" if number.startswith("966") else None,
                            "status": status, "error_code_string": error})
        return {"sms_message": {"id": sent.message_id, "job_id": sent.job_id, "text": sent.text,
                                "encoding": _encoding(sent.text), "length": len(sent.text),
                                "sender_name": sent.sender, "messages": 1, "send_at": None,
                                "created_at": "2026-11-24T12:00:00.000000Z",
                                "updated_at": "2026-11-24T12:00:04.000000Z"},
                "numbers": numbers}

    def _enqueue(self, sent: RecordedSend) -> None:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop:
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._deliver_reports(self._queue))
        self._queue.put_nowait(sent)

    async def _deliver_reports(self, queue: asyncio.Queue[RecordedSend]) -> None:
        async with httpx.AsyncClient(timeout=10.0) as client:
            while True:
                sent = await queue.get()
                task = asyncio.create_task(self._report(client, sent))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _report(self, client: httpx.AsyncClient, sent: RecordedSend) -> None:
        url = sent.webhook or self.dlr_url
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


def _encoding(text: str) -> str:
    return "GSM_7BIT" if all(ord(char) < 128 for char in text) else "UCS2"


def _unauthenticated() -> Response:
    return JSONResponse({"message": "Unauthenticated."}, 401)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake 4jawaly SMS API on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--app-key", required=True, help="the accepted API key")
    parser.add_argument("--app-secret", required=True, help="the accepted API secret")
    parser.add_argument("--sender", action="append", default=None,
                        help="an approved sender name (repeatable; default ACME)")
    parser.add_argument("--dlr-url", default=None,
                        help="post delivery reports here (the gateway's URL with ?token=)")
    parser.add_argument("--points", type=int, default=100_000, help="the starting SMS points")
    parser.add_argument("--delay-ms", type=int, default=0, help="delay every answer")
    args = parser.parse_args(argv)
    fake = FakeFourJawaly([(args.app_key, args.app_secret)], senders=args.sender or ["ACME"],
                          points=args.points, dlr_url=args.dlr_url, delay_ms=args.delay_ms)
    run_forever(fake.app, args.port)


if __name__ == "__main__":
    main()
