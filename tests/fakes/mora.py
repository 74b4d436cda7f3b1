"""A fake of Mora SMS's HTTP API v1: ``sendsms`` and ``balance``.

Paths, parameters, result codes and the answer envelope are Mora's (see
``tidings/providers/sms/mora.py`` for the sources and what is assumed)::

    GET|POST /api/v1/sendsms   {"status": {"code": 200, "message": "OK"},
                                "data": {"code": 100, "message": "Numbers received
                                         successfully", "ref_id": 7000001,
                                         "timestamp": "2026-11-24T12:00:00Z"}}
    GET|POST /api/v1/balance   {"status": {"code": 200, "message": "OK"},
                                "data": {"balance": 1500}}

Parameters are read from the query string and from a form or JSON body (Mora takes GET and
POST; third-party clients send all three). ``return=text`` (or ``response=text``) answers the
bare result code instead of JSON. An unknown ``api_key``/``username`` pair answers HTTP 401
``{"status": {"code": 401, "message": "Invalid api_key or username"}, "data": null}``: no
source shows Mora's answer to bad credentials, so this shape is the fake's own [U]. Sends are
then checked in this order, each failure a 200 envelope with Mora's result code and text: 117
empty message, 118 empty sender, 119 no numbers, 106 a sender name not registered on the
account (``senders``), 107 a blocked sender name (``blocked_senders``), 108 no valid number
(``9665xxxxxxxx`` and other international numbers of 8 to 15 digits are valid), 112 a
prohibited word (``prohibited_words``), 105 a balance below one point per valid number. The
status block's ``"OK"`` text is assumed [U]. ``ref_id`` counts up from 7000001.

Mora documents no delivery reports, so the fake sends none.

Standalone: ``python -m tests.fakes.mora --port N --api-key K --username U [--sender S ...]
[--balance 100000] [--delay-ms N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.server import run_forever

TEXTS = {
    100: "Numbers received successfully", 105: "Insufficient balance",
    106: "Sender name not available", 107: "Sender name is blocked",
    108: "No valid numbers for sending", 112: "Message contains prohibited words",
    114: "Account is suspended", 115: "Mobile number not activated",
    116: "Email not activated", 117: "Empty message cannot be sent",
    118: "Sender name is empty", 119: "No recipient number provided",
}
_NUMBER = re.compile(r"^[1-9][0-9]{7,14}$")
TIMESTAMP = "2026-11-24T12:00:00Z"


@dataclass(frozen=True)
class RecordedSend:
    """One accepted ``sendsms`` request, as parsed, and the ``ref_id`` it answered."""

    ref_id: int
    username: str
    sender: str
    message: str
    numbers: tuple[str, ...]
    fields: Mapping[str, str]


@dataclass(frozen=True)
class CannedAnswer:
    status: int
    body: str | dict[str, Any] | list[Any]
    headers: Mapping[str, str] = field(default_factory=dict)


class FakeMora:
    """Mora for the given ``(api_key, username)`` accounts; ``app`` is the ASGI app.

    ``senders`` are the sender names registered on every account (any name when ``None``);
    ``blocked_senders`` are refused with 107. ``balance`` is in points, one per valid number of
    an accepted send. ``delay_ms`` delays every answer.
    """

    def __init__(
        self,
        accounts: Iterable[tuple[str, str]],
        *,
        senders: Iterable[str] | None = None,
        blocked_senders: Iterable[str] = (),
        prohibited_words: Iterable[str] = (),
        balance: int = 100_000,
        delay_ms: int = 0,
    ) -> None:
        self.accounts = frozenset(accounts)
        self.senders = frozenset(senders) if senders is not None else None
        self.blocked_senders = frozenset(blocked_senders)
        self.prohibited_words = tuple(prohibited_words)
        self.balance = balance
        self.delay_ms = delay_ms
        self.sends: list[RecordedSend] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._canned: deque[CannedAnswer] = deque()
        self._ref_ids = itertools.count(7_000_001)
        self.app = Starlette(routes=[
            Route("/api/v1/sendsms", self._send, methods=["GET", "POST"]),
            Route("/api/v1/balance", self._balance, methods=["GET", "POST"]),
        ])

    # --- scripting ---

    def fail_next(self, count: int = 1, status: int = 500,
                  body: str | dict[str, Any] | None = None,
                  headers: Mapping[str, str] | None = None) -> None:
        """Answer the next ``count`` sends with ``status`` and ``body`` (by default an HTML
        error page, as a proxy in front of Mora would) instead of taking them."""
        canned = CannedAnswer(status, body if body is not None else "<html>Server Error</html>",
                              dict(headers or {}))
        self._canned.extend([canned] * count)

    def reject_next(self, count: int = 1, code: int = 114) -> None:
        """Answer the next ``count`` sends with Mora's result ``code`` (a 200 envelope)."""
        self.fail_next(count, 200, envelope(code))

    # --- endpoints ---

    async def _send(self, request: Request) -> Response:
        fields = await _fields(request)
        self.requests.append((request.method, request.url.path, fields))
        await self._pause()
        if (fields.get("api_key", ""), fields.get("username", "")) not in self.accounts:
            return _unauthorized()
        if self._canned:
            canned = self._canned.popleft()
            if isinstance(canned.body, str):
                return Response(canned.body, canned.status, dict(canned.headers))
            return JSONResponse(canned.body, canned.status, dict(canned.headers))
        text_format = "text" in (fields.get("return", ""), fields.get("response", ""))
        numbers = tuple(n.strip().lstrip("+") for n in fields.get("numbers", "").split(",")
                        if n.strip())
        code = self._refusal(fields, numbers)
        if code is not None:
            return _answer(code, text_format)
        valid = tuple(number for number in numbers if _NUMBER.match(number))
        if self.balance < len(valid):
            return _answer(105, text_format)
        self.balance -= len(valid)
        sent = RecordedSend(ref_id=next(self._ref_ids), username=fields["username"],
                            sender=fields["sender"], message=fields["message"], numbers=valid,
                            fields=fields)
        self.sends.append(sent)
        return _answer(100, text_format, ref_id=sent.ref_id)

    def _refusal(self, fields: Mapping[str, str], numbers: Sequence[str]) -> int | None:
        message = fields.get("message", "")
        sender = fields.get("sender", "")
        if not message.strip():
            return 117
        if not sender.strip():
            return 118
        if not numbers:
            return 119
        if self.senders is not None and sender not in self.senders:
            return 106
        if sender in self.blocked_senders:
            return 107
        if not any(_NUMBER.match(number) for number in numbers):
            return 108
        if any(word.lower() in message.lower() for word in self.prohibited_words):
            return 112
        return None

    async def _balance(self, request: Request) -> Response:
        fields = await _fields(request)
        self.requests.append((request.method, request.url.path, fields))
        await self._pause()
        if (fields.get("api_key", ""), fields.get("username", "")) not in self.accounts:
            return _unauthorized()
        return JSONResponse({"status": {"code": 200, "message": "OK"},
                             "data": {"balance": self.balance}})

    async def _pause(self) -> None:
        if self.delay_ms > 0:
            await asyncio.sleep(self.delay_ms / 1000)


def envelope(code: int, ref_id: int | None = None) -> dict[str, Any]:
    """Mora's JSON answer for result ``code`` (with ``ref_id`` and a timestamp on success)."""
    data: dict[str, Any] = {"code": code, "message": TEXTS.get(code, "Error")}
    if ref_id is not None:
        data.update(ref_id=ref_id, timestamp=TIMESTAMP)
    return {"status": {"code": 200, "message": "OK"}, "data": data}


def _answer(code: int, text_format: bool, ref_id: int | None = None) -> Response:
    if text_format:
        return PlainTextResponse(str(code))
    return JSONResponse(envelope(code, ref_id))


def _unauthorized() -> Response:
    return JSONResponse({"status": {"code": 401, "message": "Invalid api_key or username"},
                         "data": None}, 401)


async def _fields(request: Request) -> dict[str, str]:
    """The query parameters, overlaid with a form or JSON body's fields."""
    fields = dict(request.query_params)
    raw = await request.body()
    if not raw:
        return fields
    if "json" in request.headers.get("content-type", ""):
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            fields.update({str(k): v if isinstance(v, str) else json.dumps(v)
                           for k, v in parsed.items()})
    else:
        fields.update(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))
    return fields


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Mora SMS API on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", required=True, help="the accepted API key")
    parser.add_argument("--username", required=True, help="the accepted username")
    parser.add_argument("--sender", action="append", default=None,
                        help="a registered sender name (repeatable; any name when omitted)")
    parser.add_argument("--balance", type=int, default=100_000, help="the balance in points")
    parser.add_argument("--delay-ms", type=int, default=0, help="delay every answer")
    args = parser.parse_args(argv)
    fake = FakeMora([(args.api_key, args.username)], senders=args.sender,
                    balance=args.balance, delay_ms=args.delay_ms)
    run_forever(fake.app, args.port)


if __name__ == "__main__":
    main()
