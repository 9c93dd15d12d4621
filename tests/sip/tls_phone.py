"""SIP over TLS for the tests: Debian's SIPp is built without TLS, so a PBX that talks TLS is played
by this module, on Python's `ssl` (a real TLS stack, the edge's real TLS listener).

Messages are framed on the stream by Content-Length (RFC 3261 section 18.3). Only what the tests
need: a caller that places one call (INVITE, ACK, BYE), a PBX that answers calls and BYEs, and a
phone that REGISTERs over TLS (digest, RFC 2617 with qop=auth) and answers calls on that connection.
"""

from __future__ import annotations

import hashlib
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


def dialog_of(answer: str) -> tuple[str, list[str]]:
    """A 2xx's remote target (its Contact URI) and route set (its Record-Route list reversed, RFC 3261
    section 12.1.2): where the ACK and BYE of the dialog go."""
    routes = [
        r.strip() for line in reversed(headers(answer, "Record-Route")) for r in reversed(line.split(","))
    ]
    return re.sub(r"^.*<([^>]+)>.*$", r"\1", header(answer, "Contact")), routes


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
    target, routes = dialog_of(reply)
    dialog = [*common, f"To: {header(reply, 'To')}", *(f"Route: {r}" for r in routes)]

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
        return answer(request, f"<sip:pbx@{self.ip}:{self.port};transport=tls>")

    def invites(self) -> list[str]:
        return [r for r in self.received if r.startswith("INVITE ")]


def answer(request: str, contact: str) -> list[str]:
    """A 200 OK to `request` (RFC 3261 section 8.2.6): its Via, Record-Route, From, Call-ID and CSeq,
    its To with a tag of ours."""
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
        f"Contact: {contact}",
    ]


class RegisteredPhone:
    """A softphone on `source` that REGISTERs `user` over TLS and answers the calls the edge sends on
    that connection; `received` holds every request it got."""

    def __init__(self, *, source: str, edge_host: str, tls_port: int, cafile: Path) -> None:
        context = ssl.create_default_context(cafile=str(cafile))
        raw = socket.create_connection((edge_host, tls_port), timeout=10, source_address=(source, 0))
        self.link = Link(context.wrap_socket(raw, server_hostname=edge_host))
        self.source, self.port = source, self.link.sock.getsockname()[1]
        self.received: list[str] = []

    def register(self, user: str, password: str, realm: str, *, expires: int = 60) -> str:
        """REGISTER, answer the digest challenge, and return the final status line."""
        call_id, tag = uuid.uuid4().hex, uuid.uuid4().hex[:8]
        uri = f"sip:{realm}"
        self.contact = f"<sip:{user}@{self.source}:{self.port};transport=tls>"

        def send(cseq: int, extra: list[str]) -> str:
            self.link.send(
                [
                    f"REGISTER {uri} SIP/2.0",
                    f"Via: SIP/2.0/TLS {self.source}:{self.port};branch={_branch()};rport",
                    "Max-Forwards: 70",
                    f"From: <sip:{user}@{realm}>;tag={tag}",
                    f"To: <sip:{user}@{realm}>",
                    f"Call-ID: {call_id}",
                    f"CSeq: {cseq} REGISTER",
                    f"Contact: {self.contact}",
                    f"Expires: {expires}",
                    *extra,
                ]
            )
            reply = self.link.recv()
            while status(reply).startswith("SIP/2.0 1"):
                reply = self.link.recv()
            return reply

        challenge = send(1, [])
        if not status(challenge).startswith("SIP/2.0 401"):
            return status(challenge)
        params = dict(re.findall(r'(\w+)="?([^",]+)"?', header(challenge, "WWW-Authenticate")))
        nonce, cnonce, nc = params["nonce"], uuid.uuid4().hex[:16], "00000001"

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        ha1, ha2 = md5(f"{user}:{params['realm']}:{password}"), md5(f"REGISTER:{uri}")
        response = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        authorization = (
            f'Authorization: Digest username="{user}", realm="{params["realm"]}", nonce="{nonce}", '
            f'uri="{uri}", response="{response}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}"'
        )
        return status(send(2, [authorization]))

    def answer_calls(self) -> RegisteredPhone:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.link.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                request = self.link.recv(timeout=0.3)
            except TimeoutError:
                continue
            except (ConnectionError, OSError, ssl.SSLError):
                return
            self.received.append(request)
            if request.split(" ", 1)[0] in ("INVITE", "BYE"):
                self.link.send(answer(request, self.contact))
