"""The processes of one Kamailio, found by its process group.

The supervisor starts Kamailio as the leader of a process group of its own (sip/supervisor.py,
`start_new_session`), and Kamailio forks its workers into it. When the main process dies alone (a
crash, the OOM killer, a SIGKILL sent to it and not to the group), its workers live on under init:
they keep the SIP ports, answer calls with the old configuration and keep writing Kamailio's own
SQLite file. The next Kamailio then cannot bind, and the file would have two writers. So the group is
emptied before a new Kamailio starts.

A group is found by its id, the dead leader's pid, which no new process takes while the group has a
member: "The child process ID also shall not match any active process group ID"
(https://pubs.opengroup.org/onlinepubs/9699919799/functions/fork.html). A member counts only if its
command line names this edge's config file, so that once the old group is gone, a group of some
other program that has its id is never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

PROC = Path("/proc")


def members(pgid: int, config: Path) -> list[int]:
    """The live processes of group `pgid`, if one of them runs `config`; else none."""
    live = _live(pgid)
    needle = str(config).encode()
    for pid in live:
        with contextlib.suppress(OSError):
            if needle in (PROC / str(pid) / "cmdline").read_bytes():
                return live
    return []


def kill(pgid: int, config: Path, *, timeout: float = 5.0) -> list[int]:
    """SIGKILL group `pgid` if one of its processes runs `config`, and wait up to `timeout` seconds for
    every member to be gone (a zombie has closed its sockets and files). The pids it found; an empty
    list when there was nothing to stop."""
    found = members(pgid, config)
    if not found:
        return []
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while _live(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


def _live(pgid: int) -> list[int]:
    """The processes of group `pgid` that are not zombies."""
    found: list[int] = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # proc(5): after the command name's closing parenthesis come state, ppid and pgrp.
            fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone while being read
        if fields[0] != b"Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found
