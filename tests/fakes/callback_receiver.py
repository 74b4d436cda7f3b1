"""A tenant's callback receiver on 127.0.0.1: records every request it gets, byte for byte, and
answers as scripted (a status per request in order, then 200; or a delay before answering).

Tests read ``requests`` and verify signatures themselves; the code under test only sees an HTTP
server.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass(frozen=True)
class ReceivedCallback:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class CallbackReceiver:
    requests: list[ReceivedCallback] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    """Answers for the next requests, in order; 200 once they run out."""
    delays: list[float] = field(default_factory=list)
    """Seconds to wait before answering the next requests, in order."""

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._receive,
                                       methods=["POST", "PATCH", "PUT"])])

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append(ReceivedCallback(request.method, request.url.path,
                                              {k.lower(): v for k, v in request.headers.items()},
                                              body))
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        status = self.statuses.pop(0) if self.statuses else 200
        return Response(b"ok" if status < 300 else b"nope", status_code=status)
