"""/v2/connections/{connection_id}/active_calls through the official SDK and raw HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import telnyx
from sqlalchemy.dialects import postgresql, sqlite

from tests.conformance._connections import assert_error
from tests.conformance.test_detail_records import call, move_clock, ringing, seed_calls
from tests.conftest import Account, mint_key
from tests.server import LiveServer
from trunkline.resources.detail_records import stamp
from trunkline.store import call_records
from trunkline.store.db import Database
from trunkline.store.schema import call_record


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture
def server_clock(database_url: str) -> Iterator[Callable[[dt.datetime], None]]:
    """Set the server clock to about a given moment; put back at the end."""

    def set_to(moment: dt.datetime) -> None:
        move_clock(database_url, int((moment - now()).total_seconds() * 1000))

    try:
        yield set_to
    finally:
        move_clock(database_url, 0)


def active(acct: Account, connection_id: str, **params: Any) -> dict[str, Any]:
    r = acct.http.get(f"/connections/{connection_id}/active_calls", params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_the_sdk_lists_a_connections_unfinished_calls(account: Account, database_url: str) -> None:
    pbx = account.client.ip_connections.create(connection_name="pbx").data
    other = account.client.ip_connections.create(connection_name="other").data
    u, start = account.user_id, now() - dt.timedelta(minutes=5)
    up = call(
        u,
        start,
        connection_id=pbx.id,
        state="answered",
        answered_at=stamp(now() - dt.timedelta(seconds=90)),
        finished_at=None,
    )
    rings = ringing(u, start + dt.timedelta(seconds=1), connection_id=pbx.id)
    elsewhere = ringing(u, start, connection_id=other.id)
    seed_calls(
        database_url,
        up,
        rings,
        call(u, start - dt.timedelta(minutes=1), connection_id=pbx.id),  # finished
        elsewhere,
    )
    page = account.client.connections.list_active_calls(pbx.id)
    assert [c.call_leg_id for c in page.data] == [up["id"], rings["id"]]  # oldest first
    first, second = page.data
    assert first.call_control_id == up["call_control_id"]
    assert first.call_session_id == up["call_session_id"]
    assert 89 <= first.call_duration <= 95
    assert (first.client_state, first.record_type) == ("", "call")
    assert second.call_duration == 0  # still ringing
    assert active(account, pbx.id)["data"][1] == {
        "call_control_id": rings["call_control_id"],
        "call_duration": 0,
        "call_leg_id": rings["id"],
        "call_session_id": rings["call_session_id"],
        "client_state": "",
        "record_type": "call",
    }
    assert [c.call_leg_id for c in account.client.connections.list_active_calls(other.id).data] == [
        elsewhere["id"]
    ]
    # The record ids are detail-record ids: the same call in both APIs.
    detail = account.http.get(
        "/detail_records", params={"filter[record_type]": "sip-trunking", "filter[id]": up["id"]}
    ).json()["data"]
    assert [d["call_leg_id"] for d in detail] == [up["id"]] and detail[0]["status"] == "in-progress"


def test_call_duration_counts_on_the_server_clock(
    account: Account, database_url: str, server_clock: Callable[[dt.datetime], None]
) -> None:
    pbx = account.client.fqdn_connections.create(connection_name="trunk").data
    answered = now() - dt.timedelta(seconds=10)
    row = call(
        account.user_id,
        answered - dt.timedelta(seconds=3),
        connection_id=pbx.id,
        state="answered",
        answered_at=stamp(answered),
        finished_at=None,
    )
    seed_calls(database_url, row)
    server_clock(now() + dt.timedelta(hours=1))
    (moved,) = account.client.connections.list_active_calls(pbx.id).data
    assert 3609 <= moved.call_duration <= 3615
    server_clock(answered - dt.timedelta(minutes=1))  # a clock before the answer: never negative
    (early,) = account.client.connections.list_active_calls(pbx.id).data
    assert early.call_duration == 0


def test_pages_carry_telnyx_meta(account: Account, database_url: str) -> None:
    pbx = account.client.ip_connections.create(connection_name="busy").data
    start = now()
    rows = seed_calls(
        database_url,
        *(ringing(account.user_id, start + dt.timedelta(seconds=n), connection_id=pbx.id) for n in range(3)),
    )
    body = active(account, pbx.id, **{"page[size]": 2})
    assert body["meta"] == {"page_number": 1, "page_size": 2, "total_pages": 2, "total_results": 3}
    second = active(account, pbx.id, **{"page[size]": 2, "page[number]": 2})
    assert [c["call_leg_id"] for c in second["data"]] == [rows[2]["id"]]
    walked = account.client.connections.list_active_calls(pbx.id, page_size=2)
    assert [c.call_leg_id for c in walked] == [r["id"] for r in rows]
    idle = account.client.ip_connections.create(connection_name="idle").data
    assert active(account, idle.id) == {
        "data": [],
        "meta": {"page_number": 1, "page_size": 20, "total_pages": 0, "total_results": 0},
    }
    assert_error(
        account.http.get(f"/connections/{pbx.id}/active_calls", params={"page[size]": 251}),
        422,
        title="Invalid pagination",
    )


@pytest.mark.parametrize("connection_id", ["4000000000000000099", "not-a-number", "0"])
def test_an_unknown_connection_is_the_usual_404(account: Account, connection_id: str) -> None:
    r = account.http.get(f"/connections/{connection_id}/active_calls")
    entry = assert_error(r, 404, code="10005", pointer="/")
    assert entry == account.http.get(f"/connections/{connection_id}").json()["errors"][0]
    with pytest.raises(telnyx.NotFoundError):
        account.client.connections.list_active_calls(connection_id)


def test_another_accounts_connection_is_the_same_404(
    new_account: Callable[..., Account], database_url: str
) -> None:
    a, b = new_account(), new_account()
    pbx = a.client.credential_connections.create(
        connection_name="a", user_name=f"u{a.user_id[-10:]}", password="s3cret-pass"
    ).data
    seed_calls(database_url, ringing(a.user_id, now(), connection_id=pbx.id))
    assert len(active(a, pbx.id)["data"]) == 1
    theirs = b.http.get(f"/connections/{pbx.id}/active_calls")
    unknown = b.http.get("/connections/4000000000000000098/active_calls")
    assert theirs.status_code == unknown.status_code == 404
    entry = theirs.json()["errors"][0]
    assert entry == b.http.get(f"/connections/{pbx.id}").json()["errors"][0]
    assert entry["detail"].replace(pbx.id, "X") == unknown.json()["errors"][0]["detail"].replace(
        "4000000000000000098", "X"
    )
    with pytest.raises(telnyx.NotFoundError):
        b.client.connections.list_active_calls(pbx.id)


def test_a_record_of_another_account_on_ones_connection_is_not_listed(
    new_account: Callable[..., Account], database_url: str
) -> None:
    a, b = new_account(), new_account()
    pbx = a.client.ip_connections.create(connection_name="a").data
    seed_calls(database_url, ringing(b.user_id, now(), connection_id=pbx.id))  # cannot happen; must not leak
    assert active(a, pbx.id)["data"] == []


def test_the_route_sits_beside_the_connection_routes(account: Account) -> None:
    pbx = account.client.ip_connections.create(connection_name="beside").data
    assert account.http.get(f"/connections/{pbx.id}").json()["data"]["id"] == pbx.id
    assert active(account, pbx.id)["data"] == []
    assert_error(account.http.post(f"/connections/{pbx.id}/active_calls"), 405, code="10015")
    assert_error(account.http.get(f"/connections/{pbx.id}/active_calls/x"), 404, code="10005")
    # Deleted, the connection has no active calls to list: the usual 404.
    account.client.ip_connections.delete(pbx.id)
    assert_error(account.http.get(f"/connections/{pbx.id}/active_calls"), 404, code="10005")


def test_a_read_only_key_may_list(account: Account, server: LiveServer, database_url: str) -> None:
    pbx = account.client.ip_connections.create(connection_name="ro").data
    row = seed_calls(database_url, ringing(account.user_id, now(), connection_id=pbx.id))[0]
    key = mint_key(database_url, account.user_id, read_only=True)
    with httpx.Client(base_url=server.api, headers={"Authorization": f"Bearer {key}"}) as reader:
        r = reader.get(f"/connections/{pbx.id}/active_calls")
    assert r.status_code == 200, r.text
    assert [c["call_leg_id"] for c in r.json()["data"]] == [row["id"]]


def test_active_calls_read_the_connections_open_entries(database_url: str) -> None:
    """Both engines read ix_call_record_connection_id_state for the open calls, not the account's history."""
    stmt = (
        sa.select(call_record)
        .where(*call_records.active_conditions(user_id="plan-user", connection_id="4000000000000000001"))
        .order_by(*call_records.ACTIVE_ORDER)
        .limit(20)
    )

    async def plan() -> str:
        db = Database(database_url)
        try:
            async with db.transaction() as conn:
                dialect = postgresql.dialect() if conn.dialect == "postgresql" else sqlite.dialect()
                sql = stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
                if conn.dialect == "postgresql":
                    async with db._async.connect() as raw:  # type: ignore[union-attr]
                        await raw.exec_driver_sql("SET enable_seqscan = off")
                        rows = (await raw.exec_driver_sql(f"EXPLAIN {sql}")).all()
                    return "\n".join(r[0] for r in rows)
                rows = (await conn.execute(sa.text(f"EXPLAIN QUERY PLAN {sql}"))).all()
                return "\n".join(str(r[-1]) for r in rows)
        finally:
            await db.dispose()

    text = asyncio.run(plan())
    assert "ix_call_record_connection_id_state" in text, text
    assert "ix_call_record_user_id_started_at_id" not in text, text
