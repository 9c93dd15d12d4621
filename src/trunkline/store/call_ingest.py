"""Fold the edge's call log (sip/call_log.py) into `call_record` and each connection's daily spend.

Events arrive at least once and in order per edge. Every step is idempotent: a `start` inserts the
record unless it exists; an `answer` moves only a ringing record; an `end` finishes only an
unfinished one, and only that transition rates the call and adds its cost to the connection's spend
for the UTC day it finished on, in the same transaction, so a replayed event never bills twice.

Each transition that happened (one row changed) also writes its webhook events to the outbox
(store/webhook_outbox.py) in the same transaction: an event exists exactly when its transition does,
once, however often the log is replayed (docs/webhooks.md).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from decimal import Decimal

import orjson
import sqlalchemy as sa

from trunkline import rating
from trunkline.sip.state import CallEvent as Event
from trunkline.store import ids, webhook_outbox
from trunkline.store.db import Conn, insert_on_conflict
from trunkline.store.schema import call_record, connection_spend

CURRENCY = "USD"


def stamp(at_ms: int) -> str:
    return ids.format_timestamp(dt.datetime.fromtimestamp(at_ms / 1000, tz=dt.UTC))


async def ingest(conn: Conn, events: Sequence[Event]) -> None:
    targets = webhook_outbox.Targets()  # the connections' webhook settings, read once per batch
    for event in events:
        if event.kind == "start":
            await _start(conn, event, targets)
        elif event.kind == "answer":
            done = await conn.execute(
                call_record.update()
                .where(call_record.c.id == event.record_id, call_record.c.state == "ringing")
                .values(state="answered", answered_at=stamp(event.at_ms), updated_at=ids.now())
            )
            if done.rowcount == 1:
                await webhook_outbox.enqueue_call_events(conn, event.record_id, "answer", targets=targets)
        elif event.kind == "end":
            await _end(conn, event, targets)


async def _start(conn: Conn, event: Event, targets: webhook_outbox.Targets) -> None:
    d = event.data
    done = await conn.execute(
        insert_on_conflict(conn, call_record)
        .values(
            id=event.record_id,
            user_id=d["user_id"],
            connection_id=d.get("connection_id") or None,
            call_session_id=d["call_session_id"],
            call_control_id="v3:" + event.record_id,
            sip_call_id=d.get("sip_call_id") or "",
            direction=d.get("direction") or "outbound",
            cli=(d.get("cli") or "")[:64],
            cld=(d.get("cld") or "")[:64],
            destination_country=d.get("destination_country"),
            state="ringing",
            started_at=stamp(event.at_ms),
            rate=d.get("rate"),
            currency=CURRENCY,
            updated_at=ids.now(),
        )
        .on_conflict_do_nothing(index_elements=[call_record.c.id])
    )
    if done.rowcount == 1:
        await webhook_outbox.enqueue_call_events(
            conn,
            event.record_id,
            "start",
            targets=targets,
            connection_id=d.get("connection_id") or "",
            user_id=d["user_id"],
        )


async def _end(conn: Conn, event: Event, targets: webhook_outbox.Targets) -> None:
    c = call_record.c
    row = (
        await conn.execute(
            sa.select(c.answered_at, c.rate, c.connection_id, c.user_id).where(
                c.id == event.record_id, c.state != "finished"
            )
        )
    ).first()
    if row is None:
        return
    finished = dt.datetime.fromtimestamp(event.at_ms / 1000, tz=dt.UTC)
    call_sec = 0
    if row.answered_at is not None:
        answered = dt.datetime.strptime(row.answered_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
        # Any started second of talk counts (a 50 ms call is 1 s): durations are rounded up.
        call_sec = max(0, math.ceil((finished - answered).total_seconds()))
    billed = rating.billed_seconds(call_sec)
    cost = rating.cost(Decimal(row.rate), billed) if row.rate else None
    d = event.data
    done = await conn.execute(
        call_record.update()
        .where(call_record.c.id == event.record_id, call_record.c.state != "finished")
        .values(
            state="finished",
            finished_at=stamp(event.at_ms),
            call_sec=call_sec,
            billed_sec=billed,
            cost=rating.cost_text(cost) if cost is not None else None,
            sip_status=d.get("sip_status"),
            sip_reason=(d.get("sip_reason") or "")[:255] or None,
            d_code=d.get("d_code"),
            hangup_cause=d.get("hangup_cause"),
            hangup_source=d.get("hangup_source"),
            routes_tried=orjson.dumps(d["routes"]).decode() if d.get("routes") else None,
            updated_at=ids.now(),
        )
    )
    if done.rowcount != 1:
        return
    if cost and row.connection_id:
        await _add_spend(conn, row.connection_id, f"{finished:%Y-%m-%d}", rating.to_nanos(cost))
    await webhook_outbox.enqueue_call_events(
        conn,
        event.record_id,
        "end",
        targets=targets,
        connection_id=row.connection_id or "",
        user_id=row.user_id,
    )


async def _add_spend(conn: Conn, connection_id: str, day: str, nanos: int) -> None:
    insert = insert_on_conflict(conn, connection_spend).values(
        connection_id=connection_id, day=day, cost_nanos=nanos, calls=1
    )
    await conn.execute(
        insert.on_conflict_do_update(
            index_elements=[connection_spend.c.connection_id, connection_spend.c.day],
            set_={
                "cost_nanos": connection_spend.c.cost_nanos + insert.excluded.cost_nanos,
                "calls": connection_spend.c.calls + 1,
            },
        )
    )
