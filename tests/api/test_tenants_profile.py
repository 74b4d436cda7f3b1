"""``/tenants/branding/``, ``/tenants/settings/``, ``/tenants/onboarding-options/`` and
``/tenants/waba-info/``: shapes, partial updates, and bad input that changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import FakeClock, TenantFactory
from tidings.db.models import Contact
from tidings.domain.ids import new_id
from tidings.runtime import Runtime

EMPTY_BRANDING = {"custom_domain": None, "logo_url": None, "email_sender": None}


async def test_branding_of_a_new_tenant_is_empty(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.get("/tenants/branding/", headers=tenant.headers)
    assert response.status_code == 200
    assert response.json() == EMPTY_BRANDING


async def test_patch_branding_sets_normalised_values(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.patch("/tenants/branding/", headers=tenant.headers, json={
        "custom_domain": "SMS.Acme.Example.COM.",
        "logo_url": "https://cdn.acme.example.com/logo.png?v=2",
        "email_sender": "Acme Support <Support@ACME.example.com>"})
    assert response.status_code == 200
    expected = {"custom_domain": "sms.acme.example.com",
                "logo_url": "https://cdn.acme.example.com/logo.png?v=2",
                "email_sender": "Acme Support <support@acme.example.com>"}
    assert response.json() == expected
    assert (await client.get("/tenants/branding/", headers=tenant.headers)).json() == expected


async def test_patch_branding_is_partial_and_null_clears_a_field(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    await client.patch("/tenants/branding/", headers=tenant.headers, json={
        "custom_domain": "acme.example.com", "email_sender": "hello@acme.example.com"})
    response = await client.patch("/tenants/branding/", headers=tenant.headers,
                                  json={"custom_domain": None, "logo_url": "http://x.example/l"})
    assert response.json() == {"custom_domain": None, "logo_url": "http://x.example/l",
                               "email_sender": "hello@acme.example.com"}


BAD_BRANDING = [
    pytest.param({"custom_domain": "not a host"}, "custom_domain", id="domain-with-spaces"),
    pytest.param({"custom_domain": "https://acme.example.com"}, "custom_domain",
                 id="domain-is-a-url"),
    pytest.param({"custom_domain": "localhost"}, "custom_domain", id="domain-single-label"),
    pytest.param({"custom_domain": "10.0.0.1"}, "custom_domain", id="domain-is-an-ip"),
    pytest.param({"custom_domain": "-acme.example.com"}, "custom_domain",
                 id="domain-label-starts-with-hyphen"),
    pytest.param({"custom_domain": f"{'a' * 64}.example.com"}, "custom_domain",
                 id="domain-label-over-63"),
    pytest.param({"custom_domain": ("a" * 60 + ".") * 5 + "com"}, "custom_domain",
                 id="domain-over-253"),
    pytest.param({"custom_domain": ""}, "custom_domain", id="domain-empty"),
    pytest.param({"logo_url": "ftp://acme.example.com/logo.png"}, "logo_url", id="url-ftp"),
    pytest.param({"logo_url": "acme.example.com/logo.png"}, "logo_url", id="url-relative"),
    pytest.param({"logo_url": "https://user:pw@acme.example.com/l.png"}, "logo_url",
                 id="url-with-credentials"),
    pytest.param({"logo_url": "https://acme.example.com/a logo.png"}, "logo_url",
                 id="url-with-space"),
    pytest.param({"logo_url": "https://acme.example.com:99999/l.png"}, "logo_url",
                 id="url-bad-port"),
    pytest.param({"logo_url": "https://acme.example.com/" + "l" * 2000}, "logo_url",
                 id="url-over-2000"),
    pytest.param({"email_sender": "not-an-email"}, "email_sender", id="sender-no-at"),
    pytest.param({"email_sender": "Acme <not-an-email>"}, "email_sender",
                 id="sender-name-bad-address"),
    pytest.param({"email_sender": "Acme\r\nBcc: x@example.com <a@example.com>"},
                 "email_sender", id="sender-header-injection"),
    pytest.param({"email_sender": "a@" + "b" * 320 + ".com"}, "email_sender",
                 id="sender-over-320"),
    pytest.param({"logo_url": 5}, "logo_url", id="wrong-type"),
    pytest.param({"colour": "#ffffff"}, "colour", id="unknown-field"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BRANDING)
async def test_bad_branding_answers_400_naming_the_field_and_changes_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory, body: dict[str, Any],
        field: str) -> None:
    tenant = await tenants.create()
    before = {"custom_domain": "keep.example.com", "logo_url": None,
              "email_sender": "keep@example.com"}
    await client.patch("/tenants/branding/", headers=tenant.headers, json=before)

    response = await client.patch("/tenants/branding/", headers=tenant.headers,
                                  json={"email_sender": "changed@example.com", **body})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert (await client.get("/tenants/branding/", headers=tenant.headers)).json() == before


async def test_settings_show_id_name_region_and_creation_time(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create(name="Acme Ltd", region="GB")
    response = await client.get("/tenants/settings/", headers=tenant.headers)
    assert response.status_code == 200
    assert response.json() == {"id": tenant.tenant_id, "name": "Acme Ltd",
                               "default_region": "GB", "timezone": "UTC",
                               "created_at": "2026-11-24T12:00:00Z"}


async def test_patch_settings_renames_and_changes_the_region_and_timezone(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create(name="Old Name")
    response = await client.patch("/tenants/settings/", headers=tenant.headers,
                                  json={"name": "  New Name ", "default_region": "in",
                                        "timezone": "Asia/Kolkata"})
    assert response.status_code == 200
    assert response.json() == {"id": tenant.tenant_id, "name": "New Name",
                               "default_region": "IN", "timezone": "Asia/Kolkata",
                               "created_at": "2026-11-24T12:00:00Z"}


async def test_patch_settings_is_partial(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create(name="Stays", region="US")
    response = await client.patch("/tenants/settings/", headers=tenant.headers,
                                  json={"default_region": "DE"})
    assert (response.json()["name"], response.json()["default_region"]) == ("Stays", "DE")


BAD_SETTINGS = [
    pytest.param({"default_region": "XX"}, "default_region", id="unknown-region"),
    pytest.param({"default_region": "USA"}, "default_region", id="region-too-long"),
    pytest.param({"default_region": None}, "default_region", id="region-null"),
    pytest.param({"name": ""}, "name", id="name-empty"),
    pytest.param({"name": "   "}, "name", id="name-blank"),
    pytest.param({"name": None}, "name", id="name-null"),
    pytest.param({"name": "n" * 201}, "name", id="name-over-200"),
    pytest.param({"timezone": "Mars/Olympus_Mons"}, "timezone", id="timezone-unknown"),
    pytest.param({"colour": "#ffffff"}, "colour", id="unknown-field"),
]


@pytest.mark.parametrize(("body", "field"), BAD_SETTINGS)
async def test_bad_settings_answer_400_naming_the_field_and_change_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory, body: dict[str, Any],
        field: str) -> None:
    tenant = await tenants.create(name="Unchanged", region="US")
    response = await client.patch("/tenants/settings/", headers=tenant.headers, json=body)
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]
    after = (await client.get("/tenants/settings/", headers=tenant.headers)).json()
    assert (after["name"], after["default_region"]) == ("Unchanged", "US")


async def test_waba_info_says_nothing_is_configured(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.get("/tenants/waba-info/", headers=tenant.headers)
    assert response.status_code == 200
    assert response.json() == {"configured": False, "accounts": []}


async def test_onboarding_of_a_new_tenant_lists_every_flow_not_completed(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.get("/tenants/onboarding-options/", headers=tenant.headers)
    assert response.status_code == 200
    assert response.json() == [
        {"id": "invite_team", "title": "Invite your team",
         "description": "Invite teammates by email and give each a role.",
         "endpoint": "POST /tenants/members/invite/", "completed": False},
        {"id": "create_api_key", "title": "Create an API key",
         "description": "Create a key for your application; it is shown once.",
         "endpoint": "POST /tenants/api-keys/", "completed": False},
        {"id": "import_contacts", "title": "Import your contacts",
         "description": "Upload a CSV of contacts or add them one by one.",
         "endpoint": "POST /contacts/bulk-import/", "completed": False},
        {"id": "set_branding", "title": "Set your branding",
         "description": "Set a custom domain, a logo and the sender of your emails.",
         "endpoint": "PATCH /tenants/branding/", "completed": False},
    ]


async def completed(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, bool]:
    flows = (await client.get("/tenants/onboarding-options/", headers=headers)).json()
    return {flow["id"]: flow["completed"] for flow in flows}


async def test_onboarding_flows_complete_as_the_tenant_does_each_step(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime,
        clock: FakeClock) -> None:
    tenant = await tenants.create()
    clock.advance(1)
    await client.post("/tenants/members/invite/", headers=tenant.headers,
                      json={"email": "mate@example.com", "role": "agent"})
    await client.post("/tenants/api-keys/", headers=tenant.headers,
                      json={"name": "app", "role": "developer", "mode": "live"})
    async with runtime.sessions() as session:
        session.add(Contact(id=new_id(), tenant_id=tenant.tenant_id, phone="+14155550100",
                            name=None, email=None, attributes={}, created_at=clock(),
                            updated_at=clock()))
        await session.commit()
    await client.patch("/tenants/branding/", headers=tenant.headers,
                       json={"logo_url": "https://acme.example.com/logo.png"})

    assert await completed(client, tenant.headers) == {
        "invite_team": True, "create_api_key": True, "import_contacts": True,
        "set_branding": True}


async def test_the_owner_key_made_with_the_tenant_does_not_complete_create_api_key(
        client: httpx.AsyncClient, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    clock.advance(1)
    made = await client.post("/tenants/api-keys/", headers=tenant.headers,
                             json={"name": "app", "role": "viewer", "mode": "test"})
    assert (await completed(client, tenant.headers))["create_api_key"] is True
    await client.delete(f"/tenants/api-keys/{made.json()['id']}/", headers=tenant.headers)
    assert (await completed(client, tenant.headers))["create_api_key"] is False
