"""sip/process_group.py: the workers a dead Kamailio main process leaves behind are found and stopped;
a process group that runs something else is never touched."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import alive
from trunkline.sip import process_group

# A leader that forks two workers into its group, prints their pids, and waits: Kamailio's shape.
FAMILY = """
import os, sys, time
workers = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    workers.append(pid)
print(*workers, flush=True)
time.sleep(60)
"""


@pytest.fixture
def family(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[int], Path]]:
    """A leader in a session of its own whose command line names `config`, and its two workers."""
    config = tmp_path / "kamailio.cfg"
    config.write_text("# not read\n")
    leader = subprocess.Popen(
        [sys.executable, "-c", FAMILY, "-f", str(config)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert leader.stdout is not None
    workers = [int(pid) for pid in leader.stdout.readline().split()]
    yield leader, workers, config
    with contextlib.suppress(ProcessLookupError):
        os.killpg(leader.pid, signal.SIGKILL)
    leader.wait(timeout=10)


def test_workers_left_by_a_dead_leader_are_found_and_stopped(
    family: tuple[subprocess.Popen[str], list[int], Path],
) -> None:
    leader, workers, config = family
    assert sorted(process_group.members(leader.pid, config)) == sorted([leader.pid, *workers])
    leader.kill()  # the leader alone, as a crash or the OOM killer would
    leader.wait(timeout=10)
    assert all(alive(pid) for pid in workers)
    assert sorted(process_group.members(leader.pid, config)) == sorted(workers)

    assert sorted(process_group.kill(leader.pid, config)) == sorted(workers)
    assert not any(alive(pid) for pid in workers)
    assert process_group.members(leader.pid, config) == []
    assert process_group.kill(leader.pid, config) == []


def test_a_group_running_another_config_is_left_alone(
    family: tuple[subprocess.Popen[str], list[int], Path], tmp_path: Path
) -> None:
    leader, workers, _ = family
    other = tmp_path / "other.cfg"
    assert process_group.members(leader.pid, other) == []
    assert process_group.kill(leader.pid, other) == []
    time.sleep(0.05)
    assert alive(leader.pid) and all(alive(pid) for pid in workers)
