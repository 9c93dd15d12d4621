"""sip.owner: one holder per directory, across processes; the kernel frees the lock when the holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from trunkline.sip.owner import LOCK_FILE, DirectoryInUse, DirectoryLock, Holder

# A process that takes the lock, says so, and keeps it until it is killed.
HOLD = """
import sys, time
from pathlib import Path
from trunkline.sip.owner import DirectoryLock
DirectoryLock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    proc.kill()
    proc.wait(timeout=10)


def test_a_second_process_is_refused_with_the_holders_pid(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(DirectoryInUse) as refused:
        DirectoryLock(tmp_path).acquire()
    assert refused.value.holder.pid == holder.pid
    assert refused.value.holder.host == os.uname().nodename
    message = str(refused.value)
    assert f"pid {holder.pid}" in message
    assert str(tmp_path) in message
    assert "TRUNKLINE_SIP_DIR" in message


def test_the_lock_is_free_once_the_holder_is_killed(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    holder.send_signal(signal.SIGKILL)  # no chance to release it: the kernel does (flock(2))
    holder.wait(timeout=10)
    lock = DirectoryLock(tmp_path)
    lock.acquire()
    assert lock.held
    assert Holder.parse((tmp_path / LOCK_FILE).read_text()).pid == os.getpid()
    lock.release()


def test_a_second_lock_in_the_same_process_is_refused_too(tmp_path: Path) -> None:
    first = DirectoryLock(tmp_path)
    first.acquire()
    first.acquire()  # idempotent for its holder
    with pytest.raises(DirectoryInUse):
        DirectoryLock(tmp_path).acquire()
    first.release()
    second = DirectoryLock(tmp_path)
    second.acquire()
    second.release()


def test_release_without_acquire_is_a_no_op_and_the_directory_is_made(tmp_path: Path) -> None:
    lock = DirectoryLock(tmp_path / "sip" / "dir")
    lock.release()
    lock.acquire()
    assert (tmp_path / "sip" / "dir" / LOCK_FILE).is_file()
    lock.release()
    assert not lock.held


def test_a_child_process_does_not_inherit_the_lock(tmp_path: Path) -> None:
    lock = DirectoryLock(tmp_path)
    lock.acquire()
    child = subprocess.Popen(["sleep", "60"], close_fds=False)
    try:
        lock.release()  # the child (as Kamailio would) must not keep it
        again = DirectoryLock(tmp_path)
        again.acquire()
        again.release()
    finally:
        child.kill()
        child.wait(timeout=10)


def test_an_unreadable_record_still_gives_a_message() -> None:
    assert Holder.parse("").describe() == "a process that has not recorded its pid"
    assert Holder.parse("[1]").pid is None
