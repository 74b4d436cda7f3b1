"""``/token/`` and ``/refresh/``, bearer authentication, API keys and their revocation."""

from __future__ import annotations

import httpx

from tests.conftest import FakeClock, TenantFactory
from tidings.runtime import Runtime
from tidings.services.api_keys import revoke_api_key


async def test_token_answers_access_and_refresh_for_valid_credentials(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.post("/token/", json={"email": tenant.owner_email,
                                                  "password": tenant.password})
    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}


async def test_token_with_wrong_password_answers_401(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.post("/token/", json={"email": tenant.owner_email,
                                                  "password": "wrong password"})
    assert response.status_code == 401
    assert response.json() == {"detail": "email or password is wrong",
                               "code": "invalid_credentials"}


async def test_token_for_unknown_email_answers_the_same_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/token/", json={"email": "nobody@example.com",
                                                  "password": "whatever1"})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


async def test_access_token_authenticates_native_requests(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    tokens = (await client.post("/token/", json={"email": tenant.owner_email,
                                                 "password": tenant.password})).json()
    response = await client.get("/tenants/roles/",
                                headers={"Authorization": f"Bearer {tokens['access']}"})
    assert response.status_code == 200


async def test_expired_access_token_answers_401_and_refresh_gives_a_working_one(
        client: httpx.AsyncClient, tenants: TenantFactory, clock: FakeClock,
        runtime: Runtime) -> None:
    tenant = await tenants.create()
    tokens = (await client.post("/token/", json={"email": tenant.owner_email,
                                                 "password": tenant.password})).json()
    clock.advance(runtime.settings.access_token_ttl_seconds + 1)

    expired = await client.get("/tenants/roles/",
                               headers={"Authorization": f"Bearer {tokens['access']}"})
    refreshed = await client.post("/refresh/", json={"refresh": tokens["refresh"]})
    retried = await client.get("/tenants/roles/", headers={
        "Authorization": f"Bearer {refreshed.json()['access']}"})

    assert expired.status_code == 401
    assert expired.json()["code"] == "token_expired"
    assert refreshed.status_code == 200
    assert retried.status_code == 200


async def test_expired_refresh_token_answers_401(
        client: httpx.AsyncClient, tenants: TenantFactory, clock: FakeClock,
        runtime: Runtime) -> None:
    tenant = await tenants.create()
    tokens = (await client.post("/token/", json={"email": tenant.owner_email,
                                                 "password": tenant.password})).json()
    clock.advance(runtime.settings.refresh_token_ttl_seconds + 1)
    response = await client.post("/refresh/", json={"refresh": tokens["refresh"]})
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


async def test_access_token_is_not_accepted_as_refresh_token(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    tokens = (await client.post("/token/", json={"email": tenant.owner_email,
                                                 "password": tenant.password})).json()
    response = await client.post("/refresh/", json={"refresh": tokens["access"]})
    assert response.status_code == 401


async def test_missing_or_garbage_credentials_answer_401(client: httpx.AsyncClient) -> None:
    missing = await client.get("/tenants/roles/")
    garbage = await client.get("/tenants/roles/", headers={"Authorization": "Bearer nonsense"})
    unknown_key = await client.get("/tenants/roles/",
                                   headers={"Authorization": "Bearer jc_live_unknown"})
    assert [r.status_code for r in (missing, garbage, unknown_key)] == [401, 401, 401]
    assert missing.json()["code"] == "not_authenticated"


async def test_a_key_revoked_elsewhere_answers_401_once_the_auth_cache_expires(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime,
        clock: FakeClock) -> None:
    tenant = await tenants.create()
    assert (await client.get("/tenants/roles/", headers=tenant.headers)).status_code == 200
    async with runtime.sessions() as session:
        from tidings.services.api_keys import list_api_keys
        (key,) = await list_api_keys(session, tenant.tenant_id)
        await revoke_api_key(session, tenant_id=tenant.tenant_id, key_id=key.id,
                             now=runtime.clock())
        await session.commit()
    clock.advance(runtime.settings.auth_cache_seconds + 0.1)
    response = await client.get("/tenants/roles/", headers=tenant.headers)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"


async def test_api_key_naming_another_tenant_answers_404(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    mine, theirs = await tenants.create(), await tenants.create()
    response = await client.get("/tenants/roles/",
                                headers={**mine.headers, "X-Tenant-ID": theirs.tenant_id})
    assert response.status_code == 404


async def test_malformed_json_answers_400_with_code(client: httpx.AsyncClient) -> None:
    response = await client.post("/token/", content=b"{not json",
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


async def test_unknown_field_answers_400_listing_it(client: httpx.AsyncClient) -> None:
    response = await client.post("/token/", json={"email": "a@example.com", "password": "x",
                                                  "remember": True})
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "remember",
                                          "message": "Extra inputs are not permitted"}]


async def test_unknown_route_answers_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found", "code": "not_found"}


async def test_repeated_logins_for_one_email_answer_429_past_the_login_limit(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    attempts = [await client.post("/token/", json={"email": tenant.owner_email,
                                                   "password": "guess number x"})
                for _ in range(11)]
    assert [r.status_code for r in attempts] == [401] * 10 + [429]
    assert attempts[10].json()["code"] == "rate_limited"
    assert int(attempts[10].headers["Retry-After"]) >= 1


async def test_the_login_limit_is_per_email(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    victim, other = await tenants.create(), await tenants.create()
    for _ in range(10):
        await client.post("/token/", json={"email": victim.owner_email, "password": "guess 123"})
    response = await client.post("/token/", json={"email": other.owner_email,
                                                  "password": other.password})
    assert response.status_code == 200


async def test_a_key_revoked_through_the_api_answers_401_at_once(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    keys = (await client.get("/tenants/api-keys/", headers=tenant.headers)).json()["results"]
    revoked = await client.delete(f"/tenants/api-keys/{keys[0]['id']}/", headers=tenant.headers)
    assert revoked.status_code == 204
    response = await client.get("/tenants/roles/", headers=tenant.headers)
    assert response.status_code == 401
