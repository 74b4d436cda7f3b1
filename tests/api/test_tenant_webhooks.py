"""``/tenants/webhooks/``: registering, listing and deleting a tenant's webhook endpoints.

Secrets are stored encrypted and never shown again; a generated one is shown once. URLs must be
http(s) and, unless ``TIDINGS_CALLBACK_ALLOW_PRIVATE_NETWORKS``, not internal addresses.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import TenantFactory
from tidings.db.models import WebhookEndpoint
from tidings.domain.roles import Role
from tidings.runtime import Runtime
from tidings.services.webhooks import open_secret

URL = "https://hooks.example.com/tidings"
WEBHOOKS = "/tenants/webhooks/"


@pytest.fixture(autouse=True)
def public_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    """hooks.example.com resolves to a public address; no test touches real DNS."""
    async def resolve(host: str, port: int) -> list[str]:
        return {"hooks.example.com": ["93.184.216.34"],
                "internal.example.com": ["10.0.0.7"]}.get(host, [])

    monkeypatch.setattr("tidings.services.callback_urls.resolve_with_system", resolve)


async def test_an_endpoint_without_a_secret_gets_one_shown_once(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory) -> None:
    tenant = await tenants.create()

    created = await client.post(WEBHOOKS, headers=tenant.headers,
                                json={"url": URL, "events": ["message.status"]})
    listed = await client.get(WEBHOOKS, headers=tenant.headers)

    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["url"], body["events"], body["secret"][:6]) == (URL, ["message.status"],
                                                                 "whsec_")
    assert listed.json() == {"count": 1, "results": [
        {"id": body["id"], "url": URL, "events": ["message.status"],
         "created_at": body["created_at"]}]}
    async with runtime.sessions() as session:
        stored = (await session.execute(select(WebhookEndpoint))).scalar_one()
    assert body["secret"] not in stored.secret
    assert open_secret(runtime.secret_box, stored.id, stored.secret) == body["secret"]


async def test_a_given_secret_is_kept_and_never_echoed(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    secret = "my-own-signing-secret-42"

    created = await client.post(WEBHOOKS, headers=tenant.headers, json={
        "url": URL, "events": ["message.inbound", "message.status"], "secret": secret})

    assert created.status_code == 201
    assert created.json()["secret"] is None
    assert secret not in created.text
    async with runtime.sessions() as session:
        stored = (await session.execute(select(WebhookEndpoint))).scalar_one()
    assert open_secret(runtime.secret_box, stored.id, stored.secret) == secret


@pytest.mark.parametrize(("body", "error"), [
    ({"url": "ftp://hooks.example.com/x", "events": ["message.status"]},
     "callback_url must be an http or https URL"),
    ({"url": "http://127.0.0.1:8080/x", "events": ["message.status"]},
     "private or loopback"),
    ({"url": "https://internal.example.com/x", "events": ["message.status"]},
     "private or loopback"),
    ({"url": "https://nowhere.example.com/x", "events": ["message.status"]},
     "does not resolve"),
    ({"url": URL, "events": ["message.sent"]}, "events: must list, each once"),
    ({"url": URL, "events": ["message.status", "message.status"]},
     "events: must list, each once"),
    ({"url": URL, "events": ["message.status"], "secret": "short"},
     "secret: must be 16 to 256 characters"),
], ids=["not http", "loopback", "resolves internal", "does not resolve", "unknown event",
        "event twice", "short secret"])
async def test_bad_registrations_answer_400_and_store_nothing(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        body: dict[str, Any], error: str) -> None:
    tenant = await tenants.create()

    response = await client.post(WEBHOOKS, headers=tenant.headers, json=body)

    assert response.status_code == 400
    assert error in response.json()["detail"]
    assert (await client.get(WEBHOOKS, headers=tenant.headers)).json()["count"] == 0


async def test_private_addresses_are_allowed_when_the_operator_says_so(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory) -> None:
    runtime.settings.callback_allow_private_networks = True
    tenant = await tenants.create()

    response = await client.post(WEBHOOKS, headers=tenant.headers, json={
        "url": "http://127.0.0.1:8080/hooks", "events": ["message.status"]})

    assert response.status_code == 201


async def test_another_tenants_endpoint_is_not_found_and_stays(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    owner, other = await tenants.create(), await tenants.create()
    made = await client.post(WEBHOOKS, headers=owner.headers,
                             json={"url": URL, "events": ["message.status"]})
    endpoint_id = made.json()["id"]

    refused = await client.delete(f"{WEBHOOKS}{endpoint_id}/", headers=other.headers)
    listed_by_other = await client.get(WEBHOOKS, headers=other.headers)
    deleted = await client.delete(f"{WEBHOOKS}{endpoint_id}/", headers=owner.headers)

    assert refused.status_code == 404
    assert listed_by_other.json()["count"] == 0
    assert deleted.status_code == 204
    assert (await client.get(WEBHOOKS, headers=owner.headers)).json()["count"] == 0


async def test_a_role_without_apps_manage_may_list_but_not_register(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    agent = await tenants.key(tenant, Role.AGENT)

    refused = await client.post(WEBHOOKS, headers=agent,
                                json={"url": URL, "events": ["message.status"]})
    listed = await client.get(WEBHOOKS, headers=agent)

    assert (refused.status_code, listed.status_code) == (403, 200)
