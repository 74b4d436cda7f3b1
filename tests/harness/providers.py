"""Table runners for provider tests: a send case is a message in, exact requests out and an
outcome back; a webhook case is a request in, events out.

``run_send_case`` serves the case's canned answers through ``httpx.MockTransport`` (in order,
one per request) and fails on an unexpected request, an unused canned answer, a request that
differs from the expected one, and any credential found in the outcome or in the logs.
``run_webhook_case`` verifies then parses, as the route does, and ``assert_forgeries_rejected``
checks that the same request stripped of, or with forged, signature headers and query tokens is
refused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from tidings.providers.base import (
    AccountContext,
    OutboundSms,
    SendOutcome,
    SmsProvider,
    WebhookEvent,
    WebhookRequest,
    WebhookVerificationError,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
"""The clock every send case runs at (for HTTP-date Retry-After answers)."""

_STANDARD_HEADERS = frozenset({"content-type", "content-length", "host", "user-agent", "accept"})


@dataclass(frozen=True)
class Canned:
    """One answer the fake transport gives, in order: a status with a body (a ``dict`` or
    ``list`` is sent as JSON), or ``error``, a transport error raised instead of answering."""

    status: int = 200
    body: str | dict[str, Any] | list[Any] = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    error: type[httpx.TransportError] | None = None


@dataclass(frozen=True)
class Expected:
    """One request the provider must make. ``query`` and ``form``/``json`` compare exactly;
    ``headers`` (lower-case names) must all be present with these values, others may be too.
    ``form`` values are lists when a field repeats."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    form: Mapping[str, str | list[str]] | None = None
    json: Any = None


@dataclass(frozen=True)
class SendCase:
    label: str
    message: OutboundSms
    account: AccountContext
    answers: Sequence[Canned]
    requests: Sequence[Expected]
    outcome: SendOutcome


@dataclass(frozen=True)
class WebhookCase:
    """``events`` is what ``parse_webhook`` returns, or an exception type that verification or
    parsing raises."""

    label: str
    request: WebhookRequest
    account: AccountContext
    events: Sequence[WebhookEvent] | type[Exception]


def _respond(canned: Canned, request: httpx.Request) -> httpx.Response:
    if canned.error is not None:
        raise canned.error("connection reset by peer", request=request)
    if isinstance(canned.body, dict | list):
        return httpx.Response(canned.status, json=canned.body, headers=dict(canned.headers))
    return httpx.Response(canned.status, text=canned.body, headers=dict(canned.headers))


def _check_request(expected: Expected, actual: httpx.Request, label: str) -> None:
    where = f"{label}: {actual.method} {actual.url}"
    assert actual.method == expected.method, where
    assert actual.url.path == expected.path, where
    assert dict(actual.url.params) == dict(expected.query), where
    for name, value in expected.headers.items():
        assert actual.headers.get(name) == value, f"{where}: header {name}"
    body = actual.content
    if expected.form is not None:
        parsed = {key: values if len(values) > 1 else values[0]
                  for key, values in parse_qs(body.decode(), keep_blank_values=True).items()}
        assert parsed == dict(expected.form), where
    if expected.json is not None:
        assert json.loads(body) == expected.json, where


async def run_send_case(
    provider: SmsProvider, case: SendCase, caplog: pytest.LogCaptureFixture
) -> None:
    """Send ``case.message`` through ``provider`` against the canned answers and check it all."""
    answers = list(case.answers)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        assert answers, f"{case.label}: unexpected request {request.method} {request.url}"
        return _respond(answers.pop(0), request)

    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        outcome = await provider.send(case.message, case.account, http, now=NOW)
    assert not answers, f"{case.label}: {len(answers)} canned answers unused"
    assert len(seen) == len(case.requests), f"{case.label}: {len(seen)} requests made"
    for expected, actual in zip(case.requests, seen, strict=True):
        _check_request(expected, actual, case.label)
    assert outcome == case.outcome, case.label
    for secret in case.account.secrets():
        assert secret not in repr(outcome), f"{case.label}: a credential leaked into the outcome"
        assert secret not in caplog.text, f"{case.label}: a credential leaked into the logs"


def run_webhook_case(provider: SmsProvider, case: WebhookCase) -> None:
    """Verify, then parse, as the webhook route does; compare with ``case.events``."""
    if isinstance(case.events, type):
        with pytest.raises(case.events):
            _verify_then_parse(provider, case)
        return
    provider.verify_webhook(case.request, case.account)
    assert provider.parse_webhook(case.request, case.account) == list(case.events), case.label


def _verify_then_parse(provider: SmsProvider, case: WebhookCase) -> list[WebhookEvent]:
    provider.verify_webhook(case.request, case.account)
    return provider.parse_webhook(case.request, case.account)


def assert_forgeries_rejected(provider: SmsProvider, case: WebhookCase) -> None:
    """The case's request with its query and non-standard headers removed, and with each of
    them forged, must fail verification."""
    request = case.request
    stripped = replace(
        request,
        url=request.url.split("?", 1)[0],
        query={},
        headers={k: v for k, v in request.headers.items() if k in _STANDARD_HEADERS},
    )
    forged = replace(
        request,
        url=request.url.split("?", 1)[0] + ("?" + "&".join(f"{k}=forged" for k in request.query)
                                          if request.query else ""),
        query={key: "forged" for key in request.query},
        headers={
            k: (v if k in _STANDARD_HEADERS else "forged") for k, v in request.headers.items()
        },
    )
    for variant in (stripped, forged):
        with pytest.raises(WebhookVerificationError):
            provider.verify_webhook(variant, case.account)
