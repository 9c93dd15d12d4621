"""Credential, FQDN and IP connections: one model family, one set of operations, three kinds as data."""

from trunkline.resources.connections.kinds import BY_RECORD_TYPE, CREDENTIAL, FQDN, IP, KINDS, KindSpec
from trunkline.resources.connections.service import (
    attachment_errors,
    create,
    delete,
    find,
    forget_endpoint,
    get_document,
    get_slim,
    list_documents,
    slim,
    update,
)

__all__ = [
    "BY_RECORD_TYPE",
    "CREDENTIAL",
    "FQDN",
    "IP",
    "KINDS",
    "KindSpec",
    "attachment_errors",
    "create",
    "delete",
    "find",
    "forget_endpoint",
    "get_document",
    "get_slim",
    "list_documents",
    "slim",
    "update",
]
