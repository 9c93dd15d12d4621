"""The client's address: the TCP peer, or what trusted proxies say in X-Forwarded-For.

X-Forwarded-For is read right to left, skipping hops that are trusted proxies: each proxy appends the
address it received the request from, so the rightmost untrusted entry is the first one no proxy of ours
vouches for. Everything left of it is client-supplied and ignored. (MDN, "X-Forwarded-For", security and
privacy concerns.)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDR blocks (TRUNKLINE_TRUSTED_PROXIES); a bad entry is an error."""
    out: list[Network] = []
    for part in text.split(","):
        entry = part.strip()
        if not entry:
            continue
        try:
            out.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"trusted proxy {entry!r} is not an IP address or CIDR block") from None
    return tuple(out)


def parse(text: str) -> Address | None:
    """An address as peers and proxies write it ("1.2.3.4", "1.2.3.4:80", "[::1]:80"), or None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # IPv4 with a port; an IPv6 address has two colons or more
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; ranges are written in IPv4.
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: Iterable[Network]) -> bool:
    return any(address in net for net in proxies)


def resolve(scope: Scope, proxies: tuple[Network, ...]) -> str | None:
    """The client's address as text, or None when it cannot be known (no peer, or a garbled header)."""
    peer = scope.get("client")
    host: str | None = peer[0] if peer else None
    if host is None:
        return None
    if not proxies:
        return host  # the common case costs no parsing; the gate parses only when an account has ranges
    address = parse(host)
    if address is None or not _trusted(address, proxies):
        return str(address) if address is not None else host
    hops = [
        hop
        for name, value in scope.get("headers", ())
        if name == b"x-forwarded-for"
        for hop in value.decode("latin-1").split(",")
        if hop.strip()
    ]
    client = address
    for hop in reversed(hops):
        hop_address = parse(hop)
        if hop_address is None:
            # An entry we cannot read hides who is behind it: the address is unknown, never the
            # trusted proxy's own (which may lie inside an allowed range).
            return None
        client = hop_address
        if not _trusted(hop_address, proxies):
            break
    return str(client)
