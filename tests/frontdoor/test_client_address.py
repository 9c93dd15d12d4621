"""client_address.resolve on ASGI scopes: no server, no database."""

from __future__ import annotations

import pytest

from trunkline.http import client_address

PROXIES = client_address.parse_networks("127.0.0.1, 10.0.0.0/8, fd00::/8")


def scope(peer: str | None, *forwarded: str) -> dict:
    return {
        "client": (peer, 4711) if peer else None,
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded],
    }


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("192.0.2.1", (), "192.0.2.1"),
        ("192.0.2.1", ("203.0.113.9",), "192.0.2.1"),  # an untrusted peer's header is its own claim
        ("127.0.0.1", (), "127.0.0.1"),  # the proxy calling for itself
        ("127.0.0.1", ("203.0.113.9",), "203.0.113.9"),
        ("127.0.0.1", ("198.51.100.1, 203.0.113.9",), "203.0.113.9"),
        ("127.0.0.1", ("203.0.113.9, 10.0.0.7",), "203.0.113.9"),
        ("127.0.0.1", ("198.51.100.1", "203.0.113.9, 10.0.0.7"), "203.0.113.9"),  # repeated header lines
        ("127.0.0.1", ("10.0.0.8, 10.0.0.7",), "10.0.0.8"),  # every hop trusted: the farthest one
        ("127.0.0.1", ("203.0.113.9, ",), "203.0.113.9"),  # an empty entry is no hop
        ("127.0.0.1", ("[2001:db8::1]:443",), "2001:db8::1"),
        ("fd00::1", ("2001:db8::1",), "2001:db8::1"),
        ("::ffff:127.0.0.1", ("203.0.113.9",), "203.0.113.9"),  # a dual-stack socket's IPv4 peer
        ("127.0.0.1", ("unknown",), None),
        ("127.0.0.1", ("203.0.113.9, _hidden",), None),
        (None, (), None),
    ],
)
def test_resolve(peer: str | None, forwarded: tuple[str, ...], client: str | None) -> None:
    assert client_address.resolve(scope(peer, *forwarded), PROXIES) == client


def test_without_trusted_proxies_the_peer_is_returned_unparsed() -> None:
    assert client_address.resolve(scope("192.0.2.1", "203.0.113.9"), ()) == "192.0.2.1"


def test_parse_unmaps_ipv4_mapped_addresses_and_strips_ports() -> None:
    assert str(client_address.parse("::ffff:192.0.2.1")) == "192.0.2.1"
    assert str(client_address.parse("192.0.2.1:5060")) == "192.0.2.1"
    assert client_address.parse("example.com") is None


def test_a_bad_trusted_proxy_entry_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"'proxy\.local'"):
        client_address.parse_networks("10.0.0.0/8, proxy.local")
    assert client_address.parse_networks(" , ") == ()
