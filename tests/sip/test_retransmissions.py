"""An INVITE and its retransmission arriving together (a UDP caller retransmits after T1, RFC 3261
section 17.1.1.2, and a busy edge may still be working on the first copy): one call, one channel,
one record, whether the call is admitted or refused.

Both copies are sent back to back from one socket, so the edge's workers take them in parallel.
Callers on 127.0.8.x, a range no other SIP test module uses (modules share a database).
"""

from __future__ import annotations

import re
import socket
import uuid

from tests.sip.conftest import Edge, eventually
from tests.sip.test_calls import upstream_invites
from tests.sip.test_edge import service_name
from tests.sip.test_policy import caller, records
from tests.sip.tls_phone import dialog_of, header


class Phone:
    """A bare UDP user agent: one INVITE, sent twice, then ACK and BYE along the answer's route set."""

    def __init__(self, edge: Edge, source: str) -> None:
        self.edge = edge
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.sock.settimeout(5)
        self.source, self.port = self.sock.getsockname()
        self.call_id, self.tag = uuid.uuid4().hex, uuid.uuid4().hex[:8]

    def send(self, lines: list[str]) -> None:
        text = "\r\n".join([*lines, "Content-Length: 0"]) + "\r\n\r\n"
        self.sock.sendto(text.encode(), ("127.0.0.1", self.edge.sip_port))

    def head(self, method: str, uri: str, cseq: int, to: str, branch: str) -> list[str]:
        return [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.source}:{self.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:pbx@{self.source}>;tag={self.tag}",
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
        ]

    def invite_twice(self, number: str) -> str:
        """Both copies of the INVITE; returns the final reply (the first one received)."""
        self.number = number
        self.to = f"<sip:{number}@127.0.0.1>"
        invite = [
            *self.head(
                "INVITE",
                f"sip:{number}@127.0.0.1:{self.edge.sip_port}",
                1,
                self.to,
                "z9hG4bK" + uuid.uuid4().hex,
            ),
            f"Contact: <sip:pbx@{self.source}:{self.port}>",
        ]
        self.send(invite)
        self.send(invite)
        while True:
            reply = self.sock.recv(65535).decode()
            if not re.match(r"SIP/2\.0 1\d\d ", reply):
                self.invite_branch = invite[1]
                return reply

    def ack_refusal(self, reply: str) -> None:
        to = header(reply, "To")
        lines = self.head("ACK", f"sip:{self.number}@127.0.0.1:{self.edge.sip_port}", 1, to, "x")
        lines[1] = self.invite_branch  # a non-2xx's ACK reuses the INVITE's branch (RFC 3261 17.1.1.3)
        self.send(lines)

    def hang_up(self, answer: str) -> str:
        target, routes = dialog_of(answer)
        to = header(answer, "To")
        for method, cseq in (("ACK", 1), ("BYE", 2)):
            self.send(
                [
                    *self.head(method, target, cseq, to, "z9hG4bK" + uuid.uuid4().hex),
                    *(f"Route: {r}" for r in routes),
                ]
            )
        while True:
            reply = self.sock.recv(65535).decode()
            if "CSeq: 2 BYE" in reply:
                return reply.split("\r\n", 1)[0]


def test_an_admitted_invite_and_its_retransmission_are_one_call_one_channel_one_record(
    sip_edge: Edge,
) -> None:
    conn_id = caller(sip_edge, "127.0.8.10")
    phone = Phone(sip_edge, "127.0.8.10")
    number = service_name()
    answer = phone.invite_twice(number)
    assert answer.startswith("SIP/2.0 200 "), answer
    assert sip_edge.calls_of(conn_id) == 1
    assert len(upstream_invites(sip_edge, number)) == 1
    assert phone.hang_up(answer) == "SIP/2.0 200 OK"
    eventually(lambda: sip_edge.calls_of(conn_id) == 0, timeout=5)
    finished = eventually(
        lambda: [r for r in records(sip_edge, conn_id) if r["state"] == "finished"], timeout=10
    )
    assert len(records(sip_edge, conn_id)) == 1 and finished[0]["sip_status"] == 200


def test_a_refused_invite_and_its_retransmission_leave_one_record(sip_edge: Edge) -> None:
    conn_id = caller(sip_edge, "127.0.8.11", {"whitelisted_destinations": ["US"]})
    phone = Phone(sip_edge, "127.0.8.11")
    refusal = phone.invite_twice("+442071838752")
    assert refusal.startswith("SIP/2.0 403 "), refusal
    # A refusal is stateless: each copy is refused, after the edge logged it.
    second = phone.sock.recv(65535).decode()
    assert second.split("\r\n", 1)[0] == refusal.split("\r\n", 1)[0]
    phone.ack_refusal(refusal)
    # One more call after both: once its record is in, both copies' logs were imported before it.
    later = Phone(sip_edge, "127.0.8.11")
    later.ack_refusal(later.invite_twice("+442071838753"))
    eventually(lambda: len({r["cld"] for r in records(sip_edge, conn_id)}) == 2, timeout=10)
    rows = records(sip_edge, conn_id)
    assert sorted(r["cld"] for r in rows) == ["+442071838752", "+442071838753"], rows
    assert {r["d_code"] for r in rows} == {"D13"}
