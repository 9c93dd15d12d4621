"""Hearing change announcements on PostgreSQL: one LISTEN connection per process, woken per topic.

`changes.bump` announces a topic on `changes.CHANNEL` in the writer's transaction; PostgreSQL delivers
it to every session listening on that channel when the transaction commits, and never for one that
rolled back (https://www.postgresql.org/docs/current/sql-notify.html). A `ChangeListener` holds a
dedicated asyncpg connection (outside the pool: a pooled one is handed to other work, and a LISTEN
lives and dies with its session, https://www.postgresql.org/docs/current/sql-listen.html) and sets
the `Subscription` of each announced topic, which a consumer awaits in place of sleeping between
polls.

Notifications sent while no connection listens are lost for good. So each (re)connection sets every
subscription once it listens ("something may have changed"), and while it is down a subscription's
wait is cut to the consumer's fast poll interval: the consumer then polls as it does on SQLite until
the listener is back. Reconnects back off (0.1 s doubling to 5 s, with jitter) so that a database
restart is not met by every process at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type hints
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

from trunkline.store.changes import CHANNEL
from trunkline.store.db import Database

log = logging.getLogger("trunkline.notify")

# Shown in pg_stat_activity, so an operator (or a test) can tell these sessions from the pool's.
APPLICATION_NAME = "trunkline-changes"
BACKOFF_FIRST_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 5.0
# A connection that lived this long was healthy: the next loss starts the backoff over.
STABLE_SECONDS = 30.0
# A quiet connection may have died without a word (a network partition sends no FIN): ask it this
# often, and give it up when it does not answer in time.
CHECK_SECONDS = 15.0
CHECK_TIMEOUT_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 10.0


class Subscription:
    """One consumer's "this topic may have changed" flag, set by the listener and taken by `wait`."""

    def __init__(self, listener: ChangeListener, unheard_seconds: float) -> None:
        self._listener = listener
        self._unheard = unheard_seconds
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def take(self) -> bool:
        """True, and clear the flag, when a change was announced since the last take; never waits."""
        if not self._event.is_set():
            return False
        self._event.clear()
        return True

    async def wait(self, timeout: float) -> bool:
        """Until a change may have happened (True) or `timeout` passed (False).

        The flag is cleared before returning True, so the consumer's read that follows sees at least
        what was announced; anything announced during that read sets it again for the next wait.
        While the listener is not listening, waits at most `unheard_seconds` (the fast poll).
        """
        if self.take():
            return True
        if not self._listener.listening:
            timeout = min(timeout, self._unheard)
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        return self.take()


class ChangeListener:
    """LISTENs on `changes.CHANNEL` from `start()` to `stop()`, reconnecting when the session is lost."""

    def __init__(self, url: sa.URL) -> None:
        self._connect_args = _connect_kwargs(url)
        self._subscriptions: defaultdict[str, list[Subscription]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self._listening = asyncio.Event()
        # Sessions that reached LISTEN: 1 after the first, each later one a reconnect.
        self.connections = 0

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    @property
    def reconnects(self) -> int:
        return max(0, self.connections - 1)

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL backend process of the listening session (for pg_terminate_backend in tests)."""
        conn = self._conn
        return conn.get_server_pid() if conn is not None and self.listening else None

    def subscribe(self, topic: str, *, unheard_seconds: float) -> Subscription:
        """A flag set whenever `topic` is announced and whenever the listener (re)connects."""
        sub = Subscription(self, unheard_seconds)
        self._subscriptions[topic].append(sub)
        return sub

    async def start(self) -> None:
        """Start listening in the background; returns at once (the first connection may be slow)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="change-listener")

    async def wait_listening(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), timeout)
        return self.listening

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        # asyncpg calls this on the connection's event loop (add_listener:
        # https://magicstack.github.io/asyncpg/current/api/index.html#asyncpg.connection.Connection.add_listener).
        for sub in self._subscriptions.get(payload, ()):
            sub.set()

    def _signal_all(self) -> None:
        for subs in self._subscriptions.values():
            for sub in subs:
                sub.set()

    async def _run(self) -> None:
        delay = BACKOFF_FIRST_SECONDS
        failures = 0
        while True:
            try:
                conn = await asyncpg.connect(**self._connect_args)
            except Exception as exc:  # refused, timed out, bad credentials, too many connections: retry
                failures += 1
                # One warning per outage; the retries of the same outage only at debug level.
                (log.warning if failures == 1 else log.debug)(
                    "change listener cannot connect (attempt %d), retrying: %s", failures, exc
                )
                delay = await _backoff(delay)
                continue
            began = time.monotonic()
            try:
                await self._listen(conn, failures)
            except Exception as exc:  # whatever broke the session, the listener must outlive it
                log.warning("change listener lost its connection, reconnecting: %s", exc)
            finally:
                self._listening.clear()
                self._conn = None
                await _close(conn)
            failures = 0
            if time.monotonic() - began >= STABLE_SECONDS:
                delay = BACKOFF_FIRST_SECONDS
            delay = await _backoff(delay)

    async def _listen(self, conn: asyncpg.Connection, failures: int) -> None:
        """LISTEN on `conn`, tell every subscriber, and return once the connection is gone."""
        lost = asyncio.Event()
        # Called when the server ends the session or the socket closes
        # (https://magicstack.github.io/asyncpg/current/api/index.html#asyncpg.connection.Connection.add_termination_listener).
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(CHANNEL, self._on_notification)
        self._conn = conn
        self.connections += 1
        self._listening.set()
        if self.connections > 1 or failures:
            log.info("change listener is listening again (reconnect %d)", self.reconnects)
        # Only now: whatever was announced before this LISTEN is lost, so every consumer rereads.
        self._signal_all()
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), CHECK_SECONDS)
            if not lost.is_set():
                await conn.fetchval("SELECT 1", timeout=CHECK_TIMEOUT_SECONDS)
        log.warning("change listener's session ended, reconnecting")


def open_listener(db: Database, *, enabled: bool) -> ChangeListener | None:
    """A listener on `db`'s PostgreSQL database, or None: SQLite (nothing announces) or turned off."""
    if not enabled or db.dialect != "postgresql":
        return None
    return ChangeListener(db.url)


def _connect_kwargs(url: sa.URL) -> dict[str, Any]:
    """asyncpg.connect's arguments for `url`, read the way the pool's engine reads it."""
    _, kwargs = PGDialect_asyncpg().create_connect_args(url)
    # Options of SQLAlchemy's adapter, not of asyncpg.connect.
    for key in ("prepared_statement_cache_size", "prepared_statement_name_func", "async_fallback"):
        kwargs.pop(key, None)
    kwargs.setdefault("timeout", CONNECT_TIMEOUT_SECONDS)
    settings = dict(kwargs.pop("server_settings", None) or {})
    settings.setdefault("application_name", APPLICATION_NAME)
    kwargs["server_settings"] = settings
    return dict(kwargs)


async def _backoff(delay: float) -> float:
    """Sleep about `delay` (between half and all of it) and return the next, doubled up to the cap."""
    await asyncio.sleep(delay * random.uniform(0.5, 1.0))
    return min(delay * 2, BACKOFF_MAX_SECONDS)


async def _close(conn: asyncpg.Connection) -> None:
    if conn.is_closed():
        return
    try:
        await conn.close(timeout=2)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        conn.terminate()
