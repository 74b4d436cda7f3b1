"""Callback URL safety: the checks that keep tenant-registered callback URLs from turning the
gateway into a tool for server-side request forgery.

A callback URL must be an absolute http(s) URL of at most ``MAX_URL_LENGTH`` characters, with a
host, a port from 1 to 65535, no whitespace or control characters and no ``user:password@``
(credentials do not belong in a URL we log and list). Its host is a bracketed IPv6 address or an
ASCII name or IPv4 address (an international name is written in its ``xn--`` form), so that our
parser and the HTTP client cannot read two different hosts out of one string.

Unless the operator sets ``TIDINGS_CALLBACK_ALLOW_PRIVATE_NETWORKS=true`` (``allow_private``),
the host must not be, nor resolve to, an internal address (``is_internal_address``); the names
``localhost`` and ``*.localhost`` are refused without asking DNS, and the legacy IPv4 spellings
the C resolver accepts (``127.1``, ``0x7f.0.0.1``, ``2130706433``) are read as the addresses they
are. Run ``check_callback_url`` at registration and again before each delivery: DNS answers
change.

The check alone does not pin the address it vetted: an HTTP client that resolves the name again
could be sent elsewhere by a DNS server that answers differently the second time (DNS
rebinding). The callback sender therefore runs ``check_callback_target`` (no DNS) before each
delivery and connects through ``pipeline.public_resolver``, which vets the very addresses it
connects to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import unicodedata
from collections.abc import Awaitable, Callable
from typing import TypeAlias
from urllib.parse import SplitResult, urlsplit

MAX_URL_LENGTH = 2048

Resolver: TypeAlias = Callable[[str, int], Awaitable[list[str]]]
"""``resolve(host, port)``: the IP address strings ``host`` resolves to. It raises ``OSError``
(``socket.gaierror``) or returns ``[]`` when the name does not resolve."""

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

_DEFAULT_PORTS = {"http": 80, "https": 443}
_ALLOW_HINT = "set TIDINGS_CALLBACK_ALLOW_PRIVATE_NETWORKS=true to allow it"
_HOST_NAME_RE = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
_LEGACY_IPV4_RE = re.compile(r"[0-9a-fx.]+")
_SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")


class UnsafeCallbackUrl(ValueError):
    """A callback URL we refuse; ``str()`` explains why in words a tenant can act on and never
    repeats credentials from the URL."""


def check_url_syntax(url: str) -> str:
    """``url`` stripped of surrounding whitespace, when it is a well-formed http(s) callback URL
    (see the module docstring). Raises ``UnsafeCallbackUrl`` naming the first problem found."""
    url = url.strip()
    if not url:
        raise UnsafeCallbackUrl("callback_url is empty")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeCallbackUrl(f"callback_url is longer than {MAX_URL_LENGTH} characters")
    # Before urlsplit, which silently drops tabs and newlines.
    if any(char.isspace() or unicodedata.category(char) == "Cc" for char in url):
        raise UnsafeCallbackUrl("callback_url must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise UnsafeCallbackUrl("callback_url is not a valid URL") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise UnsafeCallbackUrl("callback_url must be an http or https URL")
    if "@" in parts.netloc:
        raise UnsafeCallbackUrl("callback_url must not contain credentials (user:password@)")
    if not parts.hostname:
        raise UnsafeCallbackUrl("callback_url has no host")
    _check_host(parts)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is not None and not 1 <= port <= 65535:
        raise UnsafeCallbackUrl("callback_url port must be a number from 1 to 65535")
    return url


def is_internal_address(address: IPAddress) -> bool:
    """Whether ``address`` is one a callback must not reach: loopback, private, link-local,
    multicast, reserved, unspecified, shared (100.64.0.0/10), site-local or otherwise not global.
    IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4) are judged by that address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_internal_address(embedded)
        if address.is_site_local or address in _NAT64_LOCAL_USE:
            return True
        if address.sixtofour is not None and is_internal_address(address.sixtofour):
            return True
    elif address in _SHARED_ADDRESS_SPACE:
        return True
    # ``not is_global`` also catches documentation, benchmarking and Teredo ranges.
    return (address.is_private or address.is_loopback or address.is_link_local
            or address.is_multicast or address.is_reserved or address.is_unspecified
            or not address.is_global)


def check_callback_target(url: str, *, allow_private: bool) -> str:
    """``check_callback_url`` without asking DNS: ``url`` stripped, when its syntax is sound
    and, unless ``allow_private``, its host is neither a loopback name nor an internal IP
    literal. The callback sender runs this before each delivery and vets a name's addresses
    as it connects (``pipeline.public_resolver``)."""
    url = check_url_syntax(url)
    if allow_private:
        return url
    host = (urlsplit(url).hostname or "").removesuffix(".")
    if host == "localhost" or host.endswith(".localhost"):
        raise UnsafeCallbackUrl(f"callback_url host {host} is a loopback name; {_ALLOW_HINT}")
    literal = _ip_literal(host)
    if literal is not None and is_internal_address(literal):
        raise UnsafeCallbackUrl(f"callback_url points at a private or loopback address "
                                f"({literal}); {_ALLOW_HINT}")
    return url


async def check_callback_url(url: str, *, allow_private: bool,
                             resolve: Resolver | None = None) -> str:
    """``url`` stripped, when it is safe to POST callbacks to: ``check_callback_target``, then,
    unless ``allow_private``, its host is no name any of whose addresses is internal (names go
    to ``resolve``, by default the system resolver). Raises ``UnsafeCallbackUrl``, also when
    the name does not resolve."""
    url = check_callback_target(url, allow_private=allow_private)
    if allow_private:
        return url
    parts = urlsplit(url)
    host = (parts.hostname or "").removesuffix(".")
    if _ip_literal(host) is not None:
        return url
    try:
        answers = await (resolve or resolve_with_system)(
            host, parts.port or _DEFAULT_PORTS[parts.scheme])
    except (OSError, UnicodeError):  # UnicodeError: the IDNA codec refusing a label
        answers = []
    if not answers:
        raise UnsafeCallbackUrl(f"callback_url host {host} does not resolve")
    for answer in answers:
        try:
            address = ipaddress.ip_address(answer)
        except ValueError:
            raise UnsafeCallbackUrl(
                f"callback_url host {host} resolves to something that is not an IP address"
            ) from None
        if is_internal_address(address):
            raise UnsafeCallbackUrl(f"callback_url host {host} resolves to a private or loopback "
                                    f"address ({address}); {_ALLOW_HINT}")
    return url


async def resolve_with_system(host: str, port: int) -> list[str]:
    """The default ``Resolver``: the IPv4 and IPv6 addresses the operating system's resolver
    gives for ``host``. Raises ``socket.gaierror`` when it gives none."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos
            if info[0] in (socket.AF_INET, socket.AF_INET6)]


def _check_host(parts: SplitResult) -> None:
    """Refuse a host our parser and an HTTP client might read differently: anything but a
    bracketed IPv6 address or an ASCII name made of letters, digits, ``-``, ``_`` and dots."""
    hostname = parts.hostname or ""
    if parts.netloc.startswith("["):
        try:
            valid = isinstance(ipaddress.ip_address(hostname), ipaddress.IPv6Address)
        except ValueError:
            valid = False
    elif not hostname.isascii():
        raise UnsafeCallbackUrl("callback_url host must be ASCII; write an international "
                                "domain name in its xn-- form")
    else:
        valid = _HOST_NAME_RE.fullmatch(hostname) is not None
    if not valid:
        raise UnsafeCallbackUrl("callback_url host is not a valid host name or IP address")


def _ip_literal(host: str) -> IPAddress | None:
    """The address ``host`` spells, or None when it is a name; besides the standard forms, the
    legacy IPv4 spellings ``inet_aton`` accepts (``127.1``), which resolvers treat as numbers."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4_RE.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped (``::ffff:a.b.c.d``) or well-known-prefix NAT64
    (``64:ff9b::a.b.c.d``) address reaches, else None."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None
