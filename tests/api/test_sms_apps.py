"""``/sms/v1/apps/``: a tenant's SMS apps (installed provider accounts).

Credentials go in and never come out: not in a response, not in an error, not in a log line,
and not in the database in clear. Each app answers its two webhook URLs, built from
``TIDINGS_PUBLIC_URL``, carrying the app's token.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import TenantFactory, TenantHandle
from tests.fakes.server import serve_in_thread
from tests.fakes.twilio import FakeTwilio
from tidings.config import Settings
from tidings.db.models import ChannelAccount, Message
from tidings.domain.roles import Role
from tidings.logging_setup import QUIET_BELOW_DEBUG, set_level
from tidings.pipeline.dispatcher import Dispatcher
from tidings.runtime import Runtime
from tidings.services.sms_apps import credentials_context

PUBLIC_URL = "https://tidings.example.com"
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "5ec7e7a0b1c2d3e4f5a6b7c8d9e0f1a2"
MSG91_KEY = "Msg91SecretAuthKey0001"
FAST2SMS_KEY = "Fast2smsSecretApiKey0001"
SMPP_PASSWORD = "Zq7!kP2w"
SMPP_CONFIG = {"host": "smsc.example.net", "port": 2775, "system_id": "acme_esme",
               "bind_mode": "transmitter_receiver", "window": 64, "dlr_id_format": "hex"}

# provider, body fields beyond name/provider, the credential values that must never show up
PROVIDERS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("TWILIO", {"sender_id": "+15005550006",
                "provider_credentials": {"account_sid": TWILIO_SID,
                                         "auth_token": TWILIO_TOKEN}},
     (TWILIO_SID, TWILIO_TOKEN)),
    ("MSG91", {"sender_id": "ACMEIN", "dlt_entity_id": "1101456789012345678",
               "provider_credentials": {"auth_key": MSG91_KEY}},
     (MSG91_KEY,)),
    ("FAST2SMS", {"sender_id": "ACMEIN", "dlt_entity_id": "1101456789012345678",
                  "provider_credentials": {"api_key": FAST2SMS_KEY}},
     (FAST2SMS_KEY,)),
    ("SIMULATOR", {"sender_id": "Tidings", "provider_config": {"delay_ms": 250}}, ()),
    ("SMPP", {"sender_id": "ACME", "provider_credentials": {"password": SMPP_PASSWORD},
              "provider_config": SMPP_CONFIG}, (SMPP_PASSWORD,)),
]
TWILIO_APP = {"name": "US numbers", "provider": "TWILIO", "sender_id": "+15005550006",
              "provider_credentials": {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN}}
SIMULATOR_APP = {"name": "Sandbox", "provider": "SIMULATOR"}


@pytest.fixture(autouse=True)
def public_url(settings: Settings) -> str:
    settings.public_url = PUBLIC_URL
    return PUBLIC_URL


async def _create(client: httpx.AsyncClient, tenant: TenantHandle,
                  body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/sms/v1/apps/", headers=tenant.headers, json=body)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def _stored(runtime: Runtime, app_id: str) -> ChannelAccount:
    async with runtime.sessions() as session:
        return (await session.execute(
            select(ChannelAccount).where(ChannelAccount.id == app_id))).scalar_one()


# --- create --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "fields", "secrets"), PROVIDERS,
                         ids=[p[0] for p in PROVIDERS])
async def test_create_answers_201_listing_credential_keys_but_no_credential_value(
        client: httpx.AsyncClient, tenants: TenantFactory, provider: str,
        fields: dict[str, Any], secrets: tuple[str, ...]) -> None:
    tenant = await tenants.create()

    response = await client.post("/sms/v1/apps/", headers=tenant.headers,
                                 json={"name": f"My {provider}", "provider": provider, **fields})

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["provider"] == provider
    assert body["provider_credentials_set"] == sorted(fields.get("provider_credentials", {}))
    assert "provider_credentials" not in body
    assert [secret for secret in secrets if secret in response.text] == []


async def test_create_answers_the_whole_app(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()

    body = await _create(client, tenant, {
        "name": "India OTP", "provider": "MSG91", "sender_id": "ACMEIN",
        "dlt_entity_id": "1101456789012345678", "provider_credentials": {"auth_key": MSG91_KEY},
        "provider_config": {"route": "4"}, "rate_limit": "20/s", "daily_limit": 5000,
        "price_per_segment_minor": 12})

    token = (await _stored(runtime, body["id"])).webhook_token
    hooks = f"{PUBLIC_URL}/sms/v1/webhooks/{body['id']}"
    assert body == {
        "id": body["id"], "name": "India OTP", "provider": "MSG91", "sender_id": "ACMEIN",
        "dlt_entity_id": "1101456789012345678", "provider_credentials_set": ["auth_key"],
        "provider_config": body["provider_config"], "rate_limit": "20/s", "daily_limit": 5000,
        "price_per_segment_minor": 12, "is_default": True, "service_profile_id": None,
        "p2p_enabled": False, "daily_sent": 0,
        "daily_segments": 0, "inbound_webhook_url": f"{hooks}/inbound/?token={token}",
        "dlr_webhook_url": f"{hooks}/dlr/?token={token}", "registration_token": None,
        "created_at": "2026-11-24T12:00:00Z", "updated_at": "2026-11-24T12:00:00Z"}
    assert body["provider_config"]["route"] == "4"


async def test_webhook_urls_follow_the_public_url_setting(
        client: httpx.AsyncClient, tenants: TenantFactory, settings: Settings) -> None:
    settings.public_url = "https://sms.acme.example/"
    tenant = await tenants.create()

    body = await _create(client, tenant, SIMULATOR_APP)

    assert body["dlr_webhook_url"].startswith(
        f"https://sms.acme.example/sms/v1/webhooks/{body['id']}/dlr/?token=")
    assert body["inbound_webhook_url"].startswith(
        f"https://sms.acme.example/sms/v1/webhooks/{body['id']}/inbound/?token=")


async def test_each_app_gets_its_own_webhook_token(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    first = await _create(client, tenant, SIMULATOR_APP)
    second = await _create(client, tenant, SIMULATOR_APP)
    tokens = {app["dlr_webhook_url"].partition("?token=")[2] for app in (first, second)}
    assert len(tokens) == 2
    assert all(len(token) >= 24 for token in tokens)


@pytest.mark.parametrize(("credentials", "field"), [
    ({"account_sid": "AC123", "auth_token": TWILIO_TOKEN}, "provider_credentials.account_sid"),
    ({"account_sid": "XX" + "0" * 32, "auth_token": TWILIO_TOKEN},
     "provider_credentials.account_sid"),
    ({"account_sid": TWILIO_SID, "auth_token": "not-a-token"}, "provider_credentials.auth_token"),
    ({"account_sid": TWILIO_SID}, "provider_credentials.auth_token"),
], ids=["short-sid", "wrong-prefix", "bad-token", "missing-token"])
async def test_bad_twilio_credentials_answer_400_naming_the_field(
        client: httpx.AsyncClient, tenants: TenantFactory, credentials: dict[str, str],
        field: str) -> None:
    tenant = await tenants.create()

    response = await client.post("/sms/v1/apps/", headers=tenant.headers, json={
        **TWILIO_APP, "provider_credentials": credentials})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert field in [error["field"] for error in body["errors"]]
    assert field in body["detail"]


@pytest.mark.parametrize(("config", "field"), [
    ({"port": 2775, "system_id": "acme"}, "provider_config.host"),
    ({"host": "smsc.example.net", "system_id": "a" * 16}, "provider_config.system_id"),
    ({**SMPP_CONFIG, "window": 0}, "provider_config.window"),
    ({**SMPP_CONFIG, "bind_mode": "receiver"}, "provider_config.bind_mode"),
    ({**SMPP_CONFIG, "dlr_id_format": "octal"}, "provider_config.dlr_id_format"),
    ({**SMPP_CONFIG, "data_coding": 8}, "provider_config.data_coding"),
], ids=["no-host", "long-system-id", "no-window", "receiver-only", "unknown-id-format",
        "ucs2-as-default"])
async def test_a_bad_smpp_configuration_answers_400_naming_the_field(
        client: httpx.AsyncClient, tenants: TenantFactory, config: dict[str, Any],
        field: str) -> None:
    tenant = await tenants.create()

    response = await client.post("/sms/v1/apps/", headers=tenant.headers, json={
        "name": "SMSC", "provider": "SMPP", "sender_id": "ACME",
        "provider_credentials": {"password": SMPP_PASSWORD}, "provider_config": config})

    assert response.status_code == 400
    assert field in [error["field"] for error in response.json()["errors"]]
    assert SMPP_PASSWORD not in response.text


async def test_a_refused_credential_value_is_not_echoed(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    leaked_sid = "ACthis-is-my-real-secret-sid"

    response = await client.post("/sms/v1/apps/", headers=tenant.headers, json={
        **TWILIO_APP, "provider_credentials": {"account_sid": leaked_sid,
                                               "auth_token": TWILIO_TOKEN}})

    assert response.status_code == 400
    assert leaked_sid not in response.text
    assert TWILIO_TOKEN not in response.text


async def test_an_unknown_credential_key_answers_400_without_its_value(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()

    response = await client.post("/sms/v1/apps/", headers=tenant.headers, json={
        "name": "Oops", "provider": "MSG91", "sender_id": "ACMEIN",
        "provider_credentials": {"auth_key": MSG91_KEY, "password": "hunter2-secret"}})

    assert response.status_code == 400
    assert "provider_credentials.password" in [e["field"] for e in response.json()["errors"]]
    assert [s for s in ("hunter2-secret", MSG91_KEY) if s in response.text] == []


async def test_an_unknown_provider_answers_400(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()

    response = await client.post("/sms/v1/apps/", headers=tenant.headers,
                                 json={"name": "Nope", "provider": "NEXMO"})

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "provider",
         "message": "must be one of ANDROID, CEQUENS, FAST2SMS, FOURJAWALY, INFOBIP, "
                    "MORA, MSEGAT, MSG91, SIMULATOR, SMPP, TAQNYAT, TWILIO, UNIFONIC, VONAGE"}]
    listed = (await client.get("/sms/v1/apps/", headers=tenant.headers)).json()
    assert listed["count"] == 0


async def test_rate_limit_defaults_to_100_per_minute(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    assert (await _create(client, tenant, SIMULATOR_APP))["rate_limit"] == "100/min"


async def test_rate_limit_default_comes_from_the_sms_rate_limit_setting(
        client: httpx.AsyncClient, tenants: TenantFactory, settings: Settings) -> None:
    settings.sms_rate_limit = "30/s"
    tenant = await tenants.create()
    assert (await _create(client, tenant, SIMULATOR_APP))["rate_limit"] == "30/s"


@pytest.mark.parametrize("rate", ["fast", "100", "0/min", "100/day", "-5/s"])
async def test_a_bad_rate_limit_answers_400(
        client: httpx.AsyncClient, tenants: TenantFactory, rate: str) -> None:
    tenant = await tenants.create()

    response = await client.post("/sms/v1/apps/", headers=tenant.headers,
                                 json={**SIMULATOR_APP, "rate_limit": rate})

    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["rate_limit"]


async def test_a_dlt_only_provider_refuses_a_sender_id_that_is_not_a_dlt_header(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()

    response = await client.post("/sms/v1/apps/", headers=tenant.headers, json={
        "name": "India", "provider": "FAST2SMS", "sender_id": "ACME",
        "provider_credentials": {"api_key": FAST2SMS_KEY}})

    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["sender_id"]


# --- the default app -----------------------------------------------------------------------------


async def test_the_first_app_becomes_the_default(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    first = await _create(client, tenant, SIMULATOR_APP)
    second = await _create(client, tenant, SIMULATOR_APP)
    assert (first["is_default"], second["is_default"]) == (True, False)


async def test_creating_an_app_as_default_moves_the_default_to_it(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    first = await _create(client, tenant, SIMULATOR_APP)

    second = await _create(client, tenant, {**SIMULATOR_APP, "is_default": True})

    assert second["is_default"] is True
    again = (await client.get(f"/sms/v1/apps/{first['id']}/", headers=tenant.headers)).json()
    assert again["is_default"] is False


async def test_updating_an_app_to_default_moves_the_default_to_it(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    first = await _create(client, tenant, SIMULATOR_APP)
    second = await _create(client, tenant, SIMULATOR_APP)

    response = await client.put(f"/sms/v1/apps/{second['id']}/", headers=tenant.headers,
                                json={"is_default": True})

    assert (response.status_code, response.json()["is_default"]) == (200, True)
    listed = (await client.get("/sms/v1/apps/", headers=tenant.headers)).json()["results"]
    assert {app["id"]: app["is_default"] for app in listed} == {
        first["id"]: False, second["id"]: True}


async def test_one_tenants_default_does_not_touch_another_tenants(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    a, b = await tenants.create(), await tenants.create()
    a_app = await _create(client, a, SIMULATOR_APP)

    await _create(client, b, {**SIMULATOR_APP, "is_default": True})

    again = (await client.get(f"/sms/v1/apps/{a_app['id']}/", headers=a.headers)).json()
    assert again["is_default"] is True


async def test_deleting_the_default_app_makes_another_app_the_default(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    first = await _create(client, tenant, SIMULATOR_APP)
    second = await _create(client, tenant, SIMULATOR_APP)

    await client.delete(f"/sms/v1/apps/{first['id']}/", headers=tenant.headers)

    again = (await client.get(f"/sms/v1/apps/{second['id']}/", headers=tenant.headers)).json()
    assert again["is_default"] is True


# --- update and delete ---------------------------------------------------------------------------


async def test_put_replaces_the_credentials_and_still_never_shows_them(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    app = await _create(client, tenant, TWILIO_APP)
    new_token = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"

    response = await client.put(f"/sms/v1/apps/{app['id']}/", headers=tenant.headers, json={
        "name": "US numbers (rotated)",
        "provider_credentials": {"account_sid": TWILIO_SID, "auth_token": new_token}})

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["provider_credentials_set"]) == (
        "US numbers (rotated)", ["account_sid", "auth_token"])
    assert [s for s in (new_token, TWILIO_SID) if s in response.text] == []
    stored = await _stored(runtime, app["id"])
    assert runtime.secret_box.decrypt_json(stored.credentials,
                                           context=credentials_context(app["id"])) == {
        "account_sid": TWILIO_SID, "auth_token": new_token}


async def test_put_with_bad_credentials_answers_400_and_keeps_the_old_ones(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    app = await _create(client, tenant, TWILIO_APP)

    response = await client.put(f"/sms/v1/apps/{app['id']}/", headers=tenant.headers, json={
        "provider_credentials": {"account_sid": "AC-bad", "auth_token": TWILIO_TOKEN}})

    assert response.status_code == 400
    assert "AC-bad" not in response.text
    stored = await _stored(runtime, app["id"])
    assert runtime.secret_box.decrypt_json(stored.credentials,
                                           context=credentials_context(app["id"])) == {
        "account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN}


async def test_put_can_clear_an_optional_field(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    app = await _create(client, tenant, {**SIMULATOR_APP, "daily_limit": 100})

    response = await client.put(f"/sms/v1/apps/{app['id']}/", headers=tenant.headers,
                                json={"daily_limit": None, "rate_limit": "5/s"})

    assert response.status_code == 200
    assert (response.json()["daily_limit"], response.json()["rate_limit"]) == (None, "5/s")


async def test_changing_the_provider_needs_credentials_for_the_new_one(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    app = await _create(client, tenant, SIMULATOR_APP)

    response = await client.put(f"/sms/v1/apps/{app['id']}/", headers=tenant.headers,
                                json={"provider": "TWILIO"})

    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["provider_credentials"]


async def test_delete_answers_204_then_the_app_is_gone(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    app = await _create(client, tenant, SIMULATOR_APP)

    deleted = await client.delete(f"/sms/v1/apps/{app['id']}/", headers=tenant.headers)

    assert (deleted.status_code, deleted.content) == (204, b"")
    again = await client.get(f"/sms/v1/apps/{app['id']}/", headers=tenant.headers)
    assert (again.status_code, again.json()["code"]) == (404, "sms_app_not_found")
    assert (await client.get("/sms/v1/apps/", headers=tenant.headers)).json()["count"] == 0
    twice = await client.delete(f"/sms/v1/apps/{app['id']}/", headers=tenant.headers)
    assert twice.status_code == 404


async def test_a_send_naming_a_deleted_app_answers_400_and_stores_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    app = await _create(client, tenant, SIMULATOR_APP)
    await client.delete(f"/sms/v1/apps/{app['id']}/", headers=tenant.headers)

    response = await client.post("/sms/v1/messages/", headers=tenant.headers, json={
        "phone": "+14155550100", "text": "hi", "sms_app_id": app["id"]})

    assert response.status_code == 400
    assert response.json()["code"] == "sms_app_not_found"
    async with runtime.sessions() as session:
        assert (await session.execute(select(Message.id))).all() == []


async def test_a_deleted_apps_queued_messages_fail_with_app_deleted(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    app = await _create(client, tenant, SIMULATOR_APP)
    sent = await client.post("/sms/v1/messages/", headers=tenant.headers,
                             json={"phone": "+14155550100", "text": "hi"})
    await client.delete(f"/sms/v1/apps/{app['id']}/", headers=tenant.headers)

    await Dispatcher(runtime).claim_and_send()

    message = (await client.get(f"/sms/v1/messages/{sent.json()['id']}/",
                                headers=tenant.headers)).json()
    assert (message["state"], message["error_code"], message["provider_message_id"]) == (
        "failed", "app_deleted", None)


# --- isolation and roles -------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "body"), [
    ("GET", None), ("PUT", {"name": "mine now"}), ("DELETE", None)])
async def test_another_tenants_app_answers_404(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime, method: str,
        body: dict[str, Any] | None) -> None:
    owner, intruder = await tenants.create(), await tenants.create()
    app = await _create(client, owner, TWILIO_APP)

    response = await client.request(method, f"/sms/v1/apps/{app['id']}/",
                                    headers=intruder.headers, json=body)

    assert (response.status_code, response.json()["code"]) == (404, "sms_app_not_found")
    stored = await _stored(runtime, app["id"])
    assert (stored.name, stored.status) == ("US numbers", "active")


async def test_a_tenant_lists_only_its_own_apps(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    a, b = await tenants.create(), await tenants.create()
    await _create(client, a, TWILIO_APP)

    listed = await client.get("/sms/v1/apps/", headers=b.headers)

    assert listed.json() == {"count": 0, "next": None, "previous": None, "results": []}


async def test_a_viewer_cannot_create_an_app(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    viewer = await tenants.key(tenant, Role.VIEWER)

    response = await client.post("/sms/v1/apps/", headers=viewer, json=TWILIO_APP)

    assert response.status_code == 403
    assert (await client.get("/sms/v1/apps/", headers=viewer)).json()["count"] == 0


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_a_viewer_cannot_change_an_app(
        client: httpx.AsyncClient, tenants: TenantFactory, method: str) -> None:
    tenant = await tenants.create()
    viewer = await tenants.key(tenant, Role.VIEWER)
    app = await _create(client, tenant, SIMULATOR_APP)

    response = await client.request(method, f"/sms/v1/apps/{app['id']}/", headers=viewer,
                                    json={"name": "renamed"} if method == "PUT" else None)

    assert response.status_code == 403
    again = await client.get(f"/sms/v1/apps/{app['id']}/", headers=viewer)
    assert (again.status_code, again.json()["name"]) == (200, "Sandbox")


# --- secrets at rest and in logs -----------------------------------------------------------------


async def test_credentials_are_encrypted_at_rest(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    app = await _create(client, tenant, TWILIO_APP)

    stored = await _stored(runtime, app["id"])

    assert stored.credentials.startswith("v1.")
    assert [s for s in (TWILIO_TOKEN, TWILIO_SID) if s in stored.credentials] == []
    assert stored.credential_keys == ["account_sid", "auth_token"]
    assert runtime.secret_box.decrypt_json(stored.credentials,
                                           context=credentials_context(app["id"])) == {
        "account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN}


async def test_credentials_never_reach_the_logs(
        client: httpx.AsyncClient, tenants: TenantFactory,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = await tenants.create()
    refused_sid = "ACrefused-secret-value"

    app = await _create(client, tenant, TWILIO_APP)
    await client.put(f"/sms/v1/apps/{app['id']}/", headers=tenant.headers, json={
        "provider_credentials": {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN}})
    await client.post("/sms/v1/apps/", headers=tenant.headers, json={
        **TWILIO_APP, "provider_credentials": {"account_sid": refused_sid,
                                               "auth_token": TWILIO_TOKEN}})
    await client.post("/sms/v1/apps/", headers=tenant.headers, json={
        "name": "bad key", "provider": "MSG91", "provider_credentials": {"auth_key": "x!"}})

    logged = "\n".join(record.getMessage() for record in caplog.records) + caplog.text
    assert [s for s in (TWILIO_SID, TWILIO_TOKEN, refused_sid) if s in logged] == []


async def test_sending_through_an_app_logs_no_credential_at_info_level(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime,
        caplog: pytest.LogCaptureFixture) -> None:
    tenant = await tenants.create()
    await _create(client, tenant, TWILIO_APP)
    await client.post("/sms/v1/messages/", headers=tenant.headers,
                      json={"phone": "+14155550100", "text": "hi"})
    fake = FakeTwilio({TWILIO_SID: TWILIO_TOKEN})
    saved = {name: logging.getLogger(name).level for name in QUIET_BELOW_DEBUG}
    caplog.set_level(logging.INFO)
    set_level(logging.INFO)  # as the CLI does for TIDINGS_LOG_LEVEL=INFO
    try:
        with serve_in_thread(fake.app) as base_url:
            runtime.settings.provider_urls["twilio"] = base_url
            dispatcher = Dispatcher(runtime)
            await dispatcher.claim_and_send()
            while dispatcher._tasks:
                await asyncio.gather(*list(dispatcher._tasks))
            await dispatcher.flush_results()
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)

    assert len(fake.messages) == 1
    assert [s for s in (TWILIO_SID, TWILIO_TOKEN) if s in caplog.text] == []
