"""The dispatcher's HTTP client (``pipeline/http_transport``): what it puts on the wire is what
a plain ``httpx.AsyncClient`` would, and aiohttp's failures arrive as the httpx exceptions the
providers map to outcomes.

Each case is sent twice to a raw TCP server on 127.0.0.1 that records the request bytes, once
through ``dispatch_client`` and once through ``httpx.AsyncClient`` with the same default
headers; the two recorded requests must be the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tidings.pipeline.http_transport import DispatchClient, dispatch_client

OK = (b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 15\r\n"
      b"X-Request-Id: r-1\r\n\r\n" b'{"sid": "SM01"}')


@dataclass
class RecordedRequest:
    line: str
    headers: list[tuple[str, str]]  # sorted, names lower-cased; a repeated header shows twice
    body: bytes

    def header(self, name: str) -> str:
        return next(value for key, value in self.headers if key == name)


@dataclass
class RawServer:
    """Reads one HTTP/1.1 request per exchange, records it, and answers ``answer`` bytes (or
    runs ``behaviour`` instead, to stall or hang up)."""

    answer: bytes = OK
    behaviour: Callable[[asyncio.StreamWriter], Awaitable[None]] | None = None
    seen: list[RecordedRequest] = field(default_factory=list)
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *lines = head.decode("latin-1").split("\r\n")
                headers = sorted((name.lower(), value.strip()) for name, _, value in
                                 (h.partition(":") for h in lines if h))
                length = dict(headers).get("content-length", "0")
                body = await reader.readexactly(int(length))
                self.seen.append(RecordedRequest(line, headers, body))
                if self.behaviour is not None:
                    await self.behaviour(writer)
                    return
                writer.write(self.answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[RawServer]:
    raw = RawServer()
    listener = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    raw.url = f"http://127.0.0.1:{port}"
    try:
        yield raw
    finally:
        listener.close()
        await listener.wait_closed()


SAME_WIRE_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("form body with Basic auth (Twilio)", "POST", {
        "path": "/2010-04-01/Accounts/AC1/Messages.json",
        "data": {"To": "+14155550100", "From": "+14155550000", "Body": "Hé & bye",
                 "StatusCallback": "http://127.0.0.1:8000/dlr/?token=t"},
        "auth": ("AC1", "secret-token")}),
    ("JSON body with an auth header (MSG91, Fast2SMS)", "POST", {
        "path": "/api/v5/flow",
        "json": {"template_id": "T1", "recipients": [{"mobiles": "919812345678", "var": "1"}]},
        "headers": {"authkey": "k-123", "Accept": "application/json"}}),
    ("query parameters on a GET (balances)", "GET", {
        "path": "/api/balance.php", "params": {"authkey": "k-123", "type": "4"}}),
    ("a body-less POST with headers only", "POST", {
        "path": "/dev/wallet", "headers": {"authorization": "api-key"}}),
]


@pytest.mark.parametrize(("method", "call"), [(m, c) for _, m, c in SAME_WIRE_CASES],
                         ids=[label for label, _, _ in SAME_WIRE_CASES])
async def test_a_plain_request_goes_on_the_wire_exactly_as_httpx_sends_it(
        server: RawServer, method: str, call: dict[str, Any]) -> None:
    kwargs = {key: value for key, value in call.items() if key != "path"}
    lean = dispatch_client(5.0)
    reference = httpx.AsyncClient(headers={"User-Agent": lean.headers["User-Agent"]})
    async with lean, reference:
        ours = await lean.request(method, server.url + call["path"], **kwargs)
        theirs = await reference.request(method, server.url + call["path"], **kwargs)

    mine, expected = server.seen
    assert mine.line == expected.line
    assert mine.body == expected.body
    assert mine.headers == expected.headers
    assert (ours.status_code, ours.json(), ours.headers["x-request-id"]) == \
        (theirs.status_code, theirs.json(), theirs.headers["x-request-id"])


async def test_calls_to_one_url_with_different_params_each_send_their_own_query(
        server: RawServer) -> None:
    """The client parses each URL once and reuses it: the reuse must not carry one call's
    query parameters into the next."""
    async with dispatch_client(5.0) as http:
        await http.get(server.url + "/balance", params={"key": "a"})
        await http.get(server.url + "/balance", params={"key": "b", "type": "4"})
        await http.get(server.url + "/balance")

    assert [seen.line for seen in server.seen] == [
        "GET /balance?key=a HTTP/1.1", "GET /balance?key=b&type=4 HTTP/1.1",
        "GET /balance HTTP/1.1"]


async def test_the_answer_carries_the_request_it_answers(server: RawServer) -> None:
    async with dispatch_client(5.0) as http:
        answer = await http.post(server.url + "/x", data={"a": "1"})

    assert answer.request.method == "POST"
    assert str(answer.request.url) == server.url + "/x"


async def test_a_client_with_cookies_takes_httpx_own_path_and_still_works(
        server: RawServer) -> None:
    async with dispatch_client(5.0) as http:
        http.cookies.set("session", "abc")
        answer = await http.get(server.url + "/c")

    assert answer.status_code == 201
    assert server.seen[0].header("cookie") == "session=abc"


async def test_the_client_sends_tidings_as_its_user_agent(server: RawServer) -> None:
    async with dispatch_client(5.0) as http:
        await http.get(server.url + "/ua")

    assert server.seen[0].header("user-agent").startswith("tidings/")


async def _never_answer(writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(5)


async def _hang_up(writer: asyncio.StreamWriter) -> None:
    writer.close()


async def _half_an_answer(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial")
    await writer.drain()
    writer.close()


FAILURE_CASES = [
    ("no answer within the timeout", _never_answer, httpx.ReadTimeout),
    ("the server hangs up before answering", _hang_up, httpx.RemoteProtocolError),
    ("the answer is cut short", _half_an_answer, httpx.RemoteProtocolError),
]


@pytest.mark.parametrize(("behaviour", "error"), [(b, e) for _, b, e in FAILURE_CASES],
                         ids=[label for label, _, _ in FAILURE_CASES])
async def test_a_failed_exchange_raises_the_httpx_error_providers_expect(
        server: RawServer, behaviour: Callable[[asyncio.StreamWriter], Awaitable[None]],
        error: type[httpx.TransportError]) -> None:
    server.behaviour = behaviour
    async with dispatch_client(0.3) as http:
        with pytest.raises(error):
            await http.post(server.url + "/x", data={"a": "1"})


async def test_a_refused_connection_raises_connect_error() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()

    async with dispatch_client(1.0) as http:
        with pytest.raises(httpx.ConnectError):
            await http.post(f"http://127.0.0.1:{port}/x", data={"a": "1"})


async def test_a_closed_client_refuses_to_send(server: RawServer) -> None:
    http = dispatch_client(1.0)
    await http.aclose()

    with pytest.raises(RuntimeError, match="closed"):
        await http.post(server.url + "/x", data={"a": "1"})
    assert server.seen == []


def test_dispatch_client_is_an_httpx_async_client() -> None:
    """Providers are typed against ``httpx.AsyncClient`` and must not know the difference."""
    assert isinstance(dispatch_client(1.0), httpx.AsyncClient)
    assert issubclass(DispatchClient, httpx.AsyncClient)
