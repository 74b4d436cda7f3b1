"""Each provider added for issue 6 through the whole pipeline: an app made as the API makes it
(credentials validated and encrypted), a queued message, the real dispatcher, and the provider's
wire-accurate fake on loopback (``TIDINGS_PROVIDER_URL_<SLUG>``) answering; the message ends
``sent`` with the provider's own id, and the fake took exactly one request for it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import TenantFactory
from tests.fakes.cequens import FakeCequens
from tests.fakes.fourjawaly import FakeFourJawaly
from tests.fakes.infobip import FakeInfobip
from tests.fakes.mora import FakeMora
from tests.fakes.msegat import FakeMsegat
from tests.fakes.server import serve_in_thread
from tests.fakes.taqnyat import FakeTaqnyat
from tests.fakes.unifonic import FakeUnifonic
from tests.fakes.vonage import FakeVonage
from tests.pipeline.test_dispatcher import load_one, one_round, queue
from tidings.db.models import ChannelAccount
from tidings.pipeline.dispatcher import Dispatcher
from tidings.runtime import Runtime
from tidings.services.sms_apps import SmsAppFields, create_sms_app

INFOBIP_KEY = "957df92101cfd4e4e74ce44cf5ab68b9-6e2ec23a-46bc-4597-b341-35c0ae0b3b95"
VONAGE_KEY, VONAGE_SECRET = "a1b2c3d4", "Xy7kQ2mN9pL4sT1v"
UNIFONIC_SID = "axuN0U7QlmqV1234goK0mZFgdzG816p"
TAQNYAT_TOKEN = "c3f1a9e07b2d4c58a6e1f0b9d2c7a0adc2b"
MSEGAT_USER, MSEGAT_KEY = "acme_ops", "3F9A2C7D1E8B4A6F0C5D9E2B7A1F4C8D"
JAWALY_KEY, JAWALY_SECRET = "Jw4kQ9zX2mB7nR5t", "s3cr3T-Vb8Nc4Md8Rk1Tz6Hs3Jw5Pg0Ya"
CEQUENS_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiYWNtZSJ9.c2lnbmF0dXJlLWFjbWU"
MORA_KEY, MORA_USER = "a9c3e1f7b2d84c6e90f1a2b3c4d5e6f708192a3b", "acme_ksa"


@dataclass(frozen=True)
class Provider:
    name: str
    slug: str
    fake: Callable[[], Any]
    credentials: dict[str, str]
    config: dict[str, Any]
    sender_id: str


PROVIDERS = [
    Provider("INFOBIP", "infobip", lambda: FakeInfobip([INFOBIP_KEY]),
             {"api_key": INFOBIP_KEY}, {"base_url": "https://e1zz23.api.infobip.com"},
             "InfoSMS"),
    Provider("VONAGE", "vonage", lambda: FakeVonage({VONAGE_KEY: VONAGE_SECRET}),
             {"api_key": VONAGE_KEY, "api_secret": VONAGE_SECRET}, {}, "Acme"),
    Provider("UNIFONIC", "unifonic", lambda: FakeUnifonic([UNIFONIC_SID]),
             {"app_sid": UNIFONIC_SID}, {}, "Acme"),
    Provider("TAQNYAT", "taqnyat", lambda: FakeTaqnyat([TAQNYAT_TOKEN]),
             {"bearer_token": TAQNYAT_TOKEN}, {}, "ACME"),
    Provider("MSEGAT", "msegat", lambda: FakeMsegat(MSEGAT_USER, MSEGAT_KEY),
             {"user_name": MSEGAT_USER, "api_key": MSEGAT_KEY}, {}, "ACME"),
    Provider("FOURJAWALY", "fourjawaly", lambda: FakeFourJawaly([(JAWALY_KEY, JAWALY_SECRET)]),
             {"app_key": JAWALY_KEY, "app_secret": JAWALY_SECRET}, {}, "ACME"),
    Provider("CEQUENS", "cequens", lambda: FakeCequens([CEQUENS_TOKEN]),
             {"api_token": CEQUENS_TOKEN}, {}, "ACME"),
    Provider("MORA", "mora", lambda: FakeMora([(MORA_KEY, MORA_USER)]),
             {"api_key": MORA_KEY, "username": MORA_USER}, {}, "ACME"),
]


async def make_app(runtime: Runtime, tenant_id: str, provider: Provider) -> ChannelAccount:
    async with runtime.sessions() as session:
        app = await create_sms_app(
            session, runtime.secret_box, tenant_id=tenant_id,
            fields=SmsAppFields(name=provider.name, provider=provider.name,
                                sender_id=provider.sender_id,
                                provider_credentials=provider.credentials,
                                provider_config=provider.config, rate_limit="1000/s"),
            default_rate_limit=runtime.settings.sms_rate_limit, now=runtime.clock())
        await session.commit()
    return app


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda provider: provider.name)
async def test_a_queued_message_is_sent_through_the_providers_fake(
        runtime: Runtime, tenants: TenantFactory, provider: Provider) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id, provider)
    [message_id] = await queue(runtime, app)
    fake = provider.fake()

    with serve_in_thread(fake.app) as base_url:
        runtime.settings.provider_urls[provider.slug] = base_url
        try:
            assert await one_round(Dispatcher(runtime)) == 1
        finally:
            del runtime.settings.provider_urls[provider.slug]

    message = await load_one(runtime, message_id)
    assert (message.state, message.attempts, message.error_code) == ("sent", 1, None)
    assert message.provider_message_id
    assert len(fake.requests) == 1
    assert len(fake.sends) == 1
