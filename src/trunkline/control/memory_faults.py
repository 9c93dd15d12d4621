"""Fault rules in this process's memory: the store without TRUNKLINE_REDIS_URL (control/stores.py).

No method awaits anything, so on the event loop none interleaves with another: `take` chooses and
counts a rule in one step, and `times: 3` fires exactly three times however many requests arrive at
once (tests/control/test_faults.py sends ten together).
"""

from __future__ import annotations

import itertools
import random

from trunkline.control.faults import MAX_RULES, FaultSpec, Rule, fires, too_many


class MemoryFaults:
    def __init__(self, *, rng: random.Random | None = None) -> None:
        self._rules: dict[str, list[Rule]] = {}
        self._ids = itertools.count(1)
        self._random = rng or random.Random()

    async def add(self, user_id: str, spec: FaultSpec) -> Rule:
        rules = self._rules.setdefault(user_id, [])
        if len(rules) >= MAX_RULES:
            raise too_many()
        rule = Rule.of(f"fault_{next(self._ids)}", user_id, spec, spec.times)
        rules.append(rule)
        return rule

    async def list(self, user_id: str | None) -> list[Rule]:
        if user_id is None:
            return sorted((r for rules in self._rules.values() for r in rules), key=lambda r: r.created_at)
        return list(self._rules.get(user_id, ()))

    async def clear(self, user_id: str | None) -> int:
        if user_id is None:
            count = sum(len(r) for r in self._rules.values())
            self._rules.clear()
            return count
        return len(self._rules.pop(user_id, ()))

    async def remove(self, user_id: str | None, rule_id: str) -> Rule | None:
        for owner, rules in self._rules.items():
            if user_id is not None and owner != user_id:
                continue
            for rule in rules:
                if rule.id == rule_id:
                    rules.remove(rule)
                    return rule
        return None

    async def take(self, user_id: str, method: str, path: str) -> Rule | None:
        rules = self._rules.get(user_id)
        if not rules:
            return None
        for rule in rules:
            if not rule.matches(method, path) or not fires(rule, self._random):
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    rules.remove(rule)
            return rule
        return None
