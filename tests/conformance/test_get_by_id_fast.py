"""GET by id of IPs, FQDNs, outbound voice profiles, phone numbers and `/v2/connections/{id}`, which
read with statements built once (on SQLite straight on sqlite3: store/sqlite.py, `first_row`): each
answers what the same record is everywhere else (its list entry, its create or update response, the
row SQLAlchemy reads), with the same keys in the same order and the same JSON types, and every id that
names nothing of the account is the same 404."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.conformance._connections import address, assert_error, credential, profile
from tests.conformance.test_phone_numbers import add_one
from tests.conftest import Account
from tests.server import LiveServer
from trunkline.store import connection_documents, fqdns, ips, outbound_voice_profiles, phone_numbers
from trunkline.store import connections as store_connections
from trunkline.store.db import Database


def _get(account: Account, path: str) -> dict[str, Any]:
    r = account.http.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["data"], body
    return body["data"]  # type: ignore[no-any-return]


def _listed(account: Account, path: str, id: str) -> dict[str, Any]:
    r = account.http.get(path, params={"page[size]": 250})
    assert r.status_code == 200, r.text
    [entry] = [e for e in r.json()["data"] if e["id"] == id]
    return entry  # type: ignore[no-any-return]


def _same(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """Equal, key order and JSON types included (1 == True and 1 == 1.0 in Python, not in JSON)."""
    assert list(actual) == list(expected)
    assert actual == expected
    for key, value in expected.items():
        assert type(actual[key]) is type(value), (key, actual[key], value)


@pytest.fixture
def records(server: LiveServer, account: Account) -> dict[str, Any]:
    """One of each, tied together: a profile two connections use, an IP and an FQDN on connections,
    a number on a connection (so its `connection_name` is filled) and one on none."""
    http = account.http
    profile_id = profile(http, "fast-path")
    ip_conn = http.post(
        "/ip_connections",
        json={"connection_name": "fast-ip", "outbound": {"outbound_voice_profile_id": profile_id}},
    ).json()["data"]
    fqdn_conn = http.post(
        "/fqdn_connections",
        json={"connection_name": "fast-fqdn", "outbound": {"outbound_voice_profile_id": profile_id}},
    ).json()["data"]
    cred = credential(account.client, connection_name="fast-cred")
    ip = http.post("/ips", json={"ip_address": address(), "port": 5071, "connection_id": ip_conn["id"]})
    bare_ip = http.post("/ips", json={"ip_address": address()})
    a_record = http.post(
        "/fqdns",
        json={
            "connection_id": fqdn_conn["id"],
            "fqdn": f"pbx.{fqdn_conn['id']}.example.com",
            "dns_record_type": "a",
            "port": 5080,
        },
    )
    srv = http.post(
        "/fqdns",
        json={
            "connection_id": fqdn_conn["id"],
            "fqdn": f"srv.{fqdn_conn['id']}.example.com",
            "dns_record_type": "srv",
        },
    )
    assert {ip.status_code, bare_ip.status_code, a_record.status_code, srv.status_code} == {201}, [
        ip.text,
        bare_ip.text,
        a_record.text,
        srv.text,
    ]
    assigned = add_one(server, account)
    r = http.patch(f"/phone_numbers/{assigned['id']}", json={"connection_id": ip_conn["id"], "tags": ["a"]})
    assert r.status_code == 200, r.text
    return {
        "profile": profile_id,
        "connections": [ip_conn["id"], fqdn_conn["id"], cred.id],
        "ips": [ip.json()["data"], bare_ip.json()["data"]],
        "fqdns": [a_record.json()["data"], srv.json()["data"]],
        "numbers": [r.json()["data"], add_one(server, account)],
    }


def test_ip_and_fqdn_are_their_list_entry_and_create_response(
    account: Account, records: dict[str, Any]
) -> None:
    for created in records["ips"]:
        got = _get(account, f"/ips/{created['id']}")
        _same(got, created)
        _same(got, _listed(account, "/ips", created["id"]))
    assert records["ips"][1]["connection_id"] is None and records["ips"][1]["port"] == 5060
    for created in records["fqdns"]:
        got = _get(account, f"/fqdns/{created['id']}")
        _same(got, created)
        _same(got, _listed(account, "/fqdns", created["id"]))
    assert records["fqdns"][1]["port"] is None  # an SRV record's null port stays null


def test_profile_is_its_list_entry_with_its_count(account: Account, records: dict[str, Any]) -> None:
    id = records["profile"]
    got = _get(account, f"/outbound_voice_profiles/{id}")
    assert got["connections_count"] == 2
    assert list(got)[-1] == "connections_count"
    _same(got, _listed(account, "/outbound_voice_profiles", id))
    r = account.http.patch(f"/outbound_voice_profiles/{id}", json={"name": "fast-path-2", "tags": ["x"]})
    assert r.status_code == 200, r.text
    _same(_get(account, f"/outbound_voice_profiles/{id}"), r.json()["data"])
    # A profile no connection uses counts 0, not null or absent.
    other = profile(account.http, "fast-path-empty")
    assert _get(account, f"/outbound_voice_profiles/{other}")["connections_count"] == 0


def test_phone_number_is_its_list_entry_and_update_response(
    account: Account, records: dict[str, Any]
) -> None:
    assigned, unassigned = records["numbers"]
    got = _get(account, f"/phone_numbers/{assigned['id']}")
    assert (got["connection_name"], got["tags"]) == ("fast-ip", ["a"])
    _same(got, assigned)
    _same(got, _listed(account, "/phone_numbers", assigned["id"]))
    got = _get(account, f"/phone_numbers/{unassigned['id']}")
    assert got["connection_id"] is None and got["connection_name"] is None
    _same(got, _listed(account, "/phone_numbers", unassigned["id"]))


def test_any_connection_is_its_list_entry(account: Account, records: dict[str, Any]) -> None:
    for id in records["connections"]:
        _same(_get(account, f"/connections/{id}"), _listed(account, "/connections", id))
    [ip_conn, fqdn_conn, cred] = records["connections"]
    assert _get(account, f"/connections/{ip_conn}")["outbound_voice_profile_id"] == records["profile"]
    assert _get(account, f"/connections/{cred}")["outbound_voice_profile_id"] is None
    assert _get(account, f"/connections/{fqdn_conn}")["record_type"] == "fqdn_connection"


def _paths(records: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(collection, an id it holds, the noun of its 404)."""
    return [
        ("/ips", records["ips"][0]["id"], "IP"),
        ("/fqdns", records["fqdns"][0]["id"], "FQDN"),
        ("/outbound_voice_profiles", records["profile"], "Outbound voice profile"),
        ("/phone_numbers", records["numbers"][0]["id"], "Phone number"),
        ("/connections", records["connections"][0], "Connection"),
    ]


@pytest.mark.parametrize(
    "bad",
    [
        "0",
        "12345678901234567890",
        "123456789012345678901",  # longer than any id
        "abc",
        "-1",
        "1e3",
        "٣",  # a digit to str.isdigit(), not ASCII
        "00000000-0000-4000-8000-000000000000",
        "00000000000040008000000000000000",  # a UUID without hyphens
        "%00",
        "1%00",
        "%20",
    ],
)
def test_ids_that_name_nothing_are_the_same_404(account: Account, records: dict[str, Any], bad: str) -> None:
    for collection, _, noun in _paths(records):
        r = account.http.get(f"{collection}/{bad}")
        entry = assert_error(r, 404, code="10005", pointer="/")
        assert noun in entry["detail"], entry


def test_another_accounts_records_are_404(
    new_account: Callable[..., Account], account: Account, records: dict[str, Any]
) -> None:
    other = new_account()
    for collection, id, noun in _paths(records):
        entry = assert_error(other.http.get(f"{collection}/{id}"), 404, code="10005", pointer="/")
        assert entry["detail"] == f"{noun} {id} not found.", entry
        assert account.http.get(f"{collection}/{id}").status_code == 200


def test_fast_reads_give_what_sqlalchemy_reads(
    server: LiveServer, account: Account, records: dict[str, Any]
) -> None:
    """The store's statements built once against its statements built per request, value and type, on
    both engines (sqlite3's own values on SQLite, SQLAlchemy's result processing on PostgreSQL)."""
    user_id = account.user_id

    async def go() -> None:
        db = Database(server.settings.database_url)
        try:
            async with db.transaction() as conn:
                for store, ids in (
                    (ips, [r["id"] for r in records["ips"]]),
                    (fqdns, [r["id"] for r in records["fqdns"]]),
                    (phone_numbers, [r["id"] for r in records["numbers"]]),
                ):
                    for id in ids:
                        fast = await store.get_record(conn, user_id=user_id, id=id)
                        slow = await store.get(conn, user_id=user_id, id=id)
                        assert fast is not None and slow is not None
                        expected = {key: slow[key] for key in fast}
                        _same(fast, expected)
                        assert await store.get_record(conn, user_id="someone-else", id=id) is None
                id = records["profile"]
                row = await outbound_voice_profiles.get(conn, user_id=user_id, id=id)
                assert row is not None
                counts = await store_connections.count_by_profile(conn, profile_ids=[id])
                found = await outbound_voice_profiles.get_document(conn, user_id=user_id, id=id)
                assert found == (row["document"], counts.get(id, 0))
                assert await outbound_voice_profiles.get_document(conn, user_id="x", id=id) is None
                for id in records["connections"]:
                    row = await store_connections.get(conn, user_id=user_id, id=id)
                    assert row is not None
                    document = await connection_documents.get_document(conn, user_id=user_id, id=id)
                    assert document == row["document"]
                    assert await connection_documents.get_document(conn, user_id="x", id=id) is None
        finally:
            await db.dispose()

    asyncio.run(go())
