"""/v2/detail_records (Detail Record Search) over call records, through the official SDK and raw HTTP.

Call records are written by the SIP edge; here they are seeded straight into `call_record`
(`seed_calls`), which tests/conformance/test_active_calls.py and tests/cli/test_calls.py use too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import telnyx
from sqlalchemy.dialects import postgresql, sqlite
from telnyx.types import detail_record_list_response

from tests.conformance._connections import assert_error
from tests.conftest import Account
from trunkline.resources.detail_records import DetailRecord, stamp
from trunkline.store import call_records, clock
from trunkline.store.db import Database
from trunkline.store.schema import call_record

SIP = {"filter[record_type]": "sip-trunking"}
T0 = dt.datetime(2030, 6, 12, 12, 0, tzinfo=dt.UTC)  # a Wednesday


def at(moment: dt.datetime | None) -> str | None:
    return None if moment is None else stamp(moment)


def call(user_id: str, start: dt.datetime = T0, **fields: Any) -> dict[str, Any]:
    """A finished, answered, rated outbound call of `user_id` starting at `start`; `fields` override."""
    answered = start + dt.timedelta(seconds=4)
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "user_id": user_id,
        "connection_id": None,
        "call_session_id": str(uuid.uuid4()),
        "call_control_id": f"v3:{uuid.uuid4().hex}",
        "sip_call_id": f"{uuid.uuid4().hex}@192.0.2.10",
        "direction": "outbound",
        "cli": "+13125550100",
        "cld": "+442079460000",
        "destination_country": "GB",
        "state": "finished",
        "started_at": at(start),
        "answered_at": at(answered),
        "finished_at": at(answered + dt.timedelta(seconds=61)),
        "call_sec": 61,
        "billed_sec": 120,
        "rate": "0.0100",
        "cost": "0.0200",
        "currency": "USD",
        "sip_status": 200,
        "sip_reason": "OK",
        "d_code": None,
        "hangup_cause": "normal_clearing",
        "hangup_source": "caller",
        "updated_at": at(start + dt.timedelta(minutes=2)),
    }
    values.update(fields)
    return values


def ringing(user_id: str, start: dt.datetime = T0, **fields: Any) -> dict[str, Any]:
    """A call still ringing: not answered, not finished, not rated."""
    unset = dict.fromkeys(("answered_at", "finished_at", "call_sec", "billed_sec", "rate", "cost"))
    unset.update(sip_status=None, sip_reason=None, hangup_cause=None, hangup_source=None)
    return call(user_id, start, state="ringing", **{**unset, **fields})


def seed_calls(database_url: str, *rows: dict[str, Any]) -> list[dict[str, Any]]:
    """Insert call_record rows as the edge's importer would, in one transaction."""

    async def go() -> None:
        db = Database(database_url)
        try:
            async with db.transaction(write=True) as conn:
                for row in rows:
                    await conn.execute(sa.insert(call_record).values(**row))
        finally:
            await db.dispose()

    asyncio.run(go())
    return list(rows)


def move_clock(database_url: str, ms: int) -> None:
    async def go() -> None:
        db = Database(database_url)
        try:
            await clock.set_offset_ms(db, ms)
        finally:
            await db.dispose()

    asyncio.run(go())


@pytest.fixture
def server_clock(database_url: str) -> Iterator[Callable[[dt.datetime], None]]:
    """Set the server clock to about a given moment (real time plus an offset); put back at the end."""

    def set_to(moment: dt.datetime) -> None:
        move_clock(database_url, int((moment - dt.datetime.now(dt.UTC)).total_seconds() * 1000))

    try:
        yield set_to
    finally:
        move_clock(database_url, 0)


def listing(acct: Account, **params: Any) -> dict[str, Any]:
    r = acct.http.get("/detail_records", params={**SIP, **params})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def ids_of(body: dict[str, Any]) -> list[str]:
    return [record["id"] for record in body["data"]]


def expected(row: dict[str, Any], connection_name: str | None = None) -> dict[str, Any]:
    """The detail record of a seeded row, written out field by field."""
    finished = row["state"] == "finished"
    if not finished:
        status = "in-progress"
    elif row["answered_at"] is not None:
        status = "completed"
    else:
        status = "rejected" if row["d_code"] else "failed"
    return {
        "id": row["id"],
        "record_type": "sip_trunking_detail_record",
        "user_id": row["user_id"],
        "connection_id": row["connection_id"],
        "connection_name": connection_name,
        "billing_group_id": None,
        "billing_group_name": None,
        "direction": row["direction"],
        "cli": row["cli"],
        "cld": row["cld"],
        "country_code": row["destination_country"],
        "started_at": row["started_at"],
        "answered_at": row["answered_at"],
        "finished_at": row["finished_at"],
        "call_sec": row["call_sec"],
        "billed_sec": row["billed_sec"],
        "rate": row["rate"],
        "cost": row["cost"],
        "currency": row["currency"],
        "payment_method": "rate-deck" if row["rate"] is not None else None,
        "status": status,
        "hangup_cause": row["hangup_cause"],
        "hangup_source": row["hangup_source"],
        "sip_response_code": row["sip_status"],
        "sip_response_reason": row["sip_reason"],
        "telnyx_error_code": row["d_code"],
        "call_leg_id": row["id"],
        "telnyx_leg_id": row["id"],
        "call_session_id": row["call_session_id"],
        "telnyx_session_id": row["call_session_id"],
        "call_control_id": row["call_control_id"],
        "telnyx_call_control_id": row["call_control_id"],
        "sip_call_id": row["sip_call_id"],
        "tags": None,
    }


# --- the SDK ---------------------------------------------------------------------------------------


def test_the_sdk_reads_sip_trunking_records_under_strict_validation(
    account: Account, database_url: str
) -> None:
    """The SDK's response union has no sip-trunking variant. Its seven variants all declare
    `record_type: str` (no literal), so its discriminator maps nothing and pydantic's smart-mode union
    picks the variant that validates with the most fields: AmdDetailRecord for these records. Every
    SDK model allows extra fields, so nothing is lost: what AmdDetailRecord declares is typed, the rest
    kept as the JSON values. No error, strict or not (docs/calls.md)."""
    pbx = account.client.ip_connections.create(connection_name="pbx").data
    rows = seed_calls(
        database_url,
        call(account.user_id, T0, connection_id=pbx.id),
        ringing(account.user_id, T0 + dt.timedelta(minutes=1), connection_id=pbx.id),
        call(account.user_id, T0 + dt.timedelta(minutes=2), d_code="D13", answered_at=None, rate=None),
        call(account.user_id, T0 + dt.timedelta(minutes=3), answered_at=None, sip_status=486),
    )
    page = account.client.detail_records.list(filter={"record_type": "sip-trunking"})
    assert [r.id for r in page.data] == [r["id"] for r in reversed(rows)]  # newest first
    variants = set(detail_record_list_response.__all__) - {"DetailRecordListResponse"}
    raw = listing(account)["data"]
    for item, body in zip(page.data, raw, strict=True):
        # Pinned: if a new SDK or pydantic picks another variant, update docs/calls.md.
        assert type(item).__name__ == "AmdDetailRecord", type(item).__name__
        assert type(item).__name__ in variants
        assert item.to_dict() == body  # every field, with its JSON value
        assert item.record_type == "sip_trunking_detail_record"
        assert getattr(item, "cli") == body["cli"]  # noqa: B009  an extra field, read by name
    assert {item.to_dict()["status"] for item in page.data} == set(call_records.STATUSES)
    assert page.meta is not None and (page.meta.page_number, page.meta.total_pages) == (1, 1)
    # Auto-pagination follows meta.total_pages.
    walked = account.client.detail_records.list(filter={"record_type": "sip-trunking"}, page_size=3)
    assert [r.id for r in walked] == [r["id"] for r in reversed(rows)]


def test_the_sdk_sends_sort_and_nested_filters_the_server_reads(account: Account, database_url: str) -> None:
    rows = seed_calls(database_url, *(call(account.user_id, T0 + dt.timedelta(minutes=n)) for n in range(3)))
    page = account.client.detail_records.list(
        filter={"record_type": "sip-trunking", "started_at": {"gte": stamp(T0 + dt.timedelta(minutes=1))}},
        sort=["started_at"],
    )
    assert [r.id for r in page.data] == [rows[1]["id"], rows[2]["id"]]


def test_the_sdk_raises_its_errors_for_unknown_filters_and_sorts(client: telnyx.Telnyx) -> None:
    with pytest.raises(telnyx.BadRequestError):
        client.detail_records.list(
            filter={"record_type": "sip-trunking", "created_at": {"gte": "2030-01-01"}}
        )
    with pytest.raises(telnyx.BadRequestError):
        client.detail_records.list(filter={"record_type": "sip-trunking"}, sort=["-created_at"])
    with pytest.raises(telnyx.UnprocessableEntityError):
        client.detail_records.list(filter={"record_type": "sip-trunking", "date_range": "someday"})  # type: ignore[typeddict-item]


@pytest.mark.parametrize("record_type", ["messaging", "webrtc", "call-control", "wireless"])
def test_other_record_types_answer_an_empty_page(
    account: Account, database_url: str, record_type: str
) -> None:
    seed_calls(database_url, call(account.user_id))
    page = account.client.detail_records.list(filter={"record_type": record_type})  # type: ignore[typeddict-item]
    assert page.data == []
    body = account.http.get(
        "/detail_records", params={"filter[record_type]": record_type, "filter[status]": "delivered"}
    ).json()
    assert body == {
        "data": [],
        "meta": {"page_number": 1, "page_size": 20, "total_pages": 0, "total_results": 0},
    }


# --- the record ----------------------------------------------------------------------------------


def test_a_record_holds_the_rows_values_and_null_for_what_it_lacks(
    account: Account, database_url: str
) -> None:
    pbx = account.client.credential_connections.create(
        connection_name="front desk", user_name=f"u{uuid.uuid4().hex[:12]}", password="s3cret-pass"
    ).data
    answered = call(account.user_id, T0, connection_id=pbx.id, direction="inbound", hangup_source="callee")
    refused = call(
        account.user_id,
        T0 + dt.timedelta(seconds=1),
        connection_id="4000000000000000001",  # a connection that is gone: no name
        answered_at=None,
        call_sec=0,
        billed_sec=0,
        rate=None,
        cost=None,
        destination_country=None,
        sip_status=403,
        sip_reason="Destination Not Allowed D13",
        d_code="D13",
        hangup_cause="call_rejected",
        hangup_source=None,
    )
    bare = ringing(account.user_id, T0 + dt.timedelta(seconds=2))
    seed_calls(database_url, answered, refused, bare)
    data = listing(account)["data"]
    assert data == [expected(bare), expected(refused), expected(answered, "front desk")]
    assert data[2]["status"] == "completed" and data[2]["payment_method"] == "rate-deck"
    assert data[1]["status"] == "rejected" and data[1]["payment_method"] is None
    assert data[0]["status"] == "in-progress" and data[0]["finished_at"] is None


def test_records_have_exactly_the_documented_fields(account: Account, database_url: str) -> None:
    """What the OpenAPI document describes (DetailRecord) is what is sent, field for field."""
    seed_calls(database_url, call(account.user_id), ringing(account.user_id, T0 + dt.timedelta(seconds=1)))
    for body in listing(account)["data"]:
        assert set(body) == set(DetailRecord.model_fields)
        DetailRecord.model_validate(body, strict=True)


def test_status_maps_each_state_and_filters_by_it(account: Account, database_url: str) -> None:
    u = account.user_id
    rows = {
        "ringing": ringing(u, T0),
        "answered": call(u, T0 + dt.timedelta(seconds=1), state="answered", finished_at=None, call_sec=None),
        "completed": call(u, T0 + dt.timedelta(seconds=2)),
        "rejected": call(u, T0 + dt.timedelta(seconds=3), answered_at=None, d_code="D35", sip_status=403),
        "failed": call(u, T0 + dt.timedelta(seconds=4), answered_at=None, sip_status=486, sip_reason="Busy"),
    }
    seed_calls(database_url, *rows.values())
    by_status = {r["id"]: r["status"] for r in listing(account)["data"]}
    assert by_status == {
        rows["ringing"]["id"]: "in-progress",
        rows["answered"]["id"]: "in-progress",
        rows["completed"]["id"]: "completed",
        rows["rejected"]["id"]: "rejected",
        rows["failed"]["id"]: "failed",
    }
    for status in call_records.STATUSES:
        got = set(ids_of(listing(account, **{"filter[status]": status})))
        assert got == {id for id, s in by_status.items() if s == status}, status


# --- filters -------------------------------------------------------------------------------------


def test_exact_filters(account: Account, database_url: str) -> None:
    u = account.user_id
    a = call(u, T0, connection_id="4000000000000000011", cli="+15550001", cld="+15550002")
    b = call(u, T0 + dt.timedelta(seconds=1), connection_id="4000000000000000012", direction="inbound")
    seed_calls(database_url, a, b)
    cases = {
        "filter[connection_id]": ("4000000000000000011", [a]),
        "filter[cli]": ("+15550001", [a]),
        "filter[cld]": ("+15550002", [a]),
        "filter[direction]": ("inbound", [b]),
        "filter[id]": (b["id"], [b]),
        "filter[telnyx_session_id]": (a["call_session_id"], [a]),
        "filter[call_session_id]": (b["call_session_id"], [b]),
        "filter[sip_call_id]": (a["sip_call_id"], [a]),
    }
    for parameter, (value, rows) in cases.items():
        assert ids_of(listing(account, **{parameter: value})) == [r["id"] for r in rows], parameter
    both = listing(account, **{"filter[direction]": "outbound", "filter[cli]": "+15550001"})
    assert ids_of(both) == [a["id"]]
    assert listing(account, **{"filter[cli]": "+15550002"})["data"] == []


def test_time_filters_compare_instants_to_the_millisecond(account: Account, database_url: str) -> None:
    u = account.user_id
    rows = [call(u, T0 + dt.timedelta(milliseconds=n)) for n in (0, 1, 2)]
    seed_calls(database_url, *rows)
    zero, one, two = (r["id"] for r in rows)

    def started(op: str, value: str) -> list[str]:
        return sorted(ids_of(listing(account, **{f"filter[started_at][{op}]": value})))

    t1 = "2030-06-12T12:00:00.001Z"
    assert started("gte", t1) == sorted([one, two])
    assert started("gt", t1) == [two]
    assert started("lte", t1) == sorted([zero, one])
    assert started("lt", t1) == [zero]
    # Finer than a millisecond: 0.0005 s lies between the first two records.
    assert started("gte", "2030-06-12T12:00:00.0005+00:00") == sorted([one, two])
    assert started("gt", "2030-06-12T12:00:00.0005Z") == sorted([one, two])
    assert started("lte", "2030-06-12T12:00:00.0005Z") == [zero]
    assert started("lt", "2030-06-12T12:00:00.0005Z") == [zero]
    # Another offset, a naive time (UTC) and a bare date.
    assert started("lt", "2030-06-12T14:00:00.001+02:00") == [zero]
    assert started("lt", "2030-06-12T12:00:00.002") == sorted([zero, one])
    assert sorted(ids_of(listing(account, **{"filter[started_at][gte]": "2030-06-12"}))) == sorted(
        [zero, one, two]
    )
    # Bounds on the other two times, and a range.
    answered = stamp(T0 + dt.timedelta(seconds=4, milliseconds=1))
    assert started("gte", t1) == sorted(ids_of(listing(account, **{"filter[answered_at][gte]": answered})))
    finished = stamp(T0 + dt.timedelta(seconds=65, milliseconds=1))
    assert ids_of(listing(account, **{"filter[finished_at][lt]": finished})) == [zero]
    window = {
        "filter[started_at][gt]": stamp(T0),
        "filter[started_at][lt]": stamp(T0 + dt.timedelta(milliseconds=2)),
    }
    assert ids_of(listing(account, **window)) == [one]


def test_date_ranges_follow_the_server_clock_in_utc(
    account: Account, database_url: str, server_clock: Callable[[dt.datetime], None]
) -> None:
    now = dt.datetime(2031, 3, 5, 12, 0, tzinfo=dt.UTC)  # a Wednesday
    server_clock(now)
    u = account.user_id
    moments = {
        "last_month": dt.datetime(2031, 2, 20, 23, 0, tzinfo=dt.UTC),  # the week before last
        "last_week": dt.datetime(2031, 3, 2, 11, 0, tzinfo=dt.UTC),  # Sunday, 3 days and 1 hour ago
        "last_3_days": dt.datetime(2031, 3, 2, 13, 0, tzinfo=dt.UTC),  # Sunday too, 71 hours ago
        "this_week": dt.datetime(2031, 3, 3, 0, 30, tzinfo=dt.UTC),  # Monday
        "yesterday": dt.datetime(2031, 3, 4, 23, 59, tzinfo=dt.UTC),
        "today": dt.datetime(2031, 3, 5, 0, 1, tzinfo=dt.UTC),
        "later_today": dt.datetime(2031, 3, 5, 23, 0, tzinfo=dt.UTC),
        "tomorrow": dt.datetime(2031, 3, 6, 1, 0, tzinfo=dt.UTC),
        "next_week": dt.datetime(2031, 3, 10, 0, 0, tzinfo=dt.UTC),  # Monday
        "next_month": dt.datetime(2031, 4, 1, 0, 0, tzinfo=dt.UTC),
    }
    rows = {name: call(u, moment) for name, moment in moments.items()}
    seed_calls(database_url, *rows.values())

    def in_range(value: str) -> set[str]:
        found = {r["id"] for r in listing(account, **{"filter[date_range]": value})["data"]}
        return {name for name, row in rows.items() if row["id"] in found}

    this_week = {"this_week", "yesterday", "today", "later_today", "tomorrow"}
    assert in_range("today") == {"today", "later_today"}
    assert in_range("yesterday") == {"yesterday"}
    assert in_range("tomorrow") == {"tomorrow"}
    assert in_range("this_week") == this_week
    assert in_range("last_week") == {"last_week", "last_3_days"}
    assert in_range("next_week") == {"next_week"}
    assert in_range("this_month") == set(rows) - {"last_month", "next_month"}
    assert in_range("last_month") == {"last_month"}
    assert in_range("next_month") == {"next_month"}
    # The N x 24 hours up to now: neither the future nor 3 days and 1 hour ago.
    assert in_range("last_3_days") == {"last_3_days", "this_week", "yesterday", "today"}
    assert in_range("last_1_days") == {"yesterday", "today"}
    # Combined with the other filters.
    window = {"filter[date_range]": "this_week", "filter[started_at][lt]": "2031-03-05T00:00:00Z"}
    found = {r["id"] for r in listing(account, **window)["data"]}
    assert found == {rows["this_week"]["id"], rows["yesterday"]["id"]}


# --- sort and pages ------------------------------------------------------------------------------


def test_sort_orders_by_each_time_with_nulls_placed_alike(account: Account, database_url: str) -> None:
    u = account.user_id
    early = call(u, T0, answered_at=at(T0 + dt.timedelta(seconds=30)))
    late = call(u, T0 + dt.timedelta(seconds=10))  # answered at +14 s
    open_ = ringing(u, T0 + dt.timedelta(seconds=5))  # no answer, no finish
    seed_calls(database_url, early, late, open_)
    e, lt_, o = early["id"], late["id"], open_["id"]

    def order(sort: str) -> list[str]:
        return ids_of(listing(account, sort=sort))

    assert ids_of(listing(account)) == [lt_, o, e]  # -started_at
    assert order("started_at") == [e, o, lt_]
    assert order("-started_at") == [lt_, o, e]
    assert order("answered_at") == [o, lt_, e]  # NULLs first ascending
    assert order("-answered_at") == [e, lt_, o]  # and last descending
    assert order("-finished_at") == [lt_, e, o]
    assert order("finished_at") == [o, e, lt_]
    assert order("-answered_at,started_at") == [e, lt_, o]
    r = account.http.get(
        "/detail_records", params=[*SIP.items(), ("sort", "answered_at"), ("sort", "-started_at")]
    )
    assert ids_of(r.json()) == [o, lt_, e]


def test_pages_carry_telnyx_meta_and_exact_totals(account: Account, database_url: str) -> None:
    rows = seed_calls(database_url, *(call(account.user_id, T0 + dt.timedelta(seconds=n)) for n in range(5)))
    newest_first = [r["id"] for r in reversed(rows)]
    first = listing(account, **{"page[size]": 2})
    assert first["meta"] == {"page_number": 1, "page_size": 2, "total_pages": 3, "total_results": 5}
    pages = [ids_of(listing(account, **{"page[size]": 2, "page[number]": n})) for n in (1, 2, 3)]
    assert pages == [newest_first[:2], newest_first[2:4], newest_first[4:]]
    beyond = listing(account, **{"page[size]": 2, "page[number]": 4})
    assert beyond["data"] == [] and beyond["meta"]["total_results"] == 5
    filtered = listing(
        account,
        **{
            "page[size]": 1,
            "page[number]": 2,
            "filter[started_at][gte]": stamp(T0 + dt.timedelta(seconds=3)),
        },
    )
    assert filtered["meta"] == {"page_number": 2, "page_size": 1, "total_pages": 2, "total_results": 2}
    assert ids_of(filtered) == [rows[3]["id"]]
    assert listing(account)["meta"]["page_size"] == 20  # the default


# --- errors --------------------------------------------------------------------------------------


def test_record_type_is_required_and_must_be_known(http: httpx.Client) -> None:
    missing = assert_error(http.get("/detail_records"), 422, pointer="/filter/record_type")
    assert missing["source"]["parameter"] == "filter[record_type]"
    unknown = assert_error(
        http.get("/detail_records", params={"filter[record_type]": "sip_trunking"}),
        422,
        pointer="/filter/record_type",
    )
    assert "sip-trunking" in unknown["detail"]


@pytest.mark.parametrize(
    "parameter",
    [
        "filter[created_at][gte]",
        "filter[started_at]",
        "filter[started_at][eq]",
        "filter[user_id]",
        "filter[foo]",
        "filter",
    ],
)
def test_a_filter_sip_trunking_records_lack_is_400(http: httpx.Client, parameter: str) -> None:
    r = http.get("/detail_records", params={**SIP, parameter: "x"})
    entry = assert_error(r, 400, code="10015", title="Invalid filter")
    assert entry["source"]["parameter"] == parameter
    assert "filter[started_at|finished_at|answered_at][gte|gt|lte|lt]" in entry["detail"]


@pytest.mark.parametrize(
    "sort", ["created_at", "-created_at", "--started_at", "+started_at+", "cli", "started_at,nope"]
)
def test_a_sort_field_sip_trunking_records_lack_is_400(http: httpx.Client, sort: str) -> None:
    entry = assert_error(
        http.get("/detail_records", params={**SIP, "sort": sort}), 400, title="Invalid sorting value"
    )
    assert entry["source"] == {"pointer": "/sort", "parameter": "sort"}


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("filter[started_at][gte]", "yesterday"),
        ("filter[started_at][lt]", "2030-13-01"),
        ("filter[finished_at][gt]", ""),
        ("filter[answered_at][lte]", "0001-01-01T00:00:00+01:00"),  # before year 1 in UTC
        ("filter[started_at][gte]", "9999-12-31T23:59:59.9999Z"),  # rounds up past year 9999
        ("filter[date_range]", "last_year"),
        ("filter[date_range]", "last_0_days"),
        ("filter[date_range]", "last_999999_days"),
        ("filter[date_range]", "TODAY"),
        ("filter[status]", "delivered"),
        ("filter[direction]", "sideways"),
    ],
)
def test_a_bad_filter_value_is_422_naming_it(http: httpx.Client, parameter: str, value: str) -> None:
    pointer = "/" + parameter.replace("][", "/").replace("[", "/").rstrip("]")
    entry = assert_error(http.get("/detail_records", params={**SIP, parameter: value}), 422, pointer=pointer)
    assert entry["source"]["parameter"] == parameter


def test_unknown_filters_and_sorts_are_reported_together(http: httpx.Client) -> None:
    r = http.get("/detail_records", params={**SIP, "filter[foo]": "1", "sort": "cli", "filter[status]": "x"})
    assert r.status_code == 400  # the fields first: the bad status value is not looked at yet
    assert [(e["title"], e["source"]["parameter"]) for e in r.json()["errors"]] == [
        ("Invalid filter", "filter[foo]"),
        ("Invalid sorting value", "sort"),
    ]


def test_every_bad_value_is_reported_at_once(http: httpx.Client) -> None:
    r = http.get(
        "/detail_records",
        params={
            **SIP,
            "filter[status]": "nope",
            "filter[started_at][gte]": "soon",
            "filter[direction]": "up",
        },
    )
    assert r.status_code == 422
    assert {e["source"]["parameter"] for e in r.json()["errors"]} == {
        "filter[status]",
        "filter[started_at][gte]",
        "filter[direction]",
    }


@pytest.mark.parametrize(
    "params", [{"page[size]": "0"}, {"page[size]": "251"}, {"page[number]": "0"}, {"page[number]": "x"}]
)
def test_bad_pagination_is_422(http: httpx.Client, params: dict[str, str]) -> None:
    assert_error(http.get("/detail_records", params={**SIP, **params}), 422, title="Invalid pagination")


# --- isolation and the index ---------------------------------------------------------------------


def test_an_account_never_sees_anothers_records(
    new_account: Callable[..., Account], database_url: str
) -> None:
    a, b = new_account(), new_account()
    a_pbx = a.client.ip_connections.create(connection_name="a's pbx").data
    mine = seed_calls(database_url, call(a.user_id, T0, connection_id=a_pbx.id), call(a.user_id, T0))
    # A record of B's naming A's connection (it cannot happen; it must not leak A's name either).
    theirs = seed_calls(database_url, call(b.user_id, T0, connection_id=a_pbx.id))[0]
    assert sorted(ids_of(listing(a))) == sorted(r["id"] for r in mine)
    assert listing(a)["meta"]["total_results"] == 2
    seen = listing(b)
    assert ids_of(seen) == [theirs["id"]] and seen["meta"]["total_results"] == 1
    assert seen["data"][0]["connection_name"] is None
    for parameter, value in {
        "filter[id]": mine[0]["id"],
        "filter[telnyx_session_id]": mine[0]["call_session_id"],
        "filter[sip_call_id]": mine[0]["sip_call_id"],
    }.items():
        assert listing(b, **{parameter: value})["data"] == []
    assert ids_of(listing(b, **{"filter[connection_id]": a_pbx.id})) == [theirs["id"]]
    assert [r.id for r in b.client.detail_records.list(filter={"record_type": "sip-trunking"})] == [
        theirs["id"]
    ]


def test_the_default_order_reads_the_account_index(database_url: str) -> None:
    """Page one of the default search walks ix_call_record_user_id_started_at_id, without a sort."""
    search = call_records.Search(user_id="plan-account")
    stmt = call_records.search_statement(search, [("started_at", True)], 20)

    async def plan() -> str:
        db = Database(database_url)
        try:
            async with db.transaction() as conn:
                dialect = postgresql.dialect() if conn.dialect == "postgresql" else sqlite.dialect()
                sql = stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
                if conn.dialect == "postgresql":
                    # Costs on a near-empty table prefer a sequential scan; forbid it to see the path.
                    async with db._async.connect() as raw:  # type: ignore[union-attr]
                        await raw.exec_driver_sql("SET enable_seqscan = off")
                        await raw.exec_driver_sql("SET enable_sort = off")
                        rows = (await raw.exec_driver_sql(f"EXPLAIN {sql}")).all()
                    return "\n".join(r[0] for r in rows)
                rows = (await conn.execute(sa.text(f"EXPLAIN QUERY PLAN {sql}"))).all()
                return "\n".join(str(r[-1]) for r in rows)
        finally:
            await db.dispose()

    text = asyncio.run(plan())
    assert "ix_call_record_user_id_started_at_id" in text, text
    assert "TEMP B-TREE" not in text and "Sort" not in text, text
