"""``/contacts/``: create, read, change, delete and list a tenant's contacts; isolation between
tenants and the roles that may write."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import FakeClock, TenantFactory, TenantHandle
from tidings.db.models import Contact, ContactLabel
from tidings.domain.roles import Role
from tidings.runtime import Runtime

CREATED = "2026-11-24T12:00:00Z"


async def create(client: httpx.AsyncClient, tenant: TenantHandle, **fields: Any) -> dict[str, Any]:
    response = await client.post("/contacts/", json=fields, headers=tenant.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored_rows(runtime: Runtime) -> tuple[int, int]:
    """How many contacts and labels the database holds, across all tenants."""
    async with runtime.sessions() as session:
        contacts = await session.scalar(select(func.count()).select_from(Contact))
        labels = await session.scalar(select(func.count()).select_from(ContactLabel))
    return contacts or 0, labels or 0


# --- create and read ---------------------------------------------------------------------------

async def test_create_answers_201_with_the_whole_contact(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.post("/contacts/", headers=tenant.headers, json={
        "phone": "+1 202 555 0123", "name": "Ada Lovelace", "email": "ada@example.com",
        "segments": ["london", "vip"], "tags": ["beta"],
        "attributes": {"plan": "pro", "seats": 3, "ratio": 0.5, "active": True}})

    assert response.status_code == 201
    body = response.json()
    assert body == {
        "id": body["id"], "phone": "+12025550123", "name": "Ada Lovelace",
        "email": "ada@example.com", "segments": ["london", "vip"], "tags": ["beta"],
        "attributes": {"plan": "pro", "seats": 3, "ratio": 0.5, "active": True},
        "created_at": CREATED, "updated_at": CREATED}
    assert len(body["id"]) == 26


async def test_create_with_only_a_phone_fills_empty_defaults(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    body = await create(client, tenant, phone="+12025550123")
    assert {k: body[k] for k in ("name", "email", "segments", "tags", "attributes")} == {
        "name": None, "email": None, "segments": [], "tags": [], "attributes": {}}


async def test_create_normalises_a_national_phone_with_the_tenants_region(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create(region="GB")
    body = await create(client, tenant, phone="020 7946 0958")
    assert body["phone"] == "+442079460958"


async def test_create_sorts_and_deduplicates_segments_and_tags(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    body = await create(client, tenant, phone="+12025550123",
                        segments=["vip", "london", " vip "], tags=["b", "a", "b"])
    assert (body["segments"], body["tags"]) == (["london", "vip"], ["a", "b"])


async def test_create_drops_null_attributes(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    body = await create(client, tenant, phone="+12025550123",
                        attributes={"plan": "pro", "unset": None})
    assert body["attributes"] == {"plan": "pro"}


async def test_get_answers_the_stored_contact(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    created = await create(client, tenant, phone="+12025550123", name="Ada", segments=["vip"],
                           attributes={"plan": "pro"})
    response = await client.get(f"/contacts/{created['id']}/", headers=tenant.headers)
    assert response.status_code == 200
    assert response.json() == created


async def test_get_of_an_unknown_id_answers_404_contact_not_found(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.get("/contacts/01JUNKNOWN000000000000000/", headers=tenant.headers)
    assert response.status_code == 404
    assert response.json() == {"detail": "contact 01JUNKNOWN000000000000000 not found",
                               "code": "contact_not_found"}


# --- bad input ---------------------------------------------------------------------------------

async def test_duplicate_phone_answers_409_and_writes_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    await create(client, tenant, phone="+1 202 555 0123")
    response = await client.post("/contacts/", headers=tenant.headers,
                                 json={"phone": "(202) 555-0123", "segments": ["vip"]})
    assert response.status_code == 409
    assert response.json() == {"detail": "a contact with phone +12025550123 already exists",
                               "code": "duplicate_phone"}
    assert await stored_rows(runtime) == (1, 0)


async def test_the_same_phone_may_belong_to_two_tenants(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    first, second = await tenants.create(), await tenants.create()
    await create(client, first, phone="+12025550123")
    await create(client, second, phone="+12025550123")


async def test_invalid_phone_answers_400_with_a_phone_error_and_writes_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create(region="GB")
    response = await client.post("/contacts/", headers=tenant.headers,
                                 json={"phone": "12345", "segments": ["vip"]})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["errors"] == [{
        "field": "phone",
        "message": "not a valid phone number (numbers without + are read as GB numbers)"}]
    assert await stored_rows(runtime) == (0, 0)


async def test_invalid_email_answers_400_with_an_email_error_and_writes_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    response = await client.post("/contacts/", headers=tenant.headers,
                                 json={"phone": "+12025550123", "email": "ada@"})
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["field"] == "email"
    assert error["message"].startswith("not a valid email address")
    assert await stored_rows(runtime) == (0, 0)


@pytest.mark.parametrize(("fields", "field"), [
    ({"name": "n" * 201}, "name"),
    ({"email": "a" * 310 + "@example.com"}, "email"),
    ({"segments": ["s" * 101]}, "segments.0"),
    ({"tags": [""]}, "tags.0"),
    ({"segments": [f"s{i}" for i in range(51)]}, "segments"),
    ({"tags": [f"t{i}" for i in range(51)]}, "tags"),
    ({"attributes": {"note": "x" * 1001}}, "attributes.note"),
    ({"attributes": {"bad key": "x"}}, "attributes.bad key"),
    ({"attributes": {"k" * 65: "x"}}, "attributes." + "k" * 65),
    ({"attributes": {f"a{i}": i for i in range(101)}}, "attributes"),
    ({"phone": None}, "phone"),
    ({"nickname": "Ada"}, "nickname"),
])
async def test_over_long_or_unknown_fields_answer_400_naming_the_field_and_write_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime,
        fields: dict[str, Any], field: str) -> None:
    tenant = await tenants.create()
    response = await client.post("/contacts/", headers=tenant.headers,
                                 json={"phone": "+12025550123", **fields})
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert await stored_rows(runtime) == (0, 0)


async def test_missing_phone_answers_400(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.post("/contacts/", headers=tenant.headers, json={"name": "Ada"})
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "phone", "message": "Field required"}]


# --- change and delete -------------------------------------------------------------------------

async def test_patch_replaces_the_fields_given_and_keeps_the_others(
        client: httpx.AsyncClient, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    created = await create(client, tenant, phone="+12025550123", name="Ada",
                           email="ada@example.com", segments=["vip"], tags=["beta"],
                           attributes={"plan": "pro"})
    clock.advance(60)
    response = await client.patch(f"/contacts/{created['id']}/", headers=tenant.headers,
                                  json={"name": "Ada King", "phone": "+1 202 555 0199"})
    assert response.status_code == 200
    assert response.json() == {**created, "name": "Ada King", "phone": "+12025550199",
                               "updated_at": "2026-11-24T12:01:00Z"}


async def test_patch_with_null_name_and_email_clears_them(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    created = await create(client, tenant, phone="+12025550123", name="Ada",
                           email="ada@example.com")
    response = await client.patch(f"/contacts/{created['id']}/", headers=tenant.headers,
                                  json={"name": None, "email": None})
    assert (response.json()["name"], response.json()["email"]) == (None, None)


async def test_patch_replaces_the_whole_segment_and_tag_lists(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    created = await create(client, tenant, phone="+12025550123", segments=["a", "b"],
                           tags=["x"])
    response = await client.patch(f"/contacts/{created['id']}/", headers=tenant.headers,
                                  json={"segments": ["c", "b"], "tags": []})
    fetched = await client.get(f"/contacts/{created['id']}/", headers=tenant.headers)
    assert (response.json()["segments"], response.json()["tags"]) == (["b", "c"], [])
    assert (fetched.json()["segments"], fetched.json()["tags"]) == (["b", "c"], [])


async def test_patch_merges_attributes_and_a_null_value_removes_the_key(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    created = await create(client, tenant, phone="+12025550123",
                           attributes={"plan": "pro", "seats": 3, "city": "Paris"})
    response = await client.patch(f"/contacts/{created['id']}/", headers=tenant.headers,
                                  json={"attributes": {"seats": 5, "city": None, "vip": True}})
    assert response.json()["attributes"] == {"plan": "pro", "seats": 5, "vip": True}


async def test_patch_to_another_contacts_phone_answers_409_and_changes_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    await create(client, tenant, phone="+12025550123")
    other = await create(client, tenant, phone="+12025550199", name="Bob")
    response = await client.patch(f"/contacts/{other['id']}/", headers=tenant.headers,
                                  json={"phone": "202-555-0123", "name": "Robert"})
    fetched = await client.get(f"/contacts/{other['id']}/", headers=tenant.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "duplicate_phone"
    assert fetched.json() == other


async def test_patch_to_its_own_phone_in_another_format_is_fine(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    created = await create(client, tenant, phone="+12025550123")
    response = await client.patch(f"/contacts/{created['id']}/", headers=tenant.headers,
                                  json={"phone": "(202) 555-0123"})
    assert response.status_code == 200


@pytest.mark.parametrize("field", ["phone", "segments", "tags", "attributes"])
async def test_patch_with_null_for_a_field_that_cannot_be_empty_answers_400(
        client: httpx.AsyncClient, tenants: TenantFactory, field: str) -> None:
    tenant = await tenants.create()
    created = await create(client, tenant, phone="+12025550123")
    response = await client.patch(f"/contacts/{created['id']}/", headers=tenant.headers,
                                  json={field: None})
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": field,
                                          "message": "Value error, may not be null"}]


async def test_patch_leaving_more_than_100_attributes_answers_400_and_changes_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    created = await create(client, tenant, phone="+12025550123",
                           attributes={f"a{i}": i for i in range(100)})
    response = await client.patch(f"/contacts/{created['id']}/", headers=tenant.headers,
                                  json={"attributes": {"one_more": 1}, "name": "Ada"})
    fetched = await client.get(f"/contacts/{created['id']}/", headers=tenant.headers)
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "attributes",
                                          "message": "at most 100 per contact"}]
    assert fetched.json() == created


async def test_delete_answers_204_and_the_contact_and_its_labels_are_gone(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    created = await create(client, tenant, phone="+12025550123", segments=["vip"], tags=["a"])
    response = await client.delete(f"/contacts/{created['id']}/", headers=tenant.headers)
    fetched = await client.get(f"/contacts/{created['id']}/", headers=tenant.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert fetched.status_code == 404
    assert await stored_rows(runtime) == (0, 0)


async def test_a_deleted_contacts_phone_may_be_used_again(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    created = await create(client, tenant, phone="+12025550123")
    await client.delete(f"/contacts/{created['id']}/", headers=tenant.headers)
    await create(client, tenant, phone="+12025550123")


# --- listing -----------------------------------------------------------------------------------

async def test_list_answers_the_envelope_newest_first_with_page_links(
        client: httpx.AsyncClient, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    ids = []
    for n in range(3):
        ids.append((await create(client, tenant, phone=f"+1202555010{n}"))["id"])
        clock.advance(1)

    first = await client.get("/contacts/", params={"limit": 2}, headers=tenant.headers)
    second = await client.get(first.json()["next"], headers=tenant.headers)

    assert first.status_code == 200
    assert first.json()["count"] == 3
    assert [c["id"] for c in first.json()["results"]] == [ids[2], ids[1]]
    assert first.json()["previous"] is None
    assert first.json()["next"] == "http://testserver/contacts/?limit=2&offset=2"
    assert [c["id"] for c in second.json()["results"]] == [ids[0]]
    assert second.json()["next"] is None
    assert second.json()["previous"] == "http://testserver/contacts/?limit=2&offset=0"


async def test_list_of_a_tenant_without_contacts_is_empty(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.get("/contacts/", headers=tenant.headers)
    assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}


async def test_list_results_carry_their_labels(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    created = await create(client, tenant, phone="+12025550123", segments=["b", "a"],
                           tags=["t"], attributes={"plan": "pro"})
    response = await client.get("/contacts/", headers=tenant.headers)
    assert response.json()["results"] == [created]


async def test_search_matches_name_email_and_phone_ignoring_case(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    ada = await create(client, tenant, phone="+12025550101", name="Ada Lovelace")
    bob = await create(client, tenant, phone="+12025550102", email="BOB@example.org")
    cy = await create(client, tenant, phone="+442079460958")

    async def search(text: str) -> list[str]:
        response = await client.get("/contacts/", params={"search": text},
                                    headers=tenant.headers)
        return sorted(c["id"] for c in response.json()["results"])

    assert await search("LOVE") == [ada["id"]]
    assert await search("bob@EXAMPLE") == [bob["id"]]
    assert await search("+4420") == [cy["id"]]
    assert await search("0102") == [bob["id"]]
    assert await search("nobody") == []


async def test_search_ignores_punctuation_when_matching_the_phone(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    created = await create(client, tenant, phone="+12025550123")
    response = await client.get("/contacts/", params={"search": "555-0123"},
                                headers=tenant.headers)
    assert [c["id"] for c in response.json()["results"]] == [created["id"]]


async def test_search_treats_percent_and_underscore_literally(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    await create(client, tenant, phone="+12025550101", name="Ada")
    literal = await create(client, tenant, phone="+12025550102", name="100% A_da")
    response = await client.get("/contacts/", params={"search": "% A_"}, headers=tenant.headers)
    assert [c["id"] for c in response.json()["results"]] == [literal["id"]]


async def test_segment_and_tag_filters_keep_contacts_having_that_label(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    both = await create(client, tenant, phone="+12025550101", segments=["vip"], tags=["beta"])
    vip = await create(client, tenant, phone="+12025550102", segments=["vip"], tags=["vip"])
    await create(client, tenant, phone="+12025550103", tags=["beta"])

    async def ids(params: dict[str, str]) -> list[str]:
        response = await client.get("/contacts/", params=params, headers=tenant.headers)
        return sorted(c["id"] for c in response.json()["results"])

    assert await ids({"segment": "vip"}) == sorted([both["id"], vip["id"]])
    assert await ids({"tag": "vip"}) == [vip["id"]]
    assert await ids({"segment": "vip", "tag": "beta"}) == [both["id"]]


async def test_attribute_filters_compare_text_and_combine_with_and(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    paris_pro = await create(client, tenant, phone="+12025550101",
                             attributes={"city": "Paris", "plan": "pro", "seats": 3,
                                         "vip": True})
    paris = await create(client, tenant, phone="+12025550102",
                         attributes={"city": "Paris", "plan": "free", "seats": 30,
                                     "vip": False})
    await create(client, tenant, phone="+12025550103", attributes={"city": "Rome"})

    async def ids(query: str) -> list[str]:
        response = await client.get(f"/contacts/?{query}", headers=tenant.headers)
        assert response.status_code == 200, response.text
        return sorted(c["id"] for c in response.json()["results"])

    assert await ids("attr.city=Paris") == sorted([paris_pro["id"], paris["id"]])
    assert await ids("attr.city=Paris&attr.plan=pro") == [paris_pro["id"]]
    assert await ids("attr.seats=3") == [paris_pro["id"]]
    assert await ids("attr.vip=true") == [paris_pro["id"]]
    assert await ids("attr.vip=false") == [paris["id"]]
    assert await ids("attr.city=paris") == []
    assert await ids("attr.missing=x") == []


async def test_attribute_filter_with_a_bad_name_answers_400(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.get('/contacts/?attr.a"b=1', headers=tenant.headers)
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ['attr.a"b']


async def test_filters_are_kept_in_the_page_links(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    for n in range(3):
        await create(client, tenant, phone=f"+1202555010{n}", attributes={"city": "Paris"})
    response = await client.get("/contacts/?attr.city=Paris&limit=2", headers=tenant.headers)
    assert response.json()["next"] == (
        "http://testserver/contacts/?attr.city=Paris&limit=2&offset=2")


# --- tenant isolation --------------------------------------------------------------------------

async def test_another_tenants_contact_answers_404_to_get_patch_and_delete(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    owner, other = await tenants.create(), await tenants.create()
    created = await create(client, owner, phone="+12025550123", name="Ada")
    url = f"/contacts/{created['id']}/"

    answers = [await client.get(url, headers=other.headers),
               await client.patch(url, headers=other.headers, json={"name": "Mallory"}),
               await client.delete(url, headers=other.headers)]

    assert [(r.status_code, r.json()["code"]) for r in answers] == [
        (404, "contact_not_found")] * 3
    assert (await client.get(url, headers=owner.headers)).json() == created


async def test_lists_never_show_another_tenants_contacts(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    owner, other = await tenants.create(), await tenants.create()
    await create(client, owner, phone="+12025550123", name="Ada", segments=["vip"],
                 tags=["beta"], attributes={"city": "Paris"})
    queries = ["", "?search=Ada", "?segment=vip", "?tag=beta", "?attr.city=Paris"]
    for query in queries:
        response = await client.get(f"/contacts/{query}", headers=other.headers)
        assert response.json()["count"] == 0, query
        assert response.json()["results"] == [], query


# --- roles -------------------------------------------------------------------------------------

async def test_viewer_may_read_contacts(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    viewer = await tenants.key(tenant, Role.VIEWER)
    created = await create(client, tenant, phone="+12025550123")
    listed = await client.get("/contacts/", headers=viewer)
    fetched = await client.get(f"/contacts/{created['id']}/", headers=viewer)
    assert (listed.status_code, fetched.status_code) == (200, 200)


async def test_viewer_may_not_create_change_delete_or_import_contacts(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    viewer = await tenants.key(tenant, Role.VIEWER)
    created = await create(client, tenant, phone="+12025550123")
    url = f"/contacts/{created['id']}/"

    answers = [
        await client.post("/contacts/", headers=viewer, json={"phone": "+12025550199"}),
        await client.patch(url, headers=viewer, json={"name": "Mallory"}),
        await client.delete(url, headers=viewer),
        await client.post("/contacts/bulk-import/", headers=viewer,
                          files={"file": ("c.csv", b"phone\n+12025550199\n", "text/csv")}),
    ]

    assert [(r.status_code, r.json()["code"]) for r in answers] == [
        (403, "permission_denied")] * 4
    assert (await client.get(url, headers=tenant.headers)).json() == created
    assert await stored_rows(runtime) == (1, 0)


@pytest.mark.parametrize("role", [Role.AGENT, Role.DEVELOPER, Role.ADMIN])
async def test_roles_with_contacts_write_may_create_contacts(
        client: httpx.AsyncClient, tenants: TenantFactory, role: Role) -> None:
    tenant = await tenants.create()
    headers = await tenants.key(tenant, role)
    response = await client.post("/contacts/", headers=headers, json={"phone": "+12025550123"})
    assert response.status_code == 201


async def test_contacts_need_authentication(client: httpx.AsyncClient) -> None:
    response = await client.get("/contacts/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
