"""Operations: ``/health`` (with the database), ``/metrics`` (Prometheus), the OpenAPI document
and the Swagger UI."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from tests.conftest import TenantFactory
from tidings.app import create_app
from tidings.config import Settings
from tidings.runtime import Runtime

HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


async def test_health_answers_ok_when_the_database_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


@pytest.fixture
async def unreachable_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app on a runtime whose database does not answer (a PostgreSQL URL on a closed
    port)."""
    url = f"postgresql+asyncpg://tidings@127.0.0.1:{_closed_port()}/tidings"
    unreachable = settings.model_copy(update={"database_url": url})
    runtime = Runtime.build(unreachable)
    app = create_app(unreachable, run_workers=False, runtime=runtime)
    try:
        async with (app.router.lifespan_context(app),
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                      base_url="http://testserver") as http):
            yield http
    finally:
        await runtime.close()


async def test_health_answers_503_when_the_database_does_not(
        unreachable_client: httpx.AsyncClient) -> None:
    response = await unreachable_client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["database"] != "ok"


async def test_metrics_count_requests_by_route_template(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    await client.get("/tenants/roles/", headers=tenant.headers)
    await client.get("/contacts/01NOSUCHCONTACT/", headers=tenant.headers)
    await client.get("/no-such-page/")

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert re.search(r'tidings_http_requests_total\{method="GET",route="/tenants/roles/",'
                     r'status="200"\} 1\.0', text)
    assert 'route="/contacts/{contact_id}/",status="404"' in text
    assert "01NOSUCHCONTACT" not in text
    assert 'route="unmatched",status="404"' in text
    assert "tidings_http_request_duration_seconds_bucket" in text


async def test_metrics_label_nested_routes_with_their_full_template(
        client: httpx.AsyncClient) -> None:
    await client.delete("/tenants/api-keys/01NOSUCHKEY/")
    text = (await client.get("/metrics")).text
    assert 'route="/tenants/api-keys/{key_id}/"' in text


async def test_openapi_lists_the_native_paths_each_with_a_summary(
        client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/token/", "/refresh/", "/tenants/roles/", "/tenants/users/",
                 "/tenants/members/invite/", "/tenants/branding/", "/tenants/host-wallet/",
                 "/tenants/waba-info/", "/tenants/tenant-tags/", "/tenants/onboarding-options/",
                 "/health", "/metrics"):
        assert path in paths
    operations = [(path, method, operation) for path, item in paths.items()
                  for method, operation in item.items() if method in HTTP_METHODS]
    assert operations
    assert [(path, method) for path, method, operation in operations
            if not operation.get("summary")] == []


def test_every_route_has_a_summary_written_for_it(app: FastAPI) -> None:
    """FastAPI invents a summary from the function name; every route must have its own."""
    routes = [(context.path, context.original_route) for context in iter_route_contexts(app.routes)
              if isinstance(context.original_route, APIRoute)]
    assert len(routes) > 10
    assert [path for path, route in routes if not route.summary] == []


async def test_swagger_ui_answers_html(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger" in response.text.lower()


async def test_openapi_documents_validation_errors_as_400_not_422(
        client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    responses = paths["/tenants/members/invite/"]["post"]["responses"]
    assert "422" not in responses
    assert responses["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"}
    assert all("422" not in operation["responses"]
               for item in paths.values() for operation in item.values())
