"""store.call_ingest: the edge's call log folded into records and spend, once, whatever is replayed."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa

from trunkline.sip.state import CallEvent
from trunkline.store import call_ingest
from trunkline.store.db import Database

T0 = 1_796_083_200_000  # 2026-12-01T00:00:00Z in ms


def events(record_id: str, *, talk_ms: int, rate: str | None = "0.01") -> list[CallEvent]:
    start = {
        "user_id": "u-ingest",
        "connection_id": "c-" + record_id,
        "call_session_id": "s-" + record_id,
        "sip_call_id": "call-" + record_id,
        "direction": "outbound",
        "cli": "+13125550100",
        "cld": "+13125550101",
        "destination_country": "US",
        "rate": rate,
    }
    end = {
        "sip_status": 200,
        "sip_reason": "OK",
        "hangup_cause": "normal_clearing",
        "hangup_source": "caller",
    }
    return [
        CallEvent(1, record_id, "start", T0, start),
        CallEvent(2, record_id, "answer", T0 + 1000, {}),
        CallEvent(3, record_id, "end", T0 + 1000 + talk_ms, end),
    ]


def run(database_url: str, work: Any) -> Any:
    async def go() -> Any:
        db = Database(database_url)
        try:
            async with db.transaction(write=True) as conn:
                return await work(conn)
        finally:
            await db.dispose()

    return asyncio.run(go())


def test_a_replayed_log_bills_once(database_url: str) -> None:
    log = events("r-replay", talk_ms=61_000)
    for _ in range(3):
        run(database_url, lambda conn: call_ingest.ingest(conn, log))

    async def read(conn: Any) -> tuple[Any, Any]:
        record = (await conn.execute(sa.text("SELECT * FROM call_record WHERE id = 'r-replay'"))).one()
        spend = (
            await conn.execute(sa.text("SELECT * FROM connection_spend WHERE connection_id = 'c-r-replay'"))
        ).all()
        return record, spend

    record, spend = run(database_url, read)
    assert (record.state, record.call_sec, record.billed_sec, record.cost) == ("finished", 61, 120, "0.02")
    assert (record.started_at, record.answered_at) == ("2026-12-01T00:00:00.000Z", "2026-12-01T00:00:01.000Z")
    assert [(s.day, s.cost_nanos, s.calls) for s in spend] == [("2026-12-01", 20_000_000, 1)]


def test_unrated_and_unanswered_calls_cost_nothing(database_url: str) -> None:
    unrated = events("r-unrated", talk_ms=5_000, rate=None)
    unanswered = [e for e in events("r-unanswered", talk_ms=0) if e.kind != "answer"]
    run(database_url, lambda conn: call_ingest.ingest(conn, unrated + unanswered))

    async def read(conn: Any) -> list[Any]:
        stmt = (
            "SELECT id, call_sec, billed_sec, cost FROM call_record"
            " WHERE id IN ('r-unrated', 'r-unanswered') ORDER BY id"
        )
        return list(await conn.execute(sa.text(stmt)))

    assert [tuple(r) for r in run(database_url, read)] == [
        ("r-unanswered", 0, 0, "0"),
        ("r-unrated", 5, 60, None),
    ]
