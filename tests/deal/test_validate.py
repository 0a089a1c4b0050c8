"""Tests for dealdesk.deal.validate: validation by field path, normalization, plugin fact types."""

from __future__ import annotations

import copy
import decimal
import json
import re
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from deal_samples import EXAMPLES, load_example, minimal_deal
from hypothesis import given
from hypothesis import strategies as st

from dealdesk.deal.derive import derive_facts
from dealdesk.deal.schema import CATEGORIES, OFFER_TYPES
from dealdesk.deal.validate import check_fact_types, deal_id_of, prepare_deal, validate_deal
from dealdesk.errors import DealError


def errors_of(raw: object, **kwargs: Any) -> list[str]:
    deal, errors = validate_deal(raw, **kwargs)
    assert (deal is None) == bool(errors)
    return [str(error) for error in errors]


def validated(raw: dict[str, Any]) -> dict[str, Any]:
    deal, errors = validate_deal(raw)
    assert errors == [], errors
    assert deal is not None
    return deal


# -- validate_deal: the good path ----------------------------------------------------------------


def test_validate_normalizes_the_spec_deal() -> None:
    raw = load_example("acme-risk.yaml")
    raw["crm"] = {"opportunity": "OPP-77", "owner": ["ana"]}
    before = copy.deepcopy(raw)
    deal, errors = validate_deal(raw)
    assert errors == []
    assert deal is not None
    assert raw == before  # the input is not changed
    assert deal["lines"][0]["unit_price"] == Decimal("150000")
    assert isinstance(deal["lines"][0]["quantity"], Decimal)
    assert deal["partner"]["discount"] == Decimal("0.18")
    assert (
        str(deal["partner"]["discount"]) == "0.18"
    )  # parsed via str(), not the float's binary value
    assert deal["billing"]["requested_split"] == [
        Decimal(30),
        Decimal(30),
        Decimal(30),
        Decimal(10),
    ]
    assert deal["billing"]["payment_terms_days"] == Decimal(45)
    assert deal["lines"][2]["hours"] == Decimal(640) and deal["lines"][2]["grade"] == Decimal(12)
    assert deal["dates"] == {"close": "2026-12-15", "start": "2027-01-15"}
    assert deal["crm"] == {"opportunity": "OPP-77", "owner": ["ana"]}  # unknown fields are kept
    assert deal["customer"]["government"] is False


def test_currency_defaults_to_usd() -> None:
    deal, errors = validate_deal(minimal_deal())
    assert errors == [] and deal is not None
    assert deal["currency"] == "USD"


def test_decimal_strings_and_date_strings_are_accepted() -> None:
    raw = minimal_deal(currency="JPY", dates={"close": "2026-12-15"})
    raw["lines"][0].update(quantity="2", unit_price="1500.50", unit_cost="  900 ")
    deal, errors = validate_deal(raw)
    assert errors == [] and deal is not None
    line = deal["lines"][0]
    assert (line["quantity"], line["unit_price"], line["unit_cost"]) == (
        Decimal(2),
        Decimal("1500.50"),
        Decimal(900),
    )
    assert deal["dates"]["close"] == "2026-12-15"


def test_null_known_fields_are_absent() -> None:
    deal, errors = validate_deal(
        minimal_deal(partner=None, offer={"type": "standard", "kpi_at_risk": None})
    )
    assert errors == [] and deal is not None
    assert "partner" not in deal
    assert deal["offer"] == {"type": "standard"}


def test_subscription_lines_may_omit_unit_cost() -> None:
    raw = minimal_deal(lines=[{"category": "subscription", "quantity": 12, "unit_price": 10}])
    assert errors_of(raw) == []


# -- validate_deal: errors by path --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["not", "a", "deal"], "a deal must be a mapping of fields, got an array"),
        ({"lines": minimal_deal()["lines"]}, "id: missing required field"),
        (minimal_deal(id=""), "id: must not be empty"),
        (minimal_deal(id=10.5), "id: expected a string, got number 10.5"),
        (minimal_deal(id=True), "id: expected a string, got boolean true"),
        ({"id": "D-1"}, "lines: missing required field"),
        (minimal_deal(lines=[]), "lines: a deal needs at least one line"),
        (minimal_deal(lines={"a": 1}), "lines: expected an array, got an object"),
        (minimal_deal(lines=[7]), "lines[0]: expected an object, got number 7"),
        (
            minimal_deal(
                lines=[{"category": "software", "quantity": 0, "unit_price": 5, "unit_cost": 1}]
            ),
            "lines: the contract value is zero",
        ),
        (
            minimal_deal(customer={"region": "mars"}),
            "customer.region: unknown value 'mars'; expected one of: us-west, us-central, us-east, emea, apac, latam",
        ),
        (minimal_deal(customer={"region": "US-West"}), "(did you mean 'us-west'?)"),
        (minimal_deal(offer={"type": "new-market"}), "(did you mean 'new_market'?)"),
        (
            minimal_deal(customer={"government": "yes"}),
            "customer.government: expected a boolean (true or false), got string 'yes'",
        ),
        (
            minimal_deal(customer={"government": 1}),
            "customer.government: expected a boolean (true or false), got number 1",
        ),
        (
            minimal_deal(customer={"hq_country": False}),
            "customer.hq_country: expected a string, got boolean false (quote the value in YAML)",
        ),
        (minimal_deal(customer="Acme"), "customer: expected an object, got string 'Acme'"),
        (minimal_deal(offer={"kpi_at_risk": "lots"}), "offer.kpi_at_risk: malformed money 'lots'"),
        (
            minimal_deal(offer={"kpi_at_risk": True}),
            "offer.kpi_at_risk: expected a number, got boolean true",
        ),
        (
            minimal_deal(partner={"discount": 18}),
            "partner.discount: must be a fraction between 0 and 1, got 18",
        ),
        (
            minimal_deal(billing={"payment_terms_days": -1}),
            "billing.payment_terms_days: must not be negative, got -1",
        ),
        (
            minimal_deal(billing={"requested_split": "30/70"}),
            "billing.requested_split: expected an array, got string '30/70'",
        ),
        (
            minimal_deal(billing={"requested_split": [30, "x"]}),
            "billing.requested_split[1]: malformed number 'x'",
        ),
        (
            minimal_deal(currency="XYZ"),
            "currency: unknown currency 'XYZ'; expected an ISO 4217 code",
        ),
        (
            minimal_deal(currency="eur"),
            "currency: unknown currency 'eur'; expected an ISO 4217 code (did you mean 'EUR'?)",
        ),
        (
            minimal_deal(dates={"close": "15/12/2026"}),
            "dates.close: expected a date (YYYY-MM-DD), got '15/12/2026'",
        ),
        (
            minimal_deal(dates={"close": "2026-02-30"}),
            "dates.close: expected a date (YYYY-MM-DD), got '2026-02-30'",
        ),
        (
            minimal_deal(dates={"close": "٢٠٢٦-١٢-٠١"}),
            "dates.close: expected a date (YYYY-MM-DD), got '٢٠٢٦-١٢-٠١'",
        ),
        (minimal_deal(margin=0.9), "margin: is a derived fact computed by dealdesk"),
        (minimal_deal(totals={"contract": 5}), "totals: is a derived fact computed by dealdesk"),
    ],
)
def test_validate_reports_errors_by_path(raw: object, expected: str) -> None:
    messages = errors_of(raw)
    assert any(expected in message for message in messages), messages


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            {"category": "hardware", "quantity": 1, "unit_price": 5},
            "lines[0].unit_cost: missing; required on hardware lines",
        ),
        (
            {"category": "labor", "quantity": 1, "unit_price": 5},
            "lines[0].unit_cost: missing; required on labor lines",
        ),
        (
            {"category": "hardware", "quantity": -1, "unit_price": 5, "unit_cost": 1},
            "lines[0].quantity: must not be negative, got -1",
        ),
        (
            {"category": "hardware", "quantity": 1, "unit_price": "-5", "unit_cost": 1},
            "lines[0].unit_price: must not be negative",
        ),
        (
            {"category": "labor", "quantity": 1, "hours": -8, "unit_price": 5, "unit_cost": 1},
            "lines[0].hours: must not be negative",
        ),
        (
            {"category": "hardware", "quantity": 1, "unit_price": "12,000", "unit_cost": 1},
            "lines[0].unit_price: malformed money '12,000'",
        ),
        (
            {"category": "hardware", "quantity": 1, "unit_price": float("nan"), "unit_cost": 1},
            "lines[0].unit_price: malformed money nan",
        ),
        (
            {"category": "hardware", "quantity": "1", "unit_price": 5, "unit_cost": [1]},
            "lines[0].unit_cost: expected a number, got an array",
        ),
        (
            {"category": "Hardware", "quantity": 1, "unit_price": 5, "unit_cost": 1},
            "lines[0].category: unknown value 'Hardware'",
        ),
        (
            {
                "category": "labor",
                "resource": "intern",
                "quantity": 1,
                "unit_price": 5,
                "unit_cost": 1,
            },
            "lines[0].resource: unknown value 'intern'",
        ),
        (
            {"quantity": 1, "unit_price": 5, "unit_cost": 1},
            "lines[0].category: missing required field",
        ),
        (
            {"category": "hardware", "unit_price": 5, "unit_cost": 1},
            "lines[0].quantity: missing required field",
        ),
        (
            {"category": "hardware", "quantity": 1, "unit_cost": 1},
            "lines[0].unit_price: missing required field",
        ),
        (
            {"category": "hardware", "quantity": 1, "unit_price": 5, "unit_cost": 1, "amount": 5},
            "lines[0].amount: is a derived fact",
        ),
    ],
)
def test_validate_reports_line_errors(line: dict[str, Any], expected: str) -> None:
    messages = errors_of(minimal_deal(lines=[line]))
    assert any(message.startswith(expected) for message in messages), messages


def test_validate_collects_every_error_once() -> None:
    raw = load_example("invalid-missing-cost.yaml")
    raw["lines"].append(
        {"category": "hardware", "quantity": -1, "unit_price": "abc", "unit_cost": 1}
    )
    raw["customer"]["government"] = "no"
    del raw["id"]
    deal, errors = validate_deal(raw)
    assert deal is None
    assert all(isinstance(error, DealError) for error in errors)
    assert sorted(error.path for error in errors) == [
        "customer.government",
        "customer.region",
        "id",
        "lines[0].unit_cost",
        "lines[2].quantity",
        "lines[2].unit_price",
    ]


def test_a_refused_value_is_not_also_reported_missing() -> None:
    raw = minimal_deal(
        id=5.5, lines=[{"category": "hardwear", "quantity": "x", "unit_price": 1, "unit_cost": "y"}]
    )
    paths = [error.path for error in validate_deal(raw)[1]]
    assert sorted(paths) == ["id", "lines[0].category", "lines[0].quantity", "lines[0].unit_cost"]


# -- extra types (plugin-declared fields) -------------------------------------------------------


def test_extra_types_are_checked_when_present() -> None:
    extra = {
        "export.destination": "string",
        "export.copies": "integer",
        "lines[].warranty_years": "number",
    }
    assert errors_of(minimal_deal(), extra_types=extra) == []

    raw = minimal_deal(export={"destination": 5, "copies": 1.5})
    raw["lines"][0]["warranty_years"] = "three"
    messages = errors_of(raw, extra_types=extra)
    assert "export.destination: expected a string, got number 5" in messages
    assert "export.copies: expected an integer, got 1.5" in messages
    assert any(m.startswith("lines[0].warranty_years: malformed number 'three'") for m in messages)

    raw = minimal_deal(export={"destination": "s3://bucket", "copies": "2"})
    raw["lines"][0]["warranty_years"] = "3"
    deal, errors = validate_deal(raw, extra_types=extra)
    assert errors == [] and deal is not None
    assert deal["export"] == {"destination": "s3://bucket", "copies": Decimal(2)}
    assert deal["lines"][0]["warranty_years"] == Decimal(3)


def test_extra_types_accept_several_types_and_never_override_the_core() -> None:
    extra = {"crm.stage": ["string", "number"], "customer.region": "number"}
    assert errors_of(minimal_deal(crm={"stage": 3}), extra_types=extra) == []
    assert errors_of(minimal_deal(crm={"stage": "won"}), extra_types=extra) == []
    assert errors_of(minimal_deal(crm={"stage": True}), extra_types=extra) == [
        "crm.stage: expected a string or a number, got boolean true (quote the value in YAML)"
    ]
    assert errors_of(minimal_deal(customer={"region": "emea"}), extra_types=extra) == []


def test_extra_types_reject_unknown_type_names() -> None:
    with pytest.raises(ValueError, match="unknown JSON Schema type 'text'"):
        validate_deal(minimal_deal(), extra_types={"x.y": "text"})


def test_deal_id_of() -> None:
    assert deal_id_of({"id": "D-1"}) == "D-1"
    assert deal_id_of({"id": 5}) == "5"  # as validate_deal keeps it
    assert deal_id_of({"id": 5.0}) is None
    assert deal_id_of({"id": True}) is None
    assert deal_id_of({"id": ""}) is None
    assert deal_id_of(["D-1"]) is None


def test_an_integer_id_is_kept_as_a_string() -> None:
    # YAML reads `id: 1001` as a number; the deal and its record carry the string "1001"
    deal, errors = validate_deal(yaml.safe_load("id: 1001\n") | {"lines": minimal_deal()["lines"]})
    assert errors == [] and deal is not None
    assert deal["id"] == "1001"
    assert validate_deal(minimal_deal(id=-7))[0]["id"] == "-7"  # type: ignore[index]


# -- number bounds ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            {"quantity": "1e999999"},
            "lines[0].quantity: number out of range: '1e999999'; the magnitude must be below 1e15",
        ),
        ({"unit_price": Decimal("1e400")}, "lines[0].unit_price: number out of range: 1E+400"),
        ({"unit_price": 10**15}, "lines[0].unit_price: number out of range: 1000000000000000"),
        ({"unit_cost": "1" * 5000}, "lines[0].unit_cost: number out of range: '111111111111"),
        ({"list_price": "-1e20"}, "lines[0].list_price: number out of range"),
        (
            {"quantity": "0.0000000000001"},
            "lines[0].quantity: too many decimal places in '0.0000000000001'; at most 12",
        ),
        ({"unit_price": "1e-999999"}, "lines[0].unit_price: too many decimal places"),
        # past the decimal context's exponent range: out of range, not an internal overflow
        ({"unit_price": "1e999999999"}, "lines[0].unit_price: number out of range: '1e9999"),
        ({"unit_cost": "-1E+1000000000"}, "lines[0].unit_cost: number out of range"),
        ({"unit_price": "1e-999999999"}, "lines[0].unit_price: too many decimal places"),
        # digits are ASCII: Decimal() alone would read Arabic-Indic or full-width digits
        ({"unit_price": "١٢٣"}, "lines[0].unit_price: malformed money '١٢٣'"),
        ({"quantity": "１２"}, "lines[0].quantity: malformed"),
    ],
)
def test_numbers_out_of_range_are_located_errors(line: dict[str, Any], expected: str) -> None:
    raw = minimal_deal()
    raw["lines"][0].update(line)
    messages = errors_of(raw)
    assert any(message.startswith(expected) for message in messages), messages
    assert all(len(message) < 200 for message in messages)  # a huge number is cut short


def test_integers_too_long_to_print_are_refused_without_crashing() -> None:
    # str() refuses ints over 4300 digits; neither the id nor the message may need it
    raw = minimal_deal(id=10**5000)
    raw["lines"][0]["quantity"] = -(10**5000)
    assert errors_of(raw) == [
        "id: expected a string, got number <5001 digits>",
        "lines[0].quantity: number out of range: <5001 digits>; the magnitude must be below 1e15",
    ]
    assert deal_id_of(raw) is None
    assert [str(e) for e in check_fact_types({"n": 10**5000}, {"n": "number"})] == [
        "n: expected a finite number (a JSON double), got <5001 digits>"
    ]


def test_split_parts_and_plugin_numbers_are_bounded_too() -> None:
    raw = minimal_deal(billing={"requested_split": [50, "-1e16"]}, export={"weight": "1e300"})
    assert errors_of(raw, extra_types={"export.weight": "number"}) == [
        "billing.requested_split[1]: number out of range: '-1e16'; the magnitude must be below 1e15",
        "export.weight: number out of range: '1e300'; the magnitude must be below 1e15",
    ]


def test_numbers_at_the_bounds_are_exact() -> None:
    line = {
        "category": "hardware",
        "quantity": "999999999999999.999999999999",
        "unit_price": "999999999999999.999999999999",
        "unit_cost": "0.100000000000000000000",  # trailing zeros are not decimal places
    }
    deal = validated(minimal_deal(lines=[line] * 3))
    assert deal["lines"][0]["unit_cost"] == Decimal("0.1")
    facts = derive_facts(deal)
    amount = Context(prec=60).multiply(deal["lines"][0]["quantity"], deal["lines"][0]["unit_price"])
    assert len(amount.as_tuple().digits) == 54  # exact, not rounded to 28 or 50 digits
    assert facts["lines"][0]["amount"] == amount
    assert facts["totals"]["contract"] == Context(prec=60).multiply(3, amount)


def test_an_overflowing_deal_is_invalid_not_a_crash() -> None:
    # derive_facts used to raise decimal.Overflow on 1e999999 x 1e999999
    raw = minimal_deal()
    raw["lines"][0].update(quantity="1e999999", unit_price="1e999999")
    deal, errors = validate_deal(raw)
    assert deal is None
    assert [error.path for error in errors] == ["lines[0].quantity", "lines[0].unit_price"]


# -- prepare_deal: validation and derived facts in one walk -------------------------------------


def validate_then_derive(
    raw: object, extra_types: dict[str, Any] | None = None
) -> tuple[dict[str, Any] | None, list[str]]:
    """What prepare_deal stands for: validate_deal, then the deal merged with derive_facts."""
    deal, errors = validate_deal(raw, extra_types)
    if deal is None:
        return None, [str(error) for error in errors]
    return {**deal, **derive_facts(deal)}, []


def ordered(value: Any) -> Any:
    """``value`` with its key order and each Decimal's exact form, for comparing both."""
    if isinstance(value, dict):
        return [(key, ordered(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [ordered(item) for item in value]
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    return value


def prepared(raw: object, extra_types: dict[str, Any] | None = None) -> Any:
    data, errors = prepare_deal(raw, extra_types)
    assert (data is None) == bool(errors)
    return ordered(data), [str(error) for error in errors]


def example_raws() -> list[Any]:
    raws = [load_example(path.name) for path in sorted(EXAMPLES.glob("*.yaml"))]
    book = (EXAMPLES / "book.jsonl").read_text(encoding="utf-8").splitlines()
    return raws + [json.loads(line, parse_float=Decimal) for line in book]


@pytest.mark.parametrize("raw", example_raws(), ids=lambda raw: str(raw.get("id")))
def test_prepare_deal_is_validate_then_derive(raw: dict[str, Any]) -> None:
    before = copy.deepcopy(raw)
    data, errors = validate_then_derive(raw)
    assert prepared(raw) == (ordered(data), errors)
    assert raw == before  # the input is not changed


def test_prepare_deal_gives_the_facts_with_the_deal() -> None:
    data, errors = prepare_deal(minimal_deal())
    assert errors == [] and data is not None
    assert list(data) == [
        "id",
        "lines",
        "currency",  # USD by default
        "totals",
        "margin",
        "services_ratio",
        "max_line_discount",
        "risk_offer",
    ]  # no labor_margin without labor lines
    assert data["totals"]["contract"] == Decimal(100)
    assert data["margin"] == Decimal("0.4")
    assert data["lines"] == [
        {
            "sku": "A",
            "category": "hardware",
            "quantity": 1,
            "unit_price": 100,
            "unit_cost": 60,
            "amount": 100,
            "margin": Decimal("0.4"),
        }
    ]


values = st.one_of(
    st.decimals(min_value=0, max_value=Decimal("1e6"), places=3, allow_nan=False),
    st.integers(min_value=-2, max_value=10**6),
    st.sampled_from([None, "12.50", "-1", "x", 1.5, True, [], Decimal("1e20"), Decimal("0E-20")]),
)
mangled_lines = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "category": st.sampled_from((*CATEGORIES, "hardwear", None)),
                "quantity": values,
                "unit_price": values,
                "unit_cost": values,
                "list_price": values,
                "amount": values,
            },
        ),
        st.sampled_from([7, "line"]),
    ),
    max_size=4,
)
mangled_deals = st.fixed_dictionaries(
    {"lines": mangled_lines},
    optional={
        "id": st.sampled_from(["D-1", "", 1001, 1.5, None]),
        "currency": st.sampled_from(["USD", "JPY", "eur", None]),
        "offer": st.fixed_dictionaries({"type": st.sampled_from((*OFFER_TYPES, "new-market"))}),
        "billing": st.fixed_dictionaries({"requested_split": st.lists(values, max_size=3)}),
        "margin": values,
        "export": st.fixed_dictionaries({"copies": values}),
    },
)


@given(
    mangled_deals, st.sampled_from([None, {"export.copies": "integer", "lines[].amount": "number"}])
)
def test_prepare_deal_is_validate_then_derive_for_any_deal(
    raw: dict[str, Any], extra_types: dict[str, Any] | None
) -> None:
    data, errors = validate_then_derive(raw, extra_types)
    assert prepared(raw, extra_types) == (ordered(data), errors)


def test_the_callers_decimal_context_changes_nothing() -> None:
    raw = load_example("acme-risk.yaml")
    raw["lines"][0]["unit_cost"] = "97500.123456789012"  # 17 digits
    expected = prepared(raw)
    with decimal.localcontext() as context:
        context.prec = 6
        context.rounding = decimal.ROUND_DOWN
        assert prepared(raw) == expected
        assert decimal.getcontext() is context and context.prec == 6  # and it is given back


def test_the_callers_decimal_context_is_given_back_on_an_error() -> None:
    before = decimal.getcontext()
    huge = {"category": "hardware", "quantity": "1e999999", "unit_price": "1e999999"}
    with pytest.raises(decimal.Overflow):  # an unvalidated deal; prepare_deal refuses it
        derive_facts({"lines": [huge]})
    assert decimal.getcontext() is before and before.prec == 28


# -- check_fact_types (what plugins derive) -----------------------------------------------------


def test_check_fact_types_accepts_declared_types() -> None:
    derived = {
        "x": {"total": Decimal("1.5"), "name": "a", "tags": ["t"], "ok": False},
        "n": 3,
        "rows": [{"v": 1.5}, {"v": None}],
        "absent": None,
    }
    types = {
        "x": "object",
        "x.total": "number",
        "x.name": "string",
        "x.tags": "array",
        "x.ok": "boolean",
        "x.missing": "number",
        "n": "number",
        "rows[].v": "number",
        "absent": "string",
        "customer.name": "number",  # an input field: not this function's to check
    }
    assert check_fact_types(derived, types) == []


@pytest.mark.parametrize(
    ("derived", "types", "expected"),
    [
        ({"x": {"total": "abc"}}, {"x.total": "number"}, ["x.total: expected a number, got string 'abc'"]),
        ({"x": {"total": "abc"}}, {"x": "object", "x.total": "number"}, ["x.total: expected a number, got string 'abc'"]),
        ({"x": "abc"}, {"x.total": "number"}, ["x: expected an object, got string 'abc'"]),
        ({"x": "abc"}, {"x.total": "number", "x": "object"}, ["x: expected an object, got string 'abc'"]),
        ({"x": {"a": {"b": 1}}}, {"x.a.b": "string"}, ["x.a.b: expected a string, got number 1"]),
        ({"x": [{"t": 1}, {"t": "2"}]}, {"x[].t": "number"}, ["x[1].t: expected a number, got string '2'"]),
        ({"x": {"t": 1}}, {"x[].t": "number"}, ["x: expected an array, got an object"]),
        ({"flag": 1}, {"flag": "boolean"}, ["flag: expected a boolean (true or false), got number 1"]),
        ({"n": True}, {"n": "number"}, ["n: expected a number, got boolean true"]),
        ({"n": float("inf")}, {"n": "number"}, ["n: expected a finite number (a JSON double), got inf"]),
        ({"n": Decimal("1e400")}, {"n": "number"}, ["n: expected a finite number (a JSON double), got 1E+400"]),
        ({"s": ["a"]}, {"s": "string"}, ["s: expected a string, got an array"]),
    ],
)  # fmt: skip
def test_check_fact_types_names_each_wrong_value_by_path(
    derived: dict[str, Any], types: dict[str, str], expected: list[str]
) -> None:
    errors = check_fact_types(derived, types)
    assert all(isinstance(error, DealError) for error in errors)
    assert [str(error) for error in errors] == expected


# -- the bundled examples -----------------------------------------------------------------------


def commented_totals(text: str) -> dict[str, Decimal]:
    """The totals a reader can check by hand, from the example's header comment."""
    block = text.split("# totals:", 1)[1].split("\n# margin", 1)[0]
    pairs = re.findall(r"(product|services|support|subscription|contract|cost) ([\d,]+)", block)
    return {name: Decimal(value.replace(",", "")) for name, value in pairs}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_validate_and_match_their_comments(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# "), "each example says what it exercises"
    assert re.search(r"^# Expected: (approved|needs_approval|rejected|invalid)\b", text, re.M)
    deal, errors = validate_deal(yaml.safe_load(text))
    if path.name.startswith("invalid"):
        assert deal is None
        assert {error.path for error in errors} == {"customer.region", "lines[0].unit_cost"}
        return
    assert errors == []
    assert deal is not None
    expected = commented_totals(text)
    assert set(expected) == {"product", "services", "support", "subscription", "contract", "cost"}
    assert derive_facts(deal)["totals"] == expected


def test_book_of_deals() -> None:
    raws = [
        json.loads(line)
        for line in (EXAMPLES / "book.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert len(raws) == 20
    assert len({raw["id"] for raw in raws}) == 20
    invalid = []
    for raw in raws:
        deal, errors = validate_deal(raw)
        if errors:
            invalid.append(raw["id"])
            assert "expected invalid" in raw["note"]
        else:
            assert deal is not None and "expected invalid" not in raw["note"]
    assert invalid == ["B-13", "B-14"]
    offers = {raw["offer"]["pricing"] for raw in raws} | {raw["offer"]["type"] for raw in raws}
    assert offers >= {
        "fixed",
        "consumption",
        "kpi",
        "financial_improvement",
        "new_market",
        "advanced_technology",
        "standard",
    }
