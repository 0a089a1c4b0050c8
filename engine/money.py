"""Money and fractions in exact decimals: ISO 4217 minor units, half-up rounding, parsing.

Deals carry money as JSON/YAML numbers or decimal strings (SPEC §2); everything the engine
computes with is a :class:`~decimal.Decimal`, and the decision record shows money as a decimal
string with the currency's minor units (``"300000.00"``, JPY ``"300000"``) and fractions as
numbers rounded half-up to 4 places (SPEC §4).
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from functools import lru_cache

__all__ = ["minor_units", "money_string", "parse_decimal", "quantize_money", "round_fraction"]

# Plain decimal notation only: Decimal() alone would also take "1_000", "NaN" and "Infinity".
# ASCII digits only: Decimal() would read "١٢٣" (Arabic-Indic digits) as 123
_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


@lru_cache(maxsize=512)
def minor_units(currency: str) -> int:
    """Return the number of minor-unit digits of an ISO 4217 code (USD 2, JPY 0, KWD 3).

    :raises ValueError: when ``currency`` is not a currency code babel knows (codes are
        upper case, as in ISO 4217).
    """
    from babel.numbers import get_currency_precision, is_currency  # once (cached): start-up time

    # get_currency_precision answers 2 for any unknown string, so check the code first.
    if not isinstance(currency, str) or not is_currency(currency):
        raise ValueError(f"unknown currency {currency!r} (expected an ISO 4217 code such as 'USD')")
    return get_currency_precision(currency)


def parse_decimal(value: object) -> Decimal:
    """Return ``value`` as a finite :class:`Decimal`.

    Accepts ``int``, ``float`` (through ``str()``, so ``0.1`` stays ``Decimal("0.1")``),
    ``Decimal`` and numeric strings in plain decimal notation (``"1500.50"``, ``" -3 "``,
    ``"1e3"``).

    :raises ValueError: for booleans, NaN and infinities, empty or non-numeric strings and any
        other type.
    """
    if type(value) is Decimal and value.is_finite():
        return value  # most values: derived facts, amounts computed from them
    # bool is an int subclass; True as a price is always a mistake in the input.
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got boolean {str(value).lower()}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {value!r}")
        return Decimal(str(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"expected a finite number, got {value}")
        return value
    if isinstance(value, str):
        text = value.strip()
        if not _DECIMAL_TEXT.fullmatch(text):
            raise ValueError(f"not a decimal number: {value!r}")
        return Decimal(text)
    raise ValueError(f"expected a number, got {type(value).__name__}")


@lru_cache(maxsize=64)
def _unit(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


_CONTEXT = Context(prec=28)


def _quantize(value: Decimal, places: int) -> Decimal:
    """Round ``value`` half-up to ``places`` decimals, whatever its magnitude."""
    # The default 28-digit context raises InvalidOperation for very large amounts.
    precision = value.adjusted() + places + 2
    context = _CONTEXT if precision <= 28 else Context(prec=precision)
    result = value.quantize(_unit(places), rounding=ROUND_HALF_UP, context=context)
    # -0.00 would print as "-0.00"; a zero amount has no sign.
    return result.copy_abs() if result.is_zero() else result


def quantize_money(value: Decimal, currency: str) -> Decimal:
    """Round ``value`` half-up to the minor units of ``currency`` (``Decimal("0.125")`` → ``0.13`` USD).

    :raises ValueError: for an unknown currency or a value that is not a finite number.
    """
    try:
        return _quantize(parse_decimal(value), minor_units(currency))
    except InvalidOperation as exc:  # pragma: no cover - guarded by the precision above
        raise ValueError(f"cannot round {value!r} to {currency} minor units") from exc


def money_string(value: object, currency: str) -> str:
    """Return ``value`` as a decimal string with the minor units of ``currency``.

    ``money_string(Decimal("300000"), "USD") == "300000.00"``; JPY gives ``"300000"``. The value
    is rounded half-up first and never shown in exponent notation.
    """
    return format(quantize_money(parse_decimal(value), currency), "f")


def round_fraction(value: object) -> float:
    """Return a fraction (margin, discount, ratio) rounded half-up to 4 places, as a float.

    ``round_fraction(Decimal("0.30000")) == 0.3`` and ``round_fraction(Decimal("0.12345")) ==
    0.1235``: the rounding happens in decimal, so the float is the nearest to the 4-place value.
    """
    return float(_quantize(parse_decimal(value), 4))
