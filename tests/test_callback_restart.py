"""Callbacks survive a restart, for real: a tenant's ``message.status`` callbacks queued while
its receiver is down outlive a SIGKILL of ``tidings serve`` and all arrive, signed, once each,
in order per message, when the receiver is back and the server has been started again.

Every program runs as an operator would run it, on 127.0.0.1:

    tidings serve                    the gateway, with a SIMULATOR app (it sends nothing and
                                     reports ``delivered`` on its own ``DELAY_MS`` later); killed
                                     with its whole process group (its workers, wherever they
                                     run, die with it), then started again on the same port and
                                     database
    tidings tenant create --json     the tenant and its API key
    CallbackReceiver                 the tenant's receiver (``tests.fakes.callback_receiver``),
                                     in a thread of this process; down (its port refuses
                                     connections) until the server has been killed

The test sends ``MESSAGES`` messages through the API and waits until each is ``delivered`` and
its two callbacks (``sent``, then ``delivered``) are queued, the first tried and refused at
least once and the second held behind it, never tried: one message's callbacks go out in
order. Then it kills the server, starts the receiver, restarts the server and waits until no
delivery is pending. The receiver must hold every queued callback exactly once (the receiver
was down while the server died, so nothing can have been half-delivered and sent again),
signed over ``timestamp + "." + body`` with the endpoint's secret (checked here with ``hmac``,
not with the code under test), carrying its event id, and each message's states in the order
they happened.

With ``TIDINGS_TEST_POSTGRES_URL`` set, the server gets a scratch database of its own on that
server (created and dropped here); the test is skipped when PostgreSQL refuses to create one.
It prints what it saw (``pytest -s``).

The processes, the server's database and its start are ``tests.gateway_processes``', as in
``test_crash_recovery``; the kill here takes the server's whole process group.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import make_url

from tests.cli.processes import clean_env, free_port, run_tidings
from tests.fakes.callback_receiver import CallbackReceiver, ReceivedCallback
from tests.fakes.server import serve_in_thread
from tests.gateway_processes import Gateway, ProcessGroups, count_in_state, until

MESSAGES = 20
STATES_IN_ORDER = ["sent", "delivered"]
"""A simulated message's states its tenant hears about: the provider took it, then its report."""
CALLBACKS = MESSAGES * len(STATES_IN_ORDER)
DELAY_MS = 200  # the simulator's report comes this long after the send
LEASE_SECONDS = 3  # a delivery claimed when the server died is due again this soon after
WEBHOOK_SECRET = "whsec_restart_" + "5ec7e7" * 5
HOOK_PATH = "/hooks"
QUEUED_SECONDS = 30.0
DRAINED_SECONDS = 60.0


def phone(n: int) -> str:
    return f"+1415{3_000_000 + n:07d}"


def text(n: int) -> str:
    return f"restart test message {n}"


# --- reading the queue ---------------------------------------------------------------------------


async def deliveries(http: httpx.AsyncClient, headers: dict[str, str],
                     **params: str) -> list[dict[str, Any]]:
    """Every callback delivery of the tenant (``params`` filter them), oldest first."""
    found: list[dict[str, Any]] = []
    url: str | None = "/tenants/webhooks/deliveries/"
    query: dict[str, str] | None = {"limit": "500", **params}
    while url is not None:
        answer = await http.get(url, headers=headers, params=query)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        found += page["results"]
        url, query = page["next"], None  # ``next`` is a full URL with the query
    return sorted(found, key=lambda delivery: delivery["id"])


def by_message(found: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Deliveries grouped by message, each group in the order they were queued."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for delivery in found:
        grouped[delivery["message_id"]].append(delivery)
    return grouped


def signature_holds(request: ReceivedCallback) -> bool:
    """``X-Tidings-Signature`` is ``sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``,
    computed here from the documented scheme, not with the code under test."""
    timestamp = request.headers["x-tidings-timestamp"]
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), timestamp.encode() + b"." +
                                    request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request.headers["x-tidings-signature"])


# --- the test ------------------------------------------------------------------------------------


def test_callbacks_queued_while_the_receiver_is_down_survive_a_sigkill_and_arrive_in_order(
        tmp_path: Path, server_database_url: str, processes: ProcessGroups) -> None:
    port, receiver_port = free_port(), free_port()  # nothing listens on the receiver's yet
    env = clean_env(
        TIDINGS_DATABASE_URL=server_database_url, TIDINGS_VAR_DIR=str(tmp_path / "var"),
        TIDINGS_SECRET_KEY=secrets.token_urlsafe(32),
        TIDINGS_PUBLIC_URL=f"http://127.0.0.1:{port}", TIDINGS_API_RATE_LIMIT="1000000/min",
        TIDINGS_CALLBACK_ALLOW_PRIVATE_NETWORKS="true",
        TIDINGS_CALLBACK_RETRY_BASE_SECONDS="0.2", TIDINGS_CALLBACK_RETRY_CAP_SECONDS="1",
        TIDINGS_LEASE_SECONDS=str(LEASE_SECONDS), TIDINGS_LOG_LEVEL="WARNING")
    gateway = Gateway(processes, port, env, tmp_path)
    asyncio.run(_queue_kill_and_restart(gateway, receiver_port))


async def _queue_kill_and_restart(gateway: Gateway, receiver_port: int) -> None:
    started_at = time.monotonic()
    await gateway.start()
    made = run_tidings(["tenant", "create", "--name", "Restart Test", "--email",
                        "restart@example.com", "--password", "a long password", "--json"],
                       cwd=gateway.cwd, env=gateway.env)
    assert made.returncode == 0, made.stderr
    tenant = json.loads(made.stdout)
    headers = {"Authorization": f"Bearer {tenant['api_key']}"}
    hook_url = f"http://127.0.0.1:{receiver_port}{HOOK_PATH}"

    # Queued while the receiver is down: every message delivered, its callbacks all pending.
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as http:
        endpoint = await http.post("/tenants/webhooks/", headers=headers, json={
            "url": hook_url, "events": ["message.status"], "secret": WEBHOOK_SECRET})
        assert endpoint.status_code == 201, endpoint.text
        app = await http.post("/sms/v1/apps/", headers=headers, json={
            "name": "Simulator", "provider": "SIMULATOR", "sender_id": "Tidings",
            "provider_config": {"delay_ms": DELAY_MS}, "rate_limit": "1000000/min",
            "is_default": True})
        assert app.status_code == 201, app.text
        sent: dict[str, int] = {}
        for n in range(MESSAGES):
            answer = await http.post("/sms/v1/messages/", headers=headers,
                                     json={"phone": phone(n), "text": text(n)})
            assert answer.status_code == 201, answer.text
            sent[answer.json()["id"]] = n
        queued: list[dict[str, Any]] = []

        async def all_queued_and_tried() -> bool:
            if await count_in_state(http, headers, "delivered") < MESSAGES:
                return False
            queued[:] = await deliveries(http, headers)
            return len(queued) == CALLBACKS and all(
                group[0]["attempts"] >= 1 for group in by_message(queued).values())

        await until(all_queued_and_tried, "every message delivered and its first callback "
                     "tried", QUEUED_SECONDS, gateway.process, gateway.log)
        before = await deliveries(http, headers)
    queued_at = time.monotonic()

    assert set(by_message(before)) == set(sent)
    for message_id, group in by_message(before).items():
        assert [d["state"] for d in group] == ["pending"] * len(STATES_IN_ORDER), group
        assert {(d["event"], d["url"], d["method"]) for d in group} == {
            ("message.status", hook_url, "POST")}
        first, *held = group
        assert first["attempts"] >= 1, first
        assert first["last_status_code"] is None, first
        assert first["last_error"], first  # the connection was refused
        assert [d["attempts"] for d in held] == [0] * len(held), (message_id, held)
    event_ids = {d["event_id"] for d in before}
    assert len(event_ids) == CALLBACKS

    # The server dies with its callbacks pending; the receiver comes back; so does the server.
    await gateway.kill_group()
    killed_at = time.monotonic()
    restarted_wall = int(time.time())
    receiver = CallbackReceiver()
    with serve_in_thread(receiver.app(), port=receiver_port):
        await gateway.start()
        restarted_at = time.monotonic()
        async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as http:
            after: list[dict[str, Any]] = []

            async def drained() -> bool:
                after[:] = await deliveries(http, headers)
                return not any(d["state"] == "pending" for d in after)

            await until(drained, "no callback delivery pending", DRAINED_SECONDS,
                         gateway.process, lambda: f"{after}\n{gateway.log()}")
        drained_at = time.monotonic()
        received = list(receiver.requests)

    print(f"\ncallback restart ({make_url(gateway.env['TIDINGS_DATABASE_URL']).get_backend_name()}"
          f"): {len(before)} callbacks pending before the kill (queued and tried "
          f"{queued_at - started_at:.1f}s after the start), healthy again "
          f"{restarted_at - killed_at:.1f}s after the kill, {len(received)} received and "
          f"{sum(d['state'] == 'delivered' for d in after)} delivered "
          f"{drained_at - restarted_at:.1f}s after the restart")

    # Every queued callback was delivered, and it is the same queue as before the kill.
    assert [(d["id"], d["event_id"], d["message_id"]) for d in after] == [
        (d["id"], d["event_id"], d["message_id"]) for d in before]
    assert [d["state"] for d in after] == ["delivered"] * CALLBACKS, after
    assert all(d["last_status_code"] == 200 and d["last_error"] is None for d in after), after

    # The receiver got each exactly once: it was down when the server died, so no attempt can
    # have reached it and been sent again.
    ids_received = Counter(request.headers["x-tidings-event-id"] for request in received)
    assert ids_received == Counter(event_ids)

    # Each request as the receiver saw it: signed with the endpoint's secret at send time (after
    # the restart, not when it was queued), carrying its event id and the message as it was.
    bodies = [json.loads(request.body) for request in received]
    for request, body in zip(received, bodies, strict=True):
        assert (request.method, request.path) == ("POST", HOOK_PATH)
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-tidings-event"] == "message.status"
        assert signature_holds(request), request
        signed_at = int(request.headers["x-tidings-timestamp"])
        assert restarted_wall - 1 <= signed_at <= time.time() + 1
        assert request.headers["x-tidings-event-id"] == body["id"]
        assert (body["event"], body["tenant_id"]) == ("message.status", tenant["tenant_id"])
        n = sent[body["data"]["id"]]
        assert (body["data"]["phone"], body["data"]["text"]) == (phone(n), text(n))
        assert body["data"]["sms_app_id"] == app.json()["id"]

    # Per message, the states arrived in the order they happened, which is the order they were
    # queued in.
    states: dict[str, list[str]] = defaultdict(list)
    arrived: dict[str, list[str]] = defaultdict(list)
    for body in bodies:
        states[body["data"]["id"]].append(body["data"]["state"])
        arrived[body["data"]["id"]].append(body["id"])
    assert states == {message_id: STATES_IN_ORDER for message_id in sent}
    assert arrived == {message_id: [d["event_id"] for d in group]
                       for message_id, group in by_message(before).items()}
    for name in ("serve-1", "serve-2"):
        log = gateway.processes.log(name)
        assert "Traceback" not in log, log[-5000:]
