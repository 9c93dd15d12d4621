"""Constraint violations that only the database caught, as the Telnyx errors the API answers with.

The resources check uniqueness and references before they write; a violation reaching the database means
two writers raced, and the client gets the same 422 the pre-check would have given.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Executable

from trunkline.errors import DuplicateResource, MissingAssociation, ResourceInUse, TelnyxError

# Where a constraint's field sits in the request body. Keys are what each engine names: PostgreSQL the
# constraint (schema.py's naming convention), SQLite "table.column" of a UNIQUE index.
_POINTERS = {
    "uq_connection_user_name_key": "/user_name",
    "connection.user_name_key": "/user_name",
    "uq_connection_ip_authentication_token": "/outbound/ip_authentication_token",
    "connection.ip_authentication_token": "/outbound/ip_authentication_token",
    "uq_connection_sip_subdomain": "/inbound/sip_subdomain",
    "connection.sip_subdomain": "/inbound/sip_subdomain",
    "uq_ip_ip_address_port": "/ip_address",
    "ip.ip_address, ip.port": "/ip_address",
    "uq_access_ip_range_user_id_cidr_block": "/cidr_block",
    "access_ip_range.user_id, access_ip_range.cidr_block": "/cidr_block",
    "fk_connection_outbound_voice_profile_id_outbound_voice_profile": "/outbound/outbound_voice_profile_id",
    "fk_ip_connection_id_connection": "/connection_id",
    "fk_fqdn_connection_id_connection": "/connection_id",
}


def translate_integrity_error(exc: IntegrityError, stmt: Executable | None = None) -> TelnyxError:
    """A constraint the pre-checks did not catch (a race between two writers) as a Telnyx error.

    A foreign key that fails a DELETE means the row is still referenced (ON DELETE RESTRICT): the
    resources count references under a row lock (store/locks.py) first, so this is only the net.
    """
    orig = exc.orig
    name = getattr(orig, "constraint_name", None) or getattr(
        getattr(orig, "__cause__", None), "constraint_name", None
    )
    text = str(orig)
    if name is None and ":" in text:  # SQLite: "UNIQUE constraint failed: ip.ip_address, ip.port"
        name = text.split(":", 1)[1].strip()
    pointer = _POINTERS.get(name or "", "/")
    if "foreign key" in text.lower() and isinstance(stmt, sa.Delete):
        return ResourceInUse("This resource is still in use and cannot be deleted.")
    if "foreign key" in text.lower():
        return MissingAssociation("A referenced resource does not exist.", pointer=pointer)
    return DuplicateResource("A resource with these values already exists.", pointer=pointer)
