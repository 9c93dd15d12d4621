"""SIPp on cluster hosts: phones, PBXs and carriers as separate machines.

Each SIPp runs on a host (its `-i` is the host's address, so the edges see the host's address as the
source) and traces every message it sends and receives (`-trace_msg`) to a file in the host's
directory; the tests read what a far end received from there. The scenarios are tests/sip/scenarios'
(the single-host SIP tests'), plus the few in tests/cluster/scenarios that no single-host test needs.

    phone = start(topology["phone"], SIP_SCENARIOS / "uas.xml", port=port, label="phone")
    call = run(topology["carrier"], SIP_SCENARIOS / "uac.xml", remote=edge_b.host.ip, args=("-s", user))
    assert call.status_lines[-1] == "SIP/2.0 200 OK" and phone.wait() == 0
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cluster.hosts import Host, Proc
from tests.sip.conftest import free_udp_tcp_port

SIP_SCENARIOS = Path(__file__).parents[1] / "sip" / "scenarios"
SCENARIOS = Path(__file__).parent / "scenarios"
SIP_PORT = 5060
# The separator SIPp's -trace_msg writes before each message: 47 dashes, then the time.
_SEPARATOR = "-" * 47 + " "


def sipp_missing() -> str | None:
    if shutil.which("sipp") is None:
        return "sipp is not installed (apt-get install sip-tester)"
    return None


def free_port(host: Host) -> int:
    """A port free for both UDP and TCP on the host's address (a phone registers and answers on one)."""
    return host.call(free_udp_tcp_port, host.ip)


@dataclass(frozen=True)
class Message:
    """One SIP message of a trace: whether SIPp received it, its transport, and its text."""

    received: bool
    transport: str
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    @property
    def is_request(self) -> bool:
        return not self.first_line.startswith("SIP/2.0 ")

    @property
    def method(self) -> str:
        return self.first_line.split(" ", 1)[0] if self.is_request else ""

    def headers(self, name: str) -> list[str]:
        """Every value of header `name`, in order, comma-separated values split (RFC 3261 section
        7.3.1: a header field of several values may be one line or many). For the fields read here
        (Via, Record-Route, CSeq, Call-ID), whose values hold no quoted commas."""
        values: list[str] = []
        for line in self.text.split("\n\n", 1)[0].splitlines()[1:]:
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() == name.lower():
                values += [v.strip() for v in value.split(",") if v.strip()]
        return values

    def header(self, name: str) -> str | None:
        found = self.headers(name)
        return found[0] if found else None


def parse_trace(text: str) -> list[Message]:
    """The messages of a SIPp -trace_msg file, in order. Each block is the time, then `UDP message
    received [n] bytes :` or `TCP message sent (n bytes):`, a blank line and the message; SIPp's own
    notes (`Unexpected UDP message received:`) are no message of the dialog and are left out."""
    messages: list[Message] = []
    for block in text.split(_SEPARATOR)[1:]:
        lines = block.split("\n")
        if len(lines) < 3:
            continue
        kind = lines[1].split()
        if len(kind) < 3 or kind[1] != "message" or kind[2] not in ("received", "sent"):
            continue
        body = "\n".join(line.rstrip("\r") for line in lines[2:]).strip("\n")
        body = body.split("\n" + "-" * 47, 1)[0]  # a note SIPp appended after the message
        messages.append(Message(kind[2] == "received", kind[0], body))
    return messages


@dataclass
class Trace:
    path: Path

    def messages(self) -> list[Message]:
        text = self.path.read_text(errors="replace") if self.path.exists() else ""
        return parse_trace(text)

    def received(self, method: str | None = None) -> list[Message]:
        return [m for m in self.messages() if m.received and (method is None or m.method == method)]

    @property
    def status_lines(self) -> list[str]:
        """The responses SIPp received, in order."""
        return [m.first_line for m in self.messages() if m.received and not m.is_request]

    def final_statuses(self) -> dict[str, str]:
        """Each call's first final response to its INVITE, by Call-ID (a final status a retransmitted
        INVITE drew again counts once)."""
        finals: dict[str, str] = {}
        for m in self.messages():
            to_invite = (m.header("CSeq") or "").endswith("INVITE")
            if m.received and not m.is_request and to_invite and not m.first_line.startswith("SIP/2.0 1"):
                finals.setdefault(m.header("Call-ID") or "", m.first_line)
        return finals


@dataclass
class Result:
    returncode: int
    trace: Trace
    output: str

    @property
    def status_lines(self) -> list[str]:
        return self.trace.status_lines


def listening(host: Host, port: int, transport: str = "u1") -> bool:
    """Whether a socket on the host listens on `port` (UDP, or TCP for t1), as ss(8) lists them."""
    kind = "-t" if transport == "t1" else "-u"
    return bool(host.run(["ss", "-Hln", kind, f"sport = :{port}"], check=False).stdout.strip())


@dataclass
class Running:
    """A SIPp started in the background on a host (stopped at teardown if still running)."""

    proc: Proc
    trace: Trace
    port: int
    transport: str

    def wait_listening(self, timeout: float = 10.0) -> Running:
        """Until its socket is open: a UAS that is not yet listening would lose the first INVITE over
        TCP (UDP would only see it again after the retransmission timer)."""
        host = self.proc.host
        what = f"SIPp listening on {host.ip}:{self.port} ({self.transport})"
        self.proc.wait_until(lambda: listening(host, self.port, self.transport), timeout=timeout, what=what)
        return self

    def wait(self, timeout: float = 30.0) -> int:
        """Its exit status; SIPp exits 0 when every call of the scenario succeeded."""
        try:
            return self.proc.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.proc} still running after {timeout} s{self.proc.tail_text()}"
            ) from None

    def stop(self) -> None:
        self.proc.stop(timeout=5)


def command(
    host: Host,
    scenario: Path,
    *,
    trace: Path,
    remote: str | None = None,
    port: int | None = None,
    transport: str = "u1",
    keys: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    calls: int = 1,
    timeout: float = 20.0,
) -> list[str]:
    """SIPp's argv: `scenario` from the host's address (and `port`, else a free one), to
    `remote`:5060 when it places calls, `calls` calls (0: until stopped), over `transport` (u1: UDP,
    t1: TCP, one connection), tracing every message to `trace`."""
    argv = ["sipp"] + ([f"{remote}:{SIP_PORT}"] if remote else [])
    argv += ["-sf", str(scenario), "-i", host.ip, "-p", str(port or free_port(host)), "-t", transport]
    argv += ["-nostdin", "-trace_msg", "-message_file", str(trace)]
    if calls:
        # Bounded: a call that hangs fails the run instead of the test waiting for ever.
        argv += ["-m", str(calls), "-timeout", f"{int(timeout)}s", "-timeout_error", "-recv_timeout", "5000"]
    for name, value in (keys or {}).items():
        argv += ["-key", name, value]
    return argv + list(args)


def _trace_path(host: Host, label: str) -> Path:
    return host.workdir / f"sipp-{label}-{secrets.token_hex(4)}.msg"


def run(
    host: Host,
    scenario: Path,
    *,
    remote: str,
    label: str = "call",
    timeout: float = 20.0,
    **options: Any,
) -> Result:
    """One SIPp run to completion on `host` (command's options)."""
    trace = Trace(_trace_path(host, label))
    argv = command(host, scenario, trace=trace.path, remote=remote, timeout=timeout, **options)
    done = host.run(argv, timeout=timeout + 10, check=False)
    return Result(done.returncode, trace, done.stdout[-2000:] + done.stderr[-2000:])


def start(
    host: Host,
    scenario: Path,
    *,
    label: str,
    port: int | None = None,
    transport: str = "u1",
    **options: Any,
) -> Running:
    """SIPp started on `host` and left running (command's options): a phone waiting for its call, a
    gateway, a burst of calls, a call held while something else happens."""
    trace = Trace(_trace_path(host, label))
    port = port or free_port(host)
    argv = command(host, scenario, trace=trace.path, port=port, transport=transport, **options)
    return Running(host.popen(argv, log=f"sipp-{label}"), trace, port, transport)
