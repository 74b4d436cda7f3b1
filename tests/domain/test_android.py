"""The Android-compatible surface's pure rules: ids, states, hashing, times, settings, scopes,
webhook events and SSE frames, as the wire spec (shared/research/android-sms-gateway.md) has
them."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tidings.domain.android import (
    ANDROID_STATES,
    SCOPES,
    SETTINGS_SCHEMA,
    SSE_KEEPALIVE,
    WEBHOOK_EVENTS,
    aggregate_state,
    android_state,
    clean_settings,
    format_time,
    has_scope,
    hash_content,
    hash_phone,
    merge_settings,
    neutral_state,
    new_nanoid,
    parse_time,
    public_settings,
    reported_state,
    sse_frame,
)

# --- ids ----------------------------------------------------------------------------------------


def test_a_nanoid_is_21_url_safe_characters() -> None:
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{21}", new_nanoid()) for _ in range(200))


def test_a_nanoid_takes_its_size() -> None:
    assert len(new_nanoid(8)) == 8


def test_nanoids_do_not_repeat() -> None:
    assert len({new_nanoid() for _ in range(1000)}) == 1000


def test_a_nanoid_of_size_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        new_nanoid(0)


# --- states -------------------------------------------------------------------------------------


def test_the_android_states_are_the_seven_words_of_the_api() -> None:
    assert ANDROID_STATES == (
        "Pending", "Processed", "Sent", "Delivered", "Failed", "Cancelling", "Cancelled")


NEUTRAL_TO_ANDROID = [
    ("queued", "Pending"),
    ("sending", "Processed"),
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("read", "Delivered"),
    ("failed", "Failed"),
    ("expired", "Failed"),
    ("cancelled", "Cancelled"),
]


@pytest.mark.parametrize(("neutral", "android"), NEUTRAL_TO_ANDROID)
def test_a_neutral_state_shows_as_its_android_word(neutral: str, android: str) -> None:
    assert android_state(neutral) == android


@pytest.mark.parametrize("neutral", ["received", "Queued", "pending", ""])
def test_a_state_with_no_android_word_is_refused(neutral: str) -> None:
    with pytest.raises(ValueError, match="no Android state"):
        android_state(neutral)


# (phone's report, neutral state stored, Android word stored)
PHONE_REPORTS = [
    ("Pending", "sending", "Processed"),
    ("Processed", "sending", "Processed"),
    ("Sent", "sent", "Sent"),
    ("Delivered", "delivered", "Delivered"),
    ("Failed", "failed", "Failed"),
    ("Cancelled", "cancelled", "Cancelled"),
]


@pytest.mark.parametrize(("reported", "neutral", "stored"), PHONE_REPORTS)
def test_a_phone_report_maps_to_a_neutral_state(reported: str, neutral: str,
                                                stored: str) -> None:
    assert neutral_state(reported) == neutral


@pytest.mark.parametrize(("reported", "neutral", "stored"), PHONE_REPORTS)
def test_a_phone_report_is_stored_with_pending_as_processed(reported: str, neutral: str,
                                                            stored: str) -> None:
    assert reported_state(reported) == stored


@pytest.mark.parametrize(("word", "message"), [
    ("Cancelling", "only the server sets it"),
    ("Queued", "unknown Android message state"),
    ("sent", "unknown Android message state"),
    ("", "unknown Android message state"),
])
@pytest.mark.parametrize("mapping", [neutral_state, reported_state])
def test_a_phone_cannot_report_cancelling_or_an_unknown_word(mapping: Any, word: str,
                                                             message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mapping(word)


AGGREGATES = [
    pytest.param([], "Pending", id="no-recipients"),
    pytest.param(["Pending"], "Pending", id="one-pending"),
    pytest.param(["Delivered", "Pending", "Processed"], "Pending", id="any-pending"),
    pytest.param(["Failed", "Processed", "Sent"], "Processed", id="any-processed"),
    pytest.param(["Cancelled", "Cancelled"], "Cancelled", id="all-cancelled"),
    pytest.param(["Delivered", "Delivered"], "Delivered", id="all-delivered"),
    pytest.param(["Failed", "Failed"], "Failed", id="all-failed"),
    pytest.param(["Sent", "Sent"], "Sent", id="all-sent"),
    pytest.param(["Delivered", "Failed"], "Sent", id="delivered-and-failed-is-sent"),
    pytest.param(["Delivered", "Sent"], "Sent", id="delivered-and-sent-is-sent"),
    pytest.param(["Cancelled", "Failed"], "Sent", id="cancelled-and-failed-is-sent"),
]


@pytest.mark.parametrize(("recipients", "aggregate"), AGGREGATES)
def test_a_message_state_aggregates_its_recipients(recipients: list[str],
                                                   aggregate: str) -> None:
    assert aggregate_state(recipients) == aggregate


# --- privacy hashing ----------------------------------------------------------------------------


def test_content_hashes_to_the_sha256_hex_of_its_utf8_bytes() -> None:
    assert hash_content("") == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert hash_content("привет") == hashlib.sha256("привет".encode()).hexdigest()


def test_a_phone_number_hashes_to_16_hex_characters_of_its_sha256() -> None:
    digest = hashlib.sha256(b"+79990001234").hexdigest()
    assert hash_phone("+79990001234") == digest[:16]
    assert re.fullmatch(r"[0-9a-f]{16}", hash_phone("+79990001234"))


# --- times --------------------------------------------------------------------------------------

FORMATTED = [
    pytest.param(datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
                 "2024-01-02T03:04:05.123456+00:00", id="utc"),
    pytest.param(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
                 "2024-01-02T03:04:05.000000+00:00", id="whole-second-keeps-6-digits"),
    pytest.param(datetime(2024, 1, 2, 8, 34, 5, 7, tzinfo=timezone(timedelta(hours=5, minutes=30))),
                 "2024-01-02T03:04:05.000007+00:00", id="offset-converted-to-utc"),
    pytest.param(datetime(2024, 1, 2, 3, 4, 5, 500000),
                 "2024-01-02T03:04:05.500000+00:00", id="naive-is-utc"),
]


@pytest.mark.parametrize(("value", "text"), FORMATTED)
def test_a_time_is_written_in_utc_with_six_fractional_digits(value: datetime,
                                                             text: str) -> None:
    assert format_time(value) == text


def test_a_written_time_round_trips_through_fromisoformat_as_the_official_client_reads_it() -> None:
    value = datetime(2030, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    # android-sms-gateway 4.3.3, _utils._parse_iso: fromisoformat(value.replace("Z", "+00:00"))
    assert datetime.fromisoformat(format_time(value).replace("Z", "+00:00")) == value


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
         microsecond: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC)


PARSED = [
    pytest.param("2024-01-02T03:04:05Z", _utc(2024, 1, 2, 3, 4, 5), id="zulu"),
    pytest.param("2024-01-02t03:04:05z", _utc(2024, 1, 2, 3, 4, 5), id="lowercase-t-and-z"),
    pytest.param("2024-01-02T03:04:05.123456789Z", _utc(2024, 1, 2, 3, 4, 5, 123456),
                 id="go-nine-digits-truncated"),
    pytest.param("2024-01-02T03:04:05.5+00:00", _utc(2024, 1, 2, 3, 4, 5, 500000),
                 id="one-digit"),
    pytest.param("2024-01-02T03:04:05.000000+00:00", _utc(2024, 1, 2, 3, 4, 5),
                 id="our-own-format"),
    pytest.param("2024-01-02T08:34:05+05:30", _utc(2024, 1, 2, 3, 4, 5), id="offset"),
    pytest.param("2024-01-01T22:04:05-05:00", _utc(2024, 1, 2, 3, 4, 5), id="negative-offset"),
    pytest.param("2024-01-02T08:34:05+0530", _utc(2024, 1, 2, 3, 4, 5), id="offset-no-colon"),
    pytest.param("2030-01-01T00:00:00", _utc(2030, 1, 1), id="naive-is-utc"),
    pytest.param("2030-01-01T00:00", _utc(2030, 1, 1), id="no-seconds"),
    pytest.param("2030-01-01 00:00:00", _utc(2030, 1, 1), id="space-separator"),
    pytest.param("2024-01-02T08:34:05 05:30", _utc(2024, 1, 2, 3, 4, 5),
                 id="plus-decoded-as-space-in-a-query"),
]


@pytest.mark.parametrize(("text", "value"), PARSED)
def test_a_client_time_parses_to_aware_utc(text: str, value: datetime) -> None:
    parsed = parse_time(text)
    assert parsed == value
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("text", [
    "", "yesterday", "2024-01-02", "1704164645", "2024-13-01T00:00:00Z",
    "2024-01-02T25:00:00Z", "2024-01-02T03:04:05+25:00", "2024-01-02T03:04:05Zjunk",
])
def test_a_time_that_is_not_rfc3339_is_refused_naming_the_value(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_time(text)


# --- settings -----------------------------------------------------------------------------------


def test_the_settings_schema_has_the_sections_of_the_android_app() -> None:
    assert set(SETTINGS_SCHEMA) == {
        "messages", "webhooks", "encryption", "ping", "logs", "gateway", "receiver"}


def test_unknown_settings_sections_and_keys_are_dropped_silently() -> None:
    body = {
        "messages": {"limit_period": "PerDay", "colour": "blue"},
        "theme": {"dark": True},
        "ping": {"interval_seconds": 60},
    }
    assert clean_settings(body) == {
        "messages": {"limit_period": "PerDay"},
        "ping": {"interval_seconds": 60},
    }


def test_the_keys_the_original_server_drops_are_kept() -> None:
    body = {
        "messages": {"processing_order": "FIFO"},
        "gateway": {"cloud_url": "https://sms.example.com/api/mobile/v1",
                    "private_token": "t0k3n", "notification_channel": "SSE_ONLY"},
    }
    assert clean_settings(body) == body


def test_every_key_of_the_schema_is_accepted() -> None:
    body = {
        "messages": {
            "send_interval_min": 1, "send_interval_max": 5, "limit_period": "Per30Minutes",
            "limit_value": 100, "sim_selection_mode": "RoundRobin", "log_lifetime_days": 7,
            "processing_order": "LIFO", "work_hours_enabled": True,
            "work_hours_start": "09:00", "work_hours_end": "23:59",
        },
        "webhooks": {"internet_required": False, "retry_count": 14, "signing_key": "k"},
        "encryption": {"passphrase": "secret"},
        "ping": {"interval_seconds": 900},
        "logs": {"lifetime_days": 30},
        "gateway": {"cloud_url": "http://10.0.0.2:3000/api/mobile/v1",
                    "private_token": "t", "notification_channel": "AUTO"},
        "receiver": {"content_provider_enabled": True},
    }
    assert clean_settings(body) == body


def test_null_is_accepted_for_any_key_and_kept_as_unset() -> None:
    body = {"messages": {"limit_period": None, "limit_value": None}, "encryption": None}
    assert clean_settings(body) == body


REJECTED_SETTINGS = [
    pytest.param({"messages": {"limit_period": "Weekly"}},
                 "settings.messages.limit_period: must be one of Disabled, PerMinute, "
                 "Per30Minutes, PerHour, PerDay", id="bad-limit-period"),
    pytest.param({"messages": {"sim_selection_mode": "osdefault"}},
                 "settings.messages.sim_selection_mode: must be one of OSDefault, RoundRobin, "
                 "Random", id="enum-is-case-sensitive"),
    pytest.param({"messages": {"processing_order": "fifo"}},
                 "settings.messages.processing_order: must be one of LIFO, FIFO",
                 id="bad-processing-order"),
    pytest.param({"gateway": {"notification_channel": "FCM"}},
                 "settings.gateway.notification_channel: must be one of AUTO, SSE_ONLY",
                 id="bad-notification-channel"),
    pytest.param({"messages": {"limit_value": "10"}},
                 "settings.messages.limit_value: must be an integer", id="int-as-string"),
    pytest.param({"messages": {"limit_value": 1.5}},
                 "settings.messages.limit_value: must be an integer", id="int-as-float"),
    pytest.param({"webhooks": {"retry_count": True}},
                 "settings.webhooks.retry_count: must be an integer", id="bool-is-not-an-int"),
    pytest.param({"ping": {"interval_seconds": 0}},
                 "settings.ping.interval_seconds: must be at least 1", id="int-below-one"),
    pytest.param({"webhooks": {"internet_required": "yes"}},
                 "settings.webhooks.internet_required: must be true or false", id="bad-bool"),
    pytest.param({"encryption": {"passphrase": 1234}},
                 "settings.encryption.passphrase: must be a string", id="bad-string"),
    pytest.param({"messages": {"work_hours_start": "9:00"}},
                 "settings.messages.work_hours_start: must be a time of day as HH:MM",
                 id="time-of-day-needs-two-digits"),
    pytest.param({"messages": {"work_hours_end": "24:00"}},
                 "settings.messages.work_hours_end: must be a time of day as HH:MM",
                 id="time-of-day-out-of-range"),
    pytest.param({"gateway": {"cloud_url": "ftp://example.com"}},
                 "settings.gateway.cloud_url: must be an http:// or https:// URL", id="bad-url"),
    pytest.param({"messages": ["limit_period"]},
                 "settings.messages: must be an object", id="section-not-an-object"),
]


@pytest.mark.parametrize(("body", "message"), REJECTED_SETTINGS)
def test_a_known_setting_with_a_wrong_value_is_refused_with_its_path(body: dict[str, Any],
                                                                     message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        clean_settings(body)


def test_settings_that_are_not_an_object_are_refused() -> None:
    with pytest.raises(ValueError, match="^settings: must be an object$"):
        clean_settings([])  # type: ignore[arg-type]


STORED = {
    "messages": {"limit_period": "PerDay", "limit_value": 100, "processing_order": "LIFO"},
    "webhooks": {"retry_count": 14, "signing_key": "k"},
    "encryption": {"passphrase": "secret"},
}

MERGES = [
    pytest.param({"messages": {"limit_value": 50}},
                 {**STORED, "messages": {"limit_period": "PerDay", "limit_value": 50,
                                         "processing_order": "LIFO"}},
                 id="a-key-replaces-only-itself"),
    pytest.param({"ping": {"interval_seconds": 60}},
                 {**STORED, "ping": {"interval_seconds": 60}}, id="a-new-section-is-added"),
    pytest.param({"messages": {"limit_value": None}},
                 {**STORED, "messages": {"limit_period": "PerDay", "processing_order": "LIFO"}},
                 id="a-null-key-is-removed"),
    pytest.param({"encryption": None},
                 {"messages": STORED["messages"], "webhooks": STORED["webhooks"]},
                 id="a-null-section-is-removed"),
    pytest.param({"messages": {"colour": "blue"}, "theme": {"dark": True}}, STORED,
                 id="unknown-keys-change-nothing"),
    pytest.param({}, STORED, id="an-empty-patch-changes-nothing"),
]


@pytest.mark.parametrize(("patch", "merged"), MERGES)
def test_a_settings_patch_merges_section_by_section(patch: dict[str, Any],
                                                    merged: dict[str, Any]) -> None:
    assert merge_settings(STORED, patch) == merged


def test_merging_leaves_the_stored_settings_untouched() -> None:
    stored = {"messages": {"limit_value": 100}}
    merge_settings(stored, {"messages": {"limit_value": 5}})
    assert stored == {"messages": {"limit_value": 100}}


def test_a_replacement_is_a_merge_into_nothing_and_drops_nulls() -> None:
    body = {"messages": {"limit_value": 5, "limit_period": None}, "encryption": None}
    assert merge_settings({}, body) == {"messages": {"limit_value": 5}}


def test_a_bad_patch_is_refused_by_the_merge() -> None:
    with pytest.raises(ValueError, match="^settings.messages.limit_period: must be one of"):
        merge_settings(STORED, {"messages": {"limit_period": "Sometimes"}})


def test_the_public_view_hides_the_passphrase_and_the_signing_key() -> None:
    assert public_settings(STORED) == {
        "messages": {"limit_period": "PerDay", "limit_value": 100, "processing_order": "LIFO"},
        "webhooks": {"retry_count": 14},
        "encryption": {},
    }
    assert STORED["encryption"] == {"passphrase": "secret"}


# --- scopes and webhook events ------------------------------------------------------------------


def test_the_scopes_are_those_of_the_jwt_api() -> None:
    assert SCOPES == {
        "messages:send", "messages:read", "messages:list", "messages:cancel", "messages:export",
        "devices:list", "devices:delete", "webhooks:list", "webhooks:write", "webhooks:delete",
        "settings:read", "settings:write", "inbox:list", "inbox:refresh", "logs:read",
        "tokens:manage", "all:any",
    }


SCOPE_CHECKS = [
    pytest.param({"messages:send"}, "messages:send", True, id="granted"),
    pytest.param({"messages:send"}, "webhooks:list", False, id="not-granted"),
    pytest.param({"all:any"}, "tokens:manage", True, id="all-any-grants-everything"),
    pytest.param(set(), "messages:read", False, id="nothing-granted"),
    pytest.param({"messages:read"}, "messages:list", False, id="read-is-not-list"),
]


@pytest.mark.parametrize(("granted", "required", "allowed"), SCOPE_CHECKS)
def test_a_scope_is_allowed_when_granted_or_by_all_any(granted: set[str], required: str,
                                                       allowed: bool) -> None:
    assert has_scope(granted, required) is allowed


def test_asking_for_an_unknown_scope_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown scope 'messages:write'"):
        has_scope({"all:any"}, "messages:write")


def test_the_webhook_events_are_the_fourteen_the_phone_sends() -> None:
    assert WEBHOOK_EVENTS == {
        "sms:received", "sms:data-received", "sms:sent", "sms:delivered", "sms:failed",
        "sms:cancelled", "system:ping", "mms:received", "mms:downloaded", "app:started",
        "sms:batch:received", "sms:batch:data-received", "mms:batch:received",
        "mms:batch:downloaded",
    }


# --- server-sent events -------------------------------------------------------------------------

SSE_FRAMES = [
    pytest.param("MessageEnqueued", None, b"event: MessageEnqueued\ndata: {}\n\n",
                 id="no-data-is-an-empty-object"),
    pytest.param("MessageCancelled", {"messageId": "abc"},
                 b'event: MessageCancelled\ndata: {"messageId":"abc"}\n\n', id="compact-json"),
    pytest.param("MessagesExportRequested",
                 {"since": "2024-01-01T00:00:00.000000+00:00", "messageTypes": ["SMS"],
                  "triggerWebhooks": True},
                 b'event: MessagesExportRequested\ndata: {"since":"2024-01-01T00:00:00.000000'
                 b'+00:00","messageTypes":["SMS"],"triggerWebhooks":true}\n\n', id="nested"),
    pytest.param("SettingsUpdated", {"note": "line\nbreak"},
                 b'event: SettingsUpdated\ndata: {"note":"line\\nbreak"}\n\n',
                 id="line-breaks-stay-escaped"),
]


@pytest.mark.parametrize(("event_type", "data", "frame"), SSE_FRAMES)
def test_an_event_is_framed_as_sse(event_type: str, data: dict[str, Any] | None,
                                   frame: bytes) -> None:
    assert sse_frame(event_type, data) == frame


@pytest.mark.parametrize("event_type", ["", "Two\nLines", "Carriage\rReturn"])
def test_an_sse_event_type_must_be_one_line(event_type: str) -> None:
    with pytest.raises(ValueError, match="bad SSE event type"):
        sse_frame(event_type, None)


def test_the_keepalive_is_an_sse_comment() -> None:
    assert SSE_KEEPALIVE == b":keepalive\n\n"
