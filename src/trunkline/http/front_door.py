"""What a request passes after its key is checked: brute-force lockout, the access gate, the key's budget.

The order is deliberate:
1. An address that failed authentication too often gets 429 whatever key it sends, valid or not, so
   a guesser learns nothing from the answer. A lockout is remembered in the process until it ends, so a
   locked-out guesser costs no database lookup; with Redis, the shared counter is also asked on every
   request (in parallel with the budget), since the failures may have been seen by another instance.
2. The access gate (403, 10010) comes before the budget: requests from outside an account's ranges
   (a leaked key, say) must not spend the budget of the account's real clients.
3. The key's budget (429, 10011); every admitted response carries the x-ratelimit-* headers.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import Request
from starlette.types import Scope

from trunkline.config import Settings
from trunkline.errors import AuthenticationFailed, TelnyxError, TooManyRequests
from trunkline.http import client_address, ratelimit
from trunkline.http.gate import AccessGate
from trunkline.http.ratelimit import RateLimits
from trunkline.resources.api_keys import Principal
from trunkline.store.db import Database
from trunkline.store.notify import ChangeListener

_LOCAL_LOCKOUTS_MAX = 10_000


def check_settings(settings: Settings) -> None:
    """Raise ValueError, with a message fit for the operator, for settings the front door cannot use."""
    client_address.parse_networks(settings.trusted_proxies)
    ratelimit.parse_rate(settings.rate_limit)


class FrontDoor:
    """Built and started in the app's lifespan; `get_caller` asks it about every request."""

    def __init__(self, settings: Settings, db: Database, listener: ChangeListener | None = None) -> None:
        self._proxies = client_address.parse_networks(settings.trusted_proxies)
        # `listener`: the process's change listener on PostgreSQL (app.py), which wakes the gate.
        self.gate = AccessGate.from_settings(db, settings, listener)
        self.limits = RateLimits.create(
            rate=settings.rate_limit,
            auth_failures_per_minute=settings.auth_failure_limit,
            redis_url=settings.redis_url,
        )
        self._locked_until: dict[str, float] = {}  # address bucket → monotonic end of its lockout

    async def start(self) -> None:
        await self.gate.start()

    async def stop(self) -> None:
        await self.gate.stop()
        await self.limits.close()

    def client_address(self, scope: Scope) -> str | None:
        """The request's client address; also noted in the scope state for the access log."""
        address = client_address.resolve(scope, self._proxies)
        scope.setdefault("state", {})["client_address"] = address
        return address

    def check_lockout(self, address: str | None) -> None:
        """429 at once, with no I/O, for an address this process already saw locked out."""
        bucket = ratelimit.bucket(address)
        until = self._locked_until.get(bucket)
        if until is not None:
            wait = until - time.monotonic()
            if wait > 0:
                raise _locked_out(wait)
            del self._locked_until[bucket]

    async def refuse_key(self, address: str | None) -> TelnyxError:
        """The error for a key that failed authentication: 401, or 429 once the address is locked out."""
        wait = await self.limits.failures_blocked(address)
        if wait is not None:
            self._remember_lockout(address, wait)
            return _locked_out(wait)
        now_locked = await self.limits.record_failure(address)
        if now_locked is not None:
            # That was the last allowed failure: this process refuses the next attempt without I/O.
            self._remember_lockout(address, now_locked)
        return AuthenticationFailed()

    async def admit(self, request: Request, principal: Principal, address: str | None) -> None:
        """Raise unless this authenticated request may go on; attach the budget headers."""
        if not self.gate.allows(principal.user_id, address):
            await self._raise_if_locked_out(address)
            _attach(request, await self.limits.peek_key(principal.key_id))
            raise self.gate.refusal(address)
        if self.limits.shared:
            # Another instance may have seen this address's failures: ask the shared counter, in
            # parallel with spending the budget, so it costs no extra round trip.
            wait, window = await asyncio.gather(
                self.limits.failures_blocked(address), self.limits.hit_key(principal.key_id)
            )
            if wait is not None:
                self._remember_lockout(address, wait)
                raise _locked_out(wait)
        else:
            # In process every lockout was remembered where it happened, and check_lockout saw it.
            window = await self.limits.hit_key(principal.key_id)
        _attach(request, window)
        if window is not None and not window.allowed:
            raise TooManyRequests(
                f"This API key has used its allowance of {window.limit} requests per window;"
                f" retry in {window.reset_seconds:.2f} s.",
                headers=ratelimit.retry_headers(window.reset_seconds),
            )

    async def _raise_if_locked_out(self, address: str | None) -> None:
        if not self.limits.shared:
            return  # check_lockout already answered for this process's own counters
        wait = await self.limits.failures_blocked(address)
        if wait is not None:
            self._remember_lockout(address, wait)
            raise _locked_out(wait)

    def _remember_lockout(self, address: str | None, wait: float) -> None:
        if len(self._locked_until) >= _LOCAL_LOCKOUTS_MAX:
            now = time.monotonic()
            self._locked_until = {a: t for a, t in self._locked_until.items() if t > now}
            if len(self._locked_until) >= _LOCAL_LOCKOUTS_MAX:
                return  # a flood of distinct addresses: the shared counter still answers for them
        self._locked_until[ratelimit.bucket(address)] = time.monotonic() + wait


def _attach(request: Request, window: ratelimit.Window | None) -> None:
    # RequestContext (http/middleware.py) appends these to whatever response this request gets.
    if window is not None:
        request.state.response_headers = window.headers()


def _locked_out(wait: float) -> TooManyRequests:
    return TooManyRequests(
        "Too many failed authentication attempts from this address; wait before trying again.",
        headers=ratelimit.retry_headers(wait),
    )
