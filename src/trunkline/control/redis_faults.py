"""Fault rules in Redis, the same for every API instance that shares TRUNKLINE_REDIS_URL.

Keys, under the link's prefix (`trunkline:control:` by default):
- `faults:rules:<user_id>`: a hash of the account's rules, rule id -> its spec and creation time (JSON);
- `faults:left:<user_id>`: a hash of the uses left of its counted rules (`times`);
- `faults:owner`: rule id -> account, so the admin token can remove a rule by id alone;
- `faults:accounts`: the accounts that have rules; `faults:seq` numbers the rules (`fault_<n>`), in
  creation order across instances.

A /v2 request reads its account's rules hash (one round trip, an empty answer for an account without
rules) and matches them here, with the same compiled patterns and dice as MemoryFaults. Only when a
counted rule matches does it ask for a use: the take script decrements the count and deletes the
rule with its last use, atomically (Lua scripts run whole, https://redis.io/docs/latest/develop/
interact/programmability/eval-intro/), so of any number of racing requests on any number of
instances exactly `times` get one; a request that finds the rule spent goes on to the next matching
rule, as if the rule had gone before it read them. Adding checks MAX_RULES in its script, so two
instances cannot both add an account's 100th rule.

If Redis fails on a /v2 request's path, the request goes on unfaulted and a warning is logged
(control/redis_link.py); control calls answer 503.
"""

from __future__ import annotations

import builtins  # `list` below is a method's name
import random
import time
from typing import Any, cast

import orjson
from redis.exceptions import RedisError

from trunkline.control.faults import MAX_RULES, FaultSpec, Rule, fires, too_many
from trunkline.control.redis_link import RedisLink, text

# Forgets one rule; every script that removes rules has KEYS[1] = accounts, KEYS[2] = owner.
_FORGET = """
local function forget(prefix, user, id)
  local rules = prefix .. 'rules:' .. user
  redis.call('HDEL', rules, id)
  redis.call('HDEL', prefix .. 'left:' .. user, id)
  redis.call('HDEL', KEYS[2], id)
  if redis.call('HLEN', rules) == 0 then redis.call('SREM', KEYS[1], user) end
end
"""

# KEYS: accounts, owner, seq. ARGV: prefix, user, rule JSON, times ('' for every time), max rules.
# Answers the new rule's id, or nil when the account has its maximum already.
_ADD = """
local prefix, user = ARGV[1], ARGV[2]
local rules = prefix .. 'rules:' .. user
if redis.call('HLEN', rules) >= tonumber(ARGV[5]) then return false end
local id = 'fault_' .. redis.call('INCR', KEYS[3])
redis.call('HSET', rules, id, ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', prefix .. 'left:' .. user, id, ARGV[4]) end
redis.call('HSET', KEYS[2], id, user)
redis.call('SADD', KEYS[1], user)
return id
"""

# KEYS: accounts, owner. ARGV: prefix, user, rule id. Answers the uses left after this one, or -1
# when the rule is spent or gone.
_TAKE = (
    _FORGET
    + """
local left = redis.call('HGET', ARGV[1] .. 'left:' .. ARGV[2], ARGV[3])
if not left then return -1 end
left = tonumber(left) - 1
if left > 0 then
  redis.call('HSET', ARGV[1] .. 'left:' .. ARGV[2], ARGV[3], left)
else
  forget(ARGV[1], ARGV[2], ARGV[3])
end
return left
"""
)

# KEYS: accounts, owner. ARGV: prefix, rule id, the account it must belong to ('' for any).
# Answers {account, rule JSON, uses left or ''}, or nil when there is no such rule.
_REMOVE = (
    _FORGET
    + """
local owner = redis.call('HGET', KEYS[2], ARGV[2])
if not owner or (ARGV[3] ~= '' and owner ~= ARGV[3]) then return false end
local rule = redis.call('HGET', ARGV[1] .. 'rules:' .. owner, ARGV[2])
local left = redis.call('HGET', ARGV[1] .. 'left:' .. owner, ARGV[2])
forget(ARGV[1], owner, ARGV[2])
if not rule then return false end
return {owner, rule, left or ''}
"""
)

# KEYS: accounts, owner. ARGV: prefix, user, 'all' for every account (then user is ignored).
_CLEAR = """
local users = {ARGV[2]}
if ARGV[3] == 'all' then users = redis.call('SMEMBERS', KEYS[1]) end
local count = 0
for _, user in ipairs(users) do
  local rules = ARGV[1] .. 'rules:' .. user
  local ids = redis.call('HKEYS', rules)
  count = count + #ids
  for _, id in ipairs(ids) do redis.call('HDEL', KEYS[2], id) end
  redis.call('DEL', rules, ARGV[1] .. 'left:' .. user)
  redis.call('SREM', KEYS[1], user)
end
return count
"""

_PARSED_MAX = 10_000  # rules kept parsed in this process (see _parse)


def _number(rule_id: str) -> int:
    return int(rule_id.removeprefix("fault_"))


class RedisFaults:
    def __init__(self, link: RedisLink, *, rng: random.Random | None = None) -> None:
        self._link = link
        self._random = rng or random.Random()
        self._prefix = link.prefix + "faults:"
        self._accounts, self._owner = self._prefix + "accounts", self._prefix + "owner"
        self._seq = self._prefix + "seq"
        client = link.client
        self._add, self._take = client.register_script(_ADD), client.register_script(_TAKE)
        self._remove, self._clear = client.register_script(_REMOVE), client.register_script(_CLEAR)
        # (rule id, stored JSON) -> the rule, compiled: a request matches without validating again.
        self._parsed: dict[tuple[bytes, bytes], Rule] = {}

    def _rules_key(self, user_id: str) -> str:
        return f"{self._prefix}rules:{user_id}"

    def _left_key(self, user_id: str) -> str:
        return f"{self._prefix}left:{user_id}"

    async def add(self, user_id: str, spec: FaultSpec) -> Rule:
        stored = orjson.dumps({"user_id": user_id, "spec": spec.model_dump(), "created_at": time.time()})
        with self._link.answering():
            rule_id = await self._add(
                keys=[self._accounts, self._owner, self._seq],
                args=[self._prefix, user_id, stored, spec.times or "", MAX_RULES],
            )
        if rule_id is None:
            raise too_many()
        return self._rule(rule_id, stored, user_id, spec.times)

    async def list(self, user_id: str | None) -> list[Rule]:
        client = self._link.client
        with self._link.answering():
            if user_id is None:
                users = sorted(text(u) for u in await client.smembers(self._accounts))
            else:
                users = [user_id]
            # One MULTI per read, so a rule and its count come from the same moment.
            async with client.pipeline(transaction=True) as pipe:
                for user in users:
                    pipe.hgetall(self._rules_key(user))
                    pipe.hgetall(self._left_key(user))
                replies: list[dict[bytes, bytes]] = await pipe.execute()
        found = []
        for n, user in enumerate(users):
            stored, left = replies[2 * n], replies[2 * n + 1]
            for rule_id, json_text in stored.items():
                count = left.get(rule_id)
                found.append(self._rule(rule_id, json_text, user, int(count) if count is not None else None))
        return sorted(found, key=lambda r: _number(r.id))

    async def clear(self, user_id: str | None) -> int:
        with self._link.answering():
            count: int = await self._clear(
                keys=[self._accounts, self._owner],
                args=[self._prefix, user_id or "", "all" if user_id is None else "one"],
            )
        return count

    async def remove(self, user_id: str | None, rule_id: str) -> Rule | None:
        with self._link.answering():
            found = await self._remove(
                keys=[self._accounts, self._owner], args=[self._prefix, rule_id, user_id or ""]
            )
        if found is None:
            return None
        owner, json_text, left = found
        return self._rule(rule_id.encode(), json_text, text(owner), int(left) if left else None)

    async def take(self, user_id: str, method: str, path: str) -> Rule | None:
        if not self._link.up():
            return None
        try:
            stored = cast("dict[bytes, bytes]", await self._link.client.hgetall(self._rules_key(user_id)))
            if not stored:
                return None
            for rule in self._readable(stored, user_id):
                if not rule.matches(method, path) or not fires(rule, self._random):
                    continue
                if rule.spec.times is None:
                    return rule
                left = await self._take(
                    keys=[self._accounts, self._owner], args=[self._prefix, user_id, rule.id]
                )
                if left >= 0:
                    return Rule.of(rule.id, user_id, rule.spec, left, rule.created_at)
        except RedisError as exc:
            self._link.failed(exc)
            self._link.warn("faults", "requests go on without fault rules")
        return None

    def _readable(self, stored: dict[bytes, bytes], user_id: str) -> builtins.list[Rule]:
        """The account's rules in creation order, without any this process cannot read (one written
        by a newer trunkline during a rolling upgrade, say): a bad rule must not fail requests."""
        rules = []
        for rule_id, json_text in stored.items():
            try:
                rules.append(self._parse(rule_id, json_text, user_id))
            except (ValueError, KeyError) as exc:
                self._link.note("fault-rule", f"fault rule {text(rule_id)} is skipped, unreadable: {exc}")
        return sorted(rules, key=lambda r: _number(r.id))

    def _parse(self, rule_id: bytes, json_text: bytes, user_id: str) -> Rule:
        """The rule a stored entry describes, compiled once per process. Keyed by id and text (which
        names the account), so a rule id that comes again after Redis was emptied is parsed anew."""
        rule = self._parsed.get((rule_id, json_text))
        if rule is None:
            if len(self._parsed) >= _PARSED_MAX:
                self._parsed.clear()
            rule = self._parsed[(rule_id, json_text)] = self._rule(rule_id, json_text, user_id, None)
        return rule

    def _rule(self, rule_id: bytes | str, json_text: bytes, user_id: str, remaining: int | None) -> Rule:
        stored: dict[str, Any] = orjson.loads(json_text)
        spec = FaultSpec.model_validate(stored["spec"])
        name = rule_id.decode() if isinstance(rule_id, bytes) else rule_id
        return Rule.of(name, user_id, spec, remaining, stored["created_at"])
