"""Outbound voice profile policy for one call: admitted, or refused with Telnyx's status and reason.

Pure functions of the call and the settings the edge read for it (view `kam_connection`, the rate deck
and the day's spend); the edge runs them through app_python3 (sip/kamailio_app.py). Telnyx's codes and
phrases: "Telnyx SIP Response Codes", https://support.telnyx.com/en/articles/4409457-telnyx-sip-response-codes.
The calling window's refusals are trunkline's own (Telnyx documents none): their codes, TL1 and TL2,
are not Telnyx codes, so no Telnyx meaning is reused (docs/sip.md).

Standard library only: it runs inside Kamailio's embedded interpreter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from trunkline.sip.numbers import Dialled

NANOS = Decimal(1_000_000_000)


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str
    code: str  # D13, TM1, ...


def invalid_number() -> Refusal:
    return Refusal(404, "Dialed number is not valid D14", "D14")


@dataclass(frozen=True)
class Profile:
    """What an outbound voice profile says about a call; '' or None: not set."""

    whitelist: tuple[str, ...] | None = None  # None: whitelisted_destinations not set at all
    max_rate: Decimal | None = None
    spend_limit: Decimal | None = None  # daily_spend_limit, only when daily_spend_limit_enabled
    window_start: str = ""  # "HH:MM" UTC
    window_end: str = ""
    calls_per_cld: int | None = None

    @classmethod
    def from_view(
        cls,
        *,
        whitelist: str,
        max_rate: str,
        spend_limit: str,
        window_start: str,
        window_end: str,
        calls_per_cld: str,
    ) -> Profile:
        """From the view's text columns (JSON text for the list; '' for unset)."""
        listed = json.loads(whitelist) if whitelist else None
        return cls(
            whitelist=tuple(listed) if isinstance(listed, list) else None,
            max_rate=_decimal(max_rate),
            spend_limit=_decimal(spend_limit),
            window_start=window_start,
            window_end=window_end,
            calls_per_cld=int(calls_per_cld) if calls_per_cld.strip().isdigit() else None,
        )


@dataclass(frozen=True)
class Window:
    """The calling window occurrence `now` falls in: [start, end)."""

    start: datetime
    end: datetime


def window_at(profile: Profile, now: datetime) -> Window | None:
    """The occurrence of the calling window containing `now`; None when `now` is outside it.

    "The UTC time of day ... when calls are allowed to start" / "no longer allowed to start"
    (https://developers.telnyx.com/api/outbound-voice-profiles/create-voice-profile, calling_window).
    A window whose start is after its end wraps midnight (22:00-06:00); start == end is the whole day.
    With no times set, the window is the UTC day: calls_per_cld then counts per day.
    """
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if not profile.window_start and not profile.window_end:
        return Window(day, day + timedelta(days=1))
    start = _minutes(profile.window_start or "00:00")
    end = _minutes(profile.window_end or "00:00")
    at = now.hour * 60 + now.minute
    if start == end:
        begin = day + timedelta(minutes=start) - (timedelta(days=1) if at < start else timedelta())
        return Window(begin, begin + timedelta(days=1))
    if start < end:
        if start <= at < end:
            return Window(day + timedelta(minutes=start), day + timedelta(minutes=end))
        return None
    if at >= start:
        return Window(day + timedelta(minutes=start), day + timedelta(days=1, minutes=end))
    if at < end:
        return Window(day - timedelta(days=1) + timedelta(minutes=start), day + timedelta(minutes=end))
    return None


@dataclass(frozen=True)
class Admission:
    """An admitted call's obligations at the edge: the counter calls_per_cld takes, if any."""

    cld_key: str = ""  # "" : no calls_per_cld limit
    cld_limit: int = -1
    cld_ttl: int = 0  # seconds until the window's end: the counter lapses with it


def police(
    *,
    dialled: Dialled,
    profile: Profile,
    profile_id: str,
    rate_deck: bool,
    rate: Decimal | None,
    spent_nanos: int,
    now: datetime,
) -> Refusal | Admission:
    """The profile's rules in order: destination (D13), rate (TM1, D24), window (TL1), spend (D39).

    Emergency numbers pass every rule: a commercial policy never stops an emergency call.
    """
    if dialled.emergency:
        return Admission()
    e164 = dialled.e164 or ""
    if profile.whitelist is not None and not set(dialled.countries) & set(profile.whitelist):
        return Refusal(
            403,
            f"Dialed number {e164} (pertinent countries: {', '.join(dialled.countries)}) is not "
            f"included in whitelisted countries: {', '.join(profile.whitelist)} D13",
            "D13",
        )
    if rate_deck:
        if rate is None:
            return Refusal(403, "No Rates Found TM1", "TM1")
        if profile.max_rate is not None and rate > profile.max_rate:
            return Refusal(403, "Maximum destination rate limit exceeded D24", "D24")
    window = window_at(profile, now)
    if window is None:
        return Refusal(403, "Outside the outbound profile's calling window TL1", "TL1")
    if profile.spend_limit is not None and Decimal(spent_nanos) / NANOS >= profile.spend_limit:
        return Refusal(403, "International daily spent limit reached D39", "D39")
    if profile.calls_per_cld is None:
        return Admission()
    ttl = max(1, int((window.end - now).total_seconds()))
    key = f"{profile_id}|{e164}|{window.start:%Y%m%dT%H%M}"
    return Admission(cld_key=key, cld_limit=profile.calls_per_cld, cld_ttl=ttl)


def cld_refusal() -> Refusal:
    return Refusal(403, "Calls per CLD limit reached for the calling window TL2", "TL2")


# The channel limits, by the counter that counts them: a dialog profile of kamailio.cfg, or a shared
# counter (sip/counters.py) ("Telnyx SIP Response Codes": https://support.telnyx.com/en/articles/4409457-telnyx-sip-response-codes).
CHANNEL_LIMITS = {
    "outc": Refusal(403, "Connection channel limit exceeded D3", "D3"),
    "ovp": Refusal(403, "OB profile channel limit exceeded D2", "D2"),
    "acct": Refusal(403, "User channel limit exceeded D1", "D1"),
    "inc": Refusal(486, "User Busy D4", "D4"),
}


def over_limit(kind: str) -> Refusal:
    """The refusal of a call that would pass counter `kind`'s limit ("cld": calls_per_cld)."""
    return cld_refusal() if kind == "cld" else CHANNEL_LIMITS[kind]


def applies_ani_override(ani_override: str, override_type: str, *, emergency: bool) -> bool:
    """`ani_override_type`: always, normal (non-emergency calls only) or emergency (emergency only)."""
    if not ani_override:
        return False
    if override_type == "normal":
        return not emergency
    if override_type == "emergency":
        return emergency
    return True


def edge_now(offset_ms: int, real: float) -> datetime:
    """The server clock: real time moved by the offset tests set (table clock_offset)."""
    return datetime.fromtimestamp(real + offset_ms / 1000, tz=UTC)


def _minutes(time_of_day: str) -> int:
    # "HH:MM", or the longer spellings the API accepts ("08:00:00.00Z"): hours and minutes lead.
    return int(time_of_day[0:2]) * 60 + int(time_of_day[3:5])


def _decimal(text: str) -> Decimal | None:
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None
