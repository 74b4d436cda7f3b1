"""Role enforcement on every ``/tenants/`` endpoint: each write endpoint called with a key of
each role answers success where the role may act, and 403 ``permission_denied`` (changing
nothing) where it may not; every role may read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import TenantFactory, TenantHandle
from tidings.domain.roles import Role

ADMINS = frozenset({Role.OWNER, Role.ADMIN})
BUILDERS = ADMINS | {Role.DEVELOPER}


@dataclass(frozen=True)
class WriteCase:
    method: str
    path: str  # formatted with the ids ``prepare`` returns
    body: dict[str, Any] | None
    allowed: frozenset[Role]
    success: int


WRITES = [
    WriteCase("PATCH", "/tenants/branding/", {"logo_url": "https://a.example.com/l.png"},
              ADMINS, 200),
    WriteCase("PATCH", "/tenants/settings/", {"name": "Renamed"}, ADMINS, 200),
    WriteCase("POST", "/tenants/members/invite/", {"email": "new@example.com", "role": "viewer"},
              ADMINS, 201),
    WriteCase("PATCH", "/tenants/users/{member}/", {"role": "agent"}, ADMINS, 200),
    WriteCase("DELETE", "/tenants/users/{member}/", None, ADMINS, 204),
    WriteCase("POST", "/tenants/tenant-tags/", {"name": "new"}, BUILDERS, 201),
    WriteCase("DELETE", "/tenants/tenant-tags/{tag}/", None, BUILDERS, 204),
    WriteCase("DELETE", "/tenants/tenant-tags/?name=old", None, BUILDERS, 204),
    WriteCase("POST", "/tenants/api-keys/", {"name": "k", "role": "viewer", "mode": "live"},
              BUILDERS, 201),
    WriteCase("DELETE", "/tenants/api-keys/{key}/", None, BUILDERS, 204),
]

READS = ["/tenants/roles/", "/tenants/onboarding-options/", "/tenants/branding/",
         "/tenants/settings/", "/tenants/users/", "/tenants/host-wallet/",
         "/tenants/waba-info/", "/tenants/tenant-tags/", "/tenants/api-keys/"]


async def prepare(client: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, str]:
    """Targets for the write endpoints: a pending viewer, a tag called ``old``, a viewer key."""
    member = await client.post("/tenants/members/invite/", headers=tenant.headers,
                               json={"email": "target@example.com", "role": "viewer"})
    tag = await client.post("/tenants/tenant-tags/", headers=tenant.headers,
                            json={"name": "old"})
    key = await client.post("/tenants/api-keys/", headers=tenant.headers,
                            json={"name": "target", "role": "viewer", "mode": "live"})
    return {"member": member.json()["user_id"], "tag": tag.json()["id"],
            "key": key.json()["id"]}


async def snapshot(client: httpx.AsyncClient, tenant: TenantHandle) -> list[Any]:
    return [(await client.get(path, headers=tenant.headers)).json()
            for path in READS if path != "/tenants/onboarding-options/"]


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
@pytest.mark.parametrize("case", WRITES, ids=[f"{c.method} {c.path}" for c in WRITES])
async def test_write_endpoint_enforces_the_role(
        client: httpx.AsyncClient, tenants: TenantFactory, case: WriteCase, role: Role) -> None:
    tenant = await tenants.create()
    targets = await prepare(client, tenant)
    headers = await tenants.key(tenant, role)
    before = await snapshot(client, tenant)

    response = await client.request(case.method, case.path.format(**targets), headers=headers,
                                     json=case.body)

    if role in case.allowed:
        assert response.status_code == case.success, response.text
    else:
        assert response.status_code == 403
        assert response.json() == {"detail": response.json()["detail"],
                                   "code": "permission_denied"}
        assert await snapshot(client, tenant) == before


@pytest.mark.parametrize("path", READS)
async def test_every_role_may_read(
        client: httpx.AsyncClient, tenants: TenantFactory, path: str) -> None:
    tenant = await tenants.create()
    for role in Role:
        response = await client.get(path, headers=await tenants.key(tenant, role))
        assert response.status_code == 200, (role, response.text)


@pytest.mark.parametrize("path", READS)
async def test_every_endpoint_needs_authentication(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
