"""The official Python client (``android-sms-gateway`` 4.3.3) as the compatibility tests use
it: built the way its users build it, with an explicit backend for the backend matrix, and
behind one awaitable interface (``Api``) so that one test body covers sync and async clients.
Also the numbers, messages and time checks the tests share."""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from android_sms_gateway import (
    APIClient,
    AsyncAPIClient,
    Message,
    MessageState,
    ProcessState,
    TextMessage,
    Webhook,
)
from android_sms_gateway.ahttp import AiohttpAsyncHttpClient, HttpxAsyncHttpClient
from android_sms_gateway.http import HttpxHttpClient, RequestsHttpClient

from tests.android.conftest import THIRD_PARTY, THIRD_PARTY_API, AndroidAccount

PHONE = "+79990001234"
LOCAL_PHONE = "89990001234"
OTHER_PHONE = "+79990001235"
HOOK_URL = "https://hooks.example.com/sms"
UNKNOWN_DEVICE = "A" * 21
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)")
"""What the server emits: at most 6 fractional digits (older Pythons reject Go's 9)."""

PREFIXES = {"3rdparty": THIRD_PARTY, "api-3rdparty": THIRD_PARTY_API}
MATRIX = [("requests", "3rdparty"), ("httpx", "api-3rdparty"), ("aiohttp", "api-3rdparty"),
          ("httpx-async", "3rdparty")]
"""Every backend once and each mount twice (backend and mount do not interact: the full
product would double the run time for nothing)."""


def text(body: str = "hello", *numbers: str, **fields: Any) -> Message:
    """A text message as the client builds it (``Message`` is keyword-only)."""
    return Message(phone_numbers=list(numbers) or [PHONE], text_message=TextMessage(body),
                   **fields)


def recipients(state: MessageState) -> list[tuple[str, ProcessState]]:
    return [(r.phone_number, r.state) for r in state.recipients]


def parse_time(value: str) -> datetime:
    assert RFC3339.fullmatch(value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def sync_client(account: AndroidAccount, prefix: str = THIRD_PARTY, **options: Any) -> APIClient:
    """The sync client as most users create it (httpx backend, the default when installed)."""
    return APIClient(account.login, account.password, base_url=account.api_url(prefix),
                     **options)


class Api:
    """The official client, sync or async, behind one awaitable interface for the tests that
    run on every backend: sync calls simply block (the server has its own thread)."""

    def __init__(self, client: APIClient | AsyncAPIClient) -> None:
        self.client = client

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, method)(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    async def send(self, message: Message, **options: Any) -> MessageState:
        state: MessageState = await self._call("send", message, **options)
        return state

    async def get_state(self, message_id: str) -> MessageState:
        state: MessageState = await self._call("get_state", message_id)
        return state

    async def cancel_message(self, message_id: str) -> None:
        await self._call("cancel_message", message_id)

    async def get_webhooks(self) -> list[Webhook]:
        hooks: list[Webhook] = await self._call("get_webhooks")
        return hooks

    async def create_webhook(self, webhook: Webhook) -> Webhook:
        hook: Webhook = await self._call("create_webhook", webhook)
        return hook

    async def delete_webhook(self, webhook_id: str) -> None:
        await self._call("delete_webhook", webhook_id)


@asynccontextmanager
async def official_client(backend: str, login: str, password: str,
                          base_url: str) -> AsyncIterator[Api]:
    """The client with an explicit backend (each backend must be entered before use)."""
    if backend == "requests":
        with (RequestsHttpClient() as http,
              APIClient(login, password, base_url=base_url, http=http) as sync):
            yield Api(sync)
    elif backend == "httpx":
        with (HttpxHttpClient() as http,
              APIClient(login, password, base_url=base_url, http=http) as sync):
            yield Api(sync)
    elif backend == "aiohttp":
        async with (AiohttpAsyncHttpClient() as ahttp,
                    AsyncAPIClient(login, password, base_url=base_url,
                                   http_client=ahttp) as client):
            yield Api(client)
    else:
        async with (HttpxAsyncHttpClient() as ahttp,
                    AsyncAPIClient(login, password, base_url=base_url,
                                   http_client=ahttp) as client):
            yield Api(client)
