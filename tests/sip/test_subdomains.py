"""SIP subdomains: `sip:anything@<sip_subdomain>.sip.trunkline.local` (TRUNKLINE_SIP_DOMAIN's default)
reaches that IP connection's routes, from anyone or only from the account's own connections.

Callers and PBX routes on 127.0.6.x, a range no other SIP test module uses (modules share a database,
and an address names a connection).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import telnyx

from tests.sip.conftest import Edge, SippResult, eventually
from tests.sip.test_calls import user_id_of
from tests.sip.test_edge import in_acl
from tests.sip.test_inbound import finals
from tests.sip.test_policy import caller, finished
from tests.sip.test_upstreams import Gateway

DOMAIN = "sip.trunkline.local"


@pytest.fixture
def pbx(pbxs: Any) -> Gateway:
    return pbxs("127.0.6.71")


def trunk(edge: Edge, client: telnyx.Telnyx, route: Gateway, receive: str | None) -> tuple[str, str]:
    """An IP connection with a fresh subdomain and `route` as its only route."""
    sub = "acme-" + uuid.uuid4().hex[:8]
    inbound: dict[str, Any] = {"sip_subdomain": sub}
    if receive:
        inbound["sip_subdomain_receive_settings"] = receive
    conn_id = client.ip_connections.create(connection_name=sub, inbound=inbound).data.id
    client.ips.create(ip_address=route.ip, port=route.port, connection_id=conn_id)
    eventually(lambda: in_acl(edge, route.ip, conn_id), timeout=3)
    return conn_id, sub


def call(edge: Edge, source: str, host: str, user: str = "reception") -> SippResult:
    return edge.sipp("subdomain.xml", local_ip=source, keys={"host": host}, args=("-s", user, "-d", "50"))


def test_from_anyone_a_subdomain_call_reaches_the_connections_route_with_its_user_part(
    sip_edge: Edge, pbx: Gateway
) -> None:
    client = sip_edge.account()
    conn_id, sub = trunk(sip_edge, client, pbx, "from_anyone")
    answered = call(sip_edge, "127.0.6.10", f"{sub}.{DOMAIN}")
    assert finals(answered)[0] == "SIP/2.0 200 OK", answered.status_lines
    (invite,) = pbx.invites("reception")
    assert f"INVITE sip:reception@{pbx.ip}:{pbx.port}" in invite
    (record,) = finished(sip_edge, conn_id, 1)
    assert (record["direction"], record["cld"], record["user_id"]) == (
        "inbound",
        "reception",
        user_id_of(sip_edge, conn_id),
    )


def test_only_my_connections_takes_the_accounts_own_callers_only(sip_edge: Edge, pbx: Gateway) -> None:
    owner = sip_edge.account()
    _, sub = trunk(sip_edge, owner, pbx, "only_my_connections")
    host = f"{sub}.{DOMAIN}"
    # A stranger, then another account's connection: both refused with D31, never delivered.
    stranger = call(sip_edge, "127.0.6.11", host, "stranger")
    assert finals(stranger) == ["SIP/2.0 403 Invalid SIP Subdomain Receive Settings D31"]
    other_account = sip_edge.account()
    other_conn = other_account.ip_connections.create(connection_name="other").data.id
    other_account.ips.create(ip_address="127.0.6.12", connection_id=other_conn)
    eventually(lambda: in_acl(sip_edge, "127.0.6.12", other_conn), timeout=3)
    neighbour = call(sip_edge, "127.0.6.12", host, "neighbour")
    assert finals(neighbour) == ["SIP/2.0 403 Invalid SIP Subdomain Receive Settings D31"]
    assert not pbx.invites("stranger") and not pbx.invites("neighbour")
    # The account's own IP connection is let through.
    mine = owner.ip_connections.create(connection_name="mine").data.id
    owner.ips.create(ip_address="127.0.6.13", connection_id=mine)
    eventually(lambda: in_acl(sip_edge, "127.0.6.13", mine), timeout=3)
    answered = call(sip_edge, "127.0.6.13", host, "colleague")
    assert finals(answered)[0] == "SIP/2.0 200 OK", answered.status_lines
    assert pbx.invites("colleague")


def test_an_unknown_subdomain_is_404_and_the_domain_itself_is_no_subdomain(sip_edge: Edge) -> None:
    assert finals(call(sip_edge, "127.0.6.14", f"nobody-{uuid.uuid4().hex[:8]}.{DOMAIN}")) == [
        "SIP/2.0 404 Not Found"
    ]
    caller(sip_edge, "127.0.6.15")
    # Not a subdomain call: the caller's own outbound call, routed by its profile as any other.
    assert finals(call(sip_edge, "127.0.6.15", DOMAIN, "12127363101"))[0] == "SIP/2.0 200 OK"
