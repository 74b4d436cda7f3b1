"""SMS text on the SMPP wire: GSM-7 unpacked and UCS-2 octets, submit_sm parts with their
concatenation header (TS 23.040 §9.2.3.24.1), and inbound user data headers."""

from __future__ import annotations

import random

import pytest

from tidings.domain.segments import GSM7_BASIC, Encoding, detect_encoding
from tidings.domain.sms_encoding import (
    Concatenation,
    SmsPart,
    decode_gsm7,
    decode_short_message,
    decode_ucs2,
    encode_gsm7,
    encode_ucs2,
    parse_udh,
    smpp_parts,
)

EMOJI = "\N{GRINNING FACE}"  # U+1F600: D83D DE00 in UTF-16
ZHE = "\N{CYRILLIC SMALL LETTER ZHE}"  # U+0436: a BMP character outside GSM-7
FFFD = "\ufffd"


def h(hex_octets: str) -> bytes:
    """Octets written as hex, spaces allowed: ``h("1B 65")``."""
    return bytes.fromhex(hex_octets)


# --- GSM-7, unpacked -------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "octets"), [
    pytest.param("", b"", id="empty"),
    pytest.param("Hello 123", b"Hello 123", id="letters-digits-space-as-ascii"),
    pytest.param("@£$¥", h("00 01 02 03"), id="at-sign-is-septet-zero"),
    pytest.param("\n\r", h("0A 0D"), id="newline-and-cr"),
    pytest.param("ΔΩ_", h("10 15 11"), id="greek-and-underscore"),
    pytest.param("¡¿§à", h("40 60 5F 7F"), id="where-gsm-differs-from-ascii"),
    pytest.param("ÄÖÑÜ", h("5B 5C 5D 5E"), id="umlauts-where-ascii-has-brackets"),
    pytest.param("€", h("1B 65"), id="euro-is-escaped"),
    pytest.param("{}[]~\\|^\f", h("1B 28 1B 29 1B 3C 1B 3E 1B 3D 1B 2F 1B 40 1B 14 1B 0A"),
                 id="every-extension-character"),
    pytest.param("a€b", h("61 1B 65 62"), id="escape-between-basic-characters"),
])
def test_encode_gsm7_writes_one_octet_per_septet(text: str, octets: bytes) -> None:
    assert encode_gsm7(text) == octets


@pytest.mark.parametrize("text", [
    pytest.param("ça", id="small-c-cedilla"),
    pytest.param("á", id="a-acute"),
    pytest.param("`", id="backtick"),
    pytest.param("a\tb", id="tab"),
    pytest.param("\x1b", id="literal-esc"),
    pytest.param(ZHE, id="cyrillic"),
    pytest.param("ok " + EMOJI, id="emoji"),
])
def test_encode_gsm7_rejects_a_character_outside_the_alphabet(text: str) -> None:
    with pytest.raises(ValueError, match="not in the GSM 7-bit alphabet"):
        encode_gsm7(text)


def test_every_gsm7_character_round_trips() -> None:
    text = "".join(c for c in GSM7_BASIC if c != "\x1b") + "\f^{}\\[~]|€"
    assert len(encode_gsm7(text)) == 127 + 2 * 10
    assert decode_gsm7(encode_gsm7(text)) == text


@pytest.mark.parametrize(("octets", "text"), [
    pytest.param(h("00 1B 65"), "@€", id="basic-and-extension"),
    pytest.param(h("1B 41"), "A", id="unknown-extension-code-is-the-basic-character"),
    pytest.param(h("1B 0D"), "\r", id="reserved-extension-cr2-is-the-basic-character"),
    pytest.param(h("61 1B 1B 62"), "a b", id="esc-esc-is-a-space"),
    pytest.param(h("61 1B"), "a ", id="trailing-lone-esc-is-a-space"),
    pytest.param(h("61 80 FF"), f"a{FFFD}{FFFD}", id="top-bit-set-is-replacement"),
    pytest.param(h("1B 80 62"), f"{FFFD}b", id="esc-before-top-bit-is-one-replacement"),
])
def test_decode_gsm7_is_tolerant(octets: bytes, text: str) -> None:
    assert decode_gsm7(octets) == text


# --- UCS-2 (UTF-16BE) -------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "octets"), [
    pytest.param("", b"", id="empty"),
    pytest.param("Hi", h("00 48 00 69"), id="ascii"),
    pytest.param(ZHE + "€", h("04 36 20 AC"), id="bmp"),
    pytest.param(EMOJI, h("D8 3D DE 00"), id="emoji-is-a-surrogate-pair"),
    pytest.param("a" + EMOJI + "b", h("00 61 D8 3D DE 00 00 62"), id="pair-between-characters"),
])
def test_ucs2_is_utf16_big_endian_both_ways(text: str, octets: bytes) -> None:
    assert encode_ucs2(text) == octets
    assert decode_ucs2(octets) == text


def test_encode_ucs2_rejects_a_lone_surrogate() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        encode_ucs2("\ud83d")


@pytest.mark.parametrize(("octets", "text"), [
    pytest.param(h("00 41 00"), f"A{FFFD}", id="odd-trailing-octet"),
    pytest.param(h("D8 3D 00 41"), f"{FFFD}A", id="high-surrogate-without-its-pair"),
    pytest.param(h("DE 00"), FFFD, id="low-surrogate-alone"),
])
def test_decode_ucs2_replaces_what_is_not_utf16(octets: bytes, text: str) -> None:
    assert decode_ucs2(octets) == text


# --- deliver_sm short_message by data_coding ---------------------------------------------------

@pytest.mark.parametrize(("data_coding", "octets", "text"), [
    pytest.param(0x00, h("00 1B 65 5F"), "@€§", id="0-default-is-gsm7-unpacked"),
    pytest.param(0x01, b"Hi_@", "Hi_@", id="1-ia5-is-ascii"),
    pytest.param(0x01, h("48 E9"), f"H{FFFD}", id="1-ia5-octet-above-7f-is-replacement"),
    pytest.param(0x03, h("E9 74 E9"), "été", id="3-latin-1"),
    pytest.param(0x06, h("B6"), "Ж", id="6-iso-8859-5-cyrillic"),
    pytest.param(0x07, h("E0"), "\N{HEBREW LETTER ALEF}", id="7-iso-8859-8-hebrew"),
    pytest.param(0x08, h("04 16 D8 3D DE 00"), "Ж" + EMOJI, id="8-ucs2"),
    pytest.param(0xC0, h("00"), "@", id="c0-message-waiting-discard-gsm7"),
    pytest.param(0xD1, h("00"), "@", id="d1-message-waiting-store-gsm7"),
    pytest.param(0xE0, h("04 16"), "Ж", id="e0-message-waiting-ucs2"),
    pytest.param(0xF0, h("00 1B 65"), "@€", id="f0-message-class-0-gsm7"),
    pytest.param(0xF3, h("00"), "@", id="f3-message-class-3-gsm7"),
    pytest.param(0xF5, h("00 FF 1B"), "\x00\xff\x1b", id="f5-8-bit-data-is-latin1-octets"),
    pytest.param(0x02, h("00 FF"), "\x00\xff", id="2-binary-is-latin1-octets"),
    pytest.param(0x04, h("CA FE"), "\xca\xfe", id="4-binary-is-latin1-octets"),
    pytest.param(0x05, h("82 A0"), "\x82\xa0", id="5-jis-unsupported-is-latin1-octets"),
    pytest.param(0x10, h("41"), "A", id="reserved-value-is-latin1-octets"),
])
def test_decode_short_message_by_data_coding(data_coding: int, octets: bytes, text: str) -> None:
    assert decode_short_message(octets, data_coding) == text


def test_latin1_fallback_gives_the_octets_back() -> None:
    octets = bytes(range(256))
    assert decode_short_message(octets, 0x04).encode("latin-1") == octets


# --- submit_sm parts --------------------------------------------------------------------------

def udh(reference: int, total: int, sequence: int) -> bytes:
    return bytes([0x05, 0x00, 0x03, reference, total, sequence])


@pytest.mark.parametrize(("text", "parts"), [
    pytest.param("", [SmsPart(b"", False, 0)], id="empty-is-one-empty-gsm7-part"),
    pytest.param("Hi €", [SmsPart(h("48 69 20 1B 65"), False, 0)], id="short-gsm7"),
    pytest.param("a" * 160, [SmsPart(b"a" * 160, False, 0)], id="gsm7-160-one-part-no-udh"),
    pytest.param("a" * 161, [
        SmsPart(h("05 00 03 2A 02 01") + b"a" * 153, True, 0),
        SmsPart(h("05 00 03 2A 02 02") + b"a" * 8, True, 0),
    ], id="gsm7-161-two-parts"),
    pytest.param("€" * 80, [SmsPart(h("1B 65") * 80, False, 0)],
                 id="gsm7-80-euro-is-160-septets-one-part"),
    pytest.param("Hi " + ZHE, [SmsPart(h("00 48 00 69 00 20 04 36"), False, 8)],
                 id="short-ucs2"),
    pytest.param(ZHE * 70, [SmsPart(h("04 36") * 70, False, 8)], id="ucs2-70-one-part-no-udh"),
    pytest.param(ZHE * 71, [
        SmsPart(h("05 00 03 2A 02 01") + h("04 36") * 67, True, 8),
        SmsPart(h("05 00 03 2A 02 02") + h("04 36") * 4, True, 8),
    ], id="ucs2-71-two-parts"),
    pytest.param(EMOJI * 35, [SmsPart(h("D8 3D DE 00") * 35, False, 8)],
                 id="emoji-35-is-70-units-one-part"),
    pytest.param(EMOJI * 36, [
        SmsPart(h("05 00 03 2A 02 01") + h("D8 3D DE 00") * 33, True, 8),
        SmsPart(h("05 00 03 2A 02 02") + h("D8 3D DE 00") * 3, True, 8),
    ], id="emoji-36-two-parts-no-pair-split"),
])
def test_smpp_parts(text: str, parts: list[SmsPart]) -> None:
    assert smpp_parts(text, reference=0x2A) == parts


@pytest.mark.parametrize(("data_coding", "text", "parts"), [
    pytest.param(1, "Hi {x}_@", [SmsPart(b"Hi {x}_@", False, 1)],
                 id="ia5-writes-gsm7-text-as-ascii"),
    pytest.param(3, "£5 é", [SmsPart(h("A3 35 20 E9"), False, 3)],
                 id="latin1-writes-gsm7-text-as-latin1"),
    pytest.param(3, "[" * 80, [SmsPart(b"[" * 80, False, 3)],
                 id="latin1-extension-chars-still-count-two-septets"),
    pytest.param(3, "[" * 81, [
        SmsPart(h("05 00 03 2A 02 01") + b"[" * 76, True, 3),
        SmsPart(h("05 00 03 2A 02 02") + b"[" * 5, True, 3),
    ], id="latin1-parts-are-cut-by-septets"),
    pytest.param(1, "Hi " + ZHE, [SmsPart(h("00 48 00 69 00 20 04 36"), False, 8)],
                 id="ucs2-text-is-ucs2-whatever-the-setting"),
])
def test_smpp_parts_with_data_coding_for_gsm7_texts(data_coding: int, text: str,
                                                    parts: list[SmsPart]) -> None:
    assert smpp_parts(text, 0x2A, data_coding) == parts


@pytest.mark.parametrize(("data_coding", "text", "message"), [
    pytest.param(1, "5 €", "'€' at index 2 is not in ascii", id="ia5-lacks-euro"),
    pytest.param(1, "£5", "'£' at index 0 is not in ascii", id="ia5-lacks-pound"),
    pytest.param(3, "ΔΩ", "'Δ' at index 0 is not in latin-1", id="latin1-lacks-greek"),
    pytest.param(3, "5 €", "'€' at index 2 is not in latin-1", id="latin1-lacks-euro"),
    pytest.param(8, "Hi", "data_coding 8", id="8-is-not-a-gsm7-setting"),
    pytest.param(4, "Hi", "data_coding 4", id="binary-is-not-a-gsm7-setting"),
])
def test_smpp_parts_rejects_what_the_data_coding_cannot_carry(data_coding: int, text: str,
                                                               message: str) -> None:
    with pytest.raises(ValueError, match=message):
        smpp_parts(text, 0, data_coding)


def test_three_part_message_carries_reference_total_and_sequence_in_each_header() -> None:
    parts = smpp_parts("a" * 307, reference=0xC8)
    assert [part.short_message[:6] for part in parts] == [
        h("05 00 03 C8 03 01"),
        h("05 00 03 C8 03 02"),
        h("05 00 03 C8 03 03"),
    ]
    assert [len(part.short_message) for part in parts] == [6 + 153, 6 + 153, 6 + 1]
    assert all(part.esm_class_udhi and part.data_coding == 0 for part in parts)


@pytest.mark.parametrize("reference", [0, 255])
def test_reference_bounds_are_accepted(reference: int) -> None:
    assert smpp_parts("a" * 161, reference)[0].short_message[3] == reference


@pytest.mark.parametrize("reference", [-1, 256, 65535])
def test_reference_outside_0_to_255_raises(reference: int) -> None:
    with pytest.raises(ValueError, match="not in 0-255"):
        smpp_parts("short", reference)


def test_255_parts_is_the_most_a_text_may_need() -> None:
    assert len(smpp_parts("a" * (153 * 255), 1)) == 255
    with pytest.raises(ValueError, match="256 parts"):
        smpp_parts("a" * (153 * 255 + 1), 1)


_GSM_POOL = [c for c in GSM7_BASIC if c != "\x1b"] + list("\f^{}\\[~]|€") * 4
_OTHER_POOL = ["ç", "á", ZHE, "中", EMOJI, "\N{PILE OF POO}", "\N{MUSICAL SYMBOL G CLEF}"]


def _random_texts(count: int) -> list[str]:
    rng = random.Random(3438)
    texts = []
    for _ in range(count):
        length = rng.choice([rng.randrange(0, 20), rng.randrange(60, 80),
                             rng.randrange(140, 170), rng.randrange(0, 600)])
        pool = _GSM_POOL if rng.random() < 0.5 else _GSM_POOL + _OTHER_POOL * 10
        texts.append("".join(rng.choice(pool) for _ in range(length)))
    return texts


def test_random_texts_go_out_in_parts_within_limits_that_decode_to_the_text() -> None:
    for text in _random_texts(400):
        parts = smpp_parts(text, reference=7)
        gsm7 = detect_encoding(text) is Encoding.GSM7
        assert {part.data_coding for part in parts} == {0 if gsm7 else 8}, text
        decoded = []
        if len(parts) == 1:
            assert not parts[0].esm_class_udhi, text
            assert len(parts[0].short_message) <= (160 if gsm7 else 140), text
            decoded.append(decode_short_message(parts[0].short_message, parts[0].data_coding))
        for sequence, part in enumerate(parts if len(parts) > 1 else [], start=1):
            assert part.esm_class_udhi, text
            assert len(part.short_message) <= (6 + 153 if gsm7 else 140), text
            concatenation, payload = parse_udh(part.short_message)
            assert concatenation == Concatenation(7, len(parts), sequence, 8), text
            decoded.append(decode_short_message(payload, part.data_coding))
        assert "".join(decoded) == text, text


# --- inbound user data header ------------------------------------------------------------------

@pytest.mark.parametrize(("short_message", "concatenation", "payload"), [
    pytest.param(h("05 00 03 2A 03 02") + b"hi", Concatenation(0x2A, 3, 2, 8), b"hi",
                 id="8-bit-reference"),
    pytest.param(h("06 08 04 12 34 03 01") + b"hi", Concatenation(0x1234, 3, 1, 16), b"hi",
                 id="16-bit-reference"),
    pytest.param(h("0B 05 04 0B 84 23 F0 00 03 2A 02 01") + b"hi",
                 Concatenation(0x2A, 2, 1, 8), b"hi", id="after-a-port-address-ie"),
    pytest.param(h("06 05 04 0B 84 23 F0") + b"hi", None, b"hi", id="no-concatenation-ie"),
    pytest.param(h("00") + b"hi", None, b"hi", id="empty-header"),
    pytest.param(h("05 00 03 2A 03 02"), Concatenation(0x2A, 3, 2, 8), b"",
                 id="empty-payload"),
    pytest.param(h("0B 00 03 01 02 01 08 04 00 07 02 02") + b"hi",
                 Concatenation(7, 2, 2, 16), b"hi", id="last-concatenation-ie-counts"),
    pytest.param(h("05 00 03 2A 03 00") + b"hi", None, b"hi", id="sequence-0-ignored"),
    pytest.param(h("05 00 03 2A 02 03") + b"hi", None, b"hi", id="sequence-above-total-ignored"),
    pytest.param(h("05 00 03 2A 00 00") + b"hi", None, b"hi", id="total-0-ignored"),
    pytest.param(h("06 00 04 2A 03 01 FF") + b"hi", None, b"hi", id="wrong-ie-length-ignored"),
    pytest.param(h("05 00 04 2A 03 01") + b"hi", None, b"hi",
                 id="ie-running-past-header-ignores-header"),
    pytest.param(h("01 00") + b"hi", None, b"hi", id="ie-without-length-ignores-header"),
])
def test_parse_udh(short_message: bytes, concatenation: Concatenation | None,
                   payload: bytes) -> None:
    assert parse_udh(short_message) == (concatenation, payload)


@pytest.mark.parametrize("short_message", [
    pytest.param(b"", id="empty"),
    pytest.param(h("05 00 03"), id="header-length-past-the-end"),
])
def test_parse_udh_raises_when_the_payload_cannot_be_found(short_message: bytes) -> None:
    with pytest.raises(ValueError, match="short_message"):
        parse_udh(short_message)


def test_gsm7_payload_after_the_header_decodes_without_fill_octets() -> None:
    concatenation, payload = parse_udh(h("05 00 03 2A 02 02 00 1B 65"))
    assert concatenation == Concatenation(0x2A, 2, 2, 8)
    assert decode_short_message(payload, 0) == "@€"
