"""A fake Android phone in private-server mode: it speaks the SMS Gateway for Android phone API
(``/mobile/v1``, or ``/api/mobile/v1`` as the app's URL setting has it) over real HTTP, as the
app does, and knows nothing of the server behind it.

The wire shapes follow android-sms-gateway/client-go (``MobileRegisterResponse``,
``MobileMessage``, ``MobilePatchMessageItem``) and the Go server's SSE writer
(``event: <Type>\\ndata: <json>\\n\\n``, ``:keepalive`` comments); see
../shared/research/android-sms-gateway.md, "Mobile API".
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import ssl
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx

TIMEOUT = httpx.Timeout(15.0)
EVENT_WAIT_SECONDS = 10.0


class PhoneApiError(AssertionError):
    """The server answered a phone call with an unexpected status."""

    def __init__(self, response: httpx.Response, expected: int) -> None:
        super().__init__(f"{response.request.method} {response.request.url} answered "
                         f"{response.status_code} (expected {expected}): {response.text}")
        self.response = response


@functools.cache
def tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def plain_http(base_url: str = "", **options: Any) -> httpx.Client:
    """A short-lived httpx client; the TLS context (unused on http://, but built by every new
    client, at some 20 ms each) is made once."""
    return httpx.Client(base_url=base_url, timeout=TIMEOUT, verify=tls_context(), **options)


def basic_auth(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


def expect(response: httpx.Response, status: int) -> httpx.Response:
    """``response`` if it has ``status``, else ``PhoneApiError`` with the body."""
    if response.status_code != status:
        raise PhoneApiError(response, status)
    return response


def _now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class FakePhone:
    """A registered phone: its device id and bearer token, and the login it belongs to
    (``password`` is known only when the registration created the login)."""

    mobile_url: str
    id: str
    token: str
    login: str
    password: str | None
    name: str | None = None
    _history: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)

    # -- registration -----------------------------------------------------------------------

    @classmethod
    def register(cls, mobile_url: str, registration_token: str, *,
                 name: str | None = "Fake phone",
                 sim_cards: Sequence[Mapping[str, Any]] | None = None) -> FakePhone:
        """``POST /device`` with ``Bearer <registration_token>``: a new login and password."""
        answer = _register(mobile_url, f"Bearer {registration_token}", name, sim_cards)
        assert set(answer) >= {"id", "token", "login", "password"}, answer
        return cls(mobile_url, answer["id"], answer["token"], answer["login"],
                   answer["password"], name)

    @classmethod
    def join_with_password(cls, mobile_url: str, login: str, password: str, *,
                           name: str | None = "Second phone") -> FakePhone:
        """``POST /device`` with ``Basic login:password``: one more phone of that login."""
        answer = _register(mobile_url, basic_auth(login, password), name, None)
        return cls(mobile_url, answer["id"], answer["token"], answer["login"], None, name)

    @classmethod
    def join_with_code(cls, mobile_url: str, code: str, *,
                       name: str | None = "Second phone") -> FakePhone:
        """``POST /device`` with ``Code <otp>`` from ``GET /user/code``."""
        answer = _register(mobile_url, f"Code {code}", name, None)
        return cls(mobile_url, answer["id"], answer["token"], answer["login"], None, name)

    @staticmethod
    def user_code(mobile_url: str, login: str, password: str) -> dict[str, Any]:
        """``GET /user/code`` with Basic auth: ``{code, validUntil}``."""
        with plain_http() as http:
            answer = expect(http.get(f"{mobile_url}/user/code",
                                     headers={"Authorization": basic_auth(login, password)}), 200)
        body: dict[str, Any] = answer.json()
        return body

    # -- raw access ---------------------------------------------------------------------------

    def request(self, method: str, path: str, *, json_body: Any = None,
                params: Mapping[str, str] | None = None) -> httpx.Response:
        """One call to ``<mobile_url><path>`` with this phone's bearer token, as is."""
        headers = {"Authorization": f"Bearer {self.token}",
                   "User-Agent": "me.capcom.smsgateway/1.0 (fake phone)"}
        with plain_http() as http:
            return http.request(method, f"{self.mobile_url}{path}", headers=headers,
                                json=json_body, params=params)

    # -- the calls the app makes --------------------------------------------------------------

    def pull(self, order: str | None = None) -> list[dict[str, Any]]:
        """``GET /message[?order=lifo|fifo]``: the pending (and cancelling) messages."""
        params = {"order": order} if order else None
        messages: list[dict[str, Any]] = expect(
            self.request("GET", "/message", params=params), 200).json()
        return messages

    def report(self, message_id: str, state: str,
               recipients: Sequence[str] | Mapping[str, str],
               *, errors: Mapping[str, str] | None = None) -> None:
        """``PATCH /message`` with one item, as the app sends it: the message's ``state``, each
        recipient's state (all ``state`` for a list, per number for a mapping; ``errors`` by
        number) and the message's whole state history so far (first time each was reached)."""
        by_number = (dict(recipients) if isinstance(recipients, Mapping)
                     else dict.fromkeys(recipients, state))
        history = self._history.setdefault(message_id, {})
        history.setdefault(state, _now_rfc3339())
        expect(self.request("PATCH", "/message", json_body=[{
            "id": message_id,
            "state": state,
            "recipients": [_recipient(number, s, (errors or {}).get(number))
                           for number, s in by_number.items()],
            "states": dict(history),
        }]), 204)

    def webhooks(self) -> list[dict[str, Any]]:
        """``GET /webhooks``: the registrations this phone must call."""
        hooks: list[dict[str, Any]] = expect(self.request("GET", "/webhooks"), 200).json()
        return hooks

    def settings(self) -> dict[str, Any]:
        """``GET /settings``: the login's full settings, secrets included."""
        body: dict[str, Any] = expect(self.request("GET", "/settings"), 200).json()
        return body

    def device(self) -> dict[str, Any]:
        """``GET /device``: ``{device?, externalIp}``."""
        body: dict[str, Any] = expect(self.request("GET", "/device"), 200).json()
        return body

    def update(self, push_token: str | None = None,
               sim_cards: Sequence[Mapping[str, Any]] | None = None) -> None:
        """``PATCH /device`` ``{id, pushToken, simCards?}``."""
        body: dict[str, Any] = {"id": self.id, "pushToken": push_token}
        if sim_cards is not None:
            body["simCards"] = list(sim_cards)
        expect(self.request("PATCH", "/device", json_body=body), 204)

    def change_password(self, current: str, new: str) -> httpx.Response:
        """``PATCH /user/password``; the answer as is (204, or 401 for a wrong current one)."""
        return self.request("PATCH", "/user/password",
                            json_body={"currentPassword": current, "newPassword": new})

    def events(self) -> EventStream:
        """``GET /events`` opened and connected (200 received); use as a context manager."""
        return EventStream.open(f"{self.mobile_url}/events", self.token)


def _recipient(number: str, state: str, error: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"phoneNumber": number, "state": state}
    if error is not None:
        item["error"] = error
    return item


def _register(mobile_url: str, authorization: str, name: str | None,
              sim_cards: Sequence[Mapping[str, Any]] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"pushToken": None}
    if name is not None:
        body["name"] = name
    if sim_cards is not None:
        body["simCards"] = list(sim_cards)
    with plain_http() as http:
        answer = expect(http.post(f"{mobile_url}/device", json=body,
                                  headers={"Authorization": authorization}), 201)
    registered: dict[str, Any] = answer.json()
    return registered


# -- Server-Sent Events ---------------------------------------------------------------------


@dataclass(frozen=True)
class PhoneEvent:
    """One SSE event: ``event:`` (``type``) and the JSON of its ``data:`` lines (None if
    there were none)."""

    type: str
    data: Any


class SseParser:
    """Incremental ``text/event-stream`` parsing (the WHATWG rules the app's client follows):
    ``field: value`` lines, a blank line ends an event, lines starting ``:`` are comments
    (``:keepalive``) and are counted, not delivered."""

    def __init__(self) -> None:
        self.comments = 0
        self._type = ""
        self._data: list[str] = []

    def feed(self, lines: Iterable[str]) -> Iterator[PhoneEvent]:
        for line in lines:
            if line == "":
                if self._data or self._type:
                    text = "\n".join(self._data)
                    yield PhoneEvent(self._type or "message", json.loads(text) if text else None)
                self._type, self._data = "", []
            elif line.startswith(":"):
                self.comments += 1
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    self._type = value
                elif name == "data":
                    self._data.append(value)


class EventStream:
    """A phone's open ``GET /events`` stream, read by a background thread (its own event
    loop, so it keeps reading while a sync test blocks). ``next(type)`` takes the first
    not yet taken event of that type, waiting for it with a deadline."""

    def __init__(self, url: str, token: str) -> None:
        self._url = url
        self._token = token
        self._condition = threading.Condition()
        self._events: list[PhoneEvent] = []
        self._status: int | None = None
        self._content_type = ""
        self._error: BaseException | None = None
        self._ended = False
        self._parser = SseParser()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, name="fake-phone-sse", daemon=True)

    @classmethod
    def open(cls, url: str, token: str) -> EventStream:
        """Connect and wait for the answer's headers; fails unless it is a 200 event stream.

        The server is expected to have subscribed the phone before the headers go out, so
        that an event raised after this returns is never missed."""
        stream = cls(url, token)
        stream._thread.start()
        with stream._condition:
            connected = stream._condition.wait_for(
                lambda: stream._status is not None or stream._ended, EVENT_WAIT_SECONDS)
        if (not connected or stream._status != 200
                or not stream._content_type.startswith("text/event-stream")):
            stream.close()
            raise AssertionError(f"GET {url} did not open an event stream: status "
                                 f"{stream._status}, content type {stream._content_type!r}, "
                                 f"error {stream._error!r}")
        return stream

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    @property
    def keepalives(self) -> int:
        return self._parser.comments

    def next(self, event_type: str, timeout: float = EVENT_WAIT_SECONDS) -> PhoneEvent:
        """The first event of ``event_type`` not taken yet (now taken); fails after
        ``timeout`` seconds or when the stream ends first."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                for index, event in enumerate(self._events):
                    if event.type == event_type:
                        del self._events[index]
                        return event
                left = deadline - time.monotonic()
                if self._ended or left <= 0:
                    raise AssertionError(
                        f"no {event_type} event within {timeout}s; got "
                        f"{[e.type for e in self._events]} (ended: {self._ended}, "
                        f"error: {self._error!r})")
                self._condition.wait(left)

    @property
    def pending_types(self) -> list[str]:
        """The types of the events received and not taken yet."""
        with self._condition:
            return [event.type for event in self._events]

    def close(self) -> None:
        loop, task = self._loop, self._task
        if loop is not None and task is not None and self._thread.is_alive():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop closed in between: the stream has ended
                pass
        self._thread.join(timeout=10)

    # -- the reader thread ----------------------------------------------------------------

    def _run(self) -> None:
        asyncio.run(self._read())

    async def _read(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "text/event-stream"}
        try:
            async with (httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None),
                                          verify=tls_context()) as http,
                        http.stream("GET", self._url, headers=headers) as response):
                with self._condition:
                    self._status = response.status_code
                    self._content_type = response.headers.get("content-type", "")
                    self._condition.notify_all()
                if response.status_code != 200:
                    return
                async for line in response.aiter_lines():
                    events = list(self._parser.feed([line]))
                    if events:
                        with self._condition:
                            self._events.extend(events)
                            self._condition.notify_all()
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # noqa: BLE001 - reported through next() and open()
            self._error = exc
        finally:
            with self._condition:
                self._ended = True
                self._condition.notify_all()
