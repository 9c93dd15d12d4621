"""trunkline.rating: the deck's CSV rules, longest-prefix matching and 60/60 billing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trunkline import rating
from trunkline.rating import Problem, Rate, Row


def read(text: str | bytes) -> list[Row | Problem]:
    data = text.encode() if isinstance(text, str) else text
    return list(rating.read_deck(data.splitlines(keepends=True)))


# ----------------------------------------------------------------------------------------------------
# Fields


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("0.0045", "0.0045"),
        ("0.0120", "0.0120"),  # trailing zeros stay as written
        ("00.0120", "0.0120"),
        (".5", "0.5"),
        ("5.", "5"),
        ("0", "0"),
        ("000", "0"),
        ("  1.25 ", "1.25"),
        ("0.0000000001", "0.0000000001"),  # 10 places
        ("999999.9999999999", "999999.9999999999"),
    ],
)
def test_a_rate_is_stored_as_its_normalised_text(given: str, stored: str) -> None:
    assert rating.parse_rate(given) == stored


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("-1", "rate '-1' is not a non-negative decimal (USD per minute, e.g. 0.0045)"),
        ("+1", "rate '+1' is not a non-negative decimal (USD per minute, e.g. 0.0045)"),
        ("1e-3", "rate '1e-3' is not a non-negative decimal (USD per minute, e.g. 0.0045)"),
        (".", "rate '.' is not a non-negative decimal (USD per minute, e.g. 0.0045)"),
        ("1.2.3", "rate '1.2.3' is not a non-negative decimal (USD per minute, e.g. 0.0045)"),
        ("free", "rate 'free' is not a non-negative decimal (USD per minute, e.g. 0.0045)"),
        (
            "0,5",
            "rate '0,5' is not a non-negative decimal (USD per minute, e.g. 0.0045)"
            " (use a point as the decimal separator)",
        ),
        ("", "rate is empty: give the price per minute in USD (USD per minute, e.g. 0.0045)"),
        (
            "0.00000000001",
            "rate '0.00000000001' has 11 decimal places: at most 10 (USD per minute, e.g. 0.0045)",
        ),
        ("1000000", "rate '1000000' is too large: it must be below 1,000,000 USD per minute"),
    ],
)
def test_a_bad_rate_says_what_is_wrong(given: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        rating.parse_rate(given)
    assert str(raised.value) == message


@pytest.mark.parametrize("given", ["1", "44", " 4420 ", "123456789012345"])
def test_a_prefix_is_one_to_fifteen_digits(given: str) -> None:
    assert rating.parse_prefix(given) == given.strip()


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", "prefix is empty: give the leading digits of the numbers it rates, e.g. 4420"),
        ("+44", "prefix '+44' starts with '+': write the digits alone, e.g. '44'"),
        (
            "44 20",
            "prefix '44 20' is not digits: write the leading digits of an E.164 number without '+',"
            " spaces or dashes, e.g. 4420",
        ),
        (
            "٤٤",  # Arabic-Indic digits: str.isdigit() would take them
            "prefix '٤٤' is not digits: write the leading digits of an E.164 number without '+',"
            " spaces or dashes, e.g. 4420",
        ),
        (
            "1234567890123456",
            "prefix '1234567890123456' has 16 digits: at most 15, the length of an E.164 number",
        ),
        (
            "020",
            "prefix '020' starts with 0: write it in E.164, country code first (no country code starts"
            " with 0), e.g. 4420 rather than 020 or 004420",
        ),
    ],
)
def test_a_bad_prefix_says_what_is_wrong(given: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        rating.parse_prefix(given)
    assert str(raised.value) == message


def test_a_description_is_trimmed_empty_is_none_and_at_most_255_characters() -> None:
    assert rating.parse_description("  United Kingdom London ") == "United Kingdom London"
    assert rating.parse_description("   ") is None
    assert rating.parse_description("é" * 255) == "é" * 255
    with pytest.raises(ValueError, match="description has 256 characters: at most 255; shorten it"):
        rating.parse_description("x" * 256)
    with pytest.raises(ValueError, match="control character"):
        rating.parse_description("two\nlines")


@pytest.mark.parametrize(("given", "digits"), [("+442071838750", "442071838750"), ("1212", "1212")])
def test_a_number_is_given_as_e164_or_digits(given: str, digits: str) -> None:
    assert rating.parse_number(given) == digits


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("abc", "'abc' is not a phone number: give it as +E.164 or as digits, e.g. +442071838750"),
        ("+", "'+' is not a phone number: give it as +E.164 or as digits, e.g. +442071838750"),
        ("+44 20", "'+44 20' is not a phone number: give it as +E.164 or as digits, e.g. +442071838750"),
        ("+1234567890123456", "'+1234567890123456' has 16 digits: an E.164 number has at most 15"),
        (
            "02071838750",
            "'02071838750' starts with 0: give it in E.164, country code first, e.g. +442071838750",
        ),
    ],
)
def test_a_bad_number_says_what_is_wrong(given: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        rating.parse_number(given)
    assert str(raised.value) == message


# ----------------------------------------------------------------------------------------------------
# The CSV file


def test_a_deck_is_read_row_by_row_with_the_line_each_starts_on() -> None:
    text = (
        "prefix,rate,description\n"
        "44,0.0100,United Kingdom\n"
        "\n"  # blank lines are skipped
        '4420,0.0120,"United Kingdom London"\n'
        '33,0.0200,"France, mainland"\n'
        ",,\n"  # so are rows of empty fields
        "1,0.0045,\n"
    )
    assert read(text) == [
        Row(2, Rate("44", "0.0100", "United Kingdom")),
        Row(4, Rate("4420", "0.0120", "United Kingdom London")),
        Row(5, Rate("33", "0.0200", "France, mainland")),
        Row(7, Rate("1", "0.0045", None)),
    ]


def test_the_header_is_case_insensitive_in_any_order_with_a_bom_crlf_and_no_description() -> None:
    assert read(b"\xef\xbb\xbf Rate ,PREFIX\r\n0.01,44\r\n") == [Row(2, Rate("44", "0.01", None))]
    assert read("prefix,rate\n44,0.01\n") == [Row(2, Rate("44", "0.01", None))]
    # The trailing empty columns a spreadsheet writes are ignored, empty or missing in the rows.
    assert read("prefix,rate,description,,\n44,0.01,UK,,\n45,0.02\n") == [
        Row(2, Rate("44", "0.01", "UK")),
        Row(3, Rate("45", "0.02", None)),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "",
            "the file is empty: its first line must be the header prefix,rate,description"
            " (description optional)",
        ),
        (
            "44,0.01\n",
            "the first line must be the header prefix,rate,description (description optional); '44' is not"
            " one of these columns",
        ),
        (
            "prefix,cost\n44,0.01\n",
            "the first line must be the header prefix,rate,description (description optional); 'cost' is"
            " not one of these columns",
        ),
        ("prefix,rate,Rate\n", "the header names the column 'rate' twice: name each column once"),
        (
            "prefix,description\n",
            "the header has no 'rate' column: it must be prefix,rate,description (description optional)",
        ),
    ],
)
def test_a_bad_header_is_the_only_problem_reported(text: str, message: str) -> None:
    assert read(text) == [Problem(1, message)]


def test_a_header_alone_gives_no_rows() -> None:
    assert read("prefix,rate,description\n") == []


def test_bad_rows_are_reported_and_reading_goes_on() -> None:
    text = "prefix,rate,description\n44,-1,UK\n+1,x\n45,0.01\n46,0.01,a,b\n"
    assert read(text) == [
        Problem(2, "rate '-1' is not a non-negative decimal (USD per minute, e.g. 0.0045)"),
        Problem(
            3,
            "prefix '+1' starts with '+': write the digits alone, e.g. '1'; rate 'x' is not a non-negative"
            " decimal (USD per minute, e.g. 0.0045)",
        ),
        Row(4, Rate("45", "0.01", None)),
        Problem(
            5,
            "4 fields, but the header names 3 columns: put a description that contains a comma in double"
            " quotes, and write a rate with a point (0.0045), not a comma",
        ),
    ]


def test_a_quoted_field_over_several_lines_keeps_later_line_numbers_right() -> None:
    text = 'prefix,rate,description\n44,0.01,"two\nlines"\n45,0.02,ok\n'
    assert read(text) == [
        Problem(2, "description contains a control character (a line break or tab): remove it"),
        Row(4, Rate("45", "0.02", "ok")),
    ]


def test_text_that_is_not_utf8_stops_the_reading_at_its_line() -> None:
    text = b"prefix,rate,description\n44,0.01,UK\n33,0.02,Fran\xe7e\n34,0.03,Spain\n"
    assert read(text) == [
        Row(2, Rate("44", "0.01", "UK")),
        Problem(
            3,
            "this line is not UTF-8 text (byte 0xe7 at position 13): save the file as UTF-8 (in a"
            " spreadsheet: CSV UTF-8) and import it again",
        ),
    ]


def test_csv_that_cannot_be_split_stops_the_reading() -> None:
    text = 'prefix,rate,description\n44,0.01,"UK"x\n45,0.02,ok\n'
    problems = read(text)
    assert len(problems) == 1 and isinstance(problems[0], Problem)
    assert problems[0].line == 2
    assert problems[0].message.startswith("this line is not valid CSV (")


# ----------------------------------------------------------------------------------------------------
# Matching


def test_candidate_prefixes_are_every_leading_substring_longest_first() -> None:
    assert rating.candidate_prefixes("4420718") == ["4420718", "442071", "44207", "4420", "442", "44", "4"]
    assert rating.candidate_prefixes("") == []
    sixteen = "1234567890123456"
    assert rating.candidate_prefixes(sixteen)[0] == sixteen[:15]
    assert len(rating.candidate_prefixes(sixteen)) == 15
    with pytest.raises(ValueError):
        rating.candidate_prefixes("+44")


def test_the_longest_matching_prefix_wins() -> None:
    deck = {"44": "0.0100", "4420": "0.0120", "1": "0.0045"}
    assert rating.longest_match(deck, "442071838750") == ("4420", "0.0120")
    assert rating.longest_match(deck, "441632960000") == ("44", "0.0100")
    assert rating.longest_match(deck, "12125550100") == ("1", "0.0045")
    assert rating.longest_match(deck, "33142278186") is None
    assert rating.longest_match({}, "44") is None


# ----------------------------------------------------------------------------------------------------
# Billing


@pytest.mark.parametrize(
    ("call_sec", "billed"),
    [(0, 0), (1, 60), (59, 60), (60, 60), (61, 120), (96, 120), (120, 120), (121, 180)],
)
def test_calls_are_billed_in_60_second_increments(call_sec: int, billed: int) -> None:
    assert rating.billed_seconds(call_sec) == billed


def test_other_increments() -> None:
    assert rating.billed_seconds(11, increment=6, minimum=6) == 12  # 6/6
    assert rating.billed_seconds(30, increment=1, minimum=60) == 60  # 60/1
    assert rating.billed_seconds(65, increment=1, minimum=60) == 65
    assert rating.billed_seconds(0, increment=1, minimum=60) == 0
    with pytest.raises(ValueError):
        rating.billed_seconds(-1)
    with pytest.raises(ValueError):
        rating.billed_seconds(10, increment=0)


@pytest.mark.parametrize(
    ("rate", "billed_sec", "cost"),
    [
        ("0.0045", 60, "0.004500"),
        ("0.0045", 120, "0.009000"),
        ("0.0045", 0, "0.000000"),
        ("0.0120", 180, "0.036000"),
        ("0.0001", 1, "0.000002"),  # 0.0000016666... rounds up
        ("0.0000005", 60, "0.000001"),  # exactly half a micro-dollar: half up
        ("0.00000049", 60, "0.000000"),  # just under half: down
        ("0.00000149999", 60, "0.000001"),
        ("999999.9999999999", 120, "2000000.000000"),
    ],
)
def test_cost_is_rate_times_minutes_rounded_half_up_to_the_micro_dollar(
    rate: str, billed_sec: int, cost: str
) -> None:
    got = rating.cost(Decimal(rate), billed_sec)
    assert got == Decimal(cost)
    assert got.as_tuple().exponent == rating.COST_QUANTUM.as_tuple().exponent  # always 6 places
    assert str(got) == cost


def test_cost_refuses_a_negative_rate_or_duration() -> None:
    with pytest.raises(ValueError):
        rating.cost(Decimal("-0.01"), 60)
    with pytest.raises(ValueError):
        rating.cost(Decimal("0.01"), -60)
    with pytest.raises(ValueError):
        rating.cost(Decimal("NaN"), 60)


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("0.004500", "0.0045"),
        ("0.0045", "0.0045"),
        ("12.000000", "12"),
        ("0.000000", "0"),
        ("0E-6", "0"),
        ("1E+2", "100"),
        ("1E-7", "0.0000001"),
        ("2000000.000000", "2000000"),
    ],
)
def test_cost_text_is_plain_decimal_without_exponent_or_trailing_zeros(amount: str, text: str) -> None:
    assert rating.cost_text(Decimal(amount)) == text


@pytest.mark.parametrize(
    ("amount", "nanos"),
    [("0.0045", 4_500_000), ("0.000001", 1_000), ("0.000000001", 1), ("12", 12_000_000_000), ("0", 0)],
)
def test_to_nanos_is_exact(amount: str, nanos: int) -> None:
    assert rating.to_nanos(Decimal(amount)) == nanos


def test_to_nanos_refuses_what_is_not_a_whole_number_of_nano_dollars() -> None:
    with pytest.raises(ValueError):
        rating.to_nanos(Decimal("0.0000000001"))
    with pytest.raises(ValueError):
        rating.to_nanos(Decimal("Infinity"))


def test_a_days_spend_at_the_dearest_rate_fits_the_64_bit_spend_counter() -> None:
    # 24 hours at the highest rate a deck can hold, in nano-USD, under PostgreSQL's BIGINT maximum.
    day = rating.cost(Decimal("999999.9999999999"), rating.billed_seconds(86_400))
    assert rating.to_nanos(day) < 2**63
