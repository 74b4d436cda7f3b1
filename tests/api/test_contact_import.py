"""``POST /contacts/bulk-import/``: the CSV upsert by phone, its per-row rejections, the files
it refuses whole, and a 100,000-row import."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_contacts import create, stored_rows
from tests.conftest import FakeClock, TenantFactory, TenantHandle
from tidings.runtime import Runtime

US_REGION_HINT = "(numbers without + are read as US numbers)"


async def upload(client: httpx.AsyncClient, tenant: TenantHandle,
                 content: bytes | str) -> httpx.Response:
    data = content.encode() if isinstance(content, str) else content
    return await client.post("/contacts/bulk-import/", headers=tenant.headers,
                             files={"file": ("contacts.csv", data, "text/csv")})


async def contacts_of(client: httpx.AsyncClient, tenant: TenantHandle) -> list[dict[str, Any]]:
    """All of the tenant's contacts, by phone (contacts of one import share their created_at,
    so the list's own order among them is not the file's)."""
    response = await client.get("/contacts/", params={"limit": 500}, headers=tenant.headers)
    return sorted(response.json()["results"], key=lambda contact: contact["phone"])


def report(total: int, created: int = 0, updated: int = 0,
           rejected: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    rejected = rejected or []
    return {"total": total, "created": created, "updated": updated,
            "rejected_count": len(rejected), "rejected": rejected, "rejected_truncated": False}


# --- what a good file does ---------------------------------------------------------------------

async def test_import_creates_contacts_and_answers_the_counts(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await upload(client, tenant,
                            "phone,name,email,segments,tags\n"
                            "+1 202 555 0101,Ada,ada@example.com,vip;london,beta\n"
                            "(202) 555-0102,Bob,,,\n")

    assert response.status_code == 200
    assert response.json() == report(total=2, created=2)
    ada, bob = await contacts_of(client, tenant)
    assert {k: ada[k] for k in ("phone", "name", "email", "segments", "tags", "attributes")} == {
        "phone": "+12025550101", "name": "Ada", "email": "ada@example.com",
        "segments": ["london", "vip"], "tags": ["beta"], "attributes": {}}
    assert {k: bob[k] for k in ("phone", "name", "email", "segments", "tags")} == {
        "phone": "+12025550102", "name": "Bob", "email": None, "segments": [], "tags": []}


async def test_other_columns_become_string_attributes_and_empty_cells_are_skipped(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await upload(client, tenant,
                            "phone,City,age\n+12025550101,Paris,30\n+12025550102,,\n")
    first, second = await contacts_of(client, tenant)
    assert response.json()["created"] == 2
    assert first["attributes"] == {"City": "Paris", "age": "30"}
    assert second["attributes"] == {}


async def test_header_columns_match_in_any_case_after_trimming(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    await upload(client, tenant, " PHONE ,Name,  eMail ,SEGMENTS\n+12025550101,Ada,a@b.org,x\n")
    (contact,) = await contacts_of(client, tenant)
    assert (contact["phone"], contact["name"], contact["email"], contact["segments"]) == (
        "+12025550101", "Ada", "a@b.org", ["x"])


async def test_national_numbers_are_read_in_the_tenants_region(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create(region="GB")
    await upload(client, tenant, "phone\n020 7946 0958\n")
    (contact,) = await contacts_of(client, tenant)
    assert contact["phone"] == "+442079460958"


async def test_a_known_phone_is_updated_and_its_labels_and_attributes_merged(
        client: httpx.AsyncClient, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    stored = await create(client, tenant, phone="+12025550123", name="Ada",
                          email="ada@example.com", segments=["a"], tags=["t1"],
                          attributes={"plan": "pro", "city": "Paris"})
    clock.advance(60)
    response = await upload(client, tenant, "phone,name,email,segments,tags,city\n"
                                            "(202) 555-0123,Ada King,,b;a,t2,Rome\n")
    fetched = await client.get(f"/contacts/{stored['id']}/", headers=tenant.headers)

    assert response.json() == report(total=1, updated=1)
    assert fetched.json() == {**stored, "name": "Ada King", "segments": ["a", "b"],
                              "tags": ["t1", "t2"],
                              "attributes": {"plan": "pro", "city": "Rome"},
                              "updated_at": "2026-11-24T12:01:00Z"}


async def test_the_same_phone_twice_in_a_file_updates_the_earlier_row(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await upload(client, tenant, "phone,name,segments,city\n"
                                            "+12025550123,Ada,a,Paris\n"
                                            "202-555-0123,,b,\n"
                                            "+1 202 555 0123,Ada King,,Rome\n")
    (contact,) = await contacts_of(client, tenant)
    assert response.json() == report(total=3, created=1, updated=2)
    assert (contact["name"], contact["segments"], contact["attributes"]) == (
        "Ada King", ["a", "b"], {"city": "Rome"})


async def test_a_utf8_bom_is_ignored_and_non_ascii_text_kept(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await upload(client, tenant,
                            "\ufeffphone,name,ville\n+12025550123,Zoë Ørsted,Zürich\n".encode())
    (contact,) = await contacts_of(client, tenant)
    assert response.json()["created"] == 1
    assert (contact["name"], contact["attributes"]) == ("Zoë Ørsted", {"ville": "Zürich"})


async def test_quoted_cells_may_hold_commas_and_line_breaks(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await upload(client, tenant, 'phone,name,notes\n'
                                            '+12025550101,"King, Ada","line 1\nline 2"\n'
                                            'bad,Bob,x\n')
    (contact,) = await contacts_of(client, tenant)
    assert (contact["name"], contact["attributes"]) == ("King, Ada", {"notes": "line 1\nline 2"})
    assert response.json()["rejected"] == [
        {"row": 2, "reason": f"phone: not a valid phone number {US_REGION_HINT}"}]


async def test_blank_rows_are_skipped_but_keep_their_row_numbers(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await upload(client, tenant,
                            "phone,name\n+12025550101,Ada\n\n , \n+12025550102,Bob\nbad,Cy\n\n")
    assert response.json() == report(total=3, created=2, rejected=[
        {"row": 5, "reason": f"phone: not a valid phone number {US_REGION_HINT}"}])


async def test_a_phone_known_to_another_tenant_is_new_here(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    mine, theirs = await tenants.create(), await tenants.create()
    their_contact = await create(client, theirs, phone="+12025550123", name="Theirs")
    response = await upload(client, mine, "phone,name\n+12025550123,Mine\n")
    assert response.json()["created"] == 1
    assert await contacts_of(client, theirs) == [their_contact]


# --- bad rows ----------------------------------------------------------------------------------

async def test_bad_rows_are_rejected_by_row_number_and_the_good_rows_kept(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    long_name, long_label, long_value = "n" * 201, "s" * 101, "v" * 1001
    response = await upload(client, tenant, "phone,name,email,segments,city\n"
                                            "+12025550101,Ada,ada@example.com,vip,Paris\n"
                                            "not-a-phone,Bob,,,\n"
                                            "+12025550103,Cy,cy@,,\n"
                                            "+12025550104,Di\n"
                                            f"+12025550105,{long_name},,,\n"
                                            ",Eve,,,\n"
                                            f"+12025550107,Fay,,{long_label},\n"
                                            f"+12025550108,Gus,,,{long_value}\n"
                                            "+12025550109,Hal,,,\n")
    body = response.json()
    email_rejection = body["rejected"].pop(1)

    assert response.status_code == 200
    assert (body["total"], body["created"], body["updated"], body["rejected_count"]) == (
        9, 2, 0, 7)
    assert email_rejection["row"] == 3
    assert email_rejection["reason"].startswith("email: not a valid email address")
    assert body["rejected"] == [
        {"row": 2, "reason": f"phone: not a valid phone number {US_REGION_HINT}"},
        {"row": 4, "reason": "expected 5 columns, found 2"},
        {"row": 5, "reason": "name: must be at most 200 characters"},
        {"row": 6, "reason": "phone: missing"},
        {"row": 7, "reason": "segments: each must be 1 to 100 characters"},
        {"row": 8, "reason": "city: must be at most 1000 characters"},
    ]
    assert [c["name"] for c in await contacts_of(client, tenant)] == ["Ada", "Hal"]


async def test_a_row_that_would_give_a_contact_more_than_50_segments_is_rejected(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    stored = await create(client, tenant, phone="+12025550123",
                          segments=[f"s{i}" for i in range(50)])
    response = await upload(client, tenant,
                            "phone,segments,name\n+12025550123,one more,Ada\n"
                            "+12025550123,s1;s2,Ada\n")
    fetched = await client.get(f"/contacts/{stored['id']}/", headers=tenant.headers)
    assert response.json() == report(total=2, updated=1, rejected=[
        {"row": 1, "reason": "segments: a contact may have at most 50"}])
    assert (fetched.json()["segments"], fetched.json()["name"]) == (stored["segments"], "Ada")


async def test_no_more_than_1000_rejections_are_listed(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await upload(client, tenant, "phone\n" + "bad\n" * 1200)
    body = response.json()
    assert (body["total"], body["rejected_count"], len(body["rejected"]),
            body["rejected_truncated"]) == (1200, 1200, 1000, True)
    assert body["rejected"][-1]["row"] == 1000


# --- files refused whole -----------------------------------------------------------------------

@pytest.mark.parametrize(("content", "detail"), [
    ("", "the file is empty: its first row must name the columns, including phone"),
    ("\n\n", "the file is empty: its first row must name the columns, including phone"),
    ("name,email\nAda,ada@example.com\n", "the header has no phone column"),
    ("phone,name,Phone\n", "column 'Phone' appears twice in the header"),
    ("phone,,city\n", "column 2 of the header has no name"),
    ("phone,first name\n",
     "column 'first name': attribute names are 1 to 64 characters of A-Z a-z 0-9 _ . -"),
])
async def test_a_file_without_a_usable_header_answers_400_invalid_csv(
        client: httpx.AsyncClient, tenants: TenantFactory, content: str, detail: str) -> None:
    tenant = await tenants.create()
    response = await upload(client, tenant, content)
    assert response.status_code == 400
    assert response.json() == {"detail": detail, "code": "invalid_csv"}


async def test_a_latin1_file_answers_400_invalid_encoding_and_imports_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    good_rows = "".join(f"+1 212 200 {n:04d},Person {n},vip\n" for n in range(3000))
    content = ("phone,name,segments\n" + good_rows).encode() + (
        "+12122009999,José,vip\n+12122009998,Ann,vip\n".encode("latin-1"))

    response = await upload(client, tenant, content)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_encoding"
    assert response.json()["detail"].startswith("the file is not UTF-8 text")
    assert await stored_rows(runtime) == (0, 0)


async def test_a_request_without_a_file_field_answers_400_naming_it(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.post("/contacts/bulk-import/", headers=tenant.headers,
                                 files={"upload": ("c.csv", b"phone\n", "text/csv")})
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["file"]


async def test_a_request_that_is_not_multipart_answers_400(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.post("/contacts/bulk-import/", headers=tenant.headers,
                                 json={"file": "phone\n+12025550123\n"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


# --- scale -------------------------------------------------------------------------------------

def _big_csv(rows: int) -> bytes:
    lines = ["phone,name,email,segments,tags,city\n"]
    lines.extend(f"+1 212 {200 + n // 10000:03d} {n % 10000:04d},Person {n},p{n}@example.com,"
                 f"s{n % 5};all,t{n % 3},City {n % 10}\n" for n in range(rows))
    return "".join(lines).encode()


async def test_a_100000_row_file_imports_every_contact(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await upload(client, tenant, _big_csv(100_000))

    everyone = await client.get("/contacts/", params={"limit": 1}, headers=tenant.headers)
    in_all = await client.get("/contacts/", params={"limit": 1, "segment": "all"},
                              headers=tenant.headers)
    last = await client.get("/contacts/", params={"search": "p99999@example.com"},
                            headers=tenant.headers)

    assert response.status_code == 200
    assert response.json() == report(total=100_000, created=100_000)
    assert everyone.json()["count"] == 100_000
    assert in_all.json()["count"] == 100_000
    (contact,) = last.json()["results"]
    assert {k: contact[k] for k in ("phone", "name", "segments", "tags", "attributes")} == {
        "phone": "+12122099999", "name": "Person 99999", "segments": ["all", "s4"],
        "tags": ["t0"], "attributes": {"city": "City 9"}}
