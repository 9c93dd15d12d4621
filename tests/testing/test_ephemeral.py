"""`trunkline serve --ephemeral` as a CI script runs it: one ready line, a working key, nothing left."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.services import free_port

READY = re.compile(
    r"^trunkline ready url=(?P<url>http://127\.0\.0\.1:(?P<port>\d+)/v2) key=(?P<key>\S+)"
    r" user_id=(?P<user_id>\S+) admin_token=(?P<admin_token>\S+)$"
)


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRUNKLINE_", "TELNYX_"))}
    # tempfile (and so --ephemeral) puts its directory under TMPDIR: the test can see what is left.
    env.update(TMPDIR=str(tmp), **extra)
    return env


@contextmanager
def ephemeral(tmp: Path, *args: str, **env: str) -> Iterator[tuple[subprocess.Popen[str], re.Match[str]]]:
    """`serve --ephemeral --port 0 ARGS`, its ready line parsed; SIGTERM and a wait at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "trunkline", "serve", "--ephemeral", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp, **env),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            proc.wait(timeout=10)
            raise AssertionError(
                f"no ready line; exit {proc.returncode}; stderr:\n{proc.stderr.read()[-3000:]}"
            )  # type: ignore[union-attr]
        match = READY.match(line.rstrip("\n"))
        assert match, line
        yield proc, match
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def run_refused(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trunkline", "serve", "--ephemeral", "--port", "0", *args],
        capture_output=True,
        text=True,
        env=_env(tmp, **env),
        timeout=30,
    )


def leftovers(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("trunkline-ephemeral-"))


def test_ready_line_holds_a_working_key_and_the_database_is_gone_after_sigterm(tmp_path: Path) -> None:
    with ephemeral(tmp_path) as (proc, ready):
        # The line comes once the server accepts connections: the first request needs no retry.
        r = httpx.get(f"{ready['url']}/connections", headers={"Authorization": f"Bearer {ready['key']}"})
        assert r.status_code == 200, r.text
        assert r.json()["meta"]["total_results"] == 0
        assert ready["user_id"] == "test"
        (db_dir,) = leftovers(tmp_path)
        assert (tmp_path / db_dir / "trunkline.db").is_file()
        # The control API is on, and the admin token printed is the one it accepts.
        r = httpx.post(
            f"http://127.0.0.1:{ready['port']}/_trunkline/accounts",
            headers={"Authorization": f"Bearer {ready['admin_token']}"},
            json={},
        )
        assert r.status_code == 201, r.text
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err[-2000:]
    assert out == ""  # the ready line was the only line on stdout
    assert leftovers(tmp_path) == []


def test_sigint_cleans_up_too(tmp_path: Path) -> None:
    with ephemeral(tmp_path) as (proc, _ready):
        assert len(leftovers(tmp_path)) == 1
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
    assert leftovers(tmp_path) == []


def test_ready_in_well_under_a_second_on_a_quiet_machine(tmp_path: Path) -> None:
    # The aim is < 1 s (benchmarks/testing.py measures it); this bound only catches a gross regression
    # (a slow import or a wait) on a loaded CI machine.
    start = time.monotonic()
    with ephemeral(tmp_path):
        elapsed = time.monotonic() - start
    assert elapsed < 5, f"ready after {elapsed:.2f} s"


@pytest.mark.parametrize("how", ["option", "env"])
def test_a_given_key_is_created_for_the_given_user(tmp_path: Path, how: str) -> None:
    key = "ci-key-0123456789abcdef"
    args, env = (["--api-key", key], {}) if how == "option" else ([], {"TRUNKLINE_BOOTSTRAP_KEY": key})
    with ephemeral(tmp_path, *args, "--user-id", "ci", **env) as (_proc, ready):
        assert ready["key"] == key
        assert ready["user_id"] == "ci"
        headers = {"Authorization": f"Bearer {key}"}
        r = httpx.post(
            f"{ready['url']}/ip_connections", headers=headers, json={"connection_name": "pbx"}, timeout=10
        )
        assert r.status_code == 201, r.text
        # The control API acts on the key's own account: the connection is there, in user ci.
        state = httpx.get(f"http://127.0.0.1:{ready['port']}/_trunkline/state", headers=headers).json()
        assert [c["connection_name"] for c in state["data"]["connections"]] == ["pbx"]
        wrong = {"Authorization": "Bearer ci-key-0123456789abcdeX"}
        assert httpx.get(f"{ready['url']}/connections", headers=wrong).status_code == 401


def test_a_key_shaped_like_ours_is_accepted_too(tmp_path: Path) -> None:
    key = "KEYCI0001_abcdefghijklmnopqrstuvwxyz"
    with ephemeral(tmp_path, "--api-key", key) as (_proc, ready):
        r = httpx.get(f"{ready['url']}/connections", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("short", "20 to 200 characters"),
        ("x" * 201, "20 to 200 characters"),
        ("has a space in the middle of it", "printable ASCII"),
        ("tab\tinside-0123456789abcdef", "printable ASCII"),
        ("ключ-0123456789abcdefghij", "printable ASCII"),
    ],
)
def test_a_malformed_key_is_refused_with_what_to_do(tmp_path: Path, key: str, says: str) -> None:
    done = run_refused(tmp_path, "--api-key", key)
    assert done.returncode == 2
    assert done.stdout == ""
    assert says in done.stderr, done.stderr
    assert "--api-key" in done.stderr
    assert leftovers(tmp_path) == []


def test_options_that_contradict_ephemeral_are_refused(tmp_path: Path) -> None:
    done = run_refused(tmp_path, "--database-url", f"sqlite:///{tmp_path / 'x.db'}")
    assert done.returncode == 2
    assert "--database-url" in done.stderr and "--ephemeral" in done.stderr
    done = run_refused(tmp_path, "--workers", "2")
    assert done.returncode == 2 and "--workers" in done.stderr
    assert leftovers(tmp_path) == []


def test_settings_in_the_environment_for_another_server_are_ignored(tmp_path: Path) -> None:
    kept = tmp_path / "kept.db"
    env = {
        "TRUNKLINE_DATABASE_URL": f"sqlite:///{kept}",
        "TRUNKLINE_WORKERS": "3",
        "TRUNKLINE_BOOTSTRAP_KEY": "",
        # Another server's shared state: the journal below would answer 503 were it used (no Redis there).
        "TRUNKLINE_REDIS_URL": "redis://127.0.0.1:1/0",
    }
    with ephemeral(tmp_path, **env) as (_proc, ready):
        assert ready["key"].startswith("KEY")  # an empty TRUNKLINE_BOOTSTRAP_KEY: one is generated
        assert httpx.get(f"http://127.0.0.1:{ready['port']}/ready").status_code == 200
        journal = httpx.get(
            f"http://127.0.0.1:{ready['port']}/_trunkline/requests",
            headers={"Authorization": f"Bearer {ready['key']}"},
        )
        assert journal.status_code == 200, journal.text
    assert not kept.exists()


def _seed_document(tmp_path: Path) -> dict[str, object]:
    """A state document made by a real server (so its shape is whatever GET /_trunkline/state gives)."""
    with ephemeral(tmp_path, "--user-id", "origin") as (_proc, ready):
        headers = {"Authorization": f"Bearer {ready['key']}"}
        r = httpx.post(
            f"{ready['url']}/credential_connections",
            headers=headers,
            json={"connection_name": "office", "user_name": "seeded1001", "password": "correct-horse-1"},
        )
        assert r.status_code == 201, r.text
        r = httpx.post(f"{ready['url']}/ip_connections", headers=headers, json={"connection_name": "pbx"})
        assert r.status_code == 201, r.text
        doc: dict[str, object] = httpx.get(
            f"http://127.0.0.1:{ready['port']}/_trunkline/state", headers=headers
        ).json()
    return doc


def test_seed_loads_a_state_document_before_serving(tmp_path: Path) -> None:
    saved = _seed_document(tmp_path)  # as saved with curl: {"data": {...}}
    ids = sorted(c["id"] for c in saved["data"]["connections"])  # type: ignore[index]
    for name, content in [("enveloped.json", saved), ("bare.json", saved["data"])]:
        seed = tmp_path / name
        seed.write_text(json.dumps(content))
        with ephemeral(tmp_path, "--seed", str(seed), "--user-id", "seeded") as (_proc, ready):
            r = httpx.get(
                f"{ready['url']}/connections",
                params={"sort": "connection_name"},
                headers={"Authorization": f"Bearer {ready['key']}"},
            )
            assert r.status_code == 200, r.text
            assert sorted(c["id"] for c in r.json()["data"]) == ids  # ids kept
            assert [c["connection_name"] for c in r.json()["data"]] == ["office", "pbx"]


def test_a_bad_seed_is_refused_naming_the_problem(tmp_path: Path) -> None:
    seed = tmp_path / "bad.json"
    seed.write_text("{not json")
    done = run_refused(tmp_path, "--seed", str(seed))
    assert done.returncode == 2 and "--seed" in done.stderr and "not a JSON file" in done.stderr
    seed.write_text(json.dumps({"format": 1, "connections": [{"id": "x"}]}))
    done = run_refused(tmp_path, "--seed", str(seed))
    assert done.returncode == 2, done.stderr
    assert "--seed" in done.stderr and "/connections/0" in done.stderr, done.stderr
    assert leftovers(tmp_path) == []


def test_a_user_id_with_a_space_is_refused(tmp_path: Path) -> None:
    done = run_refused(tmp_path, "--user-id", "two words")
    assert done.returncode == 2 and "--user-id" in done.stderr


def test_api_key_on_a_kept_database_is_created_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    key = "kept-key-0123456789abcdef"

    def serve_once(*args: str) -> subprocess.Popen[str]:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "trunkline", "serve", "--port", str(port), "--api-key", key, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(tmp_path, TRUNKLINE_DATABASE_URL=url),
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/v2/connections", headers={"Authorization": f"Bearer {key}"}
                )
                assert r.status_code == 200, r.text
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        return proc

    for _ in range(2):  # the second start finds the key and keeps it
        proc = serve_once("--user-id", "ops")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)
    listed = subprocess.run(
        [sys.executable, "-m", "trunkline", "keys", "list", "--database-url", url],
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(listed.stdout.splitlines()) == 1 and "ops" in listed.stdout
    # The same key for another account is refused, saying whose it is.
    proc = serve_once("--user-id", "someone-else")
    _out, err = proc.communicate(timeout=15)
    assert proc.returncode == 2
    assert "already exists" in err and "ops" in err
