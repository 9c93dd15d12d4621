"""The three connection kinds as data: what each one's endpoints take, keep and return.

Everything that differs between credential, FQDN and IP connections is in this table; the operations
in `service.py` and the router in `http/routes/connections.py` serve all three from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from trunkline.resources._base import TelnyxModel, partial_model
from trunkline.resources.connections import models

Kind = Literal["credential", "fqdn", "ip"]
ORDINALS = ("primary", "secondary", "tertiary")


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
)

KINDS: dict[Kind, KindSpec] = {spec.kind: spec for spec in (CREDENTIAL, FQDN, IP)}
BY_RECORD_TYPE: dict[str, KindSpec] = {spec.record_type: spec for spec in KINDS.values()}
