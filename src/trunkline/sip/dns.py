"""Resolving FQDN records into the addresses the edge admits (Kamailio itself does no DNS lookups for
the ACL: "No DNS lookup is performed, only strict matching", permissions' "Address Permissions" in
https://kamailio.org/docs/modules/5.6.x/modules/permissions.html).

A record: every IPv4 address of the name, with the FQDN's port. SRV record: the SIP services of the
name (`_sip._udp` and `_sip._tcp` unless the name already starts with `_`), each target's addresses
with the port, priority and weight the SRV record gives (an address that several records name keeps
the lowest priority: sip/routing.py orders inbound calls by them). The reconciler takes any
`Resolver`; tests inject their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from trunkline.sip.state import Address, FqdnTarget

DEFAULT_PORT = 5060


@dataclass(frozen=True)
class Resolution:
    addresses: frozenset[Address]
    # Seconds the answer may be cached (the smallest TTL seen); the reconciler clamps it.
    ttl: float


class ResolveFailed(Exception):
    """The lookup could not be done (timeout, no server); the previous addresses stay in force."""


Resolver = Callable[[FqdnTarget], Awaitable[Resolution]]


async def system_resolver(target: FqdnTarget) -> Resolution:
    """Resolve with the host's DNS configuration (dnspython's async stub resolver)."""
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    resolver = dns.asyncresolver.Resolver()
    resolver.lifetime = 5.0

    async def a_records(name: str) -> tuple[list[str], float]:
        try:
            answer = await resolver.resolve(name, "A")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return [], 300.0
        return [r.address for r in answer], float(answer.rrset.ttl if answer.rrset else 300)

    try:
        if target.dns_record_type.lower() == "srv":
            names = (
                [target.fqdn]
                if target.fqdn.startswith("_")
                else [f"_sip._udp.{target.fqdn}", f"_sip._tcp.{target.fqdn}"]
            )
            found: dict[tuple[str, int], Address] = {}
            ttl = 3600.0
            for name in names:
                try:
                    answer = await resolver.resolve(name, "SRV")
                except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                    continue
                ttl = min(ttl, float(answer.rrset.ttl if answer.rrset else 300))
                for srv in answer:
                    ips, a_ttl = await a_records(str(srv.target).rstrip("."))
                    ttl = min(ttl, a_ttl)
                    for ip in ips:
                        address = Address(ip, int(srv.port), int(srv.priority), int(srv.weight))
                        known = found.get((ip, address.port))
                        if known is None or address.priority < known.priority:
                            found[(ip, address.port)] = address
            return Resolution(frozenset(found.values()), ttl)
        ips, ttl = await a_records(target.fqdn)
        port = target.port or DEFAULT_PORT
        return Resolution(frozenset(Address(ip, port) for ip in ips), ttl)
    except dns.exception.DNSException as exc:
        raise ResolveFailed(f"{target.fqdn}: {exc}") from exc
