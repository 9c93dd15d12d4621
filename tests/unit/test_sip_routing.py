"""sip.routing: the order an inbound call tries a connection's routes in."""

from __future__ import annotations

import collections
import random

from trunkline.sip.routing import Route, order, weighted


def test_sequential_is_primary_secondary_tertiary_then_the_others_oldest_first() -> None:
    routes = [
        Route("10.0.0.5", 5060, rank=4, created_at="2026-01-02", group="5"),
        Route("10.0.0.3", 5060, rank=3, created_at="2026-01-05", group="3"),
        Route("10.0.0.4", 5060, rank=4, created_at="2026-01-01", group="4"),
        Route("10.0.0.1", 5060, rank=1, created_at="2026-01-09", group="1"),
        Route("10.0.0.2", 5060, rank=2, created_at="2026-01-07", group="2"),
    ]
    got = [r.address for r in order(routes, "sequential", random.Random(1))]
    assert got == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]


def test_srv_targets_of_one_fqdn_go_by_priority_then_by_weight() -> None:
    fqdn = dict(rank=1, created_at="2026-01-01", group="f1")
    routes = [
        Route("10.0.1.3", 5060, srv_priority=20, srv_weight=0, **fqdn),  # type: ignore[arg-type]
        Route("10.0.1.1", 5060, srv_priority=10, srv_weight=90, **fqdn),  # type: ignore[arg-type]
        Route("10.0.1.2", 5060, srv_priority=10, srv_weight=10, **fqdn),  # type: ignore[arg-type]
        Route("10.0.2.1", 5060, rank=2, created_at="2026-01-01", group="f2"),
    ]
    rng = random.Random(7)
    firsts = collections.Counter(order(routes, "sequential", rng)[0].address for _ in range(2000))
    # Priority 10 before 20, and the secondary FQDN after all of the primary's targets.
    for _ in range(50):
        got = [r.address for r in order(routes, "sequential", rng)]
        assert set(got[:2]) == {"10.0.1.1", "10.0.1.2"} and got[2:] == ["10.0.1.3", "10.0.2.1"]
    # Weight 90 against 10: about nine calls in ten start with the heavier target (RFC 2782).
    assert 0.85 < firsts["10.0.1.1"] / 2000 < 0.95, firsts


def test_zero_weights_are_still_chosen_and_nothing_is_lost() -> None:
    targets = [Route(f"10.0.3.{i}", 5060) for i in range(4)]
    rng = random.Random(3)
    seen = collections.Counter(weighted(list(targets), rng)[0].address for _ in range(400))
    assert set(seen) == {r.address for r in targets}
    assert sorted(r.address for r in weighted(list(targets), rng)) == sorted(r.address for r in targets)


def test_round_robin_shuffles_every_call_and_spreads_first_routes_evenly() -> None:
    routes = [Route(f"10.0.4.{i}", 5060, rank=i + 1, group=str(i)) for i in range(3)]
    rng = random.Random(11)
    firsts = collections.Counter(order(routes, "round-robin", rng)[0].address for _ in range(3000))
    assert all(900 < n < 1100 for n in firsts.values()), firsts
