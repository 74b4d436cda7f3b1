"""The periodic jobs of the scheduler (``WorkerSet``) and the list it runs by default.

A job is a unit of work like an API request: it opens one session, calls services, and commits
once. Jobs must be safe to run late, twice, or on several nodes at once: on PostgreSQL every
worker node runs them until the pipeline issue adds an advisory lock so that one node does (see
``pipeline.node_lock``).

    expire_invitations         every 10 minutes  deletes invitations past their expiry
    recover_expired_leases     every 5 seconds   requeues messages a dead worker held
    simulator_reports          every 0.2 seconds applies the simulator's due reports
    expire_overdue             every 30 seconds  expires queued messages past their validity
    reset_daily_counters       every 60 seconds  zeroes app counters at the tenant's midnight
    sweep_unmatched_reports    every hour        drops reports that never found their message
    apply_late_reports         every 5 seconds   applies reports stored as unmatched while their
                                                 message's provider id was being recorded
    store_overdue_inbound_parts every 10 seconds stores long inbound messages whose missing
                                                 parts did not come within a minute
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.runtime import Runtime
from tidings.services import members, reports, sms_upkeep
from tidings.services.android import hashing

log = logging.getLogger(__name__)

Job = Callable[[Runtime], Awaitable[None]]

INVITATION_SWEEP_SECONDS = 600.0


@dataclass(frozen=True)
class PeriodicJob:
    """``run`` is called when the workers start, then every ``every_seconds``."""

    name: str
    every_seconds: float
    run: Job


async def expire_invitations(runtime: Runtime) -> None:
    """Delete every tenant's expired invitations (``services.members.expire_invitations``)."""
    async with runtime.write_turn, runtime.sessions() as session:
        expired = await members.expire_invitations(session, runtime.clock())
        await session.commit()
    if expired:
        log.info("expired %d invitation(s)", expired)


def _upkeep(name: str, use_case: Callable[[AsyncSession, datetime], Awaitable[int]]) -> Job:
    async def run(runtime: Runtime) -> None:
        async with runtime.write_turn, runtime.sessions() as session:
            count = await use_case(session, runtime.clock())
            await session.commit()
        if count:
            log.log(logging.DEBUG if name == "simulator_reports" else logging.INFO,
                    "%s: %d message(s)", name, count)
    return run


def default_jobs() -> list[PeriodicJob]:
    """The jobs ``WorkerSet`` runs when it is given none."""
    return [
        PeriodicJob("expire_invitations", INVITATION_SWEEP_SECONDS, expire_invitations),
        PeriodicJob("recover_expired_leases", 5.0,
                    _upkeep("recover_expired_leases", sms_upkeep.recover_expired_leases)),
        PeriodicJob("simulator_reports", 0.2,
                    _upkeep("simulator_reports", sms_upkeep.deliver_simulator_reports)),
        PeriodicJob("expire_overdue", 30.0,
                    _upkeep("expire_overdue", sms_upkeep.expire_overdue)),
        PeriodicJob("reset_daily_counters", 60.0,
                    _upkeep("reset_daily_counters", sms_upkeep.reset_daily_counters)),
        PeriodicJob("sweep_unmatched_reports", 3600.0,
                    _upkeep("sweep_unmatched_reports", sms_upkeep.sweep_unmatched_reports)),
        PeriodicJob("apply_late_reports", 5.0,
                    _upkeep("apply_late_reports", sms_upkeep.apply_late_reports)),
        PeriodicJob("store_overdue_inbound_parts", 10.0,
                    _upkeep("store_overdue_inbound_parts", reports.store_overdue_inbound_parts)),
        PeriodicJob("android_privacy_hashing", 10.0,
                    _upkeep("android_privacy_hashing", hashing.hash_processed_messages)),
    ]
