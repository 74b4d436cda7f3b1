"""``/sms/v1/templates/``: a tenant's DLT content templates (India), named by their DLT
registration id."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import TenantFactory, TenantHandle
from tidings.domain.roles import Role

OTP = {"dlt_template_id": "1107161234567890123",
       "body": "Your Acme login code is {#var#}. Valid for {#var#} minutes.",
       "sender_id": "ACMEIN", "category": "transactional"}


async def _create(client: httpx.AsyncClient, tenant: TenantHandle,
                  body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/sms/v1/templates/", headers=tenant.headers, json=body)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def test_create_answers_201_with_the_template(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()

    response = await client.post("/sms/v1/templates/", headers=tenant.headers, json=OTP)

    assert response.status_code == 201
    body = response.json()
    assert body == {"id": body["id"], "dlt_template_id": "1107161234567890123",
                    "body": "Your Acme login code is {#var#}. Valid for {#var#} minutes.",
                    "sender_id": "ACMEIN", "category": "transactional",
                    "created_at": "2026-11-24T12:00:00Z", "updated_at": "2026-11-24T12:00:00Z"}


async def test_sender_id_and_category_are_optional(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    body = await _create(client, tenant, {"dlt_template_id": "1107000000000000001",
                                          "body": "Hello {#var#}"})
    assert (body["sender_id"], body["category"]) == (None, None)


async def test_get_and_list_show_the_template(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    made = await _create(client, tenant, OTP)

    one = await client.get(f"/sms/v1/templates/{made['id']}/", headers=tenant.headers)
    listed = await client.get("/sms/v1/templates/", headers=tenant.headers)

    assert (one.status_code, one.json()) == (200, made)
    assert listed.json() == {"count": 1, "next": None, "previous": None, "results": [made]}


async def test_put_changes_only_the_fields_given(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    made = await _create(client, tenant, OTP)

    response = await client.put(f"/sms/v1/templates/{made['id']}/", headers=tenant.headers,
                                json={"body": "Your Acme code is {#var#}."})

    assert response.status_code == 200
    assert response.json() == {**made, "body": "Your Acme code is {#var#}."}


async def test_delete_answers_204_then_404(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    made = await _create(client, tenant, OTP)

    deleted = await client.delete(f"/sms/v1/templates/{made['id']}/", headers=tenant.headers)

    assert (deleted.status_code, deleted.content) == (204, b"")
    again = await client.get(f"/sms/v1/templates/{made['id']}/", headers=tenant.headers)
    assert (again.status_code, again.json()["code"]) == (404, "dlt_template_not_found")


async def test_a_deleted_templates_dlt_id_can_be_stored_again(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    made = await _create(client, tenant, OTP)
    await client.delete(f"/sms/v1/templates/{made['id']}/", headers=tenant.headers)

    response = await client.post("/sms/v1/templates/", headers=tenant.headers, json=OTP)

    assert response.status_code == 201


async def test_a_duplicate_dlt_template_id_answers_409(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    await _create(client, tenant, OTP)

    response = await client.post("/sms/v1/templates/", headers=tenant.headers,
                                 json={**OTP, "body": "Another text {#var#}"})

    assert response.status_code == 409
    assert response.json()["code"] == "duplicate_dlt_template"
    listed = (await client.get("/sms/v1/templates/", headers=tenant.headers)).json()
    assert listed["count"] == 1


async def test_renaming_to_another_templates_dlt_id_answers_409(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    await _create(client, tenant, OTP)
    other = await _create(client, tenant, {"dlt_template_id": "1107000000000000002",
                                           "body": "Hi {#var#}"})

    response = await client.put(f"/sms/v1/templates/{other['id']}/", headers=tenant.headers,
                                json={"dlt_template_id": OTP["dlt_template_id"]})

    assert (response.status_code, response.json()["code"]) == (409, "duplicate_dlt_template")


async def test_two_tenants_may_store_the_same_dlt_template_id(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    a, b = await tenants.create(), await tenants.create()
    await _create(client, a, OTP)
    response = await client.post("/sms/v1/templates/", headers=b.headers, json=OTP)
    assert response.status_code == 201


@pytest.mark.parametrize(("body", "field"), [
    ({**OTP, "body": "Your code is {#var}"}, "body"),
    ({**OTP, "body": "Your code is {# var #}"}, "body"),
    ({**OTP, "body": "Your code is ##var##"}, "body"),
    ({**OTP, "body": "{#var#}{#var#}"}, "body"),
    ({**OTP, "body": "   "}, "body"),
    ({**OTP, "dlt_template_id": "1107-1612"}, "dlt_template_id"),
    ({**OTP, "sender_id": "AC ME"}, "sender_id"),
    ({"body": "Hello {#var#}"}, "dlt_template_id"),
], ids=["unclosed", "spaced", "hashes", "only-variables", "blank", "bad-id", "bad-sender",
        "missing-id"])
async def test_a_bad_template_answers_400_naming_the_field(
        client: httpx.AsyncClient, tenants: TenantFactory, body: dict[str, Any],
        field: str) -> None:
    tenant = await tenants.create()

    response = await client.post("/sms/v1/templates/", headers=tenant.headers, json=body)

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == [field]
    listed = (await client.get("/sms/v1/templates/", headers=tenant.headers)).json()
    assert listed["count"] == 0


async def test_a_malformed_placeholder_is_reported_with_its_position(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()

    response = await client.post("/sms/v1/templates/", headers=tenant.headers,
                                 json={**OTP, "body": "Code {#var} now"})

    assert response.json()["errors"] == [{"field": "body", "message": (
        "malformed placeholder '{#' at character 6: write each variable exactly as {#var#}")}]


async def test_put_with_a_malformed_body_answers_400_and_keeps_the_template(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    made = await _create(client, tenant, OTP)

    response = await client.put(f"/sms/v1/templates/{made['id']}/", headers=tenant.headers,
                                json={"body": "Broken {#var"})

    assert response.status_code == 400
    again = (await client.get(f"/sms/v1/templates/{made['id']}/",
                              headers=tenant.headers)).json()
    assert again["body"] == OTP["body"]


@pytest.mark.parametrize(("method", "body"), [
    ("GET", None), ("PUT", {"body": "Stolen {#var#}"}), ("DELETE", None)])
async def test_another_tenants_template_answers_404(
        client: httpx.AsyncClient, tenants: TenantFactory, method: str,
        body: dict[str, Any] | None) -> None:
    owner, intruder = await tenants.create(), await tenants.create()
    made = await _create(client, owner, OTP)

    response = await client.request(method, f"/sms/v1/templates/{made['id']}/",
                                    headers=intruder.headers, json=body)

    assert (response.status_code, response.json()["code"]) == (404, "dlt_template_not_found")
    again = await client.get(f"/sms/v1/templates/{made['id']}/", headers=owner.headers)
    assert again.json() == made


async def test_a_tenant_lists_only_its_own_templates(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    a, b = await tenants.create(), await tenants.create()
    await _create(client, a, OTP)
    listed = await client.get("/sms/v1/templates/", headers=b.headers)
    assert listed.json()["results"] == []


async def test_a_viewer_cannot_create_a_template(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    viewer = await tenants.key(tenant, Role.VIEWER)

    response = await client.post("/sms/v1/templates/", headers=viewer, json=OTP)

    assert response.status_code == 403
