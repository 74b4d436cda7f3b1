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
"""

from __future__ import annotations

import aiohttp
import httpx


class AiohttpTransport(httpx.AsyncBaseTransport):
    """``httpx.AsyncBaseTransport`` over one lazily created ``aiohttp.ClientSession``."""

    def __init__(self, *, max_connections: int = 0, max_per_host: int = 0,
                 keepalive_seconds: float = 30.0) -> None:
        self._limits = (max_connections, max_per_host, keepalive_seconds)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            total, per_host, keepalive = self._limits
            connector = aiohttp.TCPConnector(limit=total, limit_per_host=per_host,
                                             keepalive_timeout=keepalive)
            # No cookies, no automatic headers beyond what the request carries.
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=True, skip_auto_headers=("User-Agent",))
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


def dispatch_client(timeout_seconds: float) -> httpx.AsyncClient:
    """The shared client providers send through (see the module docstring)."""
    return httpx.AsyncClient(transport=AiohttpTransport(), timeout=httpx.Timeout(timeout_seconds),
                             follow_redirects=False)

