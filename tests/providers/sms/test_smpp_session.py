"""One SMPP session's timers and window. Where a scenario SMSC cannot misbehave the way a test
needs (a bind never answered, a link gone silent), a bare TCP peer on loopback plays the SMSC,
writing the PDUs the test table shows byte for byte."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import smpp34

from tests.smsc.processes import run_smsc
from tidings.providers.sms.smpp.pdu import BindMode, Command, Pdu, PduReader, pack
from tidings.providers.sms.smpp.session import SessionSettings, SmppSession

Peer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def settings(port: int, **overrides: float | int) -> SessionSettings:
    values: dict[str, float | int] = {"response_timeout": 0.3, "connect_timeout": 1.0,
                                      **overrides}
    return SessionSettings(host="127.0.0.1", port=port, system_id="tidings",
                           password="s3cret", system_type="", mode=BindMode.TRANSCEIVER,
                           **values)  # type: ignore[arg-type]


async def ignore(pdu: Pdu) -> int:
    return 0


@asynccontextmanager
async def peer(behaviour: Peer) -> AsyncIterator[int]:
    """A TCP server on a loopback port running ``behaviour`` for each connection."""
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await behaviour(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


async def read_pdu(reader: asyncio.StreamReader) -> Pdu:
    header = await reader.readexactly(16)
    length = int.from_bytes(header[:4], "big")
    [pdu] = PduReader().feed(header + await reader.readexactly(length - 16))
    return pdu


async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # reads until the client gives up


async def hangs_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_pdu(reader)
    writer.close()


async def binds_then_goes_silent(reader: asyncio.StreamReader,
                                 writer: asyncio.StreamWriter) -> None:
    bind = await read_pdu(reader)
    writer.write(pack(Command.BIND_TRANSCEIVER_RESP, bind.sequence, b"SMSC\0"))
    await reader.read()


@pytest.mark.parametrize("behaviour", [never_answers, hangs_up],
                         ids=["never-answered", "link-closed"])
async def test_a_bind_that_gets_no_answer_fails_as_a_connection_error(behaviour: Peer) -> None:
    async with peer(behaviour) as port:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ConnectionError, match="bind was not answered"):
            await SmppSession.open(settings(port), ignore)
        assert loop.time() - started < 1.0


async def test_a_link_whose_enquire_link_goes_unanswered_is_dropped() -> None:
    async with peer(binds_then_goes_silent) as port:
        session = await SmppSession.open(settings(port, enquire_link_seconds=0.2), ignore)
        async with asyncio.timeout(2):
            reason = await session.closed

    assert reason == "enquire_link went unanswered"


async def test_no_more_submits_than_the_window_are_outstanding(tmp_path: Path) -> None:
    submit_sm = smpp34.SubmitSm("ACME", "14155550100", b"hi").encode()
    seen: list[int] = []
    with run_smsc("smpp34", {"response_delay_ms": 100, "receipts": False}, tmp_path) as smsc:
        session = await SmppSession.open(settings(smsc.port, window=3, response_timeout=5),
                                         ignore)
        submits = asyncio.gather(*(session.submit(submit_sm) for _ in range(9)))
        while not submits.done():
            seen.append(session.outstanding)
            await asyncio.sleep(0.01)
        answers = await submits
        await session.unbind()

    assert max(seen) == 3
    assert [answer.status for answer in answers] == [0] * 9
    assert len({answer.message_id for answer in answers}) == 9


async def test_an_idle_link_is_kept_alive_with_enquire_link(tmp_path: Path) -> None:
    with run_smsc("node", {"receipts": False}, tmp_path) as smsc:
        session = await SmppSession.open(settings(smsc.port, enquire_link_seconds=0.2), ignore)
        await smsc.until("enquire_link", count=2)
        assert not session.closed.done()
        await session.unbind()
