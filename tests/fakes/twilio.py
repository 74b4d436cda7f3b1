"""A wire-accurate fake of Twilio's Messages API (REST 2010-04-01), with signed status callbacks.

Paths, auth and bodies are Twilio's (see ``tidings/providers/sms/twilio.py`` for the sources)::

    POST /2010-04-01/Accounts/{AccountSid}/Messages.json              201 Message resource
    GET  /2010-04-01/Accounts/{AccountSid}/Messages.json              200 one page of messages
    GET  /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json        200 Message resource
    GET  /2010-04-01/Accounts/{AccountSid}/Balance.json               200 balance
    GET  /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json  200 one page of numbers

HTTP Basic with a known SID and its token, matching the SID in the path, else 401 with code
20003. A create is checked as Twilio checks it: a missing ``To`` is 21604, a ``To`` that is not
E.164 is 21211, neither ``From`` nor ``MessagingServiceSid`` is 21603, an empty ``Body`` is
21602, a ``Body`` over 1,600 characters is 21617; every error body is
``{code, message, more_info, status}``.

With ``status_callbacks=True``, each accepted create that names a ``StatusCallback`` is reported
there as Twilio does: form-encoded POSTs signed with ``X-Twilio-Signature`` (and an
``I-Twilio-Idempotency-Token`` kept across retries), ``sent`` then ``delivered``
(``queued`` first through a Messaging Service; ``undelivered``/``failed`` with an ``ErrorCode``
for numbers scripted with ``script_delivery``). They go out from one background task per event
loop with its own httpx client, concurrently, so they never slow the create answers; a
callback that cannot connect or gets a 5xx is retried a few times after a short pause (the
gateway may be restarting). ``callbacks`` records what was delivered.

The signature here is computed independently of the provider module, so a loopback test
proves the two agree. ``signed_webhook``, ``inbound_params``, ``status_params`` and
``post_inbound`` sign and send Twilio-shaped webhooks for other tests.

Standalone: ``python -m tests.fakes.twilio --port N --account-sid AC… --auth-token …
[--status-callbacks] [--delay-ms N] [--number +1…] [--callback-attempts N]
[--callback-retry-seconds S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import hmac
import re
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import ReportQueue, run_forever
from tidings.domain.segments import count_segments

API = "/2010-04-01"
MAX_BODY = 1600
DEFAULT_NUMBERS = ("+15005550006",)
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_FAILURE_WORDS = frozenset({"failed", "undelivered"})
_DEFAULT_ERRORS: Mapping[int, tuple[int, str]] = {
    429: (20429, "Too Many Requests"),
    500: (20500, "An internal server error has occurred"),
    503: (20503, "Service Unavailable"),
}


# --- what the fake records and can be scripted with ----------------------------------------------


@dataclass(frozen=True)
class RecordedMessage:
    """One accepted create, as parsed from the form Twilio would have received."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    status_callback: str | None
    form: Mapping[str, str]
    date_created: str


@dataclass(frozen=True)
class DeliveredCallback:
    """One status callback: ``status`` is the receiver's last HTTP answer (``None`` when no
    attempt got one) after ``attempts`` tries."""

    url: str
    params: Mapping[str, str]
    status: int | None
    attempts: int


@dataclass(frozen=True)
class Delivery:
    """The final status word a number's messages end in, with Twilio's error for failures."""

    status: str = "delivered"
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class CannedFailure:
    status: int
    body: str | dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


# --- signing and webhook helpers (usable by any test) --------------------------------------------


def twilio_signature(url: str, params: Mapping[str, str] | Iterable[tuple[str, str]],
                     auth_token: str) -> str:
    """Base64 HMAC-SHA1 with the auth token over ``url`` followed by every parameter's name and
    value, sorted by name and then value: Twilio's ``X-Twilio-Signature``."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    payload = url
    for name, value in sorted(pairs):
        payload += name + value
    mac = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def signed_webhook(
    url: str, params: Mapping[str, str] | Iterable[tuple[str, str]], auth_token: str
) -> tuple[dict[str, str], bytes]:
    """The headers and form body of a webhook Twilio would POST to ``url`` with ``params``."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": twilio_signature(url, pairs, auth_token),
    }
    return headers, urlencode(pairs).encode()


def status_params(
    message_sid: str, status: str, *, account_sid: str, to: str, from_: str,
    error_code: str | None = None, error_message: str | None = None,
    messaging_service_sid: str | None = None,
) -> dict[str, str]:
    """The form fields of a messaging status callback."""
    params = {
        "SmsSid": message_sid, "SmsStatus": status, "MessageStatus": status, "To": to,
        "MessageSid": message_sid, "AccountSid": account_sid, "From": from_,
        "ApiVersion": API.strip("/"),
    }
    if messaging_service_sid:
        params["MessagingServiceSid"] = messaging_service_sid
    if error_code:
        params["ErrorCode"] = error_code
    if error_message:
        params["ErrorMessage"] = error_message
    return params


def inbound_params(
    *, account_sid: str, from_: str, to: str, body: str, message_sid: str | None = None
) -> dict[str, str]:
    """The form fields of an incoming SMS webhook."""
    sid = message_sid or new_sid("SM")
    return {
        "ToCountry": "US", "ToState": "", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "",
        "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "",
        "Body": body, "FromCountry": "US", "To": to, "ToZip": "", "NumSegments": "1",
        "MessageSid": sid, "AccountSid": account_sid, "From": from_, "ApiVersion": "2010-04-01",
    }


async def post_inbound(
    client: httpx.AsyncClient, url: str, auth_token: str, *, account_sid: str, from_: str,
    to: str, body: str, message_sid: str | None = None,
) -> httpx.Response:
    """POST a signed incoming SMS to ``url`` as Twilio would; answers the receiver's response.
    ``url`` must be the full URL the receiver sees, since it is signed."""
    params = inbound_params(account_sid=account_sid, from_=from_, to=to, body=body,
                            message_sid=message_sid)
    headers, content = signed_webhook(url, params, auth_token)
    return await client.post(url, content=content, headers=headers)


def new_sid(prefix: str) -> str:
    """A Twilio SID: two letters and 32 hex digits."""
    return prefix + uuid.uuid4().hex


# --- the fake ------------------------------------------------------------------------------------


class FakeTwilio:
    """Twilio for the given ``{account_sid: auth_token}`` accounts; ``app`` is the ASGI app.

    ``messages`` records the creates taken, ``requests`` every request as ``(method, path)``
    (failed and refused ones too), ``callbacks`` every status callback delivered.
    ``delay_ms`` delays every answer; ``numbers`` are the accounts' phone numbers;
    ``callback_attempts`` and ``callback_retry_seconds`` bound the retries of a status callback.
    ``clock`` gives the resource dates.
    """

    def __init__(
        self,
        accounts: Mapping[str, str],
        *,
        status_callbacks: bool = False,
        delay_ms: int = 0,
        numbers: Sequence[str] = DEFAULT_NUMBERS,
        balance: str = "12.34",
        currency: str = "USD",
        callback_attempts: int = 5,
        callback_retry_seconds: float = 0.2,
        callback_concurrency: int = 64,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.accounts = dict(accounts)
        self.status_callbacks = status_callbacks
        self.delay_ms = delay_ms
        self.numbers = list(numbers)
        self.balance = balance
        self.currency = currency
        self.callback_attempts = callback_attempts
        self.callback_retry_seconds = callback_retry_seconds
        self.callback_concurrency = callback_concurrency
        self.clock = clock
        self.messages: list[RecordedMessage] = []
        self.callbacks: list[DeliveredCallback] = []
        self.requests: list[tuple[str, str]] = []
        self._by_sid: dict[str, RecordedMessage] = {}
        self._status: dict[str, str] = {}
        self._failures: deque[CannedFailure] = deque()
        self._deliveries: dict[str, Delivery] = {}
        self._reports: ReportQueue[RecordedMessage] = ReportQueue(self._report,
                                                                  callback_concurrency)
        base = API + "/Accounts/{account_sid}"
        self.app = Starlette(
            routes=[
                Route(base + "/Messages.json", self._create, methods=["POST"]),
                Route(base + "/Messages.json", self._list, methods=["GET"]),
                Route(base + "/Messages/{sid}.json", self._fetch, methods=["GET"]),
                Route(base + "/Balance.json", self._balance, methods=["GET"]),
                Route(base + "/IncomingPhoneNumbers.json", self._numbers, methods=["GET"]),
            ],
            exception_handlers={404: self._not_found},
        )

    # --- scripting ---

    def fail_next(self, count: int = 1, status: int = 500, body: str | dict[str, Any] | None = None,
                  headers: Mapping[str, str] | None = None) -> None:
        """Answer the next ``count`` creates with ``status`` and ``body`` (by default Twilio's
        error body for that status: 20429, 20500, 20503...) instead of taking them."""
        code, message = _DEFAULT_ERRORS.get(status, (status * 100, "Scripted failure"))
        canned = CannedFailure(status, body if body is not None else _error(code, message, status),
                               dict(headers or {}))
        self._failures.extend([canned] * count)

    def malformed_next(self, count: int = 1, body: str = '{"status": "queued"}') -> None:
        """Answer the next ``count`` creates 201 with ``body`` (by default JSON without a sid),
        without taking them."""
        self._failures.extend([CannedFailure(201, body)] * count)

    def script_delivery(self, to: str, status: str = "undelivered",
                        error_code: str | None = "30003",
                        error_message: str | None = None) -> None:
        """Messages to ``to`` end in ``status`` (``undelivered``, ``failed``, ``delivered``)."""
        self._deliveries[to] = Delivery(status, error_code, error_message)

    @property
    def callbacks_pending(self) -> int:
        """Status-callback reports queued or being delivered right now."""
        return self._reports.pending

    # --- endpoints ---

    async def _create(self, request: Request) -> Response:
        account_sid = request.path_params["account_sid"]
        self.requests.append((request.method, request.url.path))
        # The body is in before the delay: as at Twilio, a create whose client gave up (or
        # died) while waiting for the answer is still taken.
        body = await request.body()
        await self._pause()
        if (denied := self._authenticate(request, account_sid)) is not None:
            return denied
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        if self._failures:
            canned = self._failures.popleft()
            if isinstance(canned.body, dict):
                return JSONResponse(canned.body, canned.status, dict(canned.headers))
            return Response(canned.body, canned.status, dict(canned.headers),
                            media_type="application/json")
        if (invalid := _invalid_create(form)) is not None:
            return invalid
        message = RecordedMessage(
            sid=new_sid("SM"), account_sid=account_sid, to=form["To"], from_=form.get("From"),
            messaging_service_sid=form.get("MessagingServiceSid"), body=form["Body"],
            status_callback=form.get("StatusCallback"), form=form,
            date_created=format_datetime(self.clock()),
        )
        self.messages.append(message)
        self._by_sid[message.sid] = message
        if self.status_callbacks and message.status_callback:
            self._reports.put(message)
        return JSONResponse(self._resource(message), 201, {"Twilio-Request-Id": new_sid("RQ")})

    async def _fetch(self, request: Request) -> Response:
        account_sid = request.path_params["account_sid"]
        self.requests.append((request.method, request.url.path))
        await self._pause()
        if (denied := self._authenticate(request, account_sid)) is not None:
            return denied
        message = self._by_sid.get(request.path_params["sid"])
        if message is None or message.account_sid != account_sid:
            return _not_found_response(request.url.path)
        return JSONResponse(self._resource(message))

    async def _balance(self, request: Request) -> Response:
        account_sid = request.path_params["account_sid"]
        self.requests.append((request.method, request.url.path))
        await self._pause()
        if (denied := self._authenticate(request, account_sid)) is not None:
            return denied
        return JSONResponse({"currency": self.currency, "balance": self.balance,
                             "account_sid": account_sid})

    async def _list(self, request: Request) -> Response:
        """The creates taken, newest first, one page (``PageSize`` up to 1,000, ``Page`` from
        0) in Twilio's list envelope; Twilio's filters (``To``, ``From``, ``DateSent``) are not
        implemented."""
        account_sid = request.path_params["account_sid"]
        self.requests.append((request.method, request.url.path))
        await self._pause()
        if (denied := self._authenticate(request, account_sid)) is not None:
            return denied
        try:
            size = min(max(int(request.query_params.get("PageSize", "50")), 1), 1000)
            page = max(int(request.query_params.get("Page", "0")), 0)
        except ValueError:
            return JSONResponse(_error(20001, "Invalid paging parameters", 400), 400)
        path = f"{API}/Accounts/{account_sid}/Messages.json"
        taken = [m for m in reversed(self.messages) if m.account_sid == account_sid]
        chunk = taken[page * size:(page + 1) * size]
        more = (page + 1) * size < len(taken)
        return JSONResponse({
            "messages": [self._resource(m) for m in chunk],
            "page": page, "page_size": size, "start": page * size,
            "end": page * size + max(len(chunk) - 1, 0), "uri": f"{path}?PageSize={size}",
            "first_page_uri": f"{path}?PageSize={size}&Page=0",
            "next_page_uri": (f"{path}?PageSize={size}&Page={page + 1}&PageToken=PA{page + 1}"
                              if more else None),
            "previous_page_uri": None if page == 0 else f"{path}?PageSize={size}&Page={page - 1}",
        })

    async def _numbers(self, request: Request) -> Response:
        account_sid = request.path_params["account_sid"]
        self.requests.append((request.method, request.url.path))
        await self._pause()
        if (denied := self._authenticate(request, account_sid)) is not None:
            return denied
        try:
            size = min(max(int(request.query_params.get("PageSize", "50")), 1), 1000)
            page = max(int(request.query_params.get("Page", "0")), 0)
        except ValueError:
            return JSONResponse(_error(20001, "Invalid paging parameters", 400), 400)
        path = f"{API}/Accounts/{account_sid}/IncomingPhoneNumbers.json"
        chunk = self.numbers[page * size:(page + 1) * size]
        more = (page + 1) * size < len(self.numbers)
        return JSONResponse({
            "incoming_phone_numbers": [self._number(account_sid, n) for n in chunk],
            "page": page, "page_size": size, "start": page * size,
            "end": page * size + max(len(chunk) - 1, 0), "uri": f"{path}?PageSize={size}",
            "first_page_uri": f"{path}?PageSize={size}&Page=0",
            "next_page_uri": (f"{path}?PageSize={size}&Page={page + 1}&PageToken=PA{page + 1}"
                              if more else None),
            "previous_page_uri": None if page == 0 else f"{path}?PageSize={size}&Page={page - 1}",
        })

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        return _not_found_response(request.url.path)

    # --- helpers ---

    async def _pause(self) -> None:
        if self.delay_ms > 0:
            await asyncio.sleep(self.delay_ms / 1000)

    def _authenticate(self, request: Request, account_sid: str) -> Response | None:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
        token = self.accounts.get(user)
        if (scheme.lower() != "basic" or token is None or password != token
                or user != account_sid):
            return JSONResponse(_error(20003, "Authenticate", 401), 401,
                                {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        return None

    def _resource(self, message: RecordedMessage) -> dict[str, Any]:
        """The Message resource as Twilio answers it, in its current status."""
        created = message.date_created
        path = f"{API}/Accounts/{message.account_sid}/Messages/{message.sid}"
        through_service = message.messaging_service_sid is not None
        return {
            "account_sid": message.account_sid, "api_version": API.strip("/"),
            "body": message.body, "date_created": created, "date_sent": None,
            "date_updated": created, "direction": "outbound-api", "error_code": None,
            "error_message": None, "from": message.from_,
            "messaging_service_sid": message.messaging_service_sid, "num_media": "0",
            "num_segments": "0" if through_service else str(count_segments(message.body).segments),
            "price": None, "price_unit": "USD", "sid": message.sid,
            "status": self._status.get(message.sid,
                                       "accepted" if through_service else "queued"),
            "subresource_uris": {"media": f"{path}/Media.json"}, "to": message.to,
            "uri": f"{path}.json",
        }

    def _number(self, account_sid: str, number: str) -> dict[str, Any]:
        sid = "PN" + hashlib.md5(number.encode(), usedforsecurity=False).hexdigest()
        return {
            "sid": sid, "account_sid": account_sid, "phone_number": number,
            "friendly_name": number, "capabilities": {"sms": True, "mms": True, "voice": True},
            "sms_url": "", "sms_method": "POST", "status": "in-use",
            "uri": f"{API}/Accounts/{account_sid}/IncomingPhoneNumbers/{sid}.json",
        }

    # --- status callbacks ---

    async def _report(self, client: httpx.AsyncClient, message: RecordedMessage) -> None:
        """Every callback of one message, in order; one failing does not stop the next."""
        url = message.status_callback
        if url is None:
            return
        delivery = self._deliveries.get(message.to, Delivery())
        words = ["sent", delivery.status] if delivery.status != "failed" else ["failed"]
        if message.messaging_service_sid:
            words.insert(0, "queued")
        sender = message.from_ or (self.numbers[0] if self.numbers else "")
        for word in words:
            failure = word in _FAILURE_WORDS
            params = status_params(
                message.sid, word, account_sid=message.account_sid, to=message.to,
                from_=sender, messaging_service_sid=message.messaging_service_sid,
                error_code=delivery.error_code if failure else None,
                error_message=delivery.error_message if failure else None,
            )
            self._status[message.sid] = word
            await self._post(client, url, params, self.accounts[message.account_sid])

    async def _post(self, client: httpx.AsyncClient, url: str, params: Mapping[str, str],
                    token: str) -> None:
        headers, content = signed_webhook(url, params, token)
        headers["I-Twilio-Idempotency-Token"] = str(uuid.uuid4())
        headers["User-Agent"] = "TwilioProxy/1.1"
        status: int | None = None
        attempt = 0
        for attempt in range(1, self.callback_attempts + 1):
            try:
                response = await client.post(url, content=content, headers=headers)
            except Exception:  # noqa: BLE001
                # No answer, whatever the client raised: besides httpx's transport errors,
                # httpcore raises AttributeError (anyio's getpeername on a closed socket) for a
                # connection the server resets while it is set up, as a killed gateway does.
                # Twilio retries either way; a task that died here lost the callback for good.
                status = None
            else:
                status = response.status_code
                if status < 500:
                    break
            if attempt < self.callback_attempts:
                await asyncio.sleep(self.callback_retry_seconds * attempt)
        self.callbacks.append(DeliveredCallback(url, dict(params), status, attempt))


def _invalid_create(form: Mapping[str, str]) -> Response | None:
    to = form.get("To", "")
    if not to:
        return _bad_request(21604, "A 'To' phone number is required.")
    if not _E164.match(to):
        return _bad_request(21211, f"Invalid 'To' Phone Number: {to}")
    if not form.get("From") and not form.get("MessagingServiceSid"):
        return _bad_request(21603, "A 'From' phone number is required.")
    body = form.get("Body", "")
    if not body:
        return _bad_request(21602, "Message body is required.")
    if len(body) > MAX_BODY:
        return _bad_request(21617, "The concatenated message body exceeds the 1600 character "
                                   "limit.")
    return None


def _error(code: int, message: str, status: int) -> dict[str, Any]:
    return {"code": code, "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}


def _bad_request(code: int, message: str) -> Response:
    return JSONResponse(_error(code, message, 400), 400)


def _not_found_response(path: str) -> Response:
    return JSONResponse(_error(20404, f"The requested resource {path} was not found", 404), 404)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Twilio Messages API on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--account-sid", required=True)
    parser.add_argument("--auth-token", required=True)
    parser.add_argument("--status-callbacks", action="store_true",
                        help="report sent/delivered to each message's StatusCallback")
    parser.add_argument("--delay-ms", type=int, default=0, help="delay every answer")
    parser.add_argument("--number", action="append", default=None,
                        help="an account phone number (repeatable)")
    parser.add_argument("--callback-attempts", type=int, default=5,
                        help="tries per status callback (connection errors and 5xx are retried)")
    parser.add_argument("--callback-retry-seconds", type=float, default=0.2,
                        help="pause before retry n is n times this")
    args = parser.parse_args(argv)
    fake = FakeTwilio({args.account_sid: args.auth_token}, status_callbacks=args.status_callbacks,
                      delay_ms=args.delay_ms, numbers=args.number or DEFAULT_NUMBERS,
                      callback_attempts=args.callback_attempts,
                      callback_retry_seconds=args.callback_retry_seconds)
    run_forever(fake.app, args.port)


if __name__ == "__main__":
    main()

