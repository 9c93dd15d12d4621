"""Inbound calls: a carrier (a SIPp UAC on the upstream's address) calls one of our numbers; the
edge delivers it to the number's connection as Telnyx does, failing over between routes.

PBX routes are SIPp UASs on 127.0.1.x (the `pbxs` fixture of tests/sip/conftest.py), a range no
other SIP test module uses; timers are set to a second or two so the timeout tests stay short.
"""

from __future__ import annotations

import collections
import json
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import telnyx

from tests.sip.conftest import SCENARIOS, UPSTREAM_IP, Edge, SippResult, eventually, free_udp_tcp_port
from tests.sip.test_calls import header, user_id_of
from tests.sip.test_edge import PASSWORD, in_acl, new_user
from tests.sip.test_policy import finished
from tests.sip.test_upstreams import Gateway
from trunkline.resources import phone_numbers

CALLER = "+13125550199"


def new_number() -> str:
    return "+1312" + str(2_000_000 + uuid.uuid4().int % 8_000_000)


def assign(edge: Edge, client: telnyx.Telnyx, number: str, conn_id: str | None, user_id: str) -> None:
    """Add the number to the account's inventory (what `trunkline numbers add` does), then assign it
    to the connection through the API, as a customer would."""

    async def add(conn: Any) -> list[dict[str, Any]]:
        return await phone_numbers.add(conn, user_id, phone_numbers.parse_numbers([number]))

    (added,) = edge.db(add)
    if conn_id is not None:
        client.phone_numbers.update(added["id"], connection_id=conn_id)


def ip_trunk(edge: Edge, client: telnyx.Telnyx, routes: list[Gateway], **inbound: Any) -> tuple[str, str]:
    """An IP connection whose routes are `routes` (primary, secondary, tertiary in that order) and a
    number assigned to it."""
    conn_id = client.ip_connections.create(
        connection_name="pbx", **({"inbound": inbound} if inbound else {})
    ).data.id
    ip_ids = [client.ips.create(ip_address=r.ip, port=r.port, connection_id=conn_id).data.id for r in routes]
    roles = dict(
        zip(
            ("default_primary_ip_id", "default_secondary_ip_id", "default_tertiary_ip_id"),
            ip_ids,
            strict=False,
        )
    )
    if roles:
        client.ip_connections.update(conn_id, inbound={**inbound, **roles})
    for r in routes:
        eventually(lambda r=r: in_acl(edge, r.ip, conn_id), timeout=3)  # type: ignore[misc]
    number = new_number()
    assign(edge, client, number, conn_id, user_id_of(edge, conn_id))
    return conn_id, number


def carrier_call(edge: Edge, number: str, *, hold_ms: int = 50, timeout: float = 20.0) -> SippResult:
    return edge.sipp(
        "carrier.xml",
        local_ip=UPSTREAM_IP,
        keys={"from": CALLER},
        args=("-s", number, "-d", str(hold_ms)),
        timeout=timeout,
    )


def finals(result: SippResult) -> list[str]:
    return [s for s in result.status_lines if not s.startswith(("SIP/2.0 100", "SIP/2.0 18"))]


# --- routing and failover --------------------------------------------------------------------


def test_a_number_reaches_its_connections_primary_in_its_number_formats(sip_edge: Edge, pbxs: Any) -> None:
    primary, secondary = pbxs("127.0.1.71"), pbxs("127.0.1.72")
    _, number = ip_trunk(
        sip_edge,
        sip_edge.account(),
        [primary, secondary],
        ani_number_format="+E.164",
        dnis_number_format="national",
    )
    answered = carrier_call(sip_edge, number)
    assert finals(answered)[0] == "SIP/2.0 200 OK", answered.status_lines
    national = number.removeprefix("+1")
    (invite,) = primary.invites(national)
    assert header(invite, "To").startswith(f"<sip:{national}@")  # type: ignore[union-attr]
    assert header(invite, "From").startswith(f"<sip:{CALLER}@")  # type: ignore[union-attr]
    assert not secondary.invites(national)


def test_national_ani_for_a_us_caller_and_e164_dnis(sip_edge: Edge, pbxs: Any) -> None:
    pbx = pbxs("127.0.1.73")
    _, number = ip_trunk(
        sip_edge, sip_edge.account(), [pbx], ani_number_format="E.164-national", dnis_number_format="e164"
    )
    assert finals(carrier_call(sip_edge, number))[0] == "SIP/2.0 200 OK"
    (invite,) = pbx.invites(number.removeprefix("+"))
    assert header(invite, "From").startswith("<sip:3125550199@")  # type: ignore[union-attr]
    assert header(invite, "P-Asserted-Identity").startswith("<sip:3125550199@")  # type: ignore[union-attr]


def test_primary_503_fails_over_to_the_secondary(sip_edge: Edge, pbxs: Any) -> None:
    primary = pbxs("127.0.1.74", "gateway_refuse.xml", "503 Service Unavailable")
    secondary = pbxs("127.0.1.75")
    conn_id, number = ip_trunk(sip_edge, sip_edge.account(), [primary, secondary])
    answered = carrier_call(sip_edge, number)
    assert finals(answered)[0] == "SIP/2.0 200 OK", answered.status_lines
    digits = number.removeprefix("+")
    assert len(primary.invites(digits)) == 1 and len(secondary.invites(digits)) == 1
    # The record says which route failed over and which answered.
    (record,) = finished(sip_edge, conn_id, 1)
    assert json.loads(record["routes_tried"]) == [
        {"route": f"{primary.ip}:{primary.port}", "status": 503},
        {"route": f"{secondary.ip}:{secondary.port}", "status": 200},
    ]


def test_primary_486_is_the_answer_no_failover(sip_edge: Edge, pbxs: Any) -> None:
    primary = pbxs("127.0.1.76", "gateway_refuse.xml", "486 Busy Here")
    secondary = pbxs("127.0.1.77")
    _, number = ip_trunk(sip_edge, sip_edge.account(), [primary, secondary])
    assert finals(carrier_call(sip_edge, number)) == ["SIP/2.0 486 Busy Here"]
    assert not secondary.invites(number.removeprefix("+"))


def test_no_ringback_within_timeout_1xx_cancels_and_fails_over(sip_edge: Edge, pbxs: Any) -> None:
    primary, secondary = pbxs("127.0.1.78", "pbx_trying.xml"), pbxs("127.0.1.79")
    _, number = ip_trunk(sip_edge, sip_edge.account(), [primary, secondary], timeout_1xx_secs=1)
    answered = carrier_call(sip_edge, number)
    assert finals(answered)[0] == "SIP/2.0 200 OK", answered.status_lines
    digits = number.removeprefix("+")
    eventually(lambda: "CANCEL sip:" in "".join(primary.invites(digits)) or _cancelled(primary), timeout=5)
    assert len(secondary.invites(digits)) == 1


def _cancelled(gw: Gateway) -> bool:
    logs = sorted(gw.log.parent.glob(gw.log.stem + "*.log"))
    return any("\nCANCEL sip:" in p.read_text(errors="replace") for p in logs)


def test_ringing_past_timeout_2xx_is_cancelled_without_failover(sip_edge: Edge, pbxs: Any) -> None:
    primary, secondary = pbxs("127.0.1.80", "uas_ring.xml"), pbxs("127.0.1.81")
    _, number = ip_trunk(sip_edge, sip_edge.account(), [primary, secondary], timeout_2xx_secs=2)
    refused = carrier_call(sip_edge, number)
    assert finals(refused) == ["SIP/2.0 408 Request Timeout"], refused.status_lines
    assert _cancelled(primary)
    assert not secondary.invites(number.removeprefix("+"))


def test_round_robin_spreads_calls_over_the_routes(sip_edge: Edge, pbxs: Any) -> None:
    routes = [pbxs(ip) for ip in ("127.0.1.82", "127.0.1.83", "127.0.1.84")]
    _, number = ip_trunk(sip_edge, sip_edge.account(), routes, default_routing_method="round-robin")
    tmp = Path(tempfile.mkdtemp(prefix="sipp-rr-", dir=sip_edge.workdir))
    cmd = sip_edge._sipp_cmd(
        "carrier.xml", UPSTREAM_IP, None, {"from": CALLER}, ("-s", number, "-d", "100"), 60, tmp / "m.log"
    )
    cmd += ["-m", "45", "-r", "10", "-l", "10"]
    done = subprocess.run(cmd, cwd=tmp, capture_output=True, timeout=90, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    counts = collections.Counter({r.ip: len(r.invites(number.removeprefix("+"))) for r in routes})
    assert sum(counts.values()) == 45
    # 15 each expected. Fewer than 4 on a route happens by chance in 7 runs of 100,000 (the exact
    # multinomial sum); a router that does not shuffle puts all 45 on one route.
    assert min(counts.values()) >= 4, counts


# --- refusals ---------------------------------------------------------------------------------


def test_inbound_channel_limit_is_486_d4(sip_edge: Edge, pbxs: Any) -> None:
    pbx = pbxs("127.0.1.85")
    conn_id, number = ip_trunk(sip_edge, sip_edge.account(), [pbx], channel_limit=1)
    held = subprocess.Popen(
        sip_edge._sipp_cmd(
            "carrier.xml",
            UPSTREAM_IP,
            None,
            {"from": CALLER},
            ("-s", number, "-d", "3000"),
            20,
            sip_edge.workdir / f"held-{uuid.uuid4().hex}.log",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=sip_edge.workdir,
    )
    try:
        eventually(lambda: sip_edge.calls_of(conn_id, profile="inc") == 1, timeout=10)
        assert finals(carrier_call(sip_edge, number)) == ["SIP/2.0 486 User Busy D4"]
        assert held.wait(timeout=30) == 0
    finally:
        if held.poll() is None:
            held.kill()


def test_inactive_unassigned_and_unknown_numbers(sip_edge: Edge, pbxs: Any) -> None:
    client = sip_edge.account()
    conn_id, number = ip_trunk(sip_edge, client, [pbxs("127.0.1.86")])
    client.ip_connections.update(conn_id, active=False)
    assert finals(carrier_call(sip_edge, number)) == ["SIP/2.0 404 Not found D18"]
    spare = new_number()
    assign(sip_edge, client, spare, None, user_id_of(sip_edge, conn_id))
    assert finals(carrier_call(sip_edge, spare)) == ["SIP/2.0 480 No Route D21"]
    assert finals(carrier_call(sip_edge, new_number())) == ["SIP/2.0 404 Not Found"]


# --- credential connections and SIP URI calling ---------------------------------------------


def _phone(edge: Edge, client: telnyx.Telnyx, address: str, **fields: Any) -> tuple[str, str, int]:
    user = new_user()
    conn_id = client.credential_connections.create(
        connection_name=user, user_name=user, password=PASSWORD, **fields
    ).data.id
    port = free_udp_tcp_port(address)
    assert edge.register(user, PASSWORD, local_ip=address, local_port=port).returncode == 0
    return user, conn_id, port


def test_a_number_of_a_credential_connection_rings_its_registered_phone(sip_edge: Edge) -> None:
    client = sip_edge.account()
    user, conn_id, port = _phone(
        sip_edge, client, "127.0.1.87", inbound={"dnis_number_format": "sip_username"}
    )
    number = new_number()
    assign(sip_edge, client, number, conn_id, user_id_of(sip_edge, conn_id))
    log = sip_edge.workdir / f"phone-{user}.log"
    phone = subprocess.Popen(
        ["sipp", "-sf", str(SCENARIOS / "uas.xml"), "-i", "127.0.1.87", "-p", str(port),
         "-m", "1", "-nostdin", "-trace_msg", "-message_file", str(log)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=sip_edge.workdir,
    )  # fmt: skip
    try:
        answered = carrier_call(sip_edge, number)
        assert finals(answered)[0] == "SIP/2.0 200 OK", answered.status_lines
        assert phone.wait(timeout=20) == 0
    finally:
        if phone.poll() is None:
            phone.kill()
    assert f"\nTo: <sip:{user}@" in log.read_text(errors="replace")


def test_sip_uri_calling_preference_and_rg1(sip_edge: Edge) -> None:
    client, other = sip_edge.account(), sip_edge.account()
    caller_conn = client.ip_connections.create(connection_name="pbx").data.id
    client.ips.create(ip_address="127.0.1.88", connection_id=caller_conn)
    foreign = other.ip_connections.create(connection_name="pbx").data.id
    other.ips.create(ip_address="127.0.1.89", connection_id=foreign)
    eventually(
        lambda: in_acl(sip_edge, "127.0.1.88", caller_conn) and in_acl(sip_edge, "127.0.1.89", foreign),
        timeout=3,
    )
    closed, _, _ = _phone(sip_edge, client, "127.0.1.90")
    internal, _, _ = _phone(sip_edge, client, "127.0.1.91", sip_uri_calling_preference="internal")
    d30 = "SIP/2.0 403 Invalid SIP URI calling preference D30"
    assert _uri_call(sip_edge, "127.0.1.88", closed) == [d30]
    assert _uri_call(sip_edge, "127.0.1.89", internal) == [d30]
    unregistered = new_user()
    client.credential_connections.create(
        connection_name=unregistered,
        user_name=unregistered,
        password=PASSWORD,
        sip_uri_calling_preference="unrestricted",
    )
    assert _uri_call(sip_edge, "127.0.1.89", unregistered) == ["SIP/2.0 480 Not Found RG1"]


def _uri_call(edge: Edge, source: str, user: str) -> list[str]:
    result = edge.sipp("refusal.xml", local_ip=source, keys={"extra": "X-Test: 1"}, args=("-s", user))
    return [s for s in result.status_lines if not s.startswith("SIP/2.0 100")]


# --- records ----------------------------------------------------------------------------------


def test_inbound_calls_are_recorded_as_inbound(sip_edge: Edge, pbxs: Any) -> None:
    conn_id, number = ip_trunk(sip_edge, sip_edge.account(), [pbxs("127.0.1.92")])
    assert finals(carrier_call(sip_edge, number, hold_ms=500))[0] == "SIP/2.0 200 OK"

    async def read(conn: Any) -> list[Any]:
        stmt = sa.text("SELECT * FROM call_record WHERE connection_id = :c AND state = 'finished'")
        return list(await conn.execute(stmt.bindparams(c=conn_id)))

    (record,) = eventually(lambda: sip_edge.db(read), timeout=10)
    assert (record.direction, record.cld, record.cli, record.sip_status) == ("inbound", number, CALLER, 200)
    assert record.answered_at is not None and record.hangup_source == "caller"
