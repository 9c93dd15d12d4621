"""The three connection kinds as data: what each one's endpoints take, keep and return.

Everything that differs between credential, FQDN and IP connections is in this table; the operations
in `service.py` and the router in `http/routes/connections.py` serve all three from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from trunkline.resources._base import TelnyxModel, partial_model
from trunkline.resources.connections import models

Kind = Literal["credential", "fqdn", "ip"]
ORDINALS = ("primary", "secondary", "tertiary")

# Fields Telnyx's FQDN connection record carries and no request may set: name -> (type, value).
# Telnyx's OpenAPI document lists them on FqdnConnection and on no request body.
FQDN_READ_ONLY: Mapping[str, tuple[Any, Any]] = {
    "adjust_dtmf_timestamp": (bool | None, False),
    "call_cost_enabled": (bool | None, False),
    "ignore_dtmf_duration": (bool | None, False),
    "ignore_mark_bit": (bool | None, False),
    "rtp_pass_codecs_on_stream_change": (bool | None, False),
    "send_normalized_timestamps": (bool | None, False),
    "third_party_control_enabled": (bool | None, False),
    "txt_name": (str | None, None),
    "txt_value": (str | None, None),
    "txt_ttl": (int | None, None),
}


@dataclass(frozen=True)
class KindSpec:
    kind: Kind
    path: str
    record_type: str
    title: str
    settings: type[models.ConnectionSettings]
    create: type[TelnyxModel]
    # Which records `inbound.default_<ordinal>_<endpoint>_id` point at, if any.
    endpoint: Literal["ip", "fqdn"] | None
    # Keys a create body may not carry (JSON pointers); they are set by PATCH only.
    create_forbids: tuple[str, ...] = ()
    # Keys ignored on create (PATCH-only) and on PATCH (create-only), as Telnyx's schemas have them.
    create_drops: tuple[str, ...] = ("conversation_persistence",)
    update_drops: tuple[str, ...] = ()
    # Whether the connection is a SIP account with a user name and password of its own.
    has_credentials: bool = False
    # Whether the caller chooses the credentials (credential) or we generate them (FQDN, read-only).
    generated_credentials: bool = False
    # Fields every record of this kind carries that no request sets: name -> (type, value).
    read_only: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    # Whether `default_*_id` may name one of the connection's endpoints by its address instead of its
    # id (Telnyx's own IP connection PATCH example sends "192.168.0.0" there); the id is stored.
    defaults_by_address: bool = False
    # Whether `microsoft_teams_sbc: true` on create gives the connection an FQDN record of its own,
    # `<connection id>.mstsbc.telnyx.tech` port 5061, as Telnyx's create FQDN connection does.
    teams_sbc_fqdn: bool = False

    @property
    def update(self) -> type[TelnyxModel]:
        return partial_model(self.create)

    @property
    def default_fields(self) -> tuple[str, ...]:
        if self.endpoint is None:
            return ()
        return tuple(f"default_{o}_{self.endpoint}_id" for o in ORDINALS)


CREDENTIAL = KindSpec(
    kind="credential",
    path="credential_connections",
    record_type="credential_connection",
    title="Credential connection",
    settings=models.CredentialConnectionSettings,
    create=models.CredentialConnectionCreate,
    endpoint=None,
    has_credentials=True,
)
FQDN = KindSpec(
    kind="fqdn",
    path="fqdn_connections",
    record_type="fqdn_connection",
    title="FQDN connection",
    settings=models.FqdnConnectionSettings,
    create=models.FqdnConnectionSettings,
    endpoint="fqdn",
    # No FQDN can belong to a connection that does not exist yet.
    create_forbids=tuple(f"/inbound/default_{o}_fqdn_id" for o in ORDINALS),
    update_drops=("microsoft_teams_sbc",),
    has_credentials=True,
    generated_credentials=True,
    read_only=FQDN_READ_ONLY,
    teams_sbc_fqdn=True,
)
IP = KindSpec(
    kind="ip",
    path="ip_connections",
    record_type="ip_connection",
    title="IP connection",
    settings=models.IpConnectionSettings,
    create=models.IpConnectionSettings,
    endpoint="ip",
    create_forbids=tuple(f"/inbound/default_{o}_ip_id" for o in ORDINALS),
    defaults_by_address=True,
)

KINDS: dict[Kind, KindSpec] = {spec.kind: spec for spec in (CREDENTIAL, FQDN, IP)}
BY_RECORD_TYPE: dict[str, KindSpec] = {spec.record_type: spec for spec in KINDS.values()}
