"""JSON-RPC 2.0 client for Kamailio over its unix datagram socket (jsonrpcs transport 4).

Errors::

    KamailioError
    ├── KamailioUnavailable   no socket, nobody answering, or no reply in time
    └── KamailioRpcError      Kamailio answered with a JSON-RPC error object (code, message)

The datagram socket needs no HTTP stack and no TCP port, and is reachable only on this host
(https://kamailio.org/docs/modules/5.6.x/modules/jsonrpcs.html#jsonrpcs.p.dgram_socket).
Each call binds a private reply socket: jsonrpcs sends its answer to the address the request came
from.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import tempfile
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
        if not self.socket_path.exists():
            raise KamailioUnavailable(f"no RPC socket at {self.socket_path}")
        # A short path in the temp dir: unix socket paths are limited to 107 bytes.
        reply_dir = tempfile.mkdtemp(prefix="tl-rpc-")
        reply_path = os.path.join(reply_dir, "r.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(reply_path)
            sock.settimeout(self.timeout)
            sock.sendto(payload, str(self.socket_path))
            return sock.recv(MAX_REPLY)
        except TimeoutError as exc:
            raise KamailioUnavailable(f"no reply from {self.socket_path} in {self.timeout} s") from exc
        except OSError as exc:
            raise KamailioUnavailable(f"{self.socket_path}: {exc}") from exc
        finally:
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(reply_path)
            with contextlib.suppress(OSError):
                os.rmdir(reply_dir)
