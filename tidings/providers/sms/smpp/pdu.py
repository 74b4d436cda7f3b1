"""SMPP 3.4 PDUs: the header, the command ids and statuses the connector uses, and the small
bodies it writes itself (binds, responses). ``submit_sm`` and ``deliver_sm`` go through the
smpp34 codec (``smpp34.SubmitSm.encode`` and ``smpp34.decode``).

Every PDU is a 16-octet header (``command_length``, ``command_id``, ``command_status``,
``sequence_number``, big-endian) and a body; responses have the request's id with bit 31 set
and echo its sequence number.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

HEADER: Final = struct.Struct("!IIII")
HEADER_SIZE: Final = HEADER.size
MAX_PDU_SIZE: Final = 64 * 1024
"""Longer than any real PDU (a submit_sm is at most a few hundred octets): a length past it
means the stream is out of step, and the session drops the link."""
INTERFACE_VERSION: Final = 0x34
RESPONSE_BIT: Final = 0x80000000
MAX_SEQUENCE: Final = 0x7FFFFFFF


class Command(IntEnum):
    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015


class Status(IntEnum):
    """The ``command_status`` values the connector names (SMPP 3.4 §5.1.3)."""

    ESME_ROK = 0x00
    ESME_RINVMSGLEN = 0x01
    ESME_RINVCMDLEN = 0x02
    ESME_RINVCMDID = 0x03
    ESME_RINVBNDSTS = 0x04
    ESME_RALYBND = 0x05
    ESME_RSYSERR = 0x08
    ESME_RINVSRCADR = 0x0A
    ESME_RINVDSTADR = 0x0B
    ESME_RINVMSGID = 0x0C
    ESME_RBINDFAIL = 0x0D
    ESME_RINVPASWD = 0x0E
    ESME_RINVSYSID = 0x0F
    ESME_RMSGQFUL = 0x14
    ESME_RINVSERTYP = 0x15
    ESME_RINVESMCLASS = 0x43
    ESME_RSUBMITFAIL = 0x45
    ESME_RINVSRCTON = 0x48
    ESME_RINVSRCNPI = 0x49
    ESME_RINVDSTTON = 0x50
    ESME_RINVDSTNPI = 0x51
    ESME_RINVSYSTYP = 0x53
    ESME_RTHROTTLED = 0x58
    ESME_RINVDCS = 0x104
    ESME_RX_T_APPN = 0x64
    ESME_RX_P_APPN = 0x65
    ESME_RX_R_APPN = 0x66
    ESME_RUNKNOWNERR = 0xFF


def status_name(status: int) -> str:
    """``ESME_RTHROTTLED`` for a known status, ``0x00000401`` (vendor range) otherwise."""
    try:
        return Status(status).name
    except ValueError:
        return f"0x{status:08X}"


class BindMode(IntEnum):
    """What a bind may do: the request's command id for each mode."""

    TRANSMITTER = Command.BIND_TRANSMITTER
    RECEIVER = Command.BIND_RECEIVER
    TRANSCEIVER = Command.BIND_TRANSCEIVER

    @property
    def sends(self) -> bool:
        return self is not BindMode.RECEIVER


@dataclass(frozen=True)
class Pdu:
    """One PDU off the wire: its header and undecoded body."""

    command_id: int
    status: int
    sequence: int
    body: bytes

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE_BIT)

    def wire(self) -> bytes:
        """The PDU as sent: header then body."""
        return pack(self.command_id, self.sequence, self.body, self.status)


def pack(command_id: int, sequence: int, body: bytes = b"", status: int = 0) -> bytes:
    """A complete PDU: the header with ``command_length`` computed, then ``body``."""
    return HEADER.pack(HEADER_SIZE + len(body), command_id, status, sequence) + body


def c_string(value: str, limit: int) -> bytes:
    """A C-Octet String: ASCII, NUL-terminated, at most ``limit`` octets with the NUL.
    Raises ``ValueError`` past the limit (SMPP fields have fixed maxima)."""
    encoded = value.encode("ascii") + b"\0"
    if len(encoded) > limit:
        raise ValueError(f"{value!r} is longer than {limit - 1} characters")
    return encoded


def read_c_string(body: bytes, offset: int = 0) -> tuple[str, int]:
    """The C-Octet String at ``offset`` and the offset after its NUL (a missing NUL ends the
    string at the end of the body, as tolerant SMSCs are read)."""
    end = body.find(b"\0", offset)
    if end < 0:
        return body[offset:].decode("latin-1"), len(body)
    return body[offset:end].decode("latin-1"), end + 1


def bind_body(system_id: str, password: str, system_type: str, addr_ton: int, addr_npi: int,
              address_range: str) -> bytes:
    """The body of a bind_transmitter, bind_receiver or bind_transceiver (SMPP 3.4 §4.1)."""
    return (c_string(system_id, 16) + c_string(password, 9) + c_string(system_type, 13)
            + bytes((INTERFACE_VERSION, addr_ton, addr_npi)) + c_string(address_range, 41))


def message_id_of(response: Pdu) -> str:
    """The ``message_id`` of a submit_sm_resp body ("" when the SMSC sent none)."""
    return read_c_string(response.body)[0] if response.body else ""


class PduReader:
    """Splits a byte stream into PDUs; ``feed`` takes what the socket read and answers the
    complete PDUs it finished. Raises ``ValueError`` on an impossible length (the link is out
    of step and must be dropped)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Pdu]:
        buffer = self._buffer
        buffer += data
        pdus: list[Pdu] = []
        offset = 0
        while len(buffer) - offset >= HEADER_SIZE:
            length, command_id, status, sequence = HEADER.unpack_from(buffer, offset)
            if length < HEADER_SIZE or length > MAX_PDU_SIZE:
                raise ValueError(f"impossible command_length {length}")
            if len(buffer) - offset < length:
                break
            pdus.append(Pdu(command_id, status, sequence,
                            bytes(buffer[offset + HEADER_SIZE:offset + length])))
            offset += length
        if offset:
            del buffer[:offset]
        return pdus
