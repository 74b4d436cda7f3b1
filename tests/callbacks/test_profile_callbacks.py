"""Service-profile callbacks end to end: an SMS app's inbound messages are POSTed and its
delivery receipts PATCHed to the profile's URL in the seed's shapes, with a JWT of the
profile's ``api_secret`` (verified here with PyJWT); inbound SMS to a full MSISDN are forwarded
instead when the app has P2P on.
"""

from __future__ import annotations

import json
import time

import httpx
import jwt
import pytest
from sqlalchemy import select, update

from tests.callbacks.steps import (
    OUR_NUMBER,
    PHONE,
    Receiver,
    report,
    sent_message,
    stored_deliveries,
)
from tests.conftest import FakeClock, TenantFactory, TenantHandle
from tests.fakes.infobip import inbound_body
from tidings.db.models import ChannelAccount, Message, MessageEvent, Tenant
from tidings.pipeline.callbacks import CallbackSender
from tidings.providers.base import InboundMessage
from tidings.runtime import Runtime
from tidings.services import reports
from tidings.services.service_profiles import ProfileFields, create_profile, delete_profile

API_SECRET = "profile-api-secret-0123456789-abcdefghij"
INFOBIP_KEY = "957df92101cfd4e4e74ce44cf5ab68b9-6e2ec23a-46bc-4597-b341-35c0ae0b3b95"


@pytest.fixture
def clock(clock: FakeClock) -> FakeClock:
    """Now, so the JWTs the sender makes are not expired when PyJWT checks them."""
    clock.now = clock.now.fromtimestamp(int(time.time()), clock.now.tzinfo)
    return clock


async def _profile_on_app(runtime: Runtime, tenant: TenantHandle, app_id: str, url: str, *,
                          api_secret: str | None = API_SECRET,
                          events: tuple[str, ...] = ("inbound", "delivery"),
                          p2p: bool = False) -> str:
    async with runtime.sessions() as session:
        profile = await create_profile(
            session, runtime.secret_box, tenant_id=tenant.tenant_id,
            fields=ProfileFields(name="Main", callback_url=url, events=events),
            api_secret=api_secret, allow_private=True, now=runtime.clock())
        await session.execute(update(ChannelAccount).where(ChannelAccount.id == app_id)
                              .values(service_profile_id=profile.id, p2p_enabled=p2p))
        await session.commit()
        return profile.id


async def _inbound(runtime: Runtime, app_id: str, *, to: str, text: str = "Hello there",
                   provider_id: str = "mo-1") -> Message:
    async with runtime.sessions() as session:
        app = await session.get(ChannelAccount, app_id)
        assert app is not None
        await reports.store_inbound(session, app, InboundMessage(
            provider_id, from_number=PHONE, to_number=to, text=text), runtime.clock())
        await session.commit()
        return (await session.execute(select(Message).where(
            Message.provider_message_id == provider_id))).scalar_one()


async def _tenant_name(runtime: Runtime, tenant: TenantHandle) -> str:
    async with runtime.sessions() as session:
        return str((await session.execute(select(Tenant.name).where(
            Tenant.id == tenant.tenant_id))).scalar_one())


async def test_an_inbound_sms_to_a_short_code_is_posted_in_the_profile_shape_with_a_jwt(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory, clock: FakeClock,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    tenant = await tenants.create()
    app_id = (await sent_message(runtime, tenant, "prov-0")).app_id
    await _profile_on_app(runtime, tenant, app_id, f"{base_url}/mo")
    message = await _inbound(runtime, app_id, to="12345678", text="Hi ✓")

    await sender.deliver_due()

    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/mo")
    assert json.loads(request.body) == {
        "id": message.seq, "message_id": message.id,
        "endpoint": {"id": app_id, "name": "Sim"},
        "organisation": {"id": tenant.tenant_id, "name": await _tenant_name(runtime, tenant)},
        "source_address": PHONE.removeprefix("+"), "dest_address": "12345678",
        "payload": "Hi ✓", "dcs": 8, "pid": 0,
        "submit_date": clock.now.isoformat().replace("+00:00", "Z")}
    assert isinstance(message.seq, int)
    scheme, _, token = request.headers["authorization"].partition(" ")
    claims = jwt.decode(token, API_SECRET, algorithms=["HS256"])
    assert scheme == "Bearer"
    assert claims["tenant_id"] == tenant.tenant_id
    assert claims["exp"] - claims["iat"] == 300
    assert claims["jti"]


async def test_each_try_carries_a_new_jti_and_the_same_event_id(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory, clock: FakeClock,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    fake.statuses = [500]
    tenant = await tenants.create()
    app_id = (await sent_message(runtime, tenant, "prov-0")).app_id
    await _profile_on_app(runtime, tenant, app_id, f"{base_url}/mo")
    await _inbound(runtime, app_id, to="12345")

    await sender.deliver_due()
    clock.advance(10)
    await sender.deliver_due()

    # leeway: the test's clock ran 10 s ahead of the real one PyJWT checks ``iat`` against
    jtis = {jwt.decode(r.headers["authorization"][7:], API_SECRET, algorithms=["HS256"],
                       leeway=60)["jti"] for r in fake.requests}
    assert len(fake.requests) == 2
    assert len(jtis) == 2
    assert len({r.headers["x-tidings-event-id"] for r in fake.requests}) == 1


async def test_a_delivery_receipt_is_patched_with_the_status_table(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory, clock: FakeClock,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    tenant = await tenants.create()
    sent = await sent_message(runtime, tenant, "prov-1")
    await _profile_on_app(runtime, tenant, sent.app_id, f"{base_url}/dlr", events=("delivery",))
    at = clock.now.isoformat().replace("+00:00", "Z")

    await report(runtime, "prov-1", "failed", "UNDELIV", "EC_ABSENT", "Absent subscriber")
    await sender.deliver_due()

    [request] = fake.requests
    assert (request.method, request.path) == ("PATCH", "/dlr")
    assert json.loads(request.body) == {
        "id": sent.message_id, "endpoint": {"id": sent.app_id, "name": "Sim"},
        "organisation": {"id": tenant.tenant_id, "name": await _tenant_name(runtime, tenant)},
        "source_address": OUR_NUMBER.removeprefix("+"),
        "dest_address": PHONE.removeprefix("+"), "payload": "Your code is 1234",
        "submit_date": at, "final_date": at, "status": {"id": 5, "description": "failed"},
        "state": "failed", "error": {"code": "EC_ABSENT", "text": "Absent subscriber"}}


@pytest.mark.parametrize(("state", "word", "status", "dates"), [
    ("delivered", "DELIVRD", {"id": 4, "description": "delivered"},
     {"delivery_date", "final_date"}),
    ("read", "READ", {"id": 4, "description": "delivered"}, {"delivery_date", "final_date"}),
    ("failed", "REJECTD", {"id": 5, "description": "failed"}, {"final_date"}),
])
async def test_receipt_status_ids_and_dates_follow_the_state(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory, receiver: Receiver,
        state: str, word: str, status: dict[str, object], dates: set[str]) -> None:
    fake, base_url = receiver
    tenant = await tenants.create()
    sent = await sent_message(runtime, tenant, "prov-1")
    await _profile_on_app(runtime, tenant, sent.app_id, f"{base_url}/dlr")

    await report(runtime, "prov-1", state, word)
    await sender.deliver_due()

    body = json.loads(fake.requests[-1].body)
    assert (body["status"], body["state"]) == (status, state)
    assert {key for key in ("delivery_date", "final_date") if key in body} == dates


async def test_a_profile_without_a_secret_sends_no_authorization(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    tenant = await tenants.create()
    sent = await sent_message(runtime, tenant, "prov-1")
    await _profile_on_app(runtime, tenant, sent.app_id, f"{base_url}/dlr", api_secret=None)

    await report(runtime, "prov-1", "delivered", "DELIVRD")
    await sender.deliver_due()

    [request] = fake.requests
    assert "authorization" not in request.headers


async def test_an_inbound_sms_to_a_full_number_is_forwarded_when_p2p_is_on(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    tenant = await tenants.create()
    app_id = (await sent_message(runtime, tenant, "prov-0")).app_id
    await _profile_on_app(runtime, tenant, app_id, f"{base_url}/mo", p2p=True)

    inbound = await _inbound(runtime, app_id, to="+14155550199", text="See you at 8")
    await sender.deliver_due()

    assert fake.requests == []
    async with runtime.sessions() as session:
        [event] = (await session.execute(select(MessageEvent).where(
            MessageEvent.message_id == inbound.id, MessageEvent.kind == "forwarded"))).scalars()
        forward = await session.get(Message, event.detail["message_id"])
    assert forward is not None
    assert (forward.direction, forward.state, forward.to_number, forward.from_number,
            forward.text, forward.channel_account_id) == (
        "outbound", "queued", "+14155550199", PHONE, "See you at 8", app_id)


@pytest.mark.parametrize(("p2p", "to"), [
    (True, "12345678"),  # a short code is the application's even with P2P on
    (False, "+14155550199"),  # P2P off: a full number goes to the callback too
], ids=["short code with p2p", "full number without p2p"])
async def test_other_inbound_sms_go_to_the_callback(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory, receiver: Receiver,
        p2p: bool, to: str) -> None:
    fake, base_url = receiver
    tenant = await tenants.create()
    app_id = (await sent_message(runtime, tenant, "prov-0")).app_id
    await _profile_on_app(runtime, tenant, app_id, f"{base_url}/mo", p2p=p2p)

    await _inbound(runtime, app_id, to=to)
    await sender.deliver_due()

    assert [json.loads(r.body)["dest_address"] for r in fake.requests] == [to.removeprefix("+")]
    async with runtime.sessions() as session:
        outbound = (await session.execute(select(Message).where(
            Message.direction == "outbound"))).scalars().all()
    assert len(outbound) == 1  # only the message sent_message made


async def test_deleting_the_profile_drops_its_undelivered_callbacks(
        runtime: Runtime, tenants: TenantFactory, receiver: Receiver) -> None:
    _, base_url = receiver
    tenant = await tenants.create()
    sent = await sent_message(runtime, tenant, "prov-1")
    profile_id = await _profile_on_app(runtime, tenant, sent.app_id, f"{base_url}/dlr")
    await report(runtime, "prov-1", "delivered", "DELIVRD")
    assert len(await stored_deliveries(runtime)) == 1

    async with runtime.sessions() as session:
        await delete_profile(session, tenant.tenant_id, profile_id)
        await session.commit()
        app = await session.get(ChannelAccount, sent.app_id)

    assert await stored_deliveries(runtime) == []
    assert app is not None
    assert app.service_profile_id is None


async def test_an_inbound_webhook_through_the_real_route_reaches_the_profile_and_the_endpoint(
        client: httpx.AsyncClient, runtime: Runtime, sender: CallbackSender,
        tenants: TenantFactory, receiver: Receiver) -> None:
    fake, base_url = receiver
    tenant = await tenants.create()
    made = await client.post("/sms/v1/apps/", headers=tenant.headers, json={
        "name": "Infobip", "provider": "INFOBIP", "sender_id": "InfoSMS",
        "provider_credentials": {"api_key": INFOBIP_KEY},
        "provider_config": {"base_url": "https://e1zz23.api.infobip.com"}})
    app = made.json()
    await _profile_on_app(runtime, tenant, app["id"], f"{base_url}/mo", events=("inbound",))
    await client.post("/tenants/webhooks/", headers=tenant.headers, json={
        "url": f"{base_url}/hooks", "events": ["message.inbound"]})
    path = app["inbound_webhook_url"].split("://", 1)[1].partition("/")[2]

    answer = await client.post(f"/{path}", json=inbound_body(
        message_id="ib-mo-1", from_="14155550100", to="1234", text="JOIN now"))
    await sender.deliver_due()

    assert answer.status_code == 200
    by_path = {request.path: json.loads(request.body) for request in fake.requests}
    assert set(by_path) == {"/mo", "/hooks"}
    assert (by_path["/mo"]["payload"], by_path["/mo"]["dest_address"]) == ("JOIN now", "1234")
    assert by_path["/hooks"]["data"]["text"] == "JOIN now"
