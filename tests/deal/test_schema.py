"""Tests for dealdesk.deal.schema: the field table, the plugin fact types, the deal JSON Schema."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from deal_samples import EXAMPLES, load_example, minimal_deal

from dealdesk.deal.schema import CATEGORIES, FIELDS, JSON_TYPES, deal_json_schema

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


def test_json_types_are_the_plugin_fact_types() -> None:
    from dealdesk.manager import FACT_TYPES

    assert set(JSON_TYPES) == FACT_TYPES == {"number", "string", "boolean", "object", "array"}


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
