"""``/tenants/tenant-tags/``: list, create, delete by id and by name."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import TenantFactory, TenantHandle


async def make_tag(client: httpx.AsyncClient, tenant: TenantHandle, name: str,
                   color: str | None = None) -> dict[str, Any]:
    body = {"name": name} if color is None else {"name": name, "color": color}
    response = await client.post("/tenants/tenant-tags/", headers=tenant.headers, json=body)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def tag_names(client: httpx.AsyncClient, tenant: TenantHandle) -> list[str]:
    response = await client.get("/tenants/tenant-tags/", headers=tenant.headers)
    return [tag["name"] for tag in response.json()["results"]]


async def test_create_tag_answers_201_with_the_tag(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.post("/tenants/tenant-tags/", headers=tenant.headers,
                                 json={"name": "  VIP ", "color": "#FF8800"})
    assert response.status_code == 201
    body = response.json()
    assert body == {"id": body["id"], "name": "VIP", "color": "#ff8800",
                    "created_at": "2026-11-24T12:00:00Z"}
    assert len(body["id"]) == 26


async def test_list_tags_is_paginated_and_sorted_by_name(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    for name in ("gamma", "alpha", "beta"):
        await make_tag(client, tenant, name)
    response = await client.get("/tenants/tenant-tags/?limit=2", headers=tenant.headers)
    body = response.json()
    assert (body["count"], body["previous"]) == (3, None)
    assert body["next"] == "http://testserver/tenants/tenant-tags/?limit=2&offset=2"
    assert [t["name"] for t in body["results"]] == ["alpha", "beta"]
    assert set(body["results"][0]) == {"id", "name", "color", "created_at"}


async def test_a_duplicate_tag_name_answers_409_duplicate_tag(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    await make_tag(client, tenant, "vip")
    response = await client.post("/tenants/tenant-tags/", headers=tenant.headers,
                                 json={"name": " vip"})
    assert response.status_code == 409
    assert response.json()["code"] == "duplicate_tag"


async def test_two_tenants_may_use_the_same_tag_name(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    first, second = await tenants.create(), await tenants.create()
    await make_tag(client, first, "vip")
    await make_tag(client, second, "vip")


@pytest.mark.parametrize("body", [
    pytest.param({"name": ""}, id="empty-name"),
    pytest.param({"name": "   "}, id="blank-name"),
    pytest.param({"name": "n" * 65}, id="name-over-64"),
    pytest.param({"name": "bad\x00name"}, id="control-character"),
    pytest.param({"name": "ok", "color": "red"}, id="color-not-hex"),
    pytest.param({"name": "ok", "color": "#12345"}, id="color-short"),
    pytest.param({"name": "ok", "priority": 1}, id="unknown-field"),
    pytest.param({}, id="missing-name"),
])
async def test_bad_tag_answers_400_and_creates_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory, body: dict[str, Any]) -> None:
    tenant = await tenants.create()
    response = await client.post("/tenants/tenant-tags/", headers=tenant.headers, json=body)
    assert response.status_code == 400
    assert response.json()["errors"]
    assert await tag_names(client, tenant) == []


async def test_delete_tag_by_id_answers_204(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    tag = await make_tag(client, tenant, "old")
    await make_tag(client, tenant, "kept")
    response = await client.delete(f"/tenants/tenant-tags/{tag['id']}/", headers=tenant.headers)
    assert response.status_code == 204
    assert await tag_names(client, tenant) == ["kept"]


async def test_delete_tag_by_name_answers_204(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    await make_tag(client, tenant, "old tag")
    response = await client.delete("/tenants/tenant-tags/", headers=tenant.headers,
                                   params={"name": "old tag"})
    assert response.status_code == 204
    assert await tag_names(client, tenant) == []


async def test_deleting_an_absent_tag_answers_404(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    by_id = await client.delete("/tenants/tenant-tags/NOSUCHTAG/", headers=tenant.headers)
    by_name = await client.delete("/tenants/tenant-tags/?name=nope", headers=tenant.headers)
    assert [by_id.status_code, by_name.status_code] == [404, 404]
    assert by_id.json()["code"] == "tag_not_found"


async def test_delete_by_name_without_a_name_answers_400(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.delete("/tenants/tenant-tags/", headers=tenant.headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "name"
