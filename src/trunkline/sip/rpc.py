"""JSON-RPC 2.0 client for Kamailio over its unix datagram socket (jsonrpcs transport 4).

Errors::

    KamailioError
    ├── KamailioUnavailable   no socket, nobody answering, or no reply in time
    └── KamailioRpcError      Kamailio answered with a JSON-RPC error object (code, message)

The datagram socket needs no HTTP stack and no TCP port, and is reachable only on this host
(https://kamailio.org/docs/modules/5.6.x/modules/jsonrpcs.html#jsonrpcs.p.dgram_socket).
Each call binds a private reply socket: jsonrpcs sends its answer to the address the request came
from. A call that gave up waiting leaves its socket bound for LATE_REPLY_SECONDS: a busy Kamailio
still answers it, and with the socket gone jsonrpcs logs an ERROR ("failed to send the response ...
No such file or directory"), which is no error of Kamailio's. The late answer is then dropped unread.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


class KamailioError(Exception):
    """Talking to Kamailio failed."""


class KamailioUnavailable(KamailioError):
    """Kamailio's RPC socket is missing or did not answer in time."""


class KamailioRpcError(KamailioError):
    """Kamailio answered the call with an error."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: {code} {message}")
        self.method = method
        self.code = code
        self.message = message


_ids = itertools.count(1)
# Replies as large as an ACL dump of tens of thousands of rows.
MAX_REPLY = 4 * 1024 * 1024
# How long a timed-out call's reply socket stays bound for a late answer (a Kamailio that takes
# longer is wedged, and the supervisor replaces it: sip/supervisor.py).
LATE_REPLY_SECONDS = 30.0


class _LateReplies:
    """Reply sockets of calls that timed out, each closed and removed once its time is up."""

    def __init__(self) -> None:
        self._held: list[tuple[float, socket.socket, str, str]] = []
        self._lock = threading.Lock()

    def hold(self, sock: socket.socket, path: str, directory: str) -> None:
        with self._lock:
            self._held.append((time.monotonic() + LATE_REPLY_SECONDS, sock, path, directory))

    def sweep(self, *, now: float | None = None) -> int:
        """Release the sockets whose time is up; how many are still held."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            due = [entry for entry in self._held if entry[0] <= moment]
            self._held = [entry for entry in self._held if entry[0] > moment]
            left = len(self._held)
        for _, sock, path, directory in due:
            _release(sock, path, directory)
        return left


_late = _LateReplies()


def _release(sock: socket.socket, path: str, directory: str) -> None:
    sock.close()
    with contextlib.suppress(OSError):
        os.unlink(path)
    with contextlib.suppress(OSError):
        os.rmdir(directory)


class RpcClient:
    """Calls methods on one Kamailio; safe to share, every call uses its own reply socket."""

    def __init__(self, socket_path: Path, *, timeout: float = 2.0) -> None:
        self.socket_path = Path(socket_path)
        self.timeout = timeout

    def call(self, method: str, *params: Any) -> Any:
        """The `result` of `method(*params)`, or a KamailioError."""
        request_id = next(_ids)
        payload = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params), "id": request_id})
        reply = self._exchange(payload.encode())
        try:
            body = json.loads(reply)
        except ValueError as exc:
            raise KamailioUnavailable(f"{method}: unreadable reply {reply[:80]!r}") from exc
        if "error" in body:
            err = body["error"] or {}
            raise KamailioRpcError(method, int(err.get("code", 500)), str(err.get("message", "")))
        return body.get("result")

    def _exchange(self, payload: bytes) -> bytes:
        _late.sweep()
        if not self.socket_path.exists():
            raise KamailioUnavailable(f"no RPC socket at {self.socket_path}")
        # A short path in the temp dir: unix socket paths are limited to 107 bytes.
        reply_dir = tempfile.mkdtemp(prefix="tl-rpc-")
        reply_path = os.path.join(reply_dir, "r.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sent = False
        try:
            sock.bind(reply_path)
            sock.settimeout(self.timeout)
            sock.sendto(payload, str(self.socket_path))
            sent = True
            reply = sock.recv(MAX_REPLY)
        except TimeoutError as exc:
            # Kamailio has the request and may still answer: keep somewhere for the answer to land.
            _late.hold(sock, reply_path, reply_dir)
            raise KamailioUnavailable(f"no reply from {self.socket_path} in {self.timeout} s") from exc
        except OSError as exc:
            _release(sock, reply_path, reply_dir)
            raise KamailioUnavailable(f"{self.socket_path}: {exc}") from exc
        except BaseException:
            if sent:
                _late.hold(sock, reply_path, reply_dir)
            else:
                _release(sock, reply_path, reply_dir)
            raise
        _release(sock, reply_path, reply_dir)
        return reply
