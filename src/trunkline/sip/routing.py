"""The order an inbound call tries an IP or FQDN connection's routes in (a pure function).

- `sequential` (Telnyx's default): the connection's primary, secondary and tertiary IP or FQDN
  (`inbound.default_*_ip_id` / `_fqdn_id`), then its other addresses, oldest first
  ("SIP Connection: Fail-over and Retries":
  https://support.telnyx.com/en/articles/4320364-sip-connection-fail-over-and-retries).
- `round-robin`: every route in a random order, a new one for each call.
- An FQDN resolved through SRV stands for several targets: within it they go by the records'
  priority, lowest first, and among equal priorities by weighted random choice (RFC 2782, "Weight":
  zero weights first in the running sum, then a uniform draw over the sum picks each next target).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby


@dataclass(frozen=True)
class Route:
    address: str
    port: int
    # 1 primary, 2 secondary, 3 tertiary, 4 any other.
    rank: int = 4
    # The IP's or FQDN's creation time: the order of the "other" routes.
    created_at: str = ""
    # The IP's or FQDN's id: the SRV targets of one FQDN share it.
    group: str = ""
    srv_priority: int = 0
    srv_weight: int = 0

    @property
    def uri(self) -> str:
        return f"{self.address}:{self.port}"


def order(routes: Sequence[Route], method: str, rng: random.Random) -> list[Route]:
    if method == "round-robin":
        shuffled = list(routes)
        rng.shuffle(shuffled)
        return shuffled
    ordered: list[Route] = []
    by_group = sorted(routes, key=lambda r: (r.rank, r.created_at, r.group))
    for _, members in groupby(by_group, key=lambda r: (r.rank, r.created_at, r.group)):
        targets = sorted(members, key=lambda r: (r.srv_priority, r.address, r.port))
        for _, same in groupby(targets, key=lambda r: r.srv_priority):
            ordered.extend(weighted(list(same), rng))
    return ordered


def weighted(targets: list[Route], rng: random.Random) -> list[Route]:
    """RFC 2782's selection among targets of one priority, repeated until none is left: "arrange all
    SRV RRs (that have not been ordered yet) in any order, except that all those with weight 0 are
    placed at the beginning of the list" (a random order, so that zero weights share the load)."""
    left = list(targets)
    rng.shuffle(left)
    left.sort(key=lambda r: r.srv_weight != 0)
    picked: list[Route] = []
    while left:
        total = sum(r.srv_weight for r in left)
        draw = rng.randint(0, total)
        running = 0
        for i, r in enumerate(left):
            running += r.srv_weight
            if running >= draw:
                picked.append(left.pop(i))
                break
    return picked
