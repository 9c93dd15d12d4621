"""sip.reconcile: reloads coalesced the way Kamailio's permissions accepts them; FQDNs resolved."""

from __future__ import annotations

import asyncio

from trunkline.sip.dns import Resolution, ResolveFailed
from trunkline.sip.reconcile import Reconciler, Reloader
from trunkline.sip.rpc import KamailioRpcError, KamailioUnavailable
from trunkline.sip.state import AclSnapshot, Address, FqdnTarget


class Clock:
    def __init__(self, now: float = 1000.2) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeKamailio:
    """permissions' rule: refuse while last_reload > time(NULL) - reload_delta (whole seconds)."""

    def __init__(self, clock: Clock, *, reachable: bool = True) -> None:
        self.clock = clock
        self.reachable = reachable
        self.last: int | None = None
        self.calls = 0

    async def reload(self) -> None:
        self.calls += 1
        if not self.reachable:
            raise KamailioUnavailable("down")
        now = int(self.clock())
        if self.last is not None and self.last > now - 1:
            raise KamailioRpcError("permissions.addressReload", 500, "ongoing reload")
        self.last = now


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_a_burst_of_changes_is_one_reload() -> None:
    clock = Clock()
    kam = FakeKamailio(clock)
    reloader = Reloader(kam.reload, clock=clock)
    for _ in range(5):
        reloader.request()
    assert run(reloader.tick()) is True
    assert run(reloader.tick()) is False
    assert kam.calls == 1


def test_the_next_reload_waits_for_the_next_wall_clock_second() -> None:
    clock = Clock(1000.2)
    kam = FakeKamailio(clock)
    reloader = Reloader(kam.reload, clock=clock)
    reloader.request()
    assert run(reloader.tick())
    reloader.request()
    clock.now = 1000.9
    assert not run(reloader.tick())
    assert kam.calls == 1  # not even tried: Kamailio would say "ongoing reload"
    clock.now = 1001.06
    assert run(reloader.tick())
    assert kam.calls == 2


def test_a_reload_taken_in_a_later_second_pushes_the_next_one_past_that_second() -> None:
    clock = Clock(1000.9)
    kam = FakeKamailio(clock)

    async def slow_reload() -> None:
        clock.now += 0.4  # Kamailio takes it 0.4 s later: the first one at 1001.3, in the next second
        await kam.reload()

    reloader = Reloader(slow_reload, clock=clock)
    reloader.request()
    assert run(reloader.tick())
    reloader.request()
    clock.now = 1001.5
    assert not run(reloader.tick())
    assert kam.calls == 1 and reloader.refusals == 0  # not sent into a certain "ongoing reload"
    clock.now = 1002.06
    assert run(reloader.tick())
    assert reloader.refusals == 0


def test_ongoing_reload_is_retried_after_the_second_turns() -> None:
    clock = Clock(1000.5)
    kam = FakeKamailio(clock)
    kam.last = 1000  # someone else (kamcmd, another process) reloaded this second
    reloader = Reloader(kam.reload, clock=clock)
    reloader.request()
    assert not run(reloader.tick())
    assert reloader.refusals == 1 and reloader.dirty
    clock.now = 1001.06
    assert run(reloader.tick())
    assert not reloader.dirty


def test_an_unreachable_kamailio_keeps_the_change_pending() -> None:
    clock = Clock()
    kam = FakeKamailio(clock, reachable=False)
    reloader = Reloader(kam.reload, clock=clock)
    reloader.request()
    assert not run(reloader.tick())
    assert reloader.dirty
    kam.reachable = True
    clock.now += 0.6
    # A timed-out call may have reloaded after all, late: the retry waits until it would have.
    assert not run(reloader.tick()) and kam.calls == 1
    clock.now = 1003.3
    assert run(reloader.tick())


def test_a_reload_that_timed_out_but_happened_is_not_followed_by_one_in_the_same_second() -> None:
    clock = Clock(1000.2)
    kam = FakeKamailio(clock)

    async def late_reload() -> None:
        await kam.reload()  # Kamailio reloads, but the answer comes too late for the caller
        raise KamailioUnavailable("timed out")

    reloader = Reloader(late_reload, clock=clock)
    reloader.request()
    assert not run(reloader.tick())
    reloader._reload = kam.reload
    clock.now = 1000.8
    assert not run(reloader.tick())
    assert reloader.refusals == 0
    clock.now = 1003.3
    assert run(reloader.tick()) and reloader.refusals == 0


class FakeStore:
    def __init__(self, snapshot: AclSnapshot) -> None:
        self.snapshot = snapshot
        self.written: dict[str, frozenset[Address]] = {}

    async def version(self) -> int:
        return self.snapshot.version

    async def load(self) -> AclSnapshot:
        return self.snapshot

    async def store(self, fqdn_id: str, addresses: frozenset[Address]) -> bool:
        self.written[fqdn_id] = addresses
        resolved = {**self.snapshot.resolved, fqdn_id: addresses}
        self.snapshot = AclSnapshot(self.snapshot.version + 1, self.snapshot.fqdns, resolved)
        return True


def reconciler(store: FakeStore, kam: FakeKamailio, clock: Clock, answers: dict[str, object]) -> Reconciler:
    async def resolver(target: FqdnTarget) -> Resolution:
        answer = answers[target.fqdn]
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    return Reconciler(
        read_version=store.version,
        load_snapshot=store.load,
        store_resolved=store.store,
        reload=kam.reload,
        resolver=resolver,
        clock=clock,
    )


A = FqdnTarget("1", "pbx.example.test", "a", 5080)


def test_a_new_fqdn_is_resolved_stored_and_reloaded() -> None:
    clock = Clock()
    kam = FakeKamailio(clock)
    store = FakeStore(AclSnapshot(version=3, fqdns=(A,)))
    answer = Resolution(frozenset({Address("192.0.2.7", 5080)}), ttl=60)
    rec = reconciler(store, kam, clock, {A.fqdn: answer})
    run(rec.tick())
    assert store.written == {"1": answer.addresses}
    assert kam.calls == 1
    # Its own write bumped the version: the next ticks reload once more, then rest.
    clock.now += 1.0
    run(rec.tick())
    run(rec.tick())
    assert kam.calls == 2
    assert rec.seen_version == 4


def test_fqdns_are_re_resolved_on_their_ttl_and_failures_keep_the_addresses() -> None:
    clock = Clock()
    kam = FakeKamailio(clock)
    addresses = frozenset({Address("192.0.2.7", 5080)})
    store = FakeStore(AclSnapshot(version=1, fqdns=(A,), resolved={"1": addresses}))
    answers: dict[str, object] = {A.fqdn: Resolution(addresses, ttl=30)}
    rec = reconciler(store, kam, clock, answers)
    run(rec.tick())
    assert store.written == {}  # unchanged answer: nothing written
    answers[A.fqdn] = ResolveFailed("timeout")
    clock.now += 31
    run(rec.tick())
    assert store.written == {}
    answers[A.fqdn] = Resolution(frozenset({Address("192.0.2.8", 5080)}), ttl=30)
    clock.now += rec.retry_seconds + 1
    run(rec.tick())
    assert store.written == {"1": frozenset({Address("192.0.2.8", 5080)})}


def test_a_write_that_leaves_the_address_table_alone_costs_no_reload() -> None:
    clock = Clock()
    kam = FakeKamailio(clock)
    store = FakeStore(AclSnapshot(version=1, acl_digest="d1"))
    rec = reconciler(store, kam, clock, {})
    run(rec.tick())
    assert kam.calls == 1
    clock.now += 2
    store.snapshot = AclSnapshot(version=2, acl_digest="d1")  # e.g. a new credential connection
    run(rec.tick())
    assert kam.calls == 1
    store.snapshot = AclSnapshot(version=3, acl_digest="d2")  # a new IP
    run(rec.tick())
    assert kam.calls == 2
    rec.kamailio_restarted()
    clock.now += 2
    run(rec.tick())
    assert kam.calls == 3
