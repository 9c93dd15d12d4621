"""Upstream gateways: read from the settings, validated, and rendered as Kamailio dispatcher's list.

`TRUNKLINE_SIP_UPSTREAMS` is a comma-separated list of `host:port[;transport=tcp]` entries, tried in
the order given (docs/sip.md, "Upstream carriers"). The host is an IPv4 address: the edge resolves no
names (`dns=no` in kamailio.cfg.tmpl). Both functions are pure, so tests/unit pins their output.
"""

from __future__ import annotations

import ipaddress
import re

from trunkline.sip.state import Transport, Upstream

# The set every upstream belongs to in dispatcher.list and in ds_select_dst() (kamailio.cfg.tmpl).
SET_ID = 1
_ENTRY = re.compile(r"^(?P<host>[^:;\s]+):(?P<port>[^;\s]*)(?P<params>(;[^;\s]*)*)$")


class UpstreamError(ValueError):
    """An upstream entry that cannot be used, with the entry and what is wrong with it."""


def parse(text: str, *, setting: str = "TRUNKLINE_SIP_UPSTREAMS") -> tuple[Upstream, ...]:
    """`host:port[;transport=udp|tcp]` entries separated by commas, in order; blanks are skipped."""
    found: list[Upstream] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        upstream = parse_entry(entry, setting=setting)
        if any((u.host, u.port) == (upstream.host, upstream.port) for u in found):
            raise UpstreamError(f"{setting}: {entry!r} is listed twice")
        found.append(upstream)
    return tuple(found)


def parse_entry(entry: str, *, setting: str = "TRUNKLINE_SIP_UPSTREAMS") -> Upstream:
    def bad(why: str) -> UpstreamError:
        return UpstreamError(f"{setting}: bad upstream {entry!r}: {why} (expected host:port[;transport=tcp])")

    match = _ENTRY.match(entry)
    if match is None:
        raise bad("not of the form host:port")
    host, port_text = match["host"], match["port"]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise bad(f"{host!r} is not an IPv4 address (the edge resolves no names)") from None
    if address.version != 4:
        raise bad("the edge listens on IPv4 only")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise bad(f"port {port_text!r} is not a number from 1 to 65535")
    transport: Transport = "udp"
    for param in filter(None, match["params"].split(";")):
        name, _, value = param.partition("=")
        if name.lower() != "transport":
            raise bad(f"unknown parameter {param!r}")
        if value.lower() not in ("udp", "tcp"):
            raise bad(f"transport {value!r} is not udp or tcp")
        transport = "tcp" if value.lower() == "tcp" else "udp"
    return Upstream(host=str(address), port=int(port_text), transport=transport)


def dispatcher_list(upstreams: tuple[Upstream, ...]) -> str:
    """dispatcher's list file: one line `setid destination flags priority` per upstream. Priority
    falls from the first to the last, so algorithm 8 ("serial forking ordered by priority") tries them
    in the order given (https://kamailio.org/docs/modules/5.6.x/modules/dispatcher.html, "Destination
    List File" and ds_select_dst)."""
    lines = ["# setid destination flags priority: rendered by trunkline, do not edit"]
    count = len(upstreams)
    lines += [f"{SET_ID} {u.uri} 0 {count - n}" for n, u in enumerate(upstreams)]
    return "\n".join(lines) + "\n"
