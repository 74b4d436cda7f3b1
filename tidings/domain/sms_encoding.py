"""SMS text on the SMPP wire: the octets of ``short_message`` for a text, and the text of one.

SMPP 3.4 §5.2.19 ``data_coding`` says how ``short_message`` is encoded. Tidings sends:

- ``0`` ("SMSC default alphabet"), carrying the GSM 7-bit default alphabet of TS 23.038 §6.2.1
  **unpacked**: one septet per octet, top bit clear, an extension character as ESC (``0x1B``)
  and its code (§6.2.1.1). The SMSC packs the septets for the air interface. What "SMSC default
  alphabet" means is the SMSC's choice: most take GSM-7 as here, some take Latin-1 or ASCII,
  and some treat ``@`` (septet ``0x00``, a NUL octet) as the end of the message. For SMSCs
  that want them, ``smpp_parts`` writes GSM-7 texts as ``1`` (IA5, i.e. ASCII) or ``3``
  (Latin-1) instead; which one is an account setting, not something this module guesses.
- ``8`` (UCS-2), carried as UTF-16BE: a character outside the BMP is a surrogate pair (two code
  units), as handsets and SMSCs exchange it in practice.

Which of the two a text needs, and where it splits into parts, is ``segments.detect_encoding``
and ``segments.split_parts``: this module only turns those parts into octets. A concatenated
part carries the 6-octet user data header of TS 23.040 §9.2.3.24.1 (``05 00 03`` reference,
total, sequence) at the start of ``short_message``, and the sender sets UDHI (``0x40``) in
``esm_class``. In unpacked GSM-7 a part is therefore up to 6 + 153 = 159 octets: the header
octets are followed by one octet per septet, with no fill bits (the SMSC adds the fill bit when
it packs). That is more than 140 and correct for SMPP with ``data_coding`` 0; the SMPP limit on
``short_message`` is 254 octets. A UCS-2 part is up to 6 + 134 = 140 octets.

Inbound (deliver_sm), ``decode_short_message`` turns octets into text for every ``data_coding``
without raising, and ``parse_udh`` separates a user data header from the payload when UDHI is
set. Decoding the payload comes after ``parse_udh``: the header is octets, not text.

Pure: no I/O, no state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from tidings.domain.segments import (
    ESC,
    GSM7_BASIC,
    GSM7_EXTENSION,
    Encoding,
    detect_encoding,
    split_parts,
)

DATA_CODING_DEFAULT: Final = 0x00
"""SMPP ``data_coding`` for the SMSC default alphabet, sent here as unpacked GSM-7."""
DATA_CODING_IA5: Final = 0x01
DATA_CODING_LATIN1: Final = 0x03
DATA_CODING_UCS2: Final = 0x08
ESM_CLASS_UDHI: Final = 0x40
"""The ``esm_class`` bit saying ``short_message`` starts with a user data header."""

REPLACEMENT: Final = "\ufffd"

_ESC_OCTET: Final = 0x1B
_ESC_ESC_CHAR: Final = " "  # TS 23.038 §6.2.1.1: ESC ESC is displayed as a space

_GSM7_ENCODE: Final = MappingProxyType({
    **{char: bytes([septet]) for septet, char in enumerate(GSM7_BASIC) if char != ESC},
    **{char: bytes([_ESC_OCTET, code]) for code, char in GSM7_EXTENSION.items()},
})

# SMPP 3.4 §5.2.19: data_coding values taken as plain single-byte character sets.
_CHARSETS: Final = MappingProxyType({
    DATA_CODING_IA5: "ascii",
    DATA_CODING_LATIN1: "latin-1",
    0x06: "iso8859-5",  # Cyrillic
    0x07: "iso8859-8",  # Latin/Hebrew
})

_CONCAT_8BIT: Final = 0x00
_CONCAT_16BIT: Final = 0x08
_CONCAT_IE_LENGTH: Final = MappingProxyType({_CONCAT_8BIT: 3, _CONCAT_16BIT: 4})


@dataclass(frozen=True)
class SmsPart:
    """One submit_sm's worth of a message.

    ``short_message`` is the whole field, user data header included when the message is
    concatenated. ``esm_class_udhi`` is True exactly when it starts with a header: the caller
    ORs ``ESM_CLASS_UDHI`` (``0x40``) into ``esm_class``. ``data_coding`` is 8 for UCS-2, else
    the one ``smpp_parts`` was given for GSM-7 texts: 0 (unpacked GSM-7, the default), 1 or 3.
    """

    short_message: bytes
    esm_class_udhi: bool
    data_coding: int


@dataclass(frozen=True)
class Concatenation:
    """A part's place in a concatenated message (TS 23.040 §9.2.3.24.1 and .8).

    ``reference`` is the same in every part of one message, from one sender;
    ``reference_bits`` (8 or 16) says which IE carried it, so a reassembly key should hold
    both (with the source address and ``total``). ``sequence`` counts from 1 to ``total``.
    """

    reference: int
    total: int
    sequence: int
    reference_bits: int


def encode_gsm7(text: str) -> bytes:
    """``text`` in the GSM 7-bit default alphabet, unpacked: one octet per septet, an
    extension character as ``0x1B`` and its code.

    Raises ``ValueError`` naming the first character (and its index) outside the alphabet
    and its extension table; a literal ESC is such a character, as in ``detect_encoding``.
    """
    out = bytearray()
    for index, char in enumerate(text):
        octets = _GSM7_ENCODE.get(char)
        if octets is None:
            raise ValueError(f"{char!r} at index {index} is not in the GSM 7-bit alphabet")
        out += octets
    return bytes(out)


def decode_gsm7(data: bytes) -> str:
    """The text of unpacked GSM-7 octets. Never raises.

    Tolerance follows TS 23.038 §6.2.1.1 where it has a rule: ESC before a code the extension
    table does not define decodes as that code's basic character (ESC ``0x65`` is ``€``, ESC
    ``0x41`` is ``A``), and ESC ESC (reserved for a further table) decodes as one space. Where
    it has none: a trailing lone ESC decodes as a space (something was there, most likely cut
    off mid-escape), and an octet with the top bit set is not a septet and decodes as U+FFFD,
    together with an ESC before it; nothing is dropped silently.
    """
    chars: list[str] = []
    index = 0
    while index < len(data):
        octet = data[index]
        index += 1
        if octet != _ESC_OCTET:
            chars.append(GSM7_BASIC[octet] if octet < 0x80 else REPLACEMENT)
            continue
        if index == len(data):
            chars.append(_ESC_ESC_CHAR)
            continue
        code = data[index]
        index += 1
        if code >= 0x80:
            chars.append(REPLACEMENT)
        elif code == _ESC_OCTET:
            chars.append(_ESC_ESC_CHAR)
        else:
            chars.append(GSM7_EXTENSION.get(code, GSM7_BASIC[code]))
    return "".join(chars)


def encode_ucs2(text: str) -> bytes:
    """``text`` as UTF-16BE, two octets per code unit, a non-BMP character as a surrogate pair.

    Raises ``ValueError`` (``UnicodeEncodeError``) for a lone surrogate in ``text``, which is
    not a character and has no valid encoding.
    """
    return text.encode("utf-16-be")


def decode_ucs2(data: bytes) -> str:
    """The text of UTF-16BE octets (UCS-2 is its BMP subset), surrogate pairs joined. Never
    raises: a lone surrogate or a trailing odd octet decodes as U+FFFD."""
    return data.decode("utf-16-be", errors="replace")


def decode_short_message(data: bytes, data_coding: int) -> str:
    """The text of an inbound ``short_message`` (without its user data header) by
    ``data_coding``. Never raises; an undecodable octet becomes U+FFFD.

    - 0, and the TS 23.038 coding groups that mean the default alphabet (``0xC0``-``0xDF``
      message waiting, ``0xF0``-``0xF3`` message class): unpacked GSM-7, ``decode_gsm7``.
    - 1 IA5 (ASCII), 3 Latin-1, 6 ISO-8859-5, 7 ISO-8859-8: those character sets.
    - 8, and ``0xE0``-``0xEF`` (message waiting, UCS-2): ``decode_ucs2``.
    - Anything else (2 and 4 octet-unspecified binary, ``0xF4``-``0xF7`` 8-bit data, the
      Japanese and Korean sets, reserved values): Latin-1, which maps each octet to the code
      point of the same value. That is not a claim that the octets are Latin-1 text; it is the
      one decoding that never fails and loses nothing, so ``text.encode("latin-1")`` gives the
      octets back. A caller that must not show binary as text checks ``data_coding`` itself.
    """
    if data_coding == DATA_CODING_DEFAULT or 0xC0 <= data_coding <= 0xDF or (
            0xF0 <= data_coding <= 0xFF and not data_coding & 0x04):
        return decode_gsm7(data)
    if data_coding == DATA_CODING_UCS2 or 0xE0 <= data_coding <= 0xEF:
        return decode_ucs2(data)
    return data.decode(_CHARSETS.get(data_coding, "latin-1"), errors="replace")


def _encode_charset(charset: str, data_coding: int) -> Callable[[str], bytes]:
    """An encoder raising ``ValueError`` (not ``UnicodeEncodeError``) naming the character."""

    def encode(text: str) -> bytes:
        try:
            return text.encode(charset)
        except UnicodeEncodeError as exc:
            char = text[exc.start]
            raise ValueError(f"{char!r} at index {exc.start} is not in {charset} "
                             f"(data_coding {data_coding})") from None
    return encode


_GSM7_TEXT_ENCODERS: Final[Mapping[int, Callable[[str], bytes]]] = MappingProxyType({
    DATA_CODING_DEFAULT: encode_gsm7,
    DATA_CODING_IA5: _encode_charset("ascii", DATA_CODING_IA5),
    DATA_CODING_LATIN1: _encode_charset("latin-1", DATA_CODING_LATIN1),
})
"""``data_coding`` → how a GSM-7 text is written in ``short_message`` under it."""


def smpp_parts(text: str, reference: int,
               data_coding: int = DATA_CODING_DEFAULT) -> list[SmsPart]:
    """The submit_sm parts for ``text``, in order.

    The encoding is ``detect_encoding(text)``. UCS-2 texts go out as UTF-16BE with
    ``data_coding`` 8. GSM-7 texts go out with the ``data_coding`` given: 0 (the default) as
    unpacked GSM-7 septets; 1 (IA5) or 3 (Latin-1), for SMSCs that want GSM-7 texts in those
    and convert them for the air interface themselves, as ASCII or Latin-1 octets.

    A text that fits one message (160 septets or 70 code units; an empty text included) is one
    part without a header. A longer one is one part per ``split_parts(text)`` piece, each
    starting with ``05 00 03 <reference> <total> <sequence>`` (sequence from 1), so each
    part's user data is at most 6 + 153 octets (GSM-7 unpacked; fewer in IA5 or Latin-1, where
    an extension character is one octet) or 6 + 134 octets (UCS-2). Parts are cut by septets
    in every GSM-7 case, since that is what the SMSC sends on.

    ``reference`` (0-255) must differ between concatenated messages in flight to the same
    recipient; choosing it is the caller's. Raises ``ValueError`` when it is out of range;
    when ``data_coding`` is not 0, 1 or 3; when a GSM-7 text holds a character that IA5 or
    Latin-1 lacks (``€`` and the Greek capitals in both, ``£``, ``é`` and the like in IA5),
    rather than sending it as something else or counting its parts differently from
    ``count_segments``; or when the text needs more than 255 parts (the header's total is one
    octet).
    """
    if not 0 <= reference <= 0xFF:
        raise ValueError(f"concatenation reference {reference} is not in 0-255")
    encode = _GSM7_TEXT_ENCODERS.get(data_coding)
    if encode is None:
        raise ValueError(f"GSM-7 texts cannot go out with data_coding {data_coding}; "
                         "choose 0, 1 or 3")
    if detect_encoding(text) is Encoding.UCS2:
        encode, data_coding = encode_ucs2, DATA_CODING_UCS2
    pieces = split_parts(text)
    if len(pieces) == 1:
        return [SmsPart(encode(text), esm_class_udhi=False, data_coding=data_coding)]
    total = len(pieces)
    if total > 0xFF:
        raise ValueError(f"text needs {total} parts; concatenation allows at most 255")
    return [
        SmsPart(bytes([0x05, _CONCAT_8BIT, 0x03, reference, total, sequence]) + encode(piece),
                esm_class_udhi=True, data_coding=data_coding)
        for sequence, piece in enumerate(pieces, start=1)
    ]


def parse_udh(short_message: bytes) -> tuple[Concatenation | None, bytes]:
    """Split a ``short_message`` sent with UDHI set into its concatenation info and payload.

    The first octet is the header length (UDHL); the payload is what follows the header, still
    encoded (pass it to ``decode_short_message``). Within the header, information elements are
    read by TS 23.040 §9.2.3.24: elements other than concatenation are skipped; a concatenation
    element (IEI ``0x00``, 8-bit reference, or ``0x08``, 16-bit) with the wrong length, a total
    or sequence of 0, or a sequence above the total is ignored; when there are several, the
    last one counts; and when the last element runs past the header, the whole header is
    ignored (``None``), though the payload still starts after UDHL octets.

    Raises ``ValueError`` when there is no header to read: an empty ``short_message``, or a
    UDHL pointing past its end (the payload's start is then unknown).
    """
    if not short_message:
        raise ValueError("UDHI is set but short_message is empty")
    header_end = 1 + short_message[0]
    if header_end > len(short_message):
        raise ValueError(f"user data header length {short_message[0]} exceeds short_message "
                         f"({len(short_message)} octets)")
    header, payload = short_message[1:header_end], short_message[header_end:]
    found: Concatenation | None = None
    index = 0
    while index < len(header):
        if index + 2 > len(header) or index + 2 + header[index + 1] > len(header):
            return None, payload
        iei, length = header[index], header[index + 1]
        data = header[index + 2:index + 2 + length]
        index += 2 + length
        if _CONCAT_IE_LENGTH.get(iei) != length:
            continue
        reference = data[0] if iei == _CONCAT_8BIT else int.from_bytes(data[:2], "big")
        total, sequence = data[-2], data[-1]
        if total and 1 <= sequence <= total:
            found = Concatenation(reference, total, sequence,
                                  reference_bits=8 if iei == _CONCAT_8BIT else 16)
    return found, payload
