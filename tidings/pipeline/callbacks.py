"""The callback sender: delivers queued callbacks (``callback_deliveries``) to tenants' URLs.

The sender claims due deliveries (``record_and_claim``): a delivery is due at its
``next_attempt_at`` unless an earlier delivery of the same message to the same URL is still
pending, so one message's callbacks reach a receiver in order, however long it was down.
Claiming moves ``next_attempt_at`` to the end of a lease (``TIDINGS_LEASE_SECONDS``): a sender
that dies leaves its deliveries due again, never lost. Each delivery is POSTed with its stored
body, signed (``signing_headers``: HMAC with its webhook endpoint's secret, a JWT with its
service profile's ``api_secret``, or, for a send's own ``callback_url``, HMAC with the tenant's
secret) and carrying ``X-Tidings-Event-Id``; up to ``TIDINGS_CALLBACK_WINDOW`` are in flight
at once, and finished attempts are recorded in the transaction that claims their successors.

Any 2xx delivers it. Anything else (another status, a timeout after
``TIDINGS_CALLBACK_TIMEOUT_SECONDS``, a connection error, a URL that now resolves to an internal
address) is a failed attempt: it is tried again after ``retry_delay_seconds`` (base
``TIDINGS_CALLBACK_RETRY_BASE_SECONDS``, doubling, capped at
``TIDINGS_CALLBACK_RETRY_CAP_SECONDS``) until ``TIDINGS_CALLBACK_MAX_AGE_SECONDS`` after it was
queued, when it ends ``failed``. Redirects are not followed (a redirect is a failed attempt).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal, cast

import httpx
from sqlalchemy import Select, Table, and_, bindparam, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from tidings.config import Settings
from tidings.db.models import CallbackDelivery, ServiceProfile, WebhookEndpoint
from tidings.domain.callbacks import (
    bearer_header,
    callback_jwt,
    gives_up,
    hmac_headers,
    retry_delay_seconds,
)
from tidings.domain.crypto import DecryptionError, SecretBox
from tidings.domain.ids import new_id
from tidings.pipeline.http_transport import dispatch_client
from tidings.pipeline.public_resolver import PublicAddressResolver
from tidings.runtime import Runtime
from tidings.services.callback_queue import DELIVERED, FAILED, PENDING
from tidings.services.callback_urls import UnsafeCallbackUrl, check_callback_target
from tidings.services.service_profiles import open_api_secret
from tidings.services.webhooks import open_secret, tenant_signing_secret

log = logging.getLogger(__name__)

EVENT_ID_HEADER: Final = "X-Tidings-Event-Id"
EVENT_HEADER: Final = "X-Tidings-Event"
USER_AGENT: Final = "Tidings-Callbacks/1"
IDLE_POLL_SECONDS: Final = 0.5
RESULT_HOLD_SECONDS: Final = 0.05
OPENED_SECRETS_KEPT: Final = 10_000

OpenedSecrets = dict[tuple[str, str], str]
"""Decrypted signing secrets by (owner id, sealed value), kept by a sender."""
MAX_ERROR_CHARS: Final = 500


@dataclass(frozen=True)
class Signing:
    kind: Literal["hmac", "jwt"]
    secret: str = field(repr=False)


@dataclass(frozen=True)
class ClaimedDelivery:
    """What sending one delivery needs, read when it was claimed."""

    id: int
    tenant_id: str
    event_id: str
    event: str
    url: str
    method: str
    body: str
    signing: Signing | None
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class AttemptResult:
    delivery: ClaimedDelivery
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def record_and_claim(runtime: Runtime, finished: Sequence[AttemptResult], now: datetime,
                           limit: int, opened: OpenedSecrets | None = None
                           ) -> list[ClaimedDelivery]:
    """Write the outcomes of ``finished`` attempts, then claim up to ``limit`` due deliveries,
    oldest first, leasing each (module docstring); one write transaction for both, so a busy
    sender takes the database's write lock once per exchange, not twice."""
    if not finished and (limit <= 0 or not await _anything_due(runtime, now)):
        return []  # a read keeps an idle sender off the write turn (woken by every commit)
    async with runtime.write_turn, runtime.sessions() as session:
        await _record_outcomes(session, runtime.settings, finished, now)
        rows = (await session.execute(_due_query(runtime, now, limit))).all() if limit else []
        if rows:
            lease_end = now + timedelta(seconds=runtime.settings.lease_seconds)
            await session.execute(update(CallbackDelivery)
                                  .where(CallbackDelivery.id.in_([row[0].id for row in rows]))
                                  .values(next_attempt_at=lease_end)
                                  .execution_options(synchronize_session=False))
        tenant_secrets = {
            tenant_id: await tenant_signing_secret(session, runtime.secret_box, tenant_id)
            for tenant_id in {row[0].tenant_id for row in rows
                              if row[0].endpoint_id is None and row[0].profile_id is None}}
        await session.commit()
    return [ClaimedDelivery(
        id=delivery.id, tenant_id=delivery.tenant_id, event_id=delivery.event_id,
        event=delivery.event, url=delivery.url, method=delivery.method, body=delivery.body,
        signing=_signing(runtime, opened if opened is not None else {}, delivery,
                         endpoint_secret, profile_secret, tenant_secrets),
        attempts=delivery.attempts, created_at=delivery.created_at)
        for delivery, endpoint_secret, profile_secret in rows]


async def _anything_due(runtime: Runtime, now: datetime) -> bool:
    async with runtime.read_sessions() as reads:
        found = await reads.execute(select(CallbackDelivery.id).where(
            CallbackDelivery.state == PENDING, CallbackDelivery.next_attempt_at <= now).limit(1))
        return found.first() is not None


def _due_query(runtime: Runtime, now: datetime, limit: int
               ) -> Select[CallbackDelivery, str, str | None]:
    """Pending deliveries due now with their signing secrets, oldest first, skipping any
    behind an earlier pending delivery of the same message to the same URL."""
    earlier = aliased(CallbackDelivery)
    waiting_behind = exists().where(and_(
        earlier.message_id == CallbackDelivery.message_id, earlier.url == CallbackDelivery.url,
        earlier.state == PENDING, earlier.id < CallbackDelivery.id))
    query = (select(CallbackDelivery, WebhookEndpoint.secret, ServiceProfile.api_secret)
             .outerjoin(WebhookEndpoint, WebhookEndpoint.id == CallbackDelivery.endpoint_id)
             .outerjoin(ServiceProfile, ServiceProfile.id == CallbackDelivery.profile_id)
             .where(CallbackDelivery.state == PENDING,
                    CallbackDelivery.next_attempt_at <= now, ~waiting_behind)
             .order_by(CallbackDelivery.next_attempt_at, CallbackDelivery.id).limit(limit))
    if runtime.engine.dialect.name == "postgresql":
        query = query.with_for_update(of=CallbackDelivery, skip_locked=True)
    return query


def _signing(runtime: Runtime, opened: OpenedSecrets, delivery: CallbackDelivery,
             endpoint_secret: str | None, profile_secret: str | None,
             tenant_secrets: dict[str, str]) -> Signing | None:
    """How to sign ``delivery``: HMAC with its endpoint's secret, a JWT with its profile's
    ``api_secret``, HMAC with the tenant's secret (a send's own ``callback_url``: neither
    endpoint nor profile), or not at all (a profile without a secret)."""
    try:
        if delivery.endpoint_id is not None and endpoint_secret is not None:
            return Signing("hmac", _opened(runtime, opened, open_secret, delivery.endpoint_id,
                                           endpoint_secret))
        if delivery.profile_id is not None and profile_secret is not None:
            return Signing("jwt", _opened(runtime, opened, open_api_secret, delivery.profile_id,
                                          profile_secret))
    except DecryptionError:
        log.error("callback %s: its signing secret cannot be decrypted (TIDINGS_SECRET_KEY "
                  "changed?); sent unsigned", delivery.id)
        return None
    if delivery.endpoint_id is None and delivery.profile_id is None:
        return Signing("hmac", tenant_secrets[delivery.tenant_id])
    return None


def _opened(runtime: Runtime, opened: OpenedSecrets,
            open_sealed: Callable[[SecretBox, str, str], str], owner_id: str,
            sealed: str) -> str:
    """A signing secret, decrypted once per sealed value (a changed secret is a new value)."""
    key = (owner_id, sealed)
    plain = opened.get(key)
    if plain is None:
        if len(opened) >= OPENED_SECRETS_KEPT:
            opened.clear()
        plain = opened[key] = open_sealed(runtime.secret_box, owner_id, sealed)
    return plain


def signing_headers(delivery: ClaimedDelivery, body: bytes, now: datetime) -> dict[str, str]:
    """``X-Tidings-Timestamp`` and ``X-Tidings-Signature`` (HMAC), or ``Authorization: Bearer``
    with a JWT whose ``jti`` is new on every try; nothing for an unsigned delivery."""
    if delivery.signing is None:
        return {}
    seconds = int(now.timestamp())
    if delivery.signing.kind == "hmac":
        return hmac_headers(delivery.signing.secret, body, seconds)
    return bearer_header(callback_jwt(delivery.signing.secret, tenant_id=delivery.tenant_id,
                                      jti=new_id(), now_seconds=seconds))


async def attempt_delivery(runtime: Runtime, client: httpx.AsyncClient,
                           delivery: ClaimedDelivery) -> AttemptResult:
    """Send ``delivery`` once; never raises for the receiver's or the network's faults."""
    try:
        check_callback_target(delivery.url,
                              allow_private=runtime.settings.callback_allow_private_networks)
    except UnsafeCallbackUrl as exc:
        return AttemptResult(delivery, None, str(exc))
    body = delivery.body.encode()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               EVENT_ID_HEADER: delivery.event_id, EVENT_HEADER: delivery.event}
    headers |= signing_headers(delivery, body, runtime.clock())
    try:
        response = await client.request(delivery.method, delivery.url, content=body,
                                        headers=headers)
    except httpx.TimeoutException:
        return AttemptResult(delivery, None,
                             f"no answer within {runtime.settings.callback_timeout_seconds:g} s")
    except httpx.HTTPError as exc:
        return AttemptResult(delivery, None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
    error = None if 200 <= response.status_code < 300 else f"answered {response.status_code}"
    return AttemptResult(delivery, response.status_code, error)


async def _record_outcomes(session: AsyncSession, settings: Settings,
                           results: Sequence[AttemptResult], now: datetime) -> None:
    """Write each attempt's outcome: delivered, due again after its backoff, or failed; one
    statement per shape of change, not per delivery."""
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for result in results:
        attempts = result.delivery.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_status_code": result.status_code,
                                  "last_error": result.error, "updated_at": now}
        if result.delivered:
            values |= {"state": DELIVERED, "next_attempt_at": None, "completed_at": now}
        elif gives_up(result.delivery.created_at, now, settings.callback_max_age_seconds):
            values |= {"state": FAILED, "next_attempt_at": None, "completed_at": now}
        else:
            delay = retry_delay_seconds(attempts, base_seconds=settings.callback_retry_base_seconds,
                                        cap_seconds=settings.callback_retry_cap_seconds)
            values["next_attempt_at"] = now + timedelta(seconds=delay)
        by_shape[tuple(sorted(values))].append({"_id": result.delivery.id, **values})
    table = cast(Table, CallbackDelivery.__table__)
    for columns, rows in by_shape.items():
        await session.execute(
            update(table).where(table.c.id == bindparam("_id"), table.c.state == PENDING)
            .values({column: bindparam(column) for column in columns}), rows)


class CallbackSender:
    """Keeps up to ``TIDINGS_CALLBACK_WINDOW`` deliveries in flight until ``stop()``.

    Outcomes are written as they gather, together with the claim that refills the window
    (``record_and_claim``), once half the window has finished or ``RESULT_HOLD_SECONDS``
    after the first finished, whichever is sooner: a steady stream costs one write
    transaction per half window, and a slow receiver holds back only its own deliveries."""

    def __init__(self, runtime: Runtime, client: httpx.AsyncClient | None = None) -> None:
        self.runtime = runtime
        self.delivered = 0
        self.failed_attempts = 0
        self._client = client
        self._owns_client = client is None
        self._stopping = False
        self._wake = asyncio.Event()
        self._opened: OpenedSecrets = {}

    def wake(self) -> None:
        """Deliveries may be due: look now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Stop claiming; ``run`` ends once the deliveries in flight are sent and recorded."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        window = self.runtime.settings.callback_window
        in_flight: set[asyncio.Task[AttemptResult]] = set()
        finished: list[AttemptResult] = []
        look = True  # the database may hold due deliveries: claim as soon as there is room
        try:
            while True:
                room = 0 if self._stopping else window - len(in_flight)
                if finished or (look and room):
                    self._wake.clear()
                    try:
                        claimed = await self._exchange(finished, room)
                    except Exception:
                        log.exception("callback sender: recording or claiming failed; "
                                      "retrying shortly")
                        await asyncio.sleep(IDLE_POLL_SECONDS)
                        continue
                    finished = []
                    look = 0 < room == len(claimed)  # a full claim: more may be due
                    in_flight.update(asyncio.create_task(
                        attempt_delivery(self.runtime, self._http(), delivery))
                        for delivery in claimed)
                if in_flight:
                    look = look or self._wake.is_set()
                    self._wake.clear()
                    results = await self._gather_finished(in_flight, window)
                    finished += results
                    look = look or not results or self._wake.is_set()  # polled, or woken
                elif self._stopping and not finished:
                    return
                elif not look:
                    await self._woken_within(IDLE_POLL_SECONDS)
                    look = True
        finally:
            for task in in_flight:
                task.cancel()
            await self.close()

    async def _gather_finished(self, in_flight: set[asyncio.Task[AttemptResult]],
                               window: int) -> list[AttemptResult]:
        """Wait for attempts to finish (half the window, or all of them, or
        ``RESULT_HOLD_SECONDS`` after the first); removes and answers them. Answers early,
        perhaps with none, when woken or after ``IDLE_POLL_SECONDS``: there may be room to
        fill."""
        waiting: set[asyncio.Future[Any]] = set(in_flight)
        woken = None if self._stopping else asyncio.ensure_future(self._wake.wait())
        if woken is not None:
            waiting.add(woken)
        try:
            await asyncio.wait(waiting, timeout=IDLE_POLL_SECONDS,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            if woken is not None:
                woken.cancel()
        done = {task for task in in_flight if task.done()}
        results = [task.result() for task in done]
        in_flight.difference_update(done)
        if not results:
            return results
        loop = asyncio.get_running_loop()
        hold_until = loop.time() + RESULT_HOLD_SECONDS
        while in_flight and len(in_flight) > window // 2 and (left := hold_until - loop.time()) > 0:
            done, _ = await asyncio.wait(in_flight, timeout=left,
                                         return_when=asyncio.FIRST_COMPLETED)
            results += [task.result() for task in done]
            in_flight.difference_update(done)
        return results

    async def _woken_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _exchange(self, finished: list[AttemptResult], room: int
                        ) -> list[ClaimedDelivery]:
        claimed = await record_and_claim(self.runtime, finished, self.runtime.clock(), room,
                                         self._opened)
        self._count(finished)
        return claimed

    def _count(self, results: Sequence[AttemptResult]) -> None:
        for result in results:
            if result.delivered:
                self.delivered += 1
            else:
                self.failed_attempts += 1
                # Not the URL: a tenant may have put a token in its query.
                log.info("callback %s (%s) not delivered: %s", result.delivery.id,
                         result.delivery.event, result.error)

    async def close(self) -> None:
        """Close the HTTP client this sender made (``run`` does it when it ends)."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            settings = self.runtime.settings
            self._client = dispatch_client(
                settings.callback_timeout_seconds,
                resolver=None if settings.callback_allow_private_networks
                else PublicAddressResolver)
        return self._client

    async def deliver_due(self) -> int:
        """One round, for tests and tools: claim a window of due deliveries, send them all,
        record their outcomes; answers how many were claimed."""
        claimed = await self._exchange([], self.runtime.settings.callback_window)
        results = await asyncio.gather(*(attempt_delivery(self.runtime, self._http(), delivery)
                                         for delivery in claimed))
        if results:
            await self._exchange(list(results), 0)
        return len(claimed)
