"""Change announcements on PostgreSQL: heard after commit, never for a rollback; the listener
survives losing its session and says so (store/changes.py, store/notify.py).

"Not heard" is shown without waiting by luck: PostgreSQL delivers notifications to a listener in
commit order, so once a marker sent after the transaction has arrived, anything the transaction
announced would have arrived before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import pytest

from tests.services import PG_HOST, PG_PORT, PG_USER, free_port, postgres_database
from trunkline.errors import TelnyxError
from trunkline.store import changes, migrate, notify
from trunkline.store.db import Database

MARKER = "test-marker"
# Generous bounds that only a broken listener misses; nothing here passes by waiting.
ARRIVES_WITHIN = 5.0


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_database() as url:
        migrate.upgrade(url)
        yield url


def run_with_listener(url: str, body: Callable[..., Awaitable[None]]) -> None:
    """Run `body(db, listener, admin)` once the listener listens; tear everything down after."""

    async def go() -> None:
        db = Database(url)
        listener = notify.open_listener(db, enabled=True)
        assert listener is not None
        name = url.rsplit("/", 1)[1]
        admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=name)
        try:
            await listener.start()
            assert await listener.wait_listening(ARRIVES_WITHIN)
            await body(db, listener, admin)
        finally:
            await listener.stop()
            await admin.close()
            await db.dispose()

    asyncio.run(go())


async def marker_arrives(admin: Any, marker: notify.Subscription) -> None:
    """Send a marker from a session of its own and wait for it: everything committed before it is in."""
    await admin.execute("SELECT pg_notify($1, $2)", changes.CHANNEL, MARKER)
    assert await marker.wait(ARRIVES_WITHIN)


def test_an_announcement_arrives_after_commit_and_not_before(pg_url: str) -> None:
    async def body(db: Database, listener: notify.ChangeListener, admin: Any) -> None:
        acl = listener.subscribe(changes.ACL, unheard_seconds=0.1)
        marker = listener.subscribe(MARKER, unheard_seconds=0.1)
        acl.take()  # the connect's own "something may have changed"
        marker.take()
        async with db.transaction(write=True) as conn:
            await changes.bump(conn, changes.ACL)
            await marker_arrives(admin, marker)
            assert not acl.take(), "heard before the writer committed"
        assert await acl.wait(ARRIVES_WITHIN)
        async with db.transaction() as conn:
            assert await changes.version(conn, changes.ACL) >= 1

    run_with_listener(pg_url, body)


def test_a_rolled_back_transaction_announces_nothing(pg_url: str) -> None:
    async def body(db: Database, listener: notify.ChangeListener, admin: Any) -> None:
        acl = listener.subscribe(changes.ACL, unheard_seconds=0.1)
        marker = listener.subscribe(MARKER, unheard_seconds=0.1)
        acl.take()
        marker.take()
        with pytest.raises(TelnyxError):
            async with db.transaction(write=True) as conn:
                await changes.bump(conn, changes.ACL)
                raise TelnyxError("the write fails after its bump")
        await marker_arrives(admin, marker)
        assert not acl.take(), "a rolled-back change was announced"

    run_with_listener(pg_url, body)


def test_only_the_announced_topic_is_woken(pg_url: str) -> None:
    async def body(db: Database, listener: notify.ChangeListener, admin: Any) -> None:
        acl = listener.subscribe(changes.ACL, unheard_seconds=0.1)
        other = listener.subscribe("access_ip_range", unheard_seconds=0.1)
        marker = listener.subscribe(MARKER, unheard_seconds=0.1)
        for sub in (acl, other, marker):
            sub.take()
        async with db.transaction(write=True) as conn:
            await changes.bump(conn, changes.ACL)
            await changes.bump(conn, changes.ACL)  # twice in one transaction: heard once
        assert await acl.wait(ARRIVES_WITHIN)
        await marker_arrives(admin, marker)
        assert not other.take()
        assert not acl.take()

    run_with_listener(pg_url, body)


def test_the_listener_survives_its_session_being_terminated_and_reports_the_reconnect(pg_url: str) -> None:
    async def body(db: Database, listener: notify.ChangeListener, admin: Any) -> None:
        acl = listener.subscribe(changes.ACL, unheard_seconds=0.1)
        acl.take()
        pid = listener.backend_pid
        assert pid is not None and listener.reconnects == 0
        application = await admin.fetchval(
            "SELECT application_name FROM pg_stat_activity WHERE pid = $1", pid
        )
        assert application == notify.APPLICATION_NAME
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        # No announcement was sent: the reconnect itself wakes the subscriber, since whatever was
        # announced while nobody listened is lost.
        assert await acl.wait(ARRIVES_WITHIN)
        assert listener.listening and listener.reconnects == 1
        assert listener.backend_pid not in (None, pid)
        # And it hears announcements again.
        acl.take()
        async with db.transaction(write=True) as conn:
            await changes.bump(conn, changes.ACL)
        assert await acl.wait(ARRIVES_WITHIN)

    run_with_listener(pg_url, body)


def test_while_the_listener_cannot_connect_a_wait_lasts_only_the_fast_poll() -> None:
    # Nothing listens on this port: the listener keeps retrying, and a consumer waiting for the
    # safety poll's hour is let go after its fast poll instead (it polls as on SQLite meanwhile).
    url = f"postgresql://{PG_USER}@127.0.0.1:{free_port()}/nothing"

    async def go() -> None:
        db = Database(url)
        listener = notify.open_listener(db, enabled=True)
        assert listener is not None
        acl = listener.subscribe(changes.ACL, unheard_seconds=0.05)
        await listener.start()
        try:
            assert await asyncio.wait_for(acl.wait(3600), timeout=ARRIVES_WITHIN) is False
            assert not listener.listening and listener.connections == 0
        finally:
            await listener.stop()
            await db.dispose()

    asyncio.run(go())


def test_no_listener_on_sqlite_or_when_turned_off(tmp_path: Any) -> None:
    async def go() -> None:
        lite = Database(f"sqlite:///{tmp_path / 'x.db'}")
        pg = Database(f"postgresql://{PG_USER}@127.0.0.1:1/nothing")
        try:
            assert notify.open_listener(lite, enabled=True) is None
            assert notify.open_listener(pg, enabled=False) is None
            assert notify.open_listener(pg, enabled=True) is not None
        finally:
            await lite.dispose()
            await pg.dispose()

    asyncio.run(go())
