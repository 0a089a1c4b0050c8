"""Tests for dealdesk.deal.validate: the schema table, validation by field path, derived facts, JSON Schema."""

from __future__ import annotations

import copy
import json
import re
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from dealdesk.deal.validate import (
    CATEGORIES,
    FIELDS,
    JSON_TYPES,
    check_fact_types,
    deal_id_of,
    deal_json_schema,
    derive_facts,
    validate_deal,
)
from dealdesk.errors import DealError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "deals"


def load_example(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))


def minimal_deal(**extra: Any) -> dict[str, Any]:
    deal: dict[str, Any] = {
        "id": "D-1",
        "lines": [
            {"sku": "A", "category": "hardware", "quantity": 1, "unit_price": 100, "unit_cost": 60}
        ],
    }
    deal.update(extra)
    return deal


def errors_of(raw: object, **kwargs: Any) -> list[str]:
    deal, errors = validate_deal(raw, **kwargs)
    assert (deal is None) == bool(errors)
    return [str(error) for error in errors]


# -- FIELDS -------------------------------------------------------------------------------------


def test_fields_cover_the_spec_paths() -> None:
    expected = {
        "id", "currency", "customer.segment", "customer.region", "customer.government",
        "offer.type", "offer.pricing", "offer.kpi_at_risk", "partner.tier", "partner.discount",
        "support.model", "support.resident_cost_to", "billing.payment_terms_days",
        "billing.requested_split", "lines", "lines[].category", "lines[].unit_price",
        "lines[].list_price", "lines[].unit_cost", "lines[].resource", "dates.close",
        "totals.product", "totals.contract", "totals.cost", "margin", "services_ratio",
        "max_line_discount", "risk_offer", "labor_margin", "lines[].amount", "lines[].margin",
    }  # fmt: skip
    assert expected <= set(FIELDS)


def test_every_field_has_a_known_type_and_its_parent() -> None:
    for path, field in FIELDS.items():
        assert field.type in {"number", "string", "boolean", "object", "array", "date"}, path
        parent = path.rsplit(".", 1)[0] if "." in path else None
        if parent is not None:
            parent = parent.removesuffix("[]")
            expected = "array" if path.split(".")[-2].endswith("[]") else "object"
            assert FIELDS[parent].type == expected, path
        if field.enum is not None:
            assert field.type == "string", path
        assert field.description, path


def test_fields_types_enums_and_derived_flags() -> None:
    assert FIELDS["lines[].category"].enum == CATEGORIES
    assert FIELDS["customer.region"].enum == (
        "us-west",
        "us-central",
        "us-east",
        "emea",
        "apac",
        "latam",
    )
    assert FIELDS["risk_offer"].type == "boolean" and FIELDS["risk_offer"].derived
    assert FIELDS["totals"].type == "object" and FIELDS["totals"].derived
    assert FIELDS["totals.product"].money and FIELDS["lines[].unit_cost"].money
    assert not FIELDS["lines[].unit_cost"].derived
    assert FIELDS["dates.close"].type == "date"
    assert FIELDS["billing.requested_split"].type == "array"
    derived = {path for path, field in FIELDS.items() if field.derived}
    assert derived == {
        "totals", "totals.product", "totals.services", "totals.support", "totals.subscription",
        "totals.contract", "totals.cost", "margin", "services_ratio", "max_line_discount",
        "risk_offer", "labor_margin", "lines[].amount", "lines[].margin",
    }  # fmt: skip


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


def test_json_types_are_the_plugin_fact_types() -> None:
    from dealdesk.manager import FACT_TYPES

    assert set(JSON_TYPES) == FACT_TYPES == {"number", "string", "boolean", "object", "array"}


# -- derive_facts -------------------------------------------------------------------------------


def validated(raw: dict[str, Any]) -> dict[str, Any]:
    deal, errors = validate_deal(raw)
    assert errors == [], errors
    assert deal is not None
    return deal


def test_derive_facts_of_the_spec_deal() -> None:
    deal = validated(load_example("acme-risk.yaml"))
    before = copy.deepcopy(deal)
    facts = derive_facts(deal)
    assert deal == before  # the caller merges; the deal is not changed
    assert list(facts) == [
        "totals",
        "margin",
        "services_ratio",
        "max_line_discount",
        "risk_offer",
        "labor_margin",
        "lines",
    ]
    assert facts["totals"] == {
        "product": Decimal(1_000_000),
        "services": Decimal(389_600),
        "support": Decimal(300_000),
        "subscription": Decimal(0),
        "contract": Decimal(1_389_600),
        "cost": Decimal(697_200),
    }
    assert facts["margin"] == 1 - Decimal(697_200) / Decimal(1_389_600)
    assert facts["services_ratio"] == Decimal(389_600) / Decimal(1_389_600)
    assert facts["max_line_discount"] == 1 - Decimal(150_000) / Decimal(175_000)
    assert facts["labor_margin"] == Decimal("0.25")
    assert facts["risk_offer"] is True
    assert [line["amount"] for line in facts["lines"]] == [
        Decimal(600_000),
        Decimal(400_000),
        Decimal(89_600),
        Decimal(300_000),
    ]
    assert facts["lines"][0]["margin"] == Decimal("0.35")
    assert facts["lines"][0]["sku"] == "EDGE-APL"  # copies keep the input fields
    assert "amount" not in deal["lines"][0]


def test_discount_is_exact() -> None:
    raw = minimal_deal(
        lines=[
            {
                "category": "software",
                "quantity": 1,
                "unit_price": 70,
                "list_price": 100,
                "unit_cost": 7,
            }
        ]
    )
    facts = derive_facts(validated(raw))
    assert facts["max_line_discount"] == Decimal("0.30")
    assert str(facts["max_line_discount"]) == "0.3"
    assert facts["lines"][0]["margin"] == Decimal("0.9")


def test_optional_facts_are_absent_when_undefined() -> None:
    raw = minimal_deal(
        offer={"type": "standard"},
        lines=[
            {"category": "hardware", "quantity": 1, "unit_price": 100, "unit_cost": 60},
            {"category": "support", "quantity": 1, "unit_price": 0, "unit_cost": 10},
            {"category": "subscription", "quantity": 2, "unit_price": 25},
        ],
    )
    facts = derive_facts(validated(raw))
    assert facts["max_line_discount"] == 0  # no list prices
    assert "labor_margin" not in facts  # no labor lines
    assert facts["risk_offer"] is False
    assert "margin" not in facts["lines"][1]  # unit_price 0
    assert "margin" not in facts["lines"][2]  # subscription without cost
    assert facts["lines"][2]["amount"] == Decimal(50)
    # A subscription line without cost is not a costed line: the deal margin exists.
    assert facts["margin"] == 1 - Decimal(70) / Decimal(150)
    assert facts["totals"]["subscription"] == Decimal(50)
    assert facts["totals"]["support"] == Decimal(0)


def test_margin_is_absent_when_a_costed_line_lacks_cost() -> None:
    # validate_deal refuses such deals; derive_facts still never treats a missing cost as zero.
    deal = {
        "lines": [
            {"category": "hardware", "quantity": 1, "unit_price": 10},
            {"category": "labor", "quantity": 1, "unit_price": 10},
        ]
    }
    facts = derive_facts(deal)
    assert "margin" not in facts
    assert "labor_margin" not in facts
    assert facts["totals"]["contract"] == Decimal(20)


def test_derive_facts_accepts_plain_numbers() -> None:
    facts = derive_facts(
        {
            "offer": {"type": "advanced_technology"},
            "lines": [{"category": "labor", "quantity": 2, "unit_price": 0.1, "unit_cost": "0.05"}],
        }
    )
    assert facts["totals"]["services"] == Decimal("0.2")
    assert facts["labor_margin"] == Decimal("0.5")
    assert facts["risk_offer"] is True


amounts = st.decimals(
    min_value=0, max_value=Decimal("1e9"), places=2, allow_nan=False, allow_infinity=False
)
quantities = st.decimals(
    min_value=0, max_value=10_000, places=3, allow_nan=False, allow_infinity=False
)
line_strategy = st.fixed_dictionaries(
    {
        "category": st.sampled_from(CATEGORIES),
        "quantity": quantities,
        "unit_price": amounts,
        "unit_cost": amounts,
    },
    optional={"list_price": amounts},
)


@given(st.lists(line_strategy, min_size=1, max_size=12))
def test_totals_equal_the_sum_of_line_amounts(lines: list[dict[str, Any]]) -> None:
    facts = derive_facts({"id": "P", "lines": lines})
    totals = facts["totals"]
    line_amounts = [line["amount"] for line in facts["lines"]]
    assert line_amounts == [line["quantity"] * line["unit_price"] for line in lines]
    assert totals["contract"] == sum(line_amounts, Decimal(0))
    assert totals["product"] + totals["services"] + totals["subscription"] == totals["contract"]
    assert totals["support"] == sum(
        (a for a, line in zip(line_amounts, lines, strict=True) if line["category"] == "support"),
        Decimal(0),
    )
    assert totals["cost"] == sum(
        (line["quantity"] * line["unit_cost"] for line in lines), Decimal(0)
    )
    if totals["contract"] != 0:
        assert facts["margin"] == 1 - totals["cost"] / totals["contract"]
        assert 0 <= facts["services_ratio"] <= 1
    else:
        assert "margin" not in facts and "services_ratio" not in facts


# -- JSON Schema --------------------------------------------------------------------------------


def as_json(value: object) -> Any:
    """What a JSON editor would see: dates as strings."""
    return json.loads(json.dumps(value, default=str))


def test_deal_json_schema_is_valid_draft_2020_12() -> None:
    schema = deal_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["required"] == ["id", "lines"]
    assert schema["properties"]["customer"]["properties"]["region"]["enum"][0] == "us-west"
    line = schema["properties"]["lines"]["items"]
    assert line["properties"]["category"]["enum"] == list(CATEGORIES)
    assert "totals" not in schema["properties"]  # derived facts are not input
    assert json.dumps(schema, sort_keys=True) == json.dumps(deal_json_schema(), sort_keys=True)


def test_deal_json_schema_bounds_numbers_and_accepts_integer_ids() -> None:
    validator = jsonschema.Draft202012Validator(deal_json_schema())
    deal = minimal_deal(id=1001)
    assert list(validator.iter_errors(deal)) == []
    deal["lines"][0]["quantity"] = 10**15
    deal["billing"] = {"requested_split": [-(10**15)]}
    assert len(list(validator.iter_errors(deal))) == 2


def test_deal_json_schema_accepts_the_examples_and_refuses_the_invalid_one() -> None:
    validator = jsonschema.Draft202012Validator(
        deal_json_schema(), format_checker=jsonschema.FormatChecker()
    )
    for path in sorted(EXAMPLES.glob("*.yaml")):
        problems = list(validator.iter_errors(as_json(load_example(path.name))))
        if path.name.startswith("invalid"):
            messages = " ".join(problem.message for problem in problems)
            assert "'mars' is not one of" in messages
            assert "'unit_cost' is a required property" in messages
        else:
            assert problems == [], (path.name, [p.message for p in problems])


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
