"""What one running Tidings process shares: settings, the database engine and session factory,
the token issuer, the rate limiters, the clock and the metrics registry. Built by the app's
lifespan (or a worker), handed down explicitly; nothing here exists at import time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tidings.config import Settings, parse_rate
from tidings.db.session import create_engine, create_session_factory
from tidings.domain.clock import Clock, utc_now
from tidings.pipeline.rate_limits import LocalRateLimiter, RateLimiter, RedisRateLimiter
from tidings.services.tokens import TokenIssuer


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    tokens: TokenIssuer
    api_limiter: RateLimiter
    login_limiter: RateLimiter
    clock: Clock
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)

    @classmethod
    def build(cls, settings: Settings, clock: Clock = utc_now,
              metrics: CollectorRegistry | None = None,
              monotonic: Callable[[], float] = time.monotonic) -> Runtime:
        """Everything a process needs; ``monotonic`` drives in-memory rate limits (tests)."""
        engine = create_engine(settings.database_url)

        def limiter(rate_text: str, name: str) -> RateLimiter:
            rate, period = parse_rate(rate_text)
            if settings.redis_url:
                return RedisRateLimiter.from_url(settings.redis_url, rate, period,
                                                 prefix=f"tidings:ratelimit:{name}:")
            return LocalRateLimiter(rate, period, monotonic)

        return cls(
            settings=settings,
            engine=engine,
            sessions=create_session_factory(engine),
            tokens=TokenIssuer(settings.require_secret_key(), clock,
                               timedelta(seconds=settings.access_token_ttl_seconds),
                               timedelta(seconds=settings.refresh_token_ttl_seconds)),
            api_limiter=limiter(settings.api_rate_limit, "api"),
            login_limiter=limiter(settings.login_rate_limit, "login"),
            clock=clock,
            metrics=metrics or CollectorRegistry(),
        )

    async def close(self) -> None:
        await self.api_limiter.close()
        await self.login_limiter.close()
        await self.engine.dispose()
