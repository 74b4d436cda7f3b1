"""The callback sender's DNS resolver: it vets the addresses the HTTP client connects to.

``services.callback_urls`` checks a callback URL's host before each delivery, but the HTTP client
resolves the name again to connect, and a DNS server may answer differently the second time
(DNS rebinding: public when checked, 127.0.0.1 when used). With this resolver in the client's
connector, the addresses the client connects to are the ones vetted here: a name any of whose
addresses is internal (``is_internal_address``) does not resolve at all. IP literals never reach
a resolver; ``check_callback_url`` refuses internal ones before the request is made. aiohttp
caches the answers for its DNS TTL (10 s), so a busy receiver costs one lookup a while, not one
a callback.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from tidings.services.callback_urls import is_internal_address


class InternalAddressResolved(OSError):
    """A callback host resolved to an internal address: no connection is made."""


class PublicAddressResolver(AbstractResolver):
    """Answers what ``inner`` (aiohttp's default resolver unless given) answers, or raises
    ``InternalAddressResolved`` when any of those addresses is internal."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        for answer in answers:
            address = ipaddress.ip_address(answer["host"])
            if is_internal_address(address):
                raise InternalAddressResolved(  # errno and text: aiohttp shows the text
                    errno.EACCES, f"{host} resolves to a private or loopback address "
                    f"({address}); set TIDINGS_CALLBACK_ALLOW_PRIVATE_NETWORKS=true to allow it")
        return answers

    async def close(self) -> None:
        await self._inner.close()
