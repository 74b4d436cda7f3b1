"""The callback sender's resolver (``pipeline.public_resolver``): the addresses its HTTP client
connects to are vetted as they are resolved, so a DNS answer that turns internal after the URL
was checked (DNS rebinding) reaches nothing."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from tests.fakes.callback_receiver import CallbackReceiver
from tests.fakes.server import serve_in_thread
from tidings.pipeline.http_transport import dispatch_client
from tidings.pipeline.public_resolver import InternalAddressResolved, PublicAddressResolver

TENANT_HOST = "hooks.tenant.example"


class ScriptedDns(AbstractResolver):
    """A DNS server that answers every name with ``addresses``."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host=address, port=port,
                              family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                              proto=0, flags=socket.AI_NUMERICHOST)
                for address in self.addresses]

    async def close(self) -> None:
        pass


@pytest.mark.parametrize("answers", [
    ("127.0.0.1",), ("10.1.2.3",), ("192.168.0.10",), ("169.254.169.254",), ("::1",),
    ("::ffff:127.0.0.1",), ("fd00::1",), ("100.64.0.1",),
    ("93.184.216.34", "10.0.0.1"),  # one internal answer among public ones is enough
])
async def test_a_name_with_an_internal_address_does_not_resolve(answers: tuple[str, ...]) -> None:
    resolver = PublicAddressResolver(ScriptedDns(*answers))

    with pytest.raises(InternalAddressResolved, match="private or loopback"):
        await resolver.resolve(TENANT_HOST, 443)


@pytest.mark.parametrize("answers", [("93.184.216.34",), ("2606:2800:220:1::1",),
                                     ("93.184.216.34", "2606:2800:220:1::1")])
async def test_a_name_with_only_public_addresses_resolves_to_them(
        answers: tuple[str, ...]) -> None:
    resolver = PublicAddressResolver(ScriptedDns(*answers))

    found = await resolver.resolve(TENANT_HOST, 443)

    assert [answer["host"] for answer in found] == list(answers)


@pytest.fixture
def receiver_port() -> Iterator[tuple[CallbackReceiver, int]]:
    fake = CallbackReceiver()
    with serve_in_thread(fake.app()) as base_url:
        yield fake, int(base_url.rsplit(":", 1)[1])


async def test_a_name_rebound_to_loopback_is_not_connected_to(
        receiver_port: tuple[CallbackReceiver, int]) -> None:
    fake, port = receiver_port
    url = f"http://{TENANT_HOST}:{port}/hooks"
    unvetted = dispatch_client(5, resolver=lambda: ScriptedDns("127.0.0.1"))
    vetted = dispatch_client(5, resolver=lambda: PublicAddressResolver(ScriptedDns("127.0.0.1")))
    try:
        reached = await unvetted.post(url, content=b"{}")  # the scripted DNS is in effect
        with pytest.raises(httpx.ConnectError, match="private or loopback"):
            await vetted.post(url, content=b"{}")
    finally:
        await unvetted.aclose()
        await vetted.aclose()

    assert reached.status_code == 200
    assert len(fake.requests) == 1
