"""`trunkline keys` and `trunkline db`, run as a user runs them: the installed console script."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import test_settings
from tests.server import LiveServer


def trunkline(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRUNKLINE_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "trunkline", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_keys_create_prints_the_key_last_and_stores_only_its_digest(database_url: str) -> None:
    done = trunkline("keys", "create", "--user-id", "cli-acct", database_url=database_url)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1]
    assert key.startswith("KEY") and "_" in key
    listing = trunkline("keys", "list", "--user-id", "cli-acct", database_url=database_url)
    assert listing.returncode == 0
    key_id = key.split("_")[0]
    line = next(line for line in listing.stdout.splitlines() if line.startswith(key_id))
    assert line.split("\t")[1] == "cli-acct"
    assert key not in listing.stdout  # the secret is never shown again
    assert key.split("_", 1)[1] not in listing.stdout


def test_keys_list_filters_by_account(database_url: str) -> None:
    trunkline("keys", "create", "--user-id", "cli-a", database_url=database_url)
    trunkline("keys", "create", "--user-id", "cli-b", database_url=database_url)
    listing = trunkline("keys", "list", "--user-id", "cli-a", database_url=database_url)
    users = {line.split("\t")[1] for line in listing.stdout.splitlines()}
    assert users == {"cli-a"}


def test_revoked_key_stops_working(database_url: str) -> None:
    live = LiveServer(test_settings(database_url, key_cache_seconds=0.2)).start()
    try:
        key = trunkline(
            "keys", "create", "--user-id", "cli-revoke", database_url=database_url
        ).stdout.split()[-1]
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{live.api}/ips", headers=headers).status_code == 200
        done = trunkline("keys", "revoke", key.split("_")[0], database_url=database_url)
        assert done.returncode == 0, done.stderr
        time.sleep(0.3)  # the key cache time this server was given
        r = httpx.get(f"{live.api}/ips", headers=headers)
        assert r.status_code == 401
        assert r.json()["errors"][0]["code"] == "10009"
    finally:
        live.stop()


def test_revoke_unknown_key_says_what_to_do(database_url: str) -> None:
    done = trunkline("keys", "revoke", "KEYNOPE", database_url=database_url)
    assert done.returncode == 1
    assert "trunkline keys list" in done.stderr


@pytest.mark.parametrize("command", [["keys", "list"], ["db", "upgrade"]])
def test_commands_read_database_url_from_the_environment(database_url: str, command: list[str]) -> None:
    done = trunkline(*command, database_url=database_url)
    assert done.returncode == 0, done.stderr
