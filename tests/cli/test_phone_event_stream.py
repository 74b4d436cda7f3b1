"""A phone's event stream against the real ``tidings serve``: it carries the events pushed to
the phone, and it does not hold up a stop (SIGTERM ends the stream; the process exits at once
rather than waiting for the phone to hang up)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx

from tests.cli.processes import (
    clean_env,
    exits_within,
    free_port,
    run_tidings,
    running,
    wait_until,
)

STOP_SECONDS = 5.0


def test_sigterm_ends_an_open_event_stream_and_the_server_exits(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(TIDINGS_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'var' / 't.db'}",
                    TIDINGS_VAR_DIR=str(tmp_path / "var"))
    log = tmp_path / "serve.log"
    with (running(["serve", "--port", str(port)], cwd=tmp_path, env=env, stderr=log) as server,
          httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http):

        def healthy() -> bool:
            try:
                return http.get("/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, "the server's /health", process=server, log=log)
        made = json.loads(run_tidings(["tenant", "create", "--name", "Acme", "--email",
                                       "a@example.com", "--password", "a long password",
                                       "--json"], cwd=tmp_path, env=env).stdout)
        tenant = {"Authorization": f"Bearer {made['api_key']}"}
        app = http.post("/sms/v1/apps/", headers=tenant,
                        json={"name": "Phones", "provider": "ANDROID"}).json()
        phone = http.post("/api/mobile/v1/device", json={"name": "Pixel"}, headers={
            "Authorization": f"Bearer {app['registration_token']}"}).json()

        with http.stream("GET", "/api/mobile/v1/events",
                         headers={"Authorization": f"Bearer {phone['token']}"}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines) == ":keepalive"
            assert http.patch("/3rdparty/v1/settings", headers=tenant,
                              json={"ping": {"interval_seconds": 60}}).status_code == 200
            frame = [next(lines) for _ in range(3)]
            assert frame == ["", "event: SettingsUpdated", "data: {}"]

            started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            assert exits_within(server, STOP_SECONDS) == 0
            assert time.monotonic() - started < STOP_SECONDS
