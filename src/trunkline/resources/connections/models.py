"""Request models of the three connection kinds: shared fields once, each kind adding what differs.

Field lists, enums, bounds and defaults follow Telnyx's OpenAPI spec and its Python SDK (`telnyx`,
pinned in pyproject.toml), e.g.
https://developers.telnyx.com/api-reference/fqdn-connections/create-an-fqdn-connection

A `*Settings` model is what a connection is; `*Create` is what POST takes; PATCH takes
`partial_model(*Create)` and the merged result is validated again as `*Settings`, so cross-field
rules hold after every change.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from trunkline.resources._base import RuleError, TelnyxModel, Url, UrlOrEmpty, no_nul

AnchorSite = Literal[
    "Latency",
    "Chicago, IL",
    "Ashburn, VA",
    "San Jose, CA",
    "Sydney, Australia",
    "Amsterdam, Netherlands",
    "London, UK",
    "Toronto, Canada",
    "Vancouver, Canada",
    "Frankfurt, Germany",
]
Codec = Literal["G722", "G711U", "G711A", "G729", "OPUS", "H.264", "VP8", "AMR-WB"]
DEFAULT_CODECS: list[Codec] = ["G722", "G711U", "G711A", "G729", "OPUS", "H.264"]
Transport = Literal["UDP", "TCP", "TLS"]
SipRegion = Literal["US", "Europe", "Australia"]
SubdomainReceive = Literal["only_my_connections", "from_anyone"]
T38Source = Literal["telnyx", "customer", "disabled", "passthru", "caller-passthru", "callee-passthru"]
NoiseEngine = Literal[
    "denoiser",
    "deep_filter_net",
    "deep_filter_net_large",
    "krisp_viva_tel",
    "krisp_viva_tel_lite",
    "krisp_viva_promodel",
    "krisp_viva_ss",
    "quail_voice_focus",
]
Uuid = Annotated[
    str, Field(pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
]
ConnectionName = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(no_nul)]
ChannelLimit = Annotated[int, Field(ge=0, le=100_000)]


def _check_user_name(value: str) -> str:
    # 4-32 alphanumerics (Telnyx's request schema); one of the first five a letter (its SDK's docs).
    if not re.fullmatch(r"[A-Za-z0-9]{4,32}", value):
        raise ValueError("must be 4 to 32 characters, letters and digits only")
    if not any(c.isalpha() for c in value[:5]):
        raise ValueError("one of the first 5 characters must be a letter")
    return value


UserName = Annotated[str, AfterValidator(_check_user_name)]
Password = Annotated[str, Field(min_length=8, max_length=128)]
# DOCS: 12-48 characters, letters, digits or hyphens.
IpAuthToken = Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{12,48}$")]
TechPrefix = Annotated[str, Field(pattern=r"^[0-9]{4}$")]

ATTENUATION_DEFAULTS: dict[str, int] = {"denoiser": 0, "quail_voice_focus": 100}


class RtcpSettings(TelnyxModel):
    port: Literal["rtcp-mux", "rtp+1"] = "rtp+1"
    capture_enabled: bool = False
    report_frequency_secs: int = Field(5, ge=5, le=3000)


class JitterBuffer(TelnyxModel):
    enable_jitter_buffer: bool = False
    jitterbuffer_msec_min: int = Field(60, ge=40, le=400)
    jitterbuffer_msec_max: int = Field(200, ge=40, le=400)

    @model_validator(mode="after")
    def _min_not_above_max(self) -> JitterBuffer:
        if self.jitterbuffer_msec_min > self.jitterbuffer_msec_max:
            raise RuleError(
                "jitterbuffer_msec_min must not be greater than jitterbuffer_msec_max",
                loc=("jitterbuffer_msec_min",),
            )
        return self


class NoiseSuppressionDetails(TelnyxModel):
    engine: NoiseEngine = "denoiser"
    attenuation_limit: int | None = Field(None, ge=0, le=100)

    @model_validator(mode="after")
    def _engine_default(self) -> NoiseSuppressionDetails:
        if self.attenuation_limit is None:
            self.attenuation_limit = ATTENUATION_DEFAULTS.get(self.engine, 80)
        return self


class Inbound(TelnyxModel):
    ani_number_format: Literal["+E.164", "E.164", "+E.164-national", "E.164-national"] = "E.164-national"
    dnis_number_format: Literal["+e164", "e164", "national", "sip_username"] = "e164"
    codecs: list[Codec] = Field(default_factory=lambda: list(DEFAULT_CODECS), max_length=16)
    channel_limit: ChannelLimit | None = None
    default_routing_method: Literal["sequential", "round-robin"] | None = None
    generate_ringback_tone: bool = False
    isup_headers_enabled: bool = False
    prack_enabled: bool = False
    shaken_stir_enabled: bool = False
    sip_compact_headers_enabled: bool = True
    timeout_1xx_secs: int = Field(3, ge=1, le=120)
    timeout_2xx_secs: int = Field(90, ge=1, le=600)


class CredentialInbound(Inbound):
    simultaneous_ringing: Literal["disabled", "enabled"] = "disabled"


class _SubdomainInbound(Inbound):
    sip_region: SipRegion = "US"
    sip_subdomain: str | None = Field(None, pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class FqdnInbound(_SubdomainInbound):
    default_routing_method: Literal["sequential", "round-robin"] | None = "sequential"
    sip_subdomain_receive_settings: SubdomainReceive = "from_anyone"
    default_primary_fqdn_id: str | None = None
    default_secondary_fqdn_id: str | None = None
    default_tertiary_fqdn_id: str | None = None


class IpInbound(_SubdomainInbound):
    sip_subdomain_receive_settings: SubdomainReceive | None = None
    default_primary_ip_id: str | None = None
    default_secondary_ip_id: str | None = None
    default_tertiary_ip_id: str | None = None


class Outbound(TelnyxModel):
    outbound_voice_profile_id: str | None = None
    ani_override: str | None = Field("", max_length=32)
    ani_override_type: Literal["always", "normal", "emergency"] = "always"
    call_parking_enabled: bool | None = False
    channel_limit: ChannelLimit | None = None
    generate_ringback_tone: bool = False
    instant_ringback_enabled: bool = True
    localization: str | None = Field("US", pattern=r"^([A-Z]{2})?$")
    t38_reinvite_source: T38Source = "telnyx"


class CredentialOutbound(Outbound):
    pass


class FqdnOutbound(Outbound):
    ani_override: str | None = Field(None, max_length=32)
    instant_ringback_enabled: bool = False
    t38_reinvite_source: T38Source = "customer"
    encrypted_media: Literal["SRTP"] | None = None
    ip_authentication_method: Literal["credential-authentication", "ip-authentication"] = "ip-authentication"
    ip_authentication_token: IpAuthToken | None = None
    tech_prefix: TechPrefix | None = None
    timeout_1xx_secs: int = Field(3, ge=1, le=120)
    timeout_2xx_secs: int = Field(90, ge=1, le=600)


class IpOutbound(Outbound):
    localization: str | None = Field(None, pattern=r"^([A-Z]{2})?$")
    t38_reinvite_source: T38Source = "customer"
    ip_authentication_method: Literal["tech-prefixp-charge-info", "token"] = "tech-prefixp-charge-info"
    ip_authentication_token: IpAuthToken | None = None
    tech_prefix: Annotated[str, Field(pattern=r"^([0-9]{4})?$")] = ""


def _http_or_https(value: str) -> str:
    if value.split(":", 1)[0].lower() not in ("http", "https"):
        raise ValueError("must be an http or https URL, such as https://example.com/webhooks")
    return value


# Where events are POSTed: an absolute URL ("Must include a scheme, such as 'https'", Telnyx's spec)
# of a scheme they can be POSTed with. Which addresses may receive them is the delivering server's
# setting, checked when it connects (docs/webhooks.md, "Where events may go").
WebhookUrl = Annotated[Url, AfterValidator(_http_or_https)]
# Or "" (Telnyx's default for the failover URL).
WebhookUrlOrEmpty = Annotated[UrlOrEmpty, AfterValidator(lambda v: v if v == "" else _http_or_https(v))]


class ConnectionSettings(TelnyxModel):
    """The fields all three kinds share (credential, FQDN and IP connections in Telnyx's spec)."""

    connection_name: ConnectionName | None = None
    active: bool = True
    anchorsite_override: AnchorSite = "Latency"
    android_push_credential_id: Uuid | None = None
    ios_push_credential_id: Uuid | None = None
    bridge_generate_comfort_noise_on_cn: bool = False
    call_cost_in_webhooks: bool = False
    conversation_persistence: bool = False
    # true for every kind, as Telnyx's response schema says (its credential request schema says
    # false): trunkline's choice.
    default_on_hold_comfort_noise_enabled: bool = True
    dtmf_type: Literal["RFC 2833", "Inband", "SIP INFO"] = "RFC 2833"
    encode_contact_header_enabled: bool = False
    # Accepted with any transport (trunkline's choice): Telnyx's spec prose and its SDK contradict
    # each other on whether SRTP needs TLS.
    encrypted_media: Literal["SRTP"] | None = None
    jitter_buffer: JitterBuffer = Field(default_factory=JitterBuffer)
    noise_suppression: Literal["inbound", "outbound", "both", "disabled"] = "disabled"
    noise_suppression_details: NoiseSuppressionDetails = Field(default_factory=NoiseSuppressionDetails)
    onnet_t38_passthrough_enabled: bool = False
    rtcp_settings: RtcpSettings = Field(default_factory=RtcpSettings)
    tags: list[Annotated[str, Field(max_length=255)]] = Field(default_factory=list, max_length=100)
    webhook_api_version: Literal["1", "2"] = "1"
    webhook_event_url: WebhookUrl | None = None
    webhook_event_failover_url: WebhookUrlOrEmpty | None = ""
    webhook_timeout_secs: int | None = Field(None, ge=0, le=30)


class CredentialConnectionSettings(ConnectionSettings):
    connection_name: ConnectionName
    user_name: UserName
    sip_uri_calling_preference: Literal["disabled", "unrestricted", "internal"] = "disabled"
    inbound: CredentialInbound = Field(default_factory=CredentialInbound)
    outbound: CredentialOutbound = Field(default_factory=CredentialOutbound)


class CredentialConnectionCreate(CredentialConnectionSettings):
    password: Password
    # Create alone may ask for TeXML webhooks, and only with outbound.call_parking_enabled (Telnyx's spec).
    webhook_api_version: Literal["1", "2", "texml"] = "1"  # type: ignore[assignment]

    @model_validator(mode="after")
    def _texml_needs_parking(self) -> CredentialConnectionCreate:
        if self.webhook_api_version == "texml" and self.outbound.call_parking_enabled is not True:
            raise RuleError(
                "'texml' requires outbound.call_parking_enabled to be true", loc=("webhook_api_version",)
            )
        return self


class FqdnConnectionSettings(ConnectionSettings):
    connection_name: ConnectionName
    transport_protocol: Transport = "UDP"
    microsoft_teams_sbc: bool = False
    inbound: FqdnInbound = Field(default_factory=FqdnInbound)
    outbound: FqdnOutbound = Field(default_factory=FqdnOutbound)


class IpConnectionSettings(ConnectionSettings):
    transport_protocol: Transport = "UDP"
    inbound: IpInbound = Field(default_factory=IpInbound)
    outbound: IpOutbound = Field(default_factory=IpOutbound)
