"""SMPP 3.4 delivery receipts: the Appendix B text, the receipt TLVs (which win), the stat words'
states, and the keys that match a receipt's id to submit_sm_resp's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tidings.domain.smpp_receipts import (
    RECEIPT_STATES,
    DlrIdFormat,
    Receipt,
    parse_receipt,
    parse_receipt_text,
    receipt_key,
    submit_key,
)
from tidings.domain.states import REPORTABLE, MessageState

RECEIPTED_MESSAGE_ID = 0x001E
NETWORK_ERROR_CODE = 0x0423
MESSAGE_STATE = 0x0427

STANDARD = ("id:0123456789 sub:001 dlvrd:001 submit date:2305011200 done date:2305011201 "
            "stat:DELIVRD err:000 text:Hello world")


def at(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def receipt(message_id: str = "0123456789", stat: str = "DELIVRD", err: str | None = None,
            submitted_at: datetime | None = None, done_at: datetime | None = None,
            text: str | None = None) -> Receipt:
    return Receipt(message_id, stat, err, submitted_at, done_at, text)


STANDARD_RECEIPT = receipt(err="000", submitted_at=at(2023, 5, 1, 12, 0),
                           done_at=at(2023, 5, 1, 12, 1), text="Hello world")


# --- the Appendix B text ----------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    pytest.param(STANDARD, STANDARD_RECEIPT, id="standard"),
    pytest.param("ID:0123456789 SUB:001 DLVRD:001 Submit Date:2305011200 "
                 "DONE DATE:2305011201 STAT:delivrd ERR:000 Text:Hello world",
                 STANDARD_RECEIPT, id="keys-any-case-stat-upper-cased"),
    pytest.param("stat:DELIVRD err:000 done date:2305011201 id:0123456789",
                 receipt(err="000", done_at=at(2023, 5, 1, 12, 1)), id="any-order"),
    pytest.param("id:0123456789 sub:001 dlvrd:001 submit date:2305011200 "
                 "done date:2305011201 stat:DELIVRD text:Hello world",
                 receipt(submitted_at=at(2023, 5, 1, 12, 0), done_at=at(2023, 5, 1, 12, 1),
                         text="Hello world"), id="missing-err"),
    pytest.param("id:0123456789 stat:DELIVRD err: text:x", receipt(text="x"),
                 id="empty-err-is-none"),
    pytest.param("id:0123456789 stat:DELIVRD", receipt(), id="only-id-and-stat"),
    pytest.param("  id :  0123456789   stat :  DELIVRD   err : 000  ",
                 receipt(err="000"), id="extra-spaces"),
    pytest.param("id:0123456789 sub:001 dlvrd:001 submit date:2305011200 "
                 "done date:2305011201 stat:UNDELIV err:011 mccmnc:42001 cost:0.05 "
                 "network-name:Zain text:Hello world",
                 receipt(stat="UNDELIV", err="011", submitted_at=at(2023, 5, 1, 12, 0),
                         done_at=at(2023, 5, 1, 12, 1), text="Hello world"),
                 id="unknown-fields-ignored"),
    pytest.param("id:0123456789 stat:DELIVRD err:000 text:Code: 1234  at 10:30 stat:X",
                 receipt(err="000", text="Code: 1234  at 10:30 stat:X"),
                 id="text-takes-the-rest-verbatim"),
    pytest.param("id:0123456789 stat:DELIVRD text:", receipt(text=""), id="empty-text"),
    pytest.param("id:0123456789 submit date:230501120030 done date:230501120145 stat:DELIVRD",
                 receipt(submitted_at=at(2023, 5, 1, 12, 0, 30),
                         done_at=at(2023, 5, 1, 12, 1, 45)), id="12-digit-dates-with-seconds"),
    pytest.param("id:0123456789 submit_date:2305011200 done_date:2305011201 stat:DELIVRD",
                 receipt(submitted_at=at(2023, 5, 1, 12, 0), done_at=at(2023, 5, 1, 12, 1)),
                 id="underscored-date-keys"),
    pytest.param("id:0123456789 submit date:9912312359 stat:DELIVRD",
                 receipt(submitted_at=at(2099, 12, 31, 23, 59)), id="two-digit-year-is-20yy"),
    pytest.param("id:0123456789 submit date:2313011200 done date:2302301200 stat:DELIVRD",
                 receipt(), id="impossible-dates-are-none"),
    pytest.param("id:0123456789 submit date:23050112 done date:23050112000 stat:DELIVRD",
                 receipt(), id="dates-of-other-lengths-are-none"),
    pytest.param("id:0123456789 submit date:2023-05-01 stat:DELIVRD", receipt(),
                 id="dates-in-other-shapes-are-none"),
    pytest.param("id:abc id:def stat:ENROUTE stat:DELIVRD", receipt("abc", "ENROUTE"),
                 id="first-of-a-repeated-key-counts"),
    pytest.param("id:9b1f_3A-x stat:DELIVRD", receipt("9b1f_3A-x"), id="id-kept-verbatim"),
])
def test_parse_receipt_text(text: str, expected: Receipt) -> None:
    assert parse_receipt_text(text) == expected


@pytest.mark.parametrize("text", [
    pytest.param("", id="empty"),
    pytest.param("Hello there, see you at 10:30", id="not-a-receipt"),
    pytest.param("sub:001 dlvrd:001 stat:DELIVRD err:000 text:x", id="no-id"),
    pytest.param("id: stat:DELIVRD", id="empty-id"),
    pytest.param("id:0123456789 sub:001 dlvrd:001 err:000 text:x", id="no-stat"),
    pytest.param("id:0123456789 text:stat:DELIVRD", id="stat-only-inside-text"),
    pytest.param("stat:DELIVRD text:Hi id:0123456789", id="text-before-id-swallows-it"),
])
def test_parse_receipt_text_answers_none_without_id_or_stat(text: str) -> None:
    assert parse_receipt_text(text) is None


# --- TLVs and text together --------------------------------------------------------------------

@pytest.mark.parametrize(("short_message", "tlvs", "expected"), [
    pytest.param(STANDARD.encode(), {}, STANDARD_RECEIPT, id="text-only"),
    pytest.param(b"", {RECEIPTED_MESSAGE_ID: b"abc123\x00", MESSAGE_STATE: b"\x02"},
                 receipt("abc123"), id="tlv-only-nul-terminated-id"),
    pytest.param(b"", {RECEIPTED_MESSAGE_ID: b"abc123", MESSAGE_STATE: b"\x05",
                       NETWORK_ERROR_CODE: b"\x03\x00\x1b"},
                 receipt("abc123", "UNDELIV", err="3:27"), id="tlv-only-with-network-error"),
    pytest.param(b"id:111 stat:UNDELIV err:000 submit date:2305011200 text:hi",
                 {RECEIPTED_MESSAGE_ID: b"222\x00", MESSAGE_STATE: b"\x02"},
                 receipt("222", "DELIVRD", err="000", submitted_at=at(2023, 5, 1, 12, 0),
                         text="hi"), id="tlvs-override-id-and-stat-text-fills-the-rest"),
    pytest.param(b"id:111 stat:UNDELIV err:000",
                 {NETWORK_ERROR_CODE: b"\x03\x01\x00"}, receipt("111", "UNDELIV", err="3:256"),
                 id="network-error-tlv-overrides-text-err"),
    pytest.param(b"id:111 done date:2305011201", {MESSAGE_STATE: b"\x03"},
                 receipt("111", "EXPIRED", done_at=at(2023, 5, 1, 12, 1)),
                 id="text-without-stat-still-gives-id-and-dates"),
    pytest.param(b"stat:DELIVRD err:000", {RECEIPTED_MESSAGE_ID: b"abc\x00"},
                 receipt("abc", err="000"), id="text-without-id-still-gives-stat-and-err"),
    pytest.param(b"id:111 stat:UNDELIV", {MESSAGE_STATE: b"\x00"}, receipt("111", "UNDELIV"),
                 id="state-0-unknown-to-3-4-falls-back-to-text"),
    pytest.param(b"id:111 stat:UNDELIV", {MESSAGE_STATE: b"\x09"}, receipt("111", "UNDELIV"),
                 id="state-9-unknown-to-3-4-falls-back-to-text"),
    pytest.param(b"id:111 stat:UNDELIV", {MESSAGE_STATE: b"\x00\x02"},
                 receipt("111", "UNDELIV"), id="state-of-wrong-length-falls-back-to-text"),
    pytest.param(b"id:111 stat:UNDELIV err:000", {NETWORK_ERROR_CODE: b"\x03\x01"},
                 receipt("111", "UNDELIV", err="000"),
                 id="network-error-of-wrong-length-falls-back-to-text"),
    pytest.param(b"id:111 stat:UNDELIV", {RECEIPTED_MESSAGE_ID: b"\x00"},
                 receipt("111", "UNDELIV"), id="empty-id-tlv-falls-back-to-text"),
    pytest.param(b"id:111 stat:DELIVRD text:hi\x00", {}, receipt("111", text="hi"),
                 id="trailing-nul-dropped"),
    pytest.param(b"id:msg_1 stat:DELIVRD", {}, receipt("msg_1"),
                 id="underscore-in-id-survives-data-coding-0"),
    pytest.param(b"id:111 stat:DELIVRD", {0x1403: b"\x01"}, receipt("111"),
                 id="vendor-tlvs-ignored"),
])
def test_parse_receipt(short_message: bytes, tlvs: dict[int, bytes], expected: Receipt) -> None:
    assert parse_receipt(short_message, tlvs) == expected


def test_parse_receipt_reads_ucs2_text_when_data_coding_is_8() -> None:
    short_message = "id:111 stat:DELIVRD text:Привет".encode("utf-16-be")
    assert parse_receipt(short_message, {}, data_coding=8) == receipt("111", text="Привет")


@pytest.mark.parametrize(("state", "stat"), [
    (1, "ENROUTE"), (2, "DELIVRD"), (3, "EXPIRED"), (4, "DELETED"),
    (5, "UNDELIV"), (6, "ACCEPTD"), (7, "UNKNOWN"), (8, "REJECTD"),
])
def test_message_state_tlv_becomes_the_stat_word(state: int, stat: str) -> None:
    tlvs = {RECEIPTED_MESSAGE_ID: b"1\x00", MESSAGE_STATE: bytes([state])}
    assert parse_receipt(b"", tlvs) == receipt("1", stat)


@pytest.mark.parametrize(("short_message", "tlvs"), [
    pytest.param(b"", {}, id="nothing"),
    pytest.param(b"", {MESSAGE_STATE: b"\x02"}, id="state-without-id"),
    pytest.param(b"", {RECEIPTED_MESSAGE_ID: b"1\x00"}, id="id-without-state"),
    pytest.param(b"stat:DELIVRD", {MESSAGE_STATE: b"\x02"}, id="no-id-in-either"),
    pytest.param(b"id:1 err:000", {MESSAGE_STATE: b"\x0a"}, id="no-valid-stat-in-either"),
])
def test_parse_receipt_answers_none_without_id_or_stat(short_message: bytes,
                                                       tlvs: dict[int, bytes]) -> None:
    assert parse_receipt(short_message, tlvs) is None


# --- stat words → states -----------------------------------------------------------------------

@pytest.mark.parametrize(("stat", "state"), [
    ("DELIVRD", MessageState.DELIVERED),
    ("UNDELIV", MessageState.FAILED),
    ("EXPIRED", MessageState.FAILED),
    ("DELETED", MessageState.FAILED),
    ("REJECTD", MessageState.FAILED),
    ("ACCEPTD", MessageState.SENT),
    ("ENROUTE", MessageState.SENT),
])
def test_receipt_states(stat: str, state: MessageState) -> None:
    assert RECEIPT_STATES[stat] is state


def test_receipt_states_holds_exactly_seven_words_all_reportable() -> None:
    assert len(RECEIPT_STATES) == 7
    assert set(RECEIPT_STATES.values()) <= REPORTABLE


def test_unknown_stat_is_parsed_but_has_no_state() -> None:
    parsed = parse_receipt_text("id:1 stat:UNKNOWN")
    assert parsed == receipt("1", "UNKNOWN")
    assert "UNKNOWN" not in RECEIPT_STATES


# --- matching a receipt to its submit -------------------------------------------------------

SAME, HEX, DECIMAL = DlrIdFormat.SAME, DlrIdFormat.HEX, DlrIdFormat.DECIMAL


@pytest.mark.parametrize(("fmt", "submit_id", "receipt_id", "key"), [
    pytest.param(SAME, "AbC123", "abc123", "abc123", id="same-ignores-case"),
    pytest.param(SAME, " 42 ", "42\n", "42", id="same-strips"),
    pytest.param(SAME, "0003E8", "0003e8", "0003e8", id="same-keeps-leading-zeros"),
    pytest.param(HEX, "1000", "3e8", "1000", id="hex-lower"),
    pytest.param(HEX, "1000", "3E8", "1000", id="hex-upper"),
    pytest.param(HEX, "1000", "0003E8", "1000", id="hex-leading-zeros-in-receipt"),
    pytest.param(HEX, "0001000", "3e8", "1000", id="hex-leading-zeros-in-submit"),
    pytest.param(HEX, "1000", "0x3E8", "1000", id="hex-with-0x-prefix"),
    pytest.param(HEX, "0", "000", "0", id="hex-zero"),
    pytest.param(DECIMAL, "3E8", "1000", "1000", id="decimal-upper"),
    pytest.param(DECIMAL, "0003E8", "1000", "1000", id="decimal-leading-zeros-in-submit"),
    pytest.param(DECIMAL, "0x3e8", "01000", "1000", id="decimal-0x-submit-zero-receipt"),
    pytest.param(DECIMAL, "FFFFFFFFFFFFFFFF", "18446744073709551615", "18446744073709551615",
                 id="decimal-beyond-64-bits"),
    pytest.param(HEX, "msg-77", "msg-77", "msg-77", id="non-numeric-on-both-sides-falls-back"),
])
def test_submit_and_receipt_keys_match(fmt: DlrIdFormat, submit_id: str, receipt_id: str,
                                       key: str) -> None:
    assert submit_key(submit_id, fmt) == key
    assert receipt_key(receipt_id, fmt) == key


@pytest.mark.parametrize(("fmt", "submit_id", "receipt_id"), [
    pytest.param(SAME, "0042", "42", id="same-does-not-drop-zeros"),
    pytest.param(SAME, "1000", "3e8", id="same-does-not-convert"),
    pytest.param(HEX, "3e8", "3e8", id="hex-submit-under-hex-is-misconfigured"),
    pytest.param(DECIMAL, "1000", "1000", id="decimal-reads-submit-as-hex-4096"),
])
def test_keys_that_do_not_match(fmt: DlrIdFormat, submit_id: str, receipt_id: str) -> None:
    assert submit_key(submit_id, fmt) != receipt_key(receipt_id, fmt)


@pytest.mark.parametrize(("key_of", "fmt", "value", "key"), [
    pytest.param(submit_key, HEX, "ABC", "abc", id="submit-not-decimal"),
    pytest.param(submit_key, HEX, "+1000", "+1000", id="submit-sign-not-a-digit"),
    pytest.param(submit_key, HEX, "1_000", "1_000", id="submit-underscore-not-a-digit"),
    pytest.param(submit_key, DECIMAL, "XYZ", "xyz", id="submit-not-hex"),
    pytest.param(receipt_key, HEX, "Msg-3E8", "msg-3e8", id="receipt-not-hex"),
    pytest.param(receipt_key, DECIMAL, "3E8", "3e8", id="receipt-not-decimal"),
    pytest.param(receipt_key, DECIMAL, "\u0661\u0662", "\u0661\u0662",
                 id="receipt-arabic-indic-digits-not-ascii"),
    pytest.param(receipt_key, HEX, " ", "", id="receipt-blank"),
    pytest.param(submit_key, HEX, "9" * 5000, "9" * 5000, id="submit-past-int-digit-limit"),
    pytest.param(receipt_key, HEX, "f" * 5000, "f" * 5000, id="receipt-past-str-digit-limit"),
])
def test_unparseable_id_falls_back_to_the_same_key(
        key_of: Callable[[str, DlrIdFormat], str], fmt: DlrIdFormat, value: str,
        key: str) -> None:
    assert key_of(value, fmt) == key


def test_id_format_values_are_the_configuration_words() -> None:
    assert [fmt.value for fmt in DlrIdFormat] == ["same", "hex", "decimal"]
