"""Tenant isolation over every ``/tenants/`` endpoint: tenant B sees only its own data, and
naming tenant A's tag, key or member answers 404 and leaves them alone."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import FakeClock, TenantFactory, TenantHandle
from tidings.runtime import Runtime
from tidings.services.wallet import credit_wallet


@dataclass(frozen=True)
class World:
    a: TenantHandle
    b: TenantHandle
    a_tag_id: str
    a_key_id: str
    a_member_id: str
    markers: tuple[str, ...]  # strings that only tenant A's data contains


@pytest.fixture
async def world(client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime,
                clock: FakeClock) -> World:
    a, b = await tenants.create(name="Alpha Co"), await tenants.create(name="Bravo Co")
    clock.advance(1)
    tag = await client.post("/tenants/tenant-tags/", headers=a.headers,
                            json={"name": "alpha-only-tag"})
    key = await client.post("/tenants/api-keys/", headers=a.headers,
                            json={"name": "alpha-app-key", "role": "developer", "mode": "live"})
    member = await client.post("/tenants/members/invite/", headers=a.headers,
                               json={"email": "alpha-invitee@example.com", "role": "agent"})
    await client.patch("/tenants/branding/", headers=a.headers, json={
        "custom_domain": "alpha-brand.example.com", "email_sender": "alpha-sender@example.com"})
    async with runtime.sessions() as session:
        await credit_wallet(session, tenant_id=a.tenant_id, amount_minor=777,
                            reason="alpha-credit", now=clock())
        await session.commit()
    markers = (a.tenant_id, a.owner_email, "Alpha Co", "alpha-only-tag", "alpha-app-key",
               key.json()["prefix"], "alpha-invitee", "alpha-brand", "alpha-sender",
               "alpha-credit", member.json()["user_id"])
    return World(a, b, tag.json()["id"], key.json()["id"], member.json()["user_id"], markers)


READS = ["/tenants/roles/", "/tenants/onboarding-options/", "/tenants/branding/",
         "/tenants/settings/", "/tenants/users/", "/tenants/host-wallet/",
         "/tenants/waba-info/", "/tenants/tenant-tags/", "/tenants/api-keys/"]


@pytest.mark.parametrize("path", READS)
async def test_tenant_b_reads_nothing_of_tenant_a(
        client: httpx.AsyncClient, world: World, path: str) -> None:
    response = await client.get(path, headers=world.b.headers)
    assert response.status_code == 200
    assert [m for m in world.markers if m in response.text] == []


async def test_tenant_b_sees_its_own_data(client: httpx.AsyncClient, world: World) -> None:
    users = (await client.get("/tenants/users/", headers=world.b.headers)).json()
    settings = (await client.get("/tenants/settings/", headers=world.b.headers)).json()
    wallet = (await client.get("/tenants/host-wallet/", headers=world.b.headers)).json()
    flows = (await client.get("/tenants/onboarding-options/", headers=world.b.headers)).json()
    assert [u["email"] for u in users["results"]] == [world.b.owner_email]
    assert (settings["id"], settings["name"]) == (world.b.tenant_id, "Bravo Co")
    assert (wallet["balance_minor"], wallet["entries"]) == (0, [])
    assert [f["completed"] for f in flows] == [False, False, False, False]


ACROSS = [
    pytest.param("DELETE", "/tenants/tenant-tags/{tag}/", None, id="delete-tag-by-id"),
    pytest.param("DELETE", "/tenants/tenant-tags/?name=alpha-only-tag", None,
                 id="delete-tag-by-name"),
    pytest.param("DELETE", "/tenants/api-keys/{key}/", None, id="revoke-api-key"),
    pytest.param("PATCH", "/tenants/users/{member}/", {"role": "admin"}, id="change-role"),
    pytest.param("DELETE", "/tenants/users/{member}/", None, id="remove-invited-member"),
    pytest.param("DELETE", "/tenants/users/{owner}/", None, id="remove-owner"),
]


@pytest.mark.parametrize(("method", "path", "body"), ACROSS)
async def test_tenant_b_cannot_touch_tenant_a_by_id_and_gets_404(
        client: httpx.AsyncClient, world: World, method: str, path: str,
        body: dict[str, str] | None) -> None:
    ids = {"tag": world.a_tag_id, "key": world.a_key_id, "member": world.a_member_id,
           "owner": world.a.owner_id}
    before = [(await client.get(p, headers=world.a.headers)).json()
              for p in ("/tenants/tenant-tags/", "/tenants/api-keys/", "/tenants/users/")]

    response = await client.request(method, path.format(**ids), headers=world.b.headers,
                                    json=body)

    assert response.status_code == 404
    after = [(await client.get(p, headers=world.a.headers)).json()
             for p in ("/tenants/tenant-tags/", "/tenants/api-keys/", "/tenants/users/")]
    assert after == before


async def test_tenant_b_writes_change_only_tenant_b(
        client: httpx.AsyncClient, world: World) -> None:
    a_before = [(await client.get(p, headers=world.a.headers)).json()
                for p in ("/tenants/branding/", "/tenants/settings/", "/tenants/tenant-tags/")]
    await client.patch("/tenants/branding/", headers=world.b.headers,
                       json={"custom_domain": "bravo.example.com", "email_sender": None})
    await client.patch("/tenants/settings/", headers=world.b.headers,
                       json={"name": "Bravo Renamed", "default_region": "FR"})
    made = await client.post("/tenants/tenant-tags/", headers=world.b.headers,
                             json={"name": "alpha-only-tag"})  # same name, other tenant: fine
    a_after = [(await client.get(p, headers=world.a.headers)).json()
               for p in ("/tenants/branding/", "/tenants/settings/", "/tenants/tenant-tags/")]
    assert made.status_code == 201
    assert a_after == a_before


async def test_tenant_a_key_cannot_pick_tenant_b_with_the_header(
        client: httpx.AsyncClient, world: World) -> None:
    response = await client.get("/tenants/users/",
                                headers={**world.a.headers, "X-Tenant-ID": world.b.tenant_id})
    assert response.status_code == 404
