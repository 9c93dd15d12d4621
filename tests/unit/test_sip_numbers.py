"""sip.numbers: number knowledge rendered from phonenumbers, held against phonenumbers itself."""

from __future__ import annotations

import phonenumbers
import pytest

from trunkline.sip import numbers

PLAN = numbers.plan()


def test_national_us_number_with_us_localization_is_e164() -> None:
    assert numbers.normalise(PLAN, "3125550100", "US") == numbers.Dialled("13125550100", ("US",), False)
    assert numbers.normalise(PLAN, "13125550100", "US").e164 == "13125550100"
    assert numbers.normalise(PLAN, "01144" + "2071234567", "US").e164 == "442071234567"


def test_blank_localization_tries_us_then_gb_rules() -> None:
    assert numbers.normalise(PLAN, "3125550100", None).e164 == "13125550100"
    assert numbers.normalise(PLAN, "02071234567", None) == numbers.Dialled("442071234567", ("GB",), False)


@pytest.mark.parametrize("dialled", ["abc", "15551234567", "+999123", ""])
def test_unparseable_or_invalid_numbers_have_no_e164(dialled: str) -> None:
    assert numbers.normalise(PLAN, dialled, "US").e164 is None


def test_a_toll_free_plus1_number_is_pertinent_to_every_nanp_country_it_is_valid_in() -> None:
    got = numbers.normalise(PLAN, "+18005550100", None).pertinent
    want = tuple(
        r
        for r in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1])
        if phonenumbers.is_valid_number_for_region(phonenumbers.parse("+18005550100"), r)
    )
    assert got == want and {"US", "CA"} <= set(got) and len(got) > 2


def test_emergency_numbers_follow_the_localization_country() -> None:
    assert numbers.normalise(PLAN, "911", "US").emergency
    assert not numbers.normalise(PLAN, "999", "US").emergency
    assert numbers.normalise(PLAN, "999", "GB").emergency
    assert numbers.normalise(PLAN, "112", None).emergency


def test_e164_numbers_of_every_region_are_valid_where_phonenumbers_says() -> None:
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            got = numbers.normalise(PLAN, e164, region)
            assert got.e164 == e164[1:], (region, e164)
            assert phonenumbers.region_code_for_number(example) in got.pertinent, (region, e164)


def test_national_numbers_of_every_region_parse_as_phonenumbers_parses_them() -> None:
    """Known differences: national prefix transform rules and non-literal prefixes (AR, BY)."""
    differ = set()
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
            digits = "".join(c for c in national if c.isdigit())
            parsed = phonenumbers.parse(digits, region)
            want = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]
            if numbers.normalise(PLAN, digits, region).e164 != (
                want if phonenumbers.is_valid_number(parsed) else None
            ):
                differ.add(region)
    assert differ <= {"AR", "BY"}


def test_rendering_is_deterministic_and_names_every_region() -> None:
    routes = numbers.render_routes(PLAN)
    assert routes == numbers.render_routes(numbers.plan())
    assert 'case "US":' in routes and 'case "GB":' in routes
    groups = numbers.render_groups(PLAN)
    assert groups.count("\n[") == numbers.group_count(PLAN)
