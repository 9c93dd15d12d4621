"""The request journal in Redis, one for every API instance that shares TRUNKLINE_REDIS_URL.

Keys, under the link's prefix (`trunkline:control:` by default):
- `journal:a:<user_id>`: a list of the account's entries, newest first;
- `journal:seq`: the counter that numbers entries, so ids give the order requests completed in
  across instances;
- `journal:accounts`: a sorted set of accounts by the id of their newest entry (the least recently
  active account is the first), `journal:bytes` a hash of the bytes each holds, `journal:total`
  their sum.

Recording is one Lua script, so one round trip per request, and atomic (https://redis.io/docs/latest/
develop/interact/programmability/eval-intro/): it numbers the entry, pushes it, trims the account to
`journal_limit` and then, while the total is past the byte budget, drops the oldest entry of the least
recently active account, the bounds MemoryJournal keeps (control/journal.py). The scripts touch keys
named after accounts, which a single Redis server allows and Redis Cluster does not; the URL is a
single server's, as for the rate limits. A failed recording is counted in `lost` and logged, never
raised: the /v2 request it describes has been answered already.

An entry is stored as `<id>\\n<header JSON>\\n<query><request body><response body>`: the bodies stay
the bytes they were (masked, cut at BODY_LIMIT), with their lengths in the header.
"""

from __future__ import annotations

from typing import Any

import orjson
from redis.exceptions import RedisError

from trunkline.control.journal import BYTE_BUDGET, Entry, PathFilter, select
from trunkline.control.redis_link import RedisLink, text

# KEYS: seq, accounts, bytes, total. ARGV: list key prefix, user id, payload, limit, byte budget.
_RECORD = """
local prefix, user, limit, budget = ARGV[1], ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5])
local id = redis.call('INCR', KEYS[1])
local list = prefix .. user
local value = id .. '\\n' .. ARGV[3]
redis.call('LPUSH', list, value)
redis.call('ZADD', KEYS[2], id, user)
local added = #value
while redis.call('LLEN', list) > limit do
  added = added - #redis.call('RPOP', list)
end
redis.call('HINCRBY', KEYS[3], user, added)
local total = redis.call('INCRBY', KEYS[4], added)
while total > budget do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if not oldest then break end
  local key = prefix .. oldest
  local dropped = redis.call('RPOP', key)
  if dropped then
    redis.call('HINCRBY', KEYS[3], oldest, -#dropped)
    total = redis.call('INCRBY', KEYS[4], -#dropped)
  end
  if redis.call('LLEN', key) == 0 then
    -- whatever the hash still counts for an emptied account leaves the total too, so it cannot drift
    local rest = tonumber(redis.call('HGET', KEYS[3], oldest) or '0')
    redis.call('ZREM', KEYS[2], oldest)
    redis.call('HDEL', KEYS[3], oldest)
    total = redis.call('INCRBY', KEYS[4], -rest)
  end
end
return id
"""

# KEYS: accounts, bytes, total. ARGV: list key prefix, user id ('' with ARGV[3] = 'all').
_CLEAR = """
local users = {ARGV[2]}
if ARGV[3] == 'all' then users = redis.call('ZRANGE', KEYS[1], 0, -1) end
local count = 0
for _, user in ipairs(users) do
  local list = ARGV[1] .. user
  count = count + redis.call('LLEN', list)
  redis.call('DEL', list)
  redis.call('ZREM', KEYS[1], user)
  local held = redis.call('HGET', KEYS[2], user)
  if held then
    redis.call('HDEL', KEYS[2], user)
    redis.call('DECRBY', KEYS[3], held)
  end
end
return count
"""


def encode(entry: Entry) -> bytes:
    """The entry as the record script takes it (the script puts the id in front)."""
    header = {
        "user_id": entry.user_id,
        "method": entry.method,
        "path": entry.path,
        "status": entry.status,
        "time": entry.time,
        "duration_ms": entry.duration_ms,
        "request_id": entry.request_id,
        "fault_id": entry.fault_id,
        "truncated": entry.truncated,
        "query_bytes": len(entry.query),
        "request_bytes": len(entry.request_body),
    }
    # orjson writes no raw line break (RFC 8259 escapes them in strings), so "\n" ends the header.
    return b"".join((orjson.dumps(header), b"\n", entry.query, entry.request_body, entry.response_body))


def decode(value: bytes) -> Entry:
    id_text, header_text, blobs = value.split(b"\n", 2)
    header = orjson.loads(header_text)
    q = header["query_bytes"]
    r = q + header["request_bytes"]
    return Entry(
        id=int(id_text),
        user_id=header["user_id"],
        method=header["method"],
        path=header["path"],
        query=blobs[:q],
        request_body=blobs[q:r],
        status=header["status"],
        response_body=blobs[r:],
        time=header["time"],
        duration_ms=header["duration_ms"],
        request_id=header["request_id"],
        fault_id=header["fault_id"],
        truncated=header["truncated"],
    )


class RedisJournal:
    def __init__(self, link: RedisLink, *, limit: int, byte_budget: int = BYTE_BUDGET) -> None:
        self.limit = limit
        self.byte_budget = byte_budget
        self.lost = 0  # entries this process could not store
        self._link = link
        prefix = link.prefix + "journal:"
        self._lists = prefix + "a:"
        self._seq, self._accounts = prefix + "seq", prefix + "accounts"
        self._bytes, self._total = prefix + "bytes", prefix + "total"
        self._record = link.client.register_script(_RECORD)
        self._clear = link.client.register_script(_CLEAR)

    async def record(self, entry: Entry) -> None:
        if self._link.up():
            try:
                entry.id = await self._record(
                    keys=[self._seq, self._accounts, self._bytes, self._total],
                    args=[self._lists, entry.user_id, encode(entry), self.limit, self.byte_budget],
                )
                return
            except RedisError as exc:
                self._link.failed(exc)
        self.lost += 1
        self._link.warn("journal", f"the request journal goes without: {self.lost} entries lost so far")

    async def entries(
        self,
        user_id: str | None,
        *,
        method: str | None = None,
        path: PathFilter | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        client = self._link.client
        with self._link.answering():
            if user_id is None:
                users = [text(u) for u in await client.zrange(self._accounts, 0, -1)]
            else:
                users = [user_id]
            # Unfiltered, no account can contribute more than `limit` of the newest entries.
            stop = limit - 1 if limit is not None and method is None and path is None else -1
            async with client.pipeline(transaction=False) as pipe:
                for user in users:
                    pipe.lrange(self._lists + user, 0, stop)
                lists: list[list[bytes]] = await pipe.execute()
        return select((decode(v) for values in lists for v in values), method=method, path=path, limit=limit)

    async def clear(self, user_id: str | None) -> int:
        with self._link.answering():
            count: int = await self._clear(
                keys=[self._accounts, self._bytes, self._total],
                args=[self._lists, user_id or "", "all" if user_id is None else "one"],
            )
        return count
