"""Callback URL safety: which URLs are well formed, which addresses count as internal, and when
``check_callback_url`` refuses a URL for where it points. A fake resolver stands in for DNS, so no
test touches the network."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

import pytest

from tidings.services.callback_urls import (
    MAX_URL_LENGTH,
    UnsafeCallbackUrl,
    check_callback_url,
    check_url_syntax,
    is_internal_address,
    resolve_with_system,
)


@dataclass
class FakeResolver:
    """DNS as a dict: a name it does not know fails as the system resolver does."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    calls: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.answers[host]


PUBLIC_DNS = {"hooks.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]}

# --- syntax --------------------------------------------------------------------------------------

LONGEST_URL = "https://example.com/" + "a" * (MAX_URL_LENGTH - len("https://example.com/"))

WELL_FORMED = [
    pytest.param("https://hooks.example.com/tidings", "https://hooks.example.com/tidings",
                 id="https"),
    pytest.param("http://hooks.example.com:8080/cb?tenant=1#x",
                 "http://hooks.example.com:8080/cb?tenant=1#x", id="http with port and query"),
    pytest.param("  https://hooks.example.com/cb \n", "https://hooks.example.com/cb",
                 id="surrounding whitespace stripped"),
    pytest.param("HTTPS://Hooks.Example.COM/", "HTTPS://Hooks.Example.COM/",
                 id="scheme is case-insensitive, URL kept as given"),
    pytest.param("https://hooks.example.com./cb", "https://hooks.example.com./cb",
                 id="fully qualified name"),
    pytest.param("https://xn--bcher-kva.example/cb", "https://xn--bcher-kva.example/cb",
                 id="international name in xn-- form"),
    pytest.param("http://93.184.216.34:65535/", "http://93.184.216.34:65535/",
                 id="IPv4 literal, highest port"),
    pytest.param("http://[2606:2800:220:1:248:1893:25c8:1946]/cb",
                 "http://[2606:2800:220:1:248:1893:25c8:1946]/cb", id="IPv6 literal"),
    pytest.param("https://hooks.example.com/cb?sig=%2Fabc", "https://hooks.example.com/cb?sig=%2Fabc",
                 id="percent-encoding outside the host"),
    pytest.param(LONGEST_URL, LONGEST_URL, id="exactly MAX_URL_LENGTH"),
]

MALFORMED = [
    pytest.param("", "callback_url is empty", id="empty"),
    pytest.param(" \t ", "callback_url is empty", id="only whitespace"),
    pytest.param(LONGEST_URL + "a", "longer than 2048 characters", id="one character too long"),
    pytest.param("ftp://example.com/cb", "must be an http or https URL", id="ftp"),
    pytest.param("javascript:alert(1)", "must be an http or https URL", id="javascript"),
    pytest.param("file:///etc/passwd", "must be an http or https URL", id="file"),
    pytest.param("hooks.example.com/cb", "must be an http or https URL", id="no scheme"),
    pytest.param("//hooks.example.com/cb", "must be an http or https URL", id="scheme-relative"),
    pytest.param("https:///cb", "has no host", id="empty host"),
    pytest.param("http://:8080/cb", "has no host", id="port without host"),
    pytest.param("https://alice:s3cret@example.com/", "must not contain credentials",
                 id="user and password"),
    pytest.param("https://alice@example.com/", "must not contain credentials", id="user only"),
    pytest.param("http://example.com\\@127.0.0.1/", "must not contain credentials",
                 id="backslash trick"),
    pytest.param("https://example.com/a b", "whitespace or control", id="space"),
    pytest.param("https://exam\tple.com/", "whitespace or control", id="tab urlsplit drops"),
    pytest.param("https://example.com/\r\nX-Injected: 1", "whitespace or control", id="CRLF"),
    pytest.param("https://example.com/\x00", "whitespace or control", id="NUL"),
    pytest.param("https://example.com/a\x85b", "whitespace or control", id="C1 control"),
    pytest.param("https://example.com/a\u2028b", "whitespace or control", id="line separator"),
    pytest.param("https://example.com:0/", "port must be a number from 1 to 65535", id="port 0"),
    pytest.param("https://example.com:65536/", "port must be a number from 1 to 65535",
                 id="port too high"),
    pytest.param("https://example.com:https/", "port must be a number from 1 to 65535",
                 id="port not a number"),
    pytest.param("http://[::1/", "is not a valid URL", id="unclosed bracket"),
    pytest.param("http://[v1.fe]/", "not a valid host name or IP address", id="IPvFuture"),
    pytest.param("http://%31%32%37.0.0.1/", "not a valid host name or IP address",
                 id="percent-encoded host"),
    pytest.param("http://127.0.0.1\\.example.com/", "not a valid host name or IP address",
                 id="backslash in host"),
    pytest.param("http://a..example.com/", "not a valid host name or IP address",
                 id="empty label"),
    pytest.param("https://bücher.example/", "must be ASCII", id="international name"),
    pytest.param("http://１２７.0.0.1/", "must be ASCII", id="fullwidth digits"),
]


@pytest.mark.parametrize(("url", "expected"), WELL_FORMED)
def test_a_well_formed_url_passes_syntax_stripped(url: str, expected: str) -> None:
    assert check_url_syntax(url) == expected


@pytest.mark.parametrize(("url", "message"), MALFORMED)
def test_a_malformed_url_is_refused_with_its_problem_named(url: str, message: str) -> None:
    with pytest.raises(UnsafeCallbackUrl, match="^callback_url ") as refused:
        check_url_syntax(url)

    assert message in str(refused.value)


@pytest.mark.parametrize("url", [
    pytest.param("https://alice:s3cret@example.com/cb", id="well formed otherwise"),
    pytest.param("ftp://alice:s3cret@example.com/", id="bad scheme too"),
    pytest.param("https://alice:s3cret@[::1/", id="unparseable too"),
    pytest.param("https://alice:s3cret@example.com:99999/", id="bad port too"),
    pytest.param("https://alice:s3cret@exam ple.com/", id="whitespace too"),
])
def test_a_refusal_never_repeats_credentials_from_the_url(url: str) -> None:
    with pytest.raises(UnsafeCallbackUrl) as refused:
        check_url_syntax(url)

    assert "alice" not in str(refused.value)
    assert "s3cret" not in str(refused.value)


# --- internal addresses --------------------------------------------------------------------------

ADDRESSES = [
    ("127.0.0.1", True),  # loopback
    ("10.1.2.3", True),  # private
    ("172.16.0.1", True),
    ("192.168.1.1", True),
    ("169.254.169.254", True),  # link-local: cloud metadata
    ("100.64.0.1", True),  # shared address space (carrier-grade NAT)
    ("100.127.255.255", True),
    ("0.0.0.0", True),  # unspecified
    ("224.0.0.1", True),  # multicast
    ("255.255.255.255", True),  # broadcast
    ("240.0.0.1", True),  # reserved
    ("192.0.2.1", True),  # documentation: not global
    ("::1", True),
    ("::", True),
    ("fe80::1", True),
    ("fe80::1%eth0", True),
    ("fc00::1", True),  # unique local
    ("fec0::1", True),  # site-local
    ("ff02::1", True),  # multicast
    ("2001:db8::1", True),  # documentation
    ("::ffff:127.0.0.1", True),  # IPv4-mapped loopback
    ("::ffff:10.0.0.5", True),
    ("::7f00:1", True),  # IPv4-compatible (deprecated) loopback
    ("64:ff9b::a00:5", True),  # NAT64 of 10.0.0.5
    ("64:ff9b:1::808:808", True),  # local-use NAT64 prefix
    ("2002:7f00:1::1", True),  # 6to4 of 127.0.0.1
    ("2002:a9fe:a9fe::1", True),  # 6to4 of 169.254.169.254
    ("93.184.216.34", False),
    ("8.8.8.8", False),
    ("100.128.0.1", False),  # just past the shared address space
    ("2606:2800:220:1:248:1893:25c8:1946", False),
    ("::ffff:8.8.8.8", False),  # IPv4-mapped public address
    ("64:ff9b::808:808", False),  # NAT64 of 8.8.8.8, as DNS64 answers on IPv6-only hosts
    ("2002:808:808::1", False),  # 6to4 of 8.8.8.8
]


@pytest.mark.parametrize(("address", "internal"), ADDRESSES)
def test_whether_an_address_counts_as_internal(address: str, internal: bool) -> None:
    assert is_internal_address(ipaddress.ip_address(address)) is internal


# --- check_callback_url --------------------------------------------------------------------------


async def test_a_name_with_only_public_addresses_passes_stripped() -> None:
    resolver = FakeResolver(PUBLIC_DNS)

    url = await check_callback_url(" https://hooks.example.com/cb ", allow_private=False,
                                   resolve=resolver)

    assert url == "https://hooks.example.com/cb"


@pytest.mark.parametrize(("url", "asked"), [
    pytest.param("https://hooks.example.com/cb", ("hooks.example.com", 443), id="https"),
    pytest.param("http://hooks.example.com/cb", ("hooks.example.com", 80), id="http"),
    pytest.param("https://hooks.example.com:8443/cb", ("hooks.example.com", 8443), id="port"),
    pytest.param("https://HOOKS.example.com./cb", ("hooks.example.com", 443),
                 id="case and final dot"),
])
async def test_the_resolver_is_asked_for_the_host_and_port(url: str,
                                                           asked: tuple[str, int]) -> None:
    resolver = FakeResolver(PUBLIC_DNS)

    await check_callback_url(url, allow_private=False, resolve=resolver)

    assert resolver.calls == [asked]


async def test_a_public_ip_literal_passes_without_resolving() -> None:
    resolver = FakeResolver()

    url = await check_callback_url("http://93.184.216.34/cb", allow_private=False,
                                   resolve=resolver)

    assert (url, resolver.calls) == ("http://93.184.216.34/cb", [])


REFUSED = [
    pytest.param("https://internal.example.com/cb", {"internal.example.com": ["10.0.0.5"]},
                 "host internal.example.com resolves to a private or loopback address "
                 "(10.0.0.5)", id="name resolving to a private address"),
    pytest.param("https://mixed.example.com/cb",
                 {"mixed.example.com": ["93.184.216.34", "192.168.1.7"]},
                 "resolves to a private or loopback address (192.168.1.7)",
                 id="name with one public and one private address"),
    pytest.param("https://v6.example.com/cb", {"v6.example.com": ["93.184.216.34", "::1"]},
                 "resolves to a private or loopback address (::1)", id="name with IPv6 loopback"),
    pytest.param("http://127.0.0.1/cb", {}, "points at a private or loopback address (127.0.0.1)",
                 id="IPv4 loopback literal"),
    pytest.param("http://169.254.169.254/latest/meta-data/", {},
                 "points at a private or loopback address (169.254.169.254)",
                 id="cloud metadata literal"),
    pytest.param("http://[::1]:8080/cb", {}, "points at a private or loopback address (::1)",
                 id="IPv6 loopback literal"),
    pytest.param("http://[::ffff:127.0.0.1]/cb", {},
                 "points at a private or loopback address (::ffff:7f00:1)",
                 id="IPv4-mapped loopback literal"),
    pytest.param("http://127.1/cb", {}, "points at a private or loopback address (127.0.0.1)",
                 id="short IPv4 literal"),
    pytest.param("http://2130706433/cb", {},
                 "points at a private or loopback address (127.0.0.1)", id="decimal IPv4 literal"),
    pytest.param("http://0x7F.0.0.1/cb", {}, "points at a private or loopback address (127.0.0.1)",
                 id="hex IPv4 literal"),
    pytest.param("http://127.0.0.1./cb", {}, "points at a private or loopback address (127.0.0.1)",
                 id="IPv4 literal with final dot"),
    pytest.param("https://nowhere.example.com/cb", {}, "host nowhere.example.com does not resolve",
                 id="resolver raises gaierror"),
    pytest.param("https://empty.example.com/cb", {"empty.example.com": []},
                 "host empty.example.com does not resolve", id="resolver returns nothing"),
    pytest.param("https://odd.example.com/cb", {"odd.example.com": ["not-an-address"]},
                 "resolves to something that is not an IP address", id="resolver returns junk"),
]


@pytest.mark.parametrize(("url", "dns", "message"), REFUSED)
async def test_a_url_reaching_an_internal_or_unknown_address_is_refused(
        url: str, dns: dict[str, list[str]], message: str) -> None:
    with pytest.raises(UnsafeCallbackUrl) as refused:
        await check_callback_url(url, allow_private=False, resolve=FakeResolver(dns))

    assert message in str(refused.value)


@pytest.mark.parametrize("url", [
    "http://10.0.0.5/cb",
    "https://internal.example.com/cb",
    "http://localhost/cb",
])
async def test_an_internal_refusal_names_the_setting_that_allows_it(url: str) -> None:
    resolver = FakeResolver({"internal.example.com": ["10.0.0.5"]})

    with pytest.raises(UnsafeCallbackUrl,
                       match="; set TIDINGS_CALLBACK_ALLOW_PRIVATE_NETWORKS=true to allow it$"):
        await check_callback_url(url, allow_private=False, resolve=resolver)


@pytest.mark.parametrize(("url", "host"), [
    ("http://localhost:8080/x", "localhost"),
    ("http://LOCALHOST/x", "localhost"),
    ("http://localhost./x", "localhost"),
    ("http://api.localhost/x", "api.localhost"),
])
async def test_localhost_names_are_refused_without_resolving(url: str, host: str) -> None:
    resolver = FakeResolver({"localhost": ["93.184.216.34"], "api.localhost": ["93.184.216.34"]})

    with pytest.raises(UnsafeCallbackUrl, match=f"host {host} is a loopback name"):
        await check_callback_url(url, allow_private=False, resolve=resolver)

    assert resolver.calls == []


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/cb",
    "http://[::1]/cb",
    "http://localhost:8080/cb",
    "https://internal.example.com/cb",
])
async def test_allow_private_lets_internal_urls_through_without_resolving(url: str) -> None:
    resolver = FakeResolver({"internal.example.com": ["10.0.0.5"]})

    assert await check_callback_url(url, allow_private=True, resolve=resolver) == url
    assert resolver.calls == []


async def test_allow_private_still_checks_syntax() -> None:
    with pytest.raises(UnsafeCallbackUrl, match="must be an http or https URL"):
        await check_callback_url("ftp://127.0.0.1/cb", allow_private=True)


async def test_the_system_resolver_returns_address_strings() -> None:
    # A numeric host is parsed, not looked up: no DNS, no network.
    assert await resolve_with_system("127.0.0.1", 80) == ["127.0.0.1"]
