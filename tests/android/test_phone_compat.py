"""The phone side of the SMS Gateway for Android compatibility, black-box over HTTP: how the
app registers (a new login per registration-token use, or joining one with Basic credentials or
a one-time code), reads its device, changes the login's password, and what a removed phone or
a report for an unknown message gets. The wire follows android-sms-gateway/client-go's mobile
DTOs (../shared/research/android-sms-gateway.md, "Mobile API")."""

from __future__ import annotations

import re

import pytest
from android_sms_gateway import APIClient
from android_sms_gateway.errors import UnauthorizedError

from tests.android.conftest import AndroidAccount, LiveServer
from tests.android.fake_phone import FakePhone, SseParser, basic_auth, plain_http
from tests.android.official import PHONE, parse_time, sync_client, text


async def test_second_phone_joins_the_login_with_basic_credentials(
        android: AndroidAccount) -> None:
    with plain_http(android.server.mobile_url) as http:
        answer = http.post("/device", json={"name": "Second phone"}, headers={
            "Authorization": basic_auth(android.login, android.password)})

    assert answer.status_code == 201, answer.text
    joined = answer.json()
    assert set(joined) == {"id", "token", "login"}  # the password is shown only once
    assert joined["login"] == android.login
    with sync_client(android) as client:
        assert {d.id for d in client.list_devices()} == {android.phone.id, joined["id"]}


async def test_phone_joins_the_login_with_a_one_time_code(android: AndroidAccount) -> None:
    code = FakePhone.user_code(android.server.mobile_url, android.login, android.password)
    assert re.fullmatch(r"\d{6}", code["code"])
    parse_time(code["validUntil"])

    second = FakePhone.join_with_code(android.server.mobile_url, code["code"])

    assert second.login == android.login


async def test_every_registration_with_the_token_creates_a_new_login(
        android: AndroidAccount) -> None:
    again = FakePhone.register(android.server.mobile_url, android.registration_token)

    assert again.login != android.login
    assert re.fullmatch(r"[A-Z0-9]{6}", again.login)
    assert again.password is not None
    assert re.fullmatch(r"[a-z0-9]{14}", again.password)


async def test_registration_without_a_token_answers_401(live_server: LiveServer) -> None:
    with plain_http(live_server.mobile_url) as http:
        answer = http.post("/device", json={"name": "Stranger"})

    assert answer.status_code == 401
    assert isinstance(answer.json()["message"], str)


async def test_phone_registers_and_pulls_under_the_api_prefix(android: AndroidAccount) -> None:
    phone = FakePhone.register(f"{android.server.url}/api/mobile/v1",
                               android.registration_token)
    account = AndroidAccount(android.server, android.tenant, android.app_id,
                             android.registration_token, phone)
    with sync_client(account) as client:
        sent = client.send(text("hello"))

    assert [m["id"] for m in phone.pull()] == [sent.id]


async def test_phone_reads_its_own_device(android: AndroidAccount) -> None:
    answer = android.phone.device()

    assert answer["device"]["id"] == android.phone.id
    assert answer["device"]["name"] == "Fake phone"


async def test_removed_device_gets_401_and_is_no_longer_listed(android: AndroidAccount) -> None:
    with sync_client(android) as client:
        client.remove_device(android.phone.id)

        assert android.phone.request("GET", "/message").status_code == 401
        assert client.list_devices() == []


async def test_changed_password_replaces_the_basic_credentials(
        android: AndroidAccount) -> None:
    answer = android.phone.change_password(android.password, "a-brand-new-password")

    assert answer.status_code == 204, answer.text
    with sync_client(android) as old, pytest.raises(UnauthorizedError):
        old.list_devices()
    with APIClient(android.login, "a-brand-new-password",
                   base_url=android.api_url()) as new:
        assert [d.id for d in new.list_devices()] == [android.phone.id]


async def test_password_change_with_a_wrong_current_password_answers_401(
        android: AndroidAccount) -> None:
    answer = android.phone.change_password("not-the-password", "a-brand-new-password")

    assert answer.status_code == 401


async def test_report_for_an_unknown_message_is_ignored(android: AndroidAccount) -> None:
    android.phone.report("no-such-message", "Delivered", [PHONE])  # asserts the 204


# -- the fake phone's own SSE reading ------------------------------------------------------


def test_sse_parser_skips_keepalive_comments() -> None:
    parser = SseParser()
    wire = ('event: MessageEnqueued\ndata: {}\n\n:keepalive\n\n'
            'event: MessageCancelled\r\ndata: {"messageId": "m1"}\r\n\r\n')

    events = list(parser.feed(wire.replace("\r\n", "\n").split("\n")))

    assert [(e.type, e.data) for e in events] == [
        ("MessageEnqueued", {}), ("MessageCancelled", {"messageId": "m1"})]
    assert parser.comments == 1
