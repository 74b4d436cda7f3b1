"""The scheduler (``WorkerSet``), its node lock, and the periodic jobs it runs by default."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import FakeClock, TenantFactory
from tidings.config import Settings
from tidings.db.models import Membership, User
from tidings.domain.roles import Role
from tidings.pipeline import jobs
from tidings.pipeline.node_lock import NodeLock, NodeLockBusy
from tidings.pipeline.workers import PeriodicJob, WorkerSet
from tidings.runtime import Runtime
from tidings.services.members import invite_member

DEADLINE = 5.0


@pytest.fixture
async def file_runtime(settings: Settings, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A runtime on an SQLite file of its own (never connected to: the jobs given are fakes)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'workers.db'}"
    runtime = Runtime.build(settings.model_copy(update={"database_url": url}))
    yield runtime
    await runtime.close()


def test_the_default_jobs_and_their_periods(runtime: Runtime) -> None:
    assert [(job.name, job.every_seconds) for job in WorkerSet(runtime).jobs] == [
        ("expire_invitations", 600.0), ("recover_expired_leases", 5.0),
        ("simulator_reports", 0.2), ("expire_overdue", 30.0),
        ("reset_daily_counters", 60.0), ("sweep_unmatched_reports", 3600.0),
        ("apply_late_reports", 5.0), ("store_overdue_inbound_parts", 10.0),
        ("android_privacy_hashing", 10.0)]
    assert WorkerSet(runtime).jobs[0].run is jobs.expire_invitations


async def test_a_job_runs_at_start_then_every_period_until_stopped(
        file_runtime: Runtime) -> None:
    runs: list[Runtime] = []
    third_run = asyncio.Event()

    async def tick(runtime: Runtime) -> None:
        runs.append(runtime)
        if len(runs) == 3:
            third_run.set()

    workers = WorkerSet(file_runtime, [PeriodicJob("tick", 0.01, tick)])
    await workers.start()
    try:
        await asyncio.wait_for(third_run.wait(), DEADLINE)
    finally:
        await workers.stop()
    assert not [task for task in asyncio.all_tasks() if task.get_name() == "job:tick"]
    assert all(runtime is file_runtime for runtime in runs)
    assert not workers.running


async def test_stop_lets_a_running_job_finish_its_transaction_and_starts_no_other(
        file_runtime: Runtime) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def slow(runtime: Runtime) -> None:
        started.set()
        await release.wait()  # a transaction in progress
        finished.append("committed")

    workers = WorkerSet(file_runtime, [PeriodicJob("slow", 0.01, slow)], dispatch=False)
    await workers.start()
    await asyncio.wait_for(started.wait(), DEADLINE)
    stopping = asyncio.create_task(workers.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()  # waiting for the job, not cancelling it
    release.set()
    await asyncio.wait_for(stopping, DEADLINE)

    assert finished == ["committed"]
    assert not workers.running


async def test_a_failing_run_is_logged_and_the_job_runs_again(
        file_runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    attempts = 0
    recovered = asyncio.Event()

    async def flaky(_runtime: Runtime) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("provider down")
        recovered.set()

    workers = WorkerSet(file_runtime, [PeriodicJob("flaky", 0.01, flaky)])
    with caplog.at_level(logging.ERROR, logger="tidings.pipeline.workers"):
        await workers.start()
        try:
            await asyncio.wait_for(recovered.wait(), DEADLINE)
        finally:
            await workers.stop()
    assert "periodic job flaky failed" in caplog.text


async def test_a_second_worker_set_on_one_sqlite_file_refuses_until_the_first_stops(
        file_runtime: Runtime) -> None:
    first, second = WorkerSet(file_runtime, []), WorkerSet(file_runtime, [])
    await first.start()
    try:
        with pytest.raises(NodeLockBusy, match="one worker set per database file"):
            await second.start()
        assert not second.running
    finally:
        await first.stop()
    await second.start()
    await second.stop()


async def test_stop_releases_the_node_lock(file_runtime: Runtime) -> None:
    workers = WorkerSet(file_runtime, [])
    await workers.start()
    await workers.stop()
    await workers.stop()
    lock = NodeLock.for_database(file_runtime.settings.database_url)
    assert lock is not None
    lock.ensure_free()


async def test_on_postgresql_worker_sets_take_no_file_lock(settings: Settings) -> None:
    url = "postgresql+asyncpg://tidings@127.0.0.1:1/never-connected"
    runtime = Runtime.build(settings.model_copy(update={"database_url": url}))
    first, second = WorkerSet(runtime, []), WorkerSet(runtime, [])
    try:
        await first.start()
        await second.start()
        assert first.running
        assert second.running
    finally:
        await first.stop()
        await second.stop()
        await runtime.close()


async def test_expire_invitations_job_deletes_expired_invitations_and_commits(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    async with runtime.sessions() as session:
        for email, hours in (("late@example.com", 1), ("fresh@example.com", 48)):
            await invite_member(session, tenant_id=tenant.tenant_id, inviter_role=Role.OWNER,
                                invited_by=tenant.owner_id, email=email, role=Role.VIEWER,
                                ttl=timedelta(hours=hours), now=clock())
        await session.commit()
    clock.advance(2 * 3600)

    await jobs.expire_invitations(runtime)

    async with runtime.sessions() as session:
        members = await session.execute(
            select(User.email, Membership.status).join(Membership,
                                                       Membership.user_id == User.id)
            .where(Membership.tenant_id == tenant.tenant_id).order_by(User.email))
        assert members.all() == [("fresh@example.com", "pending"),
                                 (tenant.owner_email, "active")]
        gone = await session.execute(select(User).where(User.email == "late@example.com"))
        assert gone.scalar_one_or_none() is None
