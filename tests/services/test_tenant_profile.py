"""``update_branding`` and ``update_settings`` called directly: what is accepted and how it is
stored, and that the service checks lengths itself (not only the API schema)."""

from __future__ import annotations

import pytest

from tests.conftest import TenantFactory
from tidings.errors import InvalidInput
from tidings.runtime import Runtime
from tidings.services.tenant_profile import update_branding, update_settings

ACCEPTED = [
    ("custom_domain", "Example.COM", "example.com"),
    ("custom_domain", "xn--bcher-kva.example.", "xn--bcher-kva.example"),
    ("custom_domain", "a-b.c-d.example.co.uk", "a-b.c-d.example.co.uk"),
    ("logo_url", "HTTPS://cdn.example.com/l.svg#x", "HTTPS://cdn.example.com/l.svg#x"),
    ("logo_url", "http://127.0.0.1:8080/logo.png", "http://127.0.0.1:8080/logo.png"),
    ("email_sender", "Hello@Example.com", "hello@example.com"),
    ("email_sender", "  Acme   <ops@example.com>", "Acme <ops@example.com>"),
    ("email_sender", '"Acme, Inc." <ops@example.com>', '"Acme, Inc." <ops@example.com>'),
    ("email_sender", "<ops@example.com>", "ops@example.com"),
]


@pytest.mark.parametrize(("field", "given", "stored"), ACCEPTED,
                         ids=[f"{f}:{g}" for f, g, _ in ACCEPTED])
async def test_branding_values_are_accepted_and_normalised(
        runtime: Runtime, tenants: TenantFactory, field: str, given: str, stored: str) -> None:
    tenant = await tenants.create()
    async with runtime.sessions() as session:
        branding = await update_branding(session, tenant.tenant_id, {field: given})
    assert getattr(branding, field) == stored


@pytest.mark.parametrize(("field", "value"), [
    ("custom_domain", ("a" * 60 + ".") * 4 + "abcdefghijk.com"),  # over 253 characters
    ("logo_url", "https://example.com/" + "x" * 1981),
    ("email_sender", "N" * 201 + " <a@example.com>"),
])
async def test_branding_lengths_are_checked_by_the_service(
        runtime: Runtime, tenants: TenantFactory, field: str, value: str) -> None:
    tenant = await tenants.create()
    async with runtime.sessions() as session:
        with pytest.raises(InvalidInput) as raised:
            await update_branding(session, tenant.tenant_id, {field: value})
    assert [f.field for f in raised.value.fields] == [field]


async def test_every_bad_field_is_reported_at_once(
        runtime: Runtime, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    async with runtime.sessions() as session:
        with pytest.raises(InvalidInput) as raised:
            await update_branding(session, tenant.tenant_id, {
                "custom_domain": "bad domain", "logo_url": "nope", "theme": "dark"})
    assert [f.field for f in raised.value.fields] == ["custom_domain", "logo_url", "theme"]


async def test_settings_reject_a_region_phonenumbers_does_not_know(
        runtime: Runtime, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    async with runtime.sessions() as session:
        with pytest.raises(InvalidInput) as raised:
            await update_settings(session, tenant.tenant_id, {"default_region": "ZZ"})
    assert raised.value.fields[0].message.startswith("unknown region 'ZZ'")
