"""/v2/fqdns through the official SDK, bad input through httpx."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import telnyx

from tests.conftest import Account
from trunkline.store import changes
from trunkline.store.db import Database

MISSING: Any = object()


def host() -> str:
    """A host name no other test uses: (fqdn, port) is unique across the whole server (trunkline's choice)."""
    return f"pbx-{uuid.uuid4().hex[:12]}.example.com"


def only_error(r: httpx.Response) -> dict[str, Any]:
    """The single error entry of a 422 response."""
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert len(errors) == 1, errors
    return errors[0]  # type: ignore[no-any-return]


def fqdn_connection(client: telnyx.Telnyx) -> str:
    return client.fqdn_connections.create(connection_name="trunk").data.id  # type: ignore[union-attr, return-value]


@pytest.fixture
def conn_id(client: telnyx.Telnyx) -> str:
    """An FQDN connection of the test's account."""
    return fqdn_connection(client)


def test_create_fqdn_a_record_defaults_port_5060_and_round_trips(client: telnyx.Telnyx, conn_id: str) -> None:
    name = host()
    raw = client.fqdns.with_raw_response.create(connection_id=conn_id, fqdn=name, dns_record_type="a")
    assert raw.status_code == 201
    created = raw.parse().data
    assert created is not None
    assert re.fullmatch(r"[0-9]{15,19}", created.id or "")
    assert created.record_type == "fqdn"
    assert (created.connection_id, created.fqdn, created.dns_record_type, created.port) == (
        conn_id,
        name,
        "a",
        5060,
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", created.created_at or "")
    assert created.updated_at == created.created_at
    assert client.fqdns.retrieve(created.id).data == created  # type: ignore[arg-type]


def test_create_fqdn_a_record_keeps_its_port(client: telnyx.Telnyx, conn_id: str) -> None:
    created = client.fqdns.create(connection_id=conn_id, fqdn=host(), dns_record_type="a", port=8080).data
    assert created is not None and created.port == 8080


@pytest.mark.parametrize("body", [{}, {"port": None}])
def test_create_fqdn_srv_record_has_no_port(http: httpx.Client, conn_id: str, body: dict[str, Any]) -> None:
    r = http.post("/fqdns", json={"connection_id": conn_id, "fqdn": host(), "dns_record_type": "srv", **body})
    assert r.status_code == 201, r.text
    assert r.json()["data"]["port"] is None


@pytest.mark.parametrize(
    ("dns_record_type", "port"),
    [("srv", 5060), ("a", None)],
)
def test_create_fqdn_breaking_the_port_rule_is_rejected(
    http: httpx.Client, conn_id: str, dns_record_type: str, port: int | None
) -> None:
    body = {"connection_id": conn_id, "fqdn": host(), "dns_record_type": dns_record_type, "port": port}
    error = only_error(http.post("/fqdns", json=body))
    assert error["code"] == "10015"
    assert error["source"]["pointer"] == "/dns_record_type"


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"connection_id": MISSING}, "/connection_id"),
        ({"connection_id": None}, "/connection_id"),
        ({"connection_id": 12}, "/connection_id"),
        ({"fqdn": MISSING}, "/fqdn"),
        ({"fqdn": None}, "/fqdn"),
        ({"fqdn": "not a host!"}, "/fqdn"),
        ({"fqdn": "192.0.2.10"}, "/fqdn"),
        ({"fqdn": "-bad.example.com"}, "/fqdn"),
        ({"fqdn": "a\u0000b.example.com"}, "/fqdn"),
        ({"fqdn": ("x" * 60 + ".") * 5 + "com"}, "/fqdn"),
        ({"dns_record_type": MISSING}, "/dns_record_type"),
        ({"dns_record_type": None}, "/dns_record_type"),
        ({"dns_record_type": "cname"}, "/dns_record_type"),
        ({"dns_record_type": "A"}, "/dns_record_type"),
        ({"port": 0}, "/port"),
        ({"port": 65536}, "/port"),
        ({"port": "5060"}, "/port"),
        ({"port": 5060.0}, "/port"),
    ],
)
def test_create_fqdn_invalid_field_is_rejected(
    http: httpx.Client, conn_id: str, change: dict[str, Any], pointer: str
) -> None:
    body = {"connection_id": conn_id, "fqdn": host(), "dns_record_type": "a", **change}
    body = {k: v for k, v in body.items() if v is not MISSING}
    error = only_error(http.post("/fqdns", json=body))
    assert error["code"] == "10015"
    assert error["source"]["pointer"] == pointer


def test_create_fqdn_reports_every_invalid_field(http: httpx.Client) -> None:
    r = http.post("/fqdns", json={"fqdn": "bad host", "dns_record_type": "mx"})
    assert r.status_code == 422
    assert {e["source"]["pointer"] for e in r.json()["errors"]} == {
        "/connection_id",
        "/fqdn",
        "/dns_record_type",
    }


@pytest.mark.parametrize(
    ("connection_id", "code"),
    # A NUL is refused in any body before the id is looked at (tests/conformance/test_errors.py).
    [("1", "10017"), ("not-a-number", "10017"), ("12\u00003", "10015")],
)
def test_create_fqdn_on_unknown_connection_is_rejected(
    http: httpx.Client, connection_id: str, code: str
) -> None:
    r = http.post("/fqdns", json={"connection_id": connection_id, "fqdn": host(), "dns_record_type": "a"})
    error = only_error(r)
    assert error["code"] == code
    assert error["source"]["pointer"] == "/connection_id"


def test_create_fqdn_on_another_accounts_connection_is_rejected(
    account: Account, new_account: Callable[..., Account]
) -> None:
    theirs = fqdn_connection(new_account().client)
    r = account.http.post("/fqdns", json={"connection_id": theirs, "fqdn": host(), "dns_record_type": "a"})
    error = only_error(r)
    assert error["code"] == "10017"
    assert error["source"]["pointer"] == "/connection_id"


@pytest.mark.parametrize("kind", ["ip_connections", "credential_connections"])
def test_create_fqdn_on_other_connection_kind_is_rejected(http: httpx.Client, kind: str) -> None:
    body: dict[str, Any] = {"connection_name": "other"}
    if kind == "credential_connections":
        body.update(user_name="u" + uuid.uuid4().hex[:12], password="s3cret-pass")
    other = http.post(f"/{kind}", json=body).json()["data"]["id"]
    error = only_error(
        http.post("/fqdns", json={"connection_id": other, "fqdn": host(), "dns_record_type": "a"})
    )
    assert error["code"] == "10015"
    assert error["source"]["pointer"] == "/connection_id"
    assert "FQDN connections only" in error["detail"]


def test_create_fqdn_duplicate_is_refused_across_accounts(
    account: Account, new_account: Callable[..., Account]
) -> None:
    other = new_account()
    name = host()
    theirs = fqdn_connection(other.client)
    other.client.fqdns.create(connection_id=theirs, fqdn=name, dns_record_type="a", port=5080)
    other.client.fqdns.create(connection_id=theirs, fqdn=name, dns_record_type="srv")
    mine = fqdn_connection(account.client)

    def post(**body: Any) -> httpx.Response:
        return account.http.post("/fqdns", json={"connection_id": mine, "dns_record_type": "a", **body})

    # The same host in other spellings is the same host (RFC 4343: case-insensitive; the root's dot).
    for spelling in (name, name.upper(), name + "."):
        error = only_error(post(fqdn=spelling, port=5080))
        assert error["code"] == "10012"
        assert error["title"] == "Duplicate resource"
        assert error["source"]["pointer"] == "/fqdn"
    assert only_error(post(fqdn=name, dns_record_type="srv"))["code"] == "10012"
    # Another port of the same host is another address.
    assert post(fqdn=name, port=5081).status_code == 201
    assert post(fqdn=name).status_code == 201  # port 5060


def test_update_fqdn_changes_fields_and_keeps_the_rest(client: telnyx.Telnyx, conn_id: str) -> None:
    created = client.fqdns.create(connection_id=conn_id, fqdn=host(), dns_record_type="a", port=5070).data
    assert created is not None and created.id is not None
    renamed = host()
    updated = client.fqdns.update(created.id, fqdn=renamed).data
    assert updated is not None
    assert (updated.fqdn, updated.port, updated.dns_record_type, updated.connection_id) == (
        renamed,
        5070,
        "a",
        conn_id,
    )
    assert updated.created_at == created.created_at
    assert (updated.updated_at or "") >= (created.updated_at or "")
    assert client.fqdns.update(created.id, port=5090).data.port == 5090  # type: ignore[union-attr]
    assert client.fqdns.retrieve(created.id).data.port == 5090  # type: ignore[union-attr]


def test_update_fqdn_with_empty_body_changes_nothing(http: httpx.Client, conn_id: str) -> None:
    created = http.post("/fqdns", json={"connection_id": conn_id, "fqdn": host(), "dns_record_type": "srv"})
    data = created.json()["data"]
    r = http.patch(f"/fqdns/{data['id']}")
    assert r.status_code == 200
    assert {k: v for k, v in r.json()["data"].items() if k != "updated_at"} == {
        k: v for k, v in data.items() if k != "updated_at"
    }


@pytest.mark.parametrize(
    ("start", "patch", "port"),
    [
        (("a", 5070), {"dns_record_type": "srv"}, None),
        (("srv", None), {"dns_record_type": "a"}, 5060),
        (("srv", None), {"dns_record_type": "a", "port": 5080}, 5080),
        (("a", 5070), {"dns_record_type": "srv", "port": None}, None),
        (("a", 5070), {"dns_record_type": "a"}, 5070),
    ],
)
def test_update_fqdn_record_type_change_settles_the_port(
    http: httpx.Client, conn_id: str, start: tuple[str, int | None], patch: dict[str, Any], port: int | None
) -> None:
    body = {"connection_id": conn_id, "fqdn": host(), "dns_record_type": start[0], "port": start[1]}
    fid = http.post("/fqdns", json=body).json()["data"]["id"]
    r = http.patch(f"/fqdns/{fid}", json=patch)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["port"] == port
    assert r.json()["data"]["dns_record_type"] == patch["dns_record_type"]


@pytest.mark.parametrize(
    ("start", "patch", "pointer"),
    [
        (("srv", None), {"port": 5060}, "/dns_record_type"),
        (("a", 5060), {"port": None}, "/dns_record_type"),
        (("a", 5060), {"dns_record_type": "srv", "port": 5060}, "/dns_record_type"),
        (("a", 5060), {"fqdn": "bad host"}, "/fqdn"),
        (("a", 5060), {"fqdn": None}, "/fqdn"),
        (("a", 5060), {"connection_id": None}, "/connection_id"),
        (("a", 5060), {"dns_record_type": "txt"}, "/dns_record_type"),
        (("a", 5060), {"port": 99999}, "/port"),
    ],
)
def test_update_fqdn_invalid_change_is_rejected(
    http: httpx.Client, conn_id: str, start: tuple[str, int | None], patch: dict[str, Any], pointer: str
) -> None:
    body = {"connection_id": conn_id, "fqdn": host(), "dns_record_type": start[0], "port": start[1]}
    before = http.post("/fqdns", json=body).json()["data"]
    error = only_error(http.patch(f"/fqdns/{before['id']}", json=patch))
    assert error["code"] == "10015"
    assert error["source"]["pointer"] == pointer
    assert http.get(f"/fqdns/{before['id']}").json()["data"] == before


def test_update_fqdn_onto_a_taken_address_is_refused(
    client: telnyx.Telnyx, http: httpx.Client, conn_id: str
) -> None:
    taken = host()
    client.fqdns.create(connection_id=conn_id, fqdn=taken, dns_record_type="a")
    fid = client.fqdns.create(connection_id=conn_id, fqdn=host(), dns_record_type="a").data.id  # type: ignore[union-attr]
    error = only_error(http.patch(f"/fqdns/{fid}", json={"fqdn": taken}))
    assert error["code"] == "10012"
    assert error["source"]["pointer"] == "/fqdn"
    # Its own address is not a conflict.
    assert http.patch(f"/fqdns/{fid}", json={"port": 5060}).status_code == 200


def test_update_fqdn_moves_it_and_clears_the_old_connections_default(
    client: telnyx.Telnyx, conn_id: str
) -> None:
    target = fqdn_connection(client)
    fid = client.fqdns.create(connection_id=conn_id, fqdn=host(), dns_record_type="a").data.id  # type: ignore[union-attr]
    assert fid is not None
    client.fqdn_connections.update(conn_id, inbound={"default_primary_fqdn_id": fid})
    moved = client.fqdns.update(fid, connection_id=target).data
    assert moved is not None and moved.connection_id == target
    inbound = client.fqdn_connections.retrieve(conn_id).data.inbound  # type: ignore[union-attr]
    assert inbound is not None and inbound.default_primary_fqdn_id is None
    assert [f.id for f in client.fqdns.list(filter={"connection_id": target})] == [fid]
    assert [f.id for f in client.fqdns.list(filter={"connection_id": conn_id})] == []


def test_update_fqdn_onto_another_kind_or_unknown_connection_is_rejected(
    account: Account, new_account: Callable[..., Account], conn_id: str
) -> None:
    fid = account.client.fqdns.create(connection_id=conn_id, fqdn=host(), dns_record_type="a").data.id  # type: ignore[union-attr]
    ip_conn = account.client.ip_connections.create().data.id  # type: ignore[union-attr]
    error = only_error(account.http.patch(f"/fqdns/{fid}", json={"connection_id": ip_conn}))
    assert (error["code"], error["source"]["pointer"]) == ("10015", "/connection_id")
    theirs = fqdn_connection(new_account().client)
    for unknown in (theirs, "1"):
        error = only_error(account.http.patch(f"/fqdns/{fid}", json={"connection_id": unknown}))
        assert (error["code"], error["source"]["pointer"]) == ("10017", "/connection_id")


def test_delete_fqdn_returns_it_and_clears_the_connections_default(
    client: telnyx.Telnyx, conn_id: str
) -> None:
    created = client.fqdns.create(connection_id=conn_id, fqdn=host(), dns_record_type="srv").data
    assert created is not None and created.id is not None
    client.fqdn_connections.update(conn_id, inbound={"default_secondary_fqdn_id": created.id})
    raw = client.fqdns.with_raw_response.delete(created.id)
    assert raw.status_code == 200
    assert raw.parse().data == created
    with pytest.raises(telnyx.NotFoundError):
        client.fqdns.retrieve(created.id)
    inbound = client.fqdn_connections.retrieve(conn_id).data.inbound  # type: ignore[union-attr]
    assert inbound is not None and inbound.default_secondary_fqdn_id is None
    # Its address is free again.
    again = client.fqdns.create(connection_id=conn_id, fqdn=created.fqdn or "", dns_record_type="srv")
    assert again.data is not None


def test_delete_fqdn_connection_deletes_its_fqdns(client: telnyx.Telnyx, conn_id: str) -> None:
    fid = client.fqdns.create(connection_id=conn_id, fqdn=host(), dns_record_type="a").data.id  # type: ignore[union-attr]
    client.fqdn_connections.delete(conn_id)
    with pytest.raises(telnyx.NotFoundError):
        client.fqdns.retrieve(fid)  # type: ignore[arg-type]


@pytest.mark.parametrize("id", ["1", "913864563328020480", "not-a-number", "%00"])
def test_retrieve_fqdn_unknown_is_404(http: httpx.Client, id: str) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        r = http.request(method, f"/fqdns/{id}", json={})
        assert r.status_code == 404, (method, r.text)
        assert r.json()["errors"][0]["code"] == "10005"


def test_fqdn_of_another_account_is_invisible(account: Account, new_account: Callable[..., Account]) -> None:
    other = new_account()
    theirs = other.client.fqdns.create(
        connection_id=fqdn_connection(other.client), fqdn=host(), dns_record_type="a"
    ).data
    assert theirs is not None and theirs.id is not None
    with pytest.raises(telnyx.NotFoundError):
        account.client.fqdns.retrieve(theirs.id)
    with pytest.raises(telnyx.NotFoundError):
        account.client.fqdns.update(theirs.id, port=5099)
    with pytest.raises(telnyx.NotFoundError):
        account.client.fqdns.delete(theirs.id)
    assert list(account.client.fqdns.list()) == []
    assert list(account.client.fqdns.list(filter={"fqdn": theirs.fqdn or ""})) == []
    assert other.client.fqdns.retrieve(theirs.id).data == theirs


def test_list_fqdns_walks_pages_oldest_first(client: telnyx.Telnyx, http: httpx.Client, conn_id: str) -> None:
    made = [
        client.fqdns.create(connection_id=conn_id, fqdn=host(), dns_record_type="a").data.id for _ in range(5)
    ]  # type: ignore[union-attr]
    assert [f.id for f in client.fqdns.list(page_size=2)] == made
    meta = http.get("/fqdns", params={"page[size]": 2, "page[number]": 2}).json()["meta"]
    assert meta == {"page_number": 2, "page_size": 2, "total_pages": 3, "total_results": 5}
    assert http.get("/fqdns").json()["meta"]["page_size"] == 250


def test_list_fqdns_filters(client: telnyx.Telnyx, conn_id: str) -> None:
    other_conn = fqdn_connection(client)
    shared = host()
    a = client.fqdns.create(connection_id=conn_id, fqdn=shared, dns_record_type="a", port=5070).data
    srv = client.fqdns.create(connection_id=conn_id, fqdn=shared, dns_record_type="srv").data
    elsewhere = client.fqdns.create(connection_id=other_conn, fqdn=host(), dns_record_type="a").data
    assert a is not None and srv is not None and elsewhere is not None

    def ids(**filter: Any) -> list[str | None]:
        return [f.id for f in client.fqdns.list(filter=filter)]  # type: ignore[arg-type]

    assert ids() == [a.id, srv.id, elsewhere.id]
    assert ids(connection_id=conn_id) == [a.id, srv.id]
    assert ids(connection_id=other_conn) == [elsewhere.id]
    assert ids(fqdn=shared) == [a.id, srv.id]
    assert ids(fqdn=shared.upper()) == []  # exact match, as Telnyx's filter[fqdn] is
    assert ids(port=5070) == [a.id]
    assert ids(port=5060) == [elsewhere.id]
    assert ids(dns_record_type="srv") == [srv.id]
    assert ids(dns_record_type="a") == [a.id, elsewhere.id]
    assert ids(fqdn=shared, dns_record_type="a", port=5070, connection_id=conn_id) == [a.id]


@pytest.mark.parametrize(
    ("params", "title", "pointer"),
    [
        ({"filter[port]": 0}, "Bad Request", "/filter/port"),
        ({"filter[port]": "http"}, "Bad Request", "/filter/port"),
        ({"filter[dns_record_type]": "mx"}, "Bad Request", "/filter/dns_record_type"),
        ({"filter[fqdn]": "a\u0000b"}, "Bad Request", "/filter/fqdn"),
        ({"filter[connection_id]": "\u0000"}, "Bad Request", "/filter/connection_id"),
        ({"page[size]": 251}, "Invalid pagination", "/page/size"),
        ({"page[number]": 0}, "Invalid pagination", "/page/number"),
    ],
)
def test_list_fqdns_bad_parameter_is_rejected(
    http: httpx.Client, params: dict[str, Any], title: str, pointer: str
) -> None:
    error = only_error(http.get("/fqdns", params=params))
    assert error["code"] == "10015"
    assert error["title"] == title
    assert error["source"]["pointer"] == pointer


def test_fqdn_writes_announce_an_acl_change(client: telnyx.Telnyx, database_url: str, conn_id: str) -> None:
    def version() -> int:
        async def read() -> int:
            db = Database(database_url)
            try:
                async with db.transaction() as conn:
                    return await changes.version(conn, changes.ACL)
            finally:
                await db.dispose()

        return asyncio.run(read())

    start = version()
    fid = client.fqdns.create(connection_id=conn_id, fqdn=host(), dns_record_type="a").data.id  # type: ignore[union-attr]
    after_create = version()
    assert after_create > start
    client.fqdns.update(fid, port=5062)  # type: ignore[arg-type]
    after_update = version()
    assert after_update > after_create
    client.fqdns.delete(fid)  # type: ignore[arg-type]
    assert version() > after_update
