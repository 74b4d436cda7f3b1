"""What one running Tidings process shares: settings, the database engine and session factory,
the token issuer, rate-limit buckets, the clock and the metrics registry. Built by the app's
lifespan (or a worker), handed down explicitly; nothing here exists at import time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tidings.config import Settings
from tidings.db.session import create_engine, create_session_factory
from tidings.domain.clock import Clock, utc_now
from tidings.pipeline.throttle import TokenBuckets
from tidings.services.tokens import TokenIssuer


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    tokens: TokenIssuer
    api_buckets: TokenBuckets
    clock: Clock
    monotonic: Callable[[], float] = time.monotonic
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)

    @classmethod
    def build(cls, settings: Settings, clock: Clock = utc_now,
              metrics: CollectorRegistry | None = None) -> Runtime:
        engine = create_engine(settings.database_url)
        rate, period = settings.api_rate
        return cls(
            settings=settings,
            engine=engine,
            sessions=create_session_factory(engine),
            tokens=TokenIssuer(settings.require_secret_key(), clock,
                               timedelta(seconds=settings.access_token_ttl_seconds),
                               timedelta(seconds=settings.refresh_token_ttl_seconds)),
            api_buckets=TokenBuckets(rate, period),
            clock=clock,
            metrics=metrics or CollectorRegistry(),
        )

    async def close(self) -> None:
        await self.engine.dispose()
