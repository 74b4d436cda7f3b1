"""Shared wire helpers: an HTTP answer or a transport error to a send outcome, and redaction.

Pure mapping, no I/O: a provider makes its own request with the client it is handed, then calls
``outcome_from_response`` (or ``outcome_from_transport_error`` in its ``except``) with its own
parser for a successful body. The HTTP part of the decision is the same for every provider::

    answer                                   outcome
    2xx                                      accepted(response): the provider's parser decides,
                                             and may say Reject/Retry for a 200 with an error body
    408, 429, 5xx                            Retry("http_<status>", body, Retry-After if given)
    any other status (3xx, 4xx, ...)         Reject("http_<status>", body)
    timeout (connect, read, write, pool)     Retry("timeout", exception type and message)
    connect/read/write/proxy/protocol error  Retry("transport_error", exception type and message)
    unsupported URL scheme, local protocol   Reject("unsendable", ...): the request never left and
      error                                  never will, so the next account should have it

Every reason is redacted (``redact``) and then cut to ``REASON_LIMIT`` characters, in that
order, so a secret on the cut can't leave a prefix behind. Transport reasons lose any URL too.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, Final
from urllib.parse import parse_qs, quote, quote_plus

import httpx
import pydantic

from tidings.domain.retry import parse_retry_after
from tidings.providers.base import (
    Accepted,
    AccountContext,
    Reject,
    Retry,
    SendOutcome,
    WebhookPayloadError,
    WebhookRequest,
    WebhookVerificationError,
)

REASON_LIMIT: Final = 500
"""The longest reason kept from a provider's answer or an exception, in characters."""

REDACTED: Final = "[redacted]"
"""What a secret is replaced with."""

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each non-empty secret replaced by ``REDACTED``.

    Each secret is looked for verbatim, percent-encoded (``quote(secret, safe="")``, as in a
    query string or a URL path) and form-encoded (``quote_plus``). Longer forms are replaced
    first, so a secret that contains another leaves no piece behind. Empty secrets are ignored;
    with none, ``text`` comes back unchanged.
    """
    pattern = _secrets_pattern(tuple(secrets))
    return text if pattern is None else pattern.sub(REDACTED, text)


@lru_cache(maxsize=4096)
def _secrets_pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    """The pattern ``redact`` uses for ``secrets``, built once per set of secrets (a send
    redacts several strings with the same account's secrets)."""
    forms = {
        form
        for secret in secrets
        if secret
        for form in (secret, quote(secret, safe=""), quote_plus(secret, safe=""))
    }
    if not forms:
        return None
    return re.compile("|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True)))


def failure_from_response(
    response: httpx.Response, *, now: datetime, secrets: Iterable[str] = ()
) -> Retry | Reject | None:
    """The outcome a non-2xx answer means by its status alone, or ``None`` for a 2xx.

    408, 429 and 5xx are ``Retry`` with ``retry_after`` from the ``Retry-After`` header (seconds
    or HTTP-date, read against ``now``; ``None`` when absent or unreadable). Every other non-2xx
    is ``Reject``. The code is ``http_<status>``; the reason is the body, stripped, redacted and
    cut to ``REASON_LIMIT`` (the reason phrase when the body is empty). For ``balance`` and
    other queries as much as for sends. ``response`` must have been read (the client's
    non-streaming methods read it); ``now`` must be timezone-aware (else ``ValueError``).
    """
    status = response.status_code
    if response.is_success:
        return None
    code = f"http_{status}"
    reason = clean_reason(response.text.strip() or response.reason_phrase, secrets)
    if status in (408, 429) or 500 <= status <= 599:
        retry_after = parse_retry_after(response.headers.get("retry-after"), now)
        return Retry(code, reason, retry_after)
    return Reject(code, reason)


def outcome_from_response(
    response: httpx.Response,
    *,
    now: datetime,
    accepted: Callable[[httpx.Response], SendOutcome],
    secrets: Iterable[str] = (),
) -> SendOutcome:
    """The outcome of a send whose request got an HTTP answer.

    A 2xx answer goes to ``accepted``, the provider's parser of its success body, whose outcome
    is returned as it is, except that the reason of a ``Retry`` or ``Reject`` it returns is
    redacted and cut like any other. Any other status is mapped by ``failure_from_response``.
    ``accepted`` should not raise: a 2xx body it cannot read is its own decision to make
    (usually ``Reject``, since retrying may duplicate a message the provider took). ``secrets``
    is normally ``account.secrets()``.
    """
    secrets = tuple(secrets)
    failure = failure_from_response(response, now=now, secrets=secrets)
    if failure is not None:
        return failure
    outcome = accepted(response)
    if isinstance(outcome, Accepted):
        return outcome
    return replace(outcome, reason=clean_reason(outcome.reason, secrets))


def outcome_from_transport_error(
    exc: httpx.TransportError, secrets: Iterable[str] = ()
) -> Retry | Reject:
    """The outcome of a send whose request got no HTTP answer.

    Timeouts (``httpx.TimeoutException``: connect, read, write, pool) are
    ``Retry("timeout")``. An unsupported URL scheme (a misconfigured base URL) and a local
    protocol error (a request httpx refuses to write) are ``Reject("unsendable")``: the request
    never left and would not leave next time. Anything else (connect, read, write, proxy and
    remote protocol errors) is ``Retry("transport_error")``. The reason is the exception's type
    name and message with every URL replaced by ``[url]`` (URLs can carry credentials in their
    user info or query) and ``secrets`` redacted. After a read timeout or a dropped connection
    the provider may already have the message; see ``SmsProvider.send``.
    """
    message = _URL.sub("[url]", str(exc)).strip()
    reason = clean_reason(f"{type(exc).__name__}: {message}" if message else type(exc).__name__,
                          secrets)
    if isinstance(exc, httpx.TimeoutException):
        return Retry("timeout", reason)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        return Reject("unsendable", reason)
    return Retry("transport_error", reason)


def query_failure(response: httpx.Response, secrets: Iterable[str]) -> Retry | Reject | None:
    """A query's (balance, numbers) failure by HTTP status, as ``failure_from_response``.
    Queries are given no clock, so an HTTP-date Retry-After is read against the answer's own
    ``Date`` header (the epoch without one, which only delay-seconds survive)."""
    now = _EPOCH
    date = response.headers.get("date")
    if date:
        try:
            parsed = parsedate_to_datetime(date)
            now = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
        except (TypeError, ValueError, IndexError):
            pass
    failure = failure_from_response(response, now=now, secrets=secrets)
    if isinstance(failure, Retry) and now is _EPOCH and not (
            response.headers.get("retry-after", "").strip().isdigit()):
        return Retry(failure.code, failure.reason, None)
    return failure


def json_or_none(response: httpx.Response) -> Any:
    """The answer's JSON body, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def clean_reason(text: str, secrets: Iterable[str]) -> str:
    """``text`` with ``secrets`` redacted, cut to ``REASON_LIMIT``: what a reason may hold."""
    return redact(text, secrets)[:REASON_LIMIT]


def validation_summary(exc: pydantic.ValidationError) -> str:
    """Which fields of stored credentials or config failed and why, cut to ``REASON_LIMIT``;
    never the offending values (which may be secrets)."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
                     for err in exc.errors(include_input=False, include_url=False)
                     )[:REASON_LIMIT]


TOKEN_PARAMETER: Final = "token"
"""The query parameter that carries an app's webhook token, for providers that cannot sign."""


def verify_url_token(request: WebhookRequest, account: AccountContext) -> None:
    """Check the URL's ``token`` query parameter against the account's webhook token in
    constant time; raises ``WebhookVerificationError`` when it is missing or differs, or when
    the account has none (the scheme of every provider without a signature of its own)."""
    given = request.query.get(TOKEN_PARAMETER)
    if not given:
        raise WebhookVerificationError("the token query parameter is missing")
    if not account.webhook_token:
        raise WebhookVerificationError("the account has no webhook token")
    if not hmac.compare_digest(given.encode("utf-8"), account.webhook_token.encode("utf-8")):
        raise WebhookVerificationError("the token query parameter does not match")


def webhook_reports(request: WebhookRequest) -> list[Mapping[str, Any]]:
    """The report objects of a webhook that signs nothing, however the provider sends them: a
    JSON object or list of objects, a form body, or (no body) the query string without our
    ``token``. ``WebhookPayloadError`` for anything else."""
    if not request.body.strip():
        fields = {name: value for name, value in request.query.items()
                  if name != TOKEN_PARAMETER}
        if not fields:
            raise WebhookPayloadError("the webhook carries no report")
        return [fields]
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookPayloadError("the body is not UTF-8") from exc
    if "json" in request.headers.get("content-type", "") or text.lstrip().startswith(("{", "[")):
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise WebhookPayloadError("the JSON body cannot be parsed") from exc
        reports = body if isinstance(body, list) else [body]
        if not reports or not all(isinstance(report, dict) for report in reports):
            raise WebhookPayloadError("the JSON body is not a report object or a list of them")
        return reports
    return [{name: values[0] for name, values in parse_qs(text, keep_blank_values=True).items()}]
