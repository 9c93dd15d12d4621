"""Telnyx-shaped ids and timestamps.

Telnyx gives connections, outbound voice profiles and FQDNs numeric string ids of 18-19 digits
(e.g. "1293384261075731499"); IPs get UUIDs, as the `/ips/{id}` path of Telnyx's spec declares
(https://developers.telnyx.com/api-reference/ips/update-an-ip). Ours are snowflakes:
milliseconds since 2020-01-01 (41 bits), a node number (10 bits) and a per-millisecond sequence
(12 bits), so they sort by creation and several API processes never collide.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
import uuid

_EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
_NODE_BITS, _SEQ_BITS = 10, 12


class Snowflake:
    """Generates time-ordered 63-bit ids for one node."""

    def __init__(self, node: int | None = None) -> None:
        self.node = secrets.randbelow(1 << _NODE_BITS) if node is None else node
        self._lock = threading.Lock()
        self._last_ms = 0
        self._seq = 0

    def next(self) -> str:
        with self._lock:
            now = max(int(time.time() * 1000) - _EPOCH_MS, self._last_ms)
            if now == self._last_ms:
                self._seq = (self._seq + 1) & ((1 << _SEQ_BITS) - 1)
                if self._seq == 0:  # 4096 ids in one millisecond: borrow the next one
                    now += 1
            else:
                self._seq = 0
            self._last_ms = now
            return str((now << (_NODE_BITS + _SEQ_BITS)) | (self.node << _SEQ_BITS) | self._seq)


_default = Snowflake()


def configure(node: int | None) -> None:
    """Fix this process's node number (TRUNKLINE_NODE_ID); unset keeps a random one."""
    global _default
    if node is not None:
        _default = Snowflake(node)


def numeric_id() -> str:
    return _default.next()


def uuid_id() -> str:
    return str(uuid.uuid4())


def is_numeric_id(value: str) -> bool:
    """Whether `value` can be one of our numeric ids.

    Anything else names no record; checking first also keeps a NUL out of PostgreSQL, which would
    refuse the query (a 500) rather than find no row.
    """
    return value.isascii() and value.isdigit() and len(value) <= 20


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def format_timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now() -> str:
    """The current time as Telnyx writes it: ISO-8601 UTC with milliseconds."""
    return format_timestamp(dt.datetime.now(dt.UTC))
