"""SHA-256 digest (RFC 8760), selected by a setting: SIPp 3.6 speaks only MD5, so a tiny client here."""

from __future__ import annotations

import hashlib
import re
import secrets
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import test_settings
from tests.sip.conftest import REALM, Edge, FakeResolver, free_udp_tcp_port
from trunkline import edge as edge_wiring
from trunkline.sip.service import EdgeService

pytestmark = pytest.mark.sip


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def register(port: int, user: str, password: str) -> tuple[str, int]:
    """REGISTER with SHA-256 digest; (the challenge's algorithm, the final status code)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(3)
    host, local = sock.getsockname()
    uri, call_id = f"sip:127.0.0.1:{port}", uuid.uuid4().hex

    def send(cseq: int, extra: str = "") -> str:
        sock.sendto(
            (
                f"REGISTER {uri} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {host}:{local};branch=z9hG4bK{secrets.token_hex(6)}\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:{user}@{REALM}>;tag=t{cseq}\r\nTo: <sip:{user}@{REALM}>\r\n"
                f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{host}:{local}>\r\n"
                f"Expires: 60\r\n{extra}Content-Length: 0\r\n\r\n"
            ).encode(),
            ("127.0.0.1", port),
        )
        return sock.recv(65535).decode()

    try:
        challenge = send(1)
        params = dict(
            re.findall(r'(\w+)="?([^",\r\n]+)"?', challenge.split("WWW-Authenticate: Digest", 1)[1])
        )
        ha1 = sha256(f"{user}:{params['realm']}:{password}")
        cnonce, nc = secrets.token_hex(4), "00000001"
        response = sha256(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{sha256(f'REGISTER:{uri}')}")
        auth = (
            f'Authorization: Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}", '
            f'uri="{uri}", response="{response}", algorithm=SHA-256, qop=auth, nc={nc}, cnonce="{cnonce}"\r\n'
        )
        final = send(2, auth)
        return params.get("algorithm", "MD5"), int(final.split(" ", 2)[1])
    finally:
        sock.close()


@pytest.fixture(scope="module")
def sha256_edge(sip_edge: Edge, database_url: str, backend: str) -> Iterator[int]:
    """A second edge on the same database, configured for SHA-256."""
    workdir = Path(tempfile.mkdtemp(prefix="tl-sip-sha256-"))
    port = free_udp_tcp_port()
    settings = test_settings(
        database_url,
        sip_dir=workdir,
        sip_port=port,
        sip_tls_port=free_udp_tcp_port(),
        sip_realm=REALM,
        sip_auth_algorithm="SHA-256",
        sip_database_url=database_url.replace("//postgres@", "//trunkline_kamailio@", 1)
        if backend == "postgresql"
        else None,
    )
    # Other tests' FQDN connections in the database resolve through the fake resolver, never DNS.
    service: EdgeService = edge_wiring.service(settings, resolver=FakeResolver()).start_in_thread()
    try:
        yield port
    finally:
        service.stop_thread()
        shutil.rmtree(workdir, ignore_errors=True)


def test_sha256_setting_challenges_with_sha256_and_accepts_the_right_password(
    sip_edge: Edge, sha256_edge: int
) -> None:
    client = sip_edge.account()
    user = "s" + uuid.uuid4().hex[:12]
    client.credential_connections.create(connection_name=user, user_name=user, password="sha-pass-123")
    assert register(sha256_edge, user, "sha-pass-123") == ("SHA-256", 200)
    assert register(sha256_edge, user, "wrong-pass-123") == ("SHA-256", 403)
