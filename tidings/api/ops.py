"""Operations endpoints: ``GET /health`` (checks the database) and ``GET /metrics``
(Prometheus text), plus the middleware that counts and times every request by route."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.api.deps import RuntimeDep
from tidings.db.session import database_problem

router = APIRouter(tags=["operations"])


@router.get("/health", summary="Liveness and database check")
async def health(runtime: RuntimeDep) -> JSONResponse:
    problem = await database_problem(runtime.engine)
    if problem is not None:
        return JSONResponse({"status": "unavailable", "database": problem}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(runtime: RuntimeDep) -> Response:
    return Response(generate_latest(runtime.metrics), media_type=CONTENT_TYPE_LATEST)


class RequestMetrics:
    """ASGI middleware: ``tidings_http_requests_total`` and ``..._duration_seconds`` by method,
    route template (not raw path, so ids do not explode the label set) and status."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter("tidings_http_requests", "HTTP requests handled",
                                ["method", "route", "status"], registry=registry)
        self.duration = Histogram("tidings_http_request_duration_seconds",
                                  "HTTP request duration", ["method", "route"],
                                  registry=registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.requests.labels(scope["method"], route, str(status)).inc()
            self.duration.labels(scope["method"], route).observe(time.perf_counter() - started)
