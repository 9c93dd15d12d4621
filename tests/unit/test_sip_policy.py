"""sip.policy: an outbound voice profile's rules for one call, with Telnyx's refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from trunkline.sip import numbers, policy

NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LONDON = numbers.classify("+442071838750", "US")
CHICAGO = numbers.classify("+13125550100", "US")


def police(dialled: numbers.Dialled = CHICAGO, **kw: object) -> policy.Refusal | policy.Admission:
    args: dict = {
        "dialled": dialled,
        "profile": policy.Profile(),
        "profile_id": "p1",
        "rate_deck": False,
        "rate": None,
        "spent_nanos": 0,
        "now": NOON,
    }
    args.update(kw)
    return policy.police(**args)


def test_a_destination_outside_the_whitelist_is_d13_with_telnyxs_phrase() -> None:
    refused = police(LONDON, profile=policy.Profile(whitelist=("US", "CA")))
    assert refused == policy.Refusal(
        403,
        "Dialed number +442071838750 (pertinent countries: GB) is not included in whitelisted countries: "
        "US, CA D13",
        "D13",
    )
    assert police(CHICAGO, profile=policy.Profile(whitelist=("US", "CA"))) == policy.Admission()


def test_rates_apply_only_with_a_deck() -> None:
    assert police(rate_deck=False, rate=None) == policy.Admission()
    assert police(rate_deck=True, rate=None) == policy.Refusal(403, "No Rates Found TM1", "TM1")
    capped = policy.Profile(max_rate=Decimal("0.10"))
    assert police(rate_deck=True, rate=Decimal("0.15"), profile=capped).code == "D24"  # type: ignore[union-attr]
    assert police(rate_deck=True, rate=Decimal("0.10"), profile=capped) == policy.Admission()


@pytest.mark.parametrize(
    ("start", "end", "hour", "minute", "inside"),
    [
        ("09:00", "17:00", 8, 59, False),
        ("09:00", "17:00", 9, 0, True),
        ("09:00", "17:00", 16, 59, True),
        ("09:00", "17:00", 17, 0, False),
        ("22:00", "06:00", 23, 0, True),
        ("22:00", "06:00", 5, 59, True),
        ("22:00", "06:00", 6, 0, False),
        ("22:00", "06:00", 12, 0, False),
        ("08:00:00.00Z", "08:00:00.00Z", 3, 0, True),
    ],
)
def test_calling_window_with_and_without_wrapping_midnight(
    start: str, end: str, hour: int, minute: int, inside: bool
) -> None:
    profile = policy.Profile(window_start=start, window_end=end)
    verdict = police(profile=profile, now=NOON.replace(hour=hour, minute=minute))
    assert isinstance(verdict, policy.Admission) is inside
    if not inside:
        assert verdict == policy.Refusal(403, "Outside the outbound profile's calling window TL1", "TL1")


def test_daily_spend_limit_refuses_once_reached() -> None:
    profile = policy.Profile(spend_limit=Decimal("1.00"))
    assert police(profile=profile, spent_nanos=999_999_999) == policy.Admission()
    assert police(profile=profile, spent_nanos=1_000_000_000) == policy.Refusal(
        403, "International daily spent limit reached D39", "D39"
    )


def test_calls_per_cld_counts_per_number_and_window_occurrence() -> None:
    profile = policy.Profile(window_start="22:00", window_end="06:00", calls_per_cld=2)
    late = police(profile=profile, now=NOON.replace(hour=23))
    early = police(profile=profile, now=datetime(2026, 12, 2, 5, 0, tzinfo=UTC))
    assert isinstance(late, policy.Admission) and isinstance(early, policy.Admission)
    # 23:00 on the 1st and 05:00 on the 2nd are one window occurrence: one counter.
    assert late.cld_key == early.cld_key == "p1|+13125550100|20261201T2200"
    assert (late.cld_limit, late.cld_ttl) == (2, 7 * 3600)
    assert police(profile=policy.Profile(calls_per_cld=1)).cld_key.endswith("|20261201T0000")  # type: ignore[union-attr]


def test_emergency_calls_pass_every_commercial_rule() -> None:
    strict = policy.Profile(whitelist=(), spend_limit=Decimal("0"), window_start="01:00", window_end="02:00")
    assert police(numbers.classify("911", "US"), profile=strict, rate_deck=True) == policy.Admission()


@pytest.mark.parametrize(
    ("kind", "emergency", "applies"),
    [
        ("always", False, True),
        ("always", True, True),
        ("normal", False, True),
        ("normal", True, False),
        ("emergency", False, False),
        ("emergency", True, True),
    ],
)
def test_ani_override_type(kind: str, emergency: bool, applies: bool) -> None:
    assert policy.applies_ani_override("+13125550199", kind, emergency=emergency) is applies
    assert not policy.applies_ani_override("", kind, emergency=emergency)


def test_profile_from_the_views_text_columns() -> None:
    profile = policy.Profile.from_view(
        whitelist='["US","GB"]',
        max_rate="0.25",
        spend_limit="",
        window_start="",
        window_end="",
        calls_per_cld="3",
    )
    assert profile == policy.Profile(whitelist=("US", "GB"), max_rate=Decimal("0.25"), calls_per_cld=3)
