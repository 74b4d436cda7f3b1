"""The periodic jobs of the scheduler (``WorkerSet``) and the list it runs by default.

A job is a unit of work like an API request: it opens one session, calls services, and commits
once. Jobs must be safe to run late, twice, or on several nodes at once: on PostgreSQL every
worker node runs them until the pipeline issue adds an advisory lock so that one node does (see
``pipeline.node_lock``).

    expire_invitations   every 10 minutes   deletes invitations past their expiry
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tidings.runtime import Runtime
from tidings.services import members

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
    async with runtime.sessions() as session:
        expired = await members.expire_invitations(session, runtime.clock())
        await session.commit()
    if expired:
        log.info("expired %d invitation(s)", expired)


def default_jobs() -> list[PeriodicJob]:
    """The jobs ``WorkerSet`` runs when it is given none."""
    return [PeriodicJob("expire_invitations", INVITATION_SWEEP_SECONDS, expire_invitations)]
