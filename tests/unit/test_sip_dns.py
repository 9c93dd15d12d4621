"""sip.dns.system_resolver: A records take the FQDN's port, SRV records their own (no network: the
dnspython resolver is replaced by canned answers)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import dns.asyncresolver
import dns.resolver
import pytest

from trunkline.sip.dns import ResolveFailed, system_resolver
from trunkline.sip.state import Address, FqdnTarget

ZONE: dict[tuple[str, str], Any] = {
    ("pbx.example.test", "A"): (["192.0.2.10", "192.0.2.11"], 120),
    ("_sip._udp.carrier.example.test", "SRV"): (
        [("sbc1.example.test.", 5070, 10, 60), ("sbc2.example.test.", 5080, 20, 0)],
        60,
    ),
    # The same target again over TCP at a worse priority: the address keeps its best one.
    ("_sip._tcp.carrier.example.test", "SRV"): ([("sbc1.example.test.", 5070, 30, 5)], 60),
    ("sbc1.example.test", "A"): (["198.51.100.1"], 30),
    ("sbc2.example.test", "A"): (["198.51.100.2"], 300),
}


class Answer(list):  # type: ignore[type-arg]
    def __init__(self, records: list[Any], ttl: int) -> None:
        super().__init__(records)
        self.rrset = SimpleNamespace(ttl=ttl)


@pytest.fixture(autouse=True)
def canned_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    async def resolve(self: Any, name: str, rdtype: str) -> Answer:
        if (name, rdtype) == ("broken.example.test", "A"):
            raise dns.resolver.LifetimeTimeout()
        if (name, rdtype) not in ZONE:
            raise dns.resolver.NXDOMAIN()
        values, ttl = ZONE[(name, rdtype)]
        if rdtype == "A":
            return Answer([SimpleNamespace(address=v) for v in values], ttl)
        return Answer(
            [SimpleNamespace(target=t, port=p, priority=pr, weight=w) for t, p, pr, w in values], ttl
        )

    monkeypatch.setattr(dns.asyncresolver.Resolver, "resolve", resolve)


def test_a_record_uses_the_fqdn_port() -> None:
    got = asyncio.run(system_resolver(FqdnTarget("1", "pbx.example.test", "a", 5061)))
    assert got.addresses == {Address("192.0.2.10", 5061), Address("192.0.2.11", 5061)}
    assert got.ttl == 120


def test_srv_record_uses_targets_their_ports_priorities_and_weights() -> None:
    got = asyncio.run(system_resolver(FqdnTarget("2", "carrier.example.test", "srv", None)))
    assert got.addresses == {Address("198.51.100.1", 5070, 10, 60), Address("198.51.100.2", 5080, 20, 0)}
    assert got.ttl == 30  # the smallest TTL on the way


def test_unknown_name_resolves_to_nothing() -> None:
    assert (
        asyncio.run(system_resolver(FqdnTarget("3", "nx.example.test", "a", 5060))).addresses == frozenset()
    )


def test_a_failed_lookup_is_an_error_not_an_empty_answer() -> None:
    with pytest.raises(ResolveFailed):
        asyncio.run(system_resolver(FqdnTarget("4", "broken.example.test", "a", 5060)))
