"""The SMPP connector against real SMSCs on loopback: the smpp34 server (PyPI) and the npm
``smpp`` package's server, each a child process playing a scenario (``tests/smsc``).

Each test binds one app's connector, sends through it, and reads what the SMSC saw
(``submit_sm`` fields, answers, receipts acknowledged) and what the connector handed on
(send outcomes, receipt and inbound events). Scenarios a server cannot play are listed only
for the other one (smpp34's server accepts every bind and cannot send generic_nack).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.smsc.processes import SMSC_KINDS, Smsc, SmscKind, run_smsc
from tidings.domain.states import MessageState
from tidings.providers.base import (
    Accepted,
    InboundMessage,
    InboundPart,
    OutboundSms,
    Retry,
    SendOutcome,
    StatusUpdate,
    WebhookEvent,
)
from tidings.providers.sms.smpp import Config
from tidings.providers.sms.smpp.connector import SmppConnector

PASSWORD = "s3cret"
RECIPIENT = "+14155550100"
BOTH = pytest.mark.parametrize("kind", SMSC_KINDS)
NODE_ONLY = pytest.mark.parametrize("kind", ["node"])
FAST = {"reconnect_min_seconds": 0.05, "reconnect_max_seconds": 0.2}


class Received:
    """What the connector handed on from deliver_sm; ``fail`` makes storing fail."""

    def __init__(self) -> None:
        self.events: list[WebhookEvent] = []
        self.fail = False

    async def store(self, events: Sequence[WebhookEvent]) -> None:
        if self.fail:
            raise RuntimeError("database unavailable")
        self.events.extend(events)

    async def until(self, count: int, timeout: float = 10.0) -> list[WebhookEvent]:
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                await asyncio.sleep(0.01)
        return self.events


@asynccontextmanager
async def bound(smsc: Smsc, received: Received, *, wait: bool = True,
                **config: Any) -> AsyncIterator[SmppConnector]:
    """A started connector for ``smsc`` (settings overridable); waits until it is ready."""
    settings = Config.model_validate({"host": smsc.host, "port": smsc.port,
                                      "system_id": "tidings", **FAST, **config})
    connector = SmppConnector("app-1", settings, PASSWORD, received.store)
    connector.start()
    try:
        if wait:
            async with asyncio.timeout(10):
                while not connector.ready:
                    await asyncio.sleep(0.01)
        yield connector
    finally:
        await connector.stop()


def sms(text: str = "Your code is 1234", *, to: str = RECIPIENT,
        sender: str | None = "ACME", n: int = 0) -> OutboundSms:
    encoding = "UCS-2" if any(ord(c) > 0xFF for c in text) else "GSM-7"
    return OutboundSms(message_id=f"msg-{n}", to=to, sender_id=sender, text=text,
                       encoding=encoding, segments=1, dlt_entity_id=None, dlt_template_id=None,
                       status_callback_url=None, idempotency_key=f"msg-{n}")


async def send_all(connector: SmppConnector, count: int) -> list[SendOutcome]:
    return list(await asyncio.gather(*(connector.send(sms(n=n)) for n in range(count))))


# --- the happy path ----------------------------------------------------------------------


@BOTH
async def test_messages_are_submitted_as_the_smsc_expects_and_their_receipts_come_back(
        kind: SmscKind, tmp_path: Path) -> None:
    received = Received()
    with run_smsc(kind, {}, tmp_path) as smsc:
        async with bound(smsc, received) as connector:
            outcomes = await send_all(connector, 40)
            reports = await received.until(40)
            acknowledged = await smsc.until("receipt", count=40, check=lambda events: all(
                event["status"] is not None for event in events))

    assert all(isinstance(outcome, Accepted) for outcome in outcomes)
    ids = [outcome.provider_ids[0] for outcome in outcomes if isinstance(outcome, Accepted)]
    assert len(set(ids)) == 40
    assert sorted((r.provider_message_id, r.state, r.provider_status) for r in reports
                  if isinstance(r, StatusUpdate)) == sorted(
        (id_, MessageState.DELIVERED, "DELIVRD") for id_ in ids)
    assert {event["status"] for event in acknowledged} == {0}
    first = smsc.events("submit_sm")[0]
    assert {key: first[key] for key in (
        "source_addr", "source_addr_ton", "source_addr_npi", "destination_addr",
        "dest_addr_ton", "dest_addr_npi", "esm_class", "data_coding", "registered_delivery",
        "short_message_hex")} == {
        "source_addr": "ACME", "source_addr_ton": 5, "source_addr_npi": 0,
        "destination_addr": "14155550100", "dest_addr_ton": 1, "dest_addr_npi": 1,
        "esm_class": 0, "data_coding": 0, "registered_delivery": 1,
        "short_message_hex": b"Your code is 1234".hex()}


@pytest.mark.parametrize(("sender", "address", "ton", "npi"), [
    ("ACME", "ACME", 5, 0),
    ("+14155550000", "14155550000", 1, 1),
    ("12345", "12345", 0, 1),
], ids=["alphanumeric", "international", "short-code"])
async def test_the_source_address_ton_and_npi_follow_the_senders_shape(
        tmp_path: Path, sender: str, address: str, ton: int, npi: int) -> None:
    with run_smsc("smpp34", {}, tmp_path) as smsc:
        async with bound(smsc, Received()) as connector:
            assert isinstance(await connector.send(sms(sender=sender)), Accepted)
            [submit] = await smsc.until("submit_sm")

    assert (submit["source_addr"], submit["source_addr_ton"], submit["source_addr_npi"]) == (
        address, ton, npi)


@pytest.mark.parametrize(("data_coding", "text", "sent"), [
    (0, "Café £5 {ok}", "Caf\x05 \x015 \x1b(ok\x1b)"),  # GSM-7 septets, one per octet
    (1, "Cafe {ok}", "Cafe {ok}"),  # IA5
    (3, "Café £5", "Café £5"),  # Latin-1
], ids=["smsc-default-alphabet", "ia5", "latin-1"])
async def test_gsm7_texts_go_in_the_configured_data_coding(
        tmp_path: Path, data_coding: int, text: str, sent: str) -> None:
    with run_smsc("smpp34", {"receipts": False}, tmp_path) as smsc:
        async with bound(smsc, Received(), data_coding=data_coding) as connector:
            assert isinstance(await connector.send(sms(text)), Accepted)
            [submit] = await smsc.until("submit_sm")

    assert submit["data_coding"] == data_coding
    assert bytes.fromhex(submit["short_message_hex"]) == sent.encode("latin-1")


async def test_the_throughput_cap_spaces_the_apps_submits(tmp_path: Path) -> None:
    with run_smsc("smpp34", {"receipts": False}, tmp_path) as smsc:
        async with bound(smsc, Received(), throughput=20) as connector:
            loop = asyncio.get_running_loop()
            started = loop.time()
            outcomes = await send_all(connector, 11)
            took = loop.time() - started

    assert all(isinstance(outcome, Accepted) for outcome in outcomes)
    assert 0.45 <= took < 1.5  # 11 submits at 20 a second: the last leaves 0.5 s after the first


# --- long messages -----------------------------------------------------------------------


@BOTH
@pytest.mark.parametrize(("text", "parts", "data_coding"), [
    ("Long message text. " * 16, 2, 0),  # 304 GSM-7 septets
    ("Привет! " * 20, 3, 8),  # 160 UCS-2 units
], ids=["gsm7", "ucs2"])
async def test_a_long_message_goes_as_concatenated_parts_each_with_its_own_id_and_receipt(
        kind: SmscKind, tmp_path: Path, text: str, parts: int, data_coding: int) -> None:
    received = Received()
    with run_smsc(kind, {}, tmp_path) as smsc:
        async with bound(smsc, received) as connector:
            outcome = await connector.send(sms(text))
            reports = await received.until(parts)
            submits = smsc.events("submit_sm")

    assert isinstance(outcome, Accepted)
    assert len(outcome.provider_ids) == parts
    assert {r.provider_message_id for r in reports if isinstance(r, StatusUpdate)} == set(
        outcome.provider_ids)
    headers = [bytes.fromhex(submit["short_message_hex"])[:6] for submit in submits]
    reference = headers[0][3]
    assert headers == [bytes([5, 0, 3, reference, parts, n]) for n in range(1, parts + 1)]
    assert {(s["esm_class"], s["data_coding"]) for s in submits} == {(0x40, data_coding)}


# --- receipts ----------------------------------------------------------------------------


@BOTH
@pytest.mark.parametrize(("ids", "written", "dlr_id_format"), [
    ("decimal", "same", "same"),
    ("decimal", "hex", "hex"),
    ("hex", "decimal", "decimal"),
    ("hex", "lower", "same"),
], ids=["same", "hex-of-decimal", "decimal-of-hex", "other-case"])
async def test_a_receipt_finds_its_message_however_the_smsc_writes_the_id(
        kind: SmscKind, tmp_path: Path, ids: str, written: str, dlr_id_format: str) -> None:
    received = Received()
    scenario = {"message_id_format": ids, "receipt_id_format": written}
    with run_smsc(kind, scenario, tmp_path) as smsc:
        async with bound(smsc, received, dlr_id_format=dlr_id_format) as connector:
            outcomes = await send_all(connector, 12)
            reports = await received.until(12)
            receipts = await smsc.until("receipt", count=12)

    assert {r.provider_message_id for r in reports} == {
        id_ for outcome in outcomes if isinstance(outcome, Accepted)
        for id_ in outcome.provider_ids}
    if written != "same":  # the SMSC really wrote them differently
        assert any(r["receipt_id"] != r["message_id"] for r in receipts)


@BOTH
@pytest.mark.parametrize("tlvs", [True, False], ids=["text-and-tlvs", "text-only"])
async def test_an_undelivered_receipt_fails_with_the_smscs_stat_and_error(
        kind: SmscKind, tmp_path: Path, tlvs: bool) -> None:
    received = Received()
    scenario = {"receipt_stats": {"14155550199": "UNDELIV"}, "receipt_err": "034",
                "receipt_stat": "by_destination", "receipt_tlvs": tlvs}
    with run_smsc(kind, scenario, tmp_path) as smsc:
        async with bound(smsc, received) as connector:
            await connector.send(sms(to="+14155550199"))
            [report] = await received.until(1)

    assert isinstance(report, StatusUpdate)
    assert (report.state, report.provider_status, report.error_code) == (
        MessageState.FAILED, "UNDELIV", "034")


@BOTH
async def test_a_receipt_that_could_not_be_stored_is_answered_with_a_temporary_error(
        kind: SmscKind, tmp_path: Path) -> None:
    received = Received()
    received.fail = True
    with run_smsc(kind, {}, tmp_path) as smsc:
        async with bound(smsc, received) as connector:
            assert isinstance(await connector.send(sms()), Accepted)
            [receipt] = await smsc.until("receipt", check=lambda events: events[0][
                "status"] is not None)

    assert receipt["status"] == 0x64  # ESME_RX_T_APPN: the SMSC keeps it and tries again


# --- inbound -----------------------------------------------------------------------------


@BOTH
async def test_a_deliver_sm_that_is_not_a_receipt_is_an_inbound_message(
        kind: SmscKind, tmp_path: Path) -> None:
    received = Received()
    scenario = {"receipts": False, "mo": [
        {"source_addr": "15550001111", "destination_addr": "12345",
         "short_message_hex": b"STOP all {msgs}".replace(b"{", b"\x1b(").replace(
             b"}", b"\x1b)").hex(), "data_coding": 0, "esm_class": 0},
        {"source_addr": "15550002222", "destination_addr": "12345",
         "short_message_hex": "Привет".encode("utf-16-be").hex(), "data_coding": 8,
         "esm_class": 0},
    ]}
    with run_smsc(kind, scenario, tmp_path) as smsc:
        async with bound(smsc, received):
            inbound = await received.until(2)
            acknowledged = await smsc.until("mo", count=2, check=lambda events: all(
                event["status"] is not None for event in events))

    assert sorted((m.from_number, m.to_number, m.text) for m in inbound
                  if isinstance(m, InboundMessage)) == [
        ("15550001111", "12345", "STOP all {msgs}"), ("15550002222", "12345", "Привет")]
    assert {event["status"] for event in acknowledged} == {0}


@BOTH
async def test_each_part_of_a_long_inbound_message_is_handed_on_with_its_place(
        kind: SmscKind, tmp_path: Path) -> None:
    received = Received()
    scenario = {"receipts": False, "mo": [
        {"source_addr": "15550001111", "destination_addr": "12345", "data_coding": 0,
         "esm_class": 0x40, "short_message_hex": "050003" "2a" "02" "02" + b"the rest".hex()},
        {"source_addr": "15550001111", "destination_addr": "12345", "data_coding": 0,
         "esm_class": 0x40, "short_message_hex": "050003" "2a" "02" "01" + b"A start, ".hex()},
    ]}
    with run_smsc(kind, scenario, tmp_path) as smsc:
        async with bound(smsc, received):
            parts = await received.until(2)
            acknowledged = await smsc.until("mo", count=2, check=lambda events: all(
                event["status"] is not None for event in events))

    assert sorted((p.reference, p.total, p.sequence, p.message.text) for p in parts
                  if isinstance(p, InboundPart)) == [
        (0x2A, 2, 1, "A start, "), (0x2A, 2, 2, "the rest")]
    assert {event["status"] for event in acknowledged} == {0}  # each stored, each answered


# --- the SMSC pushing back ---------------------------------------------------------------


@BOTH
@pytest.mark.parametrize(("scenario", "code"), [
    ({"throttle_every": 3}, "ESME_RTHROTTLED"),
    ({"queue_full_every": 3}, "ESME_RMSGQFUL"),
], ids=["throttled", "queue-full"])
async def test_a_message_a_busy_smsc_refuses_is_handed_back_to_be_retried_after_a_pause(
        kind: SmscKind, tmp_path: Path, scenario: dict[str, Any], code: str) -> None:
    with run_smsc(kind, {**scenario, "receipts": False}, tmp_path) as smsc:
        async with bound(smsc, Received()) as connector:
            outcomes = [await connector.send(sms(n=n)) for n in range(6)]

    assert [type(outcome).__name__ for outcome in outcomes] == [
        "Accepted", "Accepted", "Retry", "Accepted", "Accepted", "Retry"]
    assert [(outcome.code, outcome.retry_after) for outcome in outcomes
            if isinstance(outcome, Retry)] == [(code, 0.25), (code, 0.25)]


@BOTH
async def test_while_the_smsc_keeps_refusing_the_app_pauses_longer_before_each_submit(
        kind: SmscKind, tmp_path: Path) -> None:
    with run_smsc(kind, {"throttle_every": 1, "receipts": False}, tmp_path) as smsc:
        async with bound(smsc, Received()) as connector:
            loop = asyncio.get_running_loop()
            started = loop.time()
            outcomes = [await connector.send(sms(n=n)) for n in range(3)]
            took = loop.time() - started

    assert [outcome.retry_after for outcome in outcomes if isinstance(outcome, Retry)] == [
        0.25, 0.5, 1.0]
    assert took >= 0.75  # the second submit waited 0.25 s, the third 0.5 s


@NODE_ONLY
async def test_a_generic_nack_is_retried_and_slows_the_app_down(
        kind: SmscKind, tmp_path: Path) -> None:
    with run_smsc(kind, {"nack_every": 2, "receipts": False}, tmp_path) as smsc:
        async with bound(smsc, Received()) as connector:
            outcomes = [await connector.send(sms(n=n)) for n in range(2)]

    assert isinstance(outcomes[0], Accepted)
    assert isinstance(outcomes[1], Retry)
    assert (outcomes[1].code, outcomes[1].retry_after) == ("generic_nack", 0.25)


@BOTH
async def test_a_submit_without_an_answer_is_retried_after_the_response_timeout(
        kind: SmscKind, tmp_path: Path) -> None:
    with run_smsc(kind, {"no_response_every": 2, "receipts": False}, tmp_path) as smsc:
        async with bound(smsc, Received(), response_timeout_seconds=0.5) as connector:
            outcomes = [await connector.send(sms(n=n)) for n in range(3)]

    assert [type(outcome).__name__ for outcome in outcomes] == ["Accepted", "Retry", "Accepted"]
    assert isinstance(outcomes[1], Retry)
    assert outcomes[1].code == "smpp_timeout"


@BOTH
async def test_slow_answers_within_the_timeout_are_waited_for_with_the_window_full(
        kind: SmscKind, tmp_path: Path) -> None:
    with run_smsc(kind, {"response_delay_ms": 300, "receipts": False}, tmp_path) as smsc:
        async with bound(smsc, Received(), window=8, response_timeout_seconds=5) as connector:
            loop = asyncio.get_running_loop()
            started = loop.time()
            outcomes = await send_all(connector, 16)
            took = loop.time() - started

    assert all(isinstance(outcome, Accepted) for outcome in outcomes)
    assert 0.55 < took < 3.0  # two windows of 8, each waiting 0.3 s: not 16 waits in a row


# --- binds and links ---------------------------------------------------------------------


@NODE_ONLY
async def test_a_refused_bind_is_tried_again_after_a_backoff(kind: SmscKind,
                                                             tmp_path: Path) -> None:
    with run_smsc(kind, {"refuse_binds": 2, "receipts": False}, tmp_path) as smsc:
        async with bound(smsc, Received()) as connector:
            outcome = await connector.send(sms())
            binds = smsc.events("bind")

    assert isinstance(outcome, Accepted)
    assert [bind["accepted"] for bind in binds] == [False, False, True]


@NODE_ONLY
async def test_a_wrong_password_never_binds_and_sends_are_handed_back(
        kind: SmscKind, tmp_path: Path) -> None:
    with run_smsc(kind, {"password": "other", "receipts": False}, tmp_path) as smsc:
        async with bound(smsc, Received(), wait=False,
                         response_timeout_seconds=0.5) as connector:
            await smsc.until("bind", count=2)
            outcome = await connector.send(sms())
            problem = connector.last_error

    assert isinstance(outcome, Retry)
    assert outcome.code == "smpp_not_bound"
    assert problem is not None
    assert "bind refused: ESME_RINVPASWD" in problem
    assert PASSWORD not in (problem + outcome.reason)


@BOTH
@pytest.mark.parametrize("ending", ["unbind_after", "drop_after"])
async def test_a_link_the_smsc_ends_mid_stream_is_bound_again_and_sending_goes_on(
        kind: SmscKind, tmp_path: Path, ending: str) -> None:
    with run_smsc(kind, {ending: 5, "receipts": False}, tmp_path) as smsc:
        async with bound(smsc, Received()) as connector:
            outcomes = []
            for n in range(12):
                outcome = await connector.send(sms(n=n))
                while isinstance(outcome, Retry):  # as the dispatcher would, later
                    await asyncio.sleep(0.05)
                    outcome = await connector.send(sms(n=n))
                outcomes.append(outcome)
            binds = smsc.events("bind")

    assert all(isinstance(outcome, Accepted) for outcome in outcomes)
    assert len(binds) == 2


@BOTH
async def test_transmitter_and_receiver_binds_send_on_one_and_receive_on_the_other(
        kind: SmscKind, tmp_path: Path) -> None:
    received = Received()
    with run_smsc(kind, {}, tmp_path) as smsc:
        async with bound(smsc, received, bind_mode="transmitter_receiver") as connector:
            await smsc.until("bind", count=2)
            outcomes = await send_all(connector, 5)
            reports = await received.until(5)
            modes = sorted(bind["mode"] for bind in smsc.events("bind"))

    assert {r.provider_message_id for r in reports} == {
        o.provider_ids[0] for o in outcomes if isinstance(o, Accepted)}
    assert modes[1] == "transmitter"


@BOTH
async def test_a_stopped_connector_unbinds(kind: SmscKind, tmp_path: Path) -> None:
    with run_smsc(kind, {}, tmp_path) as smsc:
        async with bound(smsc, Received()):
            pass
        ended = await smsc.until(check=lambda events: any(
            event["event"] in ("unbind", "disconnect") for event in events))

    assert ended[-1]["event"] in ("unbind", "disconnect")
