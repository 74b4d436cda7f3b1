"""Bodies over ``TIDINGS_MAX_REQUEST_BYTES`` (here 1,000 bytes) are refused and write nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import TenantFactory
from tidings.config import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_request_bytes": 1000})


async def test_a_declared_length_over_the_limit_answers_413_before_reading(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    csv = b"phone,name\n" + b"+14155550100,Someone\n" * 100
    response = await client.post("/contacts/bulk-import/", headers=tenant.headers,
                                 files={"file": ("c.csv", csv, "text/csv")})
    listed = await client.get("/contacts/", headers=tenant.headers)
    assert response.status_code == 413
    assert response.json() == {"detail": "request body is larger than 1000 bytes",
                               "code": "payload_too_large"}
    assert listed.json()["count"] == 0


async def test_a_chunked_body_over_the_limit_answers_413_and_writes_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"phone": "+14155550100", "name": "'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}'

    response = await client.post("/contacts/", content=chunks(),
                                 headers={**tenant.headers, "Content-Type": "application/json"})
    listed = await client.get("/contacts/", headers=tenant.headers)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert listed.json()["count"] == 0


async def test_a_body_within_the_limit_is_served(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.post("/contacts/", headers=tenant.headers,
                                 json={"phone": "+14155550100", "name": "Someone"})
    assert response.status_code == 201


async def test_the_provider_slug_surface_gets_its_own_error_shape(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    csv = b"mobile,message\n" + b"966501234567,Your order is ready\n" * 100
    response = await client.post("/api/v1/sms-providers/infobip-sms/bulk-send",
                                 headers=tenant.headers,
                                 files={"file": ("m.csv", csv, "text/csv")})
    assert (response.status_code, response.json()) == (413, {
        "error": "request body is larger than 1000 bytes", "code": "payload_too_large"})
