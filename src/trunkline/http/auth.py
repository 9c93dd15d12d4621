"""API-key authentication with a small in-process cache, so a valid key costs no database round trip."""

from __future__ import annotations

import time
from collections import OrderedDict

from trunkline.resources import api_keys
from trunkline.resources.api_keys import Principal
from trunkline.store.db import Database


class Authenticator:
    """Key → principal, remembered for `ttl` seconds (the bound on how late a revocation bites)."""

    def __init__(self, db: Database, *, ttl: float, max_entries: int = 10_000) -> None:
        self._db = db
        self._ttl = ttl
        self._max = max_entries
        # Keyed by the key's digest: the cache never holds a key in clear.
        self._cache: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()

    async def authenticate(self, key: str) -> Principal | None:
        digest = api_keys.digest(key)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self._db.transaction() as conn:
            principal = await api_keys.authenticate(conn, key)
        # Unknown keys are not cached: guessing must not fill the cache and evict real keys.
        if principal is not None:
            self._cache[digest] = (now + self._ttl, principal)
            self._cache.move_to_end(digest)
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return principal

    def forget(self, key_id: str) -> None:
        """Drop a key from this process's cache at once (after a revocation through this process)."""
        for digest, (_, principal) in list(self._cache.items()):
            if principal is not None and principal.key_id == key_id:
                del self._cache[digest]
