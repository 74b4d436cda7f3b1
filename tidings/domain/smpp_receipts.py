"""SMPP 3.4 delivery receipts: what a receipt deliver_sm says, and which submit it answers.

A receipt arrives as a deliver_sm (``esm_class`` bits 2-5 = ``0x04``; telling it apart from an
inbound message is the connector's job). It says what happened in two places:

- **TLVs** (SMPP 3.4 §5.3.2): ``receipted_message_id`` (``0x001E``, the id from
  submit_sm_resp, a C-octet string), ``message_state`` (``0x0427``, one octet) and
  ``network_error_code`` (``0x0423``, network type octet and a 2-octet code). These are
  normative.
- **The text** of ``short_message``, in the format SMPP 3.4 Appendix B gives only as an
  example, which SMSCs nevertheless all imitate, each a little differently::

      id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm
      stat:DDDDDDD err:E text:...

``parse_receipt`` reads both and lets the TLVs win where both speak: the id, the state and the
error come from the TLVs when present and well-formed, the dates and text (which have no TLV)
from the text. An SMSC whose TLV and text disagree is wrong in one of them, and the TLV is the
one the protocol defines.

``RECEIPT_STATES`` maps the seven-letter stat words onto Tidings' states; a word not in it
(``UNKNOWN`` included) is for the caller to record as an unknown status word.

Many SMSCs write the id differently in the receipt than in submit_sm_resp (hex in one, decimal
in the other; upper case in one, lower in the other). ``submit_key`` and ``receipt_key`` turn
both into one canonical key under the account's ``DlrIdFormat``, so the connector stores
``submit_key`` at submit time and looks up ``receipt_key`` when the receipt comes.

Pure: no I/O, no state.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from tidings.domain.sms_encoding import DATA_CODING_UCS2
from tidings.domain.states import MessageState

TLV_RECEIPTED_MESSAGE_ID: Final = 0x001E
TLV_NETWORK_ERROR_CODE: Final = 0x0423
TLV_MESSAGE_STATE: Final = 0x0427

MESSAGE_STATE_WORDS: Final = MappingProxyType({
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
})
"""SMPP 3.4 §5.3.2.35 ``message_state`` values → the Appendix B stat word for each."""

RECEIPT_STATES: Final[Mapping[str, MessageState]] = MappingProxyType({
    "DELIVRD": MessageState.DELIVERED,
    "UNDELIV": MessageState.FAILED,
    "EXPIRED": MessageState.FAILED,
    "DELETED": MessageState.FAILED,
    "REJECTD": MessageState.FAILED,
    "ACCEPTD": MessageState.SENT,
    "ENROUTE": MessageState.SENT,
})
"""Stat word → the state a report carries. ``UNKNOWN`` is deliberately absent: the SMSC does
not know, and the caller records it as an unknown status word rather than guessing."""


@dataclass(frozen=True)
class Receipt:
    """What one delivery receipt says.

    ``stat`` is the upper-case stat word (``DELIVRD``…), whether it came from the text or from
    the ``message_state`` TLV. ``err`` is the text's ``err`` value verbatim (SMSC-specific,
    often ``000``), or ``"<network type>:<code>"`` in decimal from the ``network_error_code``
    TLV (``"3:27"``: GSM, MAP error 27); the colon tells the two apart. The dates are read as
    UTC: the format carries no zone, and the SMSC's clock is what they are on.
    """

    message_id: str
    stat: str
    err: str | None
    submitted_at: datetime | None
    done_at: datetime | None
    text: str | None


class DlrIdFormat(StrEnum):
    """How the receipt's id is written relative to submit_sm_resp's ``message_id``."""

    SAME = "same"
    """The same id, perhaps in another letter case."""
    HEX = "hex"
    """The receipt writes in hex the id that submit_sm_resp gave in decimal."""
    DECIMAL = "decimal"
    """The receipt writes in decimal the id that submit_sm_resp gave in hex."""


# A key is a word (or "submit date"/"done date", with a space or an underscore) at the start or
# after whitespace, then optional spaces and a colon.
_KEY: Final = re.compile(r"(?:^|(?<=\s))((?:submit|done)[ _]+date|[a-z][a-z0-9_-]*)[ \t]*:",
                         re.IGNORECASE)
_TEXT_KEY: Final = "text"
_DATE: Final = re.compile(r"([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})?")
# An id in each base, group 1 its digits; applied to the stripped, lower-cased id. ASCII digits
# only, unlike int(), which also takes signs, underscores and other scripts' digits.
_DIGITS: Final = MappingProxyType({
    10: re.compile(r"([0-9]+)"),
    16: re.compile(r"(?:0x)?([0-9a-f]+)"),
})


def parse_receipt_text(text: str) -> Receipt | None:
    """Read a receipt in the Appendix B format; ``None`` when it has no ``id`` or no ``stat``.

    Tolerant, because SMSCs are: keys in any letter case and any order, spaces around values
    and before the colon, ``submit_date`` for ``submit date``, missing and unknown fields (an
    unknown ``key:value`` ends the value before it and is otherwise ignored). The first
    ``text:`` takes everything after it verbatim, colons and spaces included, since it is the
    start of the message itself; so keys after it are part of the text, not fields. When a key
    repeats, its first value counts. Dates are ``YYMMDDhhmm`` or ``YYMMDDhhmmss`` in 20YY; a
    date in another shape or not a real date is ``None``, not an error. An empty ``err`` is
    ``None``. Never raises.
    """
    return _receipt(text)


def parse_receipt(short_message: bytes, tlvs: Mapping[int, bytes],
                  data_coding: int = 0) -> Receipt | None:
    """Read a receipt deliver_sm from its ``short_message`` and TLVs (tag → value octets).

    The id, stat and err come from ``receipted_message_id``, ``message_state`` and
    ``network_error_code`` when present and well-formed (a TLV with the wrong length or an
    unknown state value counts as absent), otherwise from the text, read as
    ``parse_receipt_text`` reads it; the dates and ``text`` only exist in the text. So a
    TLV-only receipt (empty ``short_message``) has no dates, and a text lacking a stat still
    gives its id and dates when the TLV gives the stat. ``None`` when neither says an id, or
    neither says a stat.

    ``short_message`` is read as UTF-16BE when ``data_coding`` is 8 (some SMSCs send receipts
    in UCS-2), otherwise as Latin-1, octet for code point: the keys and values are ASCII, and
    reading ``data_coding`` 0 as GSM-7 would turn an ``_`` in an id into ``§``. Trailing NULs
    are dropped. Never raises.
    """
    raw = (short_message.decode("utf-16-be", errors="replace")
           if data_coding == DATA_CODING_UCS2 else short_message.decode("latin-1"))
    return _receipt(raw.rstrip("\x00"),
                    message_id=_tlv_message_id(tlvs.get(TLV_RECEIPTED_MESSAGE_ID)),
                    stat=_tlv_stat(tlvs.get(TLV_MESSAGE_STATE)),
                    err=_tlv_err(tlvs.get(TLV_NETWORK_ERROR_CODE)))


def submit_key(submit_id: str, fmt: DlrIdFormat) -> str:
    """The matching key for the ``message_id`` of a submit_sm_resp (see ``receipt_key``).

    ``SAME``: the id stripped and lower-cased (SMSCs change case, so ids match
    case-insensitively). ``HEX``: the id read as decimal; ``DECIMAL``: the id read as hex (an
    optional ``0x`` allowed); either way the key is the integer's decimal string, without
    leading zeros. An id that is not a number in that base gets the ``SAME`` key instead.
    Never raises: a malformed id from the SMSC must not stop the session that carries it. The
    fallback key is never a plain decimal number, so it cannot collide with a numeric key: it
    matches only the same malformed id on the other side, or nothing, and an unmatched receipt
    is recorded as such instead of updating the wrong message.
    """
    base = {DlrIdFormat.HEX: 10, DlrIdFormat.DECIMAL: 16}.get(fmt)
    return _key(submit_id, base)


def receipt_key(receipt_id: str, fmt: DlrIdFormat) -> str:
    """The matching key for a receipt's id: equal to ``submit_key`` of the id it answers.

    ``SAME``: stripped and lower-cased. ``HEX``: the id read as hex (``"3e8"`` and
    ``"0003E8"`` are ``"1000"``, as is submit id ``"1000"``); ``DECIMAL``: read as decimal
    (``"1000"``, matching submit id ``"3E8"``). Falls back to the ``SAME`` key, never raising,
    as ``submit_key`` does.
    """
    base = {DlrIdFormat.HEX: 16, DlrIdFormat.DECIMAL: 10}.get(fmt)
    return _key(receipt_id, base)


def _key(value: str, base: int | None) -> str:
    same = value.strip().lower()
    if base is None:
        return same
    match = _DIGITS[base].fullmatch(same)
    if match is None:
        return same
    try:
        return str(int(match.group(1), base))
    except ValueError:  # past Python's int/str digit limit: no SMSC id is that long
        return same


def _receipt(text: str, message_id: str | None = None, stat: str | None = None,
             err: str | None = None) -> Receipt | None:
    """The receipt ``text`` gives, its id, stat and err replaced by those given (from TLVs)."""
    text_at = None
    fields: dict[str, str] = {}
    matches = list(_KEY.finditer(text))
    for index, match in enumerate(matches):
        key = re.sub(r"[ _]+", " ", match.group(1).lower())
        if key == _TEXT_KEY:
            text_at = match.end()
            break
        value_end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        fields.setdefault(key, text[match.end():value_end].strip())
    message_id = message_id or fields.get("id")
    stat = stat or fields.get("stat", "").upper()
    if not message_id or not stat:
        return None
    return Receipt(
        message_id=message_id,
        stat=stat,
        err=err or fields.get("err") or None,
        submitted_at=_parse_date(fields.get("submit date")),
        done_at=_parse_date(fields.get("done date")),
        text=text[text_at:] if text_at is not None else None,
    )


def _parse_date(value: str | None) -> datetime | None:
    match = _DATE.fullmatch(value) if value is not None else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(group or 0) for group in match.groups())
    try:
        return datetime(2000 + year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:  # digits that are not a date: month 13, 31 April, hour 24…
        return None


def _tlv_message_id(value: bytes | None) -> str | None:
    if value is None:
        return None
    return value.split(b"\x00", 1)[0].decode("latin-1").strip() or None


def _tlv_stat(value: bytes | None) -> str | None:
    if value is None or len(value) != 1:
        return None
    return MESSAGE_STATE_WORDS.get(value[0])


def _tlv_err(value: bytes | None) -> str | None:
    if value is None or len(value) != 3:
        return None
    return f"{value[0]}:{int.from_bytes(value[1:], 'big')}"
