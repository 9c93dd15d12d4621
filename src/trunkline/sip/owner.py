"""Who owns a SIP directory: an exclusive flock(2) on a lock file in it, held for the owner's life.

One supervisor per directory: the directory holds one Kamailio's config, pid file, RPC socket and
SQLite file, so a second supervisor there would take them over. The lock is taken without waiting
(LOCK_EX | LOCK_NB) on a descriptor kept open until `release()`; the kernel drops it when the holder
exits, however it dies (flock(2): a lock is released when every descriptor of its open file
description is closed). The descriptor is close-on-exec (open(2) O_CLOEXEC), so a Kamailio started
by the holder never inherits the lock and a Kamailio that outlives its supervisor does not keep it.

The holder writes its pid, host and start time into the file, for the message a refused supervisor
prints. The file is never deleted: a process that opened the old file could otherwise lock it while
a third one locks a new file of the same name, and both would own the directory.

flock(2) locks are local to a host on most network file systems; the directory is meant to be local.

Errors::

    DirectoryLockError
    └── DirectoryInUse      another live process holds the lock
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

LOCK_FILE = "supervisor.lock"
# A holder writes its record right after taking the lock; a reader that finds the file still empty
# waits this long for it.
RECORD_WAIT_SECONDS = 1.0


class DirectoryLockError(RuntimeError):
    """The SIP directory's lock could not be taken."""


@dataclass(frozen=True)
class Holder:
    """The process that holds a directory's lock, as it recorded itself."""

    pid: int | None
    host: str
    started: str

    @classmethod
    def parse(cls, text: str) -> Holder:
        try:
            data = json.loads(text)
            pid = data.get("pid")
            return cls(
                pid=pid if isinstance(pid, int) else None,
                host=str(data.get("host", "")),
                started=str(data.get("started", "")),
            )
        except (ValueError, AttributeError):
            return cls(pid=None, host="", started="")

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid is not None else "a process that has not recorded its pid"
        if self.host:
            who += f" on {self.host}"
        if self.started:
            who += f", started {self.started}"
        return who


class DirectoryInUse(DirectoryLockError):
    """Another live supervisor holds the directory's lock."""

    def __init__(self, directory: Path, holder: Holder) -> None:
        self.directory = directory
        self.holder = holder
        stop = f"stop it (kill {holder.pid})" if holder.pid is not None else "stop it"
        super().__init__(
            f"the SIP directory {directory} is in use by another trunkline SIP supervisor"
            f" ({holder.describe()}); {stop}, or give this one another directory"
            " (--sip-dir or TRUNKLINE_SIP_DIR)"
        )


class DirectoryLock:
    """The lock of one directory; `acquire()` once, `release()` (or exit) to give it up."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock at once, or raise DirectoryInUse naming its holder. Idempotent."""
        if self._fd is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise DirectoryLockError(f"cannot open {self.path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise DirectoryInUse(self.directory, self._read_holder()) from None
            raise DirectoryLockError(f"cannot lock {self.path}: {exc}") from exc
        self._fd = fd
        self._record()

    def release(self) -> None:
        """Give the lock up (closing the descriptor drops it, flock(2)). A no-op when not held."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    def _record(self) -> None:
        assert self._fd is not None
        started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started})
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, (record + "\n").encode(), 0)

    def _read_holder(self) -> Holder:
        deadline = time.monotonic() + RECORD_WAIT_SECONDS
        while True:
            try:
                text = self.path.read_text()
            except OSError:
                text = ""
            if text.strip() or time.monotonic() >= deadline:
                return Holder.parse(text)
            time.sleep(0.02)
