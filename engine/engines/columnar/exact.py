"""Exact number columns for the columnar engine: a deal's own numbers and its derived facts
(SPEC §2), from the Arrow arrays a chunk was read into.

Every column here is a :class:`~dealdesk.engines.columnar.vector.Column` whose comparisons with
a ``Decimal`` give exactly what the per-deal engines give on the ``Decimal`` values
:func:`~dealdesk.deal.validate.prepare_deal` computes (sums and products exact, quotients
rounded to 28 digits), and whose ``values`` (built on first use) equal those ``Decimal`` values.

How, without a ``Decimal`` per deal:

- **Money and sums** are int64 units at one scale per column (the smallest that holds the
  chunk's values exactly): ``quantity × unit_price`` at the scale of the two, summed per deal.
  A deal with a value that does not fit int64 at its column's scale, or whose products or sums
  could pass 2^62 (checked in floats first), is a *slow* row: its facts are the reference
  arithmetic's (:class:`~dealdesk.deal.derive.Ledger` on its ``Decimal`` numbers), and its
  comparisons compare those ``Decimal`` values. When one deal's places put the others past
  int64 (a 12-place price and a 2-place quantity: amounts at 14 places), lower scales are
  searched that leave fewer slow rows, the deals needing more places being the slow ones.
  A comparison of units with a constant ``c`` is one with the integer ``floor`` or ``ceil`` of
  ``c·10^scale`` (Python integers: exact).
- **Quotients** (``margin``, ``services_ratio``, ``labor_margin``, line margins and discounts)
  keep their integer numerator and denominator. A float quotient decides ``q OP c`` where it is
  farther from ``c`` than ``1e-14·(1 + 2|q| + |c|)``: the float's own error is at most
  ``7e-16·(1 + 2|q| + |c|)`` (five roundings of the quotient — the two operands, the division,
  the power of ten and its product —, one of ``1 - q``, one of ``c``) and the per-deal engines'
  two 28-digit roundings at most ``1.1e-27·(1 + 2|q|)``, so the exact quotient, the 28-digit
  ``Decimal`` and the float are all on the same side of ``c``. The rows nearer than that (the
  deals on a threshold: a list price of 100 sold at 70 against ``0.30``) are decided by the
  reference ``Decimal`` arithmetic on their integers — the very value the per-deal engines
  compare. No division-free rewrite is used: ``(T - C)·10^k`` against ``m·T`` would pass int64
  for a contract at scale 12, and near the threshold it is the 28-digit rounding, not the exact
  quotient, that the per-deal engines compare.
- ``max_line_discount OP c`` is answered from the lines' discounts (``max > c`` where some line's
  is, ``max <= c`` where every line's is, ``max == c`` where every one is ``<= c`` and one is
  ``== c``), 0 for a deal without a non-zero list price.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Context, Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dealdesk.deal.derive import EXACT, RISK_OFFER_TYPES, Ledger
from dealdesk.deal.schema import CATEGORIES
from dealdesk.engines.columnar.vector import NUMPY_OPS, Column, row_mask
from dealdesk.rules.expressions import Arith, Const, Expr, Field
from dealdesk.rules.meaning import COMPARISONS, to_decimal

__all__ = ["Derived", "IntColumn", "RatioColumn", "derived_columns", "number_column"]

# the per-deal engines' quotient context (derive._QUOTIENT)
_QUOTIENT = Context(prec=28)
_ZERO = Decimal(0)
_ONE = Decimal(1)
# products and sums stay below this (estimated in floats), half of int64's range
_SAFE = float(2**62)
_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)
# a float quotient decides a comparison when it is farther than this (relative) from the constant
_TOLERANCE = 1e-14
_CATEGORY_CODES = pa.array(CATEGORIES)
_RISK_OFFER_TYPES = pa.array(sorted(RISK_OFFER_TYPES))
_HARDWARE, _SOFTWARE, _LABOR, _SUPPORT, _SUBSCRIPTION = range(5)


def _decide(op: str, value: Decimal, constant: Decimal) -> bool:
    # meaning._compare on two Decimals
    return bool(COMPARISONS[op](value, constant))


def _as_constant(value: Any) -> Decimal:
    number = to_decimal(value)
    if number is None:
        raise TypeError(f"a number column compares with numbers, not {type(value).__name__}")
    return number


def _integer_bounds(value: Decimal, scale: int) -> tuple[int, int]:
    """``floor`` and ``ceil`` of ``value·10^scale`` (a finite ``value``), exactly; a value far
    past int64 comes back as ±2^70 (every unit compares with it as with itself)."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    coefficient = int("".join(map(str, digits)))
    shift = exponent + scale
    if not coefficient:
        return 0, 0
    if shift >= 0:
        if len(digits) + shift > 21:
            return (-(2**70), -(2**70)) if sign else (2**70, 2**70)
        whole = coefficient * 10**shift
        return (-whole, -whole) if sign else (whole, whole)
    if len(digits) <= -shift:  # 0 < |value·10^scale| < 1
        return (-1, 0) if sign else (0, 1)
    quotient, remainder = divmod(coefficient, 10**-shift)
    if sign:
        return -quotient - (remainder != 0), -quotient
    return quotient, quotient + (remainder != 0)


def _units_vs(units: np.ndarray, op: str, bound: int) -> np.ndarray:
    """``units OP bound`` for an integer ``bound`` that may lie outside int64."""
    if bound > _INT64_MAX:
        return np.full(len(units), op in ("<", "<=", "!="), dtype=bool)
    if bound < _INT64_MIN:
        return np.full(len(units), op in (">", ">=", "!="), dtype=bool)
    return np.asarray(NUMPY_OPS[op](units, np.int64(bound)), dtype=bool)


def _compare_units(units: np.ndarray, scale: int, op: str, constant: Decimal) -> np.ndarray:
    """``units·10^-scale OP constant``, exactly, for a finite ``constant``."""
    floor, ceil = _integer_bounds(constant, scale)
    if op in ("==", "!="):
        if floor != ceil:  # the constant has more places than the scale: never equal
            return np.full(len(units), op == "!=", dtype=bool)
        return _units_vs(units, op, floor)
    # units < c ⇔ units < ceil(c); units <= c ⇔ units <= floor(c); and so on
    return _units_vs(units, op, ceil if op in ("<", ">=") else floor)


class _ExactColumn(Column):
    """A number column of ``n`` rows: the subclass's fast representation, and the ``Decimal``
    values of its slow rows (``slow``: row → value, None where the fact is absent).

    ``values`` is a property here, built on first use (the base class's slot is not used); the
    subclasses keep their attributes in a ``__dict__``: a few columns a chunk.
    """

    def _setup(self, n: int, known: np.ndarray, slow: dict[int, Decimal | None]) -> None:
        self.n = n
        self.known = known
        self.slow = slow
        self.kind = "number" if known.any() else "none"
        self.filled = None  # the base class's object array: not built here
        self._values: list[Any] | None = None

    @property
    def values(self) -> list[Any]:
        """The exact ``Decimal`` value of every row (None where unknown), built on first use."""
        if self._values is None:
            self._values = [self.decimal(i) for i in range(self.n)]
        return self._values

    def decimal(self, i: int) -> Decimal | None:
        """Row ``i``'s value as the per-deal engines compute it, None when absent."""
        if not self.known[i]:
            return None
        if i in self.slow:
            return self.slow[i]
        return self.fast_decimal(i)

    def fast_decimal(self, i: int) -> Decimal:
        raise NotImplementedError

    def fast_compare(self, op: str, constant: Decimal) -> np.ndarray:
        raise NotImplementedError

    def compare(self, op: str, value: Any) -> np.ndarray:
        constant = _as_constant(value)
        if not constant.is_finite():  # infinities, NaN: as the per-row meaning has them
            hit = np.zeros(self.n, dtype=bool)
            for i in np.flatnonzero(self.known).tolist():
                hit[i] = _decide(op, self.decimal(i), constant)  # type: ignore[arg-type]
            return hit
        hit = self.fast_compare(op, constant)
        for i, number in self.slow.items():
            if number is not None:
                hit[i] = _decide(op, number, constant)
        return hit

    def compare_column(self, op: str, other: Column) -> np.ndarray | None:
        return None


class IntColumn(_ExactColumn):
    """Numbers as int64 ``units`` at ``scale`` (the value is ``units·10^-scale``)."""

    def __init__(
        self,
        units: np.ndarray,
        scale: int,
        known: np.ndarray,
        slow: dict[int, Decimal | None] | None = None,
    ):
        self.units = units
        self.scale = scale
        self._setup(len(units), known, slow or {})

    def fast_decimal(self, i: int) -> Decimal:
        return Decimal(int(self.units[i])).scaleb(-self.scale, EXACT)

    def fast_compare(self, op: str, constant: Decimal) -> np.ndarray:
        return _compare_units(self.units, self.scale, op, constant)

    def compare_column(self, op: str, other: Column) -> np.ndarray | None:
        """Two int columns without slow rows, at one scale (the finer one, when the other's
        units fit it); else None: the caller compares the rows."""
        if not isinstance(other, IntColumn) or self.slow or other.slow:
            return None
        scale = max(self.scale, other.scale)
        mine, theirs = self.units, other.units
        for units, own in ((mine, self.scale), (theirs, other.scale)):
            if own < scale and np.abs(units).max(initial=0) * 10.0 ** (scale - own) >= _SAFE:
                return None
        if self.scale < scale:
            mine = mine * 10 ** (scale - self.scale)
        if other.scale < scale:
            theirs = theirs * 10 ** (scale - other.scale)
        return np.asarray(NUMPY_OPS[op](mine, theirs), dtype=bool)


class RatioColumn(_ExactColumn):
    """A quotient fact: ``(num/den)·10^shift``, or ``1 - (num/den)·10^shift`` when
    ``complement``, each operation rounded to 28 digits as in the per-deal engines; ``num`` and
    ``den`` int64 (``den`` not 0 where the row is known and not slow)."""

    def __init__(
        self,
        num: np.ndarray,
        den: np.ndarray,
        shift: int,
        complement: bool,
        known: np.ndarray,
        slow: dict[int, Decimal | None] | None = None,
    ):
        self.num = num
        self.den = den
        self.shift = shift
        self.complement = complement
        self._approx: np.ndarray | None = None
        self._magnitude: np.ndarray | None = None
        self._setup(len(num), known, slow or {})

    def fast_decimal(self, i: int) -> Decimal:
        num, den = int(self.num[i]), int(self.den[i])
        if self.shift >= 0:
            num *= 10**self.shift
        else:
            den *= 10**-self.shift
        quotient = _QUOTIENT.divide(Decimal(num), Decimal(den))
        return _QUOTIENT.subtract(_ONE, quotient) if self.complement else quotient

    def approximations(self) -> tuple[np.ndarray, np.ndarray]:
        """The float value of every row and ``1 + 2|quotient|`` (rows not known: anything)."""
        if self._approx is None:
            den = np.where(self.den == 0, 1, self.den).astype(np.float64)
            quotient = self.num.astype(np.float64) / den
            if self.shift:
                quotient *= 10.0**self.shift
            self._approx = 1.0 - quotient if self.complement else quotient
            self._magnitude = 1.0 + 2.0 * np.abs(quotient)
        assert self._magnitude is not None
        return self._approx, self._magnitude

    def fast_compare(self, op: str, constant: Decimal) -> np.ndarray:
        approx, magnitude = self.approximations()
        target = float(constant)
        if not math.isfinite(target):  # past float's range: no float decides
            clear = np.zeros(self.n, dtype=bool)
            hit = clear.copy()
        else:
            difference = approx - target
            clear = np.abs(difference) > _TOLERANCE * (magnitude + abs(target))
            if op in (">", ">="):
                hit = clear & (difference > 0)
            elif op in ("<", "<="):
                hit = clear & (difference < 0)
            elif op == "!=":
                hit = clear.copy()
            else:
                hit = np.zeros(self.n, dtype=bool)
        # the rows on (or within 1e-14 of) the constant: the reference arithmetic
        for i in np.flatnonzero(self.known & ~clear).tolist():
            if i not in self.slow:
                hit[i] = _decide(op, self.fast_decimal(i), constant)
        return hit


class DiscountColumn(_ExactColumn):
    """``max_line_discount`` of each deal: the largest of its lines' discounts (``lines``, a
    :class:`RatioColumn` known on the lines with a non-zero list price), 0 without one."""

    def __init__(
        self,
        lines: RatioColumn,
        owners: np.ndarray,
        starts: np.ndarray,
        known: np.ndarray,
        slow: dict[int, Decimal | None],
    ):
        self.lines = lines
        self.owners = owners
        self.starts = starts  # each row's first line, and the end of the last row's
        n = len(known)
        self.listed = np.bincount(owners[lines.known], minlength=n) > 0
        self._setup(n, known, slow)

    def fast_decimal(self, i: int) -> Decimal:
        largest: Decimal | None = None
        for j in range(int(self.starts[i]), int(self.starts[i + 1])):
            if self.lines.known[j]:
                discount = self.lines.fast_decimal(j)
                if largest is None or discount > largest:  # the first largest, as max()
                    largest = discount
        return _ZERO if largest is None else largest

    def _count(self, hit: np.ndarray) -> np.ndarray:
        return np.bincount(self.owners[hit & self.lines.known], minlength=self.n)

    def fast_compare(self, op: str, constant: Decimal) -> np.ndarray:
        if op in (">", ">="):  # some line's discount is
            result = self._count(self.lines.compare(op, constant)) > 0
        elif op in ("<", "<="):  # every line's discount is
            result = self._count(~self.lines.compare(op, constant)) == 0
        else:  # == : none above and one equal
            above = self._count(self.lines.compare(">", constant)) > 0
            equal = self._count(self.lines.compare("==", constant)) > 0
            result = equal & ~above
            if op == "!=":
                result = ~result
        if not self.listed.all():
            result = np.where(self.listed, result, _decide(op, _ZERO, constant))
        return result


class _BoolColumn(Column):
    """A boolean fact (``risk_offer``): the base class's comparisons on a bool array."""

    def __init__(self, truth: np.ndarray, known: np.ndarray):
        self.filled = truth
        self.known = known
        self.kind = "boolean" if known.any() else "none"
        self._values: list[Any] | None = None

    @property
    def values(self) -> list[Any]:
        if self._values is None:
            truth = self.filled
            assert truth is not None
            self._values = [
                bool(t) if k else None
                for t, k in zip(truth.tolist(), self.known.tolist(), strict=True)
            ]
        return self._values

    def is_true(self) -> np.ndarray:
        return np.asarray(self.filled, dtype=bool)


# ---------------------------------------------------------------------------------------------
# Arrow arrays → int64 units


def _present(array: pa.Array) -> np.ndarray:
    if array.null_count == 0:
        return np.ones(len(array), dtype=bool)
    bitmap = array.buffers()[0]
    if bitmap is None:  # a null type or a union: Arrow's own answer
        return np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
    return bits[array.offset : array.offset + len(array)].view(bool)


def _plain(array: pa.Array) -> pa.Array:
    """A text array as plain strings (a dictionary-encoded one decoded)."""
    if pa.types.is_dictionary(array.type):
        return array.dictionary_decode()
    return array


def _places(number: Decimal) -> int:
    exponent = number.normalize(EXACT).as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def _units(array: pa.Array) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """A decimal or integer array as ``(units, present, scale, unfit)``: int64 units at the
    smallest scale that holds every value exactly, 0 where a value is missing or ``unfit``
    (it does not fit int64 at that scale: its row takes the reference arithmetic)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    n = len(array)
    present = _present(array)
    if pa.types.is_integer(array.type):
        try:
            ints = pc.cast(array, pa.int64()).fill_null(0)
        except pa.ArrowInvalid:  # uint64 past int64
            values = array.to_pylist()
            return (
                np.array([v if v is not None and v <= _INT64_MAX else 0 for v in values], np.int64),
                present,
                0,
                np.array([v is not None and v > _INT64_MAX for v in values], dtype=bool),
            )
        return np.asarray(ints.to_numpy(), dtype=np.int64), present, 0, np.zeros(n, dtype=bool)
    if not pa.types.is_decimal128(array.type):
        raise TypeError(f"not a decimal or integer array: {array.type}")
    words = np.frombuffer(array.buffers()[1], dtype=np.int64)
    words = words[2 * array.offset : 2 * (array.offset + n)].reshape(-1, 2)
    low, high = words[:, 0], words[:, 1]
    fits = high == (low >> 63)
    units = np.where(present & fits, low, 0)
    unfit = present & ~fits
    scale = array.type.scale
    # the trailing zeros every fitting value has (those of their gcd), dropped in one division
    divisor = int(np.gcd.reduce(units)) if n else 0
    drop = 0
    if divisor == 0:  # every value 0 (or missing)
        drop = max(scale, 0)
    elif divisor > 0:  # (negative: -2^63 overflowed the gcd; nothing dropped)
        while drop < scale and divisor % 10 ** (drop + 1) == 0:
            drop += 1
    if drop:
        units = units // 10**drop
        scale -= drop
    if unfit.any():  # values past int64 at the array's scale: at the scale they need
        big = {int(i): array[int(i)].as_py() for i in np.flatnonzero(unfit)}
        needed = max(_places(v) for v in big.values())
        if needed > scale:
            factor = 10 ** (needed - scale)
            over = np.abs(units).astype(np.float64) * float(factor) >= _SAFE
            if over.any():
                big.update({int(i): array[int(i)].as_py() for i in np.flatnonzero(over)})
                unfit |= over
            units = np.where(over, 0, units) * factor
            scale = needed
        for i, value in big.items():
            whole = int(value.scaleb(scale, EXACT))
            if _INT64_MIN <= whole <= _INT64_MAX:
                units[i] = whole
                unfit[i] = False
            else:
                units[i] = 0
    return units, present, scale, unfit


def number_column(array: pa.Array, rows: np.ndarray) -> Column:
    """A column of one of the deal's own numbers (a ``decimal128`` or integer Arrow array).

    :param rows: the rows the column holds (the chunk's valid deals, a mask or indices);
        elsewhere it is unknown.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    mask = row_mask(rows, len(array))
    if not (pa.types.is_integer(array.type) or pa.types.is_decimal128(array.type)):
        # any other type: its Python values, as the object columns hold them
        return Column(
            [v if ok else None for v, ok in zip(array.to_pylist(), mask.tolist(), strict=True)]
        )
    units, present, scale, unfit = _units(array)
    known = mask & present
    slow: dict[int, Decimal | None] = {}
    for i in np.flatnonzero(known & unfit).tolist():
        value = array[i].as_py()
        slow[i] = value if isinstance(value, Decimal) else Decimal(value)
    return IntColumn(units, scale, known, slow)


# ---------------------------------------------------------------------------------------------
# the derived facts


_TOTALS = ("product", "services", "support", "subscription", "contract", "cost")
_ROW_PATHS = frozenset(
    [f"totals.{t}" for t in _TOTALS]
    + ["margin", "services_ratio", "max_line_discount", "labor_margin", "risk_offer"]
)


class Derived:
    """The SPEC §2 derived facts of a chunk's valid rows, as columns built on first use.

    ``owners`` is the row of each line of the valid rows, flattened in row order (the order of
    :meth:`line_column`'s rows).
    """

    def __init__(self, lines: pa.ListArray, offer_type: pa.Array, rows: np.ndarray):
        if isinstance(lines, pa.ChunkedArray):
            lines = lines.combine_chunks()
        if isinstance(offer_type, pa.ChunkedArray):
            offer_type = offer_type.combine_chunks()
        n = self.n = len(lines)
        rows = self.rows = row_mask(rows, n) & _present(lines)
        offsets = np.asarray(lines.offsets.to_numpy(), dtype=np.intp)
        counts = np.diff(offsets)
        owner_all = np.repeat(np.arange(n, dtype=np.intp), counts)
        struct = lines.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
        selected = rows[owner_all]
        self._columns: dict[str, Column | None] = {}
        self._line_columns: dict[str, Column | None] = {}
        self.risk = self._risk(offer_type, rows)

        if not selected.all():
            struct = struct.filter(pa.array(selected))
            owner_all = owner_all[selected]
        self.owners = owner_all
        self.struct = struct
        # each row's first line in the selected lines (rows without lines: an empty range)
        self.starts = np.concatenate(([0], np.cumsum(np.where(rows, counts, 0)))).astype(np.intp)

        fields = struct.flatten()  # the fields with the struct's own nulls
        names = [struct.type.field(i).name for i in range(struct.type.num_fields)]
        field = dict(zip(names, fields, strict=True))
        category = pc.index_in(_plain(field["category"]), value_set=_CATEGORY_CODES)
        if category.null_count:
            category = category.fill_null(-1)
        code = np.asarray(category.to_numpy(), dtype=np.int8)
        q, _, qs, q_unfit = _units(field["quantity"])
        p, _, ps, p_unfit = _units(field["unit_price"])
        c, has_cost, cs, c_unfit = _units(field["unit_cost"])
        lp, has_list, ls, l_unfit = _units(field["list_price"])
        numbers = [(q, qs), (p, ps), (c, cs), (lp, ls)]
        unfit = q_unfit | p_unfit | c_unfit | l_unfit
        slow_rows = self._overflow(numbers, unfit)
        if slow_rows.any():  # a few deals' places may have set scales the rest cannot take
            numbers, unfit, slow_rows = self._fewer_places(numbers, unfit, slow_rows)
        (q, qs), (p, ps), (c, cs), (lp, ls) = numbers
        self.has_cost, self.has_list = has_cost, has_list
        self.ps, self.cs, self.ls = ps, cs, ls
        amount_scale, cost_scale = qs + ps, qs + cs
        scale = self.scale = max(amount_scale, cost_scale)
        self.amount_scale = amount_scale
        bad_line = slow_rows[self.owners]
        if bad_line.any():  # their units are not used: zero, so nothing overflows
            q, p, c, lp = (np.where(bad_line, 0, units) for units in (q, p, c, lp))
        self.q, self.p, self.c, self.lp = q, p, c, lp
        self.fast_line = ~bad_line

        amount = q * p  # at amount_scale
        self.amount = amount
        cost_amount = np.where(has_cost, q * c, 0)
        if scale > amount_scale:
            amount = amount * 10 ** (scale - amount_scale)
        if scale > cost_scale:
            cost_amount = cost_amount * 10 ** (scale - cost_scale)
        is_labor = code == _LABOR
        missing_cost = ~has_cost
        parts = np.stack(
            [
                np.where((code == _HARDWARE) | (code == _SOFTWARE), amount, 0),
                np.where(is_labor | (code == _SUPPORT), amount, 0),
                np.where(code == _SUPPORT, amount, 0),
                np.where(code == _SUBSCRIPTION, amount, 0),
                amount,
                cost_amount,
                np.where(is_labor, amount, 0),
                np.where(is_labor, cost_amount, 0),
                is_labor,
                is_labor & missing_cost,
                (code != _SUBSCRIPTION) & missing_cost,
            ],
            axis=1,
        ).astype(np.int64, copy=False)
        cumulative = np.zeros((len(parts) + 1, parts.shape[1]), dtype=np.int64)
        np.cumsum(parts, axis=0, out=cumulative[1:])  # wraps past int64; differences do not
        sums = cumulative[self.starts[1:]] - cumulative[self.starts[:-1]]
        self.sums = {name: sums[:, i] for i, name in enumerate(_TOTALS)}
        self.labor_price, self.labor_cost = sums[:, 6], sums[:, 7]
        self.labor_lines, self.labor_uncosted, self.uncosted = sums[:, 8], sums[:, 9], sums[:, 10]

        # the slow rows: the reference arithmetic on their Decimal numbers
        self.slow_facts: dict[int, dict[str, Any]] = {}
        self.slow_lines: dict[int, dict[str, Any]] = {}  # line index → its line dict
        slow_list = np.flatnonzero(slow_rows).tolist()
        spans = [range(int(self.starts[i]), int(self.starts[i + 1])) for i in slow_list]
        indices = [j for span in spans for j in span]
        if indices:  # their lines and offer types as Python values, one conversion each
            lines_py = struct.take(pa.array(indices, type=pa.int64())).to_pylist()
            self.slow_lines = dict(zip(indices, lines_py, strict=True))
        offers = offer_type.take(pa.array(slow_list, type=pa.int64())).to_pylist() if spans else []
        for i, span, offer in zip(slow_list, spans, offers, strict=True):
            ledger = Ledger()
            for j in span:
                line = self.slow_lines[j]
                ledger.add(
                    line,
                    line.get("category"),
                    line["quantity"],
                    line["unit_price"],
                    line.get("unit_cost"),
                    line.get("list_price"),
                )
            self.slow_facts[i] = ledger.facts({"type": offer})
        self.fast = rows & ~slow_rows

    def _overflow(self, numbers: list[tuple[np.ndarray, int]], unfit: np.ndarray) -> np.ndarray:
        """The valid rows the int64 path cannot take with these units (quantity, price, cost,
        list price, each with its scale): a value ``unfit``, or a product or a deal's sum that
        could pass 2^62 (estimated in floats)."""
        (q, qs), (p, ps), (c, cs), _ = numbers
        scale = max(qs + ps, qs + cs)
        fq = np.abs(q.astype(np.float64))
        f_amount = fq * np.abs(p.astype(np.float64)) * 10.0 ** (scale - qs - ps)
        f_cost = fq * np.abs(c.astype(np.float64)) * 10.0 ** (scale - qs - cs)
        line_bad = unfit | (f_amount >= _SAFE) | (f_cost >= _SAFE)
        n = self.n
        sum_amount = np.bincount(self.owners, weights=f_amount, minlength=n)
        sum_cost = np.bincount(self.owners, weights=f_cost, minlength=n)
        slow = np.bincount(self.owners[line_bad], minlength=n) > 0
        return (slow | (sum_amount >= _SAFE) | (sum_cost >= _SAFE)) & self.rows

    def _fewer_places(
        self, numbers: list[tuple[np.ndarray, int]], unfit: np.ndarray, slow: np.ndarray
    ) -> tuple[list[tuple[np.ndarray, int]], np.ndarray, np.ndarray]:
        """Scales most of a chunk's deals can take, when its finest values put deals past int64
        (one quantity with 12 places puts every amount at 12 more): the deals needing more
        places than a number's scale go the reference way. A greedy search lowers one number's
        scale at a time to a place count some deal needs, while that leaves fewer slow deals
        (a few rounds). Returns the units, the lines of the deals left out and the slow rows."""
        n = self.n
        line_needs = []
        for units, scale in numbers:  # the places each line's value needs (0 when unfit)
            need = np.full(len(units), scale, dtype=np.int64)
            for k in range(1, scale + 1):
                need -= units % 10**k == 0
            line_needs.append(need)

        def at(targets: list[int]) -> tuple[list[tuple[np.ndarray, int]], np.ndarray]:
            chosen, out = [], unfit.copy()
            for (units, scale), need, target in zip(numbers, line_needs, targets, strict=True):
                if target < scale:  # exact where the line needs no more than target
                    out |= need > target
                    units = np.where(need > target, 0, units) // 10 ** (scale - target)
                chosen.append((units, target))
            # a deal with a line left out is left out whole
            return chosen, (np.bincount(self.owners[out], minlength=n) > 0)[self.owners]

        best = (numbers, unfit, slow)
        targets = [scale for _, scale in numbers]
        for _ in range(3):
            step = None
            for f, need in enumerate(line_needs):
                for lower in np.unique(need[need < targets[f]]).tolist():
                    trial = [*targets[:f], int(lower), *targets[f + 1 :]]
                    chosen, out = at(trial)
                    fewer = self._overflow(chosen, out)
                    if fewer.sum() < best[2].sum():
                        best, step = (chosen, out, fewer), trial
            if step is None or not best[2].any():
                break
            targets = step
        return best

    @staticmethod
    def _risk(offer_type: pa.Array, rows: np.ndarray) -> _BoolColumn:
        risky = pc.is_in(_plain(offer_type), value_set=_RISK_OFFER_TYPES)
        truth = np.asarray(risky.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
        return _BoolColumn(truth & rows, rows)

    # -- columns

    def _slow(self, get: Callable[[dict[str, Any]], Decimal | None]) -> dict[int, Decimal | None]:
        return {i: get(facts) for i, facts in self.slow_facts.items()}

    def _known(self, fast: np.ndarray, slow: dict[int, Decimal | None]) -> np.ndarray:
        known = self.fast & fast
        for i, value in slow.items():
            known[i] = value is not None
        return known

    def column(self, path: str) -> Column | None:
        """The column of a derived fact (``totals.contract``, ``margin`` ..., ``risk_offer``),
        None for any other path."""
        if path not in self._columns:
            self._columns[path] = self._build(path) if path in _ROW_PATHS else None
        return self._columns[path]

    def _build(self, path: str) -> Column:
        contract = self.sums["contract"]
        if path == "risk_offer":
            return self.risk
        if path.startswith("totals."):
            name = path.partition(".")[2]
            slow = self._slow(lambda f: f["totals"][name])
            return IntColumn(self.sums[name], self.scale, self._known(self.rows, slow), slow)
        if path == "margin":
            slow = self._slow(lambda f: f.get("margin"))
            known = self._known((contract != 0) & (self.uncosted == 0), slow)
            return RatioColumn(self.sums["cost"], contract, 0, True, known, slow)
        if path == "services_ratio":
            slow = self._slow(lambda f: f.get("services_ratio"))
            known = self._known(contract != 0, slow)
            return RatioColumn(self.sums["services"], contract, 0, False, known, slow)
        if path == "labor_margin":
            slow = self._slow(lambda f: f.get("labor_margin"))
            fast = (self.labor_lines > 0) & (self.labor_price != 0) & (self.labor_uncosted == 0)
            known = self._known(fast, slow)
            return RatioColumn(self.labor_cost, self.labor_price, 0, True, known, slow)
        # max_line_discount: over the lines with a non-zero list price (fast rows' lines)
        listed = self.has_list & (self.lp != 0) & self.fast_line
        lines = RatioColumn(self.p, self.lp, self.ls - self.ps, True, listed)
        slow = self._slow(lambda f: f["max_line_discount"])
        return DiscountColumn(lines, self.owners, self.starts, self._known(self.rows, slow), slow)

    def line_column(self, path: str) -> Column | None:
        """A column over the lines (``amount``, ``margin``), one row per entry of ``owners``;
        None for any other path."""
        if path not in self._line_columns:
            self._line_columns[path] = self._build_line(path)
        return self._line_columns[path]

    def _build_line(self, path: str) -> Column | None:
        if path not in ("amount", "margin"):
            return None
        slow = {j: line.get(path) for j, line in self.slow_lines.items()}
        known = self.fast_line.copy()
        if path == "margin":
            known &= self.has_cost & (self.p != 0)
        for j, value in slow.items():
            known[j] = value is not None
        if path == "amount":
            return IntColumn(self.amount, self.amount_scale, known, slow)
        return RatioColumn(self.c, self.p, self.ps - self.cs, True, known, slow)

    def decimal(self, path: str, i: int) -> Any:
        """The exact value of a fact (``margin``, ``totals.cost`` ..., ``risk_offer``) for row
        ``i``, or of a line's (``lines.amount``, ``lines.margin``) for line ``i`` of
        :attr:`owners`; None when the fact is absent.

        :raises KeyError: for a path that is not a derived fact.
        """
        if path.startswith("lines."):
            column = self.line_column(path.partition(".")[2])
        else:
            column = self.column(path)
        if column is None:
            raise KeyError(path)
        if isinstance(column, _ExactColumn):
            return column.decimal(i)
        return column.values[i]


def derived_columns(lines: pa.ListArray, offer_type: pa.Array, rows: np.ndarray) -> Derived:
    """The derived facts (SPEC §2) of a chunk's valid ``rows`` (a mask or indices), from its
    ``lines`` (``list<struct<category, quantity, unit_price, unit_cost, list_price>>``, money
    ``decimal128``) and its ``offer.type`` (string) arrays."""
    return Derived(lines, offer_type, rows)


# -- `=` outputs as columns (the record templates' holes)

#: An expression's value per row as int64 ``units`` at ``scale``, and where that is exact
#: (``ok``: every field known and fast, nothing past int64).
Units = tuple[np.ndarray, int, np.ndarray]
# past this scale a value's units would not be worth the guard (and 10**scale leaves int64)
_MOST_SCALE = 18


def expression_units(expr: Expr, column: Callable[[str], Column], n: int) -> Units | None:
    """``expr`` over a chunk of ``n`` rows as int64 units, when it is made of exact number
    columns (:class:`IntColumn`: money, quantities, their sums), number constants, ``+``,
    ``-`` and ``*``; None for any other expression (its values are the per-row meaning's).

    Exact where ``ok``: sums and products of integers are exact, and the per-deal engines'
    28-digit ``Decimal`` arithmetic is exact on values of at most 19 digits. Elsewhere (a value
    unknown, a slow row, a result that could pass 2^62) the row is left to the per-row meaning.
    """
    if isinstance(expr, Const):
        number = expr.value
        if not isinstance(number, Decimal) or not number.is_finite():
            return None
        exponent = number.as_tuple().exponent
        assert isinstance(exponent, int)
        scale = max(0, -exponent)
        value = int(number.scaleb(scale))
        if scale > _MOST_SCALE or abs(value) >= _SAFE:
            return None
        return np.full(n, value, dtype=np.int64), scale, np.ones(n, dtype=bool)
    if isinstance(expr, Field):
        found = None if expr.item else column(expr.path)
        if not isinstance(found, IntColumn) or found.scale > _MOST_SCALE:
            return None
        ok = found.known.copy()
        if found.slow:
            ok[list(found.slow)] = False
        return found.units, found.scale, ok
    if isinstance(expr, Arith) and expr.op in ("+", "-", "*"):
        left = expression_units(expr.left, column, n)
        right = expression_units(expr.right, column, n)
        if left is None or right is None:
            return None
        (a, a_scale, a_ok), (b, b_scale, b_ok) = left, right
        ok = a_ok & b_ok
        if expr.op == "*":
            scale = a_scale + b_scale
            ok &= np.abs(a).astype(np.float64) * np.abs(b).astype(np.float64) < _SAFE
            units = np.where(ok, a, 0) * np.where(ok, b, 0)
        else:
            scale = max(a_scale, b_scale)
            a, b = _at_scale(a, a_scale, scale, ok), _at_scale(b, b_scale, scale, ok)
            ok &= np.abs(a).astype(np.float64) + np.abs(b).astype(np.float64) < _SAFE
            units = a + b if expr.op == "+" else a - b
        if scale > _MOST_SCALE:
            return None
        return np.where(ok, units, 0), scale, ok
    return None


def _at_scale(units: np.ndarray, scale: int, target: int, ok: np.ndarray) -> np.ndarray:
    """``units`` at a finer ``target`` scale; rows it would take past 2^62 leave ``ok``."""
    if scale == target:
        return units
    factor = 10 ** (target - scale)
    ok &= np.abs(units).astype(np.float64) * float(factor) < _SAFE
    return np.where(ok, units, 0) * factor


def money_units(found: Units, places: int) -> tuple[np.ndarray, np.ndarray]:
    """The units of :func:`expression_units` rounded half-up (ties away from zero, as
    :func:`dealdesk.money.quantize_money`) to ``places`` decimals, and where that is exact."""
    units, scale, ok = found
    units = np.where(ok, units, 0)  # where not exact, anything: kept from overflowing
    if scale <= places:
        ok = ok.copy()
        return _at_scale(units, scale, places, ok), ok
    step = 10 ** (scale - places)  # scale is at most _MOST_SCALE: int64
    magnitude = (np.abs(units) + step // 2) // step
    return np.where(units < 0, -magnitude, magnitude), ok


def money_text(units: int, places: int) -> str:
    """``units`` at ``places`` decimals as :func:`dealdesk.money.money_string` writes it
    (``7874640, 2`` → ``78746.40``; a zero has no sign)."""
    digits = str(abs(units)).rjust(places + 1, "0")
    sign = "-" if units < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}" if places else f"{sign}{digits}"
