"""Callbacks to tenants: HMAC and JWT signing, the retry schedule, giving up, A2P or P2P."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from tidings.domain.callbacks import (
    bearer_header,
    callback_jwt,
    gives_up,
    hmac_headers,
    is_application_bound,
    retry_delay_seconds,
    verify_hmac,
)

SECRET = "whsec_test_0123456789abcdef0123456789abcdef"
OTHER_SECRET = "whsec_other_fedcba9876543210fedcba9876543210"
NOW = 1_700_000_000
BODY = b'{"event":"message.status","message_id":"01J0000000000000000000MSG1","status":"delivered"}'

# --- HMAC ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("secret", "body", "now_seconds", "signed_bytes"), [
    pytest.param(SECRET, BODY, NOW, b"1700000000." + BODY, id="status-event"),
    pytest.param(SECRET, b"", NOW, b"1700000000.", id="empty-body"),
    pytest.param("clé-ünïcode-secret-0123456789abcdef", b"{}", 42, b"42.{}",
                 id="non-ascii-secret-is-utf8"),
])
def test_hmac_headers_sign_timestamp_dot_body_with_hmac_sha256(
    secret: str, body: bytes, now_seconds: int, signed_bytes: bytes
) -> None:
    digest = hmac.new(secret.encode("utf-8"), signed_bytes, hashlib.sha256).hexdigest()
    assert hmac_headers(secret, body, now_seconds) == {
        "X-Tidings-Timestamp": str(now_seconds),
        "X-Tidings-Signature": f"sha256={digest}",
    }


def test_verify_hmac_accepts_the_headers_hmac_headers_made() -> None:
    headers = hmac_headers(SECRET, BODY, NOW)
    assert verify_hmac(
        SECRET, BODY, headers["X-Tidings-Timestamp"], headers["X-Tidings-Signature"], NOW
    )


@pytest.mark.parametrize(("secret", "body", "timestamp", "now_seconds"), [
    pytest.param(SECRET, BODY + b" ", str(NOW), NOW, id="changed-body"),
    pytest.param(SECRET, BODY, str(NOW + 1), NOW, id="changed-timestamp"),
    pytest.param(OTHER_SECRET, BODY, str(NOW), NOW, id="wrong-secret"),
    pytest.param(SECRET, BODY, str(NOW), NOW + 301, id="stale-timestamp"),
    pytest.param(SECRET, BODY, str(NOW), NOW - 301, id="timestamp-from-the-future"),
    pytest.param(SECRET, BODY, "1700000000.0", NOW, id="non-integer-timestamp"),
    pytest.param(SECRET, BODY, "abc", NOW, id="word-timestamp"),
    pytest.param(SECRET, BODY, "", NOW, id="empty-timestamp"),
])
def test_verify_hmac_rejects_anything_but_the_signed_request(
    secret: str, body: bytes, timestamp: str, now_seconds: int
) -> None:
    signature = hmac_headers(SECRET, BODY, NOW)["X-Tidings-Signature"]
    assert not verify_hmac(secret, body, timestamp, signature, now_seconds)


@pytest.mark.parametrize("signature", [
    pytest.param("", id="empty"),
    pytest.param("sha256=", id="prefix-only"),
    pytest.param("sha256=ünïcode", id="non-ascii"),
])
def test_verify_hmac_answers_false_to_a_malformed_signature_without_raising(
    signature: str,
) -> None:
    assert not verify_hmac(SECRET, BODY, str(NOW), signature, NOW)


@pytest.mark.parametrize(("age", "accepted"), [
    pytest.param(300, True, id="at-tolerance"),
    pytest.param(301, False, id="past-tolerance"),
    pytest.param(-300, True, id="at-tolerance-ahead"),
    pytest.param(-301, False, id="past-tolerance-ahead"),
])
def test_verify_hmac_tolerates_clock_skew_up_to_tolerance_seconds(age: int, accepted: bool) -> None:
    headers = hmac_headers(SECRET, BODY, NOW)
    verified = verify_hmac(
        SECRET, BODY, headers["X-Tidings-Timestamp"], headers["X-Tidings-Signature"], NOW + age
    )
    assert verified is accepted


# --- JWT ----------------------------------------------------------------------------------------
# PyJWT checks exp and iat against the wall clock, so tokens meant to decode are made "now".


def test_callback_jwt_decodes_to_exactly_its_claims() -> None:
    now = int(time.time())
    token = callback_jwt(SECRET, tenant_id="tn_1", jti="cb_01J0000000000001", now_seconds=now)
    assert jwt.decode(token, SECRET, algorithms=["HS256"]) == {
        "iat": now,
        "exp": now + 300,
        "jti": "cb_01J0000000000001",
        "tenant_id": "tn_1",
    }


def test_callback_jwt_lifetime_sets_exp() -> None:
    now = int(time.time())
    token = callback_jwt(SECRET, tenant_id="tn_1", jti="j1", now_seconds=now, lifetime_seconds=60)
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["exp"] == now + 60


def test_callback_jwt_header_names_hs256() -> None:
    token = callback_jwt(SECRET, tenant_id="tn_1", jti="j1", now_seconds=NOW)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}


def test_callback_jwt_does_not_decode_under_another_secret() -> None:
    token = callback_jwt(SECRET, tenant_id="tn_1", jti="j1", now_seconds=int(time.time()))
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, OTHER_SECRET, algorithms=["HS256"])


def test_callback_jwt_is_refused_once_expired() -> None:
    token = callback_jwt(SECRET, tenant_id="tn_1", jti="j1", now_seconds=int(time.time()) - 301)
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, SECRET, algorithms=["HS256"])


def test_bearer_header_carries_the_token() -> None:
    assert bearer_header("eyJ.abc.def") == {"Authorization": "Bearer eyJ.abc.def"}


# --- retry schedule -----------------------------------------------------------------------------


@pytest.mark.parametrize(("attempt", "delay"), [
    pytest.param(1, 10.0, id="first-failure-waits-base"),
    pytest.param(2, 20.0, id="second"),
    pytest.param(3, 40.0, id="third"),
    pytest.param(4, 80.0, id="fourth"),
    pytest.param(9, 2560.0, id="last-below-cap"),
    pytest.param(10, 3600.0, id="capped-at-an-hour"),
    pytest.param(11, 3600.0, id="stays-capped"),
    pytest.param(1025, 3600.0, id="past-float-exponent-range"),
    pytest.param(10_000, 3600.0, id="huge-attempt-no-overflow"),
])
def test_retry_delay_doubles_from_base_up_to_the_cap(attempt: int, delay: float) -> None:
    assert retry_delay_seconds(attempt, base_seconds=10.0) == delay


@pytest.mark.parametrize(("attempt", "base_seconds", "cap_seconds", "delay"), [
    pytest.param(3, 10.0, 30.0, 30.0, id="cap-between-steps"),
    pytest.param(1, 10.0, 5.0, 5.0, id="cap-below-base"),
    pytest.param(10_000, 1e-300, 1e300, 1e300, id="tiny-base-huge-cap"),
    pytest.param(5, 0.0, 3600.0, 0.0, id="zero-base"),
    pytest.param(5, 10.0, 0.0, 0.0, id="zero-cap"),
])
def test_retry_delay_with_other_bases_and_caps(
    attempt: int, base_seconds: float, cap_seconds: float, delay: float
) -> None:
    assert retry_delay_seconds(attempt, base_seconds=base_seconds, cap_seconds=cap_seconds) == delay


@pytest.mark.parametrize(("attempt", "base_seconds", "cap_seconds", "message"), [
    pytest.param(0, 10.0, 3600.0, "attempt", id="attempt-zero"),
    pytest.param(-1, 10.0, 3600.0, "attempt", id="negative-attempt"),
    pytest.param(1, -10.0, 3600.0, "base_seconds", id="negative-base"),
    pytest.param(1, float("nan"), 3600.0, "base_seconds", id="nan-base"),
    pytest.param(1, 10.0, -1.0, "cap_seconds", id="negative-cap"),
    pytest.param(1, 10.0, float("inf"), "cap_seconds", id="infinite-cap"),
])
def test_retry_delay_refuses_out_of_range_input(
    attempt: int, base_seconds: float, cap_seconds: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        retry_delay_seconds(attempt, base_seconds=base_seconds, cap_seconds=cap_seconds)


# --- giving up ----------------------------------------------------------------------------------

FIRST = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("age", "expected"), [
    pytest.param(timedelta(0), False, id="just-tried"),
    pytest.param(timedelta(hours=24, microseconds=-1), False, id="just-under"),
    pytest.param(timedelta(hours=24), True, id="exactly-at"),
    pytest.param(timedelta(hours=25), True, id="past"),
])
def test_gives_up_once_the_first_attempt_is_max_age_old(age: timedelta, expected: bool) -> None:
    assert gives_up(FIRST, FIRST + age, max_age_seconds=86_400.0) is expected


def test_gives_up_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        gives_up(FIRST.replace(tzinfo=None), FIRST, max_age_seconds=60.0)


# --- A2P or P2P ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("address", "application_bound"), [
    pytest.param("12345678", True, id="eight-digits-a2p"),
    pytest.param("123456789", False, id="nine-digits-p2p"),
    pytest.param("+44 7911 123456", False, id="international-msisdn-p2p"),
    pytest.param("72345", True, id="short-code-a2p"),
    pytest.param("INFO", True, id="alphanumeric-a2p"),
    pytest.param("+1234 5678", True, id="eight-digits-with-plus-and-space-a2p"),
    pytest.param("١٢٣٤٥٦٧٨٩", True, id="non-ascii-digits-not-counted"),
])
def test_is_application_bound_counts_digits(address: str, application_bound: bool) -> None:
    assert is_application_bound(address) is application_bound
