"""``/tenants/api-keys/``: list without secrets, create (shown once), revoke, and who may make
which key."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import FakeClock, TenantFactory
from tidings.domain.roles import Role

KEY_FIELDS = {"id", "name", "role", "mode", "prefix", "created_at", "revoked_at"}


async def test_create_key_answers_201_and_shows_the_key_once(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.post("/tenants/api-keys/", headers=tenant.headers,
                                 json={"name": " ci bot ", "role": "developer", "mode": "test"})
    assert response.status_code == 201
    body = response.json()
    assert body == {"id": body["id"], "name": "ci bot", "role": "developer", "mode": "test",
                    "prefix": body["api_key"][:16], "created_at": "2026-11-24T12:00:00Z",
                    "revoked_at": None, "api_key": body["api_key"]}
    assert body["api_key"].startswith("jc_test_")
    listed = (await client.get("/tenants/api-keys/", headers=tenant.headers)).text
    assert body["api_key"] not in listed


async def test_list_keys_shows_metadata_but_never_the_key_or_its_hash(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.get("/tenants/api-keys/", headers=tenant.headers)
    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["next"], body["previous"]) == (1, None, None)
    (key,) = body["results"]
    assert set(key) == KEY_FIELDS
    assert (key["name"], key["role"], key["mode"]) == ("owner key", "owner", "live")
    assert key["prefix"] == tenant.api_key[:16]
    assert tenant.api_key not in response.text


async def test_a_created_key_works_until_revoked_then_answers_401(
        client: httpx.AsyncClient, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    made = (await client.post("/tenants/api-keys/", headers=tenant.headers,
                              json={"name": "app", "role": "viewer", "mode": "live"})).json()
    headers = {"Authorization": f"Bearer {made['api_key']}"}
    assert (await client.get("/tenants/users/", headers=headers)).status_code == 200
    clock.advance(5)

    revoked = await client.delete(f"/tenants/api-keys/{made['id']}/", headers=tenant.headers)

    assert revoked.status_code == 204
    after = await client.get("/tenants/users/", headers=headers)
    assert after.status_code == 401
    assert after.json()["code"] == "invalid_api_key"
    listed = (await client.get("/tenants/api-keys/", headers=tenant.headers)).json()["results"]
    assert listed[1]["revoked_at"] == "2026-11-24T12:00:05Z"


async def test_revoking_an_unknown_key_answers_404(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.delete("/tenants/api-keys/NOSUCHKEY/", headers=tenant.headers)
    assert response.status_code == 404
    assert response.json()["code"] == "api_key_not_found"


@pytest.mark.parametrize("body", [
    pytest.param({"name": "", "role": "viewer", "mode": "live"}, id="empty-name"),
    pytest.param({"name": "n" * 101, "role": "viewer", "mode": "live"}, id="name-over-100"),
    pytest.param({"name": "x", "role": "root", "mode": "live"}, id="unknown-role"),
    pytest.param({"name": "x", "role": "viewer", "mode": "prod"}, id="unknown-mode"),
    pytest.param({"name": "x", "role": "viewer"}, id="missing-mode"),
    pytest.param({"name": "x", "role": "viewer", "mode": "live", "scopes": []},
                 id="unknown-field"),
])
async def test_bad_key_request_answers_400_and_creates_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory, body: dict[str, object]) -> None:
    tenant = await tenants.create()
    response = await client.post("/tenants/api-keys/", headers=tenant.headers, json=body)
    assert response.status_code == 400
    listed = (await client.get("/tenants/api-keys/", headers=tenant.headers)).json()
    assert listed["count"] == 1


# (caller role, key role, may create)
KEY_RULES = [
    (Role.OWNER, Role.OWNER, True),
    (Role.ADMIN, Role.OWNER, False),
    (Role.ADMIN, Role.ADMIN, True),
    (Role.ADMIN, Role.VIEWER, True),
    (Role.DEVELOPER, Role.ADMIN, False),
    (Role.DEVELOPER, Role.DEVELOPER, True),
    (Role.DEVELOPER, Role.AGENT, True),
    (Role.DEVELOPER, Role.VIEWER, True),
    (Role.AGENT, Role.VIEWER, False),
    (Role.VIEWER, Role.VIEWER, False),
]


@pytest.mark.parametrize(("caller", "key_role", "allowed"), KEY_RULES,
                         ids=[f"{c.value}-makes-{k.value}" for c, k, _ in KEY_RULES])
async def test_who_may_create_which_key(
        client: httpx.AsyncClient, tenants: TenantFactory, caller: Role, key_role: Role,
        allowed: bool) -> None:
    tenant = await tenants.create()
    headers = await tenants.key(tenant, caller)
    response = await client.post("/tenants/api-keys/", headers=headers,
                                 json={"name": "k", "role": key_role.value, "mode": "live"})
    assert response.status_code == (201 if allowed else 403)
    if not allowed:
        assert response.json()["code"] == "permission_denied"


async def test_developer_cannot_revoke_a_key_with_a_higher_role(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    developer = await tenants.key(tenant, Role.DEVELOPER)
    owner_key_id = (await client.get("/tenants/api-keys/", headers=tenant.headers)
                    ).json()["results"][0]["id"]
    response = await client.delete(f"/tenants/api-keys/{owner_key_id}/", headers=developer)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert (await client.get("/tenants/roles/", headers=tenant.headers)).status_code == 200
