"""Tests for dealdesk.money: minor units, exact parsing, half-up rounding, money strings."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dealdesk.money import minor_units, money_string, parse_decimal, quantize_money, round_fraction


@pytest.mark.parametrize(("currency", "units"), [("USD", 2), ("EUR", 2), ("JPY", 0), ("KWD", 3)])
def test_minor_units_follow_iso_4217(currency: str, units: int) -> None:
    assert minor_units(currency) == units


@pytest.mark.parametrize("currency", ["XYZ", "usd", "", "US", 840, None])
def test_minor_units_rejects_unknown_codes(currency: object) -> None:
    # babel answers 2 for any unknown string; dealdesk must not.
    with pytest.raises(ValueError, match="unknown currency"):
        minor_units(currency)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, "5"),
        (0.1, "0.1"),
        (1500.5, "1500.5"),
        (Decimal("2.50"), "2.50"),
        ("1500.50", "1500.50"),
        (" -3 ", "-3"),
        ("1e3", "1E+3"),
        (".5", "0.5"),
        ("+7", "7"),
    ],
)
def test_parse_decimal_accepts_numbers_and_decimal_strings(value: object, expected: str) -> None:
    result = parse_decimal(value)
    assert isinstance(result, Decimal)
    assert str(result) == expected


def test_parse_decimal_keeps_float_literals_exact() -> None:
    # Decimal(0.1) would be 0.1000000000000000055511151231257827...
    assert parse_decimal(0.1) == Decimal("0.1")
    assert parse_decimal(0.1) + parse_decimal(0.2) == Decimal("0.3")


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        math.nan,
        math.inf,
        -math.inf,
        Decimal("NaN"),
        Decimal("Infinity"),
        "abc",
        "",
        "   ",
        "NaN",
        "Infinity",
        "1_000",
        "1,500.00",
        "12 000",
        "0x10",
        None,
        [1],
        {"a": 1},
    ],
)
def test_parse_decimal_rejects_non_numbers(value: object) -> None:
    with pytest.raises(ValueError):
        parse_decimal(value)


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("0.125", "USD", "0.13"),
        ("-0.125", "USD", "-0.13"),
        ("2.5", "JPY", "3"),
        ("0.5", "JPY", "1"),
        ("1.0005", "KWD", "1.001"),
        ("0.124999", "USD", "0.12"),
    ],
)
def test_quantize_money_rounds_half_up(value: str, currency: str, expected: str) -> None:
    assert str(quantize_money(Decimal(value), currency)) == expected


def test_quantize_money_rejects_unknown_currency() -> None:
    with pytest.raises(ValueError, match="unknown currency"):
        quantize_money(Decimal(1), "ABC")


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        (Decimal("300000"), "USD", "300000.00"),
        (Decimal("300000"), "JPY", "300000"),
        (300000, "USD", "300000.00"),
        ("1234.5", "EUR", "1234.50"),
        (Decimal("1E+3"), "USD", "1000.00"),
        (Decimal("-0.001"), "USD", "0.00"),
        (Decimal("1E+30"), "USD", "1000000000000000000000000000000.00"),
        (Decimal("0.0049"), "KWD", "0.005"),
    ],
)
def test_money_string(value: object, currency: str, expected: str) -> None:
    assert money_string(value, currency) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0.30000"), 0.3),
        (Decimal("0.12345"), 0.1235),
        (Decimal("0.123449"), 0.1234),
        (Decimal("1") - Decimal("697200") / Decimal("1389600"), 0.4983),
        (Decimal("0.00005"), 0.0001),
        (0.1 + 0.2, 0.3),
        (1, 1.0),
    ],
)
def test_round_fraction_rounds_half_up_to_four_places(value: object, expected: float) -> None:
    result = round_fraction(value)
    assert type(result) is float
    assert result == expected


def test_round_fraction_has_no_negative_zero() -> None:
    result = round_fraction(Decimal("-0.00001"))
    assert math.copysign(1, result) == 1
    assert json.dumps(result) == "0.0"


money_values = st.decimals(
    min_value=Decimal("-1e15"),
    max_value=Decimal("1e15"),
    allow_nan=False,
    allow_infinity=False,
    places=6,
)


@given(money_values, st.sampled_from(["USD", "JPY", "KWD", "EUR", "CLF"]))
def test_money_string_round_trips_quantized_values(value: Decimal, currency: str) -> None:
    quantized = quantize_money(value, currency)
    text = money_string(quantized, currency)
    assert parse_decimal(text) == quantized
    assert money_string(parse_decimal(text), currency) == text
    # The string has exactly the currency's minor units and no exponent.
    decimals = text.partition(".")[2]
    assert len(decimals) == minor_units(currency)
    assert "E" not in text
    # Half-up rounding is never further than half a minor unit away.
    assert abs(quantized - value) <= Decimal(1).scaleb(-minor_units(currency)) / 2
