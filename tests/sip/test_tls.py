"""SIP over TLS: the edge's TLS listener (its self-signed certificate made on first start), a PBX that
places a call over TLS, and an inbound call delivered to a PBX whose `transport_protocol` is TLS.

The TLS endpoints are tests/sip/tls_phone.py (Debian's SIPp has no TLS). Addresses 127.0.5.x, a range
no other SIP test module uses (modules share a database, and an address names a connection).
"""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import telnyx

from tests.sip import tls_phone
from tests.sip.conftest import REALM, Edge, eventually, free_udp_tcp_port
from tests.sip.test_calls import upstream_invites, user_id_of
from tests.sip.test_edge import PASSWORD, in_acl, new_user, service_name
from tests.sip.test_inbound import assign, carrier_call, finals, new_number
from tests.sip.test_policy import caller, finished
from trunkline.sip import certs


def tls_files(edge: Edge) -> tuple[int, Path, Path]:
    config = edge.service.supervisor.config
    assert config.tls_port and config.tls_cert and config.tls_key
    return config.tls_port, config.tls_cert, config.tls_key


def test_the_edge_makes_a_self_signed_certificate_and_keeps_its_key_private(sip_edge: Edge) -> None:
    _, cert, key = tls_files(sip_edge)
    assert cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    secret = key.read_text().splitlines()[1]
    log = sip_edge.service.supervisor.log_path.read_text(errors="replace")
    assert secret not in log


def test_a_pbx_places_a_call_over_tls(sip_edge: Edge) -> None:
    port, cert, _ = tls_files(sip_edge)
    conn_id = caller(sip_edge, "127.0.5.10")
    number = service_name()
    # The PBX checks the edge's certificate against the one the edge made: the listener serves it.
    seen = tls_phone.call(
        source="127.0.5.10", edge_host="127.0.0.1", tls_port=port, number=number, cafile=cert
    )
    assert "SIP/2.0 200 OK" in seen[:-1], seen
    assert seen[-1] == "SIP/2.0 200 OK", seen  # the BYE's answer
    assert upstream_invites(sip_edge, number)
    (record,) = finished(sip_edge, conn_id, 1)
    assert (record["sip_status"], record["direction"]) == (200, "outbound")


def test_an_inbound_call_reaches_a_tls_pbx_over_tls(sip_edge: Edge, tmp_path: Path) -> None:
    cert, key = tmp_path / "pbx.crt", tmp_path / "pbx.key"
    certs.ensure_self_signed(cert, key, host="127.0.5.20", realm="pbx.example.test")
    pbx = tls_phone.Pbx("127.0.5.20", free_udp_tcp_port("127.0.5.20"), cert, key).start()
    try:
        client: telnyx.Telnyx = sip_edge.account()
        conn_id = client.ip_connections.create(
            connection_name=f"tls-pbx-{uuid.uuid4().hex[:6]}", transport_protocol="TLS"
        ).data.id
        client.ips.create(ip_address=pbx.ip, port=pbx.port, connection_id=conn_id)
        eventually(lambda: in_acl(sip_edge, pbx.ip, conn_id), timeout=3)
        number = new_number()
        assign(sip_edge, client, number, conn_id, user_id_of(sip_edge, conn_id))
        answered = carrier_call(sip_edge, number)
        assert finals(answered)[0] == "SIP/2.0 200 OK", answered.status_lines
        (invite,) = pbx.invites()
        assert tls_phone.header(invite, "Via").startswith("SIP/2.0/TLS "), invite
        eventually(lambda: any(r.startswith("BYE ") for r in pbx.received), timeout=5)
    finally:
        pbx.stop()


def test_a_phone_registered_over_tls_is_called_over_that_connection(sip_edge: Edge) -> None:
    port, cert, _ = tls_files(sip_edge)
    client: telnyx.Telnyx = sip_edge.account()
    user = new_user()
    conn_id = client.credential_connections.create(
        connection_name=user, user_name=user, password=PASSWORD
    ).data.id
    phone = tls_phone.RegisteredPhone(source="127.0.5.30", edge_host="127.0.0.1", tls_port=port, cafile=cert)
    try:
        assert phone.register(user, PASSWORD, REALM) == "SIP/2.0 200 OK"
        phone.answer_calls()
        number = new_number()
        assign(sip_edge, client, number, conn_id, user_id_of(sip_edge, conn_id))
        answered = carrier_call(sip_edge, number)
        assert finals(answered)[0] == "SIP/2.0 200 OK", answered.status_lines
        (invite,) = [r for r in phone.received if r.startswith("INVITE ")]
        # Over the phone's own TLS connection: the edge cannot open one to a phone's ephemeral port.
        assert tls_phone.header(invite, "Via").startswith("SIP/2.0/TLS "), invite
        eventually(lambda: any(r.startswith("BYE ") for r in phone.received), timeout=5)
    finally:
        phone.stop()
