"""A fake of Taqnyat's SMS REST API v1: sends, the balance, sender names and the system status.

Paths, auth and bodies are Taqnyat's (see ``tidings/providers/sms/taqnyat.py`` for the sources
and what is assumed)::

    POST /v1/messages          201 {"statusCode": 201, "messageId": 5452899970, "cost": 0.026,
                                    "currency": "SAR", "totalCount": 1, "msgLength": 1,
                                    "accepted": "[966500000000,]", "rejected": "[]"}
    GET  /account/balance      200 {"statusCode": 200, "accountStatus": "active",
                                    "accountExpiryDate": "...", "balance": "2044.000",
                                    "currency": "SAR"}
    GET  /v1/messages/senders  200 {"statusCode": 200, "senders": [{"senderName", "status",
                                    "destination"}]}
    GET  /system/status        200 {"statusCode": 200, "status": {"service": "none",
                                    "description": "All Services are Operational"}} (no auth)

Every call but the status needs ``Authorization: Bearer <token>`` with a known token, else 401
``{"statusCode": 401, "message": "invalid credentials information"}``. A send is checked in this
order, each failure a 400 ``{"statusCode": 400, "message": ...}`` (texts assumed): a body that
is not a JSON object, ``recipients`` missing or not a non-empty list, ``body`` missing or empty,
``sender`` not one of the account's active sender names. Recipients that are not international
numbers without ``+``/``00`` (8 to 15 digits) are listed in ``rejected``; when none is left the
answer is 400 "no valid recipients" [assumed]. Each accepted recipient costs ``PRICE_PER_SMS``
times the parts (``msgLength``: 160/153 GSM-7 characters, 70/67 otherwise); a balance below
the price answers 400 "Your balance is not enough" [assumed]. Message ids count up from
5452899970. Taqnyat documents no delivery reports, so the fake posts none.

Standalone: ``python -m tests.fakes.taqnyat --port N --token T [--token T2] [--sender S]
[--balance 2044.000] [--delay-ms N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import run_forever

PRICE_PER_SMS = Decimal("0.026")
FIRST_MESSAGE_ID = 5452899970
_RECIPIENT = re.compile(r"^[1-9][0-9]{7,14}$")
_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€\f")
_UNAUTHORIZED = {"statusCode": 401, "message": "invalid credentials information"}


@dataclass(frozen=True)
class RecordedSend:
    """One accepted ``POST /v1/messages``, as parsed, and the id it answered."""

    message_id: int
    token: str
    sender: str
    body: str
    accepted: tuple[str, ...]
    rejected: tuple[str, ...]
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class CannedAnswer:
    status: int
    body: str | dict[str, Any] | list[Any]
    headers: Mapping[str, str] = field(default_factory=dict)


class FakeTaqnyat:
    """Taqnyat for the given bearer tokens and active sender names; ``app`` is the ASGI app.

    ``balance`` (a decimal string, SAR) pays for accepted sends. ``delay_ms`` delays every
    answer.
    """

    def __init__(
        self,
        tokens: Iterable[str],
        *,
        senders: Iterable[str] = ("ACME",),
        balance: str = "2044.000",
        delay_ms: int = 0,
    ) -> None:
        self.tokens = frozenset(tokens)
        self.senders = tuple(senders)
        self.balance = Decimal(balance)
        self.delay_ms = delay_ms
        self.sends: list[RecordedSend] = []
        self.requests: list[tuple[str, str]] = []
        self._canned: deque[CannedAnswer] = deque()
        self._next_id = FIRST_MESSAGE_ID
        self.app = Starlette(routes=[
            Route("/v1/messages", self._messages, methods=["POST"]),
            Route("/account/balance", self._balance, methods=["GET"]),
            Route("/v1/messages/senders", self._senders, methods=["GET"]),
            Route("/system/status", self._status, methods=["GET"]),
        ])

    # --- scripting ---

    def fail_next(self, count: int = 1, status: int = 500,
                  body: str | dict[str, Any] | None = None,
                  headers: Mapping[str, str] | None = None) -> None:
        """Answer the next ``count`` sends with ``status`` and ``body`` (by default an HTML
        error page, as a proxy in front of Taqnyat would) instead of taking them."""
        canned = CannedAnswer(status, body if body is not None else "<html>Server Error</html>",
                              dict(headers or {}))
        self._canned.extend([canned] * count)

    def reject_next(self, count: int = 1, status_code: int = 400,
                    message: str = "Sender Name is not active") -> None:
        """Answer the next ``count`` sends with a Taqnyat error body at that HTTP status."""
        self.fail_next(count, status_code, {"statusCode": status_code, "message": message})

    def malformed_next(self, count: int = 1, body: str = '{"statusCode": 201}') -> None:
        """Answer the next ``count`` sends 201 with ``body`` (by default without a
        messageId)."""
        self._canned.extend([CannedAnswer(201, body)] * count)

    # --- endpoints ---

    async def _messages(self, request: Request) -> Response:
        self.requests.append((request.method, request.url.path))
        await self._pause()
        token = _bearer(request)
        if token not in self.tokens:
            return JSONResponse(_UNAUTHORIZED, 401)
        if self._canned:
            canned = self._canned.popleft()
            if isinstance(canned.body, str):
                return Response(canned.body, canned.status, dict(canned.headers))
            return JSONResponse(canned.body, canned.status, dict(canned.headers))
        try:
            fields = json.loads(await request.body())
        except ValueError:
            fields = None
        if not isinstance(fields, dict):
            return _bad_request("the request body must be a JSON object")
        recipients = fields.get("recipients")
        if not isinstance(recipients, list) or not recipients:
            return _bad_request("recipients is required")
        text = fields.get("body")
        if not isinstance(text, str) or not text:
            return _bad_request("body is required")
        sender = fields.get("sender")
        if sender not in self.senders:
            return _bad_request("Sender Name is not active")
        accepted = tuple(str(r) for r in recipients if isinstance(r, str) and _RECIPIENT.match(r))
        rejected = tuple(str(r) for r in recipients if str(r) not in accepted)
        if not accepted:
            return _bad_request("no valid recipients")
        parts = _parts(text)
        cost = PRICE_PER_SMS * parts * len(accepted)
        if self.balance < cost:
            return _bad_request("Your balance is not enough")
        self.balance -= cost
        sent = RecordedSend(message_id=self._next_id, token=token, sender=str(sender), body=text,
                            accepted=accepted, rejected=rejected, fields=fields)
        self._next_id += 1
        self.sends.append(sent)
        return JSONResponse({
            "statusCode": 201, "messageId": sent.message_id, "cost": float(cost),
            "currency": "SAR", "totalCount": len(accepted), "msgLength": parts,
            "accepted": _listing(accepted), "rejected": _listing(rejected),
        }, 201)

    async def _balance(self, request: Request) -> Response:
        self.requests.append((request.method, request.url.path))
        await self._pause()
        if _bearer(request) not in self.tokens:
            return JSONResponse(_UNAUTHORIZED, 401)
        return JSONResponse({"statusCode": 200, "accountStatus": "active",
                             "accountExpiryDate": "31-12-2030",
                             "balance": f"{self.balance:.3f}", "currency": "SAR"})

    async def _senders(self, request: Request) -> Response:
        self.requests.append((request.method, request.url.path))
        await self._pause()
        if _bearer(request) not in self.tokens:
            return JSONResponse(_UNAUTHORIZED, 401)
        return JSONResponse({"statusCode": 200, "senders": [
            {"senderName": name, "status": "active", "destination": "local"}
            for name in self.senders]})

    async def _status(self, request: Request) -> Response:
        self.requests.append((request.method, request.url.path))
        return JSONResponse({"statusCode": 200, "status": {
            "service": "none", "description": "All Services are Operational"}})

    async def _pause(self) -> None:
        if self.delay_ms > 0:
            await asyncio.sleep(self.delay_ms / 1000)


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _bad_request(message: str) -> Response:
    return JSONResponse({"statusCode": 400, "message": message}, 400)


def _listing(numbers: Sequence[str]) -> str:
    """Taqnyat's list-as-a-string: ``"[966500000000,]"`` for one number (trailing comma, as
    recorded), ``"[a,b]"`` for several, ``"[]"`` for none."""
    if len(numbers) == 1:
        return f"[{numbers[0]},]"
    return "[" + ",".join(numbers) + "]"


def _parts(text: str) -> int:
    if all(char in _GSM7 for char in text):
        single, multi = 160, 153
    else:
        single, multi = 70, 67
    length = len(text)
    return 1 if length <= single else -(-length // multi)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Taqnyat SMS API on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", action="append", required=True,
                        help="an accepted bearer token (repeatable)")
    parser.add_argument("--sender", action="append", default=None,
                        help="an active sender name (repeatable; default ACME)")
    parser.add_argument("--balance", default="2044.000", help="the starting balance (SAR)")
    parser.add_argument("--delay-ms", type=int, default=0, help="delay every answer")
    args = parser.parse_args(argv)
    try:
        Decimal(args.balance)
    except InvalidOperation:
        parser.error("--balance must be a decimal number")
    fake = FakeTaqnyat(args.token, senders=args.sender or ("ACME",), balance=args.balance,
                       delay_ms=args.delay_ms)
    run_forever(fake.app, args.port)


if __name__ == "__main__":
    main()
