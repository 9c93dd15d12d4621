"""Outbound calls refused and recognised as Telnyx does it, with SIPp against the real edge.

Each refusal is checked three ways: the status code, the exact reason phrase (Telnyx SIP Response
Codes, https://support.telnyx.com/en/articles/4409457-telnyx-sip-response-codes), and that the call
never reached the upstream UAS. Callers send from 127.0.0.3x-6x, the upstream listens on 127.0.0.2.

Every test runs twice: with the edge's own call counts (dialog profiles in Kamailio's memory) and with
counts shared in Redis (sip/counters.py, TRUNKLINE_REDIS_URL), the second on a database of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import telnyx

from tests.conftest import migrated_database
from tests.sip.conftest import REALM, Edge, SippResult, eventually, free_udp_tcp_port, running_edge
from tests.sip.test_edge import (
    PASSWORD,
    credential,
    in_acl,
    ip_connection,
    new_user,
    profile,
    service_name,
    user_connection,
)
from trunkline.store import changes, ids
from trunkline.store import fqdns as store_fqdns

pytestmark = pytest.mark.sip


@pytest.fixture(scope="module", params=["memory", "redis"])
def sip_edge(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Edge]:
    """This module's edge, counting calls in memory or in Redis; its database is its own, since
    connections are found by address and another module's may hold these addresses."""
    with (
        migrated_database(backend, tmp_path_factory) as url,
        running_edge(url, backend, shared_counts=request.param == "redis") as edge,
    ):
        yield edge


ADMITTED = "SIP/2.0 200 OK"


# --- helpers ----------------------------------------------------------------------------------


def upstream_invites(edge: Edge, number: str) -> list[str]:
    """The INVITEs the upstream UAS received for a dialled number, as SIPp traced them."""
    log = edge.workdir / "uas.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    blocks = text.split("----------------------------------------------- ")
    digits = number.removeprefix("+")
    # Calls leave for the upstream with the number as +E.164 (sip/numbers.py).
    return [b for b in blocks if any(f"\nINVITE sip:{n}@" in b for n in (digits, "+" + digits))]


def header(message: str, name: str) -> str | None:
    for line in message.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == name.lower():
            return value.strip()
    return None


def dial(
    edge: Edge,
    source: str,
    number: str,
    *,
    refused: bool = False,
    extra: str = "X-Test: 1",
    local_port: int | None = None,
) -> SippResult:
    """One call from `source` to `number`, carrying one extra header line."""
    return edge.sipp(
        "refusal.xml" if refused else "call.xml",
        local_ip=source,
        local_port=local_port,
        keys={"extra": extra},
        args=("-s", number, "-d", "50"),
    )


def ready(edge: Edge, address: str, *conn_ids: str) -> None:
    for conn_id in conn_ids:
        eventually(lambda c=conn_id: in_acl(edge, address, c), timeout=3)  # type: ignore[misc]


def user_id_of(edge: Edge, conn_id: str) -> str:
    async def find(conn: Any) -> str:
        stmt = sa.text("SELECT user_id FROM connection WHERE id = :c").bindparams(c=conn_id)
        return str((await conn.execute(stmt)).scalar())

    return str(edge.db(find))


def trunkline(edge: Edge, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRUNKLINE_DATABASE_URL": edge.database_url}
    return subprocess.run(
        [sys.executable, "-m", "trunkline", *args], capture_output=True, text=True, env=env, timeout=60
    )


# Each race test runs its burst this often. Seen while developing: with the template's lock() and
# unlock() taken out, every run of these race tests had a round that let a second call through.
ROUNDS = 3


def set_account_limit(edge: Edge, user_id: str, value: str) -> None:
    done = trunkline(edge, "accounts", "set-limits", "--user-id", user_id, "--concurrent-calls", value)
    assert done.returncode == 0, done.stderr


def start_burst(edge: Edge, source: str, number: str, calls: int) -> tuple[subprocess.Popen[bytes], Path]:
    """Start a SIPp sending `calls` INVITEs within one millisecond (race.xml: -r calls -rp 1);
    admitted calls hold 1 s, so every other INVITE arrives while they are up."""
    tmp = Path(tempfile.mkdtemp(prefix="sipp-race-", dir=edge.workdir))
    messages = tmp / "messages.log"
    cmd = edge._sipp_cmd("race.xml", source, None, None, (), 30.0, messages)
    cmd += ["-m", str(calls), "-l", str(calls), "-r", str(calls), "-rp", "1", "-s", number, "-d", "1000"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp), messages


def race(edge: Edge, number: str, sources: list[str], calls_each: int) -> list[str]:
    """Start one burst per source together; return every status line the callers received."""
    bursts = [start_burst(edge, source, number, calls_each) for source in sources]
    lines: list[str] = []
    for proc, messages in bursts:
        assert proc.wait(timeout=60) == 0
        text = messages.read_text(errors="replace")
        lines += [line.strip() for line in text.splitlines() if line.startswith("SIP/2.0 ")]
    return lines


# --- refusals ---------------------------------------------------------------------------------


def test_connection_without_a_profile_is_refused_with_d38(sip_edge: Edge) -> None:
    client = sip_edge.account()
    conn_id = client.ip_connections.create(connection_name="no-profile").data.id
    client.ips.create(ip_address="127.0.0.30", connection_id=conn_id)
    ready(sip_edge, "127.0.0.30", conn_id)
    number = service_name()
    result = dial(sip_edge, "127.0.0.30", number, refused=True)
    assert result.status_lines == ["SIP/2.0 403 Connection has no Outbound Profile assigned D38"]
    assert not upstream_invites(sip_edge, number)


def test_inactive_credential_connection_is_authenticated_then_refused_with_d16(sip_edge: Edge) -> None:
    client, user = sip_edge.account(), new_user()
    conn_id = credential(client, user)
    client.credential_connections.update(
        conn_id, active=False, outbound={"outbound_voice_profile_id": profile(client)}
    )
    number = service_name()
    result = sip_edge.sipp(
        "uac_auth_refused.xml",
        keys={"user": user, "realm": REALM},
        args=("-au", user, "-ap", PASSWORD, "-s", number),
    )
    assert result.returncode == 0, result.status_lines
    assert result.status_lines == [
        "SIP/2.0 407 Proxy Authentication Required",
        "SIP/2.0 403 Connection is disabled D16",
    ]
    assert not upstream_invites(sip_edge, number)
    # Authentication really happened: a wrong password is refused by digest, before D16.
    wrong = sip_edge.sipp(
        "uac_auth_refused.xml",
        keys={"user": user, "realm": REALM},
        args=("-au", user, "-ap", "not-the-password", "-s", number),
    )
    assert wrong.status_lines[-1] == "SIP/2.0 403 Forbidden"


def test_account_limit_is_set_shown_and_cleared_with_the_cli(sip_edge: Edge) -> None:
    client = sip_edge.account()
    conn_id = ip_connection(client, "127.0.0.31")
    user_id = user_id_of(sip_edge, conn_id)
    shown = trunkline(sip_edge, "accounts", "show", "--user-id", user_id)
    assert (shown.returncode, shown.stdout.strip()) == (0, f"user {user_id}: concurrent calls unlimited")
    done = trunkline(sip_edge, "accounts", "set-limits", "--user-id", user_id, "--concurrent-calls", "0")
    assert done.returncode == 0, done.stderr
    assert trunkline(sip_edge, "accounts", "show", "--user-id", user_id).stdout.strip() == (
        f"user {user_id}: concurrent calls 0"
    )
    ready(sip_edge, "127.0.0.31", conn_id)
    number = service_name()
    refused = dial(sip_edge, "127.0.0.31", number, refused=True)
    assert refused.status_lines == ["SIP/2.0 403 User channel limit exceeded D1"]
    assert not upstream_invites(sip_edge, number)
    cleared = trunkline(
        sip_edge, "accounts", "set-limits", "--user-id", user_id, "--concurrent-calls", "none"
    )
    assert cleared.returncode == 0, cleared.stderr
    assert trunkline(sip_edge, "accounts", "show", "--user-id", user_id).stdout.strip().endswith("unlimited")
    admitted = dial(sip_edge, "127.0.0.31", number)
    assert admitted.returncode == 0, admitted.status_lines
    assert len(upstream_invites(sip_edge, number)) == 1


def test_account_limit_rejects_a_bad_value(sip_edge: Edge) -> None:
    for value in ("-1", "many"):
        done = trunkline(sip_edge, "accounts", "set-limits", "--user-id", "x", "--concurrent-calls", value)
        assert done.returncode == 2
        assert "--concurrent-calls" in done.stderr


def test_account_limit_counts_the_calls_of_all_its_connections_with_d1(sip_edge: Edge) -> None:
    client = sip_edge.account()
    first_conn = ip_connection(client, "127.0.0.32")
    second_conn = ip_connection(client, "127.0.0.33")
    user_id = user_id_of(sip_edge, first_conn)
    set_account_limit(sip_edge, user_id, "1")
    ready(sip_edge, "127.0.0.32", first_conn)
    ready(sip_edge, "127.0.0.33", second_conn)
    up = sip_edge.sipp_background("uac.xml", local_ip="127.0.0.32", args=("-s", service_name(), "-d", "3000"))
    eventually(lambda: sip_edge.calls_of(user_id, profile="acct") == 1, timeout=10)
    number = service_name()
    refused = dial(sip_edge, "127.0.0.33", number, refused=True)
    assert up.wait(timeout=30) == 0
    assert refused.status_lines == ["SIP/2.0 403 User channel limit exceeded D1"]
    assert not upstream_invites(sip_edge, number)
    # Another account is not affected by this one's limit.
    other = sip_edge.account()
    other_conn = ip_connection(other, "127.0.0.34")
    ready(sip_edge, "127.0.0.34", other_conn)
    assert dial(sip_edge, "127.0.0.34", service_name()).returncode == 0


# --- atomic limits: simultaneous INVITEs against a limit of 1 -----------------------------------


def test_simultaneous_invites_take_a_connections_last_channel_once_d3(sip_edge: Edge) -> None:
    client = sip_edge.account()
    conn_id = ip_connection(client, "127.0.0.40", outbound={"channel_limit": 1})
    ready(sip_edge, "127.0.0.40", conn_id)
    for _ in range(ROUNDS):
        number = service_name()
        lines = race(sip_edge, number, ["127.0.0.40"] * 3, calls_each=8)
        assert len(upstream_invites(sip_edge, number)) == 1
        assert lines.count("SIP/2.0 403 Connection channel limit exceeded D3") == 23
        assert lines.count(ADMITTED) == 2  # the INVITE's and the BYE's
        eventually(lambda: sip_edge.calls_of(conn_id) == 0, timeout=5)


def test_simultaneous_invites_take_a_profiles_last_channel_once_d2(sip_edge: Edge) -> None:
    client = sip_edge.account()
    shared = client.outbound_voice_profiles.create(
        name=f"shared-{uuid.uuid4().hex[:8]}", concurrent_call_limit=1
    ).data.id
    first = ip_connection(client, "127.0.0.41", outbound={"outbound_voice_profile_id": shared})
    second = ip_connection(client, "127.0.0.42", outbound={"outbound_voice_profile_id": shared})
    ready(sip_edge, "127.0.0.41", first)
    ready(sip_edge, "127.0.0.42", second)
    for _ in range(ROUNDS):
        number = service_name()
        lines = race(sip_edge, number, ["127.0.0.41", "127.0.0.42"], calls_each=10)
        assert len(upstream_invites(sip_edge, number)) == 1
        assert lines.count("SIP/2.0 403 OB profile channel limit exceeded D2") == 19
        eventually(lambda: sip_edge.calls_of(shared, profile="ovp") == 0, timeout=5)


def test_simultaneous_invites_take_an_accounts_last_channel_once_d1(sip_edge: Edge) -> None:
    client = sip_edge.account()
    first = ip_connection(client, "127.0.0.43")
    second = ip_connection(client, "127.0.0.44")
    user_id = user_id_of(sip_edge, first)
    set_account_limit(sip_edge, user_id, "1")
    ready(sip_edge, "127.0.0.43", first)
    ready(sip_edge, "127.0.0.44", second)
    for _ in range(ROUNDS):
        number = service_name()
        lines = race(sip_edge, number, ["127.0.0.43", "127.0.0.44"], calls_each=10)
        assert len(upstream_invites(sip_edge, number)) == 1
        assert lines.count("SIP/2.0 403 User channel limit exceeded D1") == 19
        eventually(lambda: sip_edge.calls_of(user_id, profile="acct") == 0, timeout=5)


def _registered_phone(edge: Edge, client: telnyx.Telnyx, address: str, **fields: Any) -> tuple[str, int]:
    user = new_user()
    # Calls between the account's own connections: SIP URI calling must allow them (D30 otherwise).
    fields.setdefault("sip_uri_calling_preference", "internal")
    client.credential_connections.create(connection_name=user, user_name=user, password=PASSWORD, **fields)
    port = free_udp_tcp_port(address)
    assert edge.register(user, PASSWORD, local_ip=address, local_port=port).returncode == 0
    return user, port


def test_simultaneous_calls_take_a_registered_users_last_inbound_channel_once_d4(sip_edge: Edge) -> None:
    client = sip_edge.account()
    callers = [ip_connection(client, "127.0.0.60"), ip_connection(client, "127.0.0.61")]
    ready(sip_edge, "127.0.0.60", callers[0])
    ready(sip_edge, "127.0.0.61", callers[1])
    user, port = _registered_phone(sip_edge, client, "127.0.0.62", inbound={"channel_limit": 1})
    callee = user_connection(sip_edge, user)
    for _ in range(ROUNDS):
        phone = sip_edge.sipp_background("uas.xml", local_ip="127.0.0.62", local_port=port)
        lines = race(sip_edge, user, ["127.0.0.60", "127.0.0.61"], calls_each=10)
        assert lines.count("SIP/2.0 486 User Busy D4") == 19
        assert lines.count(ADMITTED) == 2  # the one admitted call's INVITE and BYE
        assert phone.wait(timeout=30) == 0  # it answered its one call (-m 1) and no other reached it
        eventually(lambda: sip_edge.calls_of(callee, profile="inc") == 0, timeout=5)


def test_a_cancelled_call_gives_its_channels_back(sip_edge: Edge) -> None:
    client = sip_edge.account()
    caller = ip_connection(client, "127.0.0.45", outbound={"channel_limit": 1})
    ready(sip_edge, "127.0.0.45", caller)
    user, port = _registered_phone(sip_edge, client, "127.0.0.46", inbound={"channel_limit": 1})
    phone = sip_edge.sipp_background("uas_ring.xml", local_ip="127.0.0.46", local_port=port)
    cancelled = sip_edge.sipp("uac_cancel.xml", local_ip="127.0.0.45", args=("-s", user, "-d", "300"))
    assert cancelled.returncode == 0, cancelled.status_lines
    assert phone.wait(timeout=30) == 0
    callee = user_connection(sip_edge, user)
    eventually(lambda: (sip_edge.calls_of(caller), sip_edge.calls_of(callee, profile="inc")) == (0, 0))


def test_a_failed_call_gives_its_channels_back(sip_edge: Edge) -> None:
    client = sip_edge.account()
    caller = ip_connection(client, "127.0.0.47", outbound={"channel_limit": 1})
    ready(sip_edge, "127.0.0.47", caller)
    user, port = _registered_phone(sip_edge, client, "127.0.0.48", inbound={"channel_limit": 1})
    phone = sip_edge.sipp_background("uas_busy.xml", local_ip="127.0.0.48", local_port=port)
    busy = sip_edge.sipp("uac_refused.xml", local_ip="127.0.0.47", args=("-s", user))
    assert busy.status_lines[-1] == "SIP/2.0 486 Busy Here"  # the phone's own answer, relayed
    assert phone.wait(timeout=30) == 0
    callee = user_connection(sip_edge, user)
    eventually(lambda: (sip_edge.calls_of(caller), sip_edge.calls_of(callee, profile="inc")) == (0, 0))


# --- recognition: address (never port), tech prefix, token, FQDN credentials -------------------


def test_tech_prefix_tells_apart_connections_sharing_an_address(sip_edge: Edge) -> None:
    client = sip_edge.account()
    # Two IP records on one address (the store keeps address+port unique); the port plays no part.
    first = ip_connection(client, "127.0.0.50", port=5060, outbound={"tech_prefix": "1234"})
    second = ip_connection(client, "127.0.0.50", port=5062, outbound={"tech_prefix": "5678"})
    ready(sip_edge, "127.0.0.50", first, second)
    for prefix, conn_id in (("1234", first), ("5678", second)):
        number = service_name()
        result = dial(sip_edge, "127.0.0.50", prefix + number, local_port=free_udp_tcp_port("127.0.0.50"))
        assert result.returncode == 0, result.status_lines
        # The prefix is stripped before routing: the upstream sees the number alone.
        invites = upstream_invites(sip_edge, number)
        assert len(invites) == 1 and not upstream_invites(sip_edge, prefix + number)
        assert header(invites[0], "X-Connection-Id") == conn_id


@pytest.mark.parametrize("dialled", ["wrong", "missing"])
def test_a_wrong_or_missing_tech_prefix_is_challenged_with_407(sip_edge: Edge, dialled: str) -> None:
    client = sip_edge.account()
    address = "127.0.0.51" if dialled == "wrong" else "127.0.0.58"
    conn_id = ip_connection(client, address, outbound={"tech_prefix": "4321"})
    ready(sip_edge, address, conn_id)
    number = service_name()
    result = dial(sip_edge, address, ("9999" + number) if dialled == "wrong" else number, refused=True)
    assert result.status_lines == ["SIP/2.0 407 Proxy Authentication Required"]
    assert "Proxy-Authenticate: Digest" in result.messages
    assert not upstream_invites(sip_edge, number) and not upstream_invites(sip_edge, "9999" + number)


def test_token_tells_apart_connections_sharing_an_address(sip_edge: Edge) -> None:
    client = sip_edge.account()
    tokens = [f"tok-{uuid.uuid4().hex[:16]}", f"tok-{uuid.uuid4().hex[:16]}"]
    conns = [
        ip_connection(
            client,
            "127.0.0.52",
            port=5060 + n,
            outbound={"ip_authentication_method": "token", "ip_authentication_token": token},
        )
        for n, token in enumerate(tokens)
    ]
    ready(sip_edge, "127.0.0.52", *conns)
    for token, conn_id in zip(tokens, conns, strict=True):
        number = service_name()
        result = dial(sip_edge, "127.0.0.52", number, extra=f"X-Telnyx-Token: {token}")
        assert result.returncode == 0, result.status_lines
        (invite,) = upstream_invites(sip_edge, number)
        assert header(invite, "X-Connection-Id") == conn_id
        assert header(invite, "X-Telnyx-Token") is None  # not passed on to the carrier


def test_a_wrong_or_missing_token_is_refused_with_d29(sip_edge: Edge) -> None:
    client = sip_edge.account()
    outbound = {"ip_authentication_method": "token", "ip_authentication_token": f"tok-{uuid.uuid4().hex}"}
    conn_id = ip_connection(client, "127.0.0.53", outbound=outbound)
    ready(sip_edge, "127.0.0.53", conn_id)
    number = service_name()
    wrong = dial(sip_edge, "127.0.0.53", number, refused=True, extra="X-Telnyx-Token: not-this-one")
    assert wrong.status_lines == ["SIP/2.0 403 Invalid X-Telnyx-Token not-this-one or IP 127.0.0.53 D29"]
    missing = dial(sip_edge, "127.0.0.53", number, refused=True)
    # RC's template with an empty token: "Invalid X-Telnyx-Token #{token} or IP #{ip} D29".
    assert missing.status_lines == ["SIP/2.0 403 Invalid X-Telnyx-Token  or IP 127.0.0.53 D29"]
    assert not upstream_invites(sip_edge, number)
    # The right token from an address that is not the connection's is not recognised at all.
    token = outbound["ip_authentication_token"]
    elsewhere = dial(sip_edge, "127.0.0.54", number, refused=True, extra=f"X-Telnyx-Token: {token}")
    assert elsewhere.status_lines == ["SIP/2.0 403 Forbidden - source not allowed"]


def test_the_source_port_never_picks_the_connection(sip_edge: Edge) -> None:
    client = sip_edge.account()
    port = free_udp_tcp_port("127.0.0.55")
    # The second connection's IP record names the port the call comes from; the prefix still decides.
    first = ip_connection(client, "127.0.0.55", port=5060, outbound={"tech_prefix": "1111"})
    second = ip_connection(client, "127.0.0.55", port=port, outbound={"tech_prefix": "2222"})
    ready(sip_edge, "127.0.0.55", first, second)
    number = service_name()
    assert dial(sip_edge, "127.0.0.55", "1111" + number, local_port=port).returncode == 0
    (invite,) = upstream_invites(sip_edge, number)
    assert header(invite, "X-Connection-Id") == first


def _fqdn_connection(edge: Edge, client: telnyx.Telnyx, address: str, method: str) -> Any:
    created = client.fqdn_connections.create(
        connection_name="carrier",
        outbound={"outbound_voice_profile_id": profile(client), "ip_authentication_method": method},
    ).data
    name = f"pbx-{uuid.uuid4().hex[:8]}.example.test"
    from trunkline.sip.state import Address

    edge.resolver.answers[name] = frozenset({Address(address, 5060)})
    user_id = user_id_of(edge, created.id)

    async def add_fqdn(conn: Any) -> None:
        stamp = ids.now()
        await store_fqdns.insert(
            conn,
            id=ids.numeric_id(),
            user_id=user_id,
            connection_id=created.id,
            fqdn=name,
            dns_record_type="a",
            port=5060,
            created_at=stamp,
            updated_at=stamp,
        )
        await changes.bump(conn, changes.ACL)

    edge.db(add_fqdn)
    ready(edge, address, created.id)
    return created


def test_fqdn_connection_with_ip_authentication_is_recognised_by_address(sip_edge: Edge) -> None:
    client = sip_edge.account()
    _fqdn_connection(sip_edge, client, "127.0.0.56", "ip-authentication")
    number = service_name()
    assert dial(sip_edge, "127.0.0.56", number).returncode == 0
    assert len(upstream_invites(sip_edge, number)) == 1


def test_fqdn_connection_with_credential_authentication_needs_its_credentials(sip_edge: Edge) -> None:
    client = sip_edge.account()
    created = _fqdn_connection(sip_edge, client, "127.0.0.57", "credential-authentication")
    number = service_name()
    # Its address alone is not enough: challenged.
    bare = dial(sip_edge, "127.0.0.57", number, refused=True)
    assert bare.status_lines == ["SIP/2.0 407 Proxy Authentication Required"]
    assert not upstream_invites(sip_edge, number)
    # With the connection's generated user name and password, the call goes through.
    authed = sip_edge.sipp(
        "uac_auth.xml",
        local_ip="127.0.0.57",
        keys={"user": created.user_name, "realm": REALM},
        args=("-au", created.user_name, "-ap", created.password, "-s", number, "-d", "50"),
    )
    assert authed.returncode == 0, authed.status_lines
    (invite,) = upstream_invites(sip_edge, number)
    assert header(invite, "X-Connection-Id") == created.id
