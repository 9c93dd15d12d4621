"""Keeps a running Kamailio's source-address ACL in step with the database.

The API bumps the "acl" topic in the same transaction as every IP/FQDN/connection write. The
reconciler reads that counter (one indexed read), resolves FQDNs (new ones at once, the rest on their
TTL), and asks Kamailio to reload its address table, coalescing bursts of changes into the few
reloads Kamailio accepts. It never imports the store: `edge.py` hands it callables.

Between steps it waits on `wait_for_change(timeout)`: on PostgreSQL the store's listener
(store/notify.py), which returns as soon as the topic is announced, so `poll_seconds` is only a
safety net there; elsewhere a plain sleep, so it polls every `poll_seconds`. Either way it wakes in
time for its own work: a reload Kamailio refused until the next second, an FQDN whose TTL ran out,
a restarted Kamailio.

Credentials need none of this: auth_db reads them from the database on every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from trunkline.sip.dns import Resolution, ResolveFailed, Resolver
from trunkline.sip.rpc import KamailioRpcError, KamailioUnavailable
from trunkline.sip.state import AclSnapshot, Address, FqdnTarget

log = logging.getLogger("trunkline.sip")

Clock = Callable[[], float]
# Returns once a change may have happened or `timeout` seconds passed, whichever is first.
WaitForChange = Callable[[float], Awaitable[object]]
# How long a reload that timed out may still take to happen (RpcClient's own timeout is 2 s).
LATE_RELOAD_SECONDS = 3.0
# After a failed step, the next one comes this soon even when the poll interval is long.
FAILED_STEP_RETRY_SECONDS = 1.0
# The shortest pause between steps: a duty that is due at once must not make the loop spin.
MIN_PAUSE_SECONDS = 0.005


async def poll_only(timeout: float) -> None:
    """The `wait_for_change` of a store that announces nothing (SQLite): sleep until the next poll."""
    await asyncio.sleep(timeout)


class Reloader:
    """Turns any number of "the ACL changed" requests into `permissions.addressReload` calls.

    permissions refuses a reload while `last_reload > time(NULL) - reload_delta`, counted in whole
    seconds, and says "ongoing reload" although nothing is running (Kamailio 5.6; reload_delta:
    https://kamailio.org/docs/modules/5.6.x/modules/permissions.html#permissions.p.reload_delta).
    With reload_delta=1 the next reload is accepted from the next wall-clock second on, so we wait
    for that boundary instead of hammering, and retry on the error.
    """

    def __init__(self, reload: Callable[[], Awaitable[None]], *, clock: Clock = time.time) -> None:
        self._reload = reload
        self._clock = clock
        self.dirty = False
        self.not_before = 0.0
        self.reloads = 0
        self.refusals = 0

    def request(self) -> None:
        self.dirty = True

    async def tick(self) -> bool:
        """Reload if something is pending and Kamailio will accept it now; True when it reloaded."""
        now = self._clock()
        if not self.dirty or now < self.not_before:
            return False
        try:
            await self._reload()
        except KamailioRpcError as exc:
            if "ongoing reload" in exc.message:
                self.refusals += 1
                self.not_before = _next_second(now)
            else:
                log.warning("ACL reload failed: %s", exc)
                self.not_before = now + 1.0
            return False
        except KamailioUnavailable as exc:
            log.debug("ACL reload postponed, Kamailio not reachable: %s", exc)
            # A timed-out call may still be waiting in Kamailio's RPC socket and reload late: retry
            # once it would have been answered, and in a later second than it.
            after = self._clock()
            self.not_before = max(_next_second(after), after + LATE_RELOAD_SECONDS)
            return False
        self.dirty = False
        self.reloads += 1
        # From the clock after the call: under load Kamailio may take the reload in a later second
        # than the one it was sent in, and it records that one (an earlier bound logs an ERROR).
        self.not_before = _next_second(self._clock())
        return True


def _next_second(now: float) -> float:
    # Past the boundary by more than a clock tick: Kamailio compares time(NULL), which on Linux reads
    # the coarse clock and may flip a tick (up to 10 ms) after the clock Python reads (time(2),
    # clock_gettime(2) CLOCK_REALTIME_COARSE).
    return math.floor(now) + 1.0 + 0.05


@dataclass
class Reconciler:
    """One poll step at a time (`tick`); `run` loops until told to stop."""

    read_version: Callable[[], Awaitable[int]]
    load_snapshot: Callable[[], Awaitable[AclSnapshot]]
    store_resolved: Callable[[str, frozenset[Address]], Awaitable[bool]]
    reload: Callable[[], Awaitable[None]]
    resolver: Resolver
    clock: Clock = time.time
    poll_seconds: float = 0.1
    wait_for_change: WaitForChange = poll_only
    # Re-resolve within these bounds whatever the TTL says; retry failed lookups after retry_seconds.
    min_refresh_seconds: float = 5.0
    max_refresh_seconds: float = 300.0
    retry_seconds: float = 30.0
    seen_version: int | None = None
    _due: dict[str, float] = field(default_factory=dict)
    _targets: dict[str, FqdnTarget] = field(default_factory=dict)
    _resolved: dict[str, frozenset[Address]] = field(default_factory=dict)
    _reloader: Reloader | None = None
    _pending_digest: str | None = None
    _applied_digest: str | None = None
    # Set (from any thread) to end the current pause early; `run` owns the loop it belongs to.
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _loop: asyncio.AbstractEventLoop | None = None

    @property
    def reloader(self) -> Reloader:
        if self._reloader is None:
            self._reloader = Reloader(self.reload, clock=self.clock)
        return self._reloader

    def kamailio_restarted(self) -> None:
        """A new Kamailio loaded the table at start; reload anyway in case it raced a change.

        The supervisor calls this from its own thread (sip/service.py runs it through to_thread), so
        the running loop is woken thread-safely rather than left to its next poll.
        """
        self._applied_digest = None
        self.reloader.request()
        self.wake()

    def wake(self) -> None:
        """End the current pause now; safe from any thread."""
        loop = self._loop
        if loop is None:
            return  # not running yet: `run` begins with a step anyway
        with contextlib.suppress(RuntimeError):  # the loop has closed: nothing is left to wake
            loop.call_soon_threadsafe(self._wake.set)

    def seconds_until_due(self) -> float:
        """How long the loop may wait before work of its own is due (inf: none is)."""
        due = [at for fqdn_id, at in self._due.items() if fqdn_id in self._targets]
        reloader = self.reloader
        if reloader.dirty:
            due.append(reloader.not_before)
        return max(0.0, min(due) - self.clock()) if due else math.inf

    async def tick(self) -> None:
        version = await self.read_version()
        if version != self.seen_version:
            snapshot = await self.load_snapshot()
            self._adopt(snapshot)
            self.seen_version = snapshot.version
            # The newest content known; a reload after this point loads at least that.
            self._pending_digest = snapshot.acl_digest
            if not snapshot.acl_digest or snapshot.acl_digest != self._applied_digest:
                self.reloader.request()
        await self._resolve_due()
        if await self.reloader.tick():
            # Kamailio read the table after the snapshot: it holds at least that content.
            self._applied_digest = self._pending_digest

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                    pause = min(self.poll_seconds, self.seconds_until_due())
                except Exception:  # the loop must outlive a database hiccup; the next tick retries
                    log.exception("SIP edge reconcile step failed")
                    pause = min(self.poll_seconds, FAILED_STEP_RETRY_SECONDS)
                await self._pause(stop, max(pause, MIN_PAUSE_SECONDS))
        finally:
            self._loop = None

    async def _pause(self, stop: asyncio.Event, timeout: float) -> None:
        """Until `timeout` passes, a change may have happened, `wake()` is called, or `stop` is set."""
        waits = [
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(self._wait_for_change(timeout)),
        ]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        self._wake.clear()

    async def _wait_for_change(self, timeout: float) -> None:
        try:
            await self.wait_for_change(timeout)
        except Exception:
            # A broken waiter must neither stop the loop nor make it spin: fall back to the poll.
            log.exception("waiting for change notifications failed; polling instead")
            await asyncio.sleep(timeout)

    def _adopt(self, snapshot: AclSnapshot) -> None:
        targets = {t.fqdn_id: t for t in snapshot.fqdns}
        for fqdn_id, target in targets.items():
            # New or edited records are resolved at once.
            if self._targets.get(fqdn_id) != target:
                self._due[fqdn_id] = 0.0
        for gone in self._targets.keys() - targets.keys():
            self._due.pop(gone, None)
        self._targets = targets
        self._resolved = dict(snapshot.resolved)

    async def _resolve_due(self) -> None:
        now = self.clock()
        for fqdn_id, due in sorted(self._due.items(), key=lambda item: item[1]):
            if due > now or fqdn_id not in self._targets:
                continue
            target = self._targets[fqdn_id]
            try:
                answer: Resolution = await self.resolver(target)
            except ResolveFailed as exc:
                log.warning("resolving %s failed, keeping its addresses: %s", target.fqdn, exc)
                self._due[fqdn_id] = now + self.retry_seconds
                continue
            ttl = min(max(answer.ttl, self.min_refresh_seconds), self.max_refresh_seconds)
            self._due[fqdn_id] = now + ttl
            if answer.addresses != self._resolved.get(fqdn_id, frozenset()):
                # The store bumps the ACL topic when it wrote: the next tick reloads (and every
                # other edge node learns of it the same way).
                await self.store_resolved(fqdn_id, answer.addresses)
                self._resolved[fqdn_id] = answer.addresses
