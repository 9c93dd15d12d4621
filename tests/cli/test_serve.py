"""`trunkline serve` as an operator starts it: migrations on start, a hint on an empty database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.services import free_port


def test_serve_migrates_an_empty_database_and_says_how_to_create_a_key(tmp_path: Path) -> None:
    port = free_port()
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = {**os.environ, "TRUNKLINE_DATABASE_URL": url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "trunkline", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("trunkline serve did not become ready")
        r = httpx.get(f"http://127.0.0.1:{port}/v2/ips")
        assert r.status_code == 401
        assert r.json()["errors"][0]["code"] == "10009"
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=20)
    assert "trunkline keys create --user-id" in output
    assert (tmp_path / "fresh.db").exists()
