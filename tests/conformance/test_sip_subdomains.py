"""`inbound.sip_subdomain`: one connection per subdomain on the whole server, and the error never says
whose it is (tenants are walled off)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conformance._connections import assert_error
from tests.conftest import Account


def subdomain() -> str:
    return "trunk-" + uuid.uuid4().hex[:10]


def test_a_subdomain_taken_in_another_account_is_10012_without_naming_it(
    account: Account, new_account: Callable[..., Account]
) -> None:
    sub = subdomain()
    other = new_account()
    held = other.http.post(
        "/ip_connections", json={"connection_name": "a", "inbound": {"sip_subdomain": sub}}
    )
    assert held.status_code == 201, held.text
    for path in ("/ip_connections", "/fqdn_connections"):
        r = account.http.post(path, json={"connection_name": "b", "inbound": {"sip_subdomain": sub}})
        entry = assert_error(r, 422, code="10012", pointer="/inbound/sip_subdomain")
        assert other.user_id not in r.text and held.json()["data"]["id"] not in r.text, entry
    mine = account.http.post("/ip_connections", json={"connection_name": "c"}).json()["data"]["id"]
    r = account.http.patch(f"/ip_connections/{mine}", json={"inbound": {"sip_subdomain": sub}})
    assert_error(r, 422, code="10012", pointer="/inbound/sip_subdomain")
    # The holder may keep (re-save) its own subdomain, and once it lets go another may take it.
    conn_id = held.json()["data"]["id"]
    again = other.http.patch(f"/ip_connections/{conn_id}", json={"inbound": {"sip_subdomain": sub}})
    assert again.status_code == 200, again.text
    other.http.patch(f"/ip_connections/{conn_id}", json={"inbound": {"sip_subdomain": None}})
    taken = account.http.patch(f"/ip_connections/{mine}", json={"inbound": {"sip_subdomain": sub}})
    assert taken.status_code == 200, taken.text
    assert taken.json()["data"]["inbound"]["sip_subdomain"] == sub


def test_simultaneous_creates_of_one_subdomain_one_wins(
    account: Account, new_account: Callable[..., Account]
) -> None:
    sub = subdomain()
    accounts = [account, *(new_account() for _ in range(3))]

    def attempt(i: int) -> httpx.Response:
        return accounts[i % len(accounts)].http.post(
            "/ip_connections", json={"connection_name": f"race{i}", "inbound": {"sip_subdomain": sub}}
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(attempt, range(8)))
    assert sorted(r.status_code for r in responses) == [201] + [422] * 7, [r.text for r in responses]
    for r in responses:
        if r.status_code == 422:
            assert_error(r, 422, code="10012", pointer="/inbound/sip_subdomain")
