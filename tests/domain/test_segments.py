"""GSM-7 / UCS-2 detection (TS 23.038) and SMS concatenation (TS 23.040): counts and parts."""

from __future__ import annotations

import random

import pytest

from tidings.domain.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    GSM7_PART,
    GSM7_SINGLE,
    UCS2_PART,
    UCS2_SINGLE,
    Encoding,
    SegmentInfo,
    count_segments,
    detect_encoding,
    split_parts,
)

GSM7 = Encoding.GSM7
UCS2 = Encoding.UCS2
EMOJI = "\N{GRINNING FACE}"  # U+1F600: a surrogate pair in UTF-16
ZHE = "\N{CYRILLIC SMALL LETTER ZHE}"  # a BMP character outside GSM-7
EXTENSION_CHARS = "\f^{}\\[~]|€"


@pytest.mark.parametrize(("position", "char"), [
    (0x00, "@"),
    (0x01, "£"),
    (0x02, "$"),
    (0x03, "¥"),
    (0x09, "\N{LATIN CAPITAL LETTER C WITH CEDILLA}"),
    (0x0A, "\n"),
    (0x0D, "\r"),
    (0x10, "\N{GREEK CAPITAL LETTER DELTA}"),
    (0x11, "_"),
    (0x15, "\N{GREEK CAPITAL LETTER OMEGA}"),
    (0x1B, "\x1b"),
    (0x1F, "É"),
    (0x20, " "),
    (0x24, "¤"),
    (0x40, "¡"),
    (0x5B, "Ä"),
    (0x5F, "§"),
    (0x60, "¿"),
    (0x7F, "à"),
], ids=lambda value: f"{value:#04x}" if isinstance(value, int) else None)
def test_basic_table_holds_the_ts_23_038_character_at_each_position(
        position: int, char: str) -> None:
    assert GSM7_BASIC[position] == char


def test_basic_table_is_128_distinct_characters() -> None:
    assert len(GSM7_BASIC) == 128
    assert len(set(GSM7_BASIC)) == 128


def test_extension_table_holds_the_ten_ts_23_038_characters() -> None:
    assert dict(GSM7_EXTENSION) == {
        0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\",
        0x3C: "[", 0x3D: "~", 0x3E: "]", 0x40: "|", 0x65: "€",
    }


def test_exactly_137_characters_are_gsm7() -> None:
    """127 of the basic table (all but ESC) and the 10 of the extension table; nothing else in
    the BMP."""
    gsm = [chr(code) for code in range(0x10000) if detect_encoding(chr(code)) is GSM7]
    assert len(gsm) == 137
    assert "\x1b" not in gsm


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("", GSM7, id="empty"),
    pytest.param("Hello, world! 0123456789", GSM7, id="ascii"),
    pytest.param("line\nbreak\r\n", GSM7, id="newline-and-cr"),
    pytest.param("ΔΦΓΛΩΠΨΣΘΞ", GSM7, id="greek-capitals"),
    pytest.param(EXTENSION_CHARS, GSM7, id="extension-chars"),
    pytest.param("Ça coûte 5€", UCS2, id="u-circumflex-not-gsm"),
    pytest.param("Ça va", GSM7, id="capital-c-cedilla-is-gsm"),
    pytest.param("ça va", UCS2, id="small-c-cedilla-is-not-gsm"),
    pytest.param("£$¥¤§¡¿@_", GSM7, id="currency-and-symbols"),
    pytest.param("ÄÖÑÜäöñüàèéùìòØøÅåÆæßÉ", GSM7, id="latin-accents-in-table"),
    pytest.param("á", UCS2, id="a-acute-not-gsm"),
    pytest.param("`", UCS2, id="backtick-not-gsm"),
    pytest.param("a\tb", UCS2, id="tab-not-gsm"),
    pytest.param("\x1b", UCS2, id="literal-esc-not-gsm"),
    pytest.param("\N{GREEK CAPITAL LETTER ALPHA}", UCS2, id="greek-alpha-not-gsm"),
    pytest.param("\N{OHM SIGN}", UCS2, id="ohm-sign-is-not-omega"),
    pytest.param(ZHE, UCS2, id="cyrillic"),
    pytest.param("ok " + EMOJI, UCS2, id="emoji"),
])
def test_detect_encoding(text: str, expected: Encoding) -> None:
    assert detect_encoding(text) is expected


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("", SegmentInfo(GSM7, 0, 1, 160, 160), id="empty-is-one-empty-segment"),
    pytest.param("a" * 160, SegmentInfo(GSM7, 160, 1, 160, 0), id="gsm-160-one"),
    pytest.param("a" * 161, SegmentInfo(GSM7, 161, 2, 153, 145), id="gsm-161-two"),
    pytest.param("a" * 306, SegmentInfo(GSM7, 306, 2, 153, 0), id="gsm-306-two"),
    pytest.param("a" * 307, SegmentInfo(GSM7, 307, 3, 153, 152), id="gsm-307-three"),
    pytest.param("€" * 80, SegmentInfo(GSM7, 160, 1, 160, 0), id="gsm-80-euro-one"),
    pytest.param("€" * 81, SegmentInfo(GSM7, 162, 2, 153, 143), id="gsm-81-euro-two"),
    pytest.param("a" * 158 + "€", SegmentInfo(GSM7, 160, 1, 160, 0), id="gsm-euro-fills-160"),
    pytest.param("a" * 159 + "€", SegmentInfo(GSM7, 161, 2, 153, 145), id="gsm-euro-to-161"),
    pytest.param("a" * 152 + "€" + "b" * 7, SegmentInfo(GSM7, 161, 2, 153, 144),
                 id="gsm-euro-moved-to-part-two"),
    pytest.param("€" * 153, SegmentInfo(GSM7, 306, 3, 153, 151),
                 id="gsm-306-septets-of-euro-need-three"),
    pytest.param(ZHE * 70, SegmentInfo(UCS2, 70, 1, 70, 0), id="ucs2-70-one"),
    pytest.param(ZHE * 71, SegmentInfo(UCS2, 71, 2, 67, 63), id="ucs2-71-two"),
    pytest.param(ZHE * 134, SegmentInfo(UCS2, 134, 2, 67, 0), id="ucs2-134-two"),
    pytest.param(ZHE * 135, SegmentInfo(UCS2, 135, 3, 67, 66), id="ucs2-135-three"),
    pytest.param(EMOJI * 35, SegmentInfo(UCS2, 70, 1, 70, 0), id="emoji-35-one"),
    pytest.param(EMOJI * 36, SegmentInfo(UCS2, 72, 2, 67, 61), id="emoji-36-two"),
    pytest.param(EMOJI * 67, SegmentInfo(UCS2, 134, 3, 67, 65),
                 id="emoji-134-units-need-three"),
    pytest.param("a" * 100 + "ç", SegmentInfo(UCS2, 101, 2, 67, 33),
                 id="one-non-gsm-char-makes-all-ucs2"),
    pytest.param("€" * 70, SegmentInfo(GSM7, 140, 1, 160, 20), id="euro-is-gsm-not-ucs2"),
])
def test_count_segments(text: str, expected: SegmentInfo) -> None:
    assert count_segments(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("", [""], id="empty"),
    pytest.param("a" * 160, ["a" * 160], id="gsm-single"),
    pytest.param("a" * 161, ["a" * 153, "a" * 8], id="gsm-153-then-8"),
    pytest.param("a" * 307, ["a" * 153, "a" * 153, "a"], id="gsm-three-parts"),
    pytest.param("a" * 152 + "€" + "b" * 7, ["a" * 152, "€" + "b" * 7],
                 id="escape-with-one-septet-left-moves"),
    pytest.param("a" * 151 + "€" + "b" * 10, ["a" * 151 + "€", "b" * 10],
                 id="escape-filling-the-part-stays"),
    pytest.param("€" * 153, ["€" * 76, "€" * 76, "€"], id="all-escapes"),
    pytest.param(ZHE * 71, [ZHE * 67, ZHE * 4], id="ucs2-67-then-4"),
    pytest.param("ç" + "a" * 65 + EMOJI + "b" * 3, ["ç" + "a" * 65, EMOJI + "bbb"],
                 id="surrogate-pair-with-one-unit-left-moves"),
    pytest.param("ç" + "a" * 64 + EMOJI + "b" * 5, ["ç" + "a" * 64 + EMOJI, "b" * 5],
                 id="surrogate-pair-filling-the-part-stays"),
    pytest.param(EMOJI * 67, [EMOJI * 33, EMOJI * 33, EMOJI], id="all-surrogate-pairs"),
])
def test_split_parts(text: str, expected: list[str]) -> None:
    assert split_parts(text) == expected
    assert len(expected) == count_segments(text).segments


_GSM_POOL = [c for c in GSM7_BASIC if c != "\x1b"] + list(EXTENSION_CHARS) * 4
_OTHER_POOL = ["ç", "á", ZHE, "中", "\t", "`", EMOJI, "\N{PILE OF POO}",
               "\N{MUSICAL SYMBOL G CLEF}"]


def _units(part: str, encoding: Encoding) -> int:
    """A part's size computed independently of the module: septets or UTF-16 code units."""
    if encoding is GSM7:
        return len(part) + sum(char in EXTENSION_CHARS for char in part)
    return len(part.encode("utf-16-le")) // 2


def _random_texts(count: int) -> list[str]:
    rng = random.Random(23038)
    texts = []
    for _ in range(count):
        length = rng.choice([rng.randrange(0, 20), rng.randrange(60, 80),
                             rng.randrange(140, 170), rng.randrange(0, 500)])
        pool = _GSM_POOL if rng.random() < 0.5 else _GSM_POOL + _OTHER_POOL * 10
        texts.append("".join(rng.choice(pool) for _ in range(length)))
    return texts


def test_random_texts_split_into_parts_that_fit_and_match_the_count() -> None:
    for text in _random_texts(400):
        info = count_segments(text)
        parts = split_parts(text)
        sizes = [_units(part, info.encoding) for part in parts]
        single, part_limit = ((GSM7_SINGLE, GSM7_PART) if info.encoding is GSM7
                              else (UCS2_SINGLE, UCS2_PART))
        assert "".join(parts) == text, text
        assert len(parts) == info.segments, text
        assert sum(sizes) == info.units, text
        assert info.remaining == info.per_segment - sizes[-1], text
        if info.segments == 1:
            assert info.units <= single, text
            assert info.per_segment == single, text
        else:
            assert info.units > single, text
            assert info.per_segment == part_limit, text
            assert all(0 < size <= part_limit for size in sizes), text
            for size, following in zip(sizes, parts[1:], strict=False):
                # packing is tight: the next part's first character did not fit
                assert size + _units(following[0], info.encoding) > part_limit, text
