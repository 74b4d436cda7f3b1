"""An ``httpx`` transport that sends through ``aiohttp``'s client.

Providers are written against ``httpx.AsyncClient`` (its request and response types are the
clearest to build and test against), but httpcore's connection pool spends more CPU than the
whole rest of a send when dozens of requests are in flight: it re-checks every pooled socket with
system calls each time a request is queued or finished. aiohttp's pool does not, so the
dispatcher's shared client uses this transport and sends several times more messages per core.

The mapping keeps httpx's contract: the request goes out as built (method, URL, headers, body),
the answer comes back as an ``httpx.Response`` with its body read, and aiohttp's failures become
the httpx exceptions the providers map to outcomes (timeouts to ``httpx.TimeoutException``
subclasses, connection failures to ``httpx.ConnectError``, broken answers to
``httpx.RemoteProtocolError``, anything else on the wire to ``httpx.ReadError``). Redirects are
not followed (the client decides). Timeouts come from the request's ``timeout`` extension, as
httpx sets it.

``DispatchClient`` trims the client side the same way: ``httpx.AsyncClient.request`` merges base
URLs, cookies and default headers, runs the auth and redirect machinery and event hooks, and
wraps the answer's stream, about a third of a send's CPU in the dispatcher. The dispatcher uses
none of that, so a plain request (no base URL, cookies, files or per-request overrides; no auth
or Basic auth) is built and handed to the transport directly; anything else takes httpx's own
path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver

from tidings import __version__

USE_CLIENT_DEFAULT: Any = httpx.USE_CLIENT_DEFAULT
_DEFAULTED = type(httpx.USE_CLIENT_DEFAULT)  # httpx's "argument not given" marker
PARSED_URLS_KEPT = 1024


class AiohttpTransport(httpx.AsyncBaseTransport):
    """``httpx.AsyncBaseTransport`` over one lazily created ``aiohttp.ClientSession``."""

    def __init__(self, *, max_connections: int = 0, max_per_host: int = 0,
                 keepalive_seconds: float = 30.0,
                 resolver: Callable[[], AbstractResolver] | None = None) -> None:
        self._limits = (max_connections, max_per_host, keepalive_seconds)
        self._resolver = resolver  # made with the session, inside the running loop
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            total, per_host, keepalive = self._limits
            connector = aiohttp.TCPConnector(
                limit=total, limit_per_host=per_host, keepalive_timeout=keepalive,
                resolver=self._resolver() if self._resolver is not None else None)
            # No cookies, and no headers of aiohttp's own choosing (it would label an empty
            # body application/octet-stream): the request's headers are httpx's.
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=True, skip_auto_headers=("User-Agent", "Content-Type"))
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None, connect=timeouts.get("connect"), sock_read=timeouts.get("read"),
            sock_connect=timeouts.get("connect"))
        body = request.content if request.method not in ("GET", "HEAD") else None
        try:
            async with self._client().request(
                    request.method, str(request.url),
                    headers=[(name.decode("latin-1"), value.decode("latin-1"))
                             for name, value in request.headers.raw],
                    data=body, allow_redirects=False, timeout=timeout,
                    compress=None, auto_decompress=True) as answer:
                content = await answer.read()
                headers: list[tuple[bytes, bytes]] = [
                    (name, value) for name, value in answer.raw_headers
                    if name.lower() not in (b"content-encoding", b"transfer-encoding")]
                return httpx.Response(answer.status, headers=headers, content=content,
                                      request=request,
                                      extensions={"http_version": b"HTTP/1.1"})
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise _timeout(exc, request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ServerDisconnectedError as exc:
            raise httpx.RemoteProtocolError(str(exc) or "server disconnected",
                                            request=request) from exc
        except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            raise httpx.UnsupportedProtocol(str(exc), request=request) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _timeout(exc: BaseException, request: httpx.Request) -> httpx.TimeoutException:
    text = str(exc) or "timed out"
    if "connect" in text.lower():
        return httpx.ConnectTimeout(text, request=request)
    return httpx.ReadTimeout(text, request=request)


class DispatchClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` whose plain requests skip httpx's client machinery (see the
    module docstring); what goes on the wire is what ``httpx.AsyncClient`` would send."""

    def __init__(self, *, transport: httpx.AsyncBaseTransport, timeout_seconds: float) -> None:
        super().__init__(transport=transport, timeout=httpx.Timeout(timeout_seconds),
                         follow_redirects=False,
                         headers={"User-Agent": f"tidings/{__version__}"})
        self._plain_transport = transport
        self._plain_headers = dict(self.headers)
        self._plain_timeout = self.timeout.as_dict()
        self._urls: dict[str, httpx.URL] = {}

    async def request(
        self, method: str, url: httpx.URL | str, *, content: Any = None, data: Any = None,
        files: Any = None, json: Any = None, params: Any = None, headers: Any = None,
        cookies: Any = None, auth: Any = USE_CLIENT_DEFAULT,
        follow_redirects: Any = USE_CLIENT_DEFAULT, timeout: Any = USE_CLIENT_DEFAULT,
        extensions: Any = None,
    ) -> httpx.Response:
        plain = (files is None and cookies is None and extensions is None
                 and isinstance(follow_redirects, _DEFAULTED)
                 and isinstance(timeout, _DEFAULTED) and not self.cookies
                 and (auth is None or isinstance(auth, _DEFAULTED | tuple | httpx.BasicAuth))
                 and (headers is None or isinstance(headers, dict)))
        if not plain:
            return await super().request(
                method, url, content=content, data=data, files=files, json=json, params=params,
                headers=headers, cookies=cookies, auth=auth, follow_redirects=follow_redirects,
                timeout=timeout, extensions=extensions)
        if self.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        merged = self._plain_headers if not headers else {
            **self._plain_headers, **{name.lower(): value for name, value in headers.items()}}
        request = httpx.Request(method, self._parsed(url), params=params, headers=merged,
                                content=content, data=data, json=json,
                                extensions={"timeout": self._plain_timeout})
        if isinstance(auth, tuple):
            auth = httpx.BasicAuth(*auth)
        if isinstance(auth, httpx.BasicAuth):
            request = next(auth.auth_flow(request))  # Basic auth only sets the header
        return await self._plain_transport.handle_async_request(request)

    def _parsed(self, url: httpx.URL | str) -> httpx.URL:
        """``url`` parsed once: a provider calls the same few URLs over and over, and httpx's
        URL parsing (host checks included) was a tenth of a send. URLs are immutable."""
        if isinstance(url, httpx.URL):
            return url
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= PARSED_URLS_KEPT:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed


def dispatch_client(timeout_seconds: float, *,
                    resolver: Callable[[], AbstractResolver] | None = None) -> httpx.AsyncClient:
    """The shared client providers send through (see the module docstring); ``resolver``
    makes the DNS resolver its connections use (the callback sender's vets addresses)."""
    return DispatchClient(transport=AiohttpTransport(resolver=resolver),
                          timeout_seconds=timeout_seconds)

