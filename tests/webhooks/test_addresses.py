"""Where events may go: TRUNKLINE_WEBHOOK_ALLOW_PRIVATE, checked on the address each connection is
made to; and the URLs a connection may name."""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Iterable, Sequence

import httpcore
import pytest

from tests.webhooks.conftest import Env, Receiver, deliver
from trunkline.cli.serve import EPHEMERAL_DEFAULTS
from trunkline.config import Settings
from trunkline.store.db import Database
from trunkline.webhooks import addresses, delivery
from trunkline.webhooks.worker import Worker

REMEDY = "; set TRUNKLINE_WEBHOOK_ALLOW_PRIVATE=true to allow"


# -- which addresses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("::1", "a loopback address"),
        ("169.254.169.254", "a link-local address"),  # cloud metadata services
        ("fe80::1", "a link-local address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("10.0.0.5", "a private address"),
        ("172.16.3.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("100.64.0.1", "a private address"),  # carrier-grade NAT (RFC 6598)
        ("198.18.0.1", "a private address"),
        ("fd00::1", "a private address"),  # unique local (RFC 4193)
        ("fec0::1", "a private address"),  # site-local, deprecated but routed by some
        ("::ffff:10.0.0.5", "a private address"),  # IPv4-mapped
        ("::ffff:127.0.0.1", "a loopback address"),
        ("64:ff9b::a00:5", "a private address"),  # NAT64 of 10.0.0.5
        ("2002:a9fe:a9fe::1", "a link-local address"),  # 6to4 of 169.254.169.254
        ("8.8.8.8", None),
        ("1.1.1.1", None),
        ("2001:4860:4860::8888", None),
        ("64:ff9b::808:808", None),  # NAT64 of 8.8.8.8
    ],
)
def test_which_addresses_may_receive_events(address: str, kind: str | None) -> None:
    assert addresses.kind_of(ipaddress.ip_address(address)) == kind


def test_the_refusal_names_the_address_and_the_setting() -> None:
    with pytest.raises(addresses.Refused) as literal:
        addresses.check("10.0.0.5", ["10.0.0.5"])
    assert str(literal.value) == "refused: 10.0.0.5 is a private address" + REMEDY
    with pytest.raises(addresses.Refused) as v6:
        addresses.check("::1", ["::1"])
    assert str(v6.value) == "refused: ::1 is a loopback address" + REMEDY
    with pytest.raises(addresses.Refused) as name:
        addresses.check("hooks.internal.example", ["8.8.8.8", "10.0.0.5"])  # one private answer is enough
    assert (
        str(name.value) == "refused: hooks.internal.example resolves to 10.0.0.5, a private address" + REMEDY
    )
    assert addresses.check("hooks.example", ["8.8.8.8", "2001:4860:4860::8888"]) == [
        "8.8.8.8",
        "2001:4860:4860::8888",
    ]


# -- the check is made where the connection is made -----------------------------------------------


class _Inner(httpcore.AsyncNetworkBackend):
    """A network backend that records where it was asked to connect and connects nowhere."""

    def __init__(self) -> None:
        self.hosts: list[str] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.hosts.append(host)
        raise httpcore.ConnectError("not in this test")


def test_the_connection_goes_to_the_address_that_was_checked_so_rebinding_gains_nothing() -> None:
    # A name that answers a public address first and a private one after (DNS rebinding): each
    # connection resolves once, checks what it got, and connects to exactly that.
    answers = iter([["93.184.215.14"], ["10.0.0.5"]])
    asked: list[tuple[str, int]] = []

    async def resolver(host: str, port: int) -> Sequence[str]:
        asked.append((host, port))
        return next(answers)

    inner = _Inner()
    backend = addresses.GuardedBackend(allow_private=False, resolver=resolver, inner=inner)

    async def go() -> None:
        with pytest.raises(httpcore.ConnectError):
            await backend.connect_tcp("rebind.example", 443)
        with pytest.raises(addresses.Refused, match=re.escape("rebind.example resolves to 10.0.0.5")):
            await backend.connect_tcp("rebind.example", 443)

    asyncio.run(go())
    assert asked == [("rebind.example", 443)] * 2
    assert inner.hosts == ["93.184.215.14"]  # the checked address, never the name


def test_allowed_private_addresses_connect_as_usual() -> None:
    inner = _Inner()

    async def resolver(host: str, port: int) -> Sequence[str]:
        raise AssertionError("not resolved by the check when private addresses are allowed")

    backend = addresses.GuardedBackend(allow_private=True, resolver=resolver, inner=inner)
    with pytest.raises(httpcore.ConnectError):
        asyncio.run(backend.connect_tcp("localhost", 80))
    assert inner.hosts == ["localhost"]


def test_an_attempt_to_a_refused_address_sends_nothing_and_is_not_retried() -> None:
    async def go() -> delivery.Result:
        http = delivery.client(4, allow_private=False)
        try:
            return await delivery.post(http, "http://169.254.169.254/latest/meta-data/", b"{}", {}, 2.0)
        finally:
            await http.aclose()

    result = asyncio.run(go())
    assert (result.status_code, result.blocked) == (None, True)
    assert result.error == "refused: 169.254.169.254 is a link-local address" + REMEDY
    assert result.latency_ms < 500


# -- the setting ----------------------------------------------------------------------------------


def test_private_addresses_are_refused_unless_the_setting_allows_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRUNKLINE_WEBHOOK_ALLOW_PRIVATE", raising=False)
    assert Settings().webhook_allow_private is False
    assert Worker.from_settings(Database("sqlite://"), Settings()).allow_private is False
    monkeypatch.setenv("TRUNKLINE_WEBHOOK_ALLOW_PRIVATE", "true")
    assert Worker.from_settings(Database("sqlite://"), Settings()).allow_private is True
    # `serve --ephemeral` (and so the pytest plugin's servers) allow them unless the environment says
    # otherwise: tests/webhooks/test_serve.py delivers from one to loopback.
    assert EPHEMERAL_DEFAULTS["TRUNKLINE_WEBHOOK_ALLOW_PRIVATE"] == "true"
    assert Worker(Database("sqlite://")).allow_private is False  # the class's default is the safe one


# -- against the outbox ---------------------------------------------------------------------------


def _attempt_errors(env: Env, conn_id: str) -> list[list[tuple[str, str | None]]]:
    return [[(a.url, a.error) for a in env.attempts(e.id)] for e in env.events(connection_id=conn_id)]


def test_a_loopback_receiver_is_refused_when_private_addresses_are_not_allowed(
    env: Env, receiver: Receiver
) -> None:
    tenant = env.tenant()
    conn_id = tenant.connection(webhook_event_url=receiver.url(), webhook_api_version="2")
    tenant.call(conn_id, refused=403)

    def settled() -> bool:
        return all(e.status != "pending" for e in env.events(connection_id=conn_id))

    deliver(env.database_url, settled, allow_private=False)
    refusal = f"refused: 127.0.0.1 is a loopback address{REMEDY}"
    assert _attempt_errors(env, conn_id) == [[(receiver.url(), refusal)]] * 2
    assert [(e.status, e.attempts, e.last_error) for e in env.events(connection_id=conn_id)] == [
        ("failed", 1, refusal)
    ] * 2
    assert receiver.hits == []


def test_a_refused_primary_fails_over_and_a_refused_failover_fails_the_event(
    env: Env, receiver: Receiver
) -> None:
    tenant = env.tenant()
    primary, failover = "http://169.254.169.254/latest/meta-data/", receiver.url("/failover", host="::1")
    conn_id = tenant.connection(
        webhook_event_url=primary, webhook_event_failover_url=failover, webhook_api_version="2"
    )
    tenant.call(conn_id, refused=403)

    def settled() -> bool:
        return all(e.status != "pending" for e in env.events(connection_id=conn_id))

    deliver(env.database_url, settled, allow_private=False)
    expected = [
        (primary, f"refused: 169.254.169.254 is a link-local address{REMEDY}"),
        (failover, f"refused: ::1 is a loopback address{REMEDY}"),
    ]
    assert _attempt_errors(env, conn_id) == [expected] * 2
    assert {e.status for e in env.events(connection_id=conn_id)} == {"failed"}


def test_a_name_that_resolves_to_a_private_address_is_refused(env: Env, receiver: Receiver) -> None:
    tenant = env.tenant()
    by_hosts = tenant.connection(webhook_event_url=receiver.url(host="localhost"), webhook_api_version="2")
    by_dns = tenant.connection(webhook_event_url="https://hooks.customer.example/in", webhook_api_version="2")
    tenant.call(by_hosts, refused=403)
    tenant.call(by_dns, refused=403)

    async def resolver(host: str, port: int) -> Sequence[str]:
        if host == "hooks.customer.example":
            return ["10.20.30.40"]  # as an internal DNS view might answer
        return await addresses.resolve(host, port)

    def settled() -> bool:
        return all(e.status != "pending" for e in env.events(user_id=tenant.user_id))

    deliver(env.database_url, settled, allow_private=False, resolver=resolver)
    for attempts in _attempt_errors(env, by_hosts):
        ((url, error),) = attempts
        assert url == receiver.url(host="localhost")
        assert re.fullmatch(
            r"refused: localhost resolves to (127\.0\.0\.1|::1), a loopback address" + re.escape(REMEDY),
            str(error),
        )
    assert _attempt_errors(env, by_dns)[0] == [
        (
            "https://hooks.customer.example/in",
            f"refused: hooks.customer.example resolves to 10.20.30.40, a private address{REMEDY}",
        )
    ]
    assert receiver.hits == []


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_private_receivers_get_their_events_when_allowed(env: Env, host: str) -> None:
    receiver = Receiver(host="::1" if host == "::1" else "127.0.0.1").start()
    try:
        tenant = env.tenant()
        conn_id = tenant.connection(webhook_event_url=receiver.url(host=host), webhook_api_version="2")
        tenant.call(conn_id, refused=403)
        deliver(env.database_url, lambda: len(receiver.hits) >= 2, allow_private=True)
    finally:
        receiver.stop()
    assert [h.json["meta"]["delivered_to"] for h in receiver.hits] == [receiver.url(host=host)] * 2
    assert {e.status for e in env.events(connection_id=conn_id)} == {"delivered"}


# -- the URLs a connection may name ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "detail"),
    [
        ("webhook_event_url", "ftp://files.example/in", "must be an http or https URL"),
        ("webhook_event_url", "javascript://x", "must be an http or https URL"),
        ("webhook_event_failover_url", "file:///etc/passwd", "must be an absolute URL"),
        ("webhook_event_failover_url", "gopher://internal:70/x", "must be an http or https URL"),
        ("webhook_event_url", "https://example.com/" + "a" * 2000, "at most 2000 characters"),
    ],
)
def test_webhook_urls_are_http_or_https(env: Env, field: str, value: str, detail: str) -> None:
    import httpx

    tenant = env.tenant()
    key = tenant.client.api_key
    r = httpx.post(
        f"{env.api}/ip_connections",
        json={"connection_name": "pbx", field: value},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 422
    (error,) = r.json()["errors"]
    assert (error["code"], error["source"]["pointer"]) == ("10015", f"/{field}")
    assert detail in error["detail"]
    # A private address is not refused here: whether it may receive events is the delivering
    # server's setting, and the name may resolve elsewhere by then.
    created = tenant.connection(webhook_event_url="http://10.0.0.5/hook", webhook_event_failover_url="")
    updated = tenant.client.ip_connections.update(
        created, webhook_event_failover_url="HTTPS://[fd00::1]:8443/x"
    )
    assert updated.data is not None and updated.data.webhook_event_failover_url == "HTTPS://[fd00::1]:8443/x"
