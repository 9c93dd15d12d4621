"""TrunklineServer as another test runner uses it: started here, or the server at TRUNKLINE_URL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.services import free_port
from trunkline.testing import Account, ControlError, TrunklineServer, TrunklineStartError
from trunkline.testing.server import parse_ready_line


@pytest.fixture(autouse=True)
def _no_server_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRUNKLINE_URL", "TRUNKLINE_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def started() -> Iterator[TrunklineServer]:
    with TrunklineServer() as server:
        yield server


def test_a_started_server_gives_accounts_walled_off_from_each_other(started: TrunklineServer) -> None:
    assert started.base_url.startswith("http://127.0.0.1:") and started.base_url.endswith("/v2")
    one, two = started.new_account(), started.new_account()
    assert one.user_id != two.user_id and one.key != two.key
    headers = {"Authorization": f"Bearer {one.key}"}
    r = httpx.post(f"{one.base_url}/ip_connections", headers=headers, json={"connection_name": "pbx"})
    assert r.status_code == 201, r.text
    assert [c["connection_name"] for c in one.snapshot()["connections"]] == ["pbx"]
    assert two.snapshot()["connections"] == []
    assert two.requests() == [] and len(one.requests()) == 1
    assert one.reset()["connections"] == 1
    assert one.snapshot()["connections"] == []
    # The account of the ready line's key is there too.
    assert isinstance(started.account, Account) and started.account.user_id == "test"


def test_a_named_and_a_read_only_account(started: TrunklineServer) -> None:
    reader = started.new_account("named-reader", read_only=True)
    assert (reader.user_id, reader.read_only) == ("named-reader", True)
    r = httpx.post(
        f"{reader.base_url}/ip_connections",
        headers={"Authorization": f"Bearer {reader.key}"},
        json={"connection_name": "pbx"},
    )
    assert r.status_code == 403


def test_a_refused_control_call_says_why(started: TrunklineServer) -> None:
    account = started.new_account()
    with pytest.raises(ControlError) as caught:
        account.fault("/not-v2", status=429)
    assert caught.value.status == 422
    assert "POST /_trunkline/faults answered 422" in str(caught.value)
    assert "/v2" in str(caught.value)  # the server's detail: faults apply to /v2 paths
    with pytest.raises(ControlError) as caught:
        account.clear_faults("no-such-rule")
    assert caught.value.status == 404


def test_faults_listed_and_cleared(started: TrunklineServer) -> None:
    account = started.new_account()
    rule = account.fault("/v2/ips/*", method="GET", status=503, times=2)
    assert rule["remaining"] == 2
    assert [f["id"] for f in account.faults()] == [rule["id"]]
    account.clear_faults(rule["id"])
    assert account.faults() == []
    account.fault("/v2/**", latency_ms=1)
    account.clear_faults()
    assert account.faults() == []


def test_stop_ends_the_process_and_removes_its_files(tmp_path: Path) -> None:
    server = TrunklineServer(env={"TMPDIR": str(tmp_path)}).start()
    log = server.log_path
    assert log is not None and log.exists()
    origin = server.base_url.removesuffix("/v2")
    assert httpx.get(f"{origin}/health").status_code == 200
    server.stop()
    assert not log.exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith("trunkline-ephemeral-")] == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{origin}/health")


def test_a_failed_start_shows_the_servers_error() -> None:
    with pytest.raises(TrunklineStartError) as caught:
        TrunklineServer(args=["--api-key", "short"]).start()
    message = str(caught.value)
    assert "exited with status 2 before it was ready" in message
    assert "20 to 200 characters" in message  # the server's own stderr


def test_a_start_that_takes_too_long_is_given_up(tmp_path: Path) -> None:
    # A stand-in for the interpreter that logs a line and never becomes ready.
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho still starting >&2\nexec sleep 30\n")
    fake.chmod(0o755)
    start = time.monotonic()
    with pytest.raises(TrunklineStartError) as caught:
        TrunklineServer(python=str(fake), startup_timeout=1).start()
    assert time.monotonic() - start < 10
    assert "no ready line within 1 s" in str(caught.value)
    assert "still starting" in str(caught.value)


def test_the_ready_line_parser() -> None:
    fields = parse_ready_line("trunkline ready url=http://127.0.0.1:1/v2 key=K user_id=u admin_token=T")
    assert fields == {"url": "http://127.0.0.1:1/v2", "key": "K", "user_id": "u", "admin_token": "T"}
    with pytest.raises(ValueError, match="lacks admin_token"):
        parse_ready_line("trunkline ready url=http://x/v2 key=K user_id=u")


# ---------------------------------------------------------------------------------------------------
# TRUNKLINE_URL


def _serve(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.Popen[str], str]:
    """`trunkline serve` on a database in tmp_path (not ephemeral): the server a team keeps running."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "trunkline", "serve", "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TRUNKLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'kept.db'}", **env},
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return proc, f"http://127.0.0.1:{port}"
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("trunkline serve did not start")


def _end(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)


def test_the_server_at_trunkline_url_is_used_and_left_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc, origin = _serve(tmp_path, "--control", TRUNKLINE_ADMIN_TOKEN="admin-token-for-tests-0001")
    try:
        monkeypatch.setenv("TRUNKLINE_URL", f"{origin}/v2")
        monkeypatch.setenv("TRUNKLINE_ADMIN_TOKEN", "admin-token-for-tests-0001")
        with TrunklineServer() as server:
            assert server.base_url == f"{origin}/v2"
            assert not server.started_here and server.account is None
            account = server.new_account()
            r = httpx.get(
                f"{account.base_url}/connections", headers={"Authorization": f"Bearer {account.key}"}
            )
            assert r.status_code == 200, r.text
        assert proc.poll() is None  # not ours to stop
        assert httpx.get(f"{origin}/health").status_code == 200
    finally:
        _end(proc)


def test_trunkline_url_without_the_control_api_or_the_token_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc, origin = _serve(tmp_path)
    try:
        monkeypatch.setenv("TRUNKLINE_URL", origin)
        with TrunklineServer() as server, pytest.raises(TrunklineStartError, match="TRUNKLINE_ADMIN_TOKEN"):
            server.new_account()
        with (
            TrunklineServer(admin_token="whatever-token-000") as server,
            pytest.raises(TrunklineStartError, match="--control"),
        ):
            server.new_account()
    finally:
        _end(proc)
    with pytest.raises(TrunklineStartError, match="no trunkline answers"):
        TrunklineServer(url=origin).start()
    with pytest.raises(TrunklineStartError, match="not a URL"):
        TrunklineServer(url="127.0.0.1:8080").start()
