"""The rate deck's rules, as pure functions: reading a deck's CSV, matching a number, billing a call.

A deck gives USD per minute by the leading digits of an E.164 number (no "+"); the longest prefix that
matches a number is its rate, as Telnyx rates calls "based on destination number prefix"
(https://developers.telnyx.com/docs/voice/sip-trunking/configuration/outbound-voice-profiles). The SIP
edge refuses a call whose rate exceeds the outbound voice profile's `max_destination_rate` with
`403 Maximum destination rate limit exceeded D24`, and one to a number no prefix matches with
`403 No Rates Found TM1` (https://support.telnyx.com/en/articles/4409457-telnyx-sip-response-codes).
docs/rates.md describes the CSV format and the commands; this module does no I/O (the CLI opens the
file and hands its lines here), so the edge, the CLI and the tests share one set of rules.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple, TypeVar

V = TypeVar("V")

# An E.164 number has at most 15 digits (ITU-T E.164, https://www.itu.int/rec/T-REC-E.164), and so
# has a prefix of one; the `rate.prefix` column is as wide.
MAX_DIGITS = 15
MAX_RATE_PLACES = 10
# Whole USD per minute, at most: far above any real destination (Telnyx's dearest are a few USD), and it
# keeps a day's spend in nano-USD (`connection_spend.cost_nanos`, a signed 64-bit integer) from
# overflowing at any rate a deck can hold.
MAX_RATE_WHOLE_DIGITS = 6
MAX_DESCRIPTION = 255
COLUMNS = ("prefix", "rate", "description")
REQUIRED = ("prefix", "rate")
HEADER_HINT = "prefix,rate,description (description optional)"
RATE_HINT = "USD per minute, e.g. 0.0045"

# Telnyx bills SIP trunking in 60/60 increments: a call of 11 s is billed 60 s, one of 96 s 120 s
# (https://support.telnyx.com/en/articles/1130659-billing-increments).
INCREMENT_SECONDS = 60
MINIMUM_SECONDS = 60
# Costs are kept to the micro-dollar, rounded half up.
COST_QUANTUM = Decimal("0.000001")
_NANOS_PER_USD = 10**9

_RATE = re.compile(r"(?P<whole>[0-9]*)(?:\.(?P<fraction>[0-9]*))?")
_DIGITS = re.compile(r"[0-9]+")
# Unicode's control characters (general category Cc): C0, DEL and C1.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


class Rate(NamedTuple):
    """One row of the deck: the prefix, its rate as normalised text (see `parse_rate`), a note."""

    prefix: str
    rate: str
    description: str | None


@dataclass(frozen=True, slots=True)
class Row:
    """A good row of a deck's CSV and the line it starts on (1 is the header)."""

    line: int
    rate: Rate


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong on a line of a deck's CSV, written as a sentence that says what to do."""

    line: int
    message: str


# ----------------------------------------------------------------------------------------------------
# Fields


def parse_prefix(text: str) -> str:
    """A prefix as stored: 1-15 ASCII digits, not starting with 0. ValueError says what is wrong."""
    prefix = text.strip()
    if not prefix:
        raise ValueError("prefix is empty: give the leading digits of the numbers it rates, e.g. 4420")
    if prefix.startswith("+"):
        raise ValueError(f"prefix {prefix!r} starts with '+': write the digits alone, e.g. {prefix[1:]!r}")
    if not _DIGITS.fullmatch(prefix):
        raise ValueError(
            f"prefix {prefix!r} is not digits: write the leading digits of an E.164 number without"
            " '+', spaces or dashes, e.g. 4420"
        )
    if len(prefix) > MAX_DIGITS:
        raise ValueError(
            f"prefix {prefix!r} has {len(prefix)} digits: at most {MAX_DIGITS}, the length of an E.164 number"
        )
    if prefix.startswith("0"):
        # E.164 numbers start with a country code, and none starts with 0: a national number
        # (020 7183 8750) or an international dialling prefix (0044...) would match no call.
        raise ValueError(
            f"prefix {prefix!r} starts with 0: write it in E.164, country code first (no country code"
            " starts with 0), e.g. 4420 rather than 020 or 004420"
        )
    return prefix


def parse_rate(text: str) -> str:
    """A rate, in USD per minute, as stored: the normalised text of a non-negative decimal.

    Normalised means: surrounding spaces removed, leading zeros of the whole part removed (one "0"
    kept), a "0" put before a bare ".5" and a trailing "." dropped. The fraction stays as written,
    trailing zeros too ("0.0120" stays "0.0120"), so the deck shows what its author wrote. No sign, no
    exponent, at most 10 decimal places and 6 whole digits. ValueError says what is wrong.
    """
    value = text.strip()
    if not value:
        raise ValueError(f"rate is empty: give the price per minute in USD ({RATE_HINT})")
    match = _RATE.fullmatch(value)
    if match is None or not (match["whole"] or match["fraction"]):
        hint = " (use a point as the decimal separator)" if "," in value else ""
        raise ValueError(f"rate {value!r} is not a non-negative decimal ({RATE_HINT}){hint}")
    whole = match["whole"].lstrip("0") or "0"
    fraction = match["fraction"] or ""
    if len(fraction) > MAX_RATE_PLACES:
        raise ValueError(
            f"rate {value!r} has {len(fraction)} decimal places: at most {MAX_RATE_PLACES} ({RATE_HINT})"
        )
    if len(whole) > MAX_RATE_WHOLE_DIGITS:
        raise ValueError(
            f"rate {value!r} is too large: it must be below {10**MAX_RATE_WHOLE_DIGITS:,} USD per minute"
        )
    return f"{whole}.{fraction}" if fraction else whole


def parse_description(text: str) -> str | None:
    """A description as stored: surrounding spaces removed, None when empty; at most 255 characters."""
    description = text.strip()
    if len(description) > MAX_DESCRIPTION:
        raise ValueError(
            f"description has {len(description)} characters: at most {MAX_DESCRIPTION}; shorten it"
        )
    # A control character (a newline in a quoted field, a NUL, which PostgreSQL refuses in text)
    # would break the one-line-per-rate output of `trunkline rates list`.
    if _CONTROL.search(description):
        raise ValueError("description contains a control character (a line break or tab): remove it")
    return description or None


def parse_number(text: str) -> str:
    """A number to rate, given as +E.164 or as its digits, as the digits alone.

    ValueError says what is wrong: not digits, more than 15, or a leading 0 (a national number).
    """
    value = text.strip()
    digits = value.removeprefix("+")
    example = "e.g. +442071838750"
    if not _DIGITS.fullmatch(digits):
        raise ValueError(f"{value!r} is not a phone number: give it as +E.164 or as digits, {example}")
    if len(digits) > MAX_DIGITS:
        raise ValueError(f"{value!r} has {len(digits)} digits: an E.164 number has at most {MAX_DIGITS}")
    if digits.startswith("0"):
        raise ValueError(f"{value!r} starts with 0: give it in E.164, country code first, {example}")
    return digits


def rate_value(rate: str) -> Decimal:
    """A stored rate's value (USD per minute); ValueError unless it is one `parse_rate` accepts."""
    return Decimal(parse_rate(rate))


# ----------------------------------------------------------------------------------------------------
# The CSV file


@dataclass(frozen=True, slots=True)
class Columns:
    """Where the header put each column (description: None when it has none)."""

    prefix: int
    rate: int
    description: int | None

    def __len__(self) -> int:
        return 2 if self.description is None else 3


def parse_header(fields: Sequence[str]) -> Columns:
    """Each column's position. Names are matched case-insensitively, surrounding spaces ignored; a
    column without a name (the trailing commas some spreadsheets write) is ignored."""
    names = [field.strip().lower() for field in fields]
    unknown = [
        field.strip() for field, name in zip(fields, names, strict=True) if name and name not in COLUMNS
    ]
    if unknown:
        raise ValueError(
            f"the first line must be the header {HEADER_HINT}; {unknown[0]!r} is not one of these columns"
        )
    twice = sorted({name for name in names if name and names.count(name) > 1})
    if twice:
        raise ValueError(f"the header names the column {twice[0]!r} twice: name each column once")
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise ValueError(f"the header has no {missing[0]!r} column: it must be {HEADER_HINT}")
    return Columns(
        prefix=names.index("prefix"),
        rate=names.index("rate"),
        description=names.index("description") if "description" in names else None,
    )


def parse_row(fields: Sequence[str], columns: Columns) -> Rate:
    """One data row. ValueError names everything wrong with it, "; " between.

    A row may leave out trailing empty fields; a field under no column must be empty.
    """
    count = len(fields)
    named = (columns.prefix, columns.rate, columns.description)
    if count > len(columns) and any(
        field.strip() for index, field in enumerate(fields) if index not in named
    ):
        raise ValueError(
            f"{count} fields, but the header names {len(columns)} columns: put a description that"
            " contains a comma in double quotes, and write a rate with a point (0.0045), not a comma"
        )
    problems: list[str] = []
    prefix = rate = description = None
    try:
        prefix = parse_prefix(fields[columns.prefix] if columns.prefix < count else "")
    except ValueError as exc:
        problems.append(str(exc))
    try:
        rate = parse_rate(fields[columns.rate] if columns.rate < count else "")
    except ValueError as exc:
        problems.append(str(exc))
    at = columns.description
    if at is not None and at < count:
        try:
            description = parse_description(fields[at])
        except ValueError as exc:
            problems.append(str(exc))
    if prefix is None or rate is None or problems:
        raise ValueError("; ".join(problems))
    return Rate(prefix, rate, description)


class _Undecodable(Exception):
    def __init__(self, line: int, error: UnicodeDecodeError) -> None:
        self.line = line
        self.error = error


def _decoded(lines: Iterable[bytes]) -> Iterator[str]:
    for number, raw in enumerate(lines, start=1):
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")  # the BOM some editors write (Excel's "CSV UTF-8")
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Undecodable(number, exc) from exc


def read_deck(lines: Iterable[bytes]) -> Iterator[Row | Problem]:
    """The rows of a deck's CSV, from its lines as bytes (a file opened in binary mode), in order.

    Yields a Row for each good data row and a Problem for each bad one, and goes on after a bad row so
    that one run reports them all. The header's problems, text that is not UTF-8 and CSV that cannot be
    split into fields (csv.Error) end the reading: what follows cannot be read reliably. Blank lines and
    rows of empty fields are skipped. Duplicate prefixes are not this function's to find: see
    `trunkline.store.rates.stage_rates`.
    """
    reader = csv.reader(_decoded(lines), strict=True)
    columns: Columns | None = None
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except _Undecodable as exc:
            bad = exc.error.object[exc.error.start : exc.error.start + 1]
            yield Problem(
                exc.line,
                f"this line is not UTF-8 text (byte 0x{bad.hex()} at position {exc.error.start + 1}):"
                " save the file as UTF-8 (in a spreadsheet: CSV UTF-8) and import it again",
            )
            return
        except csv.Error as exc:
            yield Problem(reader.line_num or start, f"this line is not valid CSV ({exc}): correct it")
            return
        if not "".join(fields).strip():
            continue
        if columns is None:
            try:
                columns = parse_header(fields)
            except ValueError as exc:
                yield Problem(start, str(exc))
                return
            continue
        try:
            yield Row(start, parse_row(fields, columns))
        except ValueError as exc:
            yield Problem(start, str(exc))
    if columns is None:
        yield Problem(1, f"the file is empty: its first line must be the header {HEADER_HINT}")


# ----------------------------------------------------------------------------------------------------
# Matching


def candidate_prefixes(e164_digits: str) -> list[str]:
    """Every prefix that could rate the number: its leading 15 digits or fewer, longest first."""
    if e164_digits and not _DIGITS.fullmatch(e164_digits):
        raise ValueError(f"{e164_digits!r} is not the digits of an E.164 number")
    head = e164_digits[:MAX_DIGITS]
    return [head[:length] for length in range(len(head), 0, -1)]


def longest_match(prefix_to_rate: Mapping[str, V], digits: str) -> tuple[str, V] | None:
    """The longest prefix of `digits` in `prefix_to_rate`, with its value; None when none is there."""
    for prefix in candidate_prefixes(digits):
        if prefix in prefix_to_rate:
            return prefix, prefix_to_rate[prefix]
    return None


# ----------------------------------------------------------------------------------------------------
# Billing


def billed_seconds(call_sec: int, increment: int = INCREMENT_SECONDS, minimum: int = MINIMUM_SECONDS) -> int:
    """The seconds a call of `call_sec` answered seconds is billed for: nothing for an unanswered call
    (0 s), else at least `minimum`, rounded up to a whole number of increments (60/60: 1-60 s bill 60,
    61-120 s bill 120)."""
    if call_sec < 0:
        raise ValueError(f"call_sec must not be negative, got {call_sec}")
    if increment < 1 or minimum < 0:
        raise ValueError(f"increment must be positive and minimum non-negative, got {increment}, {minimum}")
    if call_sec == 0:
        return 0
    billed = max(call_sec, minimum)
    return -(-billed // increment) * increment


def cost(rate: Decimal, billed_sec: int) -> Decimal:
    """USD for `billed_sec` seconds at `rate` USD per minute, rounded half up to the micro-dollar.

    Computed as an exact fraction and rounded once, so no intermediate rounding can shift a cost that
    lies exactly on a half micro-dollar.
    """
    if not rate.is_finite() or rate < 0:
        raise ValueError(f"rate must be a non-negative number, got {rate}")
    if billed_sec < 0:
        raise ValueError(f"billed_sec must not be negative, got {billed_sec}")
    micros = Fraction(rate) * billed_sec * 1_000_000 / 60
    rounded = (micros.numerator * 2 + micros.denominator) // (micros.denominator * 2)  # half up, >= 0
    return Decimal(f"{rounded}E-6")  # exact: a Decimal made from a string is never rounded


def cost_text(amount: Decimal) -> str:
    """An amount as plain decimal text: no exponent, no trailing zeros ("0.0045", "12", "0")."""
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {amount}")
    text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def to_nanos(amount: Decimal) -> int:
    """USD as a whole number of nano-dollars, exactly; ValueError when it has finer digits than that."""
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {amount}")
    nanos = Fraction(amount) * _NANOS_PER_USD
    if nanos.denominator != 1:
        raise ValueError(f"{amount} USD is not a whole number of nano-dollars")
    return nanos.numerator
