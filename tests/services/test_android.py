"""The Android gateway inside the pipeline: phones' messages are not the dispatcher's (test-mode
traffic still goes to the simulator), messages sent through the native API are adopted by the
phone that pulls them, expiry and privacy hashing reach the 3rd-party view, a phone's report
for a row applies monotonically, and each registration path makes or joins the right login."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import FakeClock, TenantFactory
from tests.pipeline.test_dispatcher import make_app, one_round, queue, states
from tidings.db.models import AndroidMessage, CallbackDelivery, ChannelAccount, Message
from tidings.domain.android import hash_content, hash_phone
from tidings.domain.passwords import verify_password
from tidings.errors import Unauthorized
from tidings.pipeline.dispatcher import Dispatcher
from tidings.runtime import Runtime
from tidings.services import webhooks
from tidings.services.android import access, messages
from tidings.services.android.access import AndroidCaller, Registration
from tidings.services.android.hashing import hash_processed_messages
from tidings.services.android.messages import AndroidSend, PhoneReport, SendOptions
from tidings.services.sms_upkeep import expire_overdue

SECRET = "test-secret-key-not-for-production"


@dataclass
class Phone:
    app: ChannelAccount
    registration: Registration
    caller: AndroidCaller


async def phone(runtime: Runtime, tenants: TenantFactory,
                config: dict[str, Any] | None = None) -> Phone:
    """A tenant with an ANDROID app and one registered phone (a new login)."""
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id, provider="ANDROID", config=config)
    async with runtime.sessions() as session:
        registration = await access.register_device(
            session, authorization=f"Bearer {access.registration_token(app, SECRET)}",
            secret_key=SECRET, name="Pixel", push_token=None, sim_cards=None,
            now=runtime.clock())
        await session.commit()
    device = registration.device
    return Phone(app, registration,
                 AndroidCaller(device.tenant_id, device.login_id, app.id))


async def send(runtime: Runtime, owner: Phone, **fields: Any) -> messages.AndroidMessageView:
    request = AndroidSend(**{"phone_numbers": ["+79990001234"], "text": "hi", **fields})
    async with runtime.sessions() as session:
        view = await messages.send_message(session, owner.caller, request, SendOptions(),
                                           now=runtime.clock())
        await session.commit()
    return view


async def pulled(runtime: Runtime, owner: Phone) -> list[str]:
    async with runtime.sessions() as session:
        views = await messages.pull_for_device(session, owner.registration.device, fifo=True,
                                               now=runtime.clock())
        await session.commit()
    return [view.header.ext_id for view in views]


async def report(runtime: Runtime, owner: Phone, *reports: PhoneReport) -> None:
    async with runtime.sessions() as session:
        await messages.apply_phone_reports(session, owner.registration.device, reports,
                                           runtime.clock())
        await session.commit()


async def view_of(runtime: Runtime, owner: Phone, ext_id: str) -> messages.AndroidMessageView:
    async with runtime.sessions() as session:
        return await messages.get_message(session, owner.caller, ext_id)


# --- the dispatcher --------------------------------------------------------------------------


async def test_the_dispatcher_leaves_live_android_messages_for_the_phones(
        runtime: Runtime, tenants: TenantFactory) -> None:
    owner = await phone(runtime, tenants)
    ids = await queue(runtime, owner.app, 3)

    assert await one_round(Dispatcher(runtime)) == 0
    assert await states(runtime, ids) == ["queued"] * 3
    assert sorted(await pulled(runtime, owner)) == sorted(ids)


async def test_test_mode_traffic_to_an_android_app_goes_to_the_simulator(
        runtime: Runtime, tenants: TenantFactory) -> None:
    owner = await phone(runtime, tenants)
    ids = await queue(runtime, owner.app, 2, mode="test")

    assert await one_round(Dispatcher(runtime)) == 2
    assert await states(runtime, ids) == ["sent", "sent"]
    assert await pulled(runtime, owner) == []


# --- native messages reach the phone ---------------------------------------------------------


async def test_a_native_message_is_adopted_once_and_its_report_moves_the_row(
        runtime: Runtime, tenants: TenantFactory) -> None:
    owner = await phone(runtime, tenants)
    [row_id] = await queue(runtime, owner.app)

    assert await pulled(runtime, owner) == [row_id]
    assert await pulled(runtime, owner) == [row_id]  # still Pending: offered again, not twice
    await report(runtime, owner, PhoneReport(row_id, "Delivered"))

    assert await states(runtime, [row_id]) == ["delivered"]
    assert (await view_of(runtime, owner, row_id)).state == "Delivered"
    async with runtime.sessions() as session:
        headers = (await session.execute(select(AndroidMessage))).scalars().all()
    assert [header.ext_id for header in headers] == [row_id]


async def test_a_late_sent_report_does_not_undo_delivered(
        runtime: Runtime, tenants: TenantFactory) -> None:
    owner = await phone(runtime, tenants)
    view = await send(runtime, owner)

    await report(runtime, owner, PhoneReport(view.header.ext_id, "Delivered"))
    await report(runtime, owner, PhoneReport(view.header.ext_id, "Sent"))

    assert (await view_of(runtime, owner, view.header.ext_id)).state == "Delivered"


async def test_a_phone_cancelling_a_message_queues_its_status_callback(
        runtime: Runtime, tenants: TenantFactory) -> None:
    owner = await phone(runtime, tenants)
    async with runtime.sessions() as session:
        await webhooks.create_endpoint(
            session, runtime.secret_box, tenant_id=owner.app.tenant_id,
            url="http://127.0.0.1:9/tidings", events=["message.status"], secret="s" * 32,
            allow_private=True, now=runtime.clock())
        await session.commit()
    [row_id] = await queue(runtime, owner.app)
    await pulled(runtime, owner)

    await report(runtime, owner, PhoneReport(row_id, "Cancelled"))

    async with runtime.sessions() as session:
        queued = (await session.execute(select(CallbackDelivery))).scalars().all()
    assert await states(runtime, [row_id]) == ["cancelled"]
    assert [(delivery.message_id, delivery.event) for delivery in queued] == [
        (row_id, "message.status")]
    assert json.loads(queued[0].body)["data"]["state"] == "cancelled"


async def test_a_report_from_another_phone_changes_nothing(
        runtime: Runtime, tenants: TenantFactory) -> None:
    owner, stranger = await phone(runtime, tenants), await phone(runtime, tenants)
    view = await send(runtime, owner)

    await report(runtime, stranger, PhoneReport(view.header.ext_id, "Failed"))

    assert (await view_of(runtime, owner, view.header.ext_id)).state == "Pending"


# --- expiry and hashing ----------------------------------------------------------------------


async def test_a_message_past_its_ttl_expires_shows_failed_and_is_no_longer_pulled(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    owner = await phone(runtime, tenants)
    view = await send(runtime, owner, ttl=60)

    clock.advance(61)
    async with runtime.sessions() as session:
        assert await expire_overdue(session, clock()) == 1
        await session.commit()

    assert await pulled(runtime, owner) == []
    expired = await view_of(runtime, owner, view.header.ext_id)
    assert (expired.state, expired.header.state) == ("Failed", "Failed")


@pytest.mark.parametrize(("config", "encrypted", "wait", "hashed"), [
    ({"privacy_hashing": True, "hashing_delay_seconds": 60}, False, 61, True),
    ({"privacy_hashing": True, "hashing_delay_seconds": 60}, False, 59, False),
    ({"privacy_hashing": True, "hashing_delay_seconds": 0}, True, 1, False),
    ({}, False, 3600, False),
], ids=["after-the-delay", "before-the-delay", "encrypted-never", "hashing-off"])
async def test_privacy_hashing_replaces_text_and_numbers_once_processed(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock, config: dict[str, Any],
        encrypted: bool, wait: int, hashed: bool) -> None:
    owner = await phone(runtime, tenants, config)
    view = await send(runtime, owner, is_encrypted=encrypted)
    await report(runtime, owner, PhoneReport(view.header.ext_id, "Sent"))

    clock.advance(wait)
    async with runtime.sessions() as session:
        assert await hash_processed_messages(session, clock()) == int(hashed)
        await session.commit()

    after = await view_of(runtime, owner, view.header.ext_id)
    assert after.header.is_hashed is hashed
    expected = (hash_content("hi"), hash_phone("+79990001234")) if hashed \
        else ("hi", "+79990001234")
    assert (after.header.text, after.rows[0].to_number) == expected
    assert after.rows[0].text == expected[0]


async def test_a_pending_message_is_not_hashed(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    owner = await phone(runtime, tenants, {"privacy_hashing": True, "hashing_delay_seconds": 0})
    await send(runtime, owner)

    clock.advance(3600)
    async with runtime.sessions() as session:
        assert await hash_processed_messages(session, clock()) == 0


# --- registration ----------------------------------------------------------------------------


async def test_each_registration_token_registration_makes_a_new_login(
        runtime: Runtime, tenants: TenantFactory) -> None:
    owner = await phone(runtime, tenants)
    token = access.registration_token(owner.app, SECRET)
    async with runtime.sessions() as session:
        second = await access.register_device(session, authorization=f"Bearer {token}",
                                              secret_key=SECRET, name=None, push_token=None,
                                              sim_cards=None, now=runtime.clock())
    assert second.login != owner.registration.login
    assert second.password is not None
    assert len(second.login) == 6 and second.login.isupper()  # noqa: PT018
    assert len(second.password) == 14 and second.password.islower()  # noqa: PT018


@pytest.mark.parametrize("how", ["basic", "code"])
async def test_a_phone_joins_an_existing_login_with_basic_or_a_one_time_code(
        runtime: Runtime, tenants: TenantFactory, how: str) -> None:
    owner = await phone(runtime, tenants)
    login, password = owner.registration.login, owner.registration.password
    async with runtime.sessions() as session:
        if how == "basic":
            authorization = "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()
        else:
            code = await access.one_time_code(session, owner.caller, runtime.clock())
            authorization = f"Code {code.code}"
        joined = await access.register_device(session, authorization=authorization,
                                              secret_key=SECRET, name="Second", push_token=None,
                                              sim_cards=None, now=runtime.clock())
        await session.commit()
        devices = await access.list_devices(session, owner.caller)
    assert (joined.login, joined.password) == (login, None)
    assert {device.name for device in devices} == {"Pixel", "Second"}


async def test_a_one_time_code_works_once_and_not_after_a_minute(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    owner = await phone(runtime, tenants)
    async with runtime.sessions() as session:
        used = await access.one_time_code(session, owner.caller, clock())
        late = await access.one_time_code(session, owner.caller, clock())
        await access.register_device(session, authorization=f"Code {used.code}",
                                     secret_key=SECRET, name=None, push_token=None,
                                     sim_cards=None, now=clock())
        clock.advance(61)
        for code in (used.code, late.code):
            with pytest.raises(Unauthorized):
                await access.register_device(session, authorization=f"Code {code}",
                                             secret_key=SECRET, name=None, push_token=None,
                                             sim_cards=None, now=clock())


@pytest.mark.parametrize("authorization", [
    None, "Bearer nonsense", "Bearer {app}.forged", "Code 000000", "Basic bm9ib2R5OnB3",
])
async def test_registration_without_valid_credentials_is_refused(
        runtime: Runtime, tenants: TenantFactory, authorization: str | None) -> None:
    owner = await phone(runtime, tenants)
    async with runtime.sessions() as session:
        with pytest.raises(Unauthorized):
            await access.register_device(
                session, authorization=authorization and authorization.format(app=owner.app.id),
                secret_key=SECRET, name=None, push_token=None, sim_cards=None,
                now=runtime.clock())
        rows = (await session.execute(select(Message))).scalars().all()
    assert rows == []


async def test_concurrent_requests_with_one_new_password_check_it_once(
        runtime: Runtime, tenants: TenantFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    owner = await phone(runtime, tenants)
    checks: list[str] = []

    def counted(password_hash: str, password: str) -> bool:
        checks.append(password)
        return verify_password(password_hash, password)

    monkeypatch.setattr(access, "verify_password", counted)
    basic = "Basic " + base64.b64encode(
        f"{owner.registration.login}:{owner.registration.password}".encode()).decode()

    async def authenticate() -> AndroidCaller:
        async with runtime.read_sessions() as reads:
            return await access.authenticate_client(
                reads, authorization=basic, tokens=runtime.tokens, secret_key=SECRET,
                now=runtime.clock(), cache=runtime.auth_cache)

    callers = await asyncio.gather(*(authenticate() for _ in range(8)))

    assert len(checks) == 1
    assert {caller.login_id for caller in callers} == {owner.caller.login_id}


async def test_a_wrong_password_is_refused_to_every_concurrent_request_and_not_cached(
        runtime: Runtime, tenants: TenantFactory) -> None:
    owner = await phone(runtime, tenants)
    basic = "Basic " + base64.b64encode(f"{owner.registration.login}:wrong".encode()).decode()

    async def authenticate() -> AndroidCaller:
        async with runtime.read_sessions() as reads:
            return await access.authenticate_client(
                reads, authorization=basic, tokens=runtime.tokens, secret_key=SECRET,
                now=runtime.clock(), cache=runtime.auth_cache)

    results = await asyncio.gather(*(authenticate() for _ in range(3)), return_exceptions=True)

    assert [type(result) for result in results] == [Unauthorized] * 3
    with pytest.raises(Unauthorized):
        await authenticate()
