"""The pytest plugin as a user's suite uses it: pytester runs a small test file in a fresh pytest
process (the plugin comes from the installed entry point, as it would for them), serially and under
pytest-xdist with two workers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

# The user's test file. Every test makes its own records and checks it sees only those: that holds in
# any order, in one process or spread over workers, only if each test's account is walled off.
USER_TESTS = '''
import json
import os
import time
import uuid
from pathlib import Path

import pytest
import telnyx

SEEN = Path(os.environ["SEEN_DIR"])


def record(request, account, **extra):
    """Which server and account each test got, for the outer test to compare."""
    entry = {"test": request.node.name, "user_id": account.user_id, "base_url": account.base_url, **extra}
    (SEEN / f"{uuid.uuid4().hex}.json").write_text(json.dumps(entry))


@pytest.mark.parametrize("n", range(4))
def test_each_test_has_an_account_of_its_own(request, telnyx_client, trunkline_account, n):
    conn = telnyx_client.credential_connections.create(
        connection_name=f"office-{n}",
        user_name=f"u{uuid.uuid4().hex[:12]}",
        password="correct-horse-1",
    )
    listed = [c.id for c in telnyx_client.connections.list()]
    assert listed == [conn.data.id]
    record(request, trunkline_account)


def test_telnyx_env_points_code_under_test_at_the_account(request, telnyx_env):
    client = telnyx.Telnyx()  # what code under test does: the SDK reads TELNYX_API_KEY and TELNYX_BASE_URL
    assert os.environ["TELNYX_BASE_URL"] == telnyx_env.base_url
    client.ip_connections.create(connection_name="pbx")
    assert [c.connection_name for c in client.connections.list()] == ["pbx"]
    record(request, telnyx_env)


def test_a_429_is_retried_after_retry_after(request, telnyx_client, trunkline_account):
    trunkline_account.fault("/v2/ip_connections", method="POST", status=429, times=1)
    start = time.monotonic()
    conn = telnyx_client.ip_connections.create(connection_name="retried")
    assert time.monotonic() - start >= 0.9  # Retry-After: 1, honoured by the SDK
    posts = trunkline_account.requests(method="POST", path="/v2/ip_connections")
    assert [p["status"] for p in posts] == [201, 429]  # newest first
    assert posts[0]["response_body"]["data"]["id"] == conn.data.id
    assert [c.connection_name for c in telnyx_client.connections.list()] == ["retried"]
    record(request, trunkline_account)


def test_a_virtual_phone_registers(request, telnyx_client, trunkline_account):
    conn = telnyx_client.credential_connections.create(
        connection_name="desk", user_name=f"d{uuid.uuid4().hex[:12]}", password="correct-horse-1"
    )
    trunkline_account.register(
        conn.data.id, ip_address="192.0.2.10", port=5060, transport="UDP", user_agent="desk", expires=600
    )
    status = telnyx_client.credential_connections.actions.check_registration_status(conn.data.id)
    assert status.data.status == "Registered"
    assert status.data.ip_address == "192.0.2.10"
    record(request, trunkline_account)
'''


@pytest.fixture
def user_suite(pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    seen = tmp_path / "seen"
    seen.mkdir()
    monkeypatch.setenv("SEEN_DIR", str(seen))
    for name in ("TRUNKLINE_URL", "TRUNKLINE_ADMIN_TOKEN", "TELNYX_BASE_URL", "TELNYX_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_user=USER_TESTS)
    return seen


def _seen(seen: Path) -> list[dict[str, str]]:
    return [json.loads(p.read_text()) for p in seen.iterdir()]


def test_fixtures_serially(pytester: pytest.Pytester, user_suite: Path) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=7)
    seen = _seen(user_suite)
    assert len({s["user_id"] for s in seen}) == 7  # one account per test
    assert len({s["base_url"] for s in seen}) == 1  # one server for the session
    assert all(s["base_url"].endswith("/v2") for s in seen)


def test_fixtures_under_xdist_with_two_workers(pytester: pytest.Pytester, user_suite: Path) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-n", "2")
    result.assert_outcomes(passed=7)
    seen = _seen(user_suite)
    assert len({s["user_id"] for s in seen}) == 7
    # Each worker has a session of its own, and so a server of its own.
    assert 1 <= len({s["base_url"] for s in seen}) <= 2


def test_loading_the_plugin_starts_nothing(pytester: pytest.Pytester) -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("looks for child processes in /proc (Linux)")
    pytester.makepyfile(
        test_plain="""
        import sys

        def test_no_server(ephemeral_children):
            assert "trunkline.testing.plugin" in sys.modules  # loaded from the entry point
            assert ephemeral_children == []
        """
    )
    # Any `serve --ephemeral` child of this pytest process, read from /proc.
    pytester.makeconftest(
        """
        import os
        import pytest

        @pytest.fixture
        def ephemeral_children():
            children = []
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read()
                except OSError:
                    continue
                if ppid == os.getpid() and b"--ephemeral" in cmd:
                    children.append(pid)
            return children
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)
    fixtures = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--fixtures")
    fixtures.stdout.fnmatch_lines(
        ["*trunkline_server*", "*trunkline_account*", "*telnyx_client*", "*telnyx_env*"]
    )


def test_telnyx_client_is_skipped_without_the_sdk(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TRUNKLINE_URL", "TRUNKLINE_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeconftest(
        """
        import sys
        sys.modules["telnyx"] = None  # as if it were not installed: import telnyx raises ImportError
        """
    )
    pytester.makepyfile(
        test_sdk="""
        def test_needs_sdk(telnyx_client):
            raise AssertionError("not reached")

        def test_account_without_sdk(trunkline_account):
            assert trunkline_account.key
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*pip install telnyx*"])
