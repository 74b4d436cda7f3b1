"""A fake Msegat gateway (``/gw/sendsms.php``, ``/gw/Credits.php``, ``/gw/senders.php``) that
speaks the wire format ``tidings.providers.sms.msegat`` documents: credentials in every body,
``{"code", "message"}`` answers at HTTP 200 with Msegat's codes, the bulk id after ``M0000-``
when ``reqBulkId`` is true, the balance as plain text.

Msegat pushes no delivery reports, so neither does the fake. Run it with
``python -m tests.fakes.msegat --port N --user-name U --api-key K [--sender S ...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import random
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.server import run_forever

PRICE_PER_PART = Decimal("1")
_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€")
MAX_PARTS = 10
"""Longer texts answer ``1140`` (MSG length is too long)."""


@dataclass(frozen=True)
class RecordedSend:
    """One accepted send: the fields Msegat received and the bulk id it gave it."""

    bulk_id: str
    numbers: tuple[str, ...]
    sender: str
    text: str
    parts: int
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class CannedAnswer:
    status: int
    body: str | dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


class FakeMsegat:
    """Msegat for one account; ``app`` is the ASGI app.

    ``senders`` maps each sender name to its state (``"Activated"``, ``"Pending"``, ...): only
    activated ones may send. ``balance`` is the credit (points, one per message part).
    ``reject_duplicates`` answers ``1061`` to the same text to the same number again.
    """

    def __init__(
        self,
        user_name: str,
        api_key: str,
        *,
        senders: Mapping[str, str] | Collection[str] = ("ACME",),
        balance: str = "1000.00",
        reject_duplicates: bool = False,
        delay_ms: int = 0,
    ) -> None:
        self.user_name = user_name
        self.api_key = api_key
        self.senders = (dict(senders) if isinstance(senders, Mapping)
                        else dict.fromkeys(senders, "Activated"))
        self.balance = Decimal(balance)
        self.reject_duplicates = reject_duplicates
        self.delay_ms = delay_ms
        self.sends: list[RecordedSend] = []
        self.requests: list[tuple[str, str]] = []
        self._canned: deque[CannedAnswer] = deque()
        self._seen: set[tuple[str, str]] = set()
        self._ids = itertools.count(100_000 + random.randrange(10**6))
        self.app = Starlette(routes=[
            Route("/gw/sendsms.php", self._send, methods=["GET", "POST"]),
            Route("/gw/Credits.php", self._credits, methods=["GET", "POST"]),
            Route("/gw/senders.php", self._senders, methods=["GET", "POST"]),
        ])

    # --- scripting ---

    def fail_next(self, count: int = 1, status: int = 500,
                  body: str | dict[str, Any] = "Internal Server Error",
                  headers: Mapping[str, str] | None = None) -> None:
        """Answer the next ``count`` requests (after the login check) with ``status`` and
        ``body`` instead of handling them."""
        self._canned.extend([CannedAnswer(status, body, dict(headers or {}))] * count)

    # --- endpoints ---

    async def _send(self, request: Request) -> Response:
        fields, refused = await self._open(request)
        if refused is not None:
            return refused
        if request.method != "POST":
            return _answer("M0034")
        missing = [name for name in ("numbers", "userSender", "msg") if name not in fields]
        if missing:
            return _answer("M0001")
        text = str(fields["msg"])
        if not text.strip():
            return _answer("1050")
        sender = str(fields["userSender"])
        if self.senders.get(sender, "").lower() != "activated":
            return _answer("1110")
        numbers = tuple(number.strip() for number in str(fields["numbers"]).split(","))
        if not numbers or not all(n.isascii() and n.isdigit() and 9 <= len(n) <= 15
                                  for n in numbers):
            return _answer("1120")
        if _flag(fields.get("reqFilter"), default=True):
            numbers = tuple(dict.fromkeys(numbers))
        parts = _parts(text)
        if parts > MAX_PARTS:
            return _answer("1140")
        cost = PRICE_PER_PART * parts * len(numbers)
        if self.balance < cost:
            return _answer("1060")
        keys = {(number, text) for number in numbers}
        if self.reject_duplicates and keys & self._seen:
            return _answer("1061")
        self._seen |= keys
        self.balance -= cost
        sent = RecordedSend(bulk_id=str(next(self._ids)), numbers=numbers, sender=sender,
                            text=text, parts=parts, fields=fields)
        self.sends.append(sent)
        code = f"M0000-{sent.bulk_id}" if _flag(fields.get("reqBulkId")) else "M0000"
        return JSONResponse({"code": code, "message": "Success"})

    async def _credits(self, request: Request) -> Response:
        fields, refused = await self._open(request, text_errors=True)
        if refused is not None:
            return refused
        return PlainTextResponse(f"{self.balance:.2f}")

    async def _senders(self, request: Request) -> Response:
        fields, refused = await self._open(request)
        if refused is not None:
            return refused
        if not self.senders:
            return _answer("M0036")
        return JSONResponse({
            "code": "M0000", "message": "Success",
            "data": [{"sender": name, "status": state} for name, state in self.senders.items()],
        })

    async def _open(self, request: Request, *, text_errors: bool = False
                    ) -> tuple[dict[str, Any], Response | None]:
        """Record the request, read its fields (JSON, form or query) and check the login;
        the second value is the answer to give instead when there is one."""
        self.requests.append((request.method, request.url.path))
        if self.delay_ms > 0:
            await asyncio.sleep(self.delay_ms / 1000)
        fields: dict[str, Any] = dict(request.query_params)
        raw = await request.body()
        if raw:
            text = raw.decode("utf-8", errors="replace")
            if "json" in request.headers.get("content-type", ""):
                try:
                    body = json.loads(text)
                except ValueError:
                    body = None
                if not isinstance(body, dict):
                    return fields, _answer("M0001", text_errors)
                fields.update(body)
            else:
                fields.update(parse_qsl(text, keep_blank_values=True))
        if "userName" not in fields or "apiKey" not in fields:
            return fields, _answer("M0001", text_errors)
        if fields["userName"] != self.user_name or fields["apiKey"] != self.api_key:
            return fields, _answer("M0002", text_errors)
        if self._canned:
            canned = self._canned.popleft()
            if isinstance(canned.body, str):
                return fields, Response(canned.body, canned.status, dict(canned.headers))
            return fields, JSONResponse(canned.body, canned.status, dict(canned.headers))
        return fields, None


_TEXTS = {
    "M0001": "Variables missing",
    "M0002": "Invalid login info",
    "M0034": "Please Use POST Method",
    "M0036": "There is no any sender",
    "1050": "MSG body is empty",
    "1060": "Balance is not enough",
    "1061": "MSG duplicated",
    "1110": "Sender name is missing or incorrect",
    "1120": "Mobile numbers is not correct",
    "1140": "MSG length is too long",
}


def _answer(code: str, as_text: bool = False) -> Response:
    """Msegat's error answer: HTTP 200, the envelope (or, for ``Credits.php``, the bare code)."""
    if as_text:
        return PlainTextResponse(code)
    return JSONResponse({"code": code, "message": _TEXTS[code]})


def _flag(value: object, *, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1")


def _parts(text: str) -> int:
    """Message parts: 160/153 characters for GSM-7 text, 70/67 otherwise."""
    single, part = (160, 153) if all(char in _GSM7 for char in text) else (70, 67)
    return 1 if len(text) <= single else math.ceil(len(text) / part)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Msegat gateway on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user-name", required=True, help="the accepted userName")
    parser.add_argument("--api-key", required=True, help="the accepted apiKey")
    parser.add_argument("--sender", action="append", default=None,
                        help="an activated sender name (repeatable; default: ACME)")
    parser.add_argument("--balance", default="1000.00", help="the starting credit")
    parser.add_argument("--delay-ms", type=int, default=0, help="delay every answer")
    args = parser.parse_args(argv)
    try:
        Decimal(args.balance)
    except InvalidOperation:
        parser.error("--balance must be a decimal number")
    fake = FakeMsegat(args.user_name, args.api_key, senders=args.sender or ("ACME",),
                      balance=args.balance, delay_ms=args.delay_ms)
    run_forever(fake.app, args.port)


if __name__ == "__main__":
    main()
