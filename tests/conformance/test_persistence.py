"""Data outlives the server: what one server process wrote, the next one on the same database serves."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import telnyx

from tests import conftest
from tests.conformance._connections import address, token, user_name
from tests.conftest import mint_key
from tests.server import LiveServer
from tests.services import free_port


@contextmanager
def live(database_url: str) -> Iterator[LiveServer]:
    server = LiveServer(conftest.test_settings(database_url)).start()
    try:
        yield server
    finally:
        server.stop()


def sdk(api: str, key: str) -> telnyx.Telnyx:
    return telnyx.Telnyx(api_key=key, base_url=api, max_retries=0, _strict_response_validation=True)


def wire(model: Any) -> dict[str, Any]:
    return model.to_dict(mode="json")  # type: ignore[no-any-return]


def populate(client: telnyx.Telnyx, http: httpx.Client) -> dict[str, Any]:
    """One record of every connection kind, with IPs, an FQDN and a profile where the routes exist."""
    made: dict[str, Any] = {}
    r = http.post("/outbound_voice_profiles", json={"name": "persisted"})
    profile_id = r.json()["data"]["id"] if r.status_code in (200, 201) else None
    outbound = {"outbound_voice_profile_id": profile_id} if profile_id else {}
    made["credential"] = client.credential_connections.create(
        connection_name="kept",
        user_name=user_name(),
        password="persisted-pw",
        tags=["a"],
        inbound={"channel_limit": 3},
        outbound=outbound,
    ).data
    made["fqdn"] = client.fqdn_connections.create(
        connection_name="kept-fqdn", outbound={"ip_authentication_token": token()}
    ).data
    made["ip"] = client.ip_connections.create(
        connection_name="kept-ip", outbound={"tech_prefix": "4321"}
    ).data
    made["ip_record"] = client.ips.create(ip_address=address(), port=5070, connection_id=made["ip"].id).data
    made["ip"] = client.ip_connections.update(
        made["ip"].id, inbound={"default_primary_ip_id": made["ip_record"].id}
    ).data
    r = http.post(
        "/fqdns",
        json={
            "connection_id": made["fqdn"].id,
            "fqdn": f"{made['fqdn'].id}.example.com",
            "dns_record_type": "srv",
        },
    )
    made["fqdn_record"] = r.json()["data"] if r.status_code == 201 else None
    made["profile_id"] = profile_id
    return made


def check(client: telnyx.Telnyx, http: httpx.Client, made: dict[str, Any]) -> None:
    cred = client.credential_connections.retrieve(made["credential"].id).data
    assert wire(cred) == {**wire(made["credential"]), "password": "********"}
    assert wire(client.fqdn_connections.retrieve(made["fqdn"].id).data) == {
        **wire(made["fqdn"]),
        "password": "********",
    }
    assert wire(client.ip_connections.retrieve(made["ip"].id).data) == wire(made["ip"])
    assert wire(client.ips.retrieve(made["ip_record"].id).data) == wire(made["ip_record"])
    assert {c.id for c in client.connections.list()} == {
        made["credential"].id,
        made["fqdn"].id,
        made["ip"].id,
    }
    if made["fqdn_record"] is not None:
        assert http.get(f"/fqdns/{made['fqdn_record']['id']}").json()["data"] == made["fqdn_record"]
        listed = client.connections.list(filter={"fqdn": made["fqdn_record"]["fqdn"]})
        assert [c.id for c in listed] == [made["fqdn"].id]
    if made["profile_id"] is not None:
        profile = http.get(f"/outbound_voice_profiles/{made['profile_id']}").json()["data"]
        assert profile["connections_count"] == 1
    status = client.credential_connections.actions.check_registration_status(made["credential"].id).data
    assert status is not None and status.status == "Not Registered"
    # Uniqueness lives in the database, not in the process that saw the first create.
    r = http.post(
        "/credential_connections",
        json={
            "connection_name": "dup",
            "user_name": made["credential"].user_name.upper(),
            "password": "p" * 8,
        },
    )
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "10012"


def test_restart_keeps_every_record(database_url: str) -> None:
    key = mint_key(database_url, f"user-{uuid.uuid4().hex[:10]}")
    auth = {"Authorization": f"Bearer {key}"}
    with (
        live(database_url) as first,
        sdk(first.api, key) as client,
        httpx.Client(base_url=first.api, headers=auth) as http,
    ):
        made = populate(client, http)
        check(client, http, made)
    with (
        live(database_url) as second,
        sdk(second.api, key) as client,
        httpx.Client(base_url=second.api, headers=auth) as http,
    ):
        check(client, http, made)
        # And the new process keeps writing where the old one left off.
        client.ip_connections.delete(made["ip"].id)
        with pytest.raises(telnyx.NotFoundError):
            client.ips.retrieve(made["ip_record"].id)
    with live(database_url) as third, sdk(third.api, key) as client:
        assert {c.id for c in client.connections.list()} == {made["credential"].id, made["fqdn"].id}


def test_restart_keeps_updates_and_deletes(database_url: str) -> None:
    key = mint_key(database_url, f"user-{uuid.uuid4().hex[:10]}")
    with live(database_url) as first, sdk(first.api, key) as client:
        kept = client.ip_connections.create(connection_name="before").data
        gone = client.ip_connections.create(connection_name="gone").data
        updated = client.ip_connections.update(
            kept.id, connection_name="after", inbound={"timeout_1xx_secs": 11}
        ).data
        client.ip_connections.delete(gone.id)
    with live(database_url) as second, sdk(second.api, key) as client:
        assert wire(client.ip_connections.retrieve(kept.id).data) == wire(updated)
        with pytest.raises(telnyx.NotFoundError):
            client.ip_connections.retrieve(gone.id)


def _serve(database_url: str, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "TRUNKLINE_DATABASE_URL": database_url}
    return subprocess.Popen(
        [sys.executable, "-m", "trunkline", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


@contextmanager
def served(database_url: str) -> Iterator[str]:
    """`trunkline serve` as an operator runs it, in its own process; yields the API base URL."""
    port = free_port()
    proc = _serve(database_url, port)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"trunkline serve did not become ready: {proc.communicate()[0]}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v2"
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_restart_of_trunkline_serve_keeps_records_on_sqlite(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'served.db'}"
    key = None
    with served(database_url) as api:
        key = mint_key(database_url, "served-user")
        with sdk(api, key) as client:
            cred = client.credential_connections.create(
                connection_name="served", user_name=user_name(), password="served-password"
            ).data
            ip = client.ip_connections.create(connection_name="served-ip").data
    with served(database_url) as api, sdk(api, key) as client:
        assert wire(client.credential_connections.retrieve(cred.id).data) == {
            **wire(cred),
            "password": "********",
        }
        assert wire(client.ip_connections.retrieve(ip.id).data) == wire(ip)
        assert [c.id for c in client.connections.list(sort="created_at")] == [cred.id, ip.id]
