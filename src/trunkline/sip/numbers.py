"""What the SIP edge makes of a dialled number: E.164, the countries it belongs to, emergency or not.

All number knowledge comes from the `phonenumbers` package (libphonenumber's metadata), called by the
edge itself: Kamailio runs this module in its workers through app_python3
(https://kamailio.org/docs/modules/5.6.x/modules/app_python3.html; sip/kamailio_app.py), so the
edge and the API agree on every number, with no table copied out of the metadata.

Telnyx's rule for `outbound.localization`: "A 2-character country code specifying the country whose
national dialing rules should be used ... When left blank, Telnyx will try US and GB dialing rules, in
that order" (https://developers.telnyx.com/api/connections/create-credential-connection, field
outbound.localization). A number counts when libphonenumber calls it valid.

This module imports only the standard library and `phonenumbers`: it runs inside Kamailio's embedded
interpreter, which has no other package of the project's environment.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import shortnumberinfo

_DIALLED = re.compile(r"^\+?[0-9]{1,20}$")


@dataclass(frozen=True)
class Dialled:
    e164: str | None  # "+" and digits; None: not a valid number under the dialling rules tried
    countries: tuple[str, ...]  # ISO 3166 alpha-2 regions the number is valid in ("pertinent countries")
    emergency: bool  # an emergency number of a localization country (e.g. 911 in US, 999 in GB)


def localizations(localization: str | None) -> tuple[str, ...]:
    return (localization,) if localization else ("US", "GB")


@functools.lru_cache(maxsize=4096)
def classify(dialled: str, localization: str | None) -> Dialled:
    """The request URI's user (after any tech prefix) under a connection's `outbound.localization`."""
    if not _DIALLED.match(dialled):
        return Dialled(None, (), False)
    regions = localizations(localization)
    for region in regions:
        if shortnumberinfo.is_emergency_number(dialled, region):
            return Dialled(None, (region,), True)
    for region in regions:
        try:
            number = phonenumbers.parse(dialled, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            return Dialled(e164, countries_of(number), False)
    return Dialled(None, (), False)


def countries_of(number: phonenumbers.PhoneNumber) -> tuple[str, ...]:
    """Every region sharing the number's country code in which it is valid (+1: US, CA, JM, ...)."""
    cc = number.country_code or 0
    return tuple(
        r
        for r in phonenumbers.region_codes_for_country_code(cc)
        if r != "001" and phonenumbers.is_valid_number_for_region(number, r)
    )


def e164_or_raw(user: str, localization: str | None) -> str:
    """A caller or callee number as records show it: +E.164 when it is a valid number, else as sent."""
    return classify(user, localization).e164 or user


# --- inbound number formats ---------------------------------------------------------------------
# "SIP Connection Number Formats", https://support.telnyx.com/en/articles/1130706-sip-connection-number-formats:
# the called number (DNIS: request URI and To) as `+e164`, `e164`, `national` or the credential
# connection's `sip_username`; the caller (ANI: From and P-Asserted-Identity) as `+E.164`, `E.164`, or
# national when both numbers are US ones and (+)E.164 otherwise (`+E.164-national`, `E.164-national`).


def national(e164: str) -> str:
    """The digits a caller in the number's own country dials: 3125550100, 02071838750."""
    number = phonenumbers.parse(e164)
    text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return "".join(ch for ch in text if ch.isdigit())


def dnis(e164: str, fmt: str, user_name: str) -> str:
    if fmt == "sip_username" and user_name:
        return user_name
    if fmt == "national":
        return national(e164)
    if fmt == "+e164":
        return e164
    return e164.removeprefix("+")


def ani(caller: str, called_e164: str, fmt: str) -> str:
    """The caller's number for the connection; a caller that is no valid number is passed as sent."""
    e164 = classify(caller, None).e164 if not caller.startswith("+") else classify(caller, "US").e164
    if e164 is None:
        return caller
    both_us = _country(e164) == "US" and _country(called_e164) == "US"
    if fmt.endswith("-national") and both_us:
        return national(e164)
    return e164 if fmt.startswith("+") else e164.removeprefix("+")


def _country(e164: str) -> str | None:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        return None
