"""Where events may go: no private, loopback or link-local address unless the operator allows it.

A webhook URL is chosen by a tenant, so without this check the server would POST wherever a tenant
points it, its own network and the cloud metadata service (169.254.169.254) included: server-side
request forgery (https://cheatsheetseries.owasp.org/cheatsheets/Server_Side_Request_Forgery_Prevention_Cheat_Sheet.html).
The check runs when the worker connects, on the addresses the name resolves to at that moment, and
the connection goes to an address that was checked: a name that resolves to a public address when
the connection is created and to a private one later (DNS rebinding) is refused when it matters.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence

import httpcore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses to connect to, in the order to try them.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

SETTING = "TRUNKLINE_WEBHOOK_ALLOW_PRIVATE"
# IPv6 prefixes that carry an IPv4 address a packet ends up at: NAT64 (RFC 6052, section 2.1).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class Refused(Exception):
    """The URL's address may not receive events; the message says which address and why."""


def _embedded(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: mapped (::ffff:a.b.c.d), NAT64 or 6to4."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def kind_of(ip: IPAddress) -> str | None:
    """What makes `ip` unfit for events ("a loopback address", ...), or None for a public address.

    Public means globally reachable as the IANA special-purpose registries say (Python's `is_global`:
    RFC 1918 ranges, 100.64.0.0/10, unique local fc00::/7, documentation and benchmark ranges are not),
    and not multicast. An IPv6 address that carries an IPv4 one is judged by that one too."""
    inner = _embedded(ip)
    if inner is not None and (kind := kind_of(inner)) is not None:
        return kind
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if not ip.is_global or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local):
        return "a private address"
    return None


def check(host: str, addresses: Iterable[str]) -> list[str]:
    """The addresses, when every one of them is public; else Refused naming the first that is not.

    One private answer among public ones refuses the URL: which one a connection would use is up to
    the resolver's order, and a name that mixes them is not a receiver to trust."""
    literal = _literal(host)
    checked = []
    for text in addresses:
        ip = ipaddress.ip_address(text.split("%", 1)[0])  # a link-local answer may carry a zone
        kind = kind_of(ip)
        if kind is not None:
            shown = host if len(host) <= 100 else host[:97] + "..."
            subject = f"{ip} is {kind}" if literal is not None else f"{shown} resolves to {ip}, {kind}"
            raise Refused(f"refused: {subject}; set {SETTING}=true to allow")
        checked.append(text)
    return checked


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[str]:
    """The addresses of `host` (a name or a literal) for a TCP connection, as the system orders them."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"{host} does not resolve: {exc.strerror or exc}") from None
    seen: dict[str, None] = {}
    for *_, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the check in front of every TCP connection.

    httpcore asks the backend for a connection to the URL's host and port and then starts TLS on it
    with the URL's host name (SNI and certificate checks stay the name's); this backend resolves the
    name, checks every address and connects only to those, one after the other until one answers."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver = resolve,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self.allow_private:  # the operator allows any address: the usual resolution and connect
            return await self.inner.connect_tcp(host, port, timeout, local_address, socket_options)
        addresses = check(host, await self.resolver(host, port))
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise Refused("refused: webhooks are not delivered to Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
