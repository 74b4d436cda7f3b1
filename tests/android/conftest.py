"""Fixtures for the SMS Gateway for Android compatibility suite: the real app served over HTTP
on 127.0.0.1 (uvicorn in a thread, with a Runtime of its own on the test database), an ANDROID
SMS app made through the native API, and a fake phone registered to it.

The server's own Runtime shares nothing in memory with the test's ``runtime`` fixture, which
only shares the database file (and empties it after each test, once the server has stopped).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from tests.android.fake_phone import FakePhone, plain_http, tls_context
from tests.conftest import TenantFactory, TenantHandle
from tidings.app import create_app
from tidings.config import Settings
from tidings.runtime import Runtime

START_SECONDS = 30.0
STOP_SECONDS = 30.0
THIRD_PARTY = "/3rdparty/v1"
THIRD_PARTY_API = "/api/3rdparty/v1"
DEFAULT_PROVIDER_CONFIG: Mapping[str, Any] = {"default_region": "RU"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "live_workers: serve the app with its background workers running")


@dataclass(frozen=True)
class LiveServer:
    """The app listening on ``url`` (``http://127.0.0.1:<port>``)."""

    url: str

    @property
    def mobile_url(self) -> str:
        return f"{self.url}/mobile/v1"

    def api_url(self, prefix: str = THIRD_PARTY) -> str:
        """A ``base_url`` for the official client: it must include ``/3rdparty/v1``."""
        return f"{self.url}{prefix}"


@pytest.fixture
def live_server(request: pytest.FixtureRequest, settings: Settings,
                runtime: Runtime) -> Iterator[LiveServer]:
    """``create_app(settings)`` served by uvicorn on a port bound here (port 0), with its own
    Runtime and the real clock; without background workers unless the test is marked
    ``live_workers``."""
    del runtime  # requested for its teardown only: it empties the database after the server
    workers = request.node.get_closest_marker("live_workers") is not None
    app = create_app(settings, run_workers=workers)
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on connections accepted
    # from a socket that says it is TCP; without it every reused connection waits ~40 ms
    # (Nagle against delayed ACKs).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(
        app, lifespan="on", log_config=None, access_log=False, loop="asyncio", ws="none",
        timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="tidings-live-server", daemon=True)
    thread.start()
    try:
        _wait_until_it_answers(server, thread, url)
        yield LiveServer(url)
    finally:
        server.should_exit = True
        thread.join(STOP_SECONDS)
        sock.close()
        assert not thread.is_alive(), "the server did not stop"


def _wait_until_it_answers(server: uvicorn.Server, thread: threading.Thread, url: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not server.started:
        if not thread.is_alive():
            pytest.fail("the server stopped while starting (see the captured log)")
        if time.monotonic() > deadline:
            pytest.fail(f"the server did not start within {START_SECONDS}s")
        time.sleep(0.01)
    with plain_http(url) as http:
        assert http.get("/health").status_code == 200


@dataclass(frozen=True)
class AndroidAccount:
    """An ANDROID SMS app of ``tenant`` with one registered ``phone``; ``login``/``password``
    are the phone's new login, the Basic credentials of the 3rd-party API."""

    server: LiveServer
    tenant: TenantHandle
    app_id: str
    registration_token: str
    phone: FakePhone

    @property
    def login(self) -> str:
        return self.phone.login

    @property
    def password(self) -> str:
        assert self.phone.password is not None
        return self.phone.password

    def api_url(self, prefix: str = THIRD_PARTY) -> str:
        return self.server.api_url(prefix)

    def raw(self, prefix: str = THIRD_PARTY) -> httpx.Client:
        """An httpx client on the 3rd-party API with this login's Basic credentials."""
        return plain_http(self.api_url(prefix), auth=(self.login, self.password))


class AndroidAccounts:
    """Makes ANDROID apps the way a tenant does (``POST /sms/v1/apps/`` with its API key) and
    registers a fake phone with each app's ``registration_token``."""

    def __init__(self, server: LiveServer, tenants: TenantFactory) -> None:
        self.server = server
        self._tenants = tenants

    async def create(self, *, tenant: TenantHandle | None = None,
                     provider_config: Mapping[str, Any] | None = None,
                     phone_name: str = "Fake phone") -> AndroidAccount:
        tenant = tenant or await self._tenants.create()
        config = {**DEFAULT_PROVIDER_CONFIG, **(provider_config or {})}
        async with httpx.AsyncClient(base_url=self.server.url, timeout=15,
                                     verify=tls_context()) as http:
            made = await http.post("/sms/v1/apps/", headers=tenant.headers, json={
                "name": "Phones", "provider": "ANDROID", "provider_config": config})
        assert made.status_code == 201, made.text
        body = made.json()
        phone = FakePhone.register(self.server.mobile_url, body["registration_token"],
                                   name=phone_name)
        return AndroidAccount(self.server, tenant, body["id"], body["registration_token"], phone)


@pytest.fixture
def android_accounts(live_server: LiveServer, tenants: TenantFactory) -> AndroidAccounts:
    return AndroidAccounts(live_server, tenants)


@pytest.fixture
async def android(android_accounts: AndroidAccounts) -> AndroidAccount:
    """Tenant A: an ANDROID app (default region RU) with one registered phone."""
    return await android_accounts.create()


@pytest.fixture
async def other_android(android_accounts: AndroidAccounts) -> AndroidAccount:
    """Tenant B, made the same way, with a phone of its own."""
    return await android_accounts.create(phone_name="Tenant B phone")


@pytest.fixture
def raw(android: AndroidAccount) -> Iterator[httpx.Client]:
    """Plain httpx on tenant A's ``/3rdparty/v1`` with Basic credentials, for what the
    official client hides (status codes, headers, error bodies)."""
    with android.raw() as http:
        yield http


@pytest.fixture
async def native(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """Plain httpx on the server root, for the native API (``/sms/v1/…``)."""
    async with httpx.AsyncClient(base_url=live_server.url, timeout=15,
                                 verify=tls_context()) as http:
        yield http
