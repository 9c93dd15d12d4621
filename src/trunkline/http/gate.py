"""The access gate: each account's access IP ranges, held in this process and enforced per request.

Once an account has an `added` range, its API keys work only from inside its ranges (else 403
`10010`). Telnyx names the `pending` and `added` states but not what moves a range from one to the
other; that is trunkline's choice, pinned by tests/frontdoor/test_gate.py.

Every API process reads one counter (`config_version`, bumped in the same transaction as any change
to a range, by any instance or the CLI) and reloads all ranges when it moved; a change made through
this process is loaded as soon as it commits. When it reads: on PostgreSQL as soon as the writer's
commit announces the topic (store/notify.py), and every `change_safety_poll_seconds` in case an
announcement was missed; on SQLite (or with notifications off) every `access_gate_refresh_seconds`.
Loading a `pending` range is what makes it `added`: the gate writes that status back. The
per-request check is a dictionary lookup, plus a containment test only for accounts that have ranges.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.engine import RowMapping

from trunkline.config import Settings
from trunkline.errors import NotAuthorized
from trunkline.http import client_address
from trunkline.http.client_address import Network
from trunkline.resources import access_ip_ranges
from trunkline.store.access_ip_ranges import TOPIC
from trunkline.store.db import Database
from trunkline.store.notify import ChangeListener

log = logging.getLogger("trunkline.gate")

# Returns once the ranges may have changed or `timeout` seconds passed, whichever is first.
WaitForChange = Callable[[float], Awaitable[object]]
# After a failed reload, the next try comes this soon even when the poll interval is long.
FAILED_REFRESH_RETRY_SECONDS = 2.0


class AccessGate:
    """Account → allowed networks, kept current by a background task started with `start()`."""

    def __init__(
        self, db: Database, *, refresh_seconds: float, wait_for_change: WaitForChange | None = None
    ) -> None:
        self._db = db
        self._interval = refresh_seconds
        self._wait_for_change = wait_for_change or asyncio.sleep
        self._networks: dict[str, tuple[Network, ...]] = {}
        self._version: int | None = None
        self._unmarked: list[str] = []  # loaded but not yet written back as `added`
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, db: Database, settings: Settings, listener: ChangeListener | None) -> AccessGate:
        """Woken by the ranges' announcements when there is a listener (PostgreSQL), else polling."""
        if listener is None:
            return cls(db, refresh_seconds=settings.access_gate_refresh_seconds)
        ranges = listener.subscribe(TOPIC, unheard_seconds=settings.access_gate_refresh_seconds)
        return cls(db, refresh_seconds=settings.change_safety_poll_seconds, wait_for_change=ranges.wait)

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._poll(), name="access-gate")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def allows(self, user_id: str, address: str | None) -> bool:
        """True when the account has no ranges or `address` is inside one of them."""
        networks = self._networks.get(user_id)
        if networks is None:
            return True
        parsed = client_address.parse(address) if address is not None else None
        return parsed is not None and any(parsed in net for net in networks)

    @staticmethod
    def refusal(address: str | None) -> NotAuthorized:
        """The 403 (10010) for a request from outside the account's ranges, naming the address."""
        parsed = client_address.parse(address) if address is not None else None
        shown = (
            f"address {parsed}" if parsed is not None else "address of this request (it could not be read)"
        )
        return NotAuthorized(
            f"Requests from the {shown} are not allowed for this account: it is outside the account's"
            " access IP ranges. Use an allowed network, or remove ranges with `trunkline access-ranges`."
        )

    async def refresh(self) -> None:
        """Reload the ranges if they changed since the last load; write back `added` for new ones."""
        async with self._lock:
            async with self._db.transaction() as conn:
                version = await access_ip_ranges.version(conn)
                if version == self._version and not self._unmarked:
                    return
                snapshot = await access_ip_ranges.snapshot(conn)
            self._networks = _networks_by_account(snapshot.ranges)
            self._version = snapshot.version
            pending = [r["id"] for r in snapshot.ranges if r["status"] == "pending"]
            self._unmarked = pending
            if pending:
                async with self._db.transaction(write=True) as conn:
                    await access_ip_ranges.mark_added(conn, pending)
                self._unmarked = []
                log.info("access gate loaded %d new range(s)", len(pending))

    async def changed(self) -> None:
        """A range changed through this process and is committed: load it now (run after the response)."""
        try:
            await self.refresh()
        except Exception:
            log.warning("access gate reload failed; the next poll retries", exc_info=True)

    async def _poll(self) -> None:
        pause = self._interval
        while True:
            try:
                await self._wait_for_change(pause)
            except Exception:
                # A broken waiter must not end the gate's reloads, nor make them spin: poll instead.
                log.warning("waiting for access range changes failed; polling", exc_info=True)
                await asyncio.sleep(pause)
            try:
                await self.refresh()
                pause = self._interval
            except Exception:
                # Keep enforcing what was loaded last: a database blip must not open the gate.
                log.warning("access gate refresh failed; keeping the ranges loaded before", exc_info=True)
                pause = min(self._interval, FAILED_REFRESH_RETRY_SECONDS)


def _networks_by_account(rows: Sequence[RowMapping]) -> dict[str, tuple[Network, ...]]:
    grouped: dict[str, list[Network]] = {}
    for row in rows:
        networks = grouped.setdefault(row["user_id"], [])
        try:
            networks.append(ipaddress.ip_network(row["cidr_block"], strict=False))
        except ValueError:
            # Only reachable by editing the table by hand (the API and CLI validate every block).
            # The account stays restricted: a range we cannot read must not open the gate.
            log.error("access IP range %s has an invalid cidr_block; it admits nothing", row["id"])
    return {user: tuple(nets) for user, nets in grouped.items()}
