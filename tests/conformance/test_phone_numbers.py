"""/v2/phone_numbers through the official SDK (strict response validation), and httpx for bad input.

Numbers are added as the operator adds them, through the store (`add_numbers`, what `trunkline numbers
add` runs); the CLI itself is tests/cli/test_numbers.py. Numbers are unique across the server, so every
test draws fresh random ones.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import telnyx

from tests.conformance._connections import assert_error, credential
from tests.conftest import Account, mint_key
from tests.server import LiveServer
from trunkline.resources import phone_numbers
from trunkline.store.db import Database

_drawn: set[str] = set()


def fresh_number(prefix: str = "+1312", *, length: int = 12, country: str = "US", kind: str = "local") -> str:
    """A number valid in `country` of type `kind` that no test of this process has drawn before."""
    while True:
        number = prefix + "".join(random.choices("0123456789", k=length - len(prefix)))
        try:
            parsed = phone_numbers.parse_number(number)
        except ValueError:
            continue
        if parsed.country == country and parsed.number_type == kind and number not in _drawn:
            _drawn.add(number)
            return number


def add_numbers(database_url: str, user_id: str, *numbers: str) -> list[dict[str, Any]]:
    """Add numbers to an account's inventory, as `trunkline numbers add` does."""

    async def go() -> list[dict[str, Any]]:
        db = Database(database_url)
        try:
            async with db.transaction(write=True) as conn:
                return await phone_numbers.add(conn, user_id, phone_numbers.parse_numbers(numbers))
        finally:
            await db.dispose()

    return asyncio.run(go())


def add_one(server: LiveServer, account: Account, number: str | None = None) -> dict[str, Any]:
    return add_numbers(server.settings.database_url, account.user_id, number or fresh_number())[0]


def _listed(account: Account, **params: Any) -> list[str]:
    """The numbers a raw list answers, in order (params as query parameters)."""
    r = account.http.get("/phone_numbers", params=params)
    assert r.status_code == 200, r.text
    return [item["phone_number"] for item in r.json()["data"]]


# ----------------------------------------------------------------------------------------------------
# Reading


def test_list_and_retrieve_through_the_sdk(server: LiveServer, account: Account) -> None:
    first, second = fresh_number(), fresh_number("+44207", length=13, country="GB")
    add_numbers(server.settings.database_url, account.user_id, first)
    added = add_numbers(server.settings.database_url, account.user_id, second)[0]
    page = account.client.phone_numbers.list()
    assert [n.phone_number for n in page.data] == [second, first]  # newest first, as Telnyx
    number = page.data[0]
    assert number.id == added["id"] and number.record_type == "phone_number"
    assert (number.status, number.phone_number_type, number.country_iso_alpha2) == ("active", "local", "GB")
    assert number.tags == [] and number.deletion_lock_enabled is False
    assert number.connection_id is None and number.connection_name is None
    assert number.purchased_at == added["created_at"] == number.updated_at
    assert page.data[1].country_iso_alpha2 == "US"
    assert account.client.phone_numbers.retrieve(number.id).data == number
    assert page.meta is not None
    assert (page.meta.page_number, page.meta.page_size, page.meta.total_results) == (1, 20, 2)


def test_every_field_is_the_added_numbers_own(server: LiveServer, account: Account) -> None:
    toll_free = fresh_number("+1800", kind="toll_free")
    added = add_one(server, account, toll_free)
    data = account.http.get(f"/phone_numbers/{added['id']}").json()["data"]
    assert data == {
        "id": added["id"],
        "record_type": "phone_number",
        "phone_number": toll_free,
        "status": "active",
        "phone_number_type": "toll_free",
        "country_iso_alpha2": "US",
        "tags": [],
        "customer_reference": None,
        "billing_group_id": None,
        "address_id": None,
        "external_pin": None,
        "hd_voice_enabled": False,
        "deletion_lock_enabled": False,
        "purchased_at": added["created_at"],
        "activated_at": added["created_at"],
        "connection_id": None,
        "connection_name": None,
        "created_at": added["created_at"],
        "updated_at": added["created_at"],
    }


def test_pages_and_meta(server: LiveServer, account: Account) -> None:
    numbers = [fresh_number() for _ in range(5)]
    for number in numbers:
        add_numbers(server.settings.database_url, account.user_id, number)
    first = account.client.phone_numbers.list(page_size=2)
    assert first.meta is not None
    assert (first.meta.page_size, first.meta.total_pages, first.meta.total_results) == (2, 3, 5)
    seen = [item.phone_number for page in first.iter_pages() for item in page.data]
    assert seen == numbers[::-1]
    last = account.client.phone_numbers.list(page_number=3, page_size=2)
    assert [n.phone_number for n in last.data] == [numbers[0]]
    assert account.client.phone_numbers.list(page_number=4, page_size=2).data == []


@pytest.mark.parametrize(
    "params", [{"page[size]": "0"}, {"page[size]": "251"}, {"page[number]": "0"}, {"page[number]": "x"}]
)
def test_bad_pagination_is_422(account: Account, params: dict[str, str]) -> None:
    name = next(iter(params))
    entry = assert_error(account.http.get("/phone_numbers", params=params), 422, code="10015")
    assert entry["source"]["parameter"] == name


@pytest.mark.parametrize("id", ["abc", "0", "1" * 25, "12%2034", "00000000-0000-0000-0000-000000000000"])
def test_unknown_ids_are_404(account: Account, id: str) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        body = {"tags": ["x"]} if method == "PATCH" else None
        assert_error(account.http.request(method, f"/phone_numbers/{id}", json=body), 404, code="10005")


# ----------------------------------------------------------------------------------------------------
# PATCH


def test_patch_assigns_a_connection_and_tags(server: LiveServer, account: Account) -> None:
    number = add_one(server, account)
    pbx = account.client.ip_connections.create(connection_name="pbx").data
    assert pbx.id is not None
    updated = account.client.phone_numbers.update(number["id"], connection_id=pbx.id, tags=["a", "b"]).data
    assert updated is not None
    assert (updated.connection_id, updated.connection_name, updated.tags) == (pbx.id, "pbx", ["a", "b"])
    assert updated.updated_at is not None and updated.updated_at > number["updated_at"]
    assert account.client.phone_numbers.retrieve(number["id"]).data == updated
    # The name is the connection's, read at every request: a rename shows at once.
    account.client.ip_connections.update(pbx.id, connection_name="pbx renamed")
    assert account.client.phone_numbers.retrieve(number["id"]).data.connection_name == "pbx renamed"  # type: ignore[union-attr]
    listed = account.client.phone_numbers.list(filter={"connection_id": pbx.id}).data
    assert [n.id for n in listed] == [number["id"]]
    assert listed[0].connection_name == "pbx renamed"


def test_patch_takes_every_kind_of_connection(server: LiveServer, account: Account) -> None:
    number = add_one(server, account)
    owners = [
        credential(account.client, connection_name="cred").id,
        account.client.fqdn_connections.create(connection_name="fqdn").data.id,
        account.client.ip_connections.create(connection_name="ip").data.id,
    ]
    for owner in owners:
        assert owner is not None
        data = account.client.phone_numbers.update(number["id"], connection_id=owner).data
        assert data is not None and data.connection_id == owner


def test_patch_stores_and_returns_telnyxs_other_fields(server: LiveServer, account: Account) -> None:
    number = add_one(server, account)
    group = str(uuid.uuid4())
    fields: dict[str, Any] = {
        "customer_reference": "acme-42",
        "billing_group_id": group,
        "address_id": "1293384261075731499",
        "external_pin": "1234",
        "hd_voice_enabled": True,
    }
    updated = account.client.phone_numbers.update(number["id"], **fields).data
    assert updated is not None
    got = updated.model_dump()
    assert {key: got[key] for key in fields if key != "address_id"} == {
        k: v for k, v in fields.items() if k != "address_id"
    }
    raw = account.http.get(f"/phone_numbers/{number['id']}").json()["data"]
    assert {key: raw[key] for key in fields} == fields
    # Absent fields keep their value; null clears a nullable one.
    r = account.http.patch(f"/phone_numbers/{number['id']}", json={"tags": ["t"], "customer_reference": None})
    assert r.status_code == 200, r.text
    after = r.json()["data"]
    assert after["customer_reference"] is None and after["tags"] == ["t"]
    assert {key: after[key] for key in fields if key != "customer_reference"} == {
        k: v for k, v in fields.items() if k != "customer_reference"
    }
    # Fields a PATCH does not take are ignored, as Telnyx ignores unknown keys: the number stays.
    r = account.http.patch(f"/phone_numbers/{number['id']}", json={"phone_number": "+13125550100", "id": "1"})
    assert r.status_code == 200 and r.json()["data"]["phone_number"] == number["phone_number"]
    assert r.json()["data"]["id"] == number["id"]


def test_uuids_are_stored_canonical_and_address_ids_are_numeric_or_uuids(
    server: LiveServer, account: Account
) -> None:
    number = add_one(server, account)
    group, address = uuid.uuid4(), uuid.uuid4()
    body = {"billing_group_id": str(group).upper(), "address_id": str(address).upper()}
    data = account.http.patch(f"/phone_numbers/{number['id']}", json=body).json()["data"]
    assert (data["billing_group_id"], data["address_id"]) == (str(group), str(address))


def test_null_connection_id_unassigns(server: LiveServer, account: Account) -> None:
    number = add_one(server, account)
    pbx = account.client.ip_connections.create(connection_name="pbx").data
    account.client.phone_numbers.update(number["id"], connection_id=str(pbx.id))
    r = account.http.patch(f"/phone_numbers/{number['id']}", json={"connection_id": None})
    assert r.status_code == 200, r.text
    assert (r.json()["data"]["connection_id"], r.json()["data"]["connection_name"]) == (None, None)
    assert account.client.phone_numbers.list(filter={"connection_id": str(pbx.id)}).data == []


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"tags": "vip"}, "/tags"),
        ({"tags": ["ok", 7]}, "/tags/1"),
        ({"tags": [""]}, "/tags/0"),
        ({"tags": ["x" * 256]}, "/tags/0"),
        ({"tags": [f"t{n}" for n in range(101)]}, "/tags"),
        ({"tags": ["a\x00"]}, "/tags/0"),
        ({"tags": None}, "/tags"),
        ({"connection_id": 123}, "/connection_id"),
        ({"connection_id": "1\x002"}, "/connection_id"),
        ({"hd_voice_enabled": "yes"}, "/hd_voice_enabled"),
        ({"hd_voice_enabled": None}, "/hd_voice_enabled"),
        ({"billing_group_id": "group-1"}, "/billing_group_id"),
        ({"address_id": "home"}, "/address_id"),
        ({"customer_reference": "r" * 256}, "/customer_reference"),
        ({"customer_reference": 5}, "/customer_reference"),
        ({"external_pin": ["1234"]}, "/external_pin"),
    ],
)
def test_bad_patch_fields_are_422_naming_the_field(
    server: LiveServer, account: Account, body: dict[str, Any], pointer: str
) -> None:
    number = add_one(server, account)
    r = account.http.patch(f"/phone_numbers/{number['id']}", json=body)
    assert_error(r, 422, code="10015", pointer=pointer)
    assert (
        account.http.get(f"/phone_numbers/{number['id']}").json()["data"]["updated_at"]
        == number["updated_at"]
    )


def test_every_mistake_of_a_patch_is_reported_at_once(server: LiveServer, account: Account) -> None:
    number = add_one(server, account)
    r = account.http.patch(
        f"/phone_numbers/{number['id']}", json={"tags": 1, "hd_voice_enabled": 1, "address_id": "x"}
    )
    assert r.status_code == 422
    assert {e["source"]["pointer"] for e in r.json()["errors"]} == {
        "/tags",
        "/hd_voice_enabled",
        "/address_id",
    }


@pytest.mark.parametrize(
    ("content", "status"),
    [(b"{not json", 400), (b"[]", 400), (b'"tags"', 400)],
)
def test_a_body_that_is_not_a_json_object_is_400(
    server: LiveServer, account: Account, content: bytes, status: int
) -> None:
    number = add_one(server, account)
    r = account.http.patch(
        f"/phone_numbers/{number['id']}", content=content, headers={"Content-Type": "application/json"}
    )
    assert_error(r, status, code="10015")


def test_connection_that_is_missing_or_another_accounts_is_422_10017(
    server: LiveServer, account: Account, new_account: Callable[..., Account]
) -> None:
    other = new_account()
    theirs = other.client.ip_connections.create(connection_name="theirs").data.id
    number = add_one(server, account)
    for connection_id in (str(theirs), "1293384261075731499", "not-an-id"):
        r = account.http.patch(f"/phone_numbers/{number['id']}", json={"connection_id": connection_id})
        entry = assert_error(r, 422, code="10017", pointer="/connection_id")
        assert connection_id in entry["detail"]
    entry = assert_error(
        account.http.patch(f"/phone_numbers/{number['id']}", json={"connection_id": ""}), 422, code="10017"
    )
    assert "null" in entry["detail"]
    with pytest.raises(telnyx.UnprocessableEntityError):
        account.client.phone_numbers.update(number["id"], connection_id=str(theirs))
    assert account.client.phone_numbers.retrieve(number["id"]).data.connection_id is None  # type: ignore[union-attr]


# ----------------------------------------------------------------------------------------------------
# DELETE, and deleting a connection


def test_delete_releases_the_number(
    server: LiveServer, account: Account, new_account: Callable[..., Account]
) -> None:
    number = add_one(server, account)
    pbx = account.client.ip_connections.create(connection_name="pbx").data
    account.client.phone_numbers.update(number["id"], connection_id=str(pbx.id), tags=["gone"])
    released = account.client.phone_numbers.delete(number["id"]).data
    assert released is not None
    assert (released.id, released.phone_number, released.tags) == (
        number["id"],
        number["phone_number"],
        ["gone"],
    )
    assert (released.connection_id, released.connection_name) == (pbx.id, "pbx")
    with pytest.raises(telnyx.NotFoundError):
        account.client.phone_numbers.retrieve(number["id"])
    assert_error(account.http.delete(f"/phone_numbers/{number['id']}"), 404, code="10005")
    assert number["phone_number"] not in _listed(account)
    # Out of the inventory: the operator may give it to another account.
    other = new_account()
    again = add_numbers(server.settings.database_url, other.user_id, number["phone_number"])[0]
    assert other.client.phone_numbers.retrieve(again["id"]).data.tags == []  # type: ignore[union-attr]


def test_deleting_a_connection_unassigns_its_numbers(server: LiveServer, account: Account) -> None:
    kept, moved = add_one(server, account), add_one(server, account)
    pbx = account.client.ip_connections.create(connection_name="pbx").data
    other = account.client.ip_connections.create(connection_name="other").data
    for number in (kept, moved):
        account.client.phone_numbers.update(number["id"], connection_id=str(pbx.id), tags=["keep"])
    account.client.phone_numbers.update(moved["id"], connection_id=str(other.id))
    account.client.ip_connections.delete(str(pbx.id))
    for number, expected in ((kept, (None, None)), (moved, (other.id, "other"))):
        data = account.client.phone_numbers.retrieve(number["id"]).data
        assert data is not None and (data.connection_id, data.connection_name) == expected
        assert data.tags == ["keep"]
    assert account.client.phone_numbers.list(filter={"connection_id": str(pbx.id)}).data == []
    # A later PATCH of other fields does not bring the old connection back.
    data = account.client.phone_numbers.update(kept["id"], tags=["after"]).data
    assert data is not None and data.connection_id is None
    assert {n.connection_id for n in account.client.phone_numbers.list().data} == {None, other.id}


# ----------------------------------------------------------------------------------------------------
# Filters and sort


def test_phone_number_filter_matches_digits_anywhere(server: LiveServer, account: Account) -> None:
    numbers = [fresh_number() for _ in range(4)]
    add_numbers(server.settings.database_url, account.user_id, *numbers)
    for digits in ("1312", numbers[0][-4:], numbers[1][4:9], numbers[2][1:]):
        expected = {n for n in numbers if digits in n[1:]}
        got = account.client.phone_numbers.list(filter={"phone_number": digits}).data
        assert {n.phone_number for n in got} == expected, digits
    assert _listed(account, **{"filter[phone_number]": "0000000000000"}) == []


@pytest.mark.parametrize("value", ["12", "", "+1312", "312-555", "31 2", "\uff13\uff11\uff12"])
def test_phone_number_filter_of_no_three_digits_is_422(account: Account, value: str) -> None:
    r = account.http.get("/phone_numbers", params={"filter[phone_number]": value})
    entry = assert_error(r, 422, code="10015", pointer="/filter/phone_number")
    assert entry["source"]["parameter"] == "filter[phone_number]"


def test_tag_filters(server: LiveServer, account: Account) -> None:
    a, b, c = (add_one(server, account) for _ in range(3))
    account.client.phone_numbers.update(a["id"], tags=["vip", "east"])
    account.client.phone_numbers.update(b["id"], tags=["east"])
    assert set(_listed(account, **{"filter[tag]": "east"})) == {a["phone_number"], b["phone_number"]}
    assert [n.phone_number for n in account.client.phone_numbers.list(filter={"tag": "vip"}).data] == [
        a["phone_number"]
    ]
    assert _listed(account, **{"filter[tag]": "VIP"}) == []  # exact matches only
    assert _listed(account, **{"filter[tag]": "vi"}) == []
    untagged = account.client.phone_numbers.list(filter={"without_tags": "true"}).data
    assert [n.phone_number for n in untagged] == [c["phone_number"]]
    assert len(_listed(account, **{"filter[without_tags]": "false"})) == 3  # other values are ignored


def test_document_field_filters(server: LiveServer, account: Account) -> None:
    us = add_one(server, account)
    gb = add_one(server, account, fresh_number("+44207", length=13, country="GB"))
    free = add_one(server, account, fresh_number("+1800", kind="toll_free"))
    group = str(uuid.uuid4())
    account.client.phone_numbers.update(us["id"], customer_reference="ref-1", billing_group_id=group)

    def listed(**filter: Any) -> set[str]:
        return {n.phone_number for n in account.client.phone_numbers.list(filter=filter).data}  # type: ignore[arg-type]

    assert listed(country_iso_alpha2="GB") == {gb["phone_number"]}
    assert listed(country_iso_alpha2=["gb", "US"]) == {
        us["phone_number"],
        gb["phone_number"],
        free["phone_number"],
    }
    assert listed(number_type={"eq": "toll_free"}) == {free["phone_number"]}
    assert listed(number_type={"eq": "mobile"}) == set()
    assert listed(status="active") == {us["phone_number"], gb["phone_number"], free["phone_number"]}
    assert listed(status="deleted") == set()
    assert listed(customer_reference="ref-1") == {us["phone_number"]}
    assert listed(billing_group_id=group.upper()) == {us["phone_number"]}
    assert listed(billing_group_id="null") == {gb["phone_number"], free["phone_number"]}
    assert listed(billing_group_id="not-a-group") == set()


def test_connection_name_filters(server: LiveServer, account: Account) -> None:
    a, b, _ = (add_one(server, account) for _ in range(3))
    office = account.client.ip_connections.create(connection_name="Main Office").data
    depot = account.client.ip_connections.create(connection_name="Depot 50%").data
    account.client.phone_numbers.update(a["id"], connection_id=str(office.id))
    account.client.phone_numbers.update(b["id"], connection_id=str(depot.id))

    def listed(**name: str) -> set[str]:
        filters: Any = {"voice_connection_name": name}
        return {n.phone_number for n in account.client.phone_numbers.list(filter=filters).data}

    assert listed(eq="Main Office") == {a["phone_number"]}
    assert listed(eq="main office") == set()
    assert listed(contains="OFFIC") == {a["phone_number"]}
    assert listed(starts_with="main") == {a["phone_number"]}
    assert listed(ends_with="50%") == {b["phone_number"]}
    assert listed(contains="t 5") == {b["phone_number"]}
    assert listed(contains="%%%") == set()  # LIKE's wildcards are literal


@pytest.mark.parametrize(
    ("params", "pointer"),
    [
        ({"filter[status]": "enabled"}, "/filter/status"),
        ({"filter[number_type][eq]": "landline"}, "/filter/number_type/eq"),
        ({"filter[country_iso_alpha2]": "USA"}, "/filter/country_iso_alpha2"),
        ({"filter[country_iso_alpha2]": ","}, "/filter/country_iso_alpha2"),
        ({"filter[voice.connection_name][contains]": "ab"}, "/filter/voice.connection_name/contains"),
        ({"filter[voice.connection_name][starts_with]": "a"}, "/filter/voice.connection_name/starts_with"),
        ({"filter[voice.connection_name][ends_with]": ""}, "/filter/voice.connection_name/ends_with"),
        ({"filter[tag]": "a\x00"}, "/filter/tag"),
        ({"sort": "usage_payment_method"}, "/sort"),
        ({"sort": "-phone_number"}, "/sort"),
        ({"handle_messaging_profile_error": "yes"}, "/handle_messaging_profile_error"),
    ],
)
def test_bad_filter_values_are_422_naming_the_parameter(
    account: Account, params: dict[str, str], pointer: str
) -> None:
    entry = assert_error(
        account.http.get("/phone_numbers", params=params), 422, code="10015", pointer=pointer
    )
    assert entry["source"]["parameter"] == next(iter(params))


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("filter[source]", "Filter not supported"),
        ("filter[emergency_address_id]", "Filter not supported"),
        ("filter[voice.usage_payment_method]", "Filter not supported"),
        ("filter[number_type]", "Invalid filter"),
        ("filter[phone_number][contains]", "Invalid filter"),
        ("filter[connection_name]", "Invalid filter"),
        ("filter[nope]", "Invalid filter"),
        ("filter", "Invalid filter"),
    ],
)
def test_unsupported_and_unknown_filters_are_400_saying_which_are_supported(
    account: Account, name: str, title: str
) -> None:
    entry = assert_error(
        account.http.get("/phone_numbers", params={name: "x"}), 400, code="10015", title=title
    )
    assert entry["source"]["parameter"] == name
    assert "filter[phone_number]" in entry["detail"] and "filter[tag]" in entry["detail"]


def test_the_sdk_sees_an_unsupported_filter_as_a_bad_request(account: Account) -> None:
    with pytest.raises(telnyx.BadRequestError) as err:
        account.client.phone_numbers.list(filter={"source": "ported"})
    assert "not support" in err.value.body["errors"][0]["detail"]  # type: ignore[index]


def test_sorts(server: LiveServer, account: Account) -> None:
    numbers = [add_one(server, account) for _ in range(3)]
    named = account.client.ip_connections.create(connection_name="b-name").data
    first = account.client.ip_connections.create(connection_name="a-name").data
    account.client.phone_numbers.update(numbers[0]["id"], connection_id=str(named.id))
    account.client.phone_numbers.update(numbers[1]["id"], connection_id=str(first.id))
    by_number = account.client.phone_numbers.list(sort="phone_number").data
    assert [n.phone_number for n in by_number] == sorted(n["phone_number"] for n in numbers)
    by_purchase = account.client.phone_numbers.list(sort="purchased_at").data
    assert [n.id for n in by_purchase] == [n["id"] for n in numbers]
    by_name = account.client.phone_numbers.list(sort="connection_name").data
    assert [n.connection_name for n in by_name] == [None, "a-name", "b-name"]


# ----------------------------------------------------------------------------------------------------
# Accounts and keys


def test_another_accounts_numbers_are_404_and_unchanged(
    server: LiveServer, account: Account, new_account: Callable[..., Account]
) -> None:
    other = new_account()
    number = add_one(server, account)
    pbx = account.client.ip_connections.create(connection_name="pbx").data
    account.client.phone_numbers.update(number["id"], connection_id=str(pbx.id), tags=["mine"])
    path = f"/phone_numbers/{number['id']}"
    assert_error(other.http.get(path), 404, code="10005")
    assert_error(other.http.patch(path, json={"tags": ["stolen"], "connection_id": None}), 404, code="10005")
    assert_error(other.http.delete(path), 404, code="10005")
    with pytest.raises(telnyx.NotFoundError):
        other.client.phone_numbers.retrieve(number["id"])
    listing = other.http.get("/phone_numbers").json()
    assert listing["data"] == [] and listing["meta"]["total_results"] == 0
    digits = number["phone_number"][1:]
    for params in (
        {"filter[phone_number]": digits},
        {"filter[connection_id]": str(pbx.id)},
        {"filter[tag]": "mine"},
    ):
        assert _listed(other, **params) == []
    data = account.client.phone_numbers.retrieve(number["id"]).data
    assert data is not None and (data.tags, data.connection_id) == (["mine"], pbx.id)
    # Nor can the other account point its own number at this account's connection.
    theirs = add_one(server, other)
    r = other.http.patch(f"/phone_numbers/{theirs['id']}", json={"connection_id": str(pbx.id)})
    assert_error(r, 422, code="10017", pointer="/connection_id")


def test_a_read_only_key_reads_but_does_not_write(server: LiveServer, account: Account) -> None:
    number = add_one(server, account)
    key = mint_key(server.settings.database_url, account.user_id, read_only=True)
    with httpx.Client(base_url=server.api, headers={"Authorization": f"Bearer {key}"}, timeout=10) as http:
        assert http.get(f"/phone_numbers/{number['id']}").status_code == 200
        assert_error(http.patch(f"/phone_numbers/{number['id']}", json={"tags": ["x"]}), 403, code="10010")
        assert_error(http.delete(f"/phone_numbers/{number['id']}"), 403, code="10010")
    assert account.client.phone_numbers.retrieve(number["id"]).data.tags == []  # type: ignore[union-attr]


# ----------------------------------------------------------------------------------------------------
# Races (the locks of store/locks.py; docs/concurrency.md)

# Disjoint fields of a number, each PATCHed by its own request: afterwards every one holds its value.
RACED: list[tuple[str, Any]] = [
    ("tags", ["raced"]),
    ("customer_reference", "raced-ref"),
    ("billing_group_id", "6f1b0f0e-4c36-4a53-9e0c-0d6c1b2f3a4d"),
    ("address_id", "1293384261075731499"),
    ("external_pin", "9876"),
    ("hd_voice_enabled", True),
]


def _async_client(account: Account, server: LiveServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.api,
        headers={"Authorization": f"Bearer {account.key}"},
        timeout=30,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=0),
    )


def test_parallel_patches_lose_no_update(server: LiveServer, account: Account) -> None:
    rounds = 6
    numbers = add_numbers(
        server.settings.database_url, account.user_id, *(fresh_number() for _ in range(rounds))
    )
    pbx = account.client.ip_connections.create(connection_name="pbx").data
    fields = [*RACED, ("connection_id", pbx.id)]

    async def go() -> int:
        lost = 0
        async with _async_client(account, server) as http:
            for number in numbers:
                path = f"/phone_numbers/{number['id']}"
                answers = await asyncio.gather(*(http.patch(path, json={k: v}) for k, v in fields))
                assert [r.status_code for r in answers] == [200] * len(fields), [r.text for r in answers]
                record = (await http.get(path)).json()["data"]
                lost += sum(record[k] != v for k, v in fields)
        return lost

    assert asyncio.run(go()) == 0, "updates were lost"
    assert {n.connection_name for n in account.client.phone_numbers.list().data} == {"pbx"}


def test_patches_racing_a_connection_delete_end_consistent(server: LiveServer, account: Account) -> None:
    """PATCHes of the connection's numbers, and of numbers moving to it, sent with its DELETE: the
    DELETE succeeds, each PATCH is a 200 or (one naming the connection, second) a 422 10017, never a
    500 nor a deadlock, and afterwards no number names the connection."""
    statuses: Counter[tuple[bool, int]] = Counter()

    async def race(doomed: str, on: list[dict[str, Any]], moving: list[dict[str, Any]]) -> None:
        async with _async_client(account, server) as http:
            answers = await asyncio.gather(
                http.delete(f"/ip_connections/{doomed}"),
                http.patch(f"/phone_numbers/{on[0]['id']}", json={"tags": ["t"]}),
                http.patch(f"/phone_numbers/{on[1]['id']}", json={"connection_id": doomed, "tags": ["u"]}),
                *(http.patch(f"/phone_numbers/{n['id']}", json={"connection_id": doomed}) for n in moving),
            )
            assert answers[0].status_code == 200, answers[0].text
            # A PATCH of other fields is a 200 whichever comes first; one naming the connection is a
            # 200 before the DELETE and a 422 10017 after it (the connection is gone).
            for names_it, answer in zip([False, True, True, True], answers[1:], strict=True):
                statuses[(names_it, answer.status_code)] += 1
                if names_it and answer.status_code == 422:
                    assert answer.json()["errors"][0]["code"] == "10017", answer.text
                else:
                    assert answer.status_code == 200, answer.text
                    assert answer.json()["data"]["connection_id"] in (doomed, None)
            for number in (*on, *moving):
                after = (await http.get(f"/phone_numbers/{number['id']}")).json()["data"]
                assert (after["connection_id"], after["connection_name"]) == (None, None), after

    for _ in range(8):
        doomed = account.client.ip_connections.create(connection_name="doomed").data.id
        assert doomed is not None
        on, moving = (
            add_numbers(server.settings.database_url, account.user_id, fresh_number(), fresh_number())
            for _ in range(2)
        )
        for number in on:
            account.client.phone_numbers.update(number["id"], connection_id=doomed)
        asyncio.run(race(doomed, on, moving))
    assert not {status for _, status in statuses} - {200, 422}, statuses


def test_a_patch_racing_the_numbers_delete_is_200_or_404(server: LiveServer, account: Account) -> None:
    numbers = add_numbers(server.settings.database_url, account.user_id, *(fresh_number() for _ in range(6)))

    async def go() -> Counter[int]:
        seen: Counter[int] = Counter()
        async with _async_client(account, server) as http:
            for number in numbers:
                path = f"/phone_numbers/{number['id']}"
                answers = await asyncio.gather(
                    http.delete(path),
                    *(http.patch(path, json={"tags": [str(i)]}) for i in range(4)),
                    http.delete(path),
                )
                deletes = [answers[0].status_code, answers[-1].status_code]
                assert sorted(deletes) == [200, 404], [r.text for r in answers]
                for answer in answers[1:-1]:
                    seen[answer.status_code] += 1
                    assert answer.status_code in (200, 404), answer.text
                assert (await http.get(path)).status_code == 404
        return seen

    assert set(asyncio.run(go())) <= {200, 404}
