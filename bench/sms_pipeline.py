"""Benchmark of the SMS pipeline, as the issue defines it; prints a table, asserts nothing.

    .venv/bin/python bench/sms_pipeline.py [--database-url URL] [--only ingress,e2e,...]

Every stage runs the real programs on loopback, each in its own process, the way an operator
runs them: ``tidings serve`` / ``tidings worker``, the fake Twilio server
(``python -m tests.fakes.twilio``) and a raw-socket HTTP load client (``bench/_load.py``).

1. ingress    20,000 single sends over HTTP from 64 concurrent keep-alive connections to
              ``tidings serve --no-workers``: accepted messages/s (each on disk before its 201;
              the stored rows are counted afterwards to prove it). ``ingress2``: the same with
              ``--api-processes 2``.
2. e2e        a backlog of 20,000 queued messages drained by ``tidings worker`` through the fake
              Twilio server (no rate limit): messages/s from queued to sent.
3. broadcast  one 100,000-recipient ``POST /sms/v1/broadcast/`` to ``tidings serve`` (workers
              on, simulator app): seconds until accepted (202), and until every message is sent.
4. memory     peak RSS of ``tidings serve`` and its worker process (summed, and each) while
              1,000,000 messages are queued behind a rate-limited app and the API is in use.
5. bulk       one 100,000-row CSV (``mobile`` in the slug API's ``966501234567`` form, each row
              its own text) posted to ``POST /api/v1/sms-providers/infobip-sms/bulk-send`` on
              ``tidings serve`` (workers on), sent through the fake Infobip process
              (``python -m tests.fakes.infobip --no-record``): seconds until accepted (202, all
              stored), until ``GET …/progress`` shows nothing pending, and the growth of the
              server's peak RSS during the upload (VmHWM, reset just before it, minus VmRSS
              then). ``bulk1``: the same with ``+966501234567`` numbers and one text for
              every row (a broadcast's work: each message row is built once and copied).
6. android    (no target) 4,000 sends through the SMS Gateway for Android 3rd-party API
              (``POST /3rdparty/v1/messages``, 32 connections, tenant API key) to
              ``tidings serve --no-workers``: accepted/s; then one phone pulling and reporting
              ``Sent`` for all of them (``GET``/``PATCH /mobile/v1/message``): messages/s.
7. callbacks  10,000 Infobip delivery reports (one per request, 64 concurrent keep-alive
              connections) POSTed to an app's DLR webhook (``?token=`` verified) on ``tidings
              serve`` (its worker process on), each moving a ``sent`` message to ``delivered``
              and queueing a signed ``message.status`` callback to a webhook endpoint, which the
              callback sender delivers to a local receiver (``bench/_callback_receiver.py``,
              counts POSTs): webhooks accepted/s, and callbacks delivered/s from the first
              webhook to the last callback and from the last webhook to the last callback (the
              drain), and the CPU use of serve and its worker (% of one core). ``callbacks1``:
              the same with ``--inline-workers`` (API and workers in one process).

8. smpp       a backlog of 20,000 queued messages sent by ``tidings worker`` through one SMPP
              transceiver bind (window 32) to the smpp34 SMSC (``python -m
              tests.smsc.smpp34_smsc``), which sends a delivery receipt for every submit:
              submits/s (first claim until all are accepted) and receipts/s (first claim until
              all are delivered), and the worker's CPU use.

SQLite (a fresh file in a temporary directory) unless ``--database-url`` names a PostgreSQL
database, whose tables are emptied first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select, text

from tidings.db.base import Base
from tidings.db.migrate import upgrade_to_head
from tidings.db.models import Message
from tidings.db.session import create_engine, create_session_factory
from tidings.domain.crypto import SecretBox
from tidings.domain.keys import KeyMode
from tidings.domain.roles import Role
from tidings.services.api_keys import create_api_key
from tidings.services.sms_apps import SmsAppFields, create_sms_app
from tidings.services.sms_send import (
    Sender,
    SendPlan,
    SendRequest,
    build_message_row,
    store_messages,
)
from tidings.services.tenancy import create_tenant

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECRET = "bench-secret-key-not-for-production-0123456789"
TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "f" * 32
INFOBIP_KEY = "957df92101cfd4e4e74ce44cf5ab68b9-6e2ec23a-46bc-4597-b341-35c0ae0b3b95"
UNLIMITED = "100000000/min"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def phone(n: int) -> str:
    return f"+1415{2_000_000 + n:07d}"


class Bench:
    def __init__(self, scratch: Path, database_url: str) -> None:
        self.scratch = scratch
        self.database_url = database_url
        self.engine = create_engine(database_url)
        self.sessions = create_session_factory(self.engine)
        self.box = SecretBox([SECRET])
        self.tenant_id = ""
        self.api_key = ""

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "TIDINGS_DATABASE_URL": self.database_url,
                "TIDINGS_SECRET_KEY": SECRET, "TIDINGS_VAR_DIR": str(self.scratch / "var"),
                "TIDINGS_LOG_LEVEL": "WARNING", "TIDINGS_API_RATE_LIMIT": UNLIMITED,
                "TIDINGS_MAX_REQUEST_BYTES": str(200 * 1024 * 1024), **extra}

    async def prepare(self) -> None:
        await upgrade_to_head(self.engine)
        async with self.engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(table.delete())
        now = datetime.now(UTC)
        async with self.sessions() as session:
            made = await create_tenant(session, name="Bench", owner_email="bench@example.com",
                                       owner_password="bench password", region="US",
                                       currency="USD", now=now)
            key = await create_api_key(session, tenant_id=made.tenant.id, role=Role.OWNER,
                                       mode=KeyMode.LIVE, name="bench", created_by=None, now=now)
            await session.commit()
        self.tenant_id, self.api_key = made.tenant.id, key.secret

    async def add_app(self, name: str, provider: str, rate_limit: str = UNLIMITED,
                      credentials: dict[str, str] | None = None,
                      config: dict[str, Any] | None = None) -> str:
        async with self.sessions() as session:
            account = await create_sms_app(
                session, self.box, tenant_id=self.tenant_id,
                fields=SmsAppFields(name=name, provider=provider, sender_id="+14155550000",
                                    provider_credentials=credentials or {},
                                    provider_config=config or {}, rate_limit=rate_limit,
                                    is_default=True),
                default_rate_limit=UNLIMITED, now=datetime.now(UTC))
            await session.commit()
            return account.id

    async def queue_messages(self, app_id: str, count: int, chunk: int = 5000) -> None:
        """Store ``count`` queued messages directly, as the API would have."""
        async with self.sessions() as session:
            from tidings.db.models import ChannelAccount  # noqa: PLC0415
            app = await session.get(ChannelAccount, app_id)
        assert app is not None
        plan = SendPlan(app=app, template_body=None)
        sender = Sender(self.tenant_id, "US", "live")
        now = datetime.now(UTC)
        for start in range(0, count, chunk):
            rows = [build_message_row(plan, sender,
                                      SendRequest(phone=phone(n), text=f"Backlog message {n}"),
                                      now=now, max_segments=10)
                    for n in range(start, min(start + chunk, count))]
            async with self.sessions() as session:
                await store_messages(session, rows, now)
                await session.commit()

    async def count(self, *states: str) -> int:
        async with self.sessions() as session:
            query = select(func.count()).select_from(Message)
            if states:
                query = query.where(Message.state.in_(states))
            return int((await session.execute(query)).scalar_one())

    async def clear_messages(self) -> None:
        async with self.engine.begin() as connection:
            for table in ("message_events", "message_parts", "unmatched_reports", "messages",
                          "batches", "channel_accounts"):
                await connection.execute(text(f"DELETE FROM {table}"))

    @contextmanager
    def process(self, *args: str, env: dict[str, str] | None = None,
                ready_url: str | None = None) -> Iterator[subprocess.Popen[bytes]]:
        log = (self.scratch / f"{Path(args[0]).name}-{time.monotonic_ns()}.log").open("wb")
        proc = subprocess.Popen(args, env=env or self.env(), stdout=log, stderr=log, cwd=ROOT)
        try:
            if ready_url:
                wait_until_up(ready_url, proc)
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()

    def serve(self, port: int, *, workers: bool, api_processes: int = 1,
              inline_workers: bool = False, **env: str) -> Any:
        args = [str(BIN / "tidings"), "serve", "--port", str(port),
                "--api-processes", str(api_processes)]
        if not workers:
            args.append("--no-workers")
        elif inline_workers:
            args.append("--inline-workers")
        return self.process(*args, env=self.env(**env),
                            ready_url=f"http://127.0.0.1:{port}/health")


def wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def peak_rss_mb(pid: int, field: str = "VmHWM") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started (every thread's children)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak_rss(pid: int) -> None:
    """Start the process's VmHWM again from its current RSS (Linux 4.0+)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


async def poll(condition: Any, timeout: float, every: float = 0.05) -> float:
    """Wait until ``await condition()`` is true; return when it became true (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await condition():
            return time.monotonic()
        await asyncio.sleep(every)
    raise TimeoutError("condition not reached")


async def stage_ingress(bench: Bench, requests: int, api_processes: int = 1) -> dict[str, Any]:
    await bench.add_app("ingress", "SIMULATOR")
    port = free_port()
    with bench.serve(port, workers=False, api_processes=api_processes):
        result = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "_load.py"),
             f"http://127.0.0.1:{port}/sms/v1/messages/", "--token", bench.api_key,
             "--requests", str(requests), "--concurrency", "64",
             "--body-template", '{"phone":"+1415{n7}","text":"Hello, this is message {n}"}'],
            capture_output=True, text=True, check=True)
    load = json.loads(result.stdout)
    stored = await bench.count()
    await bench.clear_messages()
    return {"api_processes": api_processes, "accepted": load["statuses"].get("201", 0),
            "stored": stored,
            "seconds": load["seconds"], "per_second": load["per_second"],
            "p50_ms": load["p50_ms"], "p99_ms": load["p99_ms"]}


async def stage_e2e(bench: Bench, messages: int) -> dict[str, Any]:
    app_id = await bench.add_app("twilio", "TWILIO", credentials={
        "account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN})
    await bench.queue_messages(app_id, messages)
    fake_port = free_port()
    fake = [sys.executable, "-m", "tests.fakes.twilio", "--port", str(fake_port),
            "--account-sid", TWILIO_SID, "--auth-token", TWILIO_TOKEN]
    with bench.process(*fake, ready_url=f"http://127.0.0.1:{fake_port}/"):
        env = bench.env(TIDINGS_PROVIDER_URL_TWILIO=f"http://127.0.0.1:{fake_port}")
        started = time.monotonic()
        with bench.process(str(BIN / "tidings"), "worker", env=env):
            async def first_claimed() -> bool:
                return await bench.count("queued") < messages

            async def all_sent() -> bool:
                return await bench.count("sent") >= messages

            first = await poll(first_claimed, 60)
            done = await poll(all_sent, 600, every=0.2)
    failed = await bench.count("failed")
    await bench.clear_messages()
    return {"messages": messages, "seconds": round(done - first, 2),
            "per_second": round(messages / (done - first), 1),
            "with_startup_seconds": round(done - started, 2), "failed": failed}


async def stage_broadcast(bench: Bench, recipients: int) -> dict[str, Any]:
    await bench.add_app("broadcast", "SIMULATOR", config={"delay_ms": 0})
    port = free_port()
    with bench.serve(port, workers=True):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600,
                                     headers={"Authorization": f"Bearer {bench.api_key}"}) as h:
            body = {"phones": [phone(n) for n in range(recipients)],
                    "text": "Big news for {{name|you}}: the sale starts now"}
            started = time.monotonic()
            answer = await h.post("/sms/v1/broadcast/", json=body)
            accepted = time.monotonic()
            answer.raise_for_status()
            broadcast_id = answer.json()["id"]

            async def all_sent() -> bool:
                counters = (await h.get(f"/sms/v1/broadcast/{broadcast_id}/")).json()
                left = counters.get("queued", 0) + counters.get("sending", 0)
                return bool(counters["total"]) and left == 0

            done = await poll(all_sent, 1200, every=0.5)
    stored = await bench.count()
    await bench.clear_messages()
    return {"recipients": recipients, "stored": stored,
            "accepted_seconds": round(accepted - started, 2),
            "all_sent_seconds": round(done - started, 2)}


async def stage_bulk(bench: Bench, rows: int, campaign: bool = False) -> dict[str, Any]:
    fake_port = free_port()
    await bench.add_app("infobip", "INFOBIP", credentials={"api_key": INFOBIP_KEY},
                        config={"base_url": "https://e1zz23.api.infobip.com"})
    path = bench.scratch / "bulk.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("mobile,message,sender,datetime\r\n")
        for n in range(rows):
            text = "Your order is ready" if campaign else f"Your order {n} is ready"
            out.write(f"{'+' if campaign else ''}96650{n:07d},{text},,\r\n")
    fake = [sys.executable, "-m", "tests.fakes.infobip", "--port", str(fake_port),
            "--api-key", INFOBIP_KEY, "--no-record"]
    port = free_port()
    with bench.process(*fake, ready_url=f"http://127.0.0.1:{fake_port}/"), \
            bench.serve(port, workers=True,
                        TIDINGS_PROVIDER_URL_INFOBIP=f"http://127.0.0.1:{fake_port}") as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/api/v1/sms-providers/"
                                     "infobip-sms", timeout=600, headers={
                                         "Authorization": f"Bearer {bench.api_key}"}) as h:
            rss_before = peak_rss_mb(server.pid, "VmRSS")
            reset_peak_rss(server.pid)
            started = time.monotonic()
            with path.open("rb") as csv_file:
                answer = await h.post("/bulk-send", files={"file": ("bulk.csv", csv_file)})
            accepted = time.monotonic()
            rss_peak = peak_rss_mb(server.pid)
            answer.raise_for_status()

            async def all_sent() -> bool:
                counters = (await h.get("/progress")).json()
                return bool(counters["total"]) and counters["pending"] == 0

            done = await poll(all_sent, 1200, every=0.5)
            final = (await h.get("/progress")).json()
    await bench.clear_messages()
    return {"rows": rows, "file_mb": round(path.stat().st_size / 1e6, 1),
            "status": answer.status_code, "sent": final["sent"], "failed": final["failed"],
            "accepted_seconds": round(accepted - started, 2),
            "all_sent_seconds": round(done - started, 2),
            "sent_per_second": round(final["sent"] / (done - accepted), 1),
            "rss_before_mb": round(rss_before, 1),
            "rss_growth_mb": round(rss_peak - rss_before, 1)}


async def stage_bulk_campaign(bench: Bench, rows: int) -> dict[str, Any]:
    return await stage_bulk(bench, rows, campaign=True)


async def stage_memory(bench: Bench, queued: int) -> dict[str, Any]:
    app_id = await bench.add_app("held", "SIMULATOR", rate_limit="60/min")
    filled = time.monotonic()
    await bench.queue_messages(app_id, queued, chunk=20_000)
    fill_seconds = time.monotonic() - filled
    port = free_port()
    with bench.serve(port, workers=True) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120,
                                     headers={"Authorization": f"Bearer {bench.api_key}"}) as h:
            for n in range(200):
                await h.post("/sms/v1/messages/", json={"phone": phone(n), "text": "hi"})
            for offset in (0, 1000, 100_000):
                (await h.get("/sms/v1/messages/", params={"limit": 500, "offset": offset})
                 ).raise_for_status()
            await asyncio.sleep(15)  # dispatcher rounds and periodic jobs over a full queue
        api_rss = peak_rss_mb(server.pid)
        worker_rss = sum(peak_rss_mb(pid) for pid in child_pids(server.pid))
    await bench.clear_messages()
    return {"queued": queued, "peak_rss_mb": round(api_rss + worker_rss, 1),
            "api_rss_mb": round(api_rss, 1), "worker_rss_mb": round(worker_rss, 1),
            "fill_seconds": round(fill_seconds)}


async def stage_ingress_two_processes(bench: Bench, requests: int) -> dict[str, Any]:
    return await stage_ingress(bench, requests, api_processes=2)


async def stage_android(bench: Bench, requests: int) -> dict[str, Any]:
    await bench.add_app("phones", "ANDROID", config={"default_region": "RU"})
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with bench.serve(port, workers=False):
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            apps = (await http.get("/sms/v1/apps/", headers={
                "Authorization": f"Bearer {bench.api_key}"})).json()["results"]
            token = apps[0]["registration_token"]
            device = (await http.post("/mobile/v1/device", json={"name": "bench"}, headers={
                "Authorization": f"Bearer {token}"})).json()
            result = subprocess.run(
                [sys.executable, str(ROOT / "bench" / "_load.py"),
                 f"{base}/3rdparty/v1/messages", "--token", bench.api_key,
                 "--requests", str(requests), "--concurrency", "32",
                 "--body-template",
                 '{"textMessage":{"text":"Hello {n}"},"phoneNumbers":["+7999{n7}"]}'],
                capture_output=True, text=True)
            if result.returncode:
                logs = "\n".join(path.read_text()[-3000:] for path in bench.scratch.glob("*.log"))
                raise RuntimeError(f"the load client failed: {result.stderr[-500:]}\n{logs}")
            load = json.loads(result.stdout)
            phone = {"Authorization": f"Bearer {device['token']}"}
            started, reported = time.monotonic(), 0
            while batch := (await http.get("/mobile/v1/message?order=fifo",
                                           headers=phone)).json():
                await http.patch("/mobile/v1/message", headers=phone, json=[
                    {"id": m["id"], "state": "Sent", "states": {},
                     "recipients": [{"phoneNumber": m["phoneNumbers"][0], "state": "Sent"}]}
                    for m in batch])
                reported += len(batch)
            drained = time.monotonic() - started
    sent = await bench.count("sent")
    await bench.clear_messages()
    return {"accepted": load["statuses"].get("202", 0), "per_second": load["per_second"],
            "p99_ms": load["p99_ms"], "phone_reported": reported, "sent": sent,
            "phone_per_second": round(reported / drained, 1)}


async def post_all(url: str, requests: int, concurrency: int,
                   template: str) -> dict[str, Any]:
    """``bench/_load.py``'s client, run in this process on a URL with a query (which its
    command line drops): ``requests`` POSTs of ``template`` over ``concurrency`` keep-alive
    connections. Answers its summary plus ``started``, the monotonic time of the first send."""
    from _load import _worker  # noqa: PLC0415 (bench/ is this script's directory)

    parts = urlsplit(url)
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    started = time.monotonic()
    await asyncio.gather(*(_worker(parts.hostname or "127.0.0.1", parts.port or 80,
                                   f"{parts.path}?{parts.query}", "", template,
                                   list(range(i, requests, concurrency)), statuses, latencies)
                           for i in range(concurrency)))
    seconds = time.monotonic() - started
    latencies.sort()
    return {"started": started, "seconds": round(seconds, 3),
            "per_second": round(requests / seconds, 1),
            "statuses": {str(k): v for k, v in statuses.items()},
            "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1)}


async def stage_callbacks(bench: Bench, reports: int,
                          inline_workers: bool = False) -> dict[str, Any]:
    app_id = await bench.add_app("infobip", "INFOBIP", credentials={"api_key": INFOBIP_KEY},
                                 config={"base_url": "https://e1zz23.api.infobip.com"})
    await bench.queue_messages(app_id, reports)
    # Already sent, each with its own Infobip id "ib-<to without +>", so that report n names
    # the message to phone(n). Done before serve starts: its dispatcher must find nothing.
    async with bench.engine.begin() as connection:
        await connection.execute(text(
            "UPDATE messages SET state = 'sent', next_attempt_at = NULL, "
            "provider_message_id = 'ib-' || substr(to_number, 2)"))
    receiver_port, port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    receiver_args = [sys.executable, str(ROOT / "bench" / "_callback_receiver.py"),
                     "--port", str(receiver_port)]
    report = json.dumps({"results": [{
        "bulkId": "bench-bulk", "messageId": "ib-1415{n7}", "to": "1415{n7}",
        "sender": "14155550000", "sentAt": "2026-01-01T00:00:00.000+0000",
        "doneAt": "2026-01-01T00:00:01.000+0000", "messageCount": 1,
        "price": {"pricePerMessage": 0.01, "currency": "EUR"},
        "status": {"groupId": 3, "groupName": "DELIVERED", "id": 5,
                   "name": "DELIVERED_TO_HANDSET", "description": "Message delivered to handset"},
        "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR",
                  "description": "No Error", "permanent": False}}]})
    env = {"TIDINGS_CALLBACK_ALLOW_PRIVATE_NETWORKS": "true", "TIDINGS_PUBLIC_URL": base}
    with bench.process(*receiver_args, ready_url=f"http://127.0.0.1:{receiver_port}/count"), \
            bench.serve(port, workers=True, inline_workers=inline_workers, **env) as server:
        async with httpx.AsyncClient(base_url=base, timeout=60, headers={
                "Authorization": f"Bearer {bench.api_key}"}) as http:
            (await http.post("/tenants/webhooks/", json={
                "url": f"http://127.0.0.1:{receiver_port}/callbacks",
                "events": ["message.status"], "secret": "bench-callback-secret-0123456789"})
             ).raise_for_status()
            app = (await http.get(f"/sms/v1/apps/{app_id}/")).json()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{receiver_port}") as receiver:
            async def received() -> int:
                return int((await receiver.get("/count")).json()["count"])

            processes = [server.pid, *child_pids(server.pid)]  # the worker process
            cpu_before = sum(cpu_seconds(pid) for pid in processes)
            load = await post_all(app["dlr_webhook_url"], reports, 64, report)
            load_done = time.monotonic()
            accepted: int = sum(v for k, v in load["statuses"].items() if k.startswith("2"))
            at_load_done = await received()

            async def all_received() -> bool:
                return await received() >= accepted

            try:
                done = await poll(all_received, 300, every=0.05)
            except TimeoutError:  # reported as it stands: callbacks < accepted
                done = time.monotonic()
            callbacks = await received()
            server_cpu = sum(cpu_seconds(pid) for pid in processes) - cpu_before
    async with bench.engine.begin() as connection:
        by_state = {state: count for state, count in (await connection.execute(text(
            "SELECT state, count(*) FROM callback_deliveries GROUP BY state"))).all()}
    delivered = await bench.count("delivered")
    async with bench.engine.begin() as connection:
        for table in ("callback_deliveries", "webhook_endpoints"):
            await connection.execute(text(f"DELETE FROM {table}"))
    await bench.clear_messages()
    since_first, since_last = done - load["started"], max(done - load_done, 1e-3)
    return {"workers": "inline" if inline_workers else "process", "reports": reports,
            "accepted": accepted,
            "statuses": ",".join(f"{k}:{v}" for k, v in sorted(load["statuses"].items())),
            "webhooks_seconds": load["seconds"], "webhooks_per_second": load["per_second"],
            "webhook_p99_ms": load["p99_ms"], "callbacks": callbacks,
            "callbacks_seconds": round(since_first, 2),
            "callbacks_per_second": round(callbacks / since_first, 1),
            "callbacks_at_webhooks_end": at_load_done,
            "drain_seconds": round(done - load_done, 2),
            "drain_per_second": round((callbacks - at_load_done) / since_last, 1),
            "server_cpu_pct": round(100 * server_cpu / since_first),
            "delivered_messages": delivered,
            "deliveries": ",".join(f"{k}:{v}" for k, v in sorted(by_state.items()))}


async def stage_callbacks_inline_workers(bench: Bench, reports: int) -> dict[str, Any]:
    return await stage_callbacks(bench, reports, inline_workers=True)


async def stage_smpp(bench: Bench, messages: int, window: int = 32) -> dict[str, Any]:
    """A backlog sent by ``tidings worker`` through one transceiver bind to the smpp34 SMSC,
    which answers every submit_sm and sends a receipt for each."""
    smsc_port = free_port()
    scenario = bench.scratch / "smsc-scenario.json"
    scenario.write_text(json.dumps({"log_submits": False}))
    smsc = [sys.executable, "-m", "tests.smsc.smpp34_smsc", "--port", str(smsc_port),
            "--scenario", str(scenario), "--events", str(bench.scratch / "smsc-events.jsonl")]
    app_id = await bench.add_app("smsc", "SMPP", credentials={"password": "bench"}, config={
        "host": "127.0.0.1", "port": smsc_port, "system_id": "bench", "window": window})
    await bench.queue_messages(app_id, messages)
    with bench.process(*smsc) as smsc_process:
        wait_until_listening(smsc_port, smsc_process)
        started = time.monotonic()
        with bench.process(str(BIN / "tidings"), "worker") as worker:
            async def first_claimed() -> bool:
                return await bench.count("queued") < messages

            async def all_accepted() -> bool:
                return await bench.count("sent", "delivered", "failed") >= messages

            async def all_delivered() -> bool:
                return await bench.count("delivered", "failed") >= messages

            first = await poll(first_claimed, 60)
            accepted = await poll(all_accepted, 600, every=0.1)
            delivered = await poll(all_delivered, 600, every=0.1)
            cpu = cpu_seconds(worker.pid)
    failed = await bench.count("failed")
    await bench.clear_messages()
    return {"messages": messages, "window": window,
            "submits_per_second": round(messages / (accepted - first), 1),
            "receipts_per_second": round(messages / (delivered - first), 1),
            "seconds": round(delivered - first, 2),
            "with_startup_seconds": round(delivered - started, 2), "failed": failed,
            "worker_cpu_pct": round(100 * cpu / (delivered - started), 1)}


def wait_until_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


STAGES = {"ingress": (stage_ingress, 20_000), "ingress2": (stage_ingress_two_processes, 20_000),
          "e2e": (stage_e2e, 20_000),
          "broadcast": (stage_broadcast, 100_000), "memory": (stage_memory, 1_000_000),
          "android": (stage_android, 4_000), "bulk": (stage_bulk, 100_000),
          "bulk1": (stage_bulk_campaign, 100_000), "callbacks": (stage_callbacks, 10_000),
          "callbacks1": (stage_callbacks_inline_workers, 10_000), "smpp": (stage_smpp, 20_000)}


async def run(database_url: str | None, only: list[str], scale: float) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        url = database_url or f"sqlite+aiosqlite:///{scratch}/bench.db"
        bench = Bench(Path(scratch), url)
        await bench.prepare()
        print(f"# {platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()}"
              f" · {bench.engine.dialect.name} · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
              flush=True)
        for name in only:
            stage, size = STAGES[name]
            result = await stage(bench, max(1, int(size * scale)))
            print(f"{name:<10} " + "  ".join(f"{k}={v}" for k, v in result.items()), flush=True)
        await bench.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--only",
                        default="ingress,ingress2,e2e,broadcast,memory,android,bulk,callbacks,"
                                "smpp")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every stage's size (0.1 for a quick run)")
    args = parser.parse_args()
    asyncio.run(run(args.database_url, args.only.split(","), args.scale))


if __name__ == "__main__":
    main()
