"""Shared fixtures: one migrated database per test run (SQLite by default, PostgreSQL when
``TIDINGS_TEST_POSTGRES_URL`` is set), emptied after every test; the app served in-process over
httpx; a clock that tests move by hand; tenants made the way the CLI makes them."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.gateway_processes import ProcessGroups, server_database
from tidings.app import create_app
from tidings.config import Settings
from tidings.db.base import Base
from tidings.db.migrate import upgrade_to_head
from tidings.db.session import create_engine
from tidings.domain.keys import KeyMode
from tidings.domain.roles import Role
from tidings.runtime import Runtime
from tidings.services.api_keys import create_api_key
from tidings.services.tenancy import create_tenant

POSTGRES_URL = os.environ.get("TIDINGS_TEST_POSTGRES_URL")
TEST_SECRET = "test-secret-key-not-for-production"
PASSWORD = "correct horse battery"


class FakeClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.monotonic_now = 1000.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.monotonic_now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.monotonic_now += seconds


@pytest.fixture(scope="session")
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("var")


@pytest.fixture(scope="session")
def database_url(var_dir: Path) -> str:
    return POSTGRES_URL or f"sqlite+aiosqlite:///{var_dir / 'tidings-test.db'}"


@pytest.fixture(scope="session")
async def migrated_database(database_url: str) -> str:
    """The test database at the newest migration (applied once per run, so migrations are
    tested on every run)."""
    engine = create_engine(database_url)
    if engine.dialect.name == "postgresql":
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    await upgrade_to_head(engine)
    await engine.dispose()
    return database_url


async def empty_all_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(table.delete())


@pytest.fixture
def settings(migrated_database: str, var_dir: Path) -> Settings:
    return Settings(database_url=migrated_database, secret_key=TEST_SECRET, var_dir=var_dir)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))


@pytest.fixture
async def runtime(settings: Settings, clock: FakeClock) -> AsyncIterator[Runtime]:
    runtime = Runtime.build(settings, clock, monotonic=clock.monotonic)
    try:
        yield runtime
    finally:
        await empty_all_tables(runtime.engine)
        await runtime.close()


@pytest.fixture
async def app(settings: Settings, runtime: Runtime) -> AsyncIterator[FastAPI]:
    application = create_app(settings, run_workers=False, runtime=runtime)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@dataclass
class TenantHandle:
    """A tenant made as ``tidings tenant create`` makes it: an owner user and an owner API key."""

    tenant_id: str
    owner_id: str
    owner_email: str
    api_key: str
    password: str = PASSWORD
    extra_keys: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


class TenantFactory:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._count = 0

    async def create(self, name: str | None = None, region: str = "US") -> TenantHandle:
        self._count += 1
        email = f"owner{self._count}-{id(self)}@example.com"
        async with self._runtime.sessions() as session:
            made = await create_tenant(session, name=name or f"Tenant {self._count}",
                                       owner_email=email, owner_password=PASSWORD,
                                       region=region, currency="USD",
                                       now=self._runtime.clock())
            key = await create_api_key(session, tenant_id=made.tenant.id, role=Role.OWNER,
                                       mode=KeyMode.LIVE, name="owner key",
                                       created_by=made.owner.id, now=self._runtime.clock())
            await session.commit()
        return TenantHandle(made.tenant.id, made.owner.id, email, key.secret)

    async def key(self, tenant: TenantHandle, role: Role,
                  mode: KeyMode = KeyMode.LIVE) -> dict[str, str]:
        """Headers carrying a new API key of ``role`` for ``tenant``."""
        async with self._runtime.sessions() as session:
            key = await create_api_key(session, tenant_id=tenant.tenant_id, role=role, mode=mode,
                                       name=f"{role.value} key", created_by=None,
                                       now=self._runtime.clock())
            await session.commit()
        return {"Authorization": f"Bearer {key.secret}"}


@pytest.fixture
def tenants(runtime: Runtime) -> TenantFactory:
    return TenantFactory(runtime)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[ProcessGroups]:
    """Programs an end-to-end test starts as real processes; all killed when it ends."""
    started = ProcessGroups(tmp_path)
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def server_database_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database for a ``tidings serve`` the test starts: a file under ``<tmp>/var``, or
    a scratch PostgreSQL database named after the test module, dropped afterwards."""
    purpose = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    yield from server_database(tmp_path, POSTGRES_URL, purpose)
