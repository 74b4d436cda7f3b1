"""``/api/v1/sms-providers/{slug}/…``, the account queries and the CSV template: a slug names a
provider, the tenant's app for it answers (through the provider's fake on loopback where the
provider has the query), and every error is ``{"error": ...}``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import TenantFactory, TenantHandle
from tests.fakes.server import serve_in_thread
from tests.fakes.twilio import DEFAULT_NUMBERS, FakeTwilio
from tidings.runtime import Runtime

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "5ec7e7a0b1c2d3e4f5a6b7c8d9e0f1a2"


@pytest.fixture
def twilio(runtime: Runtime) -> Iterator[FakeTwilio]:
    fake = FakeTwilio({SID: TOKEN}, balance="41.20", currency="USD")
    with serve_in_thread(fake.app) as base_url:
        runtime.settings.provider_urls["twilio"] = base_url
        yield fake
    runtime.settings.provider_urls.pop("twilio", None)


async def install(client: httpx.AsyncClient, tenant: TenantHandle, provider: str,
                  credentials: dict[str, str], **fields: object) -> None:
    response = await client.post("/sms/v1/apps/", headers=tenant.headers, json={
        "name": provider, "provider": provider, "provider_credentials": credentials,
        **fields})
    assert response.status_code == 201, response.text


async def test_the_balance_comes_from_the_tenants_app_for_the_slug(
        client: httpx.AsyncClient, tenants: TenantFactory, twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    await install(client, tenant, "TWILIO", {"account_sid": SID, "auth_token": TOKEN})

    response = await client.get("/api/v1/sms-providers/twilio-sms/balance",
                                headers=tenant.headers)

    assert (response.status_code, response.json()) == (
        200, {"supported": True, "balance": "41.20", "currency": "USD"})
    assert twilio.requests == [("GET", f"/2010-04-01/Accounts/{SID}/Balance.json")]


async def test_sender_names_list_the_accounts_numbers(
        client: httpx.AsyncClient, tenants: TenantFactory, twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    await install(client, tenant, "TWILIO", {"account_sid": SID, "auth_token": TOKEN})

    response = await client.get("/api/v1/sms-providers/twilio-sms/sender-names",
                                headers=tenant.headers)

    assert response.json() == {"sender_names": list(DEFAULT_NUMBERS),
                               "count": len(DEFAULT_NUMBERS), "supported": True}


@pytest.mark.parametrize(("path", "answer"), [
    ("balance", {"supported": False}),
    ("sender-names", {"sender_names": [], "count": 0, "supported": False}),
])
async def test_a_provider_without_the_query_says_unsupported(
        client: httpx.AsyncClient, tenants: TenantFactory, path: str,
        answer: dict[str, object]) -> None:
    tenant = await tenants.create()
    await install(client, tenant, "SIMULATOR", {})

    response = await client.get(f"/api/v1/sms-providers/simulator-sms/{path}",
                                headers=tenant.headers)

    assert (response.status_code, response.json()) == (200, answer)


async def test_a_provider_that_refuses_the_query_is_a_502_without_the_credentials(
        client: httpx.AsyncClient, tenants: TenantFactory, twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    await install(client, tenant, "TWILIO", {"account_sid": SID, "auth_token": "f" * 32})

    response = await client.get("/api/v1/sms-providers/twilio-sms/balance",
                                headers=tenant.headers)

    assert response.status_code == 502
    assert response.json()["error"].startswith("TWILIO did not give the balance: ")
    assert "f" * 32 not in response.text


SLUGS = ("cequens-sms, fast2sms-sms, fourjawaly-sms, infobip-sms, mora-sms, msegat-sms, "
         "msg91-sms, simulator-sms, taqnyat-sms, twilio-sms, unifonic-sms, vonage-sms")


@pytest.mark.parametrize(("slug", "error"), [
    ("nope-sms", f"unknown provider slug 'nope-sms'; the slugs are {SLUGS}"),
    ("android-sms", f"unknown provider slug 'android-sms'; the slugs are {SLUGS}"),
    ("twilio-sms", 'no TWILIO app is installed for this tenant: install one with '
                   'POST /sms/v1/apps/ {"provider": "TWILIO", ...}'),
])
async def test_an_unknown_or_uninstalled_slug_is_a_400_with_an_error(
        client: httpx.AsyncClient, tenants: TenantFactory, slug: str, error: str) -> None:
    tenant = await tenants.create()
    await install(client, tenant, "SIMULATOR", {})

    response = await client.get(f"/api/v1/sms-providers/{slug}/balance",
                                headers=tenant.headers)

    assert (response.status_code, response.json()["error"]) == (400, error)


async def test_another_tenants_app_does_not_count_as_installed(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    owner, other = await tenants.create(), await tenants.create()
    await install(client, owner, "SIMULATOR", {})

    response = await client.get("/api/v1/sms-providers/simulator-sms/balance",
                                headers=other.headers)

    assert response.status_code == 400


async def test_without_credentials_the_answer_is_401_with_an_error(
        client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/sms-providers/twilio-sms/balance")

    assert response.status_code == 401
    assert set(response.json()) == {"error", "code"}


async def test_the_csv_template_has_the_header_and_one_example_row(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    await install(client, tenant, "SIMULATOR", {})

    response = await client.get("/api/v1/sms-providers/simulator-sms/template/csv",
                                headers=tenant.headers)

    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="simulator-sms-template.csv"')
    assert response.text.splitlines() == ["mobile,message,sender,datetime",
                                          "966501234567,Your order is ready,MyBrand,"]
