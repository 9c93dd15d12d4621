"""sip/rpc.py against a datagram server of our own playing Kamailio's jsonrpcs: answers, errors, and a
late answer to a call that gave up, which must still find a socket to land on (jsonrpcs logs an ERROR
when the reply address is gone)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from trunkline.sip import rpc
from trunkline.sip.rpc import KamailioRpcError, KamailioUnavailable, RpcClient


class FakeKamailio:
    """Answers each request after `delay` seconds; records whether each answer could be sent."""

    def __init__(self, path: Path, *, delay: float = 0.0, error: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.delay, self.error = delay, error
        self.sent: list[str] = []
        self.failures: list[OSError] = []
        self.replied_to: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        data, address = self.sock.recvfrom(65536)
        request = json.loads(data)
        time.sleep(self.delay)
        body = (
            {"jsonrpc": "2.0", "id": request["id"], "error": {"code": 500, "message": "ongoing reload"}}
            if self.error
            else {"jsonrpc": "2.0", "id": request["id"], "result": {"method": request["method"]}}
        )
        try:
            self.sock.sendto(json.dumps(body).encode(), address)
            self.sent.append(request["method"])
            self.replied_to.append(address)
        except OSError as exc:
            self.failures.append(exc)

    def close(self) -> None:
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def socket_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "kamailio_rpc.sock"
    rpc._late.sweep(now=time.monotonic() + rpc.LATE_REPLY_SECONDS + 1)


def test_a_call_returns_the_result_and_leaves_no_socket_behind(socket_path: Path) -> None:
    server = FakeKamailio(socket_path)
    assert RpcClient(socket_path, timeout=2).call("core.version") == {"method": "core.version"}
    server.close()
    assert not os.path.exists(server.replied_to[0])


def test_an_error_object_raises_with_its_code_and_message(socket_path: Path) -> None:
    server = FakeKamailio(socket_path, error=True)
    with pytest.raises(KamailioRpcError) as caught:
        RpcClient(socket_path, timeout=2).call("permissions.addressReload")
    server.close()
    assert (caught.value.code, caught.value.message) == (500, "ongoing reload")


def test_a_late_answer_still_lands_and_its_socket_goes_later(socket_path: Path) -> None:
    server = FakeKamailio(socket_path, delay=0.4)
    with pytest.raises(KamailioUnavailable, match="no reply"):
        RpcClient(socket_path, timeout=0.1).call("permissions.addressReload")
    server.close()
    # Kamailio could send its answer: no "No such file or directory" for jsonrpcs to log.
    assert server.failures == [] and server.sent == ["permissions.addressReload"]
    assert os.path.exists(server.replied_to[0])
    # Once its time is up the socket is closed and removed.
    assert rpc._late.sweep(now=time.monotonic() + rpc.LATE_REPLY_SECONDS + 1) == 0
    assert not os.path.exists(server.replied_to[0])


def test_no_socket_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(KamailioUnavailable, match="no RPC socket"):
        RpcClient(tmp_path / "missing.sock").call("core.version")
