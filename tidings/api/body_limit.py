"""Refuse request bodies over ``TIDINGS_MAX_REQUEST_BYTES`` before they are read or spooled.

A declared ``Content-Length`` over the limit answers 413 at once. A body without one (chunked) is
counted as it arrives and cut off at the limit with ``PayloadTooLarge`` (413): the endpoint
never runs, so nothing is written. Without this, a client could make the server spool a huge
upload to disk before authentication even runs.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.api.errors import error_response
from tidings.errors import PayloadTooLarge


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = error_response(413, f"request body is larger than {self.max_bytes} "
                                           "bytes", "payload_too_large",
                                      request=Request(scope))  # each surface's error shape
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLarge(f"request body is larger than {self.max_bytes} "
                                          "bytes")
            return message

        await self.app(scope, counting_receive, send)
