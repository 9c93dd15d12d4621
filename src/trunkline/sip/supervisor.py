"""Owns the Kamailio process: render and validate its config, start it, watch it, restart it, stop it.

The only code in trunkline that spawns processes. A supervisor owns its directory (sip/owner.py)
from its first start to its stop: a second one there refuses to start and touches nothing. States
are explicit and every transition is logged::

    stopped → starting → running → (died) → failed → starting …
                      ↘ failed (bad config, port taken, no answer)      running → stopping → stopped
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from trunkline.sip import certs, edge_db, process_group, render
from trunkline.sip.owner import DirectoryLock
from trunkline.sip.rpc import KamailioError, RpcClient
from trunkline.sip.state import EdgeConfig

log = logging.getLogger("trunkline.sip")

INSTALL_HINT = (
    "apt-get install -y kamailio kamailio-sqlite-modules kamailio-postgres-modules kamailio-python3-modules"
    " kamailio-tls-modules"
    " (then `systemctl disable --now kamailio`: the package's own service would take port 5060)"
)
# Kamailio waits ser_kill_timeout (5 s, set in the config) for its children after SIGTERM.
STOP_GRACE_SECONDS = 8.0
READY_TIMEOUT_SECONDS = 15.0
MAX_BACKOFF_SECONDS = 30.0
# Kamailio's shared memory (-m, MB): transactions, dialogs and htables live there. The default 64 MB
# ran out at 300 call setups/s (benchmarks/call_setup.py: "out of mem" in tm at 64 MB in use).
SHM_MB = 256
# Health checks of a running Kamailio: one RPC call every PROBE_SECONDS; so many misses in a row
# (each waits the RPC timeout) mean it is wedged and is restarted.
PROBE_SECONDS = 5.0
MAX_MISSED_PROBES = 3


class State(enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"
    STOPPING = "stopping"


class KamailioMissing(RuntimeError):
    """The kamailio binary is not installed."""


class KamailioConfigInvalid(RuntimeError):
    """`kamailio -c` rejected the rendered configuration."""


class Supervisor:
    """Runs one Kamailio for one EdgeConfig in the config's runtime directory."""

    def __init__(
        self,
        config: EdgeConfig,
        *,
        workdir: Path,
        binary: str = "kamailio",
        on_start: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.workdir = workdir
        self.binary = binary
        self.rpc = RpcClient(config.rpc_socket)
        self.owner = DirectoryLock(workdir)
        # Called after every (re)start: what Kamailio loaded at start may already be stale.
        self.on_start = on_start
        self.state = State.STOPPED
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._next_attempt = 0.0
        self._backoff = 1.0
        self._next_probe = 0.0
        self._missed_probes = 0
        self.probe_seconds = PROBE_SECONDS

    @property
    def config_path(self) -> Path:
        return self.workdir / render.CONFIG_FILE

    @property
    def log_path(self) -> Path:
        return self.workdir / "kamailio.log"

    @property
    def pid_path(self) -> Path:
        return self.workdir / "kamailio.pid"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _set(self, state: State, why: str = "") -> None:
        if state is not self.state:
            log.info("sip edge %s -> %s%s", self.state.value, state.value, f": {why}" if why else "")
            self.state = state

    def find_binary(self) -> str:
        path = shutil.which(self.binary) or shutil.which(self.binary, path="/usr/sbin:/usr/local/sbin")
        if path is None:
            raise KamailioMissing(f"'{self.binary}' was not found. Install Kamailio: {INSTALL_HINT}")
        return path

    def prepare(self) -> None:
        """Render the config, validate it with `kamailio -c`, and put it in place atomically."""
        binary = self.find_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config.run_dir.mkdir(parents=True, exist_ok=True)
        if files := self.config.sqlite_files:
            edge_db.ensure(Path(files[1]))
        # Before the config is checked: `kamailio -c` loads dispatcher, which reads its list file, and
        # app_python3, which reads its script.
        if (gateways := render.dispatcher_list(self.config)) is not None:
            _write_atomically(self.config.dispatcher_list, gateways)
        _write_atomically(self.config.python_boot, render.python_boot(self.config))
        # And the tls module, which reads its file, certificate and key.
        config = self.config
        if config.tls_generate and config.tls_cert and config.tls_key:
            certs.ensure_self_signed(
                config.tls_cert, config.tls_key, host=config.sip_host, realm=config.realm
            )
        if (tls := render.tls_config(config)) is not None:
            _write_atomically(config.tls_config, tls)
        for name, text in render.render(self.config).items():
            candidate = self.workdir / f".{name}.new"
            candidate.write_text(text)
            check = subprocess.run(
                [binary, "-c", "-f", str(candidate)], capture_output=True, text=True, timeout=30
            )
            if check.returncode != 0:
                tail = "\n".join((check.stderr or check.stdout).strip().splitlines()[-15:])
                raise KamailioConfigInvalid(f"kamailio -c rejected {name}:\n{tail}")
            os.replace(candidate, self.workdir / name)

    def start(self) -> None:
        """Start Kamailio and wait until it answers RPC; FAILED (with the log's tail) if it does not.

        Raises owner.DirectoryInUse, before writing anything, when another supervisor owns the directory.
        """
        binary = self.find_binary()
        self.owner.acquire()
        self._set(State.STARTING)
        self.prepare()
        self._reap_stale()
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - held for the life of the process
        # -DD: stay in the foreground (children still fork) so we own the process; -E: log to stderr.
        self._proc = subprocess.Popen(
            [binary, "-DD", "-E", "-m", str(SHM_MB), "-f", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() can reach every child
        )
        # Our own record (Kamailio's -P forks a process of its own): lets the next start find a
        # Kamailio that outlived a SIGKILLed supervisor.
        self.pid_path.write_text(f"{self._proc.pid}\n")
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._fail(f"kamailio exited with {self._proc.returncode} while starting")
                return
            try:
                self.rpc.call("core.version")
            except KamailioError:
                time.sleep(0.05)
                continue
            self._set(State.RUNNING, f"pid {self._proc.pid}, sip {self.sip_uri}")
            self._backoff = 1.0
            self._missed_probes = 0
            self._next_probe = time.monotonic() + self.probe_seconds
            if self.on_start is not None:
                self.on_start()
            return
        self._kill()
        self._fail(f"no RPC answer within {READY_TIMEOUT_SECONDS:.0f} s")

    @property
    def sip_uri(self) -> str:
        return f"{self.config.sip_host}:{self.config.sip_port} (udp, tcp)"

    def check(self) -> None:
        """Notice a dead or hung Kamailio and start a new one, with a growing pause between attempts."""
        if self.state is State.RUNNING and self._proc is not None and self._proc.poll() is not None:
            self._close_log()
            self._fail(f"kamailio (pid {self._proc.pid}) died with {self._proc.returncode}")
        if self.state is State.RUNNING and time.monotonic() >= self._next_probe:
            self._probe()
        if self.state is State.FAILED and time.monotonic() >= self._next_attempt:
            self.restarts += 1
            try:
                self.start()
            except (KamailioConfigInvalid, OSError) as exc:
                self._fail(str(exc))

    def _probe(self) -> None:
        """Alive is not enough: a Kamailio whose RPC stops answering (a wedged process) is replaced."""
        self._next_probe = time.monotonic() + self.probe_seconds
        try:
            self.rpc.call("core.version")
        except KamailioError as exc:
            self._missed_probes += 1
            log.warning(
                "kamailio health check failed (%d/%d): %s", self._missed_probes, MAX_MISSED_PROBES, exc
            )
            if self._missed_probes >= MAX_MISSED_PROBES:
                self._kill()
                self._close_log()
                self._fail(f"no RPC answer to {MAX_MISSED_PROBES} health checks in a row")
            return
        self._missed_probes = 0

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to the whole group if Kamailio outlives its own kill timeout; then
        give up the directory."""
        if self._proc is None:
            self._set(State.STOPPED)
            self.owner.release()
            return
        self._set(State.STOPPING)
        if self._proc.poll() is None:
            with _gone():
                os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                log.warning("kamailio did not stop in %.0f s; killing it", STOP_GRACE_SECONDS)
                self._kill()
        # Children that lost their parent must not keep the SIP port.
        with _gone():
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._close_log()
        self._proc = None
        self._set(State.STOPPED)
        self.owner.release()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _reap_stale(self) -> None:
        """Stop what is left of the last Kamailio started here: one that outlived its supervisor (e.g.
        SIGKILLed), or the workers of one whose main process died alone (sip/process_group.py). Either
        holds the SIP ports and writes Kamailio's own database.

        Called only with the directory's lock held, so the pid file is no live supervisor's.
        """
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return
        stopped = process_group.kill(pid, self.config_path)
        if stopped:
            log.warning(
                "stopped %d processes of an earlier kamailio (process group %d) that still held its ports",
                len(stopped),
                pid,
            )

    def _fail(self, why: str) -> None:
        tail = self.log_tail(8)
        self._set(State.FAILED, why + (f"\n{tail}" if tail else ""))
        self._next_attempt = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, MAX_BACKOFF_SECONDS)

    def _kill(self) -> None:
        if self._proc is None:
            return
        with _gone():
            os.killpg(self._proc.pid, signal.SIGKILL)
        with _gone():
            self._proc.wait(timeout=5)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _write_atomically(path: Path, text: str) -> None:
    candidate = path.with_name(f".{path.name}.new")
    candidate.write_text(text)
    os.replace(candidate, path)


def _gone() -> contextlib.suppress:
    """Ignore a process (group) that is already gone."""
    return contextlib.suppress(OSError, subprocess.TimeoutExpired)
