"""Response shapes of connections, for our OpenAPI document (records are built from stored documents)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, create_model

from trunkline.resources.connections.kinds import KINDS, KindSpec
from trunkline.resources.connections.models import AnchorSite


def _record_model(spec: KindSpec) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "id": (str, ...),
        "record_type": (Literal[spec.record_type], ...),
        "created_at": (str, ...),
        "updated_at": (str, ...),
    }
    if spec.has_credentials:
        fields["user_name"] = (str, ...)
        fields["password"] = (str, ...)
    fields.update({name: (type_, None) for name, (type_, _) in spec.read_only.items()})
    name = spec.title.replace(" connection", "Connection").replace(" ", "")
    model = create_model(name, __base__=spec.settings, __module__=__name__, **fields)
    model.model_config = ConfigDict(**{**model.model_config, "strict": False, "extra": "allow"})
    return model


RECORDS: dict[str, type[BaseModel]] = {kind: _record_model(spec) for kind, spec in KINDS.items()}


class Connection(BaseModel):
    """A connection as `/connections` lists it, whatever its kind."""

    id: str
    record_type: Literal["credential_connection", "fqdn_connection", "ip_connection"]
    active: bool
    anchorsite_override: AnchorSite
    connection_name: str | None = None
    created_at: str
    updated_at: str
    outbound_voice_profile_id: str | None = None
    tags: list[str]
    webhook_api_version: Literal["1", "2"]
    webhook_event_url: str | None = None
    webhook_event_failover_url: str | None = None
