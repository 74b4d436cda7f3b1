"""What one running Tidings process shares: settings, the database engine and session factories
(``sessions`` for work that writes, ``read_sessions`` for reads that must not queue behind the
SQLite writer, ``write_turn`` for the background writers), the token issuer, the rate limiters
and send budgets, the credentials box, the shared HTTP client for providers, the clock and the
metrics registry. Built by the app's lifespan (or a worker), handed down explicitly; nothing
here exists at import time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tidings.config import Settings, parse_rate
from tidings.db.session import create_engine, create_session_factory
from tidings.db.write_turn import LOCK_SUFFIX, FileWriteTurn, sqlite_file
from tidings.domain.clock import Clock, utc_now
from tidings.domain.crypto import SecretBox
from tidings.domain.ttl_cache import TtlCache
from tidings.pipeline.http_transport import dispatch_client
from tidings.pipeline.rate_limits import LocalRateLimiter, RateLimiter, RedisRateLimiter
from tidings.pipeline.send_budget import LocalSendBudget, RedisSendBudget, SendBudget
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
    read_engine: AsyncEngine
    read_sessions: async_sessionmaker[AsyncSession]
    secret_box: SecretBox
    send_budget: SendBudget
    http: httpx.AsyncClient
    monotonic: Callable[[], float] = time.monotonic
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)
    auth_cache: TtlCache[Any] = field(init=False)
    send_cache: TtlCache[Any] = field(init=False)
    write_turn: AbstractAsyncContextManager[Any] = field(init=False)
    """Held by this process's background writers (ingest, dispatcher, jobs) around each write
    transaction. On SQLite, with one writer per file, they queue here in turn instead of
    sleeping in SQLite's busy handler while another commits, and, for a database file, in
    turn with the other processes' writers too (``db.write_turn``: serve and its worker
    process); on PostgreSQL it holds nothing back."""

    def __post_init__(self) -> None:
        # Hot-path lookups may be this stale: a revoked key keeps working on a node for at most
        # TIDINGS_AUTH_CACHE_SECONDS; an app change reaches sends as quickly.
        ttl = self.settings.auth_cache_seconds
        self.auth_cache = TtlCache(ttl, self.monotonic)
        self.send_cache = TtlCache(ttl, self.monotonic)
        database_file = sqlite_file(self.settings.database_url)
        self.write_turn = (FileWriteTurn(Path(str(database_file) + LOCK_SUFFIX))
                           if database_file is not None
                           else asyncio.Lock() if self.engine.dialect.name == "sqlite"
                           else _NoTurn())

    @classmethod
    def build(cls, settings: Settings, clock: Clock = utc_now,
              metrics: CollectorRegistry | None = None,
              monotonic: Callable[[], float] = time.monotonic) -> Runtime:
        """Everything a process needs; ``monotonic`` drives in-memory rate limits (tests)."""
        engine = create_engine(settings.database_url)
        read_engine = (create_engine(settings.database_url, readers=True)
                       if settings.is_sqlite else engine)

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
            read_engine=read_engine,
            read_sessions=create_session_factory(read_engine),
            secret_box=SecretBox(settings.secret_keys()),
            send_budget=(RedisSendBudget.from_url(settings.redis_url) if settings.redis_url
                         else LocalSendBudget(monotonic)),
            http=dispatch_client(settings.send_timeout_seconds),
            monotonic=monotonic,
            metrics=metrics or CollectorRegistry(),
        )

    async def close(self) -> None:
        await self.api_limiter.close()
        await self.login_limiter.close()
        await self.send_budget.close()
        await self.http.aclose()
        if isinstance(self.write_turn, FileWriteTurn):
            self.write_turn.close()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
        await self.engine.dispose()


class _NoTurn:
    """``write_turn`` where the database takes concurrent writers (PostgreSQL)."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_exc: object) -> None:
        return None
