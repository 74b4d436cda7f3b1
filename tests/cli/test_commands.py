"""The operator's commands, run in-process against the test database, checked through the API."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import Result

from tests.cli.conftest import Cli
from tests.conftest import PASSWORD, FakeClock, TenantFactory
from tidings.pipeline.node_lock import NodeLock
from tidings.runtime import Runtime

EXPECTED_COMMANDS = {
    (): ["serve", "worker", "migrate", "tenant", "user", "apikey", "wallet"],
    ("tenant",): ["create", "list"],
    ("user",): ["add"],
    ("apikey",): ["create", "list", "revoke"],
    ("wallet",): ["credit"],
}


def one_json_value(result: Result) -> object:
    """The command's stdout, which must be exactly one line of JSON."""
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


def json_list(result: Result) -> list[dict[str, str]]:
    value = one_json_value(result)
    assert isinstance(value, list)
    return value


def failed_cleanly(result: Result) -> str:
    """Exit 1, nothing on stdout, no traceback: answer the message on stderr."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") or "\nerror: " in result.stderr
    return result.stderr


@pytest.mark.parametrize(("group", "commands"), list(EXPECTED_COMMANDS.items()))
async def test_help_lists_every_command(cli: Cli, group: tuple[str, ...],
                                        commands: list[str]) -> None:
    result = await cli(*group, "--help")
    assert result.exit_code == 0, result.output
    for command in commands:
        assert command in result.stdout


async def test_tenant_create_json_prints_one_object_and_logs_only_to_stderr(
        cli: Cli, client: httpx.AsyncClient, tmp_path: Path) -> None:
    # No secret key: the command generates one and warns, on stderr only.
    result = await cli("tenant", "create", "--name", "Acme", "--email", "Owner@Example.com",
                       "--password", PASSWORD, "--json",
                       env={"TIDINGS_SECRET_KEY": None, "TIDINGS_VAR_DIR": str(tmp_path)})

    made = one_json_value(result)
    assert isinstance(made, dict)
    assert set(made) == {"tenant_id", "user_id", "api_key"}
    assert made["api_key"].startswith("jc_live_")
    assert "TIDINGS_SECRET_KEY is not set" in result.stderr
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    headers = {"Authorization": f"Bearer {made['api_key']}"}
    users = (await client.get("/tenants/users/", headers=headers)).json()["results"]
    assert [(u["email"], u["role"]) for u in users] == [("owner@example.com", "owner")]
    wallet = (await client.get("/tenants/host-wallet/", headers=headers)).json()
    assert (wallet["currency"], wallet["balance_minor"]) == ("USD", 0)


async def test_tenant_create_without_json_prints_the_key_for_humans(cli: Cli) -> None:
    result = await cli("tenant", "create", "--name", "Acme", "--email", "a@example.com",
                       "--password", PASSWORD, "--region", "gb")
    assert result.exit_code == 0, result.output
    assert "Created tenant 'Acme'" in result.stdout
    assert "region GB" in result.stdout
    assert "jc_live_" in result.stdout


async def test_tenant_create_with_a_taken_email_exits_1_without_traceback(cli: Cli) -> None:
    args = ("tenant", "create", "--name", "Acme", "--email", "a@example.com",
            "--password", PASSWORD, "--json")
    assert (await cli(*args)).exit_code == 0
    message = failed_cleanly(await cli(*args))
    assert "a@example.com already exists" in message
    listed = one_json_value(await cli("tenant", "list", "--json"))
    assert isinstance(listed, list)
    assert len(listed) == 1


@pytest.mark.parametrize(("options", "problem"), [
    (["--password", "short"], "password: must be at least 8 characters"),
    (["--password", PASSWORD, "--region", "XX"], "region: unknown region 'XX'"),
    (["--password", PASSWORD, "--email", "not-an-email"], "email:"),
    (["--password", PASSWORD, "--name", " "], "name: must be 1 to 200 characters"),
])
async def test_tenant_create_with_bad_input_exits_1_and_creates_nothing(
        cli: Cli, options: list[str], problem: str) -> None:
    defaults = {"--name": "Acme", "--email": "a@example.com"}
    given = dict(zip(options[::2], options[1::2], strict=True))
    args = [part for name, value in {**defaults, **given}.items() for part in (name, value)]
    assert problem in failed_cleanly(await cli("tenant", "create", *args))
    assert one_json_value(await cli("tenant", "list", "--json")) == []


async def test_tenant_list_shows_every_tenant_oldest_first(
        cli: Cli, tenants: TenantFactory) -> None:
    first, second = await tenants.create("First"), await tenants.create("Second")
    listed = one_json_value(await cli("tenant", "list", "--json"))
    assert isinstance(listed, list)
    assert [(t["id"], t["name"]) for t in listed] == [(first.tenant_id, "First"),
                                                     (second.tenant_id, "Second")]
    human = await cli("tenant", "list")
    assert first.tenant_id in human.stdout
    assert "Second" in human.stdout


async def test_apikey_create_json_prints_id_and_a_working_key(
        cli: Cli, client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    made = one_json_value(await cli("apikey", "create", "--tenant", tenant.tenant_id,
                                    "--role", "developer", "--mode", "test", "--json"))

    assert isinstance(made, dict)
    assert set(made) == {"id", "api_key"}
    assert made["api_key"].startswith("jc_test_")
    headers = {"Authorization": f"Bearer {made['api_key']}"}
    assert (await client.get("/tenants/roles/", headers=headers)).status_code == 200
    listed = one_json_value(await cli("apikey", "list", "--tenant", tenant.tenant_id, "--json"))
    assert isinstance(listed, list)
    mine = next(key for key in listed if key["id"] == made["id"])
    assert (mine["role"], mine["mode"], mine["name"], mine["revoked_at"]) == (
        "developer", "test", "developer key", None)
    assert made["api_key"].startswith(mine["prefix"])


async def test_apikey_commands_for_an_unknown_tenant_exit_1(cli: Cli) -> None:
    created = await cli("apikey", "create", "--tenant", "NOPE", "--role", "viewer",
                        "--mode", "live")
    listed = await cli("apikey", "list", "--tenant", "NOPE")
    assert "tenant NOPE not found" in failed_cleanly(created)
    assert "tenant NOPE not found" in failed_cleanly(listed)


async def test_apikey_with_an_unknown_role_is_a_usage_error(cli: Cli) -> None:
    result = await cli("apikey", "create", "--tenant", "T", "--role", "boss", "--mode", "live")
    assert result.exit_code == 2
    assert result.stdout == ""


async def test_revoked_key_answers_401_through_the_app_once_the_auth_cache_expires(
        cli: Cli, client: httpx.AsyncClient, tenants: TenantFactory, clock: FakeClock,
        runtime: Runtime) -> None:
    tenant = await tenants.create()
    (key,) = json_list(await cli("apikey", "list", "--tenant", tenant.tenant_id, "--json"))
    assert (await client.get("/tenants/roles/", headers=tenant.headers)).status_code == 200

    revoked = one_json_value(await cli("apikey", "revoke", "--tenant", tenant.tenant_id,
                                       "--id", key["id"], "--json"))

    assert isinstance(revoked, dict)
    assert revoked["revoked_at"] is not None
    clock.advance(runtime.settings.auth_cache_seconds + 0.1)
    response = await client.get("/tenants/roles/", headers=tenant.headers)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"


async def test_apikey_revoke_of_another_tenants_key_exits_1_and_keeps_it(
        cli: Cli, client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    mine, theirs = await tenants.create(), await tenants.create()
    (key,) = json_list(await cli("apikey", "list", "--tenant", theirs.tenant_id, "--json"))
    result = await cli("apikey", "revoke", "--tenant", mine.tenant_id, "--id", key["id"])
    assert "not found" in failed_cleanly(result)
    assert (await client.get("/tenants/roles/", headers=theirs.headers)).status_code == 200


async def login(client: httpx.AsyncClient, email: str, password: str,
                tenant_id: str | None = None) -> httpx.Response:
    tokens = await client.post("/token/", json={"email": email, "password": password})
    assert tokens.status_code == 200, tokens.text
    headers = {"Authorization": f"Bearer {tokens.json()['access']}"}
    if tenant_id:
        headers["X-Tenant-ID"] = tenant_id
    return await client.get("/tenants/users/", headers=headers)


async def test_user_add_creates_an_active_member_who_can_log_in(
        cli: Cli, client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    added = one_json_value(await cli("user", "add", "--tenant", tenant.tenant_id, "--email",
                                     "agent@example.com", "--password", "agent password",
                                     "--role", "agent", "--json"))

    assert isinstance(added, dict)
    assert (added["tenant_id"], added["role"], added["new_user"]) == (
        tenant.tenant_id, "agent", True)
    members = await login(client, "agent@example.com", "agent password")
    assert members.status_code == 200
    assert {(m["email"], m["role"]) for m in members.json()["results"]} == {
        (tenant.owner_email, "owner"), ("agent@example.com", "agent")}


async def test_user_add_with_a_known_email_adds_that_user_and_keeps_the_password(
        cli: Cli, client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    first, second = await tenants.create(), await tenants.create()
    result = await cli("user", "add", "--tenant", second.tenant_id, "--email",
                       first.owner_email, "--password", "a different one", "--role", "viewer",
                       "--json")

    added = one_json_value(result)
    assert isinstance(added, dict)
    assert (added["user_id"], added["new_user"]) == (first.owner_id, False)
    assert "password is unchanged" in result.stderr
    in_second = await login(client, first.owner_email, first.password, second.tenant_id)
    assert in_second.status_code == 200


async def test_user_add_refuses_a_new_user_without_password_and_a_second_membership(
        cli: Cli, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    no_password = await cli("user", "add", "--tenant", tenant.tenant_id, "--email",
                            "new@example.com", "--role", "agent")
    again = await cli("user", "add", "--tenant", tenant.tenant_id, "--email",
                      tenant.owner_email, "--role", "agent")
    unknown = await cli("user", "add", "--tenant", "NOPE", "--email", "x@example.com",
                        "--password", PASSWORD, "--role", "agent")
    assert "password: is required" in failed_cleanly(no_password)
    assert "already a member" in failed_cleanly(again)
    assert "tenant NOPE not found" in failed_cleanly(unknown)


async def test_wallet_credit_changes_the_balance_the_api_shows(
        cli: Cli, client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    credited = one_json_value(await cli("wallet", "credit", "--tenant", tenant.tenant_id,
                                        "--amount-minor", "1500", "--reason", "top-up",
                                        "--json"))
    corrected = await cli("wallet", "credit", "--tenant", tenant.tenant_id,
                          "--amount-minor", "-500", "--reason", "correction")
    overdrawn = await cli("wallet", "credit", "--tenant", tenant.tenant_id,
                          "--amount-minor", "-5000", "--reason", "too much")

    assert isinstance(credited, dict)
    assert {k: credited[k] for k in ("tenant_id", "amount_minor", "balance_minor",
                                     "currency")} == {
        "tenant_id": tenant.tenant_id, "amount_minor": 1500, "balance_minor": 1500,
        "currency": "USD"}
    assert corrected.exit_code == 0
    assert "balance is now 1000" in corrected.stdout
    assert "below zero" in failed_cleanly(overdrawn)
    wallet = (await client.get("/tenants/host-wallet/", headers=tenant.headers)).json()
    assert wallet["balance_minor"] == 1000
    assert [e["reason"] for e in wallet["entries"]] == ["correction", "top-up"]


async def test_wallet_credit_for_an_unknown_tenant_exits_1(cli: Cli) -> None:
    result = await cli("wallet", "credit", "--tenant", "NOPE", "--amount-minor", "5",
                       "--reason", "x")
    assert "not found" in failed_cleanly(result)


async def test_migrate_applies_then_says_up_to_date(cli: Cli, tmp_path: Path) -> None:
    env: dict[str, str | None] = {
        "TIDINGS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"}
    first = await cli("migrate", env=env)
    second = await cli("migrate", env=env)
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("Applied ")
    assert "0001" in first.stdout
    assert second.exit_code == 0, second.output
    assert "is up to date" in second.stdout


async def test_unreachable_database_exits_1_with_a_message(cli: Cli) -> None:
    result = await cli("migrate", env={"TIDINGS_DATABASE_URL":
                                       f"sqlite+aiosqlite:///{Path('/proc/nowhere/x.db')}"})
    assert result.exit_code == 1
    assert "error:" in result.stderr


async def test_bad_configuration_exits_1_with_a_message(cli: Cli) -> None:
    result = await cli("migrate", env={"TIDINGS_LOG_LEVEL": "chatty"})
    assert "log level must be one of" in failed_cleanly(result)


async def test_second_worker_on_the_same_sqlite_file_refuses_to_start(
        cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'single.db'}"
    lock = NodeLock.for_database(url)
    assert lock is not None
    lock.acquire()  # as a running `tidings serve` or `tidings worker` holds it
    try:
        result = await cli("worker", env={"TIDINGS_DATABASE_URL": url})
    finally:
        lock.release()
    assert "SQLite allows one worker set per database file" in failed_cleanly(result)


async def test_serve_refuses_to_start_workers_on_a_sqlite_file_whose_lock_is_held(
        cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'single.db'}"
    lock = NodeLock.for_database(url)
    assert lock is not None
    lock.acquire()
    try:
        # An address nothing can listen on: were the lock ignored, the server would fail to
        # start (with another message) rather than run on and hang the test.
        result = await cli("serve", "--host", "256.0.0.1", "--port", "0",
                           env={"TIDINGS_DATABASE_URL": url})
    finally:
        lock.release()
    assert "SQLite allows one worker set per database file" in failed_cleanly(result)


async def test_tenant_create_without_password_and_no_terminal_exits_1(cli: Cli) -> None:
    result = await cli("tenant", "create", "--name", "Acme", "--email", "a@example.com")
    assert "--password is required" in failed_cleanly(result)
