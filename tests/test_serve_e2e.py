"""The new user's path, for real: ``tidings serve`` as a process on a free port with an empty
database and no secret key, the first tenant made with the CLI while it runs, the API used over
HTTP with the printed key and with a password login, then a clean stop on SIGTERM.

With ``TIDINGS_TEST_POSTGRES_URL`` set, the server gets a scratch database of its own on that
PostgreSQL server (created and dropped here), so it starts from empty exactly as on SQLite and
never touches the shared test database; when the server refuses to create one, the test is
skipped with the reason.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.cli.processes import (
    clean_env,
    exits_within,
    free_port,
    run_tidings,
    running,
    wait_until,
)
from tests.conftest import POSTGRES_URL

EMAIL = "founder@example.com"
PASSWORD = "a long password"


async def _postgres(dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture
def server_database_url(tmp_path: Path) -> Iterator[str]:
    """An empty database for the server: a file under ``<tmp>/var`` or a scratch PostgreSQL
    database."""
    if not POSTGRES_URL:
        yield f"sqlite+aiosqlite:///{tmp_path / 'var' / 'tidings.db'}"
        return
    url = make_url(POSTGRES_URL)
    name = f"{url.database}_e2e_{secrets.token_hex(4)}"
    admin_dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        asyncio.run(_postgres(admin_dsn, f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"cannot create a scratch PostgreSQL database for the server: {exc}")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            asyncio.run(_postgres(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except asyncpg.PostgresSyntaxError:  # before PostgreSQL 13; the server has exited
            asyncio.run(_postgres(admin_dsn, f'DROP DATABASE IF EXISTS "{name}"'))


def json_object(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The single JSON object a ``--json`` command printed, and nothing else."""
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    value = json.loads(lines[0])
    assert isinstance(value, dict)
    return value


def test_new_user_serves_creates_a_tenant_and_uses_the_api(
        tmp_path: Path, server_database_url: str) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = clean_env(TIDINGS_DATABASE_URL=server_database_url, TIDINGS_VAR_DIR=str(tmp_path / "var"))
    log = tmp_path / "serve.log"

    with (running(["serve", "--host", "127.0.0.1", "--port", str(port)], cwd=tmp_path,
                  env=env, stderr=log) as server,
          httpx.Client(base_url=base_url, timeout=10) as http):

        def healthy() -> bool:
            try:
                return http.get("/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, f"{base_url}/health", process=server, log=log)
        assert http.get("/health").json() == {"status": "ok", "database": "ok"}
        secret_key = tmp_path / "var" / "secret.key"
        assert secret_key.stat().st_mode & 0o777 == 0o600
        started = log.read_text()
        assert "TIDINGS_SECRET_KEY is not set" in started
        assert "No tenant yet" in started
        assert "tenant create --name" in started

        made = json_object(run_tidings(["tenant", "create", "--name", "Acme", "--email", EMAIL,
                                        "--password", PASSWORD, "--json"],
                                       cwd=tmp_path, env=env))
        assert made["api_key"].startswith("jc_live_")
        by_key = http.get("/tenants/roles/", headers={"Authorization": f"Bearer {made['api_key']}"})
        assert by_key.status_code == 200

        tokens = http.post("/token/", json={"email": EMAIL, "password": PASSWORD})
        assert tokens.status_code == 200
        by_jwt = http.get("/tenants/roles/",
                          headers={"Authorization": f"Bearer {tokens.json()['access']}"})
        assert by_jwt.status_code == 200

        # Independent commands, run side by side: a second key, the same tenant again, and (on
        # SQLite) a second set of workers, which the running server's lock keeps out.
        commands = {
            "apikey": ["apikey", "create", "--tenant", made["tenant_id"], "--role", "developer",
                       "--mode", "test", "--json"],
            "duplicate": ["tenant", "create", "--name", "Acme", "--email", EMAIL,
                          "--password", PASSWORD, "--json"],
        }
        if server_database_url.startswith("sqlite"):
            commands["worker"] = ["worker"]
        results = _run_side_by_side(commands, cwd=tmp_path, env=env)

        second = json_object(results["apikey"])
        assert second["api_key"].startswith("jc_test_")
        with_second = http.get("/tenants/roles/",
                               headers={"Authorization": f"Bearer {second['api_key']}"})
        assert with_second.status_code == 200
        duplicate = results["duplicate"]
        assert (duplicate.returncode, duplicate.stdout) == (1, "")
        assert f"{EMAIL} already exists" in duplicate.stderr
        assert "Traceback" not in duplicate.stderr
        if "worker" in results:
            assert results["worker"].returncode == 1
            assert "SQLite allows one worker set" in results["worker"].stderr

        server.send_signal(signal.SIGTERM)
        assert exits_within(server, 20) == 0, log.read_text()

    stopped = log.read_text()
    assert "Finished server process" in stopped
    assert "Traceback" not in stopped


def _run_side_by_side(commands: dict[str, list[str]], *, cwd: Path,
                      env: dict[str, str]) -> dict[str, subprocess.CompletedProcess[str]]:
    async def run_all() -> list[subprocess.CompletedProcess[str]]:
        return list(await asyncio.gather(*(
            asyncio.to_thread(run_tidings, args, cwd=cwd, env=env) for args in commands.values())))

    return dict(zip(commands, asyncio.run(run_all()), strict=True))
