"""sip.reconcile's run loop: woken by a change announcement (or its own due work) long before its poll.

Every reconciler here polls once an hour, so whatever it does within the tests' few seconds it does
because something woke it. Each wait is bounded by asyncio.wait_for and fails when the wake-up did
not come; none passes by sleeping long enough. The announcements come through the store's real
`Subscription` (store/notify.py), as edge.py wires it, with a stand-in for the listener.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from trunkline.sip import reconcile
from trunkline.sip.dns import Resolution
from trunkline.sip.reconcile import Reconciler
from trunkline.sip.state import AclSnapshot, Address, FqdnTarget
from trunkline.store.notify import Subscription

HOUR = 3600.0
WITHIN = 5.0  # far above any wake-up here (at most ~1.05 s: Kamailio's next reload second)


class Listening:
    """The listener as a Subscription sees it: listening, so waits are not cut to the fast poll."""

    listening = True


class Edge:
    """The store and Kamailio a reconciler talks to, recording what it was asked, in order."""

    def __init__(self) -> None:
        self.version = 1
        self.digest = "d1"
        self.reads = 0
        self.loaded: asyncio.Queue[int] = asyncio.Queue()
        self.reloaded: asyncio.Queue[float] = asyncio.Queue()
        self.fail_reads = 0

    async def read_version(self) -> int:
        self.reads += 1
        if self.fail_reads:
            self.fail_reads -= 1
            raise OSError("the database is restarting")
        return self.version

    async def load_snapshot(self) -> AclSnapshot:
        self.loaded.put_nowait(self.version)
        return AclSnapshot(version=self.version, acl_digest=self.digest)

    async def store_resolved(self, fqdn_id: str, addresses: frozenset[Address]) -> bool:
        return True

    async def reload(self) -> None:
        self.reloaded.put_nowait(time.time())

    def change(self) -> None:
        """An API write: a new version, a different address table."""
        self.version += 1
        self.digest = f"d{self.version}"


async def never_resolve(target: FqdnTarget) -> Resolution:
    raise AssertionError(f"nothing to resolve here, asked for {target.fqdn}")


def make(edge: Edge, **kw: Any) -> Reconciler:
    values: dict[str, Any] = {
        "read_version": edge.read_version,
        "load_snapshot": edge.load_snapshot,
        "store_resolved": edge.store_resolved,
        "reload": edge.reload,
        "resolver": never_resolve,
        "poll_seconds": HOUR,
    }
    values.update(kw)
    return Reconciler(**values)


async def next_of(queue: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(queue.get(), WITHIN)


def running(rec: Reconciler, body: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run the reconciler's loop beside `body(stop)`; the loop must end promptly once stopped."""

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(rec.run(stop))
        try:
            await body(stop)
        finally:
            stop.set()
            await asyncio.wait_for(task, WITHIN)

    asyncio.run(go())


def test_an_announcement_wakes_the_loop_long_before_its_poll() -> None:
    edge = Edge()
    acl = Subscription(Listening(), unheard_seconds=HOUR)  # type: ignore[arg-type]
    rec = make(edge, wait_for_change=acl.wait)

    async def body(stop: asyncio.Event) -> None:
        assert await next_of(edge.loaded) == 1  # the first step loads at once
        edge.change()
        acl.set()
        assert await next_of(edge.loaded) == 2
        assert rec.seen_version == 2

    running(rec, body)


def test_an_announcement_made_during_a_step_is_not_lost() -> None:
    edge = Edge()
    acl = Subscription(Listening(), unheard_seconds=HOUR)  # type: ignore[arg-type]
    loads = edge.load_snapshot

    async def load_and_hear_another_write() -> AclSnapshot:
        snapshot = await loads()
        if snapshot.version == 1:
            edge.change()  # committed while this step runs: its announcement lands mid-step
            acl.set()
        return snapshot

    rec = make(edge, wait_for_change=acl.wait, load_snapshot=load_and_hear_another_write)

    async def body(stop: asyncio.Event) -> None:
        assert await next_of(edge.loaded) == 1
        assert await next_of(edge.loaded) == 2

    running(rec, body)


def test_a_reload_kamailio_would_refuse_until_the_next_second_happens_then_not_at_the_next_poll() -> None:
    edge = Edge()
    acl = Subscription(Listening(), unheard_seconds=HOUR)  # type: ignore[arg-type]
    rec = make(edge, wait_for_change=acl.wait)

    async def body(stop: asyncio.Event) -> None:
        first = await next_of(edge.reloaded)
        edge.change()
        acl.set()
        second = await next_of(edge.reloaded)
        # permissions takes one reload per wall-clock second (sip/reconcile.py, Reloader).
        assert math.floor(second) > math.floor(first)

    running(rec, body)


def test_a_kamailio_restart_reported_from_another_thread_wakes_the_loop() -> None:
    edge = Edge()
    rec = make(edge, wait_for_change=Subscription(Listening(), unheard_seconds=HOUR).wait)  # type: ignore[arg-type]

    async def body(stop: asyncio.Event) -> None:
        await next_of(edge.reloaded)
        # As the supervisor does: from its own thread (sip/service.py runs it through to_thread).
        await asyncio.to_thread(rec.kamailio_restarted)
        await next_of(edge.reloaded)

    running(rec, body)


def test_an_fqdn_is_re_resolved_on_its_ttl_with_a_long_poll() -> None:
    edge = Edge()
    target = FqdnTarget("1", "pbx.example.test", "a", 5060)
    asked: asyncio.Queue[str] = asyncio.Queue()

    async def resolver(t: FqdnTarget) -> Resolution:
        asked.put_nowait(t.fqdn)
        return Resolution(frozenset(), ttl=0)

    async def load_snapshot() -> AclSnapshot:
        return AclSnapshot(version=edge.version, fqdns=(target,))

    rec = make(edge, resolver=resolver, load_snapshot=load_snapshot, min_refresh_seconds=0.05)

    async def body(stop: asyncio.Event) -> None:
        for _ in range(3):
            assert await next_of(asked) == target.fqdn

    running(rec, body)


def test_a_failed_step_is_retried_soon_not_at_the_next_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconcile, "FAILED_STEP_RETRY_SECONDS", 0.01)
    edge = Edge()
    edge.fail_reads = 2
    rec = make(edge, wait_for_change=Subscription(Listening(), unheard_seconds=HOUR).wait)  # type: ignore[arg-type]

    async def body(stop: asyncio.Event) -> None:
        assert await next_of(edge.loaded) == 1
        assert edge.reads == 3

    running(rec, body)


def test_a_failing_waiter_neither_ends_nor_spins_the_loop() -> None:
    edge = Edge()
    calls = 0

    async def broken(timeout: float) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("the listener is gone")

    rec = make(edge, wait_for_change=broken)

    async def body(stop: asyncio.Event) -> None:
        await next_of(edge.loaded)
        for _ in range(200):  # room for many steps, were the loop spinning on the failure
            await asyncio.sleep(0)
        assert calls == 1 and edge.reads == 1
        rec.wake()
        edge.change()
        assert await next_of(edge.loaded) == 2

    running(rec, body)


def test_without_announcements_it_polls_every_poll_seconds() -> None:
    # SQLite's wiring: no waiter, the plain poll (sip_poll_seconds, 0.1 s by default).
    edge = Edge()
    rec = make(edge, poll_seconds=0.01)

    async def body(stop: asyncio.Event) -> None:
        assert await next_of(edge.loaded) == 1
        edge.change()
        assert await next_of(edge.loaded) == 2

    running(rec, body)


def test_stopping_ends_a_long_pause_at_once() -> None:
    edge = Edge()
    rec = make(edge, wait_for_change=Subscription(Listening(), unheard_seconds=HOUR).wait)  # type: ignore[arg-type]

    async def body(stop: asyncio.Event) -> None:
        await next_of(edge.loaded)
        # `running` stops the loop after this and fails unless it ends within WITHIN.

    running(rec, body)
