"""SMS text encoding and concatenation: which alphabet a text needs and how it splits into parts.

Alphabets follow 3GPP TS 23.038 §6.2.1 (the GSM 7-bit default alphabet, ``GSM7_BASIC``) and
§6.2.1.1 (its extension table, ``GSM7_EXTENSION``). A text is GSM-7 when every character is in
one of the two; each extension character costs two septets (ESC ``0x1B`` and its code). Anything
else makes the whole text UCS-2, counted in UTF-16 code units: a character outside the BMP
(most emoji) is a surrogate pair and costs two. The national language shift tables (Turkish,
Portuguese, the Indian scripts…) are not used: a text only they would cover is UCS-2 here.

Concatenation follows TS 23.040 §9.2.3.24.1: each part carries a 6-octet user data header
(length, IEI ``0x00``, IE length, 8-bit reference, total, sequence), leaving 134 of 140 octets:
153 septets (after one fill bit) or 67 UTF-16 code units. A single message holds 160 septets or 70
code units. A 16-bit reference (IEI ``0x08``, 7 octets) would leave 152 and 66; providers count
with the 8-bit figures, and so does this module.

Parts are packed greedily, and a character is never split: an extension character needing two
septets, or a surrogate pair needing two code units, moves whole to the next part when only one
unit is left. ``count_segments`` counts by that same packing, so for every text
``len(split_parts(text)) == count_segments(text).segments``. Parts split between code points, not
graphemes: a flag or a ZWJ emoji sequence may straddle two parts (the phone joins them again).

An empty text is one empty GSM-7 segment, as on the air interface; rejecting empty content is the
caller's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


ESC: Final = "\x1b"

# TS 23.038 §6.2.1, indexed by septet value, 16 per row. 0x1B is ESC, which escapes to the
# extension table: it is in the table at its position but is not a character a text may contain.
GSM7_BASIC: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# TS 23.038 §6.2.1.1: septet value after ESC → character. 0x0D (a control code) and 0x1B (escape
# to a further table) are reserved and carry no character.
GSM7_EXTENSION: Final = MappingProxyType({
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
})

GSM7_SINGLE: Final = 160
GSM7_PART: Final = 153
UCS2_SINGLE: Final = 70
UCS2_PART: Final = 67

_GSM7_BASIC_CHARS: Final = frozenset(GSM7_BASIC) - {ESC}
_GSM7_EXTENSION_CHARS: Final = frozenset(GSM7_EXTENSION.values())
_GSM7_CHARS: Final = _GSM7_BASIC_CHARS | _GSM7_EXTENSION_CHARS
_LIMITS: Final = MappingProxyType({
    Encoding.GSM7: (GSM7_SINGLE, GSM7_PART),
    Encoding.UCS2: (UCS2_SINGLE, UCS2_PART),
})


@dataclass(frozen=True)
class SegmentInfo:
    """How a text goes out as SMS.

    ``units`` is the whole text's size: septets for GSM-7, UTF-16 code units for UCS-2.
    ``per_segment`` is the capacity of one part: 160 or 70 when the text fits one message,
    153 or 67 when it is concatenated. ``remaining`` is the units still free in the last part;
    an extension character or a surrogate pair needs two of them.
    """

    encoding: Encoding
    units: int
    segments: int
    per_segment: int
    remaining: int


@dataclass(frozen=True)
class _Layout:
    encoding: Encoding
    units: int
    per_segment: int
    bounds: tuple[int, ...]  # index in the text where each part after the first starts
    last_units: int


def detect_encoding(text: str) -> Encoding:
    """GSM-7 when every character of ``text`` is in the default alphabet or its extension table
    (an empty text included), UCS-2 otherwise. A literal ESC (``\\x1b``) is not GSM-7 text."""
    return Encoding.GSM7 if _GSM7_CHARS.issuperset(text) else Encoding.UCS2


def count_segments(text: str) -> SegmentInfo:
    """The encoding, size and number of SMS parts of ``text``, counted by packing it exactly as
    ``split_parts`` does (so a character moved to the next part is counted there)."""
    layout = _layout(text)
    return SegmentInfo(
        encoding=layout.encoding,
        units=layout.units,
        segments=len(layout.bounds) + 1,
        per_segment=layout.per_segment,
        remaining=layout.per_segment - layout.last_units,
    )


def split_parts(text: str) -> list[str]:
    """The text of each SMS part, in order; ``"".join`` of them is ``text``.

    One part (``[text]``, ``[""]`` for an empty text) when it fits a single message; otherwise
    parts of at most 153 septets or 67 code units, none splitting an escape sequence or a
    surrogate pair.
    """
    starts = (0, *_layout(text).bounds)
    ends = (*starts[1:], len(text))
    return [text[start:end] for start, end in zip(starts, ends, strict=True)]


def _layout(text: str) -> _Layout:
    encoding = detect_encoding(text)
    single, part = _LIMITS[encoding]
    units = _units(text, encoding)
    if units <= single:  # most texts: no per-character costs needed
        return _Layout(encoding, units, single, (), units)
    costs = [_cost(char, encoding) for char in text]
    bounds: list[int] = []
    used = 0
    for index, cost in enumerate(costs):
        if used + cost > part:
            bounds.append(index)
            used = 0
        used += cost
    return _Layout(encoding, units, part, tuple(bounds), used)


def _units(text: str, encoding: Encoding) -> int:
    """``sum(_cost(char, encoding) for char in text)``, counted by ``str`` methods."""
    if encoding is Encoding.GSM7:
        return len(text) + sum(text.count(char) for char in _GSM7_EXTENSION_CHARS)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _cost(char: str, encoding: Encoding) -> int:
    if encoding is Encoding.GSM7:
        return 2 if char in _GSM7_EXTENSION_CHARS else 1
    return 2 if ord(char) > 0xFFFF else 1
