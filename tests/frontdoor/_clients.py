"""Clients that call from a chosen loopback address, `trunkline serve` as a subprocess, and polling."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import telnyx
from typer.testing import CliRunner, Result

from tests.services import free_port
from trunkline.cli import app as cli_app


def http_from(api: str, key: str, local: str | None = None, **headers: str) -> httpx.Client:
    """A raw client whose connections leave from `local` (any 127.x address is loopback on Linux)."""
    transport = httpx.HTTPTransport(local_address=local) if local else None
    return httpx.Client(
        base_url=api,
        headers={"Authorization": f"Bearer {key}", **headers},
        transport=transport,
        timeout=10,
    )


def sdk_from(api: str, key: str, local: str | None = None, *, max_retries: int = 0) -> telnyx.Telnyx:
    """The official SDK, strict, calling from `local`."""
    transport = httpx.HTTPTransport(local_address=local) if local else None
    return telnyx.Telnyx(
        api_key=key,
        base_url=api,
        max_retries=max_retries,
        _strict_response_validation=True,
        http_client=telnyx.DefaultHttpxClient(transport=transport) if transport else None,
    )


def cli(*args: str, database_url: str) -> Result:
    """Run a `trunkline` command in this process, as an operator would type it."""
    return CliRunner().invoke(cli_app, [*args, "--database-url", database_url])


def wait_for(check: Callable[[], bool], *, timeout: float, step: float = 0.01) -> float:
    """Seconds until `check()` held; AssertionError if it never did within `timeout`."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if check():
            return time.perf_counter() - start
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout} s")


@dataclass
class ServeProcess:
    """`python -m trunkline serve` in its own process group, logging to a file."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2"


@contextlib.contextmanager
def serve(database_url: str, log_dir: Path, **env: str) -> Iterator[ServeProcess]:
    port = free_port()
    log = log_dir / f"serve-{port}.log"
    full_env = {
        **os.environ,
        "TRUNKLINE_DATABASE_URL": database_url,
        "TRUNKLINE_ACCESS_LOG": "false",
        **{f"TRUNKLINE_{k.upper()}": v for k, v in env.items()},
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trunkline", "serve", "--port", str(port)],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = ServeProcess(port=port, proc=proc, log=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"trunkline serve exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"trunkline serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield running
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
