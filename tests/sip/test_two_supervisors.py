"""One supervisor per SIP directory: a second one refuses and leaves the first alone; a stale one is
replaced.

The first supervisor is the `sip_edge` fixture's, in this process; the second is a real `trunkline sip`
(or `serve --sip`) started in the same TRUNKLINE_SIP_DIR. The directory's lock (sip/owner.py) is what
tells a live supervisor from a Kamailio left behind by one that was SIGKILLed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import telnyx

from tests.conftest import test_settings
from tests.processes import alive
from tests.services import free_port, missing
from tests.sip.conftest import REALM, Edge, FakeResolver, eventually, free_udp_tcp_port
from trunkline import edge as edge_wiring
from trunkline.config import Settings
from trunkline.sip.rpc import KamailioError, RpcClient
from trunkline.sip.supervisor import State

pytestmark = pytest.mark.sip

PASSWORD = "correct-horse-1"
REFUSAL_SECONDS = 30.0


def trunkline(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "trunkline", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def finish(proc: subprocess.Popen[str], timeout: float) -> tuple[int | None, str]:
    """Wait for `proc` to exit; if it does not, stop it (SIGTERM lets it stop its own Kamailio)."""
    try:
        _, err = proc.communicate(timeout=timeout)
        return proc.returncode, err
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        return None, err


def edge_env(settings: Settings) -> dict[str, str]:
    env = {
        "TRUNKLINE_DATABASE_URL": settings.database_url,
        "TRUNKLINE_SIP_DIR": str(settings.sip_dir),
        "TRUNKLINE_SIP_REALM": settings.sip_realm,
        "TRUNKLINE_LOG_LEVEL": "info",
    }
    if settings.sip_database_url:
        env["TRUNKLINE_SIP_DATABASE_URL"] = settings.sip_database_url
    if settings.sip_tls_port is not None:
        env["TRUNKLINE_SIP_TLS_PORT"] = str(settings.sip_tls_port)
    return env


def answers(rpc: RpcClient) -> bool:
    try:
        rpc.call("core.version")
    except KamailioError:
        return False
    return True


def new_user() -> str:
    return "u" + uuid.uuid4().hex[:12]


@pytest.mark.parametrize(
    "command", [["sip"], ["serve", "--sip"]], ids=["trunkline sip", "trunkline serve --sip"]
)
def test_a_second_supervisor_in_the_same_directory_refuses_and_touches_nothing(
    sip_edge: Edge, command: list[str]
) -> None:
    supervisor = sip_edge.service.supervisor
    first_pid = supervisor.pid
    assert first_pid is not None and supervisor.state is State.RUNNING
    pid_file = supervisor.pid_path.read_text()
    config = supervisor.config_path.read_text()
    config_mtime = supervisor.config_path.stat().st_mtime_ns
    log_offset = supervisor.log_path.stat().st_size
    restarts = supervisor.restarts

    env = {
        "TRUNKLINE_DATABASE_URL": sip_edge.database_url,
        "TRUNKLINE_SIP_DIR": str(sip_edge.workdir),
        "TRUNKLINE_SIP_REALM": REALM,
    }
    args = [*command, "--sip-port", str(sip_edge.sip_port)]
    if command[0] == "serve":
        args += ["--port", str(free_port())]
    started = time.monotonic()
    code, err = finish(trunkline(*args, env=env), REFUSAL_SECONDS)
    took = time.monotonic() - started

    assert code == 1, f"the second supervisor did not refuse (exit {code}):\n{err[-3000:]}"
    assert took < 15, f"refusing took {took:.1f} s"
    assert f"pid {os.getpid()}" in err  # the first supervisor is this test process
    assert "TRUNKLINE_SIP_DIR" in err and str(sip_edge.workdir) in err
    assert "Traceback" not in err

    time.sleep(3)  # a second supervisor that took over would have restarted or killed by now
    assert supervisor.pid == first_pid and supervisor.state is State.RUNNING
    assert supervisor.restarts == restarts
    assert alive(first_pid)
    assert supervisor.pid_path.read_text() == pid_file
    assert supervisor.config_path.read_text() == config
    assert supervisor.config_path.stat().st_mtime_ns == config_mtime
    assert answers(sip_edge.rpc)
    with supervisor.log_path.open("rb") as log:
        log.seek(log_offset)
        assert b"ERROR" not in log.read()

    client: telnyx.Telnyx = sip_edge.account()
    user = new_user()
    client.credential_connections.create(connection_name=user, user_name=user, password=PASSWORD)
    result = sip_edge.register(user, PASSWORD)
    assert result.status_lines == ["SIP/2.0 401 Unauthorized", "SIP/2.0 200 OK"], result.stderr


@pytest.fixture
def sip_dir(backend: str) -> Iterator[Path]:
    for tool in ("kamailio",):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            missing(f"{tool} is not installed (apt-get install kamailio kamailio-sqlite-modules)")
    workdir = Path(tempfile.mkdtemp(prefix=f"tl-sip-stale-{backend}-"))
    yield workdir
    shutil.rmtree(workdir, ignore_errors=True)


def test_a_kamailio_left_by_a_killed_supervisor_is_stopped_and_the_edge_starts(
    database_url: str, backend: str, sip_dir: Path
) -> None:
    overrides: dict[str, object] = {
        "sip_dir": sip_dir,
        "sip_port": free_udp_tcp_port(),
        "sip_tls_port": free_udp_tcp_port(),
        "sip_realm": REALM,
    }
    if backend == "postgresql":
        overrides["sip_database_url"] = database_url.replace("//postgres@", "//trunkline_kamailio@", 1)
    settings = test_settings(database_url, **overrides)
    rpc = RpcClient(edge_wiring.edge_config(settings).rpc_socket, timeout=1.0)
    pid_path = sip_dir / "kamailio.pid"

    # A supervisor that dies without stopping its Kamailio (SIGKILL): Kamailio, in a session of its
    # own, keeps running and keeps the port, the pid file names it, and nobody holds the lock.
    first = trunkline("sip", "--sip-port", str(settings.sip_port), env=edge_env(settings))
    stale_pid: int | None = None
    service = None
    try:
        eventually(lambda: pid_path.exists() and answers(rpc), timeout=30)
        stale_pid = int(pid_path.read_text())
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert alive(stale_pid) and answers(rpc)

        service = edge_wiring.service(settings, resolver=FakeResolver()).start_in_thread()
        supervisor = service.supervisor
        assert supervisor.state is State.RUNNING
        assert supervisor.pid is not None and supervisor.pid != stale_pid
        assert not alive(stale_pid)
        assert int(pid_path.read_text()) == supervisor.pid
        assert answers(rpc)
    finally:
        if service is not None:
            service.stop_thread()
        if first.poll() is None:
            first.kill()
            first.wait(timeout=10)
        if stale_pid is not None and alive(stale_pid):
            os.killpg(stale_pid, signal.SIGKILL)
