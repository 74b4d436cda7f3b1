"""``/sms/v1/service-profiles/``: where SMS apps' inbound messages and delivery receipts are
called back, and ``/sms/v1/apps/`` pointing at one.

A profile's ``api_secret`` goes in and never comes out (``has_api_secret`` instead); it is
stored encrypted, bound to the profile. URLs must be http(s) and, unless
``TIDINGS_CALLBACK_ALLOW_PRIVATE_NETWORKS``, not internal addresses. Another tenant's profile is
not found, and an app cannot use it.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import FakeClock, TenantFactory, TenantHandle
from tidings.db.models import ServiceProfile
from tidings.domain.roles import Role
from tidings.runtime import Runtime
from tidings.services.service_profiles import open_api_secret

PROFILES = "/sms/v1/service-profiles/"
APPS = "/sms/v1/apps/"
URL = "https://hooks.example.com/sms"
SECRET = "a-long-enough-api-secret-0001-abcdefgh"
OTHER_SECRET = "another-api-secret-0002-abcdefghijk"
PROFILE = {"name": "Main callbacks", "callback_url": URL, "events": ["inbound", "delivery"]}
SANDBOX_APP = {"name": "Sandbox", "provider": "SIMULATOR"}


@pytest.fixture(autouse=True)
def public_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    """hooks.example.com resolves to a public address; no test touches real DNS."""
    async def resolve(host: str, port: int) -> list[str]:
        return {"hooks.example.com": ["93.184.216.34"],
                "internal.example.com": ["10.0.0.7"]}.get(host, [])

    monkeypatch.setattr("tidings.services.callback_urls.resolve_with_system", resolve)


async def _create(client: httpx.AsyncClient, tenant: TenantHandle,
                  body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await client.post(PROFILES, headers=tenant.headers, json=body or PROFILE)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def _create_app(client: httpx.AsyncClient, tenant: TenantHandle,
                      **fields: Any) -> httpx.Response:
    return await client.post(APPS, headers=tenant.headers, json={**SANDBOX_APP, **fields})


async def _stored(runtime: Runtime, profile_id: str) -> ServiceProfile:
    async with runtime.sessions() as session:
        return (await session.execute(
            select(ServiceProfile).where(ServiceProfile.id == profile_id))).scalar_one()


# --- create, read -----------------------------------------------------------------------------


async def test_create_without_a_secret_answers_201_with_the_view(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory) -> None:
    tenant = await tenants.create()

    response = await client.post(PROFILES, headers=tenant.headers, json=PROFILE)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body == {"id": body["id"], "name": "Main callbacks", "callback_url": URL,
                    "events": ["inbound", "delivery"], "has_api_secret": False,
                    "created_at": "2026-11-24T12:00:00Z", "updated_at": "2026-11-24T12:00:00Z"}
    assert (await _stored(runtime, body["id"])).api_secret is None


async def test_a_given_api_secret_is_stored_encrypted_and_never_returned(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory) -> None:
    tenant = await tenants.create()

    response = await client.post(PROFILES, headers=tenant.headers,
                                 json={**PROFILE, "api_secret": SECRET})

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["has_api_secret"] is True
    assert "api_secret" not in body
    assert SECRET not in response.text
    stored = await _stored(runtime, body["id"])
    assert stored.api_secret is not None
    assert SECRET not in stored.api_secret
    assert open_api_secret(runtime.secret_box, stored.id, stored.api_secret) == SECRET


async def test_events_default_to_inbound_and_delivery(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()

    body = await _create(client, tenant, {"name": "Defaults", "callback_url": URL})

    assert body["events"] == ["inbound", "delivery"]


@pytest.mark.parametrize("events", [["inbound"], ["delivery"], ["delivery", "inbound"]])
async def test_a_profile_may_take_some_of_the_events(
        client: httpx.AsyncClient, tenants: TenantFactory, events: list[str]) -> None:
    tenant = await tenants.create()

    body = await _create(client, tenant, {**PROFILE, "events": events})

    assert body["events"] == events


async def test_get_answers_the_profile_without_its_secret(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    made = await _create(client, tenant, {**PROFILE, "api_secret": SECRET})

    response = await client.get(f"{PROFILES}{made['id']}/", headers=tenant.headers)

    assert response.status_code == 200
    assert response.json() == made
    assert SECRET not in response.text


async def test_the_list_pages_with_limit_and_offset_oldest_first(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    made = [await _create(client, tenant, {**PROFILE, "name": f"Profile {n}"})
            for n in range(3)]

    first = (await client.get(PROFILES, headers=tenant.headers,
                              params={"limit": 2})).json()
    second = (await client.get(PROFILES, headers=tenant.headers,
                               params={"limit": 2, "offset": 2})).json()

    assert (first["count"], first["previous"], first["results"]) == (3, None, made[:2])
    assert first["next"].endswith(f"{PROFILES}?limit=2&offset=2")
    assert (second["count"], second["next"], second["results"]) == (3, None, made[2:])
    assert second["previous"].endswith(f"{PROFILES}?limit=2&offset=0")


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "error"), [
    ({**PROFILE, "name": ""}, "name: String should have at least 1 character"),
    ({**PROFILE, "name": "x" * 201}, "name: String should have at most 200 characters"),
    ({"callback_url": URL}, "name: Field required"),
    ({"name": "No URL"}, "callback_url: Field required"),
    ({**PROFILE, "callback_url": "ftp://hooks.example.com/x"},
     "callback_url: callback_url must be an http or https URL"),
    ({**PROFILE, "callback_url": "http://127.0.0.1:8080/x"}, "private or loopback"),
    ({**PROFILE, "callback_url": "http://localhost/x"}, "is a loopback name"),
    ({**PROFILE, "callback_url": "https://internal.example.com/x"}, "private or loopback"),
    ({**PROFILE, "callback_url": "https://nowhere.example.com/x"}, "does not resolve"),
    ({**PROFILE, "events": []}, "events: must list, each once, some of: inbound, delivery"),
    ({**PROFILE, "events": ["status"]}, "events: must list, each once"),
    ({**PROFILE, "events": ["inbound", "inbound"]}, "events: must list, each once"),
    ({**PROFILE, "events": "inbound"}, "events: Input should be a valid list"),
    ({**PROFILE, "api_secret": "x" * 31}, "api_secret: must be 32 to 512 characters"),
    ({**PROFILE, "api_secret": "x" * 513}, "api_secret: must be 32 to 512 characters"),
    ({**PROFILE, "secret": SECRET}, "secret: Extra inputs are not permitted"),
], ids=["empty name", "long name", "no name", "no url", "not http", "loopback ip",
        "localhost", "resolves internal", "does not resolve", "no events", "unknown event",
        "event twice", "events not a list", "short secret", "long secret", "unknown field"])
async def test_bad_input_answers_400_naming_the_field_and_stores_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory, body: dict[str, Any],
        error: str) -> None:
    tenant = await tenants.create()

    response = await client.post(PROFILES, headers=tenant.headers, json=body)

    assert response.status_code == 400, response.text
    assert error in response.json()["detail"]
    assert set(response.json()) >= {"detail", "code"}
    assert (await client.get(PROFILES, headers=tenant.headers)).json()["count"] == 0


async def test_a_secret_is_not_echoed_in_the_error_that_refuses_it(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    too_long = "s3cr3t-" * 80

    response = await client.post(PROFILES, headers=tenant.headers,
                                 json={**PROFILE, "api_secret": too_long})

    assert response.status_code == 400
    assert "s3cr3t-" not in response.text


async def test_private_addresses_are_allowed_when_the_operator_says_so(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory) -> None:
    runtime.settings.callback_allow_private_networks = True
    tenant = await tenants.create()

    response = await client.post(PROFILES, headers=tenant.headers,
                                 json={**PROFILE, "callback_url": "http://127.0.0.1:8080/sms"})

    assert response.status_code == 201, response.text


# --- replace ----------------------------------------------------------------------------------


async def test_put_replaces_name_url_and_events(
        client: httpx.AsyncClient, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    made = await _create(client, tenant)
    clock.advance(60)

    response = await client.put(f"{PROFILES}{made['id']}/", headers=tenant.headers, json={
        "name": "Receipts only", "callback_url": "https://hooks.example.com/dlr",
        "events": ["delivery"]})

    assert response.status_code == 200, response.text
    assert response.json() == {
        **made, "name": "Receipts only", "callback_url": "https://hooks.example.com/dlr",
        "events": ["delivery"], "updated_at": "2026-11-24T12:01:00Z"}


@pytest.mark.parametrize(("secret_fields", "has_secret", "stored"), [
    ({}, True, SECRET),
    ({"api_secret": None}, False, None),
    ({"api_secret": OTHER_SECRET}, True, OTHER_SECRET),
], ids=["omitted keeps it", "null removes it", "a string replaces it"])
async def test_put_api_secret(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        secret_fields: dict[str, Any], has_secret: bool, stored: str | None) -> None:
    tenant = await tenants.create()
    made = await _create(client, tenant, {**PROFILE, "api_secret": SECRET})

    response = await client.put(f"{PROFILES}{made['id']}/", headers=tenant.headers,
                                json={**PROFILE, **secret_fields})

    assert response.status_code == 200, response.text
    assert response.json()["has_api_secret"] is has_secret
    assert "another-api-secret" not in response.text
    token = (await _stored(runtime, made["id"])).api_secret
    assert (None if token is None
            else open_api_secret(runtime.secret_box, made["id"], token)) == stored


@pytest.mark.parametrize("missing", ["name", "callback_url", "events"])
async def test_put_needs_name_callback_url_and_events(
        client: httpx.AsyncClient, tenants: TenantFactory, missing: str) -> None:
    tenant = await tenants.create()
    made = await _create(client, tenant)
    body = {key: value for key, value in PROFILE.items() if key != missing}

    response = await client.put(f"{PROFILES}{made['id']}/", headers=tenant.headers, json=body)

    assert response.status_code == 400
    assert f"{missing}: Field required" in response.json()["detail"]


async def test_a_refused_put_changes_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    made = await _create(client, tenant, {**PROFILE, "api_secret": SECRET})

    response = await client.put(f"{PROFILES}{made['id']}/", headers=tenant.headers, json={
        "name": "Moved", "callback_url": "http://127.0.0.1/x", "events": ["inbound"],
        "api_secret": None})

    assert response.status_code == 400
    assert "callback_url" in response.json()["detail"]
    assert (await client.get(f"{PROFILES}{made['id']}/", headers=tenant.headers)).json() == made


# --- delete -----------------------------------------------------------------------------------


async def test_delete_answers_204_then_the_profile_is_gone(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    made = await _create(client, tenant)

    deleted = await client.delete(f"{PROFILES}{made['id']}/", headers=tenant.headers)

    assert deleted.status_code == 204
    assert (await client.get(f"{PROFILES}{made['id']}/",
                             headers=tenant.headers)).status_code == 404
    assert (await client.get(PROFILES, headers=tenant.headers)).json()["count"] == 0


async def test_deleting_a_profile_leaves_its_apps_without_one(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    profile = await _create(client, tenant)
    kept = await _create(client, tenant, {**PROFILE, "name": "Kept"})
    app = (await _create_app(client, tenant, service_profile_id=profile["id"])).json()
    other = (await _create_app(client, tenant, service_profile_id=kept["id"])).json()

    await client.delete(f"{PROFILES}{profile['id']}/", headers=tenant.headers)

    app_now = (await client.get(f"{APPS}{app['id']}/", headers=tenant.headers)).json()
    other_now = (await client.get(f"{APPS}{other['id']}/", headers=tenant.headers)).json()
    assert (app_now["service_profile_id"], other_now["service_profile_id"]) == (None, kept["id"])


# --- tenants and roles ------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "body"), [
    ("GET", None), ("PUT", PROFILE), ("DELETE", None)])
async def test_another_tenants_profile_answers_404_and_stays(
        client: httpx.AsyncClient, tenants: TenantFactory, method: str,
        body: dict[str, Any] | None) -> None:
    owner, other = await tenants.create(), await tenants.create()
    made = await _create(client, owner, {**PROFILE, "name": "Owner's"})

    response = await client.request(method, f"{PROFILES}{made['id']}/", headers=other.headers,
                                    json=body)

    assert response.status_code == 404
    assert set(response.json()) == {"detail", "code"}
    assert (await client.get(f"{PROFILES}{made['id']}/",
                             headers=owner.headers)).json() == made


async def test_a_tenant_lists_only_its_own_profiles(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    owner, other = await tenants.create(), await tenants.create()
    await _create(client, owner)

    listed = await client.get(PROFILES, headers=other.headers)

    assert listed.json() == {"count": 0, "next": None, "previous": None, "results": []}


async def test_a_role_without_apps_manage_may_read_but_not_write(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    made = await _create(client, tenant)
    agent = await tenants.key(tenant, Role.AGENT)
    one = f"{PROFILES}{made['id']}/"

    reads = [(await client.get(PROFILES, headers=agent)).status_code,
             (await client.get(one, headers=agent)).status_code]
    writes = [(await client.post(PROFILES, headers=agent, json=PROFILE)).status_code,
              (await client.put(one, headers=agent, json=PROFILE)).status_code,
              (await client.delete(one, headers=agent)).status_code]

    assert (reads, writes) == ([200, 200], [403, 403, 403])
    assert (await client.get(PROFILES, headers=tenant.headers)).json()["results"] == [made]


# --- SMS apps using a profile -----------------------------------------------------------------


async def test_an_app_created_with_a_profile_shows_it(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    profile = await _create(client, tenant)

    response = await _create_app(client, tenant, service_profile_id=profile["id"])

    assert response.status_code == 201, response.text
    app = response.json()
    assert app["service_profile_id"] == profile["id"]
    assert (await client.get(f"{APPS}{app['id']}/",
                             headers=tenant.headers)).json()["service_profile_id"] == profile["id"]


async def test_an_app_created_without_a_profile_has_none(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()

    app = (await _create_app(client, tenant)).json()

    assert (app["service_profile_id"], app["p2p_enabled"]) == (None, False)


async def test_updating_an_app_sets_then_clears_its_profile(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    profile = await _create(client, tenant)
    app = (await _create_app(client, tenant)).json()
    one = f"{APPS}{app['id']}/"

    assigned = await client.put(one, headers=tenant.headers,
                                json={"service_profile_id": profile["id"]})
    renamed = await client.put(one, headers=tenant.headers, json={"name": "Renamed"})
    cleared = await client.put(one, headers=tenant.headers, json={"service_profile_id": None})

    assert assigned.status_code == 200, assigned.text
    assert [r.json()["service_profile_id"] for r in (assigned, renamed, cleared)] == [
        profile["id"], profile["id"], None]


@pytest.mark.parametrize("through", ["create", "update"])
@pytest.mark.parametrize("whose", ["another tenant's", "unknown"])
async def test_an_app_cannot_use_a_profile_that_is_not_its_tenants(
        client: httpx.AsyncClient, tenants: TenantFactory, through: str, whose: str) -> None:
    tenant, other = await tenants.create(), await tenants.create()
    profile_id = ((await _create(client, other))["id"] if whose == "another tenant's"
                  else "01JZZZZZZZZZZZZZZZZZZZZZZZ")
    if through == "create":
        response = await _create_app(client, tenant, service_profile_id=profile_id)
    else:
        app = (await _create_app(client, tenant)).json()
        response = await client.put(f"{APPS}{app['id']}/", headers=tenant.headers,
                                    json={"service_profile_id": profile_id})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "service_profile_not_found"
    assert [error["field"] for error in body["errors"]] == ["service_profile_id"]
    listed = (await client.get(APPS, headers=tenant.headers)).json()["results"]
    assert [app["service_profile_id"] for app in listed] == ([] if through == "create"
                                                             else [None])


async def test_p2p_enabled_round_trips_on_create_and_update(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    app = (await _create_app(client, tenant, p2p_enabled=True)).json()
    one = f"{APPS}{app['id']}/"

    renamed = await client.put(one, headers=tenant.headers, json={"name": "Renamed"})
    turned_off = await client.put(one, headers=tenant.headers, json={"p2p_enabled": False})
    read = await client.get(one, headers=tenant.headers)

    assert [app["p2p_enabled"], renamed.json()["p2p_enabled"],
            turned_off.json()["p2p_enabled"], read.json()["p2p_enabled"]] == [
        True, True, False, False]
