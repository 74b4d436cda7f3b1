"""``services.broadcasts``: the pieces a broadcast is made of, and the promise that lets it skip
work per recipient: every stored row is the one a single send would build."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import FakeClock, TenantFactory
from tidings.db.models import Message
from tidings.errors import InvalidInput
from tidings.runtime import Runtime
from tidings.services import broadcasts, sms_send
from tidings.services.broadcasts import (
    BroadcastRequest,
    CsvSource,
    PhoneList,
    SegmentSource,
    TextTemplate,
    contact_fields,
)
from tidings.services.contacts import create_contact
from tidings.services.sms_apps import SmsAppFields, create_sms_app
from tidings.services.sms_send import Sender, SendRequest

# --- placeholders --------------------------------------------------------------------------------

FILLS: list[tuple[str, str, dict[str, str], str]] = [
    ("no-placeholders", "Flash sale {today}", {}, "Flash sale {today}"),
    ("spaces-and-case", "Hi {{ Name }}!", {"name": "Asha"}, "Hi Asha!"),
    ("repeated", "{{name}}, {{name}}", {"name": "Ben"}, "Ben, Ben"),
    ("default-for-missing", "Hi {{name|there}}", {}, "Hi there"),
    ("default-for-empty", "Hi {{name | there }}", {"name": ""}, "Hi there"),
    ("dotted-attribute", "Plan: {{plan.tier}}", {"plan.tier": "Gold"}, "Plan: Gold"),
    ("not-a-placeholder", "{{ }} and {{two words}}", {}, "{{ }} and {{two words}}"),
]


@pytest.mark.parametrize(("text", "values", "expected"), [case[1:] for case in FILLS],
                         ids=[case[0] for case in FILLS])
def test_a_text_template_fills_its_placeholders(text: str, values: dict[str, str],
                                                 expected: str) -> None:
    assert TextTemplate.parse(text).fill(values) == expected


def test_a_missing_field_without_default_cannot_be_filled() -> None:
    template = TextTemplate.parse("Hi {{name}}, code {{code|none}}")

    assert (template.fields, template.required) == ({"name", "code"}, {"name"})
    with pytest.raises(broadcasts.MissingField):
        template.fill({"code": "42"})


def test_contact_fields_fold_names_and_let_the_contacts_own_fields_win() -> None:
    assert contact_fields("+14155550100", "Asha", None, {
        "Name": "shadowed", "City": "Pune", "vip": True, "visits": 3, "empty": ""}) == {
        "name": "Asha", "phone": "+14155550100", "city": "Pune", "vip": "true", "visits": "3"}


# --- the service against the database ------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    sender: Sender
    app_id: str


@pytest.fixture
async def setup(runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> Setup:
    tenant = await tenants.create()
    async with runtime.sessions() as session:
        app = await create_sms_app(session, runtime.secret_box, tenant_id=tenant.tenant_id,
                                   fields=SmsAppFields(name="Sim", provider="SIMULATOR",
                                                       sender_id="Acme"),
                                   default_rate_limit="100/min", now=clock())
        await session.commit()
    return Setup(Sender(tenant.tenant_id, "US", "live"), app.id)


async def _accept(runtime: Runtime, setup: Setup, clock: FakeClock, source: broadcasts.Source,
                  text: str = "Hello", **options: Any) -> broadcasts.BroadcastView:
    async with runtime.sessions() as session:
        view = await broadcasts.accept_broadcast(
            session, setup.sender, BroadcastRequest(text=text, sms_app_id=setup.app_id,
                                                    **options),
            source, now=clock(), max_segments=10)
        await session.commit()
    return view


async def _stored(runtime: Runtime) -> list[Message]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(Message).order_by(Message.id))).scalars())


async def test_every_stored_row_is_the_row_a_single_send_builds(
        runtime: Runtime, setup: Setup, clock: FakeClock) -> None:
    phones = ["+14155550100", "+14155550101", "+447911123456", "+447911123457",
              "+919876543210", "+16135550123"]
    options = {"priority": 7, "ttl": 600, "callback_url": "https://example.com/cb",
               "sender_id": "Promo", "scheduled_at": clock() + timedelta(hours=1)}

    view = await _accept(runtime, setup, clock, PhoneList(phones), **options)

    async with runtime.sessions() as session:
        plan = await sms_send.resolve_send_plan(session, setup.sender.tenant_id, setup.app_id,
                                                None)
    columns = [c.key for c in Message.__table__.columns if c.key != "id"]
    for message in await _stored(runtime):
        single = sms_send.build_message_row(
            plan, setup.sender, SendRequest(phone=message.to_number, text="Hello",
                                            sms_app_id=setup.app_id, **options),
            now=clock(), max_segments=10, batch_id=view.id).row
        assert {key: getattr(message, key) for key in columns} == {
            key: single[key] for key in columns}


async def test_duplicates_are_found_across_chunks(
        runtime: Runtime, setup: Setup, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broadcasts, "CHUNK_SIZE", 2)
    phones = ["+14155550100", "+14155550101", "+14155550102", "4155550100", "+14155550101"]

    view = await _accept(runtime, setup, clock, PhoneList(phones))

    assert (view.total, view.accepted, view.duplicates, view.rejected) == (5, 3, 2, 0)
    assert sorted(m.to_number for m in await _stored(runtime)) == sorted(phones[:3])


async def test_a_segment_is_read_in_pages_with_each_contacts_fields(
        runtime: Runtime, setup: Setup, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broadcasts, "CHUNK_SIZE", 2)
    async with runtime.sessions() as session:
        for n, name in enumerate(["Asha", "Ben", "Cleo", "Dev", "Esi"]):
            await create_contact(session, tenant_id=setup.sender.tenant_id,
                                 phone=f"+1415555010{n}", name=name,
                                 segments=["vip"] if name != "Dev" else ["other"],
                                 now=clock())
        await session.commit()

    view = await _accept(runtime, setup, clock, SegmentSource("vip"), text="Hi {{name}}")

    assert (view.total, view.accepted) == (4, 4)
    assert sorted(m.text for m in await _stored(runtime)) == [
        "Hi Asha", "Hi Ben", "Hi Cleo", "Hi Esi"]


async def test_a_filled_text_too_long_is_a_rejected_row(
        runtime: Runtime, setup: Setup, clock: FakeClock) -> None:
    csv_file = io.BytesIO(f"phone,note\n+14155550100,short\n+14155550101,{'x' * 1600}\n"
                          .encode())

    view = await _accept(runtime, setup, clock, CsvSource(csv_file), text="Note: {{note}}")

    assert (view.accepted, view.rejected) == (1, 1)
    assert (view.rejected_rows[0].row, view.rejected_rows[0].code) == (2, "text_too_long")


async def test_a_csv_with_a_bom_quoted_cells_and_blank_rows_is_read_row_by_row(
        runtime: Runtime, setup: Setup, clock: FakeClock) -> None:
    csv_file = io.BytesIO('\ufeffPHONE , Name\n\n"+14155550100","Lee, Asha"\n , \n'
                          '+14155550101,"Two\nlines"\n'.encode())

    view = await _accept(runtime, setup, clock, CsvSource(csv_file), text="{{name}}")

    assert (view.total, view.accepted) == (2, 2)
    assert sorted(m.text for m in await _stored(runtime)) == ["Lee, Asha", "Two\nlines"]


async def test_an_unclosed_quote_swallowing_the_file_refuses_it_whole(
        runtime: Runtime, setup: Setup, clock: FakeClock) -> None:
    rows = "".join(f"+1415555{n:04d},Name {n}\n" for n in range(10_000))
    csv_file = io.BytesIO(f'phone,name\n+14155550100,"Asha\n{rows}'.encode())

    with pytest.raises(InvalidInput) as refused:
        await _accept(runtime, setup, clock, CsvSource(csv_file))

    assert refused.value.code == "invalid_csv"
