"""/v2/access_ip_ranges through the official SDK: bare create/delete, the page, filters, validation.

Every account here first allows 127.0.0.0/8, the address the tests call from: the gate enforces a range
as soon as it is loaded, and the other ranges would otherwise lock the account out (see tests/frontdoor).
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
import telnyx

from tests.conftest import Account

LOOPBACK = "127.0.0.0/8"


@pytest.fixture
def acct(account: Account) -> Account:
    account.client.access_ip_ranges.create(cidr_block=LOOPBACK, description="the tests")
    return account


def test_create_returns_the_bare_object_pending_with_status_200(account: Account) -> None:
    raw = account.client.access_ip_ranges.with_raw_response.create(
        cidr_block="127.0.0.0/8", description="office"
    )
    assert raw.status_code == 200
    body = raw.http_response.json()
    assert "data" not in body
    assert set(body) == {"id", "cidr_block", "status", "user_id", "description", "created_at", "updated_at"}
    created = raw.parse()
    assert created.status == "pending"
    assert created.user_id == account.user_id
    assert created.cidr_block == "127.0.0.0/8"
    assert created.description == "office"
    assert created.created_at is not None and created.created_at.tzinfo is not None


def test_create_normalizes_the_block(acct: Account) -> None:
    v6 = acct.client.access_ip_ranges.create(cidr_block="2001:DB8:0:0::/48")
    assert v6.cidr_block == "2001:db8::/48"
    host = acct.client.access_ip_ranges.create(cidr_block="198.51.100.7")
    assert host.cidr_block == "198.51.100.7/32"
    assert host.description is None


@pytest.mark.parametrize(
    ("cidr", "words"),
    [
        ("10.0.0.5/24", "10.0.0.0/24"),  # host bits set: the detail names the network
        ("300.1.1.0/24", "CIDR block"),
        ("10.0.0.0/33", "CIDR block"),
        ("not-a-network", "CIDR block"),
        ("fe80::%eth0/64", "zone"),
        ("::ffff:10.0.0.0/104", "IPv4"),
    ],
)
def test_create_with_an_invalid_block_is_422(account: Account, cidr: str, words: str) -> None:
    with pytest.raises(telnyx.UnprocessableEntityError) as err:
        account.client.access_ip_ranges.create(cidr_block=cidr)
    entry = err.value.body["errors"][0]  # type: ignore[index]
    assert entry["code"] == "10015"
    assert entry["source"]["pointer"] == "/cidr_block"
    assert words in entry["detail"]


def test_create_without_a_block_or_with_a_number_is_422(account: Account) -> None:
    r = account.http.post("/access_ip_ranges", json={"description": "x"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["source"]["pointer"] == "/cidr_block"
    r = account.http.post("/access_ip_ranges", json={"cidr_block": 167772160})
    assert r.status_code == 422
    assert r.json()["errors"][0]["source"]["pointer"] == "/cidr_block"


def test_duplicate_block_in_one_account_is_10012_but_another_account_may_use_it(
    acct: Account, new_account
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(telnyx.UnprocessableEntityError) as err:
        acct.client.access_ip_ranges.create(cidr_block="127.0.0.0/8")
    entry = err.value.body["errors"][0]  # type: ignore[index]
    assert (entry["code"], entry["source"]["pointer"]) == ("10012", "/cidr_block")
    other = new_account()
    assert other.client.access_ip_ranges.create(cidr_block=LOOPBACK).cidr_block == LOOPBACK


def test_list_pages_by_20_and_walks_every_page(acct: Account) -> None:
    for i in range(24):
        acct.client.access_ip_ranges.create(cidr_block=f"10.{i}.0.0/16")
    assert len(acct.client.access_ip_ranges.list().data) == 20
    meta = acct.http.get("/access_ip_ranges").json()["meta"]
    assert meta == {"page_number": 1, "page_size": 20, "total_pages": 2, "total_results": 25}
    walked = [r.cidr_block for r in acct.client.access_ip_ranges.list(page_size=7)]
    assert len(walked) == 25 and walked[0] == LOOPBACK
    assert len(set(walked)) == 25


def test_list_page_size_over_250_is_invalid_pagination(acct: Account) -> None:
    r = acct.http.get("/access_ip_ranges", params={"page[size]": 251})
    assert r.status_code == 422
    assert r.json()["errors"][0]["title"] == "Invalid pagination"


def test_list_filters_on_cidr_block(acct: Account) -> None:
    for cidr in ("10.1.0.0/16", "10.2.0.0/16", "192.168.10.0/24", "2001:db8:abcd::/48"):
        acct.client.access_ip_ranges.create(cidr_block=cidr)

    def blocks(**flt: object) -> list[str]:
        return sorted(r.cidr_block for r in acct.client.access_ip_ranges.list(filter=flt))  # type: ignore[arg-type]

    assert blocks(cidr_block="10.1.0.0/16") == ["10.1.0.0/16"]
    assert blocks(cidr_block="10.1.0.9/16") == ["10.1.0.0/16"]  # the exact filter normalizes too
    assert blocks(cidr_block={"startswith": "10."}) == ["10.1.0.0/16", "10.2.0.0/16"]
    assert blocks(cidr_block={"endswith": "/24"}) == ["192.168.10.0/24"]
    assert blocks(cidr_block={"contains": "168"}) == ["192.168.10.0/24"]
    assert blocks(cidr_block={"contains": "ABCD"}) == ["2001:db8:abcd::/48"]
    assert blocks(cidr_block={"contains": "%"}) == []  # a LIKE wildcard is matched literally
    assert blocks(cidr_block={"startswith": "10.", "endswith": "2.0.0/16"}) == ["10.2.0.0/16"]


def test_list_filters_on_created_at(acct: Account) -> None:
    time.sleep(0.02)
    middle = acct.client.access_ip_ranges.create(cidr_block="10.9.0.0/16")
    time.sleep(0.02)
    acct.client.access_ip_ranges.create(cidr_block="10.10.0.0/16")
    assert middle.created_at is not None
    at = middle.created_at

    def blocks(**flt: object) -> list[str]:
        return [r.cidr_block for r in acct.client.access_ip_ranges.list(filter=flt)]  # type: ignore[arg-type]

    assert blocks(created_at=at) == ["10.9.0.0/16"]
    assert blocks(created_at={"gt": at}) == ["10.10.0.0/16"]
    assert blocks(created_at={"gte": at}) == ["10.9.0.0/16", "10.10.0.0/16"]
    assert blocks(created_at={"lt": at}) == [LOOPBACK]
    assert blocks(created_at={"lte": at}) == [LOOPBACK, "10.9.0.0/16"]
    assert blocks(created_at={"gt": at - dt.timedelta(days=1), "lt": at}) == [LOOPBACK]
    # Equal at the precision given: the whole day, as a date; the same instant in another zone.
    assert len(blocks(created_at=at.date().isoformat())) == 3
    assert blocks(created_at=at.astimezone(dt.timezone(dt.timedelta(hours=5))).isoformat()) == ["10.9.0.0/16"]


def test_list_with_a_bad_created_at_is_422_naming_the_parameter(acct: Account) -> None:
    r = acct.http.get("/access_ip_ranges", params={"filter[created_at][gt]": "yesterday"})
    assert r.status_code == 422
    entry = r.json()["errors"][0]
    assert entry["source"] == {"pointer": "/filter/created_at/gt", "parameter": "filter[created_at][gt]"}


def test_list_ignores_unknown_filter_keys(acct: Account) -> None:
    r = acct.http.get("/access_ip_ranges", params={"filter[colour]": "blue"})
    assert r.status_code == 200 and r.json()["meta"]["total_results"] == 1


def test_delete_returns_the_bare_deleted_object(acct: Account) -> None:
    made = acct.client.access_ip_ranges.create(cidr_block="203.0.113.0/24")
    raw = acct.client.access_ip_ranges.with_raw_response.delete(made.id)
    assert raw.status_code == 200
    assert "data" not in raw.http_response.json()
    gone = raw.parse()
    assert (gone.id, gone.cidr_block) == (made.id, "203.0.113.0/24")
    assert [r.cidr_block for r in acct.client.access_ip_ranges.list()] == [LOOPBACK]


def test_delete_unknown_or_foreign_range_is_404(acct: Account, new_account) -> None:  # type: ignore[no-untyped-def]
    for unknown in ("1234567890", "not-an-id", "9" * 40):
        with pytest.raises(telnyx.NotFoundError):
            acct.client.access_ip_ranges.delete(unknown)
    other = new_account()
    theirs = other.client.access_ip_ranges.create(cidr_block=LOOPBACK)
    with pytest.raises(telnyx.NotFoundError) as err:
        acct.client.access_ip_ranges.delete(theirs.id)
    assert err.value.body["errors"][0]["code"] == "10005"  # type: ignore[index]
    assert [r.id for r in other.client.access_ip_ranges.list()] == [theirs.id]


def test_an_account_never_sees_another_accounts_ranges(acct: Account, new_account) -> None:  # type: ignore[no-untyped-def]
    other = new_account()
    assert other.client.access_ip_ranges.list().data == []
    assert other.http.get("/access_ip_ranges").json()["meta"]["total_results"] == 0
