"""Exact number columns (engines/columnar/exact.py): every column's values and comparisons
equal the per-deal engines' on prepare_deal's Decimals — generated deals with boundary cases,
gen_book books and the peer workload, read into Arrow as the reader reads them."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from decimal import Context, Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

np = pytest.importorskip("numpy")
pa = pytest.importorskip("pyarrow")
pj = pytest.importorskip("pyarrow.json")

from dealdesk.deal.derive import derive_facts  # noqa: E402
from dealdesk.deal.schema import FIELDS  # noqa: E402
from dealdesk.deal.validate import prepare_deal  # noqa: E402
from dealdesk.engines.columnar.exact import (  # noqa: E402
    Derived,
    IntColumn,
    derived_columns,
    expression_units,
    money_text,
    money_units,
    number_column,
)
from dealdesk.engines.columnar.vector import Chunk, ConditionVector  # noqa: E402
from dealdesk.evaluate import value_of  # noqa: E402
from dealdesk.jsoncodec import loads  # noqa: E402
from dealdesk.money import minor_units, money_string  # noqa: E402
from dealdesk.rules.expressions import (  # noqa: E402
    Arith,
    Const,
    Field,
    FieldType,
    Scope,
    parse_expression,
)
from dealdesk.rules.meaning import _compare  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# the shared peer workload beside the project (../shared), as CI lays it out
PEER = Path(
    os.environ.get("DEALDESK_PEER_WORKLOAD")
    or Path(__file__).resolve().parents[3] / "shared" / "peer-workload"
)
POS = (1, 0)
MONEY = pa.decimal128(38, 12)
LINE = pa.struct(
    [
        ("category", pa.string()),
        ("quantity", MONEY),
        ("unit_price", MONEY),
        ("unit_cost", MONEY),
        ("list_price", MONEY),
    ]
)
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("offer", pa.struct([("type", pa.string()), ("kpi_at_risk", MONEY)])),
        ("partner", pa.struct([("discount", MONEY)])),
        ("billing", pa.struct([("payment_terms_days", pa.int64())])),
        ("lines", pa.list_(LINE)),
    ]
)
ROW_PATHS = [
    "totals.product",
    "totals.services",
    "totals.support",
    "totals.subscription",
    "totals.contract",
    "totals.cost",
    "margin",
    "services_ratio",
    "max_line_discount",
    "labor_margin",
]
OPS = ("==", "!=", "<", "<=", ">", ">=")
CATEGORIES = ("hardware", "software", "labor", "support", "subscription")
FIXED = [Decimal(x) for x in ("0", "0.3", "0.30", "-0.25", "1", "0.4", "1E+15", "1E-30")] + [
    Decimal("0.123456789012"),
    Decimal("999999999999999.999999999999"),
    Decimal("-5E+40"),
]
TINY = Decimal("1E-12")
PLUS_28 = Context(prec=28)


# ---------------------------------------------------------------------------------------------
# reading, and the reference


def read(texts: list[str]) -> Any:
    data = ("\n".join(texts) + "\n").encode()
    return pj.read_json(
        io.BytesIO(data),
        read_options=pj.ReadOptions(use_threads=False, block_size=max(1 << 20, 2 * len(data))),
        parse_options=pj.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore"),
    )


def readable(text: str) -> bool:
    try:
        read([text])
    except pa.ArrowInvalid:
        return False
    return True


def reference(texts: list[str], derive_invalid: bool) -> tuple[list[Any], list[bool]]:
    """prepare_deal's deal of each text; with ``derive_invalid``, derive_facts on the deals it
    refuses (a zero contract, a costed line without cost) and every row counts as valid."""
    deals, valid = [], []
    for text in texts:
        deal, problems = prepare_deal(loads(text))
        if deal is None and derive_invalid:
            raw = loads(text)
            deal = {**raw, **derive_facts(raw)}
        deals.append(deal)
        valid.append(deal is not None)
    return deals, valid


def fact(deal: dict[str, Any] | None, path: str) -> Any:
    value: Any = deal
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def truths(hit: Any, known: Any) -> list[bool | None]:
    """A comparison's hit mask as the three-valued results (None where unknown)."""
    return [bool(h) if k else None for h, k in zip(hit.tolist(), known.tolist(), strict=True)]


def near(values: list[Decimal]) -> list[Decimal]:
    """Constants at, just above and below each value: by one unit of 12 places, of the 28th
    digit, and the value rounded to 2 and 12 places."""
    out: list[Decimal] = []
    for v in values:
        out += [v, v + TINY, v - TINY, PLUS_28.next_plus(v), PLUS_28.next_minus(v)]
        out += [v.quantize(Decimal("0.01"), context=Context(prec=80))]
        out += [v.quantize(TINY, context=Context(prec=80))]
    return out


def check_chunk(texts: list[str], *, derive_invalid: bool = False, constants: int = 40) -> Derived:
    """Every column of the chunk against the reference: values, and compare() for every op on
    constants at and around the reference values."""
    table = read(texts)
    deals, valid = reference(texts, derive_invalid)
    rows = np.array(valid)
    derived = derived_columns(
        table.column("lines"), table.column("offer").combine_chunks().field("type"), rows
    )
    n = len(texts)
    for path in [*ROW_PATHS, "risk_offer"]:
        column = derived.column(path)
        assert column is not None
        want = [fact(d, path) if ok else None for d, ok in zip(deals, valid, strict=True)]
        got = column.values
        assert got == want, path  # Decimal ==: value-equal
        assert [type(g) for g in got] == [type(w) for w in want], path
        assert column.known.tolist() == [w is not None for w in want], path
        for i in range(n):
            assert derived.decimal(path, i) == want[i]
        if path == "risk_offer":
            continue
        present = sorted({w for w in want if w is not None})
        step = max(1, len(present) // constants)
        chosen = near(present[::step]) + FIXED
        for constant in chosen:
            for op in OPS:
                hit = column.compare(op, constant)
                got_truth = truths(hit, column.known)
                want_truth = [_compare(op, w, constant) for w in want]
                assert got_truth == want_truth, (path, op, constant)
    # the lines: amount and margin of each line of the valid rows, in row order
    want_lines = [line for d, ok in zip(deals, valid, strict=True) if ok for line in d["lines"]]
    owners = [
        i for i, (d, ok) in enumerate(zip(deals, valid, strict=True)) if ok for _ in d["lines"]
    ]
    assert derived.owners.tolist() == owners
    for path in ("amount", "margin"):
        column = derived.line_column(path)
        assert column is not None
        want = [line.get(path) for line in want_lines]
        assert column.values == want, path
        assert [derived.decimal(f"lines.{path}", j) for j in range(len(want))] == want
        present = sorted({w for w in want if w is not None})
        step = max(1, len(present) // constants)
        for constant in near(present[::step]) + FIXED[:4]:
            for op in OPS:
                hit = column.compare(op, constant)
                got_truth = truths(hit, column.known)
                assert got_truth == [_compare(op, w, constant) for w in want], (path, op, constant)
    return derived


# ---------------------------------------------------------------------------------------------
# generated deals


def decimals(places: int, top: int) -> st.SearchStrategy[Decimal]:
    return st.integers(0, top * 10**places - 1).map(lambda k: Decimal(k).scaleb(-places))


def number() -> st.SearchStrategy[Decimal]:
    places = st.integers(0, 12)
    return st.one_of(
        places.flatmap(lambda p: decimals(p, 1000)),
        places.flatmap(lambda p: decimals(p, 10**6)),
        places.flatmap(lambda p: decimals(p, 10**15)),  # huge: past int64 at 12 places
        st.sampled_from([Decimal(0), Decimal(100), Decimal(70), Decimal("0.000000000001")]),
        st.sampled_from([Decimal("999999999999999.999999999999"), Decimal("99999999.5")]),
    )


@st.composite
def line(draw: st.DrawFn) -> dict[str, Any]:
    category = draw(st.sampled_from(CATEGORIES))
    boundary = draw(st.integers(0, 5))
    out: dict[str, Any] = {"category": category, "quantity": draw(number())}
    if boundary == 0:  # list 100 sold at 70 (discount exactly 0.30), cost 70 of 100 (margin)
        out.update(unit_price=Decimal(70), list_price=Decimal(100), unit_cost=Decimal(49))
        return out
    out["unit_price"] = draw(number())
    if draw(st.integers(0, 5)):  # mostly costed; sometimes not (also on costed categories)
        out["unit_cost"] = draw(number())
    if draw(st.booleans()):
        out["list_price"] = draw(number())
    return out


def as_text(deal_id: int, offer: str | None, lines: list[dict[str, Any]], strings: bool) -> str:
    def number_text(value: Decimal) -> str:
        return format(value, "f")

    items = []
    for item in lines:
        fields = []
        for key, value in item.items():
            if isinstance(value, Decimal):
                text = number_text(value)
                fields.append(f'"{key}": ' + (json.dumps(text) if strings else text))
            else:
                fields.append(f'"{key}": {json.dumps(value)}')
        items.append("{" + ", ".join(fields) + "}")
    offer_text = "" if offer is None else f', "offer": {{"type": "{offer}"}}'
    return f'{{"id": "D-{deal_id}", "currency": "USD"{offer_text}, "lines": [{", ".join(items)}]}}'


@st.composite
def chunk(draw: st.DrawFn) -> list[str]:
    size = draw(st.integers(1, 12))
    texts = []
    for i in range(size):
        lines = draw(st.lists(line(), min_size=1, max_size=6))
        offer = draw(st.sampled_from([None, "standard", "new_market", "advanced_technology"]))
        texts.append(as_text(i, offer, lines, draw(st.booleans())))
    return texts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunk())
def test_generated_deals_match_the_reference(texts: list[str]) -> None:
    # every row valid: derive_facts stands for prepare_deal on what it refuses (zero contract,
    # uncosted lines), so the absent margins are exercised
    check_chunk(texts, derive_invalid=True, constants=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunk(), st.data())
def test_invalid_rows_are_unknown(texts: list[str], data: st.DataObject) -> None:
    # rows left out (the reader's invalid deals): unknown everywhere, no lines of theirs
    table = read(texts)
    rows = np.array(data.draw(st.lists(st.booleans(), min_size=len(texts), max_size=len(texts))))
    derived = derived_columns(
        table.column("lines"), table.column("offer").combine_chunks().field("type"), rows
    )
    deals, _ = reference(texts, derive_invalid=True)
    for path in [*ROW_PATHS, "risk_offer"]:
        column = derived.column(path)
        assert column is not None
        want = [fact(d, path) if ok else None for d, ok in zip(deals, rows.tolist(), strict=True)]
        assert column.values == want
        assert not column.known[~rows].any()
    assert set(derived.owners.tolist()) == set(np.flatnonzero(rows).tolist())


def test_boundaries_are_exact() -> None:
    # list 100 sold at 70: discount exactly 0.30; cost 70 on 100: margin exactly 0.30;
    # services 40 of 100: exactly 0.4; constants with 12 places and values near 10^15
    texts = [
        as_text(0, "new_market", [{"category": "hardware", "quantity": Decimal(1),
                 "unit_price": Decimal(70), "list_price": Decimal(100),
                 "unit_cost": Decimal(49)}], False),
        as_text(1, None, [{"category": "labor", "quantity": Decimal(1), "unit_price": Decimal(40),
                 "unit_cost": Decimal(28)}, {"category": "software", "quantity": Decimal(3),
                 "unit_price": Decimal(20), "unit_cost": Decimal(14)}], False),
        as_text(2, "standard", [{"category": "hardware", "quantity": Decimal("0.000000000003"),
                 "unit_price": Decimal("999999999999999.999999999999"),
                 "list_price": Decimal("999999999999999.999999999999"),
                 "unit_cost": Decimal("333333333333333.333333333333")}], True),
        as_text(3, "standard", [{"category": "subscription", "quantity": Decimal(7),
                 "unit_price": Decimal("0.000000000001"), "list_price": Decimal("3")}], False),
    ]  # fmt: skip
    derived = check_chunk(texts)
    # 3·10^-12 × 10^15 at 24 places passes int64: deal 2 takes the reference arithmetic; the
    # others, past int64 too at the chunk's scale 24, are computed at the scales they need
    assert list(derived.slow_facts) == [2]
    assert derived.decimal("max_line_discount", 0) == Decimal("0.30")
    assert derived.decimal("margin", 1) == Decimal("0.30")
    assert derived.decimal("services_ratio", 1) == Decimal("0.4")
    margin = derived.column("margin")
    assert margin is not None
    assert margin.compare("<", Decimal("0.30")).tolist()[:2] == [False, False]
    assert margin.compare("==", Decimal("0.3")).tolist()[:2] == [True, True]
    discount = derived.column("max_line_discount")
    assert discount is not None
    assert discount.compare(">=", Decimal("0.30")).tolist()[0]
    assert not discount.compare(">", Decimal("0.30")).tolist()[0]


def test_quotients_compare_the_28_digit_rounding() -> None:
    # margin = 1 - 1/3 rounds to 0.6666666666666666666666666667 (28 digits): the per-deal
    # engines compare that, not the exact 2/3
    texts = [
        as_text(0, None, [{"category": "hardware", "quantity": Decimal(3),
                 "unit_price": Decimal(1), "unit_cost": Decimal("0.333333333333")}], False),
        as_text(1, None, [{"category": "hardware", "quantity": Decimal(3),
                 "unit_price": Decimal(1), "unit_cost": Decimal(1)},
                {"category": "subscription", "quantity": Decimal(6), "unit_price": Decimal(1)}],
                False),
    ]  # fmt: skip
    derived = check_chunk(texts)
    margin = derived.column("margin")
    assert margin is not None
    rounded = Decimal("0.6666666666666666666666666667")
    assert margin.values[1] == rounded
    assert margin.compare("==", rounded).tolist()[1]
    assert not margin.compare("<", rounded).tolist()[1]
    assert margin.compare(">", rounded - Decimal("1E-28")).tolist()[1]


def test_number_column() -> None:
    values = [
        Decimal("0.18"),
        None,
        Decimal("999999999999999.999999999999"),
        Decimal("12345678.5"),
        Decimal(0),
        Decimal("0.000000000001"),
    ]
    array = pa.array(values, type=MONEY)
    rows = np.array([True, True, True, True, True, False])
    for part in (array, array.slice(1)):  # a sliced array reads from its offset
        mask = rows[len(array) - len(part) :]
        column = number_column(part, mask)
        want = [v if ok else None for v, ok in zip(part.to_pylist(), mask, strict=True)]
        assert column.values == want
        assert column.kind == "number"
        for constant in [*near([v for v in want if v is not None]), *FIXED]:
            for op in OPS:
                hit = column.compare(op, constant)
                got = truths(hit, column.known)
                assert got == [_compare(op, w, constant) for w in want], (op, constant)
    ints = number_column(pa.array([30, None, 2**62], type=pa.int64()), np.ones(3, dtype=bool))
    assert ints.values == [Decimal(30), None, Decimal(2**62)]
    assert ints.compare(">", Decimal("29.5")).tolist() == [True, False, True]
    other = number_column(
        pa.array([Decimal("30.0"), None, Decimal(1)], type=MONEY), np.ones(3, bool)
    )
    both = ints.compare_column("==", other)
    assert both is not None and both[0] and not both[2]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), number()), min_size=1, max_size=20), st.sampled_from(OPS))
def test_number_column_generated(values: list[Decimal | None], op: str) -> None:
    column = number_column(pa.array(values, type=MONEY), np.ones(len(values), dtype=bool))
    assert column.values == values
    for constant in near([v for v in values if v is not None][:3]) + FIXED:
        hit = column.compare(op, constant)
        got = truths(hit, column.known)
        assert got == [_compare(op, v, constant) for v in values]


def test_columns_in_the_condition_vector() -> None:
    # the vector takes the exact columns as it takes its own (a chunk whose paths are them)
    texts = [
        as_text(0, "new_market", [{"category": "hardware", "quantity": Decimal(1),
                 "unit_price": Decimal(70), "list_price": Decimal(100),
                 "unit_cost": Decimal(49)}], False),
        as_text(1, "standard", [{"category": "labor", "quantity": Decimal(2),
                 "unit_price": Decimal(50), "unit_cost": Decimal(40)}], False),
    ]  # fmt: skip
    table = read(texts)
    deals, _ = reference(texts, False)
    rows = np.ones(2, dtype=bool)
    derived = derived_columns(
        table.column("lines"), table.column("offer").combine_chunks().field("type"), rows
    )
    chunk_ = Chunk(deals)
    for path in [*ROW_PATHS, "risk_offer"]:
        chunk_.paths[path] = derived.column(path)
    conditions = [
        "max_line_discount >= 0.30 and risk_offer",
        "margin < 0.30 or labor_margin > 0.19",
        "services_ratio in [1, 0.5] and not risk_offer",
        "totals.contract > totals.cost",
    ]
    scope = Scope({path: FieldType(f.type, f.enum) for path, f in FIELDS.items()})
    for text in conditions:
        expr = parse_expression(text, scope)
        got = ConditionVector(chunk_).fires(expr).tolist()
        plain = ConditionVector(Chunk(deals)).fires(expr).tolist()
        assert got == plain, text
    first = ConditionVector(Chunk(deals)).fires(parse_expression(conditions[0], scope))
    assert first.tolist() == [True, False]


# ---------------------------------------------------------------------------------------------
# real books


def book(command: list[str], cwd: Path) -> list[str]:
    out = subprocess.run(command, cwd=cwd, capture_output=True, check=True, text=True).stdout
    return [line for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize("which", ["gen_book", "peer"])
def test_books(which: str) -> None:
    if which == "peer":
        if not (PEER / "peer_map.py").exists():
            pytest.skip("no peer workload here")
        texts = book([sys.executable, "peer_map.py", "768"], PEER)
    else:
        texts = book([sys.executable, str(ROOT / "bench" / "gen_book.py"), "768"], ROOT)
    # lines Arrow refuses (an invalid deal's malformed money) are the per-deal path's
    texts = [t for t in texts if readable(t)]
    invalid = 0
    for start in range(0, len(texts), 256):
        derived = check_chunk(texts[start : start + 256], constants=15)
        assert not derived.slow_facts  # every deal of the books on the int64 path
        invalid += int((~derived.rows).sum())
    if which == "gen_book":
        assert invalid  # invalid deals in the chunks: unknown rows, checked above


def test_sliced_dictionary_and_index_inputs() -> None:
    # what a reader may hand over: a slice of a table, dictionary-encoded text, rows as indices
    texts = book([sys.executable, str(ROOT / "bench" / "gen_book.py"), "60"], ROOT)
    texts = [t for t in texts if readable(t)]
    table = read(texts)
    deals, valid = reference(texts, False)
    start, stop = 7, 45
    lines = table.column("lines").combine_chunks().slice(start, stop - start)
    assert lines.offsets[0].as_py() > 0  # offsets into the whole chunk's lines
    category = lines.values.field("category")
    encoded_lines = pa.ListArray.from_arrays(
        lines.offsets,
        pa.StructArray.from_arrays(
            [category.dictionary_encode()]
            + [
                lines.values.field(name)
                for name in ("quantity", "unit_price", "unit_cost", "list_price")
            ],
            names=["category", "quantity", "unit_price", "unit_cost", "list_price"],
        ),
    )
    offer = table.column("offer").combine_chunks().field("type").dictionary_encode()
    offer = offer.slice(start, stop - start)
    rows = np.flatnonzero(valid[start:stop])
    for given_lines in (lines, encoded_lines):
        derived = derived_columns(given_lines, offer, rows)
        for path in [*ROW_PATHS, "risk_offer"]:
            column = derived.column(path)
            assert column is not None
            want = [
                fact(d, path) if ok else None
                for d, ok in zip(deals[start:stop], valid[start:stop], strict=True)
            ]
            assert column.values == want, path
        assert (derived.owners < stop - start).all()


def test_no_valid_rows_and_no_slow_rows_for_fitting_values() -> None:
    texts = [
        as_text(0, None, [{"category": "hardware", "quantity": Decimal(2),
                 "unit_price": Decimal("12345678.5"), "unit_cost": Decimal("9999999.25")}], False),
    ]  # fmt: skip
    table = read(texts)
    offer = table.column("offer").combine_chunks().field("type")
    nothing = derived_columns(table.column("lines"), offer, np.zeros(1, dtype=bool))
    assert nothing.column("totals.contract").kind == "none"
    assert nothing.owners.tolist() == []
    derived = derived_columns(table.column("lines"), offer, np.ones(1, dtype=bool))
    # past int64 at 12 places, not at the 2 they need: the int64 path, not the reference's
    assert not derived.slow_facts
    assert derived.decimal("totals.contract", 0) == Decimal("24691357")
    assert derived.decimal("margin", 0) == 1 - Decimal("19999998.5") / Decimal("24691357")
    column = number_column(pa.array([Decimal("12345678.5")], type=MONEY), np.ones(1, bool))
    assert not column.slow


@settings(max_examples=400, deadline=None)
@given(
    st.integers(-(2**62), 2**62),
    st.integers(-(2**62), 2**62).filter(bool),
    st.integers(-12, 12),
    st.booleans(),
    st.data(),
)
def test_quotient_comparisons(
    num: int, den: int, shift: int, complement: bool, data: st.DataObject
) -> None:
    # a quotient against constants at its 28-digit value, one unit of the 28th digit either
    # side, its float approximation (the float's own boundary) and roundings to fewer places
    from dealdesk.engines.columnar.exact import RatioColumn

    column = RatioColumn(
        np.array([num, 1], dtype=np.int64),
        np.array([den, 1], dtype=np.int64),
        shift,
        complement,
        np.array([True, False]),
    )
    value = column.values[0]
    wide = Context(prec=80)
    exact = (
        wide.divide(Decimal(num) * wide.power(10, shift), Decimal(den))
        if shift >= 0
        else wide.divide(Decimal(num), Decimal(den) * wide.power(10, -shift))
    )
    if complement:
        exact = wide.subtract(1, exact)
    with localcontext(Context(prec=28)):  # the per-deal engines' arithmetic (derive.py)
        quotient = Decimal(num).scaleb(shift) / Decimal(den)
        assert value == (1 - quotient if complement else quotient)
    places = data.draw(st.integers(0, 30))
    constants = [
        value,
        PLUS_28.next_plus(value),
        PLUS_28.next_minus(value),
        Decimal(float(value)),
        exact,
        wide.quantize(exact, Decimal(1).scaleb(-places)) if exact.adjusted() < 40 else exact,
    ]
    for constant in constants:
        for op in OPS:
            assert bool(column.compare(op, constant)[0]) == _compare(op, value, constant)


def test_one_fine_deal_leaves_the_others_on_the_int64_path() -> None:
    # a 2-place quantity and a 12-place price in one deal would put every amount of the chunk
    # at 14 places (past int64 for contracts above ~$92,000): only that deal is left out
    texts = book([sys.executable, str(ROOT / "bench" / "gen_book.py"), "256"], ROOT)
    texts = [t for t in texts if readable(t)]
    fine = json.loads(texts[0])
    fine["lines"][0].update(quantity="0.25", unit_price="1234.567890123456")
    texts[0] = json.dumps(fine)
    derived = check_chunk(texts, constants=5)
    assert list(derived.slow_facts) == [0]


# -- `=` money outputs in int64 units (the record templates' holes)


def _int_column(values: list[Decimal | None], scale: int) -> IntColumn:
    units = np.array([0 if v is None else int(v.scaleb(scale)) for v in values], dtype=np.int64)
    return IntColumn(units, scale, np.array([v is not None for v in values]))


@settings(max_examples=300, deadline=None)
@given(
    a=st.lists(st.none() | st.integers(-(10**12), 10**12), min_size=1, max_size=6),
    b_scale=st.integers(0, 4),
    a_scale=st.integers(0, 6),
    constant=st.decimals(-1000, 1000, places=4, allow_nan=False, allow_infinity=False),
    op=st.sampled_from(["+", "-", "*"]),
    shape=st.sampled_from(["field op const", "const op field", "field op field"]),
    currency=st.sampled_from(["USD", "JPY", "KWD"]),
)
def test_money_of_expressions_in_int64_units_is_the_decimal_meaning(
    a: list[int | None],
    a_scale: int,
    b_scale: int,
    constant: Decimal,
    op: str,
    shape: str,
    currency: str,
) -> None:
    first = [None if u is None else Decimal(u).scaleb(-a_scale) for u in a]
    second = [None if u is None else Decimal(u * 7 + 3).scaleb(-b_scale) for u in a]
    columns = {"x": _int_column(first, a_scale), "y": _int_column(second, b_scale)}
    x, y, c = Field(POS, "x"), Field(POS, "y"), Const(POS, constant, "number")
    left, right = {"field op const": (x, c), "const op field": (c, x), "field op field": (x, y)}[
        shape
    ]
    found = expression_units(Arith(POS, op, left, right), columns.__getitem__, len(a))
    assert found is not None
    places = minor_units(currency)
    units, ok = money_units(found, places)
    values = {"x": first, "y": second}
    for i in range(len(a)):
        row = {name: v[i] for name, v in values.items()}
        want = value_of(Arith(POS, op, left, right), row)
        if want is None:
            assert not ok[i]  # unknown: left to the per-row meaning
            continue
        if ok[i]:
            assert money_text(int(units[i]), places) == money_string(want, currency)
        elif all(v is not None and abs(v) < 10**6 for v in row.values()):
            raise AssertionError(f"row {i} ({row}) is far inside int64 but not exact")


def test_money_units_round_ties_half_up_away_from_zero() -> None:
    column = _int_column([Decimal("0.025"), Decimal("-0.025"), Decimal("2.5"), None], 3)
    found = expression_units(Field(POS, "x"), {"x": column}.__getitem__, 4)
    assert found is not None
    texts = [
        money_text(int(u), 2) if k else None for u, k in zip(*money_units(found, 2), strict=True)
    ]
    assert texts == ["0.03", "-0.03", "2.50", None]
    units, _ = money_units(found, 0)
    assert [money_text(int(u), 0) for u in units[:3]] == ["0", "0", "3"]
    # a product that could pass 2^62 is not exact here (the row is the per-deal meaning's)
    big = _int_column([Decimal(2**40), Decimal(3)], 0)
    product = expression_units(
        Arith(POS, "*", Field(POS, "x"), Field(POS, "x")), {"x": big}.__getitem__, 2
    )
    assert product is not None and product[2].tolist() == [False, True]
    # other expressions (a quotient, a list's element) are not taken
    assert (
        expression_units(
            Arith(POS, "/", Field(POS, "x"), Field(POS, "x")), {"x": big}.__getitem__, 2
        )
        is None
    )
