"""Inbound calls to FQDN connections: the addresses their FQDNs resolve to are the routes, an SRV
FQDN's targets tried by priority (RFC 2782), with Telnyx's failover between them.

DNS answers come from the edge's FakeResolver (tests/sip/conftest.py); PBX routes are SIPp UASs on
127.0.7.x, a range no other SIP test module uses (modules share a database).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.sip.conftest import Edge, eventually
from tests.sip.test_calls import user_id_of
from tests.sip.test_edge import in_acl
from tests.sip.test_inbound import assign, carrier_call, finals, new_number
from tests.sip.test_policy import finished
from trunkline.sip.state import Address


def fqdn_trunk(edge: Edge, record_type: str, answers: set[Address]) -> tuple[str, str]:
    """An FQDN connection with one FQDN that resolves to `answers`, and a number assigned to it."""
    client = edge.account()
    conn_id = client.fqdn_connections.create(connection_name=f"fq-{uuid.uuid4().hex[:6]}").data.id
    name = f"pbx-{uuid.uuid4().hex[:8]}.example.test"
    edge.resolver.answers[name] = frozenset(answers)
    port = 5060 if record_type == "a" else None  # an SRV answer carries its own ports
    client.fqdns.create(connection_id=conn_id, fqdn=name, dns_record_type=record_type, port=port)
    for a in answers:
        eventually(lambda a=a: in_acl(edge, a.ip_address, conn_id), timeout=5)  # type: ignore[misc]
    number = new_number()
    assign(edge, client, number, conn_id, user_id_of(edge, conn_id))
    return conn_id, number


def test_an_a_record_fqdn_receives_the_call_at_its_address(sip_edge: Edge, pbxs: Any) -> None:
    pbx = pbxs("127.0.7.71")
    _, number = fqdn_trunk(sip_edge, "a", {Address(pbx.ip, pbx.port)})
    answered = carrier_call(sip_edge, number)
    assert finals(answered)[0] == "SIP/2.0 200 OK", answered.status_lines
    (invite,) = pbx.invites(number)
    assert f"INVITE sip:{number.removeprefix('+')}@{pbx.ip}:{pbx.port}" in invite


def test_srv_targets_are_tried_by_priority_and_a_503_fails_over(sip_edge: Edge, pbxs: Any) -> None:
    # Addresses in the opposite order of the priorities: only the SRV priorities can put `first` first.
    first = pbxs("127.0.7.74", "gateway_refuse.xml", "503 Service Unavailable")
    second = pbxs("127.0.7.73")
    last = pbxs("127.0.7.72")
    answers = {
        Address(last.ip, last.port, priority=30, weight=5),
        Address(first.ip, first.port, priority=10, weight=5),
        Address(second.ip, second.port, priority=20, weight=5),
    }
    conn_id, number = fqdn_trunk(sip_edge, "srv", answers)
    answered = carrier_call(sip_edge, number)
    assert finals(answered)[0] == "SIP/2.0 200 OK", answered.status_lines
    assert len(first.invites(number)) == 1 and len(second.invites(number)) == 1
    assert not last.invites(number)
    (record,) = finished(sip_edge, conn_id, 1)
    assert json.loads(record["routes_tried"]) == [
        {"route": f"{first.ip}:{first.port}", "status": 503},
        {"route": f"{second.ip}:{second.port}", "status": 200},
    ]
