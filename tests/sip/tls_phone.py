"""SIP over TLS for the tests: Debian's SIPp is built without TLS, so a PBX that talks TLS is played
by this module, on Python's `ssl` (a real TLS stack, the edge's real TLS listener).

Messages are framed on the stream by Content-Length (RFC 3261 section 18.3). Only what the tests
need: a caller that places one call (INVITE, ACK, BYE) and a PBX that answers calls and BYEs.
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path


class Link:
    """One TLS connection carrying SIP messages."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self._buf = b""

    def send(self, lines: list[str], body: str = "") -> None:
        head = "\r\n".join([*lines, f"Content-Length: {len(body.encode())}"]) + "\r\n\r\n"
        self.sock.sendall(head.encode() + body.encode())

    def recv(self, timeout: float = 10.0) -> str:
        self.sock.settimeout(timeout)
        while b"\r\n\r\n" not in self._buf:
            self._read()
        head, rest = self._buf.split(b"\r\n\r\n", 1)
        match = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
        size = int(match.group(1)) if match else 0
        while len(rest) < size:
            self._buf = head + b"\r\n\r\n" + rest
            self._read()
            head, rest = self._buf.split(b"\r\n\r\n", 1)
        self._buf = rest[size:]
        return (head + b"\r\n\r\n" + rest[:size]).decode()

    def _read(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the far end closed the TLS connection")
        self._buf += chunk


def headers(message: str, name: str) -> list[str]:
    return re.findall(rf"(?im)^{re.escape(name)}\s*:\s*(.*?)\s*$", message.split("\r\n\r\n", 1)[0])


def header(message: str, name: str) -> str:
    found = headers(message, name)
    assert found, f"no {name} in:\n{message}"
    return found[0]


def status(message: str) -> str:
    return message.split("\r\n", 1)[0]


def _branch() -> str:
    return "z9hG4bK" + uuid.uuid4().hex[:16]


def call(
    *, source: str, edge_host: str, tls_port: int, number: str, cafile: Path, hold: float = 0.05
) -> list[str]:
    """Place one call over TLS from `source`, verifying the edge's certificate against `cafile`:
    INVITE, then ACK and BYE along the route set the answer gave. Returns the status lines received."""
    context = ssl.create_default_context(cafile=str(cafile))
    raw = socket.create_connection((edge_host, tls_port), timeout=10, source_address=(source, 0))
    link = Link(context.wrap_socket(raw, server_hostname=edge_host))
    local_port = link.sock.getsockname()[1]
    call_id, tag = uuid.uuid4().hex, uuid.uuid4().hex[:8]
    me = f"sip:pbx@{source}:{local_port};transport=tls"
    via = f"Via: SIP/2.0/TLS {source}:{local_port};branch={_branch()};rport"
    common = [f"From: <sip:pbx@{source}>;tag={tag}", f"Call-ID: {call_id}", "Max-Forwards: 70"]
    link.send(
        [
            f"INVITE sip:{number}@{edge_host}:{tls_port};transport=tls SIP/2.0",
            via,
            *common,
            f"To: <sip:{number}@{edge_host}>",
            "CSeq: 1 INVITE",
            f"Contact: <{me}>",
        ]
    )
    seen: list[str] = []
    while True:
        reply = link.recv()
        seen.append(status(reply))
        if not status(reply).startswith(("SIP/2.0 1", "SIP/2.0 18")):
            break
    if not status(reply).startswith("SIP/2.0 200"):
        link.send(
            [
                f"ACK sip:{number}@{edge_host}:{tls_port};transport=tls SIP/2.0",
                via,
                *common,
                f"To: {header(reply, 'To')}",
                "CSeq: 1 ACK",
            ]
        )
        link.sock.close()
        return seen
    # The route set is the answer's Record-Route list, reversed (RFC 3261 section 12.1.2).
    routes = [r for line in reversed(headers(reply, "Record-Route")) for r in reversed(line.split(","))]
    target = re.sub(r"^.*<([^>]+)>.*$", r"\1", header(reply, "Contact"))
    dialog = [*common, f"To: {header(reply, 'To')}", *(f"Route: {r.strip()}" for r in routes)]

    def via_new() -> str:
        return f"Via: SIP/2.0/TLS {source}:{local_port};branch={_branch()}"

    link.send([f"ACK {target} SIP/2.0", via_new(), *dialog, "CSeq: 1 ACK"])
    threading.Event().wait(hold)
    link.send([f"BYE {target} SIP/2.0", via_new(), *dialog, "CSeq: 2 BYE"])
    seen.append(status(link.recv()))
    link.sock.close()
    return seen


@dataclass
class Pbx:
    """A PBX on `ip`:`port` that takes TLS connections and answers every INVITE 200 and every BYE 200;
    `received` holds every request it got, in order."""

    ip: str
    port: int
    cert: Path
    key: Path
    received: list[str] = field(default_factory=list)

    def start(self) -> Pbx:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert), str(self.key))
        self._listener = socket.create_server((self.ip, self.port))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(context,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self, context: ssl.SSLContext) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._talk, args=(context, raw), daemon=True).start()

    def _talk(self, context: ssl.SSLContext, raw: socket.socket) -> None:
        try:
            link = Link(context.wrap_socket(raw, server_side=True))
            while not self._stop.is_set():
                try:
                    request = link.recv(timeout=0.5)
                except TimeoutError:
                    continue
                self.received.append(request)
                method = request.split(" ", 1)[0]
                if method in ("INVITE", "BYE"):
                    link.send(self._answer(request))
        except (ConnectionError, OSError, ssl.SSLError):
            return

    def _answer(self, request: str) -> list[str]:
        to = header(request, "To")
        if "tag=" not in to:
            to += ";tag=" + uuid.uuid4().hex[:8]
        return [
            "SIP/2.0 200 OK",
            *(f"Via: {v}" for v in headers(request, "Via")),
            *(f"Record-Route: {r}" for r in headers(request, "Record-Route")),
            f"From: {header(request, 'From')}",
            f"To: {to}",
            f"Call-ID: {header(request, 'Call-ID')}",
            f"CSeq: {header(request, 'CSeq')}",
            f"Contact: <sip:pbx@{self.ip}:{self.port};transport=tls>",
        ]

    def invites(self) -> list[str]:
        return [r for r in self.received if r.startswith("INVITE ")]
