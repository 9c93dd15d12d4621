"""Two accounts on one server: neither sees, changes, references nor counts the other's records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conformance._connections import address, assert_error, credential, profile
from tests.conftest import Account


@dataclass
class Owned:
    """What account A holds; account B probes it."""

    credential: Any
    fqdn: Any
    ip: Any
    ip_record: Any
    profile_id: str | None


@pytest.fixture
def pair(new_account: Callable[..., Account]) -> tuple[Account, Account, Owned]:
    a, b = new_account(), new_account()
    ip = a.client.ip_connections.create(connection_name="a-ip").data
    owned = Owned(
        credential=credential(a.client, connection_name="a-cred"),
        fqdn=a.client.fqdn_connections.create(connection_name="a-fqdn").data,
        ip=ip,
        ip_record=a.client.ips.create(ip_address=address(), port=5099, connection_id=ip.id).data,
        profile_id=None,
    )
    return a, b, owned


def _paths(owned: Owned) -> list[str]:
    return [
        f"/credential_connections/{owned.credential.id}",
        f"/fqdn_connections/{owned.fqdn.id}",
        f"/ip_connections/{owned.ip.id}",
        f"/connections/{owned.credential.id}",
        f"/connections/{owned.fqdn.id}",
        f"/connections/{owned.ip.id}",
        f"/ips/{owned.ip_record.id}",
    ]


def test_retrieve_other_accounts_records_is_404(pair: tuple[Account, Account, Owned]) -> None:
    a, b, owned = pair
    for path in _paths(owned):
        assert_error(b.http.get(path), 404, code="10005", pointer="/")
        assert a.http.get(path).status_code == 200, path


def test_update_other_accounts_records_is_404_and_changes_nothing(
    pair: tuple[Account, Account, Owned],
) -> None:
    a, b, owned = pair
    for path in _paths(owned):
        if path.startswith("/connections/"):
            continue  # the /connections view is read-only
        body: dict[str, Any] = {"connection_name": "hijacked", "active": False}
        if path.startswith("/ips/"):
            body = {"ip_address": address()}
        assert_error(b.http.patch(path, json=body), 404, code="10005", pointer="/")
    assert a.client.credential_connections.retrieve(owned.credential.id).data.connection_name == "a-cred"
    assert a.client.fqdn_connections.retrieve(owned.fqdn.id).data.active is True
    assert a.client.ip_connections.retrieve(owned.ip.id).data.connection_name == "a-ip"
    assert a.client.ips.retrieve(owned.ip_record.id).data.ip_address == owned.ip_record.ip_address


def test_delete_other_accounts_records_is_404_and_deletes_nothing(
    pair: tuple[Account, Account, Owned],
) -> None:
    a, b, owned = pair
    for path in _paths(owned):
        if path.startswith("/connections/"):
            continue
        assert_error(b.http.delete(path), 404, code="10005", pointer="/")
    for path in _paths(owned):
        assert a.http.get(path).status_code == 200, path


def test_check_registration_status_of_other_accounts_connection_is_404(
    pair: tuple[Account, Account, Owned],
) -> None:
    a, b, owned = pair
    path = f"/credential_connections/{owned.credential.id}/actions/check_registration_status"
    assert_error(b.http.post(path), 404, code="10005", pointer="/")
    assert a.http.post(path).json()["data"]["status"] == "Not Registered"


@pytest.mark.parametrize(
    "path", ["/connections", "/credential_connections", "/fqdn_connections", "/ip_connections"]
)
def test_list_excludes_other_accounts_records_and_totals(
    pair: tuple[Account, Account, Owned], path: str
) -> None:
    a, b, _ = pair
    mine = b.client.ip_connections.create(connection_name="b-ip").data
    b_list = b.http.get(path).json()
    a_list = a.http.get(path).json()
    a_ids = {c["id"] for c in a_list["data"]}
    assert not a_ids & {c["id"] for c in b_list["data"]}
    expected_b = [mine.id] if path in ("/connections", "/ip_connections") else []
    assert [c["id"] for c in b_list["data"]] == expected_b
    assert b_list["meta"]["total_results"] == len(expected_b)
    assert a_list["meta"]["total_results"] == (3 if path == "/connections" else 1)


def test_list_filters_do_not_reach_other_accounts(pair: tuple[Account, Account, Owned]) -> None:
    a, b, owned = pair
    r = b.http.get("/connections", params={"filter[connection_name][contains]": "a-cred"})
    assert r.json()["meta"]["total_results"] == 0
    r = a.http.get("/connections", params={"filter[connection_name][contains]": "a-cred"})
    assert [c["id"] for c in r.json()["data"]] == [owned.credential.id]
    assert b.http.get("/ips", params={"filter[connection_id]": owned.ip.id}).json()["data"] == []
    assert b.http.get("/ips").json()["meta"]["total_results"] == 0


def test_create_ip_on_other_accounts_connection_is_refused(pair: tuple[Account, Account, Owned]) -> None:
    _, b, owned = pair
    r = b.http.post("/ips", json={"ip_address": address(), "connection_id": owned.ip.id})
    assert_error(r, 422, code="10017", pointer="/connection_id")


def test_update_default_ip_id_to_other_accounts_ip_is_refused(pair: tuple[Account, Account, Owned]) -> None:
    _, b, owned = pair
    mine = b.client.ip_connections.create().data
    for value in (owned.ip_record.id, owned.ip_record.ip_address):
        r = b.http.patch(f"/ip_connections/{mine.id}", json={"inbound": {"default_primary_ip_id": value}})
        assert_error(r, 422, pointer="/inbound/default_primary_ip_id")


def test_connection_with_other_accounts_profile_is_refused(pair: tuple[Account, Account, Owned]) -> None:
    a, b, _ = pair
    theirs = profile(a.http, "a-profile")
    for path in ("/ip_connections", "/fqdn_connections"):
        r = b.http.post(
            path, json={"connection_name": "b", "outbound": {"outbound_voice_profile_id": theirs}}
        )
        assert_error(r, 422, code="10017", pointer="/outbound/outbound_voice_profile_id")
    mine = b.client.ip_connections.create().data
    r = b.http.patch(f"/ip_connections/{mine.id}", json={"outbound": {"outbound_voice_profile_id": theirs}})
    assert_error(r, 422, code="10017", pointer="/outbound/outbound_voice_profile_id")
    # The profile's count did not move, and B cannot see it at all.
    assert a.http.get(f"/outbound_voice_profiles/{theirs}").json()["data"]["connections_count"] == 0
    assert b.http.get(f"/outbound_voice_profiles/{theirs}").status_code == 404


def test_list_filter_by_other_accounts_profile_is_empty(pair: tuple[Account, Account, Owned]) -> None:
    a, b, _ = pair
    theirs = profile(a.http, "a-profile")
    a.client.ip_connections.create(outbound={"outbound_voice_profile_id": theirs})
    assert (
        b.http.get("/connections", params={"filter[outbound_voice_profile_id]": theirs}).json()["data"] == []
    )
    assert (
        len(a.http.get("/connections", params={"filter[outbound_voice_profile_id]": theirs}).json()["data"])
        == 1
    )


def test_create_fqdn_on_other_accounts_connection_is_refused(pair: tuple[Account, Account, Owned]) -> None:
    _, b, owned = pair
    r = b.http.post(
        "/fqdns",
        json={
            "connection_id": owned.fqdn.id,
            "fqdn": "iso.example.com",
            "dns_record_type": "a",
            "port": 5060,
        },
    )
    assert_error(r, 422, code="10017", pointer="/connection_id")


def test_list_filter_fqdn_does_not_match_other_accounts_fqdns(pair: tuple[Account, Account, Owned]) -> None:
    a, b, owned = pair
    r = a.http.post(
        "/fqdns",
        json={
            "connection_id": owned.fqdn.id,
            "fqdn": f"{owned.fqdn.id}.example.com",
            "dns_record_type": "a",
            "port": 5060,
        },
    )
    assert r.status_code == 201, r.text
    host = f"{owned.fqdn.id}.example.com"
    assert b.http.get("/connections", params={"filter[fqdn]": host}).json()["data"] == []
    assert [c["id"] for c in a.http.get("/connections", params={"filter[fqdn]": host}).json()["data"]] == [
        owned.fqdn.id
    ]
