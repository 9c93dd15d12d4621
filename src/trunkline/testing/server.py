"""TrunklineServer: a trunkline for a test run, started as `trunkline serve --ephemeral` or found at
TRUNKLINE_URL.

    from trunkline.testing import TrunklineServer

    with TrunklineServer() as server:
        account = server.new_account()
        ...  # point the code under test at account.base_url with account.key

Started here, the server is a subprocess (`python -m trunkline serve --ephemeral --port 0`) with a
throw-away database; it is stopped, and its database deleted, when the block ends. With TRUNKLINE_URL
set (and TRUNKLINE_ADMIN_TOKEN, the admin token that server was started with), that server is used
and left running.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from trunkline.testing._http import ControlError, JsonClient
from trunkline.testing.account import Account, origin_of

READY_PREFIX = "trunkline ready "


class TrunklineStartError(RuntimeError):
    """The server did not start, or the one at TRUNKLINE_URL cannot be used; the message says why."""


def parse_ready_line(line: str) -> dict[str, str]:
    """The fields of `trunkline ready url=... key=... user_id=... admin_token=...`."""
    if not line.startswith(READY_PREFIX):
        raise ValueError(f"not a ready line: {line!r}")
    fields = {}
    for part in line[len(READY_PREFIX) :].split():
        name, _, value = part.partition("=")
        fields[name] = value
    missing = {"url", "key", "user_id", "admin_token"} - fields.keys()
    if missing:
        raise ValueError(f"the ready line lacks {', '.join(sorted(missing))}: {line!r}")
    return fields


class TrunklineServer:
    """A trunkline server for tests; a context manager (or call `start()` and `stop()`).

    url, admin_token: use the server there (its root or its /v2 URL) instead of starting one; when
        not given, TRUNKLINE_URL and TRUNKLINE_ADMIN_TOKEN are read.
    args: more `trunkline serve` options for a server started here (e.g. `["--seed", "state.json"]`).
    env: variables added to the started server's environment (e.g. `{"TRUNKLINE_RATE_LIMIT": "5/second"}`).
    log_path: where the started server's log (JSON lines, its stderr) goes; by default a temporary
        file, removed by `stop()`. A failed start shows its end in the error.
    """

    def __init__(
        self,
        url: str | None = None,
        admin_token: str | None = None,
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 30.0,
        log_path: str | os.PathLike[str] | None = None,
        python: str | None = None,
    ) -> None:
        self._external_url = url if url is not None else (os.environ.get("TRUNKLINE_URL") or None)
        self._admin_token = (
            admin_token if admin_token is not None else os.environ.get("TRUNKLINE_ADMIN_TOKEN")
        )
        self._args = list(args)
        self._env = dict(env or {})
        self._timeout = startup_timeout
        self._log_path = Path(log_path) if log_path is not None else None
        self._python = python or sys.executable
        self._proc: subprocess.Popen[str] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._admin: JsonClient | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._log_file: Path | None = None
        self.origin = ""
        self.account: Account | None = None  # the account of the key on the ready line (started here)

    # --- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> TrunklineServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def started_here(self) -> bool:
        return self._proc is not None

    @property
    def base_url(self) -> str:
        """The Telnyx API of this server (`http://127.0.0.1:PORT/v2`): the SDK's base_url."""
        self._require_started()
        return f"{self.origin}/v2"

    @property
    def admin_token(self) -> str | None:
        return self._admin_token

    @property
    def log_path(self) -> Path | None:
        """The started server's log file (None for a server at TRUNKLINE_URL)."""
        return self._log_file

    def start(self) -> TrunklineServer:
        if self.origin:
            return self
        if self._external_url:
            self._use_external(self._external_url)
        else:
            self._start_process()
        if self._admin_token:
            self._admin = JsonClient(self.origin, self._admin_token)
        return self

    def stop(self) -> None:
        """Stop a server started here (SIGTERM, then SIGKILL after 15 s) and remove its files."""
        if self._admin is not None:
            self._admin.close()
        if self.account is not None:
            self.account.close()
        if self._finalizer is not None:
            self._finalizer()
        self._proc = None
        self.origin = ""

    # --- accounts ----------------------------------------------------------------------------------

    def new_account(self, user_id: str | None = None, *, read_only: bool = False) -> Account:
        """A new account with its own key (`POST /_trunkline/accounts` with the admin token); by
        default a fresh user id `test-<random>`, so it shares nothing with any other."""
        self._require_started()
        if self._admin is None:
            raise TrunklineStartError(
                f"new_account() needs the admin token of the server at {self.origin}: set"
                " TRUNKLINE_ADMIN_TOKEN to the token it was started with (its ready line prints it)."
            )
        body: dict[str, Any] = {"user_id": user_id or f"test-{uuid.uuid4().hex[:12]}"}
        if read_only:
            body["read_only"] = True
        try:
            data = self._admin.call("POST", "/_trunkline/accounts", body=body)
        except ControlError as exc:
            if exc.status == 404:
                raise TrunklineStartError(
                    f"the server at {self.origin} does not serve the control API (/_trunkline/): start it"
                    " with `trunkline serve --control` (and TRUNKLINE_ADMIN_TOKEN) or `--ephemeral`."
                ) from exc
            if exc.status == 401:
                raise TrunklineStartError(
                    f"the server at {self.origin} refused the admin token: set TRUNKLINE_ADMIN_TOKEN to the"
                    " token it was started with."
                ) from exc
            raise
        return Account(
            user_id=data["user_id"], key=data["key"], base_url=self.base_url, read_only=data["read_only"]
        )

    # --- internals ---------------------------------------------------------------------------------

    def _require_started(self) -> None:
        if not self.origin:
            raise RuntimeError(
                "the server is not started: use `with TrunklineServer() as server:` or .start()"
            )

    def _use_external(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise TrunklineStartError(
                f"TRUNKLINE_URL={url!r} is not a URL: give the server's root or its /v2 URL, e.g."
                " http://127.0.0.1:8080/v2"
            )
        self.origin = origin_of(url)
        try:
            JsonClient(self.origin, self._admin_token or "-", timeout=5).call("GET", "/health")
        except (OSError, ControlError) as exc:
            raise TrunklineStartError(f"no trunkline answers at {self.origin}/health ({exc})") from None

    def _start_process(self) -> None:
        if self._log_path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="trunkline-testing-")
            self._log_file = Path(self._tmp.name) / "server.log"
        else:
            self._log_file = self._log_path
        cmd = [self._python, "-m", "trunkline", "serve", "--ephemeral", "--port", "0", *self._args]
        env = {**os.environ, **self._env}
        if self._admin_token:
            env["TRUNKLINE_ADMIN_TOKEN"] = self._admin_token
        with self._log_file.open("w", encoding="utf-8") as log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                text=True,
                encoding="utf-8",
            )
        self._proc = proc
        self._finalizer = weakref.finalize(self, _stop_process, proc, self._tmp)
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(
            target=_pump, args=(proc.stdout, lines), daemon=True, name="trunkline-stdout"
        ).start()
        deadline = time.monotonic() + self._timeout
        line: str | None = None
        while line is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._fail(cmd, f"no ready line within {self._timeout:g} s")
            try:
                line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:  # stdout closed: the process ended
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
                self._fail(cmd, f"it exited with status {proc.returncode} before it was ready")
            elif not line.startswith(READY_PREFIX):
                line = None  # not ours (a stray print); keep waiting
        try:
            fields = parse_ready_line(line.strip())
        except ValueError as exc:
            self._fail(cmd, str(exc))
        self.origin = origin_of(fields["url"])
        self._admin_token = fields["admin_token"]
        self.account = Account(user_id=fields["user_id"], key=fields["key"], base_url=f"{self.origin}/v2")

    def _fail(self, cmd: list[str], why: str) -> Any:
        log = self._log_file.read_text(encoding="utf-8", errors="replace") if self._log_file else ""
        tail = "\n".join(log.splitlines()[-40:]) or "(the log is empty)"
        self.stop()
        raise TrunklineStartError(
            f"`{shlex.join(cmd)}` did not start: {why}. The end of its log (stderr):\n{tail}"
        )


def _pump(stream: IO[str] | None, lines: queue.Queue[str | None]) -> None:
    """Hand stdout's lines to the waiting thread; read to the end so the pipe never fills."""
    if stream is None:
        lines.put(None)
        return
    for line in stream:
        lines.put(line)
    lines.put(None)


def _stop_process(proc: subprocess.Popen[str], tmp: tempfile.TemporaryDirectory[str] | None) -> None:
    """SIGTERM (the server then shuts down gracefully and deletes its database), SIGKILL if it hangs."""
    try:
        if proc.poll() is None:
            if sys.platform == "win32":
                proc.terminate()
            else:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
        if tmp is not None:
            tmp.cleanup()
