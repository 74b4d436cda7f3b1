"""``/tenants/users/…`` and ``/tenants/members/…``: listing members, inviting, accepting,
changing roles and removing members, with the owner rules."""

from __future__ import annotations

import httpx

from tests.conftest import PASSWORD, FakeClock, TenantFactory, TenantHandle
from tidings.domain.roles import Role
from tidings.runtime import Runtime

NEW_PASSWORD = "a fresh long password"


async def login(client: httpx.AsyncClient, email: str, password: str,
                tenant_id: str | None = None) -> dict[str, str]:
    response = await client.post("/token/", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    headers = {"Authorization": f"Bearer {response.json()['access']}"}
    return {**headers, "X-Tenant-ID": tenant_id} if tenant_id else headers


async def invite(client: httpx.AsyncClient, tenant: TenantHandle, email: str,
                 role: str = "viewer") -> dict[str, str]:
    response = await client.post("/tenants/members/invite/", headers=tenant.headers,
                                 json={"email": email, "role": role})
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


async def members(client: httpx.AsyncClient, tenant: TenantHandle) -> list[dict[str, object]]:
    response = await client.get("/tenants/users/", headers=tenant.headers)
    assert response.status_code == 200
    results: list[dict[str, object]] = response.json()["results"]
    return results


async def test_users_lists_the_owner_in_the_page_envelope(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.get("/tenants/users/", headers=tenant.headers)
    assert response.status_code == 200
    assert response.json() == {"count": 1, "next": None, "previous": None, "results": [
        {"id": tenant.owner_id, "email": tenant.owner_email, "name": None, "role": "owner",
         "status": "active", "joined_at": "2026-11-24T12:00:00Z"}]}


async def test_users_paginates_with_limit_and_offset(
        client: httpx.AsyncClient, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    for n in range(3):
        clock.advance(1)
        await invite(client, tenant, f"member{n}@example.com")
    response = await client.get("/tenants/users/?limit=2&offset=2", headers=tenant.headers)
    body = response.json()
    assert body["count"] == 4
    assert [m["email"] for m in body["results"]] == ["member1@example.com", "member2@example.com"]
    assert body["next"] is None
    assert body["previous"] == "http://testserver/tenants/users/?limit=2&offset=0"


async def test_invite_answers_201_with_a_one_time_token_and_lists_a_pending_member(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.post("/tenants/members/invite/", headers=tenant.headers,
                                 json={"email": "  New.Person@Example.com ", "role": "agent"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "user_id", "email", "role", "status", "invite_token",
                         "expires_at"}
    assert body["email"] == "new.person@example.com"
    assert (body["role"], body["status"]) == ("agent", "pending")
    assert body["expires_at"] == "2026-12-01T12:00:00Z"  # now + invite_ttl_seconds (7 days)
    assert len(body["invite_token"]) >= 40
    listed = await members(client, tenant)
    assert listed[1] == {"id": body["user_id"], "email": "new.person@example.com", "name": None,
                         "role": "agent", "status": "pending", "joined_at": None}


async def test_new_user_accepts_sets_password_and_can_then_log_in_to_the_tenant(
        client: httpx.AsyncClient, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    invitation = await invite(client, tenant, "newbie@example.com", "developer")
    clock.advance(60)

    accepted = await client.post("/tenants/members/accept/", json={
        "token": invitation["invite_token"], "password": NEW_PASSWORD, "name": "New Bie"})

    assert accepted.status_code == 200
    assert accepted.json() == {"tenant_id": tenant.tenant_id,
                               "user_id": invitation["user_id"], "role": "developer"}
    headers = await login(client, "newbie@example.com", NEW_PASSWORD, tenant.tenant_id)
    settings = await client.get("/tenants/settings/", headers=headers)
    assert settings.json()["id"] == tenant.tenant_id
    listed = await members(client, tenant)
    assert listed[1] == {"id": invitation["user_id"], "email": "newbie@example.com",
                         "name": "New Bie", "role": "developer", "status": "active",
                         "joined_at": "2026-11-24T12:01:00Z"}


async def test_existing_user_accepts_with_their_password_and_picks_the_tenant_by_header(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    first, second = await tenants.create(), await tenants.create()
    invitation = await invite(client, second, first.owner_email, "admin")

    accepted = await client.post("/tenants/members/accept/", json={
        "token": invitation["invite_token"], "password": PASSWORD})

    assert accepted.status_code == 200
    assert accepted.json()["tenant_id"] == second.tenant_id
    default = await login(client, first.owner_email, PASSWORD)
    chosen = await login(client, first.owner_email, PASSWORD, second.tenant_id)
    assert (await client.get("/tenants/settings/", headers=default)).json()["id"] == \
        first.tenant_id
    assert (await client.get("/tenants/settings/", headers=chosen)).json()["id"] == \
        second.tenant_id


async def test_existing_user_with_a_wrong_password_answers_401_and_stays_pending(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    first, second = await tenants.create(), await tenants.create()
    invitation = await invite(client, second, first.owner_email)

    response = await client.post("/tenants/members/accept/", json={
        "token": invitation["invite_token"], "password": "not their password"})

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert (await members(client, second))[1]["status"] == "pending"
    await login(client, first.owner_email, PASSWORD)  # their password did not change


async def test_accept_with_a_weak_password_answers_400_and_stays_pending(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    invitation = await invite(client, tenant, "weak@example.com")
    response = await client.post("/tenants/members/accept/", json={
        "token": invitation["invite_token"], "password": "short"})
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "password",
                                          "message": "must be at least 8 characters"}]
    assert (await members(client, tenant))[1]["status"] == "pending"


async def test_accept_with_an_unknown_token_answers_400_invalid_invite(
        client: httpx.AsyncClient) -> None:
    response = await client.post("/tenants/members/accept/", json={
        "token": "no-such-token", "password": NEW_PASSWORD})
    assert response.status_code == 400
    assert response.json() == {"detail": "the invitation is unknown, already used or expired",
                               "code": "invalid_invite"}


async def test_a_used_token_answers_400_invalid_invite(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    invitation = await invite(client, tenant, "once@example.com")
    body = {"token": invitation["invite_token"], "password": NEW_PASSWORD}
    assert (await client.post("/tenants/members/accept/", json=body)).status_code == 200
    again = await client.post("/tenants/members/accept/", json=body)
    assert again.status_code == 400
    assert again.json()["code"] == "invalid_invite"


async def test_an_expired_invitation_answers_400_invalid_invite(
        client: httpx.AsyncClient, tenants: TenantFactory, clock: FakeClock,
        runtime: Runtime) -> None:
    tenant = await tenants.create()
    invitation = await invite(client, tenant, "late@example.com")
    clock.advance(runtime.settings.invite_ttl_seconds)
    response = await client.post("/tenants/members/accept/", json={
        "token": invitation["invite_token"], "password": NEW_PASSWORD})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_invite"


async def test_accept_needs_no_authentication_but_rejects_unknown_fields(
        client: httpx.AsyncClient) -> None:
    response = await client.post("/tenants/members/accept/", json={
        "token": "t", "password": NEW_PASSWORD, "role": "owner"})
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "role",
                                          "message": "Extra inputs are not permitted"}]


async def test_inviting_a_pending_member_again_answers_409_already_member(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    await invite(client, tenant, "twice@example.com")
    response = await client.post("/tenants/members/invite/", headers=tenant.headers,
                                 json={"email": "TWICE@example.com", "role": "admin"})
    assert response.status_code == 409
    assert response.json()["code"] == "already_member"


async def test_inviting_an_active_member_answers_409_already_member(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.post("/tenants/members/invite/", headers=tenant.headers,
                                 json={"email": tenant.owner_email, "role": "viewer"})
    assert response.status_code == 409
    assert response.json()["code"] == "already_member"


async def test_an_expired_invitation_can_be_replaced_by_a_new_one(
        client: httpx.AsyncClient, tenants: TenantFactory, clock: FakeClock,
        runtime: Runtime) -> None:
    tenant = await tenants.create()
    old = await invite(client, tenant, "again@example.com")
    clock.advance(runtime.settings.invite_ttl_seconds + 1)
    new = await invite(client, tenant, "again@example.com", "agent")
    stale = await client.post("/tenants/members/accept/", json={
        "token": old["invite_token"], "password": NEW_PASSWORD})
    fresh = await client.post("/tenants/members/accept/", json={
        "token": new["invite_token"], "password": NEW_PASSWORD})
    assert (new["id"], new["user_id"]) == (old["id"], old["user_id"])
    assert stale.status_code == 400
    assert fresh.json()["role"] == "agent"


async def test_invite_with_a_bad_email_answers_400_and_creates_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.post("/tenants/members/invite/", headers=tenant.headers,
                                 json={"email": "not an email", "role": "viewer"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "email"
    assert len(await members(client, tenant)) == 1


async def test_invite_with_an_unknown_role_answers_400(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.post("/tenants/members/invite/", headers=tenant.headers,
                                 json={"email": "x@example.com", "role": "superuser"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "role"


async def test_admin_cannot_invite_an_owner(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    admin = await tenants.key(tenant, Role.ADMIN)
    response = await client.post("/tenants/members/invite/", headers=admin,
                                 json={"email": "boss@example.com", "role": "owner"})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert len(await members(client, tenant)) == 1


async def test_owner_can_invite_an_owner(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    body = await invite(client, tenant, "coowner@example.com", "owner")
    assert body["role"] == "owner"


async def test_patch_user_changes_the_role(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    invitation = await invite(client, tenant, "promote@example.com")
    response = await client.patch(f"/tenants/users/{invitation['user_id']}/",
                                  headers=tenant.headers, json={"role": "admin"})
    assert response.status_code == 200
    assert response.json() == {"id": invitation["user_id"], "email": "promote@example.com",
                               "name": None, "role": "admin", "status": "pending",
                               "joined_at": None}


async def test_the_last_owner_cannot_be_demoted(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.patch(f"/tenants/users/{tenant.owner_id}/", headers=tenant.headers,
                                  json={"role": "admin"})
    assert response.status_code == 409
    assert response.json()["code"] == "last_owner"
    assert (await members(client, tenant))[0]["role"] == "owner"


async def test_the_last_owner_cannot_be_removed(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.delete(f"/tenants/users/{tenant.owner_id}/", headers=tenant.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "last_owner"


async def test_a_pending_owner_does_not_count_as_another_owner(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    await invite(client, tenant, "maybe-owner@example.com", "owner")
    response = await client.delete(f"/tenants/users/{tenant.owner_id}/", headers=tenant.headers)
    assert response.status_code == 409


async def test_an_owner_can_be_demoted_once_another_owner_is_active(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    invitation = await invite(client, tenant, "heir@example.com", "owner")
    await client.post("/tenants/members/accept/", json={
        "token": invitation["invite_token"], "password": NEW_PASSWORD})
    response = await client.patch(f"/tenants/users/{tenant.owner_id}/", headers=tenant.headers,
                                  json={"role": "viewer"})
    assert response.status_code == 200
    assert response.json()["role"] == "viewer"


async def test_admin_cannot_remove_or_demote_an_owner_or_promote_to_owner(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    invitation = await invite(client, tenant, "second-owner@example.com", "owner")
    await client.post("/tenants/members/accept/", json={
        "token": invitation["invite_token"], "password": NEW_PASSWORD})
    viewer = await invite(client, tenant, "viewer@example.com")
    admin = await tenants.key(tenant, Role.ADMIN)

    removed = await client.delete(f"/tenants/users/{tenant.owner_id}/", headers=admin)
    demoted = await client.patch(f"/tenants/users/{tenant.owner_id}/", headers=admin,
                                 json={"role": "admin"})
    promoted = await client.patch(f"/tenants/users/{viewer['user_id']}/", headers=admin,
                                  json={"role": "owner"})

    assert [r.status_code for r in (removed, demoted, promoted)] == [403, 403, 403]
    assert {r.json()["code"] for r in (removed, demoted, promoted)} == {"permission_denied"}


async def test_removing_a_member_ends_their_access_to_the_tenant(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    invitation = await invite(client, tenant, "leaver@example.com", "admin")
    await client.post("/tenants/members/accept/", json={
        "token": invitation["invite_token"], "password": NEW_PASSWORD})
    headers = await login(client, "leaver@example.com", NEW_PASSWORD, tenant.tenant_id)

    response = await client.delete(f"/tenants/users/{invitation['user_id']}/",
                                   headers=tenant.headers)

    assert response.status_code == 204
    assert response.content == b""
    assert [m["id"] for m in await members(client, tenant)] == [tenant.owner_id]
    after = await client.get("/tenants/settings/", headers=headers)
    assert after.status_code == 404


async def test_removing_a_pending_member_withdraws_the_invitation(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    invitation = await invite(client, tenant, "withdrawn@example.com")
    await client.delete(f"/tenants/users/{invitation['user_id']}/", headers=tenant.headers)
    response = await client.post("/tenants/members/accept/", json={
        "token": invitation["invite_token"], "password": NEW_PASSWORD})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_invite"


async def test_an_unknown_member_answers_404(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    deleted = await client.delete("/tenants/users/NOSUCHUSER/", headers=tenant.headers)
    patched = await client.patch("/tenants/users/NOSUCHUSER/", headers=tenant.headers,
                                 json={"role": "viewer"})
    assert [deleted.status_code, patched.status_code] == [404, 404]
    assert deleted.json()["code"] == "member_not_found"
