"""The webhook outbox (`webhook_event`, `webhook_attempt`): events written with the call transition
they announce, leased by delivery workers, settled after each attempt (docs/webhooks.md).

Every function runs in the caller's transaction. A lease is one conditional UPDATE (the row is
pending and nobody holds an unexpired lease), so of several workers on any number of API instances
exactly one gets it; a worker settles only a row it still holds. Times here are real time, not the
movable server clock (store/clock.py): a receiver and its retries live in the real world.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from trunkline.store import ids, webhook_payloads
from trunkline.store.db import Conn
from trunkline.store.schema import call_record, connection, webhook_attempt, webhook_event

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATUSES = (PENDING, DELIVERED, FAILED)


def stamp(moment: dt.datetime) -> str:
    return ids.format_timestamp(moment)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Target:
    """Where a connection's events go, as its settings say at the moment the event is written."""

    url: str
    failover_url: str | None
    api_version: str
    timeout_secs: int | None
    with_cost: bool


def target_of(document: dict[str, Any]) -> Target | None:
    url = document.get("webhook_event_url")
    if not url:
        return None
    timeout = document.get("webhook_timeout_secs")
    return Target(
        url=str(url),
        failover_url=str(document.get("webhook_event_failover_url") or "") or None,
        api_version="1" if str(document.get("webhook_api_version") or "1") == "1" else "2",
        timeout_secs=int(timeout) if isinstance(timeout, int) else None,
        with_cost=bool(document.get("call_cost_in_webhooks")),
    )


class Targets:
    """Each connection's webhook target, read once per import batch (store/call_ingest.py): most
    calls' connections have no webhook URL, and a batch holds many calls of few connections."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], Target | None] = {}

    async def of(self, conn: Conn, connection_id: str, user_id: str) -> Target | None:
        key = (connection_id, user_id)
        if key not in self._known:
            # The account too: a record never reaches another account's connection.
            stmt = sa.select(connection.c.document).where(
                connection.c.id == connection_id, connection.c.user_id == user_id
            )
            document = (await conn.execute(stmt)).scalar_one_or_none()
            self._known[key] = target_of(orjson.loads(document)) if document else None
        return self._known[key]


async def enqueue_call_events(
    conn: Conn,
    record_id: str,
    step: str,
    *,
    targets: Targets | None = None,
    connection_id: str | None = None,
    user_id: str | None = None,
) -> int:
    """Write the events of a call step that just happened (`start`, `answer` or `end`) for the
    record's connection, when it has a webhook URL and belongs to the record's account. Returns how
    many were written. A caller that knows the record's connection and account says so: a
    connection without a webhook URL then costs no read of the record."""
    targets = targets or Targets()
    known = connection_id is not None and user_id is not None
    if known and (not connection_id or await targets.of(conn, connection_id or "", user_id or "") is None):
        return 0
    record = (
        (await conn.execute(sa.select(call_record).where(call_record.c.id == record_id))).mappings().first()
    )
    if record is None or not record["connection_id"]:
        return 0
    target = await targets.of(conn, record["connection_id"], record["user_id"])
    if target is None:
        return 0
    if step == "start":
        types: Sequence[str] = webhook_payloads.ON_START
    elif step == "answer":
        types = webhook_payloads.ON_ANSWER
    else:
        types = webhook_payloads.ON_END_WITH_COST if target.with_cost else webhook_payloads.ON_END
    now = ids.now()
    rows = []
    for event_type in types:
        event_id = str(uuid.uuid4())
        body = webhook_payloads.body(target.api_version, event_id, event_type, record)
        rows.append(
            {
                "id": event_id,
                "user_id": record["user_id"],
                "connection_id": record["connection_id"],
                "call_leg_id": record["id"],
                "seq": webhook_payloads.SEQ[event_type],
                "event_type": event_type,
                "api_version": target.api_version,
                "url": target.url,
                "failover_url": target.failover_url,
                "timeout_secs": target.timeout_secs,
                "payload": orjson.dumps(body).decode(),
                "status": PENDING,
                "attempts": 0,
                "next_url": target.url,
                "round_attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
        )
    await conn.execute(sa.insert(webhook_event).values(rows))
    return len(rows)


_earlier = webhook_event.alias("earlier")


async def due(
    conn: Conn, *, now: dt.datetime, limit: int, busy_urls: Iterable[str] = ()
) -> Sequence[RowMapping]:
    """Events a worker may lease now, oldest first: pending, due, not leased, the earlier events of
    their call settled (one call's events go out in order), and not for a receiver in `busy_urls`
    (the worker has no free slot for it)."""
    at = stamp(now)
    stmt = (
        sa.select(webhook_event.c.id, webhook_event.c.next_url, webhook_event.c.timeout_secs)
        .where(
            webhook_event.c.status == PENDING,
            webhook_event.c.next_attempt_at <= at,
            sa.or_(webhook_event.c.lease_until.is_(None), webhook_event.c.lease_until < at),
            ~sa.exists().where(
                _earlier.c.call_leg_id == webhook_event.c.call_leg_id,
                _earlier.c.seq < webhook_event.c.seq,
                _earlier.c.status == PENDING,
            ),
        )
        .order_by(webhook_event.c.next_attempt_at, webhook_event.c.seq, webhook_event.c.id)
        .limit(limit)
    )
    busy = sorted(set(busy_urls))
    if busy:
        stmt = stmt.where(webhook_event.c.next_url.not_in(busy))
    return (await conn.execute(stmt)).mappings().all()


# What the attempt a dead worker left behind is recorded as, by the worker that takes the event next.
ABANDONED = "no outcome recorded: the worker making this attempt stopped and its lease ran out"


async def lease(
    conn: Conn, wanted: Sequence[tuple[str, float]], *, owner: str, now: dt.datetime
) -> list[Mapping[str, Any]]:
    """Take each event of `wanted` (id, seconds to hold it) that no other worker holds; the rows this
    worker got, in id order.

    Taking an event counts the attempt about to be made (`attempts` + 1, the next `meta.attempt`): an
    attempt whose worker dies before recording it still counts, so the next one has the next number.
    Each event is taken by one conditional UPDATE on the row as read (its `attempts` and `lease_until`
    unchanged, so no other worker took or settled it meanwhile), still pending and due, with no
    unexpired lease. When the row held an expired lease, its attempt never came back: it is recorded
    as such (ABANDONED), so `webhook_attempt` has a row for every number.

    All of them in one transaction, one commit for the lot (on PostgreSQL a commit waits for the WAL
    flush, so a commit per event would bound delivery by the disk), and in id order, so two workers
    taking overlapping sets lock their rows in the same order and never deadlock."""
    if not wanted:
        return []
    at = stamp(now)
    seconds = dict(wanted)
    stmt = (
        sa.select(webhook_event).where(webhook_event.c.id.in_(sorted(seconds))).order_by(webhook_event.c.id)
    )
    taken: list[Mapping[str, Any]] = []
    for row in (await conn.execute(stmt)).mappings().all():
        if row["status"] != PENDING or row["next_attempt_at"] > at:
            continue
        held = row["lease_until"]
        if held is not None and held >= at:
            continue
        changes = {
            "lease_owner": owner,
            "lease_until": stamp(now + dt.timedelta(seconds=seconds[row["id"]])),
            "attempts": int(row["attempts"]) + 1,
            "updated_at": at,
        }
        done = await conn.execute(
            webhook_event.update()
            .where(
                webhook_event.c.id == row["id"],
                webhook_event.c.status == PENDING,
                webhook_event.c.attempts == row["attempts"],
                webhook_event.c.lease_until.is_(None)
                if held is None
                else webhook_event.c.lease_until == held,
            )
            .values(**changes)
        )
        if done.rowcount != 1:
            continue
        if held is not None:
            await conn.execute(
                sa.insert(webhook_attempt).values(
                    event_id=row["id"],
                    attempt=int(row["attempts"]),
                    url=row["next_url"],
                    attempted_at=row["updated_at"],  # when the abandoned attempt's lease was taken
                    status_code=None,
                    latency_ms=_ms_between(row["updated_at"], now),
                    error=ABANDONED,
                )
            )
        taken.append({**row, **changes})
    return taken


def _ms_between(since: str, now: dt.datetime) -> int:
    start = dt.datetime.strptime(since, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    return max(0, int((now - start).total_seconds() * 1000))


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt as it went."""

    number: int  # meta.attempt
    url: str
    at: dt.datetime
    status_code: int | None
    latency_ms: int
    error: str | None


async def settle(conn: Conn, event_id: str, *, owner: str, attempt: Attempt, changes: dict[str, Any]) -> bool:
    """Record an attempt and the event's new state (`changes`), and release the lease; False when the
    lease was lost meanwhile (it expired and another worker took the event, or a reset deleted it)."""
    done = await conn.execute(
        webhook_event.update()
        .where(webhook_event.c.id == event_id, webhook_event.c.lease_owner == owner)
        .values(
            **changes,
            attempts=attempt.number,
            last_error=(attempt.error or "")[:255] or None,
            lease_owner=None,
            lease_until=None,
            updated_at=ids.now(),
        )
    )
    if done.rowcount != 1:
        return False
    await conn.execute(
        sa.insert(webhook_attempt).values(
            event_id=event_id,
            attempt=attempt.number,
            url=attempt.url,
            attempted_at=stamp(attempt.at),
            status_code=attempt.status_code,
            latency_ms=attempt.latency_ms,
            error=(attempt.error or "")[:255] or None,
        )
    )
    return True


async def give_up_expired(conn: Conn, *, now: dt.datetime, retry_seconds: float) -> int:
    """Mark `failed` the pending events older than the retry window that nobody holds."""
    at = stamp(now)
    oldest = stamp(now - dt.timedelta(seconds=retry_seconds))
    done = await conn.execute(
        webhook_event.update()
        .where(
            webhook_event.c.status == PENDING,
            webhook_event.c.created_at < oldest,
            sa.or_(webhook_event.c.lease_until.is_(None), webhook_event.c.lease_until < at),
        )
        .values(status=FAILED, lease_owner=None, lease_until=None, updated_at=ids.now())
    )
    return int(done.rowcount)


async def purge(conn: Conn, *, now: dt.datetime, keep_seconds: float) -> int:
    """Delete settled events (and their attempts) last changed before the retention window."""
    oldest = stamp(now - dt.timedelta(seconds=keep_seconds))
    old = sa.select(webhook_event.c.id).where(
        webhook_event.c.status != PENDING, webhook_event.c.updated_at < oldest
    )
    await conn.execute(sa.delete(webhook_attempt).where(webhook_attempt.c.event_id.in_(old)))
    done = await conn.execute(
        sa.delete(webhook_event).where(webhook_event.c.status != PENDING, webhook_event.c.updated_at < oldest)
    )
    return int(done.rowcount)


async def wipe(conn: Conn, *, user_id: str | None) -> int:
    """Delete the account's events (every account's when None) with their attempts: a reset."""
    mine = [] if user_id is None else [webhook_event.c.user_id == user_id]
    theirs = sa.select(webhook_event.c.id).where(*mine)
    await conn.execute(sa.delete(webhook_attempt).where(webhook_attempt.c.event_id.in_(theirs)))
    return int((await conn.execute(sa.delete(webhook_event).where(*mine))).rowcount)


async def listing(
    conn: Conn,
    *,
    user_id: str | None = None,
    connection_id: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> Sequence[RowMapping]:
    """Events newest first, for `trunkline webhooks list`."""
    filters = []
    if user_id is not None:
        filters.append(webhook_event.c.user_id == user_id)
    if connection_id is not None:
        filters.append(webhook_event.c.connection_id == connection_id)
    if status is not None:
        filters.append(webhook_event.c.status == status)
    stmt = (
        sa.select(webhook_event)
        .where(*filters)
        .order_by(webhook_event.c.created_at.desc(), webhook_event.c.seq.desc())
        .limit(limit)
    )
    return (await conn.execute(stmt)).mappings().all()


async def attempts_of(conn: Conn, event_id: str) -> Sequence[RowMapping]:
    stmt = (
        sa.select(webhook_attempt)
        .where(webhook_attempt.c.event_id == event_id)
        .order_by(webhook_attempt.c.attempt)
    )
    return (await conn.execute(stmt)).mappings().all()


async def redeliver(conn: Conn, event_id: str) -> bool:
    """Send a settled event again, from its primary URL, now: the same id, the attempts counting on."""
    now = ids.now()
    done = await conn.execute(
        webhook_event.update()
        .where(webhook_event.c.id == event_id, webhook_event.c.status != PENDING)
        .values(
            status=PENDING,
            next_url=webhook_event.c.url,
            round_attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
    )
    return done.rowcount == 1
