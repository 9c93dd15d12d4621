"""Whether a process the tests started, or left behind, is still running."""

from __future__ import annotations

from pathlib import Path


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it counts as gone: it has closed its
    sockets and files). proc(5): the state is the first field after the command name's parenthesis."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
