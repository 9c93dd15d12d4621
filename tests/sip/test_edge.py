"""The SIP edge end to end: SIPp against a trunkline-supervised Kamailio, the API reporting what it saw."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
import telnyx

from tests.sip.conftest import REALM, Edge, eventually, free_udp_tcp_port
from trunkline.sip import process_group
from trunkline.store import changes, ids
from trunkline.store import fqdns as store_fqdns
from trunkline.store.schema import outbound_voice_profile

pytestmark = pytest.mark.sip

PASSWORD = "correct-horse-1"


def new_user() -> str:
    return "u" + uuid.uuid4().hex[:12]


def credential(client: telnyx.Telnyx, user: str, password: str = PASSWORD) -> str:
    created = client.credential_connections.create(connection_name=user, user_name=user, password=password)
    return created.data.id


def status(client: telnyx.Telnyx, connection_id: str) -> Any:
    return client.credential_connections.actions.check_registration_status(connection_id).data


def service_name() -> str:
    """A unique dialled number per call, to find (or not find) the call at the target: a valid US
    number (New York, 212), so the edge's number rules let it through (sip/numbers.py)."""
    return "1212" + str(2_000_000 + uuid.uuid4().int % 8_000_000)


def reached_target(edge: Edge, service: str) -> bool:
    """The target got an INVITE for the number: as dialled, or as +E.164 (how calls leave upstream)."""
    log = edge.workdir / "uas.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    digits = service.removeprefix("+")
    return f"INVITE sip:{digits}@" in text or f"INVITE sip:+{digits}@" in text


# --- credential connections -------------------------------------------------------------------


def test_not_registered_before_any_register(sip_edge: Edge) -> None:
    client = sip_edge.account()
    conn_id = credential(client, new_user())
    assert status(client, conn_id).status == "Not Registered"


def test_register_with_right_password_is_registered_with_its_source(sip_edge: Edge) -> None:
    client, user = sip_edge.account(), new_user()
    conn_id = credential(client, user)
    port = free_udp_tcp_port()
    result = sip_edge.register(user, PASSWORD, local_port=port)
    assert result.returncode == 0, result.status_lines
    assert result.status_lines == ["SIP/2.0 401 Unauthorized", "SIP/2.0 200 OK"]
    seen = status(client, conn_id)
    assert seen.status == "Registered"
    assert (seen.ip_address, seen.port, seen.transport) == ("127.0.0.1", port, "UDP")
    assert seen.user_agent == "trunkline-test/UDP"
    assert seen.sip_username == user
    assert seen.last_registration is not None


def test_register_over_tcp_reports_tcp(sip_edge: Edge) -> None:
    client, user = sip_edge.account(), new_user()
    conn_id = credential(client, user)
    result = sip_edge.register(user, PASSWORD, args=("-t", "t1"))
    assert result.returncode == 0, result.status_lines
    seen = status(client, conn_id)
    assert (seen.status, seen.transport) == ("Registered", "TCP")


def test_wrong_password_is_refused_and_reported_failed(sip_edge: Edge) -> None:
    client, user = sip_edge.account(), new_user()
    conn_id = credential(client, user)
    result = sip_edge.register(user, "not-the-password", refused=True)
    assert result.returncode == 0, result.status_lines
    assert result.status_lines[-1].startswith("SIP/2.0 403")
    assert status(client, conn_id).status == "Failed"
    # A later success replaces the failure (the newest attempt wins: trunkline's choice).
    assert sip_edge.register(user, PASSWORD).returncode == 0
    assert status(client, conn_id).status == "Registered"


def test_deregister_is_unregistered_and_keeps_the_contact(sip_edge: Edge) -> None:
    client, user = sip_edge.account(), new_user()
    conn_id = credential(client, user)
    port = free_udp_tcp_port()
    assert sip_edge.register(user, PASSWORD, local_port=port).returncode == 0
    assert sip_edge.register(user, PASSWORD, expires=0, local_port=port).returncode == 0
    seen = status(client, conn_id)
    assert seen.status == "Unregistered"
    assert (seen.ip_address, seen.port) == ("127.0.0.1", port)


def test_short_registration_expires(sip_edge: Edge) -> None:
    client, user = sip_edge.account(), new_user()
    conn_id = credential(client, user)
    assert sip_edge.register(user, PASSWORD, expires=2).returncode == 0
    assert status(client, conn_id).status == "Registered"
    eventually(lambda: status(client, conn_id).status == "Expired", timeout=8, interval=0.25)


def test_password_change_applies_to_the_next_register(sip_edge: Edge) -> None:
    client, user = sip_edge.account(), new_user()
    conn_id = credential(client, user)
    assert sip_edge.register(user, PASSWORD).returncode == 0
    client.credential_connections.update(conn_id, password="brand-new-pass-2")
    assert sip_edge.register(user, PASSWORD, refused=True).returncode == 0
    assert sip_edge.register(user, "brand-new-pass-2").returncode == 0


def test_inactive_connection_is_refused_at_once_and_not_applicable(sip_edge: Edge) -> None:
    client, user = sip_edge.account(), new_user()
    conn_id = credential(client, user)
    assert sip_edge.register(user, PASSWORD).returncode == 0
    client.credential_connections.update(conn_id, active=False)
    assert sip_edge.register(user, PASSWORD, refused=True).returncode == 0
    assert status(client, conn_id).status == "Not Applicable"
    client.credential_connections.delete(conn_id)
    assert sip_edge.register(user, PASSWORD, refused=True).returncode == 0


# --- IP and FQDN connections ------------------------------------------------------------------


def profile(client: telnyx.Telnyx) -> str:
    """A new enabled outbound voice profile: calls to the upstream need one (else 403 D38)."""
    return client.outbound_voice_profiles.create(name=f"profile-{uuid.uuid4().hex[:8]}").data.id


def ip_connection(client: telnyx.Telnyx, address: str, *, port: int = 5060, **fields: Any) -> str:
    outbound = {"outbound_voice_profile_id": profile(client), **(fields.pop("outbound", None) or {})}
    conn_id = client.ip_connections.create(connection_name="pbx", outbound=outbound, **fields).data.id
    client.ips.create(ip_address=address, port=port, connection_id=conn_id)
    return conn_id


def in_acl(edge: Edge, address: str, tag: str) -> bool:
    return any(item["ip"] == address and item["tag"] == tag for item in edge.acl())


def call(edge: Edge, source: str, *, refused: bool = False, **kw: Any) -> tuple[Any, str]:
    service = service_name()
    scenario = "uac_refused.xml" if refused else "uac.xml"
    return edge.sipp(scenario, local_ip=source, args=("-s", service, *kw.pop("args", ())), **kw), service


def test_invite_from_an_ip_of_an_ip_connection_reaches_the_target(sip_edge: Edge) -> None:
    client = sip_edge.account()
    conn_id = client.ip_connections.create(
        connection_name="pbx", outbound={"outbound_voice_profile_id": profile(client)}
    ).data.id
    client.ips.create(ip_address="127.0.0.11", connection_id=conn_id)
    written = time.monotonic()
    eventually(lambda: in_acl(sip_edge, "127.0.0.11", conn_id), timeout=3)
    # The API write reaches the running edge within about a second (at most one reload a second).
    assert time.monotonic() - written < 1.5
    result, service = call(sip_edge, "127.0.0.11", args=("-d", "100"))
    assert result.returncode == 0, result.status_lines
    assert reached_target(sip_edge, service)


def test_invite_from_a_foreign_address_is_refused_with_403(sip_edge: Edge) -> None:
    result, service = call(sip_edge, "127.0.0.12", refused=True)
    assert result.status_lines[-1] == "SIP/2.0 403 Forbidden - source not allowed"
    assert not reached_target(sip_edge, service)


def test_ip_with_its_own_port_admits_any_source_port(sip_edge: Edge) -> None:
    # "The IP address port is not used for authentication purposes"
    # (https://support.telnyx.com/en/articles/4320411-more-about-outbound-voice-profiles).
    client = sip_edge.account()
    port = free_udp_tcp_port("127.0.0.13")
    conn_id = ip_connection(client, "127.0.0.13", port=port)
    eventually(lambda: in_acl(sip_edge, "127.0.0.13", conn_id), timeout=3)
    ok, _ = call(sip_edge, "127.0.0.13", local_port=port, args=("-d", "50"))
    assert ok.returncode == 0, ok.status_lines
    other, service = call(sip_edge, "127.0.0.13", args=("-d", "50"))
    assert other.returncode == 0, other.status_lines
    assert reached_target(sip_edge, service)


def test_removed_ip_is_refused_again(sip_edge: Edge) -> None:
    client = sip_edge.account()
    conn_id = ip_connection(client, "127.0.0.14")
    eventually(lambda: in_acl(sip_edge, "127.0.0.14", conn_id), timeout=3)
    client.ip_connections.delete(conn_id)
    eventually(lambda: not in_acl(sip_edge, "127.0.0.14", conn_id), timeout=3)
    result, _ = call(sip_edge, "127.0.0.14", refused=True)
    assert result.status_lines[-1] == "SIP/2.0 403 Forbidden - source not allowed"


def test_inactive_ip_connection_is_refused_with_d16(sip_edge: Edge) -> None:
    client = sip_edge.account()
    conn_id = ip_connection(client, "127.0.0.15", active=False)
    eventually(lambda: in_acl(sip_edge, "127.0.0.15", conn_id), timeout=3)
    result, service = call(sip_edge, "127.0.0.15", refused=True)
    assert result.status_lines[-1] == "SIP/2.0 403 Connection is disabled D16"
    assert not reached_target(sip_edge, service)


def test_fqdn_connection_admits_what_its_fqdn_resolves_to(sip_edge: Edge) -> None:
    client = sip_edge.account()
    conn_id = client.fqdn_connections.create(
        connection_name="carrier", outbound={"outbound_voice_profile_id": profile(client)}
    ).data.id
    name = f"pbx-{uuid.uuid4().hex[:8]}.example.test"
    sip_edge.resolver.answers[name] = frozenset({_address("127.0.0.16")})

    async def add_fqdn(conn: Any) -> None:
        stamp = ids.now()
        user_id = (
            await conn.execute(sa.text(f"SELECT user_id FROM connection WHERE id = '{conn_id}'"))
        ).scalar()
        await store_fqdns.insert(
            conn,
            id=ids.numeric_id(),
            user_id=user_id,
            connection_id=conn_id,
            fqdn=name,
            dns_record_type="a",
            port=5060,
            created_at=stamp,
            updated_at=stamp,
        )
        await changes.bump(conn, changes.ACL)

    sip_edge.db(add_fqdn)
    eventually(lambda: in_acl(sip_edge, "127.0.0.16", conn_id), timeout=3)
    result, service = call(sip_edge, "127.0.0.16", args=("-d", "50"))
    assert result.returncode == 0, result.status_lines
    assert reached_target(sip_edge, service)


def _address(ip: str, port: int = 5060) -> Any:
    from trunkline.sip.state import Address

    return Address(ip, port)


# --- limits -----------------------------------------------------------------------------------


def test_outbound_channel_limit_refuses_the_extra_call_with_d3(sip_edge: Edge) -> None:
    client = sip_edge.account()
    conn_id = ip_connection(client, "127.0.0.17", outbound={"channel_limit": 1})
    eventually(lambda: in_acl(sip_edge, "127.0.0.17", conn_id), timeout=3)
    first = sip_edge.sipp_background("uac.xml", local_ip="127.0.0.17", args=("-d", "3000"))
    # The first call holds the connection's only channel (dialog profile "outc" of the connection).
    eventually(lambda: sip_edge.calls_of(conn_id) == 1, timeout=10)
    result, service = call(sip_edge, "127.0.0.17", refused=True)
    first_rc = first.wait(timeout=30)
    assert result.status_lines[-1] == "SIP/2.0 403 Connection channel limit exceeded D3"
    assert not reached_target(sip_edge, service)
    assert first_rc == 0
    # The channel is free again once the first call hung up.
    again, _ = call(sip_edge, "127.0.0.17", args=("-d", "50"))
    assert again.returncode == 0, again.status_lines


def _profile(edge: Edge, client_conn: str, *, enabled: bool, limit: int | None) -> str:
    profile_id = ids.numeric_id()

    async def add(conn: Any) -> None:
        user_id = (
            await conn.execute(sa.text(f"SELECT user_id FROM connection WHERE id = '{client_conn}'"))
        ).scalar()
        stamp = ids.now()
        await conn.execute(
            sa.insert(outbound_voice_profile).values(
                id=profile_id,
                user_id=user_id,
                name="profile",
                enabled=enabled,
                traffic_type="conversational",
                service_plan="global",
                usage_payment_method="rate-deck",
                concurrent_call_limit=limit,
                document="{}",
                created_at=stamp,
                updated_at=stamp,
            )
        )

    edge.db(add)
    return profile_id


def test_profile_concurrent_call_limit_refuses_with_d2(sip_edge: Edge) -> None:
    client = sip_edge.account()
    conn_id = ip_connection(client, "127.0.0.18")
    profile_id = _profile(sip_edge, conn_id, enabled=True, limit=0)
    client.ip_connections.update(conn_id, outbound={"outbound_voice_profile_id": profile_id})
    eventually(lambda: in_acl(sip_edge, "127.0.0.18", conn_id), timeout=3)
    result, service = call(sip_edge, "127.0.0.18", refused=True)
    assert result.status_lines[-1] == "SIP/2.0 403 OB profile channel limit exceeded D2"
    assert not reached_target(sip_edge, service)


def test_disabled_profile_refuses_with_d15(sip_edge: Edge) -> None:
    client = sip_edge.account()
    conn_id = ip_connection(client, "127.0.0.19")
    profile_id = _profile(sip_edge, conn_id, enabled=False, limit=None)
    client.ip_connections.update(conn_id, outbound={"outbound_voice_profile_id": profile_id})
    eventually(lambda: in_acl(sip_edge, "127.0.0.19", conn_id), timeout=3)
    result, service = call(sip_edge, "127.0.0.19", refused=True)
    assert result.status_lines[-1] == "SIP/2.0 403 Outbound Profile is disabled D15"
    assert not reached_target(sip_edge, service)


# --- the process ------------------------------------------------------------------------------


def test_supervisor_restarts_a_dead_kamailio(sip_edge: Edge) -> None:
    import os
    import signal

    supervisor = sip_edge.service.supervisor
    before = supervisor.pid
    assert before is not None
    os.killpg(before, signal.SIGKILL)
    eventually(
        lambda: supervisor.pid not in (None, before) and supervisor.state.value == "running", timeout=15
    )
    client, user = sip_edge.account(), new_user()
    credential(client, user)
    assert sip_edge.register(user, PASSWORD).returncode == 0


def test_supervisor_restarts_kamailio_whose_main_process_died_alone(sip_edge: Edge) -> None:
    """Kamailio's workers outlive a main process killed on its own (a crash, the OOM killer) and keep
    the SIP port: the supervisor stops them before it starts the next Kamailio, which then binds."""
    import os
    import signal

    supervisor = sip_edge.service.supervisor
    before = supervisor.pid
    assert before is not None
    workers = process_group.members(before, supervisor.config_path)
    assert len(workers) > 1, workers
    os.kill(before, signal.SIGKILL)
    eventually(
        lambda: supervisor.pid not in (None, before) and supervisor.state.value == "running", timeout=15
    )
    assert process_group.members(before, supervisor.config_path) == []
    client, user = sip_edge.account(), new_user()
    credential(client, user)
    assert sip_edge.register(user, PASSWORD).returncode == 0


def test_invite_of_a_credential_connection_is_challenged_then_reaches_the_target(sip_edge: Edge) -> None:
    client, user = sip_edge.account(), new_user()
    conn_id = credential(client, user, PASSWORD)
    client.credential_connections.update(conn_id, outbound={"outbound_voice_profile_id": profile(client)})
    service = service_name()
    result = sip_edge.sipp(
        "uac_auth.xml",
        keys={"user": user, "realm": REALM},
        args=("-au", user, "-ap", PASSWORD, "-s", service, "-d", "50"),
    )
    assert result.returncode == 0, result.status_lines
    assert result.status_lines[0] == "SIP/2.0 407 Proxy Authentication Required"
    assert reached_target(sip_edge, service)


def test_invite_with_a_wrong_password_never_reaches_the_target(sip_edge: Edge) -> None:
    client, user = sip_edge.account(), new_user()
    credential(client, user, PASSWORD)
    service = service_name()
    result = sip_edge.sipp(
        "uac_auth.xml",
        keys={"user": user, "realm": REALM},
        args=("-au", user, "-ap", "wrong-pw", "-s", service),
    )
    assert "SIP/2.0 403 Forbidden" in result.status_lines
    assert not reached_target(sip_edge, service)


def test_supervisor_replaces_a_kamailio_that_stops_answering(sip_edge: Edge) -> None:
    import os
    import signal

    supervisor = sip_edge.service.supervisor
    supervisor.probe_seconds = 0.3
    try:
        wedged = supervisor.pid
        assert wedged is not None
        os.killpg(wedged, signal.SIGSTOP)  # alive, but answers nothing
        eventually(
            lambda: supervisor.pid not in (None, wedged) and supervisor.state.value == "running", timeout=30
        )
    finally:
        supervisor.probe_seconds = 5.0
    client, user = sip_edge.account(), new_user()
    credential(client, user)
    assert sip_edge.register(user, PASSWORD).returncode == 0


def test_call_to_a_registered_user_reaches_the_phone_within_its_inbound_channel_limit(sip_edge: Edge) -> None:
    client, user = sip_edge.account(), new_user()
    client.credential_connections.create(
        connection_name=user,
        user_name=user,
        password=PASSWORD,
        inbound={"channel_limit": 1},
        sip_uri_calling_preference="internal",
    )
    caller = ip_connection(client, "127.0.0.20")
    eventually(lambda: in_acl(sip_edge, "127.0.0.20", caller), timeout=3)
    # The phone registers, then answers on the address it registered (SIPp ties a scenario to its
    # own Call-ID, so the answering side is a second SIPp on the same address and port).
    port = free_udp_tcp_port("127.0.0.21")
    assert sip_edge.register(user, PASSWORD, local_ip="127.0.0.21", local_port=port).returncode == 0
    phone = sip_edge.sipp_background("uas.xml", local_ip="127.0.0.21", local_port=port)
    first = sip_edge.sipp_background("uac.xml", local_ip="127.0.0.20", args=("-s", user, "-d", "3000"))
    eventually(lambda: sip_edge.calls_of(user_connection(sip_edge, user), profile="inc") == 1, timeout=10)
    # The phone's one channel is busy: a second call to it is refused before it rings.
    second, _ = call(sip_edge, "127.0.0.20", refused=True, args=("-s", user))
    first_rc, phone_rc = first.wait(timeout=30), phone.wait(timeout=30)
    assert second.status_lines[-1] == "SIP/2.0 486 User Busy D4"
    assert (first_rc, phone_rc) == (0, 0)


def user_connection(edge: Edge, user: str) -> str:
    async def find(conn: Any) -> str:
        stmt = sa.text("SELECT id FROM connection WHERE user_name = :u").bindparams(u=user)
        return str((await conn.execute(stmt)).scalar())

    return str(edge.db(find))
