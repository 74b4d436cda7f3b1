"""SMPP 3.4 framing and the PDUs the connector writes itself, as octets on the wire."""

from __future__ import annotations

import pytest

from tidings.providers.sms.smpp.pdu import (
    Command,
    Pdu,
    PduReader,
    bind_body,
    c_string,
    message_id_of,
    pack,
    read_c_string,
    status_name,
)

ENQUIRE_LINK = bytes.fromhex("00000010" "00000015" "00000000" "00000007")
SUBMIT_SM_RESP = bytes.fromhex("00000015" "80000004" "00000000" "00000009") + b"1000\0"
GENERIC_NACK = bytes.fromhex("00000010" "80000000" "00000008" "0000000a")


@pytest.mark.parametrize(("command_id", "sequence", "body", "status", "wire"), [
    pytest.param(Command.ENQUIRE_LINK, 7, b"", 0, ENQUIRE_LINK, id="enquire_link"),
    pytest.param(Command.SUBMIT_SM_RESP, 9, b"1000\0", 0, SUBMIT_SM_RESP, id="submit_sm_resp"),
    pytest.param(Command.GENERIC_NACK, 10, b"", 8, GENERIC_NACK, id="generic_nack-rsyserr"),
])
def test_a_pdu_is_its_length_command_status_and_sequence_then_its_body(
        command_id: int, sequence: int, body: bytes, status: int, wire: bytes) -> None:
    assert pack(command_id, sequence, body, status) == wire


def test_a_bind_body_is_system_id_password_type_version_ton_npi_and_range() -> None:
    assert bind_body("tidings", "s3cret", "VMA", 1, 1, "") == (
        b"tidings\0" b"s3cret\0" b"VMA\0" b"\x34" b"\x01" b"\x01" b"\0")


@pytest.mark.parametrize(("value", "limit"), [("a" * 16, 16), ("123456789", 9)])
def test_a_c_string_past_its_fields_limit_is_refused(value: str, limit: int) -> None:
    with pytest.raises(ValueError, match="longer than"):
        c_string(value, limit)


@pytest.mark.parametrize(("body", "offset", "expected"), [
    (b"1000\0rest", 0, ("1000", 5)),
    (b"x\0abc\0", 2, ("abc", 6)),
    (b"no-nul", 0, ("no-nul", 6)),  # a tolerant read of an SMSC that forgot the NUL
])
def test_reading_a_c_string_answers_it_and_the_offset_after_its_nul(
        body: bytes, offset: int, expected: tuple[str, int]) -> None:
    assert read_c_string(body, offset) == expected


def test_the_message_id_of_a_submit_sm_resp_is_its_body_string() -> None:
    [response] = PduReader().feed(SUBMIT_SM_RESP)
    assert (response.command_id, response.sequence, message_id_of(response)) == (
        Command.SUBMIT_SM_RESP, 9, "1000")


def test_the_reader_answers_pdus_only_once_they_are_complete_however_the_bytes_arrive() -> None:
    stream = ENQUIRE_LINK + SUBMIT_SM_RESP + GENERIC_NACK
    reader = PduReader()

    arrived = [reader.feed(stream[i:i + 5]) for i in range(0, len(stream), 5)]

    pdus = [pdu for batch in arrived for pdu in batch]
    assert [(pdu.command_id, pdu.status, pdu.sequence) for pdu in pdus] == [
        (Command.ENQUIRE_LINK, 0, 7), (Command.SUBMIT_SM_RESP, 0, 9),
        (Command.GENERIC_NACK, 8, 10)]
    assert [pdu.wire() for pdu in pdus] == [ENQUIRE_LINK, SUBMIT_SM_RESP, GENERIC_NACK]
    assert arrived[0] == []  # five octets are not yet a header


@pytest.mark.parametrize("length", [0, 15, 1_000_000])
def test_an_impossible_length_means_the_stream_is_out_of_step(length: int) -> None:
    with pytest.raises(ValueError, match="impossible command_length"):
        PduReader().feed(length.to_bytes(4, "big") + bytes(12))


@pytest.mark.parametrize(("status", "name"), [
    (0x58, "ESME_RTHROTTLED"), (0x14, "ESME_RMSGQFUL"), (0x0B, "ESME_RINVDSTADR"),
    (0x401, "0x00000401"),
])
def test_a_status_is_named_by_the_spec_or_shown_in_hex_when_vendor_specific(
        status: int, name: str) -> None:
    assert status_name(status) == name


def test_a_response_is_told_apart_by_the_high_bit_of_its_command_id() -> None:
    assert Pdu(Command.DELIVER_SM_RESP, 0, 1, b"").is_response
    assert not Pdu(Command.DELIVER_SM, 0, 1, b"").is_response
