"""Errors the services raise; the API turns each into ``{"detail", "code"}`` with its status.

    TidingsError (500, internal_error)
    ├── InvalidInput (400, invalid)          bad values; ``fields`` lists field-level problems
    ├── Unauthorized (401, unauthorized)     no, bad or expired credentials
    ├── PaymentRequired (402, insufficient_balance)  the tenant's wallet cannot pay for it
    ├── Forbidden (403, forbidden)           the caller's role may not do this
    ├── NotFound (404, not_found)            absent, or another tenant's
    ├── Conflict (409, conflict)             duplicates: email, phone, name
    ├── PayloadTooLarge (413, payload_too_large)  a request body over the configured limit
    ├── RateLimited (429, rate_limited)      carries ``retry_after`` seconds
    ├── NotImplementedByServer (501, not_implemented)  an endpoint only a phone implements
    ├── ProviderFailed (502, provider_failed)  a provider's account query failed
    └── ServiceUnavailable (503, unavailable)  a limit that clears with time (a phone's queue)

Services raise these with a specific ``code`` (e.g. ``duplicate_phone``); clients match on it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One field's problem, e.g. ``FieldError("phone", "not a valid phone number")``."""

    field: str
    message: str


class TidingsError(Exception):
    http_status = 500
    default_code = "internal_error"

    def __init__(self, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code


class InvalidInput(TidingsError):
    http_status = 400
    default_code = "invalid"

    def __init__(self, detail: str, code: str | None = None,
                 fields: list[FieldError] | None = None) -> None:
        super().__init__(detail, code)
        self.fields = fields or []

    @classmethod
    def for_field(cls, field: str, message: str, code: str | None = None) -> InvalidInput:
        return cls(f"{field}: {message}", code, [FieldError(field, message)])


class Unauthorized(TidingsError):
    http_status = 401
    default_code = "unauthorized"


class Forbidden(TidingsError):
    http_status = 403
    default_code = "forbidden"


class PaymentRequired(TidingsError):
    http_status = 402
    default_code = "insufficient_balance"


class NotFound(TidingsError):
    http_status = 404
    default_code = "not_found"


class Conflict(TidingsError):
    http_status = 409
    default_code = "conflict"


class PayloadTooLarge(TidingsError):
    http_status = 413
    default_code = "payload_too_large"


class RateLimited(TidingsError):
    http_status = 429
    default_code = "rate_limited"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class NotImplementedByServer(TidingsError):
    http_status = 501
    default_code = "not_implemented"


class ServiceUnavailable(TidingsError):
    http_status = 503
    default_code = "unavailable"


class ProviderFailed(TidingsError):
    http_status = 502
    default_code = "provider_failed"
