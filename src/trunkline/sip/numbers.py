"""Number knowledge for the SIP edge, rendered from the `phonenumbers` package (libphonenumber's metadata).

Kamailio cannot run libphonenumber, so trunkline renders what the edge needs into two files it reads
at start (pure functions of the installed `phonenumbers`, no hand-written tables):

- `numbers.pcre`: a group file of Kamailio's regex module
  (https://kamailio.org/docs/modules/5.6.x/modules/regex.html#regex.p.file), one group per region for
  "a valid number of this region" (libphonenumber's general description and number types, with their
  possible lengths, exactly as `phonenumbers.is_valid_number_for_region` tests them), and one per
  region for its emergency numbers (short-number metadata, as `phonenumbers.is_emergency_number` with
  an exact match). PCRE reads libphonenumber's patterns unchanged.
- `numbers.cfg`: two generated Kamailio routes, imported by kamailio.cfg:
  `NUM_LOCAL` (a country's dialling rules: country code, national prefix, international prefix,
  emergency group) and `NUM_COUNTRIES` (an E.164 number's country code and the regions it is valid in,
  and whether any of them is whitelisted).

Per call the edge does string compares and a few precompiled PCRE matches (at most the regions
sharing one country code, 25 for +1); nothing is computed from metadata at call time.

Not wired into kamailio.cfg yet. Found while wiring it: Kamailio 5.6's regex module reads its group
file in lines of at most 500 bytes and wraps longer ones into separate groups, so `render_groups` must
still split patterns (US fixed-line alternatives alone exceed 1000 characters), and parsing the
generated routes needs `kamailio -M 32` (8 MB private memory is not enough).

`normalise` is the same algorithm in Python, over the same data, so unit tests can hold it against
`phonenumbers.parse` and `is_valid_number`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import phonenumbers
from phonenumbers import PhoneMetadata
from phonenumbers.phonemetadata import PhoneNumberDesc as NumberDesc

GROUPS_FILE = "numbers.pcre"
ROUTES_FILE = "numbers.cfg"

# The number types libphonenumber's _number_type_helper tries; any match makes a number valid.
_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)
_DIGITS = re.compile(r"^[0-9]*$")


@dataclass(frozen=True)
class Region:
    """One region's dialling rules (`code` is ISO 3166 alpha-2, or `001` for non-geographic codes)."""

    code: str
    country_code: str
    national_prefix: str
    international_prefix: str
    valid: str  # PCRE (and Python re) matching the region's valid national numbers, anchored
    emergency: str | None  # the same for its emergency numbers
    valid_group: int
    emergency_group: int | None


@dataclass(frozen=True)
class NumberPlan:
    regions: tuple[Region, ...]

    @functools.cached_property
    def by_code(self) -> dict[str, Region]:
        return {r.code: r for r in self.regions if r.code != "001"}

    @functools.cached_property
    def by_country_code(self) -> dict[str, tuple[Region, ...]]:
        out: dict[str, list[Region]] = {}
        for r in self.regions:
            out.setdefault(r.country_code, []).append(r)
        return {cc: tuple(rs) for cc, rs in out.items()}


def _lengths(desc: NumberDesc, general: NumberDesc) -> tuple[int, ...]:
    # A type without lengths of its own inherits the general description's (libphonenumber's
    # metadata build does the same); [-1] means "no number of this type".
    return tuple(desc.possible_length or general.possible_length or ())


def _desc_pattern(desc: NumberDesc | None, general: NumberDesc) -> str | None:
    if desc is None or not desc.national_number_pattern:
        return None
    lengths = _lengths(desc, general)
    if lengths == (-1,):
        return None
    alternatives = "|".join("\\d{" + str(n) + "}" for n in lengths)
    ahead = f"(?=(?:{alternatives})$)" if lengths else ""
    return f"{ahead}(?:{desc.national_number_pattern})$"


def _valid_pattern(meta: PhoneMetadata) -> str:
    general = meta.general_desc
    if general is None:
        return "^(?!)"  # matches nothing
    types = [p for t in _TYPES if (p := _desc_pattern(getattr(meta, t), general))]
    whole = _desc_pattern(general, general)
    if not types or whole is None:
        return "^(?!)"  # matches nothing
    return f"^(?={whole})(?:{'|'.join(types)})"


def _international_prefix(meta: PhoneMetadata) -> str:
    # A region's international prefix is a pattern; where it is not one literal string, the
    # preferred one (e.g. AU 0011) is what the edge recognises.
    for candidate in (meta.international_prefix, meta.preferred_international_prefix):
        if candidate and _DIGITS.match(candidate):
            return candidate
    return ""


@functools.lru_cache(maxsize=1)
def plan() -> NumberPlan:
    """Every region libphonenumber knows, in a stable order (group numbers follow it)."""
    metas: list[tuple[str, PhoneMetadata]] = []
    for code in sorted(phonenumbers.SUPPORTED_REGIONS):
        meta = PhoneMetadata.metadata_for_region(code)
        if meta is not None:
            metas.append((code, meta))
    for cc in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        meta = PhoneMetadata.metadata_for_nongeo_region(cc)
        if meta is not None:
            metas.append(("001", meta))
    regions = []
    group = 0
    for code, meta in metas:
        short = PhoneMetadata.short_metadata_for_region(code) if code != "001" else None
        emergency = None
        if short is not None and short.emergency is not None and short.emergency.national_number_pattern:
            emergency = f"^(?:{short.emergency.national_number_pattern})$"
        valid_group = group
        emergency_group = group + 1 if emergency else None
        group += 2 if emergency else 1
        national_prefix = meta.national_prefix or ""
        regions.append(
            Region(
                code=code,
                country_code=str(meta.country_code),
                national_prefix=national_prefix if _DIGITS.match(national_prefix) else "",
                international_prefix=_international_prefix(meta),
                valid=_valid_pattern(meta),
                emergency=emergency,
                valid_group=valid_group,
                emergency_group=emergency_group,
            )
        )
    return NumberPlan(tuple(regions))


# --- the algorithm, in Python (kamailio.cfg.tmpl route NUMBERS is its twin) -------------------


@dataclass(frozen=True)
class Dialled:
    e164: str | None  # digits, no "+"; None: not a valid number
    pertinent: tuple[str, ...]  # the regions the number is valid in
    emergency: bool


def pertinent(numbers: NumberPlan, e164: str) -> tuple[str, ...]:
    """The regions in which the E.164 number (digits) is a valid number."""
    for n in (1, 2, 3):
        regions = numbers.by_country_code.get(e164[:n])
        if regions:
            national = e164[n:]
            return tuple(r.code for r in regions if re.match(r.valid, national))
    return ()


def localizations(localization: str | None) -> tuple[str, ...]:
    # Blank: "Telnyx will try US and GB dialing rules, in that order" (Telnyx API,
    # CredentialConnection outbound.localization).
    return (localization,) if localization else ("US", "GB")


def _try(numbers: NumberPlan, digits: str, region: Region) -> str | None:
    ip, cc, np = region.international_prefix, region.country_code, region.national_prefix
    if ip and digits.startswith(ip):
        rest = digits[len(ip) :]
        return rest if pertinent(numbers, rest) else None
    if digits.startswith(cc) and pertinent(numbers, digits):
        return digits
    if np and digits.startswith(np) and pertinent(numbers, cc + digits[len(np) :]):
        return cc + digits[len(np) :]
    return cc + digits if pertinent(numbers, cc + digits) else None


def normalise(numbers: NumberPlan, dialled: str, localization: str | None) -> Dialled:
    """What the edge makes of a dialled request-URI user under a connection's `outbound.localization`."""
    locs = [numbers.by_code[c] for c in localizations(localization) if c in numbers.by_code]
    for region in locs:
        if region.emergency and re.match(region.emergency, dialled):
            return Dialled(None, (region.code,), True)
    e164: str | None = None
    if re.fullmatch(r"\+[0-9]{1,15}", dialled):
        e164 = dialled[1:] if pertinent(numbers, dialled[1:]) else None
    elif re.fullmatch(r"[0-9]{1,17}", dialled):
        for region in locs:
            if (e164 := _try(numbers, dialled, region)) is not None:
                break
    if e164 is None:
        return Dialled(None, (), False)
    return Dialled(e164, pertinent(numbers, e164), False)


# --- rendering --------------------------------------------------------------------------------


def render_groups(numbers: NumberPlan) -> str:
    """The regex module's group file: `[n]` and one pattern line per group."""
    lines = ["# Rendered by trunkline.sip.numbers from phonenumbers " + phonenumbers.__version__]
    for r in numbers.regions:
        lines += [f"[{r.valid_group}]", r.valid]
        if r.emergency is not None:
            lines += [f"[{r.emergency_group}]", r.emergency]
    return "\n".join(lines) + "\n"


def group_count(numbers: NumberPlan) -> int:
    return sum(2 if r.emergency else 1 for r in numbers.regions)


def group_max_size(numbers: NumberPlan) -> int:
    return max(len(p) for r in numbers.regions for p in (r.valid, r.emergency or "")) + 1


def render_routes(numbers: NumberPlan) -> str:
    """Kamailio routes NUM_LOCAL and NUM_COUNTRIES (see the module docstring)."""
    out = [
        "# Rendered by trunkline.sip.numbers from phonenumbers "
        + phonenumbers.__version__
        + ": do not edit.",
        "# NUM_LOCAL: $var(loc) (ISO 3166 alpha-2) -> $var(lcc) country code, $var(lnp) national prefix,",
        '# $var(lip) international prefix, $var(leg) emergency group (-1: none); $var(lcc) "": unknown.',
        "route[NUM_LOCAL] {",
        '\t$var(lcc) = "";',
        '\t$var(lnp) = "";',
        '\t$var(lip) = "";',
        "\t$var(leg) = -1;",
        "\tswitch ($var(loc)) {",
    ]
    for r in numbers.regions:
        if r.code == "001":
            continue
        out += [
            f'\tcase "{r.code}":',
            f'\t\t$var(lcc) = "{r.country_code}";',
            f'\t\t$var(lnp) = "{r.national_prefix}";',
            f'\t\t$var(lip) = "{r.international_prefix}";',
            f"\t\t$var(leg) = {r.emergency_group if r.emergency_group is not None else -1};",
            "\t\tbreak;",
        ]
    out += ["\t}", "}", ""]
    by_length: dict[int, list[str]] = {}
    for cc in sorted(numbers.by_country_code):
        by_length.setdefault(len(cc), []).append(cc)
    out += [
        '# NUM_COUNTRIES: $var(e) (E.164 digits) -> $var(ecc) its country code ("": none),',
        '# $var(pc) ", XX, YY": the regions it is valid in ("": invalid), $var(wok) 1 when one of them is',
        '# in $var(wl) (",XX,YY,").',
        "route[NUM_COUNTRIES] {",
        '\t$var(ecc) = "";',
        '\t$var(pc) = "";',
        "\t$var(wok) = 0;",
    ]
    for n in sorted(by_length):
        out += [
            '\tif ($var(ecc) == "") {',
            f"\t\tswitch ($(var(e){{s.substr,0,{n}}})) {{",
            *(f'\t\tcase "{cc}":' for cc in by_length[n]),
            f"\t\t\t$var(ecc) = $(var(e){{s.substr,0,{n}}});",
            "\t\t\tbreak;",
            "\t\t}",
            "\t}",
        ]
    out += [
        '\tif ($var(ecc) == "") {',
        "\t\treturn;",
        "\t}",
        "\t$var(eccl) = $(var(ecc){s.len});",
        "\t$var(nat) = $(var(e){s.substr,$var(eccl),0});",
        "\tswitch ($var(ecc)) {",
    ]
    for cc in sorted(numbers.by_country_code):
        out.append(f'\tcase "{cc}":')
        for r in numbers.by_country_code[cc]:
            out += [
                f'\t\tif (pcre_match_group("$var(nat)", {r.valid_group})) {{',
                f'\t\t\t$var(pc) = $var(pc) + ", {r.code}";',
                f'\t\t\tif ($var(wl) =~ ",{r.code},") {{',
                "\t\t\t\t$var(wok) = 1;",
                "\t\t\t}",
                "\t\t}",
            ]
        out.append("\t\tbreak;")
    out += ["\t}", "}", ""]
    return "\n".join(out)


def files(run_dir: Path) -> dict[Path, str]:
    """The files the edge reads, by absolute path (kamailio.cfg names them)."""
    numbers = plan()
    return {run_dir / GROUPS_FILE: render_groups(numbers), run_dir / ROUTES_FILE: render_routes(numbers)}
