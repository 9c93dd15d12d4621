"""The delivery worker: leases due outbox events and POSTs them, each on a task of its own.

One runs in every API process (app.py's lifespan). It never holds a transaction across an HTTP
attempt, so delivery neither blocks the edge's imports nor the API's requests. Slots bound it: at
most `concurrency` attempts in flight in the process and `per_receiver` to one URL; a URL without a
free slot is left out of the next lease query, so a slow receiver holds only its own slots and the
events of every other receiver keep flowing. Leases make several processes safe: an event is in
flight in one worker at a time, and comes back to any worker when a lease runs out (the worker died).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson

from trunkline.config import Settings
from trunkline.store import webhook_outbox
from trunkline.store.db import Database
from trunkline.webhooks import addresses, delivery, policy, signing

log = logging.getLogger("trunkline.webhooks")

# How long a lease outlives the attempt's timeout: time to settle the outcome in the database.
LEASE_MARGIN_SECONDS = 10.0
HOUSEKEEPING_SECONDS = 60.0


def request_body(event: Mapping[str, Any], attempt: int, url: str) -> bytes:
    """The exact bytes of one attempt: the stored event, and for version 2 its `meta`."""
    body: dict[str, Any] = orjson.loads(event["payload"])
    if event["api_version"] == "2":
        body["meta"] = {"attempt": attempt, "delivered_to": url}
    return orjson.dumps(body)


class Worker:
    def __init__(
        self,
        db: Database,
        *,
        retry: policy.RetryPolicy | None = None,
        concurrency: int = 32,
        per_receiver: int = 4,
        poll_seconds: float = 0.2,
        keep_seconds: float = 7 * 86_400.0,
        rand: Callable[[], float] = random.random,
        owner: str | None = None,
        lease_margin: float = LEASE_MARGIN_SECONDS,
        allow_private: bool = False,
        resolver: addresses.Resolver | None = None,
    ) -> None:
        self.db = db
        self.retry = retry or policy.RetryPolicy()
        self.concurrency = concurrency
        self.per_receiver = per_receiver
        self.poll_seconds = poll_seconds
        self.keep_seconds = keep_seconds
        self.rand = rand
        self.lease_margin = lease_margin
        # Off: private, loopback and link-local receivers are refused (webhooks/addresses.py).
        self.allow_private = allow_private
        self.resolver = resolver
        self.owner = owner or f"worker-{uuid.uuid4().hex[:12]}"
        self._in_flight: dict[str, int] = collections.Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._signer: signing.Signer | None = None
        self._http: httpx.AsyncClient | None = None
        self._stop: asyncio.Event | None = None
        self._main: asyncio.Task[None] | None = None
        self._housekept = 0.0

    @classmethod
    def from_settings(cls, db: Database, settings: Settings) -> Worker:
        return cls(
            db,
            retry=policy.RetryPolicy(
                base_seconds=settings.webhook_backoff_seconds,
                cap_seconds=settings.webhook_backoff_cap_seconds,
                retry_seconds=settings.webhook_retry_seconds,
            ),
            concurrency=settings.webhook_concurrency,
            per_receiver=settings.webhook_per_receiver,
            poll_seconds=settings.webhook_poll_seconds,
            keep_seconds=settings.webhook_keep_seconds,
            allow_private=settings.webhook_allow_private,
        )

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> Worker:
        self._stop = asyncio.Event()
        self._main = asyncio.create_task(self.run(self._stop))
        return self

    async def stop(self) -> None:
        """Stop leasing and wait briefly for attempts in flight; an unfinished one's lease runs out
        and another worker (or this one after a restart) sends the event again."""
        if self._stop is None or self._main is None:
            return
        self._stop.set()
        self._wake.set()
        await self._main

    async def run(self, stop: asyncio.Event) -> None:
        self._http = self._new_client()
        try:
            while not stop.is_set():
                try:
                    await self.poll()
                except Exception:  # the database is away, say: try again at the next poll
                    log.warning("webhook delivery: polling the outbox failed", exc_info=True)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=5.0)
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            await self._http.aclose()

    async def idle(self) -> None:
        """Wait until nothing is in flight (for tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- one poll ---------------------------------------------------------------------------------

    async def _signer_now(self) -> signing.Signer:
        if self._signer is None:
            async with self.db.transaction(write=True) as conn:
                self._signer = await signing.server_signer(conn)
        return self._signer

    async def poll(self) -> int:
        """Lease what is due and has a free slot, start its attempts; how many were started."""
        await self._housekeeping()
        free = self.concurrency - len(self._tasks)
        if free <= 0:
            return 0
        signer = await self._signer_now()
        busy = [url for url, n in self._in_flight.items() if n >= self.per_receiver]
        now = webhook_outbox.utcnow()
        async with self.db.transaction() as conn:
            candidates = await webhook_outbox.due(conn, now=now, limit=free * 4, busy_urls=busy)
        # The candidates this worker has room for, within its slots and each URL's, leased at once.
        picked: list[tuple[str, float]] = []
        planned: collections.Counter[str] = collections.Counter()
        for candidate in candidates:
            if len(self._tasks) + len(picked) >= self.concurrency:
                break
            url = str(candidate["next_url"])
            if self._in_flight[url] + planned[url] >= self.per_receiver:
                continue
            planned[url] += 1
            seconds = policy.timeout_of(candidate["timeout_secs"]) + self.lease_margin
            picked.append((str(candidate["id"]), seconds))
        if not picked:
            return 0
        async with self.db.transaction(write=True) as conn:
            events = await webhook_outbox.lease(conn, picked, owner=self.owner, now=webhook_outbox.utcnow())
        # Those another worker took meanwhile are not among them.
        for event in events:
            url = str(event["next_url"])  # as leased: the candidate may be a moment old
            self._in_flight[url] += 1
            task = asyncio.create_task(self._attempt(event, url, signer))
            self._tasks.add(task)
        return len(events)

    async def _attempt(self, event: Mapping[str, Any], url: str, signer: signing.Signer) -> None:
        try:
            number = int(event["attempts"])  # the lease counted this attempt
            body = request_body(event, number, url)
            at = webhook_outbox.utcnow()
            headers = signer.headers(body, int(time.time()))
            result = await delivery.post(
                self._client(), url, body, headers, policy.timeout_of(event["timeout_secs"])
            )
            changes = self.retry.after(
                event,
                attempt=number,
                status_code=result.status_code,
                now=webhook_outbox.utcnow(),
                rand=self.rand(),
                blocked=result.blocked,
            )
            attempt = webhook_outbox.Attempt(
                number, url, at, result.status_code, result.latency_ms, result.error
            )
            columns = {
                k: webhook_outbox.stamp(v) if isinstance(v, dt.datetime) else v for k, v in changes.items()
            }
            async with self.db.transaction(write=True) as conn:
                kept = await webhook_outbox.settle(
                    conn, str(event["id"]), owner=self.owner, attempt=attempt, changes=columns
                )
            if not kept:
                log.info("webhook %s: the lease was lost before the attempt was recorded", event["id"])
            elif columns.get("status") == "failed":
                log.warning(
                    "webhook %s (%s): giving up after %d attempts", event["id"], event["event_type"], number
                )
        except Exception:
            # The lease runs out and the event is tried again: at least once, never lost.
            log.warning("webhook %s: the attempt could not be recorded", event["id"], exc_info=True)
        finally:
            self._in_flight[url] -= 1
            if self._in_flight[url] <= 0:
                del self._in_flight[url]
            task = asyncio.current_task()
            if task is not None:
                self._tasks.discard(task)
            self._wake.set()

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:  # poll() called without run(), as tests do
            self._http = self._new_client()
        return self._http

    def _new_client(self) -> httpx.AsyncClient:
        return delivery.client(self.concurrency, allow_private=self.allow_private, resolver=self.resolver)

    async def _housekeeping(self) -> None:
        if time.monotonic() - self._housekept < HOUSEKEEPING_SECONDS:
            return
        self._housekept = time.monotonic()
        now = webhook_outbox.utcnow()
        async with self.db.transaction(write=True) as conn:
            expired = await webhook_outbox.give_up_expired(
                conn, now=now, retry_seconds=self.retry.retry_seconds
            )
            await webhook_outbox.purge(conn, now=now, keep_seconds=self.keep_seconds)
        if expired:
            log.warning(
                "webhook delivery: %d events given up after %g s of retries",
                expired,
                self.retry.retry_seconds,
            )
