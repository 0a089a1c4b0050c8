"""The quick path of validate/prepare (validate._quick_deal) is pinned to the full walk.

A plain-dict deal goes through the quick path first and is walked in full only when that path
gives up; these tests hand the same deals to both and require the same deal (keys, order,
values and their types, each Decimal's exact form) and the same errors, and check that the
usual deals do take the quick path.
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import json
from decimal import Decimal
from typing import Any

import pytest
from deal_samples import EXAMPLES, load_example, minimal_deal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dealdesk.deal import validate
from dealdesk.deal.derive import Ledger
from dealdesk.deal.schema import (
    CATEGORIES,
    COST_CENTERS,
    OFFER_TYPES,
    PARTNER_KINDS,
    PARTNER_TIERS,
    PRICING_MODELS,
    REGIONS,
    RESOURCES,
    SEGMENTS,
    SUPPORT_MODELS,
)
from dealdesk.deal.validate import check_fact_types, prepare_deal

# The built-in plugins' declarations (billing_milestone), a plugin's under core objects and lines,
# and types the quick path leaves to the walk (several types, integer).
EXTRA_TYPES: list[dict[str, Any] | None] = [
    None,
    {
        "requested_split": "object",
        "requested_split.total": "number",
        "requested_split.min": "number",
        "requested_split.key": "string",
    },
    {"customer.tier": "string", "lines[].warranty": "number", "export.when": "boolean"},
    {"export.copies": "integer", "crm.stage": ["string", "number"], "lines[].amount": "number"},
]


def ordered(value: Any) -> Any:
    """``value`` with its key order, each value's type and each Decimal's exact form."""
    if isinstance(value, dict):
        return ("dict", [(ordered(key), ordered(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [ordered(item) for item in value])
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    return (type(value).__name__, repr(value))


def both_ways(raw: object, extra_types: dict[str, Any] | None, derive: bool = True) -> Any:
    """The quick path's answer and the walk's, each as (ordered deal, error strings)."""
    answers = []
    for quick in (True, False):
        ledger = Ledger() if derive else None
        deal, errors = validate._check_deal(raw, extra_types, ledger, quick=quick)
        assert (deal is None) == bool(errors)
        answers.append((ordered(deal), [str(error) for error in errors]))
    return answers


def takes_quick_path(raw: dict[str, Any], extra_types: dict[str, Any] | None = None) -> bool:
    validator = validate._validator(extra_types)
    try:
        validate._quick_deal(raw, validator.quick_root, validator.quick_line, Ledger())
    except (validate._Unusual, ArithmeticError):
        return False
    return True


# -- strategies: well-formed values, and each field's ways of going wrong ---------------------

good_numbers = st.one_of(
    st.integers(min_value=0, max_value=5000),
    st.integers(min_value=0, max_value=10**15 - 1),
    st.decimals(min_value=0, max_value=Decimal("1e9"), places=4, allow_nan=False),
    st.decimals(min_value=0, max_value=Decimal("999999999999999"), places=12, allow_nan=False),
    st.sampled_from([Decimal("0.10"), Decimal("1E+3"), Decimal("0E-12"), Decimal("5E+2")]),
    st.sampled_from(["12.50", " 3 ", "1e3", "0", 1.5, 0.1, 2.0]),
)
ODD_NUMBERS: list[Any] = [
    -1,
    -2.5,
    "-1",
    10**15,
    10**16,
    True,
    False,
    "x",
    "1,000",
    "",
    "NaN",
    [],
    {},
    Decimal("-0"),
    Decimal("-0.00"),
    Decimal("-1"),
    Decimal("1e15"),
    Decimal("999999999999999.9999999999999"),
    Decimal("1.0000000000000"),  # 13 places, all trailing zeros
    Decimal("1.0000000000001"),  # 13 places
    Decimal("0E+20"),
    Decimal("0E-20"),
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("Infinity"),
    float("inf"),
    float("nan"),
    1e20,
    1.5e-13,
    2**70,
    dt.date(2026, 1, 1),
]
odd_numbers = st.sampled_from(ODD_NUMBERS)
numbers = st.one_of(good_numbers, good_numbers, good_numbers, odd_numbers)
fractions = st.one_of(
    st.decimals(min_value=0, max_value=1, places=3, allow_nan=False),
    st.sampled_from([0, 1, 2, "0.5", 0.18, Decimal("1.0001"), -0.1]),
)


def maybe(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


good_dates = st.sampled_from(["2026-12-15", "2027-01-31", "2028-02-29", dt.date(2026, 12, 15)])
good_lines = st.lists(
    st.fixed_dictionaries(
        {
            "category": st.sampled_from(CATEGORIES),
            "quantity": good_numbers,
            "unit_price": good_numbers,
            "unit_cost": good_numbers,
        },
        optional={
            "sku": st.sampled_from(["A", "B-1", ""]),
            "list_price": good_numbers,
            "resource": st.sampled_from(RESOURCES),
            "grade": good_numbers,
            "hours": good_numbers,
            "warranty": good_numbers,
            "extra": st.sampled_from(["kept", None, [1]]),
        },
    ),
    min_size=1,
    max_size=4,
)
good_deals = st.fixed_dictionaries(
    {"id": st.sampled_from(["D-1", "P-2", 1001, 0]), "lines": good_lines},
    optional={
        "currency": st.sampled_from(["USD", "JPY", "EUR"]),
        "customer": maybe(
            {
                "name": st.sampled_from(["Acme", "Zoë"]),
                "segment": st.sampled_from(SEGMENTS),
                "region": st.sampled_from(REGIONS),
                "hq_country": st.just("US"),
                "government": st.booleans(),
                "platinum_club": st.booleans(),
                "presales_consulting": st.booleans(),
                "tier": st.just("gold"),
            }
        ),
        "offer": maybe(
            {
                "type": st.sampled_from(OFFER_TYPES),
                "pricing": st.sampled_from(PRICING_MODELS),
                "kpi_at_risk": good_numbers,
            }
        ),
        "partner": maybe(
            {
                "name": st.just("Delta"),
                "kind": st.sampled_from(PARTNER_KINDS),
                "tier": st.sampled_from(PARTNER_TIERS),
                "discount": st.sampled_from([0, 1, "0.5", 0.18, Decimal("0.25")]),
            }
        ),
        "support": maybe(
            {
                "model": st.sampled_from(SUPPORT_MODELS),
                "resident_cost_to": st.sampled_from(COST_CENTERS),
            }
        ),
        "billing": maybe(
            {
                "payment_terms_days": good_numbers,
                "requested_split": st.lists(
                    st.one_of(good_numbers, st.sampled_from([-5, "-2.5"])), max_size=4
                ),
            }
        ),
        "dates": maybe({"close": good_dates, "start": good_dates}),
        "note": st.sampled_from(["free text", 3, None, {"a": None}]),
        "export": maybe({"copies": good_numbers, "when": st.booleans()}),
        "crm": maybe({"stage": st.sampled_from(["won", 3])}),
        "requested_split": maybe({"total": good_numbers, "key": st.just("30/70")}),
    },
)
# What a mutation may write: every kind of value, well-formed or not, for any field.
any_value = st.one_of(
    odd_numbers,
    good_numbers,
    good_dates,
    st.sampled_from(
        [
            None,
            "mars",
            "",
            "ELEPHANT",
            "elephant",
            "hardware",
            "subscription",
            "standard",
            "2026-13-01",
            "20261215",
            dt.datetime(2026, 12, 15, 9, 30),
            True,
            False,
            0,
            1,
            [],
            {},
            (),
            [1, 2],
            {"x": 1},
            "kept",
        ]
    ),
)
# Keys a mutation may set besides the ones present: known, derived, dotted and unknown ones.
extra_keys = st.sampled_from(
    [
        "id",
        "lines",
        "currency",
        "customer",
        "offer",
        "segment",
        "quantity",
        "unit_cost",
        "category",
        "list_price",
        "discount",
        "close",
        "requested_split",
        "totals",
        "margin",
        "amount",
        "risk_offer",
        "customer.segment",
        "lines[].sku",
        "lines[]",
        "unknown",
    ]
)


def containers(deal: dict[str, Any]) -> list[Any]:
    """The deal and every dict or list in it, where a mutation may land."""
    found: list[Any] = [deal]
    for value in found:
        items = value.values() if isinstance(value, dict) else value
        found.extend(item for item in items if isinstance(item, dict | list))
    return found


_NUMBER_KEYS = (
    "quantity unit_price unit_cost list_price grade hours kpi_at_risk payment_terms_days "
    "discount total copies warranty"
).split()
_ENUM_KEYS = "segment region type pricing kind tier model resident_cost_to category resource"
# The values a mutation tries first for a field of each name: its kind's odd ones.
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "id": st.sampled_from(["", 1001, 0, True, 1.5, 2**600, None, "D-9", ["D-1"]]),
    "currency": st.sampled_from(["eur", "XXX", "JPY", 5, None, "", "US"]),
    "close": st.sampled_from(
        [dt.datetime(2026, 12, 15, 9, 30), "2026-13-01", 20261215, "", "2026-12-15", None]
    ),
    **{name: odd_numbers for name in _NUMBER_KEYS},
    **{
        name: st.sampled_from(["mars", "ELEPHANT", "", 7, True, None, "labor", "gold", "apac"])
        for name in _ENUM_KEYS.split()
    },
    **{
        name: st.sampled_from([0, 1, 1.0, "yes", None, True, Decimal(0)])
        for name in ("government", "platinum_club", "presales_consulting", "when")
    },
}
FIELD_VALUES["start"] = FIELD_VALUES["close"]


def mutate(data: st.DataObject, deal: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``deal`` with zero to two fields set to another value, made null or removed."""
    deal = copy.deepcopy(deal)  # sampled values are shared between examples
    for _ in range(data.draw(st.integers(min_value=0, max_value=2))):
        target = data.draw(st.sampled_from(containers(deal)))
        if isinstance(target, list):
            if target:
                index = data.draw(st.integers(min_value=0, max_value=len(target) - 1))
                target[index] = data.draw(st.one_of(odd_numbers, any_value))
            continue
        keys = st.sampled_from(sorted(target, key=str) or ["id"])
        key = data.draw(st.one_of(keys, keys, extra_keys))
        if key in target and data.draw(st.integers(min_value=0, max_value=3)) == 0:
            del target[key]
        elif key in FIELD_VALUES and data.draw(st.booleans()):
            target[key] = data.draw(FIELD_VALUES[key])
        else:
            target[key] = data.draw(any_value)
    return deal


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), good_deals, st.sampled_from(EXTRA_TYPES), st.booleans())
def test_the_quick_path_agrees_with_the_walk(
    data: st.DataObject, raw: dict[str, Any], extra_types: dict[str, Any] | None, derive: bool
) -> None:
    raw = mutate(data, raw)
    before = copy.deepcopy(raw)
    quick, walk = both_ways(raw, extra_types, derive)
    assert quick == walk
    assert raw == before  # neither path changes the input


well_formed_lines = st.lists(
    st.fixed_dictionaries(
        {
            "sku": st.sampled_from(["A", "B-1"]),
            "category": st.sampled_from(CATEGORIES),
            "quantity": good_numbers,
            "unit_price": good_numbers,
            "unit_cost": good_numbers,
        },
        optional={
            "list_price": good_numbers,
            "resource": st.sampled_from(RESOURCES),
            "grade": good_numbers,
            "hours": good_numbers,
        },
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=300)
@given(well_formed_lines, st.sampled_from(EXTRA_TYPES[:3]))
def test_well_formed_deals_take_the_quick_path(
    lines: list[dict[str, Any]], extra_types: dict[str, Any] | None
) -> None:
    raw = minimal_deal(lines=lines, customer={"segment": "deer", "government": True})
    raw["lines"][0].update(quantity=1, unit_price=Decimal("10.5"))  # a non-zero contract
    quick, walk = both_ways(raw, extra_types)
    assert quick == walk and walk[1] == []
    assert takes_quick_path(raw, extra_types)


def example_raws() -> list[Any]:
    raws = [load_example(path.name) for path in sorted(EXAMPLES.glob("*.yaml"))]
    book = (EXAMPLES / "book.jsonl").read_text(encoding="utf-8").splitlines()
    return raws + [json.loads(line, parse_float=Decimal) for line in book]


@pytest.mark.parametrize("raw", example_raws(), ids=lambda raw: str(raw.get("id")))
@pytest.mark.parametrize("extra_types", EXTRA_TYPES[:2], ids=["core", "plugins"])
def test_examples_and_the_book_agree(raw: dict[str, Any], extra_types: Any) -> None:
    quick, walk = both_ways(raw, extra_types)
    assert quick == walk
    # the valid ones (YAML floats, dates and all) are decided by the quick path
    assert takes_quick_path(raw, extra_types) == (walk[1] == [])


def test_the_quick_path_keeps_the_callers_context() -> None:
    raw = load_example("acme-risk.yaml")
    raw["lines"][0]["unit_cost"] = Decimal("97500.123456789012")
    expected = both_ways(raw, None)[1]
    with decimal.localcontext() as context:
        context.prec = 6
        context.traps[decimal.Inexact] = True
        assert both_ways(raw, None) == [expected, expected]
        assert decimal.getcontext() is context and context.prec == 6
    bad = minimal_deal(lines=[{"category": "hardware", "quantity": Decimal("NaN")}])
    before = decimal.getcontext()
    assert prepare_deal(bad)[0] is None  # the quick path gives up on an ArithmeticError
    assert decimal.getcontext() is before


def test_an_unknown_value_message_is_the_same_cached_or_not() -> None:
    class Loud(str):
        def __repr__(self) -> str:
            return "LOUD"

    raw = minimal_deal(customer={"region": "mars"})
    first = validate.validate_deal(raw)[1]
    assert [str(e) for e in validate.validate_deal(raw)[1]] == [str(e) for e in first]
    assert str(first[0]) == (
        "customer.region: unknown value 'mars'; expected one of: "
        "us-west, us-central, us-east, emea, apac, latam"
    )
    loud = validate.validate_deal(minimal_deal(customer={"region": Loud("mars")}))[1]
    assert str(loud[0]).startswith("customer.region: unknown value LOUD;")


def test_check_fact_types_follows_the_declarations_it_is_given() -> None:
    declared = {"x": "object", "x.total": "number"}
    assert check_fact_types({}, declared) == []
    assert [str(e) for e in check_fact_types({"x": {"total": "a"}}, declared)] == [
        "x.total: expected a number, got string 'a'"
    ]
    declared["x.total"] = "string"  # the same dict, changed: its plan is made again
    assert check_fact_types({"x": {"total": "a"}}, declared) == []
    assert [str(e) for e in check_fact_types({"x": 5, "y": 1}, declared)] == [
        "x: expected an object, got number 5"
    ]


# -- every field of a full deal, one at a time, set to each value of a zoo --------------------


def full_deal() -> dict[str, Any]:
    """A valid deal with every input field, a plugin's fact and an unknown field."""
    raw = load_example("acme-risk.yaml")
    raw["lines"].append(
        {"sku": "S", "category": "subscription", "quantity": 12, "unit_price": Decimal("9.5")}
    )
    raw["lines"][0]["list_price"] = Decimal("175000")
    raw["offer"]["kpi_at_risk"] = 0
    raw["support"]["resident_cost_to"] = "project"
    raw["customer"].update(hq_country="US", platinum_club=False, presales_consulting=True)
    raw["requested_split"] = {"total": 100, "key": "30/70"}
    raw["crm"] = {"owner": "ana"}
    return raw


ZOO: list[Any] = [
    *ODD_NUMBERS,
    0,
    1,
    4095,
    4096,
    10**15 - 1,
    -(10**15) + 1,
    Decimal("0.5"),
    Decimal("123456789012345E-12"),
    1.5,
    "12.50",
    " 3 ",
    "1e3",
    "-2.5",
    "",
    "mars",
    "ELEPHANT",
    "elephant",
    "hardware",
    "subscription",
    "gold",
    "2026-12-15",
    "2026-13-01",
    dt.datetime(2026, 12, 15, 9, 30),
    None,
    [1],
    {"x": 1},
    (),
]


def field_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every value inside ``value`` (keys and indexes), outermost first."""
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        found.append((*path, key))
        if isinstance(item, dict | list):
            found.extend(field_paths(item, (*path, key)))
    return found


def changed(raw: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    target: Any = raw
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return raw


_DELETE = object()


@pytest.mark.parametrize("extra_types", EXTRA_TYPES[:2], ids=["core", "plugins"])
def test_each_field_set_to_each_value_agrees(extra_types: Any) -> None:
    base = full_deal()
    assert takes_quick_path(base, extra_types)
    containers = [()] + [path for path in field_paths(base) if isinstance(_at(base, path), dict)]
    cases = [(path, value) for path in field_paths(base) for value in [*ZOO, _DELETE]]
    cases += [
        ((*where, key), value)
        for where in containers
        for key in ("totals", "margin", "amount", "customer.segment", "lines[]", "unknown")
        for value in (None, 1, "x")
    ]
    quick_ones = 0
    mismatches = []
    for path, value in cases:
        raw = changed(base, path, value)
        quick, walk = both_ways(raw, extra_types)
        if quick != walk:
            mismatches.append((path, value))
        quick_ones += takes_quick_path(raw, extra_types)
    assert mismatches == []
    assert quick_ones > len(cases) // 5  # the quick path decides many of them


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value
