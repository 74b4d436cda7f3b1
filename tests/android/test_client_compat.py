"""Compatibility with the SMS Gateway for Android ecosystem, black-box: the official Python
client ``android-sms-gateway`` 4.3.3 (PyPI) drives a real Tidings server over HTTP, and a fake
phone (tests/android/fake_phone.py) pulls and reports over the phone API, as the app does in
private-server mode. The cases are the research note's "External compatibility test plan"
(../shared/research/android-sms-gateway.md) plus the issue's bad-input rules.

The core cases (send, track, cancel, webhooks) run on all four client backends (requests,
httpx, aiohttp, async httpx) across both mounts (``/3rdparty/v1`` and ``/api/3rdparty/v1``);
the rest use one backend, or raw httpx where the client hides the wire. What only the phone
does (registering, joining a login, its password) is in test_phone_compat.py.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import requests
from android_sms_gateway import (
    APIClient,
    DeviceSettings,
    Encryptor,
    HealthStatus,
    LimitPeriod,
    Message,
    MessagesQueryFilter,
    ProcessState,
    SettingsEncryption,
    SettingsMessages,
    SettingsPing,
    SettingsWebhooks,
    SimSelectionMode,
    TextMessage,
    TokenRequest,
    Webhook,
    WebhookEvent,
)
from android_sms_gateway.errors import (
    APIError,
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
)
from android_sms_gateway.http import RequestsHttpClient

from tests.android.conftest import AndroidAccount, AndroidAccounts, LiveServer
from tests.android.fake_phone import plain_http
from tests.android.official import (
    HOOK_URL,
    LOCAL_PHONE,
    MATRIX,
    OTHER_PHONE,
    PHONE,
    PREFIXES,
    UNKNOWN_DEVICE,
    Api,
    official_client,
    parse_time,
    recipients,
    sync_client,
    text,
)
from tidings.runtime import Runtime
from tidings.services.android.hashing import hash_processed_messages


@pytest.fixture(params=MATRIX, ids=[f"{backend}-{mount}" for backend, mount in MATRIX])
def backend_and_mount(request: pytest.FixtureRequest) -> tuple[str, str]:
    value: tuple[str, str] = request.param
    return value


@pytest.fixture
async def api(android: AndroidAccount,
              backend_and_mount: tuple[str, str]) -> AsyncIterator[Api]:
    """Tenant A's login through the official client, on every backend and both mounts."""
    backend, mount = backend_and_mount
    async with official_client(backend, android.login, android.password,
                               android.api_url(PREFIXES[mount])) as client:
        yield client


# -- core cases, on every mount and backend --------------------------------------------------


async def test_send_answers_pending_with_the_phone_and_e164_recipients(
        api: Api, android: AndroidAccount) -> None:
    sent = await api.send(text("hello", LOCAL_PHONE))

    assert sent.state is ProcessState.Pending
    assert sent.id
    assert sent.device_id == android.phone.id
    assert recipients(sent) == [(PHONE, ProcessState.Pending)]
    assert (sent.is_hashed, sent.is_encrypted) == (False, False)


async def test_get_state_follows_the_states_the_phone_reports(
        api: Api, android: AndroidAccount) -> None:
    sent = await api.send(text("hello"))
    assert [m["id"] for m in android.phone.pull()] == [sent.id]

    for state in ("Processed", "Sent", "Delivered"):
        android.phone.report(sent.id, state, [PHONE])
        now = await api.get_state(sent.id)
        assert (now.id, now.state) == (sent.id, ProcessState(state))
        assert recipients(now) == [(PHONE, ProcessState(state))]

    assert {"Processed", "Sent", "Delivered"} <= set(now.states or {})


async def test_cancel_answers_cancelling_and_the_phone_is_told(
        api: Api, android: AndroidAccount) -> None:
    sent = await api.send(text("hello"))

    with android.phone.events() as events:
        await api.cancel_message(sent.id)
        cancelled = events.next("MessageCancelled")

    assert cancelled.data == {"messageId": sent.id}
    assert (await api.get_state(sent.id)).state is ProcessState.Cancelling
    assert [(m["id"], m["state"]) for m in android.phone.pull()] == [(sent.id, "Cancelling")]


async def test_created_webhook_is_listed_for_every_device(api: Api) -> None:
    made = await api.create_webhook(Webhook(id=None, url=HOOK_URL,
                                            event=WebhookEvent.SMS_RECEIVED))

    assert made.id
    assert (made.url, made.event) == (HOOK_URL, WebhookEvent.SMS_RECEIVED)
    assert await api.get_webhooks() == [
        Webhook(id=made.id, url=HOOK_URL, event=WebhookEvent.SMS_RECEIVED, device_id=None)]


async def test_deleted_webhook_is_gone_and_deleting_an_unknown_one_succeeds(api: Api) -> None:
    made = await api.create_webhook(Webhook(id=None, url=HOOK_URL, event=WebhookEvent.SMS_SENT))

    await api.delete_webhook(made.id or "")
    await api.delete_webhook("no-such-webhook")

    assert await api.get_webhooks() == []


# -- sending and pulling ----------------------------------------------------------------------


async def test_send_wakes_the_phone_with_message_enqueued(android: AndroidAccount) -> None:
    with android.phone.events() as events, sync_client(android) as client:
        client.send(text("hello"))
        events.next("MessageEnqueued")


async def test_phone_pull_carries_the_send_fields(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        client.send(text("hello", LOCAL_PHONE, id="order-1", sim_number=2,
                         with_delivery_report=False, priority=100, ttl=3600))

    [pulled] = android.phone.pull()

    assert {key: pulled[key] for key in (
        "id", "textMessage", "message", "phoneNumbers", "simNumber", "withDeliveryReport",
        "priority", "isEncrypted", "state")} == {
        "id": "order-1", "textMessage": {"text": "hello"}, "message": "hello",
        "phoneNumbers": [PHONE], "simNumber": 2, "withDeliveryReport": False, "priority": 100,
        "isEncrypted": False, "state": "Pending"}
    created = parse_time(pulled["createdAt"])
    assert parse_time(pulled["validUntil"]) - created == pytest.approx(
        timedelta(hours=1), abs=timedelta(seconds=5))


async def test_naive_valid_until_is_read_as_utc(android: AndroidAccount) -> None:
    with sync_client(android) as client:  # the client sends "2030-01-01T00:00:00"
        client.send(text("hello", valid_until=datetime(2030, 1, 1)))

    [pulled] = android.phone.pull()

    assert parse_time(pulled["validUntil"]) == datetime(2030, 1, 1, tzinfo=UTC)


async def test_phone_pulls_priority_100_before_priority_0(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        urgent = client.send(text("urgent", priority=100))
        ordinary = client.send(text("ordinary"))

    assert [m["id"] for m in android.phone.pull()] == [urgent.id, ordinary.id]


async def test_phone_pulls_newest_first_by_default(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        first = client.send(text("first"))
        second = client.send(text("second"))

    assert [m["id"] for m in android.phone.pull()] == [second.id, first.id]


async def test_phone_pulls_oldest_first_with_order_fifo(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        first = client.send(text("first"))
        second = client.send(text("second"))

    assert [m["id"] for m in android.phone.pull(order="fifo")] == [first.id, second.id]


async def test_data_message_reaches_the_phone(raw: httpx.Client,
                                              android: AndroidAccount) -> None:
    data = base64.b64encode(b"\x01\x02").decode()
    sent = raw.post("/messages", json={"dataMessage": {"data": data, "port": 53739},
                                       "phoneNumbers": [PHONE]})
    assert sent.status_code == 202, sent.text

    [pulled] = android.phone.pull()

    assert pulled["dataMessage"] == {"data": data, "port": 53739}
    assert pulled.get("textMessage") is None


async def test_legacy_message_field_is_accepted(raw: httpx.Client,
                                                android: AndroidAccount) -> None:
    sent = raw.post("/messages", json={"message": "hello", "phoneNumbers": [PHONE]})

    assert sent.status_code == 202, sent.text
    assert android.phone.pull()[0]["textMessage"] == {"text": "hello"}


# -- tracking ---------------------------------------------------------------------------------


async def test_pending_reported_by_the_phone_is_stored_as_processed(
        android: AndroidAccount) -> None:
    with sync_client(android) as client:
        sent = client.send(text("hello"))
        android.phone.report(sent.id, "Pending", [PHONE])

        assert client.get_state(sent.id).state is ProcessState.Processed


async def test_each_recipient_keeps_its_own_state_and_error(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        sent = client.send(text("hello", PHONE, OTHER_PHONE))
        android.phone.report(sent.id, "Sent", {PHONE: "Delivered", OTHER_PHONE: "Failed"},
                             errors={OTHER_PHONE: "RESULT_ERROR_GENERIC_FAILURE"})

        now = client.get_state(sent.id)

    assert now.state is ProcessState.Sent  # neither all delivered nor all failed
    assert [(r.phone_number, r.state, r.error) for r in now.recipients] == [
        (PHONE, ProcessState.Delivered, None),
        (OTHER_PHONE, ProcessState.Failed, "RESULT_ERROR_GENERIC_FAILURE")]


async def test_get_messages_filters_by_state(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        delivered = client.send(text("one"))
        waiting = client.send(text("two"))
        android.phone.report(delivered.id, "Delivered", [PHONE])

        assert [m.id for m in client.get_messages(
            query=MessagesQueryFilter(state="Delivered"))] == [delivered.id]
        assert [m.id for m in client.get_messages(
            query=MessagesQueryFilter(state="Pending"))] == [waiting.id]


async def test_privacy_hashing_replaces_content_and_numbers_once_the_phone_took_it(
        android_accounts: AndroidAccounts, runtime: Runtime) -> None:
    account = await android_accounts.create(
        provider_config={"privacy_hashing": True, "hashing_delay_seconds": 0})

    async def hash_now() -> int:
        async with runtime.sessions() as session:
            hashed = await hash_processed_messages(session, datetime.now(UTC)
                                                   + timedelta(seconds=1))
            await session.commit()
        return hashed

    with sync_client(account) as client, account.raw() as http:
        sent = client.send(text("hello"))
        assert await hash_now() == 0  # still Pending: the phone has not taken it
        account.phone.report(sent.id, "Processed", [PHONE])
        assert await hash_now() == 1

        state = client.get_state(sent.id)
        body = http.get(f"/messages/{sent.id}").json()

    assert state.is_hashed is True
    assert [r.phone_number for r in state.recipients] == [
        hashlib.sha256(PHONE.encode()).hexdigest()[:16]]
    assert body["hashedMessage"] == {"hash": hashlib.sha256(b"hello").hexdigest()}
    assert "textMessage" not in body


# -- duplicates and validation ---------------------------------------------------------------


async def test_duplicate_id_raises_api_error_409(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        client.send(text("hello", id="order-1"))

        with pytest.raises(APIError) as raised:
            client.send(text("hello again", id="order-1"))

    assert type(raised.value) is APIError  # the client has no subclass for 409
    assert raised.value.status_code == 409


INVALID_SENDS: dict[str, Message] = {
    "invalid phone": text("hi", "12345"),
    "landline": text("hi", "+74951234567"),
    "duplicates after normalisation": text("hi", PHONE, LOCAL_PHONE),
    "no recipients": Message(phone_numbers=[], text_message=TextMessage("hi")),
    "101 recipients": text("hi", *(f"+7999000{i:04d}" for i in range(101))),
    "priority 128": text("hi", priority=128),
    "sim number 4": text("hi", sim_number=4),
    "ttl under 5 s": text("hi", ttl=4),
    "no content": Message(phone_numbers=[PHONE]),
    "unknown device": text("hi", device_id=UNKNOWN_DEVICE),
}


async def test_invalid_sends_raise_bad_request_and_store_nothing(
        android: AndroidAccount, subtests: pytest.Subtests) -> None:
    with sync_client(android) as client:
        for label, message in INVALID_SENDS.items():
            with subtests.test(label):
                with pytest.raises(BadRequestError) as raised:
                    client.send(message)
                assert raised.value.response
                assert raised.value.response["message"]

        assert client.get_messages() == []
    assert android.phone.pull() == []


INVALID_BODIES: dict[str, dict[str, Any]] = {
    "ttl and validUntil": {"textMessage": {"text": "hi"}, "phoneNumbers": [PHONE], "ttl": 60,
                           "validUntil": "2030-01-01T00:00:00Z"},
    "text and data": {"textMessage": {"text": "hi"}, "dataMessage": {"data": "AQI=", "port": 1},
                      "phoneNumbers": [PHONE]},
    "mms only": {"mmsMessage": {"text": "hi"}, "phoneNumbers": [PHONE]},
    "data port 0": {"dataMessage": {"data": "AQI=", "port": 0}, "phoneNumbers": [PHONE]},
    "schedule in the past": {"textMessage": {"text": "hi"}, "phoneNumbers": [PHONE],
                             "scheduleAt": "2020-01-01T00:00:00Z"},
}


async def test_bodies_the_client_cannot_build_answer_400_and_store_nothing(
        raw: httpx.Client, android: AndroidAccount, subtests: pytest.Subtests) -> None:
    for label, body in INVALID_BODIES.items():
        with subtests.test(label):
            answer = raw.post("/messages", json=body)
            assert answer.status_code == 400, answer.text
            assert isinstance(answer.json()["message"], str)

    assert android.phone.pull() == []


async def test_skip_phone_validation_accepts_an_invalid_number(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        sent = client.send(text("hi", "12345"), skip_phone_validation=True)

    assert sent.state is ProcessState.Pending
    assert android.phone.pull()[0]["phoneNumbers"] == ["12345"]


# -- cancel -----------------------------------------------------------------------------------


async def test_cancel_answers_200_with_the_cancelling_state(raw: httpx.Client) -> None:
    sent = raw.post("/messages", json={"textMessage": {"text": "hi"}, "phoneNumbers": [PHONE]})

    cancelled = raw.delete(f"/messages/{sent.json()['id']}")

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "Cancelling"


async def test_phone_confirming_a_cancel_ends_it_cancelled(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        sent = client.send(text("hello"))
        client.cancel_message(sent.id)
        android.phone.report(sent.id, "Cancelled", [PHONE])

        assert client.get_state(sent.id).state is ProcessState.Cancelled
    assert android.phone.pull() == []


async def test_cancel_after_sent_answers_409(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        sent = client.send(text("hello"))
        android.phone.report(sent.id, "Sent", [PHONE])

        with pytest.raises(APIError) as raised:
            client.cancel_message(sent.id)

    assert raised.value.status_code == 409


async def test_cancel_unknown_message_raises_not_found(android: AndroidAccount) -> None:
    with sync_client(android) as client, pytest.raises(NotFoundError):
        client.cancel_message("no-such-message")


async def test_cancel_unknown_message_with_requests_raises_its_http_error(
        android: AndroidAccount) -> None:
    with (RequestsHttpClient() as http, sync_client(android, http=http) as client,
          pytest.raises(requests.HTTPError) as raised):
        client.cancel_message("no-such-message")  # requests' delete() skips the error mapping

    assert raised.value.response is not None
    assert raised.value.response.status_code == 404


# -- webhooks ---------------------------------------------------------------------------------


async def test_phone_sees_webhook_changes_and_is_told(android: AndroidAccount) -> None:
    with android.phone.events() as events, sync_client(android) as client:
        made = client.create_webhook(Webhook(id=None, url=HOOK_URL,
                                             event=WebhookEvent.SMS_DELIVERED))
        events.next("WebhooksUpdated")
        assert [{k: h[k] for k in ("id", "url", "event")} for h in android.phone.webhooks()] == [
            {"id": made.id, "url": HOOK_URL, "event": "sms:delivered"}]

        client.delete_webhook(made.id or "")
        events.next("WebhooksUpdated")
        assert android.phone.webhooks() == []


async def test_webhook_with_the_same_id_is_replaced(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        client.create_webhook(Webhook(id="hook-1", url=HOOK_URL, event=WebhookEvent.SMS_SENT))
        client.create_webhook(Webhook(id="hook-1", url=f"{HOOK_URL}/v2",
                                      event=WebhookEvent.SMS_FAILED))

        assert client.get_webhooks() == [
            Webhook(id="hook-1", url=f"{HOOK_URL}/v2", event=WebhookEvent.SMS_FAILED)]


async def test_webhook_with_plain_http_url_raises_bad_request(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        with pytest.raises(BadRequestError):
            client.create_webhook(Webhook(id=None, url="http://hooks.example.com/sms",
                                          event=WebhookEvent.SMS_RECEIVED))
        assert client.get_webhooks() == []


async def test_webhook_for_another_logins_device_raises_bad_request(
        android: AndroidAccount, other_android: AndroidAccount) -> None:
    with sync_client(android) as client, pytest.raises(BadRequestError):
        client.create_webhook(Webhook(id=None, url=HOOK_URL, event=WebhookEvent.SMS_RECEIVED,
                                      device_id=other_android.phone.id))


async def test_webhook_with_unknown_event_answers_400(raw: httpx.Client) -> None:
    answer = raw.post("/webhooks", json={"id": None, "url": HOOK_URL, "event": "sms:unknown"})

    assert answer.status_code == 400, answer.text
    assert raw.get("/webhooks").json() == []


# -- devices and phones -----------------------------------------------------------------------


async def test_list_devices_shows_the_phone_with_rfc3339_dates(
        android: AndroidAccount, raw: httpx.Client) -> None:
    with sync_client(android) as client:
        [device] = client.list_devices()

    assert (device.id, device.name) == (android.phone.id, "Fake phone")
    assert device.created_at is not None
    assert device.created_at.tzinfo is not None
    assert device.last_seen is not None
    assert device.deleted_at is None
    [wire] = raw.get("/devices").json()
    for key in ("createdAt", "updatedAt", "lastSeen"):
        parse_time(wire[key])


# -- settings ---------------------------------------------------------------------------------

MESSAGE_SETTINGS = SettingsMessages(
    send_interval_min=5, send_interval_max=10, limit_period=LimitPeriod.PER_HOUR,
    limit_value=100, sim_selection_mode=SimSelectionMode.ROUND_ROBIN, log_lifetime_days=30)


async def test_patched_settings_read_back_in_snake_case(android: AndroidAccount,
                                                        raw: httpx.Client) -> None:
    with sync_client(android) as client:
        client.patch_settings(DeviceSettings(messages=MESSAGE_SETTINGS))

        assert client.get_settings().messages == MESSAGE_SETTINGS
    assert raw.get("/settings").json()["messages"] == {
        "send_interval_min": 5, "send_interval_max": 10, "limit_period": "PerHour",
        "limit_value": 100, "sim_selection_mode": "RoundRobin", "log_lifetime_days": 30}


async def test_patch_settings_merges(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        client.patch_settings(DeviceSettings(messages=MESSAGE_SETTINGS))
        client.patch_settings(DeviceSettings(ping=SettingsPing(interval_seconds=900)))

        got = client.get_settings()

    assert got.messages == MESSAGE_SETTINGS
    assert got.ping == SettingsPing(interval_seconds=900)


async def test_put_settings_replaces(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        client.patch_settings(DeviceSettings(messages=MESSAGE_SETTINGS))
        client.update_settings(DeviceSettings(ping=SettingsPing(interval_seconds=60)))

        got = client.get_settings()

    assert got.ping == SettingsPing(interval_seconds=60)
    assert (got.messages or SettingsMessages()).send_interval_min is None


async def test_settings_hide_secrets_from_clients_but_not_from_phones(
        android: AndroidAccount, raw: httpx.Client) -> None:
    with sync_client(android) as client:
        client.patch_settings(DeviceSettings(
            webhooks=SettingsWebhooks(signing_key="s3cret", retry_count=3),
            encryption=SettingsEncryption(passphrase="pw")))

        got = client.get_settings()

    assert got.webhooks == SettingsWebhooks(retry_count=3)
    assert (got.encryption or SettingsEncryption()).passphrase is None
    wire = raw.get("/settings").json()
    assert "signing_key" not in wire.get("webhooks", {})
    assert "passphrase" not in (wire.get("encryption") or {})
    phone = android.phone.settings()
    assert (phone["webhooks"]["signing_key"], phone["encryption"]["passphrase"]) == (
        "s3cret", "pw")


async def test_unknown_settings_keys_are_dropped(raw: httpx.Client) -> None:
    answer = raw.patch("/settings", json={"messages": {"send_interval_min": 5, "bogus": 1},
                                          "bogus_section": {"x": 1}})

    assert answer.status_code == 200, answer.text
    wire = raw.get("/settings").json()
    assert wire["messages"] == {"send_interval_min": 5}
    assert "bogus_section" not in wire


async def test_settings_change_tells_the_phone(android: AndroidAccount) -> None:
    with android.phone.events() as events, sync_client(android) as client:
        client.patch_settings(DeviceSettings(ping=SettingsPing(interval_seconds=900)))
        events.next("SettingsUpdated")


# -- health and tokens ------------------------------------------------------------------------


async def test_health_checks_pass(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        assert [check().status for check in (
            client.health_check, client.liveness_check, client.readiness_check,
            client.startup_check)] == [HealthStatus.PASS] * 4


async def test_health_needs_no_credentials(live_server: LiveServer) -> None:
    with plain_http(live_server.api_url()) as http:
        answer = http.get("/health")

    assert answer.status_code == 200
    assert answer.json()["status"] == "pass"


async def test_generated_token_parses_in_the_client(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        token = client.generate_token(TokenRequest(["messages:send"], ttl=600))

    assert token.token_type == "Bearer"
    assert token.access_token
    assert token.refresh_token
    assert token.id
    assert parse_time(token.expires_at) > datetime.now(UTC)


async def test_token_reply_carries_snake_and_camel_case_fields(raw: httpx.Client) -> None:
    answer = raw.post("/auth/token", json={"scopes": ["messages:send"]})

    assert answer.status_code == 201, answer.text
    body = answer.json()
    for snake, camel in (("access_token", "accessToken"), ("refresh_token", "refreshToken"),
                         ("token_type", "tokenType"), ("expires_at", "expiresAt")):
        assert body[snake] == body[camel]
    assert body["token_type"] == "Bearer"
    parse_time(body["expires_at"])


async def test_token_without_scopes_answers_400(raw: httpx.Client) -> None:
    assert raw.post("/auth/token", json={"scopes": []}).status_code == 400


async def test_send_scoped_token_sends_but_cannot_list_webhooks(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        token = client.generate_token(TokenRequest(["messages:send"]))

    with APIClient(None, token.access_token, base_url=android.api_url()) as scoped:
        assert scoped.send(text("hello")).state is ProcessState.Pending
        with pytest.raises(ForbiddenError) as raised:
            scoped.get_webhooks()

    assert raised.value.response is not None
    assert "webhooks:list" in raised.value.response["message"]


async def test_refreshed_token_pair_works(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        first = client.generate_token(TokenRequest(["messages:send", "messages:read"]))
        assert first.refresh_token is not None
        second = client.refresh_token(first.refresh_token)  # POST {} with Bearer <refresh>

    assert second.access_token
    assert second.access_token != first.access_token
    with APIClient(None, second.access_token, base_url=android.api_url()) as refreshed:
        sent = refreshed.send(text("hello"))
        assert refreshed.get_state(sent.id).id == sent.id


async def test_access_token_is_no_refresh_token(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        token = client.generate_token(TokenRequest(["messages:send"]))
        with pytest.raises(UnauthorizedError):
            client.refresh_token(token.access_token)


async def test_revoked_token_gets_401(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        token = client.generate_token(TokenRequest(["messages:send"]))
        client.revoke_token(token.id)

    with (APIClient(None, token.access_token, base_url=android.api_url()) as revoked,
          pytest.raises(UnauthorizedError)):
        revoked.send(text("hello"))


# -- credentials and tenant isolation ---------------------------------------------------------


async def test_bad_credentials_raise_unauthorized(android: AndroidAccount) -> None:
    with (APIClient(android.login, "not-the-password", base_url=android.api_url()) as client,
          pytest.raises(UnauthorizedError)):
        client.get_webhooks()


async def test_tenant_api_key_acts_as_the_tenants_login(android: AndroidAccount) -> None:
    with APIClient(None, android.tenant.api_key, base_url=android.api_url()) as client:
        assert [d.id for d in client.list_devices()] == [android.phone.id]
        sent = client.send(text("hello"))

    assert sent.device_id == android.phone.id
    assert [m["id"] for m in android.phone.pull()] == [sent.id]


async def test_another_tenant_gets_404_for_a_message_id(
        android: AndroidAccount, other_android: AndroidAccount) -> None:
    with sync_client(android) as client:
        sent = client.send(text("hello"))

    with sync_client(other_android) as other:
        with pytest.raises(NotFoundError):
            other.get_state(sent.id)
        with pytest.raises(NotFoundError):
            other.cancel_message(sent.id)


async def test_another_tenants_phone_never_pulls_the_message(
        android: AndroidAccount, other_android: AndroidAccount) -> None:
    with sync_client(android) as client:
        sent = client.send(text("hello"))

    assert other_android.phone.pull() == []
    assert [m["id"] for m in android.phone.pull()] == [sent.id]


async def test_another_tenants_phone_cannot_report_the_message(
        android: AndroidAccount, other_android: AndroidAccount) -> None:
    with sync_client(android) as client:
        sent = client.send(text("hello"))
        other_android.phone.report(sent.id, "Delivered", [PHONE])  # 204, ignored

        assert client.get_state(sent.id).state is ProcessState.Pending


# -- end-to-end encryption --------------------------------------------------------------------


async def test_encrypted_message_reaches_the_phone_as_ciphertext(
        android: AndroidAccount, raw: httpx.Client) -> None:
    encryptor = Encryptor("pw", iterations=1000)
    with sync_client(android, encryptor=encryptor) as client:
        sent = client.send(text("secret", LOCAL_PHONE))

    stored = raw.get(f"/messages/{sent.id}").json()
    assert stored["isEncrypted"] is True
    assert stored["recipients"][0]["phoneNumber"].startswith("$aes-256-cbc/pbkdf2-sha1$i=1000$")
    [pulled] = android.phone.pull()
    assert pulled["isEncrypted"] is True
    assert [encryptor.decrypt(n) for n in pulled["phoneNumbers"]] == [LOCAL_PHONE]
    assert encryptor.decrypt(pulled["textMessage"]["text"]) == "secret"


async def test_client_with_the_encryptor_reads_decrypted_recipients(
        android: AndroidAccount) -> None:
    with sync_client(android, encryptor=Encryptor("pw", iterations=1000)) as client:
        sent = client.send(text("secret", LOCAL_PHONE))

        assert [r.phone_number for r in sent.recipients] == [LOCAL_PHONE]
        assert [r.phone_number for r in client.get_state(sent.id).recipients] == [LOCAL_PHONE]


# -- the wire, where the client hides it ------------------------------------------------------


@pytest.mark.parametrize("mount", list(PREFIXES.values()), ids=list(PREFIXES))
async def test_send_answers_202_with_location(mount: str, android: AndroidAccount) -> None:
    with android.raw(mount) as http:
        answer = http.post("/messages", json={"textMessage": {"text": "hi"},
                                              "phoneNumbers": [PHONE]})

    assert answer.status_code == 202, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert urlsplit(answer.headers["location"]).path == f"{mount}/messages/{answer.json()['id']}"


async def test_message_list_answers_x_total_count(raw: httpx.Client) -> None:
    for body in ("one", "two", "three"):
        raw.post("/messages", json={"textMessage": {"text": body}, "phoneNumbers": [PHONE]})

    answer = raw.get("/messages", params={"limit": 2})

    assert answer.status_code == 200
    assert answer.headers["x-total-count"] == "3"
    assert len(answer.json()) == 2


async def test_message_list_shows_content_only_when_asked(raw: httpx.Client) -> None:
    raw.post("/messages", json={"textMessage": {"text": "hi"}, "phoneNumbers": [PHONE]})

    [plain] = raw.get("/messages").json()
    [full] = raw.get("/messages", params={"includeContent": "true"}).json()

    assert "textMessage" not in plain
    assert full["textMessage"] == {"text": "hi"}


ERRORS: dict[str, tuple[str, str, bytes | None, int]] = {
    "bad phone": ("POST", "/messages",
                  b'{"textMessage": {"text": "hi"}, "phoneNumbers": ["12345"]}', 400),
    "broken json": ("POST", "/messages", b'{"textMessage": ', 400),
    "unknown message": ("GET", "/messages/no-such-message", None, 404),
}


async def test_errors_are_json_objects_with_a_message(raw: httpx.Client,
                                                     subtests: pytest.Subtests) -> None:
    for label, (method, path, content, status) in ERRORS.items():
        with subtests.test(label):
            answer = raw.request(method, path, content=content,
                                 headers={"Content-Type": "application/json"})
            assert answer.status_code == status, answer.text
            assert answer.headers["content-type"].startswith("application/json")
            assert isinstance(answer.json()["message"], str)
            assert answer.json()["message"]


async def test_missing_credentials_answer_401_json(live_server: LiveServer) -> None:
    with plain_http(live_server.api_url()) as http:
        answer = http.get("/messages")

    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/json")
    assert isinstance(answer.json()["message"], str)


async def test_invalid_phone_error_names_the_problem(raw: httpx.Client) -> None:
    answer = raw.post("/messages", json={"textMessage": {"text": "hi"},
                                         "phoneNumbers": ["12345"]})

    assert "invalid phone number" in answer.json()["message"]


async def test_singular_aliases_answer_like_the_plural_paths(
        raw: httpx.Client, android: AndroidAccount) -> None:
    sent = raw.post("/message", json={"textMessage": {"text": "hi"}, "phoneNumbers": [PHONE]})

    assert sent.status_code == 202, sent.text
    assert raw.get(f"/message/{sent.json()['id']}").json()["id"] == sent.json()["id"]
    assert [d["id"] for d in raw.get("/device").json()] == [android.phone.id]


async def test_queue_limit_answers_503(android_accounts: AndroidAccounts) -> None:
    account = await android_accounts.create(provider_config={"max_pending_per_device": 1})
    body = {"textMessage": {"text": "hi"}, "phoneNumbers": [PHONE]}

    with account.raw() as http:
        assert http.post("/messages", json=body).status_code == 202
        refused = http.post("/messages", json=body)

    assert refused.status_code == 503, refused.text
    assert "queue limit" in refused.json()["message"]
    assert len(account.phone.pull()) == 1


# -- one system: the native API and the Android API share messages ----------------------------


@pytest.mark.live_workers
async def test_native_send_reaches_the_phone_and_its_reports_show_natively(
        android: AndroidAccount, native: httpx.AsyncClient) -> None:
    made = await native.post("/sms/v1/messages/", headers=android.tenant.headers, json={
        "phone": PHONE, "text": "hi", "sms_app_id": android.app_id})
    assert made.status_code == 201, made.text

    [pulled] = android.phone.pull()
    assert (pulled["phoneNumbers"], pulled["textMessage"]) == ([PHONE], {"text": "hi"})
    for state in ("Processed", "Sent", "Delivered"):
        android.phone.report(pulled["id"], state, [PHONE])

    shown = await native.get(f"/sms/v1/messages/{made.json()['id']}/",
                             headers=android.tenant.headers)
    assert shown.json()["state"] == "delivered"


async def test_android_api_message_appears_in_the_native_list(
        android: AndroidAccount, native: httpx.AsyncClient) -> None:
    with sync_client(android) as client:
        client.send(text("hello", PHONE, OTHER_PHONE))

    listed = await native.get("/sms/v1/messages/", headers=android.tenant.headers)

    assert sorted((m["phone"], m["text"], m["sms_app_id"], m["state"])
                  for m in listed.json()["results"]) == [
        (PHONE, "hello", android.app_id, "queued"),
        (OTHER_PHONE, "hello", android.app_id, "queued")]
