"""Crash recovery, for real: ``tidings serve`` is killed with SIGKILL in the middle of a
5,000-message run against the fake Twilio, restarted on the same port and database, and every
message the API acknowledged still reaches the provider and ends ``delivered``; none is lost.

Every program runs as its own process on 127.0.0.1, as an operator would run them:

    python -m tests.fakes.twilio --status-callbacks   takes the creates (answering after 200 ms,
                                                      a real provider's latency), then POSTs
                                                      signed ``sent`` and ``delivered`` callbacks
                                                      to the app's DLR webhook (retrying while
                                                      the gateway is down)
    tidings serve (workers on)                        the gateway, killed once and restarted
    tidings tenant create --json                      the first tenant and its API key

The client sends over HTTP with 32 requests in flight. Once 2,500 sends are acknowledged it kills
the server; the requests in flight then fail (but for answers already on their way) and, never
acknowledged, do not count. It restarts the server at once and sends the rest, then waits until
nothing is ``queued``, ``sending`` or ``sent`` (awaiting its report) and checks, through the API
and the fake's own message list (``GET .../Messages.json``):

- every acknowledged message is stored and ``delivered``, and no stored message is left behind;
- every acknowledged message reached the fake at least once. Delivery is at-least-once: the
  messages the killed worker held (claimed, outcome not recorded) go back to the queue when
  their lease runs out, and those it had already handed to the fake are sent again. At most two
  dispatch windows (``TIDINGS_DISPATCH_WINDOW``; ``UNRECORDED_WINDOWS`` in the dispatcher) are
  held, so at most that many are sent twice, and only messages with "lease expired" in their
  history are.

With ``TIDINGS_TEST_POSTGRES_URL`` set, the server gets a scratch database of its own on that
server (created and dropped here); the test is skipped when PostgreSQL refuses to create one.
It prints what it saw (``pytest -s``): acknowledged before the kill, in flight at the kill,
requeued, duplicates, time to restart and to drain.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from tests.cli.processes import clean_env, free_port, run_tidings
from tests.gateway_processes import Gateway, ProcessGroups, answers, count_in_state, until
from tidings.pipeline.dispatcher import UNRECORDED_WINDOWS

ROOT = Path(__file__).resolve().parent.parent
TWILIO_SID = "AC" + "c0ffee00" * 4
TWILIO_TOKEN = "5ec12e7" + "0" * 25
TWILIO_NUMBER = "+15005550006"
TOTAL = 5_000
KILL_AFTER = 2_500
CONCURRENCY = 32
WINDOW = 64  # TIDINGS_DISPATCH_WINDOW: sends one app may have awaiting the provider
HELD_AT_MOST = UNRECORDED_WINDOWS * WINDOW  # claimed, outcome not recorded: what a kill strands
LEASE_SECONDS = 10  # short, for a quick recovery after the kill; never reached mid-send
PROVIDER_DELAY_MS = 200  # a real provider's latency: the kill finds sends in flight
CALLBACK_ATTEMPTS = 40  # the fake's status callbacks outlast a restart (minutes of retries)
START_SECONDS = 60.0
DRAIN_SECONDS = 180.0
PENDING_STATES = ("queued", "sending", "sent")
FINAL_STATES = frozenset({"delivered", "failed", "expired", "cancelled"})
LEASE_EXPIRED = "lease expired (worker stopped mid-send)"


def phone(n: int) -> str:
    return f"+1415{2_000_000 + n:07d}"


def text(n: int) -> str:
    """Message ``n``'s text: unique, so the fake's creates can be matched to the sends."""
    return f"crash test message {n}"


# --- the send run --------------------------------------------------------------------------------


@dataclass
class SendRun:
    """What the client saw: ``accepted`` maps message number to the id answered with 201."""

    accepted: dict[int, str] = field(default_factory=dict)
    unacknowledged: list[int] = field(default_factory=list)  # in flight when the server died
    unexpected: list[str] = field(default_factory=list)  # any other failure or non-201
    accepted_before_kill: int = 0
    in_flight_at_kill: int = 0
    started_at: float = field(default_factory=time.monotonic)
    killed_at: float = 0.0
    restarted_at: float = 0.0
    finished_at: float = 0.0


async def send_with_a_crash(gateway: Gateway, headers: dict[str, str]) -> SendRun:
    """POST messages 0..TOTAL-1 with ``CONCURRENCY`` requests in flight; after ``KILL_AFTER``
    acknowledgements SIGKILL the gateway, restart it at once and send the rest to the new run."""
    run = SendRun()
    numbers = iter(range(TOTAL))
    serving = asyncio.Event()
    serving.set()
    in_flight = 0
    killed = False
    clients = [_client(gateway), _client(gateway)]  # before and after the kill
    restarts: list[asyncio.Task[None]] = []

    async def restart() -> None:
        try:
            await gateway.start()
            run.restarted_at = time.monotonic()
        finally:
            serving.set()  # if it failed, the senders finish (failing) and its error is raised

    def kill() -> None:
        nonlocal killed
        killed = True
        serving.clear()
        run.accepted_before_kill = len(run.accepted)
        run.in_flight_at_kill = in_flight
        gateway.kill()
        run.killed_at = time.monotonic()
        restarts.append(asyncio.create_task(restart()))

    async def sender() -> None:
        nonlocal in_flight
        while True:
            await serving.wait()
            n = next(numbers, None)
            if n is None:
                return
            sent_before_kill = not killed
            in_flight += 1
            try:
                answer = await clients[0 if sent_before_kill else 1].post(
                    "/sms/v1/messages/", headers=headers, json={"phone": phone(n), "text": text(n)})
            except httpx.TransportError as exc:
                if sent_before_kill and killed:
                    run.unacknowledged.append(n)
                else:
                    run.unexpected.append(f"message {n}: {exc!r}")
                continue
            finally:
                in_flight -= 1
            if answer.status_code != 201:
                run.unexpected.append(f"message {n}: {answer.status_code} {answer.text}")
                continue
            run.accepted[n] = answer.json()["id"]
            if not killed and len(run.accepted) >= KILL_AFTER:
                kill()

    try:
        await asyncio.gather(*(sender() for _ in range(CONCURRENCY)))
        await asyncio.gather(*restarts)
    finally:
        for client in clients:
            await client.aclose()
    run.finished_at = time.monotonic()
    return run


def _client(gateway: Gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gateway.base_url, timeout=60,
                             limits=httpx.Limits(max_connections=CONCURRENCY))


# --- reading the outcome -------------------------------------------------------------------------


async def stored_messages(http: httpx.AsyncClient,
                          headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every message of the tenant by id, read page by page through the API."""
    stored: dict[str, dict[str, Any]] = {}
    url: str | None = "/sms/v1/messages/?limit=500"
    while url is not None:
        answer = await http.get(url, headers=headers)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        stored.update((message["id"], message) for message in page["results"])
        url = page["next"]
    return stored


async def creates_taken(fake_url: str) -> Counter[str]:
    """How many creates the fake took for each message text, from its Messages list."""
    taken: Counter[str] = Counter()
    path = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    async with httpx.AsyncClient(base_url=fake_url, auth=(TWILIO_SID, TWILIO_TOKEN),
                                 timeout=30) as http:
        for page in itertools.count():
            answer = await http.get(path, params={"PageSize": 1000, "Page": page})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            taken.update(message["body"] for message in body["messages"])
            if body["next_page_uri"] is None:
                return taken
    raise AssertionError("unreachable")


# --- the test ------------------------------------------------------------------------------------


def test_sigkill_mid_run_loses_no_acknowledged_message_and_resends_at_most_one_window(
        tmp_path: Path, server_database_url: str, processes: ProcessGroups) -> None:
    fake_port, port = free_port(), free_port()
    fake_url = f"http://127.0.0.1:{fake_port}"
    fake = processes.start("fake-twilio", [
        sys.executable, "-m", "tests.fakes.twilio", "--port", str(fake_port),
        "--account-sid", TWILIO_SID, "--auth-token", TWILIO_TOKEN, "--status-callbacks",
        "--delay-ms", str(PROVIDER_DELAY_MS), "--callback-attempts", str(CALLBACK_ATTEMPTS),
        "--callback-retry-seconds", "0.25"],
        cwd=ROOT, env=clean_env())
    env = clean_env(
        TIDINGS_DATABASE_URL=server_database_url, TIDINGS_VAR_DIR=str(tmp_path / "var"),
        TIDINGS_SECRET_KEY=secrets.token_urlsafe(32),
        TIDINGS_PUBLIC_URL=f"http://127.0.0.1:{port}", TIDINGS_PROVIDER_URL_TWILIO=fake_url,
        TIDINGS_API_RATE_LIMIT="1000000/min", TIDINGS_LEASE_SECONDS=str(LEASE_SECONDS),
        TIDINGS_DISPATCH_WINDOW=str(WINDOW), TIDINGS_LOG_LEVEL="WARNING")
    gateway = Gateway(processes, port, env, tmp_path)
    asyncio.run(_crash_and_recover(gateway, fake, fake_url))


async def _crash_and_recover(gateway: Gateway, fake: subprocess.Popen[bytes],
                             fake_url: str) -> None:
    async with httpx.AsyncClient(base_url=fake_url, auth=(TWILIO_SID, TWILIO_TOKEN)) as probe:
        await until(lambda: answers(probe, f"/2010-04-01/Accounts/{TWILIO_SID}/Balance.json"),
                     "the fake Twilio", START_SECONDS, fake,
                     lambda: gateway.processes.log("fake-twilio"))
    await gateway.start()
    made = run_tidings(["tenant", "create", "--name", "Crash Test", "--email",
                        "crash@example.com", "--password", "a long password", "--json"],
                       cwd=gateway.cwd, env=gateway.env)
    assert made.returncode == 0, made.stderr
    headers = {"Authorization": f"Bearer {json.loads(made.stdout)['api_key']}"}
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as http:
        app = await http.post("/sms/v1/apps/", headers=headers, json={
            "name": "Twilio", "provider": "TWILIO", "sender_id": TWILIO_NUMBER,
            "provider_credentials": {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN},
            "rate_limit": "1000000/min", "is_default": True})
        assert app.status_code == 201, app.text

    run = await send_with_a_crash(gateway, headers)

    assert run.unexpected == [], run.unexpected[:10]
    assert run.accepted_before_kill == KILL_AFTER
    assert len(run.accepted) + len(run.unacknowledged) == TOTAL
    assert len(run.unacknowledged) <= run.in_flight_at_kill
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=60) as http:
        pending: dict[str, int] = {}

        async def drained() -> bool:
            for state in PENDING_STATES:
                pending[state] = await count_in_state(http, headers, state)
            return sum(pending.values()) == 0

        await until(drained, "every message to reach a final state", DRAIN_SECONDS,
                     gateway.process, lambda: f"still pending: {pending}\n{gateway.log()}")
        drained_at = time.monotonic()
        stored = await stored_messages(http, headers)
        taken = await creates_taken(fake_url)
        by_text = {message["text"]: message for message in stored.values()}
        requeued = {m["text"]: m["id"] for m in stored.values() if m["attempts"] > 1}
        histories = {body: (await http.get(f"/sms/v1/messages/{id_}/", headers=headers)).json()
                     for body, id_ in requeued.items()}
    duplicated = {body for body, count in taken.items() if count > 1}
    duplicates = sum(taken[body] - 1 for body in duplicated)
    print(f"\ncrash recovery ({make_url(gateway.env['TIDINGS_DATABASE_URL']).get_backend_name()}):"
          f" {run.accepted_before_kill} acknowledged before the kill at "
          f"{run.killed_at - run.started_at:.1f}s, {run.in_flight_at_kill} requests in flight "
          f"({len(run.unacknowledged)} unacknowledged); healthy again "
          f"{run.restarted_at - run.killed_at:.1f}s later; {len(run.accepted)} acknowledged "
          f"in all, {len(stored)} stored, sends done at {run.finished_at - run.started_at:.1f}s;"
          f" {len(requeued)} requeued by lease recovery, {sum(taken.values())} creates at the "
          f"fake, {duplicates} duplicates (at most {HELD_AT_MOST}); drained "
          f"{drained_at - run.finished_at:.1f}s after the last send, "
          f"{drained_at - run.killed_at:.1f}s after the kill")

    # None lost: every acknowledged message is stored and was delivered; nothing is left behind.
    assert [n for n, id_ in run.accepted.items() if id_ not in stored] == []
    assert Counter(stored[id_]["state"] for id_ in run.accepted.values()) == {
        "delivered": len(run.accepted)}
    assert {message["state"] for message in stored.values()} <= FINAL_STATES
    assert len(by_text) == len(stored)  # no send was stored twice
    # At least once: every acknowledged message reached the fake, which took nothing else...
    assert [n for n in run.accepted if taken[text(n)] == 0] == []
    assert set(taken) <= set(by_text)
    # ...and only what the killed worker held went twice: at most two windows, each message put
    # back in the queue by lease recovery.
    assert 0 < len(requeued) <= HELD_AT_MOST, "the kill found no send in flight"
    assert duplicated <= set(requeued)
    assert duplicates <= HELD_AT_MOST
    # Lease recovery put back what the killed worker held; a message may also have been
    # retried for a transient failure of its own (a reset connection on a loaded machine).
    recovered = set()
    for body, history in histories.items():
        details = [event["detail"] for event in history["events"]]
        if LEASE_EXPIRED in [detail.get("reason") for detail in details]:
            recovered.add(body)
        else:
            assert "retry" in [detail.get("outcome") for detail in details], (body, history)
    assert recovered, "no message was put back by lease recovery"
    for name in ("serve-1", "serve-2", "fake-twilio"):
        assert "Traceback" not in gateway.processes.log(name), gateway.processes.log(name)[-5000:]
