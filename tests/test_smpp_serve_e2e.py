"""SMPP as an operator runs it: ``tidings serve`` (whose worker process holds the bind) and the
smpp34 SMSC (``tests.smsc``), both real processes on 127.0.0.1. A tenant made with the CLI
creates an SMPP app over HTTP and sends through the API; every message ends ``delivered`` by
the SMSC's receipts, the SMSC's inbound message shows up in the API, and the bind password
appears in no log line.

With ``TIDINGS_TEST_POSTGRES_URL`` set, the server gets a scratch database of its own on that
server (created and dropped here).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

import httpx

from tests.cli.processes import clean_env, free_port, run_tidings
from tests.gateway_processes import Gateway, ProcessGroups, count_in_state, until
from tests.smsc.processes import Smsc, run_smsc

MESSAGES = 30
PASSWORD = "Zq7!kP2w"
DEADLINE_SECONDS = 60.0
INBOUND = {"source_addr": "14155550123", "destination_addr": "12345",
           "short_message_hex": b"STOP".hex(), "data_coding": 0, "esm_class": 0}


def test_messages_sent_through_the_api_are_delivered_over_an_smpp_bind(
        tmp_path: Path, server_database_url: str, processes: ProcessGroups) -> None:
    port = free_port()
    env = clean_env(
        TIDINGS_DATABASE_URL=server_database_url, TIDINGS_VAR_DIR=str(tmp_path / "var"),
        TIDINGS_SECRET_KEY=secrets.token_urlsafe(32), TIDINGS_API_RATE_LIMIT="1000000/min",
        TIDINGS_LOG_LEVEL="INFO")
    gateway = Gateway(processes, port, env, tmp_path)
    with run_smsc("smpp34", {"mo": [INBOUND]}, tmp_path) as smsc:
        asyncio.run(_send_through_the_smsc(gateway, smsc))
        submitted = smsc.events("submit_sm")

    assert len(submitted) == MESSAGES
    assert {submit["destination_addr"] for submit in submitted} == {
        f"1415555{n:04d}" for n in range(MESSAGES)}
    log = gateway.log()
    assert "transceiver bound to" in log  # the worker's log lines are in it
    assert PASSWORD not in log


async def _send_through_the_smsc(gateway: Gateway, smsc: Smsc) -> None:
    await gateway.start()
    made = run_tidings(["tenant", "create", "--name", "SMPP Test", "--email",
                        "smpp@example.com", "--password", "a long password", "--json"],
                       cwd=gateway.cwd, env=gateway.env)
    assert made.returncode == 0, made.stderr
    headers = {"Authorization": f"Bearer {json.loads(made.stdout)['api_key']}"}
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as http:
        app = await http.post("/sms/v1/apps/", headers=headers, json={
            "name": "Our SMSC", "provider": "SMPP", "sender_id": "ACME", "is_default": True,
            "provider_credentials": {"password": PASSWORD},
            "provider_config": {"host": smsc.host, "port": smsc.port, "system_id": "tidings"},
            "rate_limit": "100000/min"})
        assert app.status_code == 201, app.text
        for n in range(MESSAGES):
            sent = await http.post("/sms/v1/messages/", headers=headers, json={
                "phone": f"+1415555{n:04d}", "text": f"Your code is {n:04d}"})
            assert sent.status_code == 201, sent.text

        async def all_delivered() -> bool:
            return await count_in_state(http, headers, "delivered") == MESSAGES

        async def inbound_stored() -> bool:
            return await count_in_state(http, headers, "received") == 1

        await until(all_delivered, "every message delivered", DEADLINE_SECONDS,
                    gateway.process, gateway.log)
        await until(inbound_stored, "the inbound message stored", DEADLINE_SECONDS,
                    gateway.process, gateway.log)
        [inbound] = (await http.get("/sms/v1/messages/", headers=headers,
                                    params={"direction": "inbound"})).json()["results"]
        one = (await http.get("/sms/v1/messages/", headers=headers,
                              params={"state": "delivered", "limit": 1})).json()["results"][0]
        detail = (await http.get(f"/sms/v1/messages/{one['id']}/", headers=headers)).json()

    assert (inbound["sender_id"], inbound["phone"], inbound["text"]) == (
        "+14155550123", "12345", "STOP")
    reports = [event for event in detail["events"] if event["kind"] == "report"]
    assert [event["detail"]["provider_status"] for event in reports] == ["DELIVRD"]
