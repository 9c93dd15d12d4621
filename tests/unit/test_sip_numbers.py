"""sip.numbers: what the edge makes of a dialled number, held against phonenumbers itself."""

from __future__ import annotations

import phonenumbers
import pytest

from trunkline.sip import numbers


def test_national_numbers_follow_the_localization() -> None:
    assert numbers.classify("3125550100", "US") == numbers.Dialled("+13125550100", ("US",), False)
    assert numbers.classify("13125550100", "US").e164 == "+13125550100"
    assert numbers.classify("011442071838750", "US").e164 == "+442071838750"
    assert numbers.classify("02071838750", "GB") == numbers.Dialled("+442071838750", ("GB",), False)
    assert numbers.classify("0033142685300", "GB").e164 == "+33142685300"


def test_blank_localization_tries_us_then_gb() -> None:
    assert numbers.classify("3125550100", None).e164 == "+13125550100"
    assert numbers.classify("02071838750", None) == numbers.Dialled("+442071838750", ("GB",), False)
    assert numbers.classify("02071838750", "US").e164 is None


def test_plus_e164_is_taken_as_it_is_when_valid() -> None:
    assert numbers.classify("+442071838750", "US").countries == ("GB",)
    assert numbers.classify("+16135550123", "US").countries == ("CA",)


@pytest.mark.parametrize("dialled", ["", "service", "12345", "+1555", "1" * 21, "+44 20", "31255501000000"])
def test_unparseable_or_invalid_numbers_have_no_e164(dialled: str) -> None:
    assert numbers.classify(dialled, "US").e164 is None


@pytest.mark.parametrize(("dialled", "region"), [("911", "US"), ("112", "US"), ("999", "GB"), ("112", "GB")])
def test_emergency_numbers_of_the_localization(dialled: str, region: str) -> None:
    assert numbers.classify(dialled, region) == numbers.Dialled(None, (region,), True)


def test_blank_localization_knows_emergency_numbers_of_us_and_gb() -> None:
    assert numbers.classify("999", None) == numbers.Dialled(None, ("GB",), True)
    assert not numbers.classify("999", "US").emergency


def test_agrees_with_phonenumbers_over_a_sample() -> None:
    # Every region's example numbers, dialled in +E.164: valid, in exactly the regions phonenumbers says.
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        example = phonenumbers.example_number(region)
        if example is None:
            continue
        e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
        got = numbers.classify(e164, "US")
        assert got.e164 == e164, region
        assert region in got.countries, region


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("+e164", "+13125550100"), ("e164", "13125550100"), ("national", "3125550100"), ("sip_username", "bob")],
)
def test_dnis_formats(fmt: str, expected: str) -> None:
    assert numbers.dnis("+13125550100", fmt, "bob") == expected


def test_national_dnis_of_a_gb_number_keeps_its_trunk_prefix() -> None:
    assert numbers.dnis("+442071838750", "national", "") == "02071838750"


@pytest.mark.parametrize(
    ("caller", "called", "fmt", "expected"),
    [
        ("+13125550199", "+13125550100", "+E.164", "+13125550199"),
        ("+13125550199", "+13125550100", "E.164", "13125550199"),
        ("+13125550199", "+13125550100", "E.164-national", "3125550199"),
        ("+13125550199", "+13125550100", "+E.164-national", "3125550199"),
        ("+442071838750", "+13125550100", "+E.164-national", "+442071838750"),
        ("+442071838750", "+13125550100", "E.164-national", "442071838750"),
        ("13125550199", "+13125550100", "+E.164", "+13125550199"),
        ("anonymous", "+13125550100", "+E.164", "anonymous"),
    ],
)
def test_ani_formats(caller: str, called: str, fmt: str, expected: str) -> None:
    assert numbers.ani(caller, called, fmt) == expected
