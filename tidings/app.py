"""``create_app(settings)``: the ASGI app. Its lifespan builds the ``Runtime`` (engine, token
issuer, buckets) and, unless told not to, starts the background workers in the same process;
nothing is created at import time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from tidings import __version__
from tidings.api import ops
from tidings.api.android import router as android_router
from tidings.api.body_limit import BodyLimit
from tidings.api.errors import install_error_handlers
from tidings.api.native import router as native_router
from tidings.api.native.sms_webhooks import WebhookLane
from tidings.api.openapi import install_openapi
from tidings.api.slugs import router as slug_router
from tidings.config import Settings
from tidings.domain.clock import Clock, utc_now
from tidings.pipeline.device_events import device_event_hub
from tidings.pipeline.ingest import MessageIngest
from tidings.pipeline.report_ingest import ReportIngest
from tidings.pipeline.wakes import WakeWriter
from tidings.pipeline.workers import WorkerSet
from tidings.runtime import Runtime
from tidings.services.sms_send import SendPreparer, store_messages


def create_app(settings: Settings, *, run_workers: bool = True, clock: Clock = utc_now,
               runtime: Runtime | None = None,
               worker_wakes: WakeWriter | None = None) -> FastAPI:
    """The Tidings app. Pass ``runtime`` to share one with the caller (tests, benchmarks).

    ``run_workers`` runs the workers in this process; ``worker_wakes`` tells a worker process
    instead (``tidings serve``'s child) when messages or callbacks are committed."""
    metrics = runtime.metrics if runtime is not None else CollectorRegistry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_runtime = runtime is None
        app.state.runtime = runtime or Runtime.build(settings, clock, metrics)
        workers = WorkerSet(app.state.runtime) if run_workers else None
        wake_dispatcher = (workers.wake_dispatcher if workers
                           else worker_wakes.dispatcher if worker_wakes else None)
        wake_callbacks = (workers.wake_callbacks if workers
                          else worker_wakes.callbacks if worker_wakes else None)
        app.state.send_preparer = SendPreparer(app.state.runtime.read_sessions,
                                               app.state.runtime.send_cache)
        app.state.ingest = MessageIngest(app.state.runtime.sessions, store_messages,
                                         app.state.runtime.clock, on_commit=wake_dispatcher,
                                         write_turn=app.state.runtime.write_turn)
        app.state.report_ingest = ReportIngest(
            app.state.runtime.sessions, app.state.runtime.clock,
            on_commit=wake_callbacks,
            write_turn=app.state.runtime.write_turn)
        # Phones' live events; ``draining`` ends their streams when the server stops.
        app.state.device_events = device_event_hub(settings.redis_url)
        app.state.draining = asyncio.Event()
        try:
            await app.state.device_events.start()
            if workers is not None:
                await workers.start()  # NodeLockBusy when another process has the workers
            app.state.ingest.start()
            app.state.report_ingest.start()
            yield
        finally:
            app.state.draining.set()
            await app.state.device_events.close()
            await app.state.ingest.stop()
            await app.state.report_ingest.stop()
            if workers is not None:
                await workers.stop()
            if own_runtime:
                await app.state.runtime.close()

    # FastAPI's built-in OpenTelemetry hooks are off: Tidings exports Prometheus metrics
    # (/metrics), and the hooks cost time on every request even when nothing is configured.
    app = FastAPI(title="Tidings", version=__version__, lifespan=lifespan,
                  description="Self-hosted, multi-tenant messaging gateway.",
                  telemetry={"tracing": False, "metrics": False, "logs": False,
                             "operation_spans": False})
    install_error_handlers(app)
    install_openapi(app)
    app.include_router(native_router)
    app.include_router(android_router)
    app.include_router(slug_router)
    app.include_router(ops.router)
    app.add_middleware(WebhookLane)  # innermost: inside the body limit and the metrics
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(ops.RequestMetrics, registry=metrics)
    return app
