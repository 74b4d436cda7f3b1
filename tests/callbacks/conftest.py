"""Callbacks run against a real HTTP receiver on 127.0.0.1 (``receiver``), so private
addresses are allowed, and retries back off from 10 s on the test's clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.callbacks.steps import Receiver
from tests.fakes.callback_receiver import CallbackReceiver
from tests.fakes.server import serve_in_thread
from tidings.config import Settings
from tidings.pipeline.callbacks import CallbackSender
from tidings.runtime import Runtime


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={
        "callback_allow_private_networks": True, "callback_retry_base_seconds": 10.0,
        "callback_timeout_seconds": 0.5, "callback_max_age_seconds": 3600.0})


@pytest.fixture
async def sender(runtime: Runtime) -> AsyncIterator[CallbackSender]:
    callbacks = CallbackSender(runtime)
    try:
        yield callbacks
    finally:
        await callbacks.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    fake = CallbackReceiver()
    with serve_in_thread(fake.app()) as base_url:
        yield fake, base_url
