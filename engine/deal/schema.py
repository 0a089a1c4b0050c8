"""The deal's schema: every path a ruleset may use, its type and enum values, and its JSON Schema.

``FIELDS`` is the one table of every path a ruleset may use — the input fields of SPEC §2 and the
facts derived from them — with its type and enum values; the expression compiler, the deal JSON
Schema (:func:`deal_json_schema`) and :mod:`dealdesk.deal.validate` all read it.

Numbers are bounded so that exact arithmetic stays exact and every number survives the trip to
durable_rules as a finite JSON number: a deal's number must be below :data:`MAX_MAGNITUDE` (10^15,
a quadrillion in any currency or unit) in magnitude with at most :data:`MAX_PLACES` (12) decimal
places, trailing zeros not counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

__all__ = [
    "CATEGORIES",
    "DEFAULT_CURRENCY",
    "DERIVED_PATHS",
    "FIELDS",
    "FRACTIONS",
    "INPUT_FIELDS",
    "ITEM_FIELDS",
    "JSON_TYPES",
    "MAX_MAGNITUDE",
    "MAX_PLACES",
    "REQUIRED_LINE_FIELDS",
    "Field",
    "deal_json_schema",
]


@dataclass(frozen=True)
class Field:
    """One path of the deal: its type, its allowed values, and whether dealdesk derives it.

    ``type`` is ``"number" | "string" | "boolean" | "object" | "array" | "date"`` (dates are ISO
    strings once validated); ``money`` marks amounts in the deal's currency.
    """

    type: str
    enum: tuple[str, ...] | None = None
    derived: bool = False
    money: bool = False
    description: str = ""


DEFAULT_CURRENCY = "USD"

#: The JSON Schema type names a plugin may declare for a fact (SPEC §7), with the Python types
#: of a value of that type (``bool`` is never a number, though Python makes it an ``int``).
JSON_TYPES: Mapping[str, tuple[type, ...]] = MappingProxyType(
    {
        "number": (int, float, Decimal),
        "string": (str,),
        "boolean": (bool,),
        "object": (Mapping,),
        "array": (list, tuple),
    }
)

#: Every number of a deal is below this in magnitude (exclusive) ...
MAX_MAGNITUDE = Decimal(10) ** 15
#: ... and has at most this many decimal places: 27 significant digits at most, so sums and
#: products are exact in :mod:`~dealdesk.deal.derive` and every value is a finite float for
#: durable_rules.
MAX_PLACES = 12

SEGMENTS = ("elephant", "deer", "rabbit")
REGIONS = ("us-west", "us-central", "us-east", "emea", "apac", "latam")
OFFER_TYPES = ("new_market", "advanced_technology", "standard")
PRICING_MODELS = ("fixed", "consumption", "kpi", "financial_improvement")
PARTNER_KINDS = ("system_integrator", "reseller", "distributor")
PARTNER_TIERS = ("select", "gold", "silver", "registered")
SUPPORT_MODELS = ("proactive", "break_fix", "none")
COST_CENTERS = ("project", "product_development")
CATEGORIES = ("hardware", "software", "labor", "support", "subscription")
RESOURCES = ("project_manager", "architect", "implementation", "resident_engineer")


def _input(
    type_: str, description: str, enum: tuple[str, ...] | None = None, money: bool = False
) -> Field:
    return Field(type_, enum, False, money, description)


def _derived(type_: str, description: str, money: bool = False) -> Field:
    return Field(type_, None, True, money, description)


FIELDS: dict[str, Field] = {
    # -- input (SPEC §2) --
    "id": _input("string", "Deal id; required. Duplicates in a batch are evaluated independently."),
    "currency": _input("string", "ISO 4217 currency code of every amount; USD when absent."),
    "customer": _input("object", "The buying customer."),
    "customer.name": _input("string", "Customer name."),
    "customer.segment": _input(
        "string", "Account size: elephant (large), deer (mid), rabbit (small).", SEGMENTS
    ),
    "customer.region": _input("string", "Sales region of the customer.", REGIONS),
    "customer.hq_country": _input(
        "string", "Country of the customer's headquarters (ISO 3166 code)."
    ),
    "customer.government": _input("boolean", "The customer is a government or public-sector body."),
    "customer.platinum_club": _input("boolean", "The customer belongs to the platinum club."),
    "customer.presales_consulting": _input("boolean", "The customer bought pre-sales consulting."),
    "offer": _input("object", "What is sold and how it is priced."),
    "offer.type": _input(
        "string", "Offer type; new_market and advanced_technology are risk offers.", OFFER_TYPES
    ),
    "offer.pricing": _input("string", "Pricing model.", PRICING_MODELS),
    "offer.kpi_at_risk": _input("number", "Money at risk under kpi pricing.", money=True),
    "partner": _input("object", "The selling partner; absent for a direct deal."),
    "partner.name": _input("string", "Partner name."),
    "partner.kind": _input("string", "Kind of partner.", PARTNER_KINDS),
    "partner.tier": _input("string", "Partner program tier.", PARTNER_TIERS),
    "partner.discount": _input(
        "number", "Partner discount requested, as a fraction (0..1) of the contract value."
    ),
    "support": _input("object", "The support model sold with the deal."),
    "support.model": _input("string", "Support model.", SUPPORT_MODELS),
    "support.resident_cost_to": _input(
        "string", "Who bears the resident engineer's cost (default project).", COST_CENTERS
    ),
    "billing": _input("object", "Requested billing terms."),
    "billing.payment_terms_days": _input("number", "Payment terms in days."),
    "billing.requested_split": _input(
        "array", "Requested milestone split, in percent (e.g. [30, 30, 30, 10])."
    ),
    "lines": _input("array", "The deal's lines; at least one, with a non-zero total."),
    "lines[].sku": _input("string", "Stock-keeping unit."),
    "lines[].category": _input("string", "Line category.", CATEGORIES),
    "lines[].quantity": _input("number", "Quantity (non-negative)."),
    "lines[].unit_price": _input("number", "Net price per unit.", money=True),
    "lines[].list_price": _input(
        "number", "List price per unit; gives the line discount.", money=True
    ),
    "lines[].unit_cost": _input(
        "number", "Cost per unit; required except on subscription lines.", money=True
    ),
    "lines[].resource": _input("string", "Labor resource type.", RESOURCES),
    "lines[].grade": _input("number", "Labor grade."),
    "lines[].hours": _input("number", "Labor hours (unit_price is hours x block rate)."),
    "dates": _input("object", "Key dates."),
    "dates.close": _input(
        "date", "Expected close date; rulesets' effective windows compare with it."
    ),
    "dates.start": _input("date", "Contract start date."),
    # -- derived (SPEC §2), computed by derive_facts --
    "totals": _derived("object", "Sums over the lines."),
    "totals.product": _derived(
        "number", "quantity x unit_price over hardware and software lines.", money=True
    ),
    "totals.services": _derived(
        "number", "quantity x unit_price over labor and support lines.", money=True
    ),
    "totals.support": _derived("number", "quantity x unit_price over support lines.", money=True),
    "totals.subscription": _derived(
        "number", "quantity x unit_price over subscription lines.", money=True
    ),
    "totals.contract": _derived("number", "quantity x unit_price over all lines.", money=True),
    "totals.cost": _derived(
        "number", "quantity x unit_cost over lines that have a cost.", money=True
    ),
    "margin": _derived("number", "1 - totals.cost / totals.contract."),
    "services_ratio": _derived("number", "totals.services / totals.contract."),
    "max_line_discount": _derived(
        "number", "Largest 1 - unit_price / list_price; 0 without list prices."
    ),
    "risk_offer": _derived("boolean", "offer.type is new_market or advanced_technology."),
    "labor_margin": _derived("number", "1 - labor cost / labor price; absent without labor lines."),
    "lines[].amount": _derived("number", "quantity x unit_price.", money=True),
    "lines[].margin": _derived(
        "number", "1 - unit_cost / unit_price; absent when unit_price is 0."
    ),
}

#: Numbers that are fractions of 1 (validation refuses more than 1).
FRACTIONS = frozenset({"partner.discount"})
#: The fields every line must have (``unit_cost`` too, except on subscription lines).
REQUIRED_LINE_FIELDS = ("category", "quantity", "unit_price")

#: The input paths of :data:`FIELDS`: what a deal may give.
INPUT_FIELDS: Mapping[str, Field] = MappingProxyType(
    {path: f for path, f in FIELDS.items() if not f.derived}
)
#: The items of the input arrays (``path[]``), which validation walks too.
ITEM_FIELDS: Mapping[str, Field] = MappingProxyType(
    {"lines[]": Field("object"), "billing.requested_split[]": Field("number")}
)
#: The derived paths of :data:`FIELDS`: dealdesk computes them; a deal may not give them.
DERIVED_PATHS = frozenset(path for path, f in FIELDS.items() if f.derived)


# ---------------------------------------------------------------------------------------------
# JSON Schema

_JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# A number, or a decimal string (CSV cells, exact money in JSON); negative only where allowed.
_NUMBER_TEXT = r"^\s*[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"
_SIGNED_NUMBER_TEXT = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"


def deal_json_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of a deal's input, for ``dealdesk schema deal``.

    Built from :data:`FIELDS` (input paths only): types, enums, descriptions, the required
    fields, and ``unit_cost`` required on every line but subscription lines. Unknown fields are
    allowed (they are kept in the deal). Editors use it through the YAML language server.
    """
    root = _schema_node("")
    return {
        "$schema": _JSON_SCHEMA_DIALECT,
        "title": "dealdesk deal",
        "description": (
            "A deal evaluated by dealdesk (SPEC §2). Money is a number or a decimal string in the "
            "deal's currency; every number is below 1e15 in magnitude with at most 12 decimal "
            "places. An integer id is kept as a string. Derived facts (totals, margin, "
            "services_ratio, max_line_discount, risk_offer, labor_margin, lines[].amount, "
            "lines[].margin) are computed by dealdesk and must not be given."
        ),
        **root,
    }


def _children(prefix: str) -> list[str]:
    """The direct child names of ``prefix`` among the input paths, in FIELDS order."""
    start = f"{prefix}." if prefix else ""
    names = []
    for path in INPUT_FIELDS:
        if path.startswith(start) and path != prefix:
            rest = path[len(start) :]
            if "." not in rest and "[" not in rest:
                names.append(rest)
    return names


def _schema_node(path: str) -> dict[str, Any]:
    """The JSON Schema of the input field at ``path`` ("" is the deal itself)."""
    if path == "":
        node: dict[str, Any] = {"type": "object"}
        field = None
    else:
        field = INPUT_FIELDS[path]
        node = {"description": field.description}
    kind = "object" if field is None else field.type

    if kind == "object":
        node["type"] = "object"
        node["properties"] = {
            name: _schema_node(f"{path}.{name}" if path else name) for name in _children(path)
        }
        if path == "":
            node["required"] = ["id", "lines"]
    elif kind == "array" and ITEM_FIELDS[f"{path}[]"].type != "object":
        node.update(type="array", items=_number_schema(signed=True))
    elif kind == "array":
        item_prefix = f"{path}[]"
        node.update(
            type="array",
            minItems=1,
            items={
                "type": "object",
                "properties": {
                    name: _schema_node(f"{item_prefix}.{name}") for name in _children(item_prefix)
                },
                "required": list(REQUIRED_LINE_FIELDS),
                # unit_cost is required on every line except subscription lines (PM-11).
                "if": {
                    "required": ["category"],
                    "properties": {"category": {"not": {"const": "subscription"}}},
                },
                "then": {"required": ["unit_cost"]},
            },
        )
    elif kind == "number":
        node.update(_number_schema(signed=False, fraction=path in FRACTIONS))
    elif kind == "date":
        node.update(type="string", format="date")
    elif kind == "boolean":
        node["type"] = "boolean"
    else:
        node["type"] = "string"
        if field is not None and field.enum:
            node["enum"] = list(field.enum)
    if path == "id":
        # an integer id (YAML's `id: 1001`) is accepted and kept as the string "1001"
        node.pop("type")
        node["anyOf"] = [{"type": "string", "minLength": 1}, {"type": "integer"}]
    if path == "currency":
        node.update(pattern="^[A-Z]{3}$", default=DEFAULT_CURRENCY)
    return node


def _number_schema(signed: bool, fraction: bool = False) -> dict[str, Any]:
    # MAX_PLACES cannot be said of a JSON number portably; validate_deal checks it.
    number: dict[str, Any] = {"type": "number", "exclusiveMaximum": int(MAX_MAGNITUDE)}
    if signed:
        number["exclusiveMinimum"] = -int(MAX_MAGNITUDE)
    else:
        number["minimum"] = 0
    if fraction:
        number.pop("exclusiveMaximum")
        number["maximum"] = 1
    text = {"type": "string", "pattern": _SIGNED_NUMBER_TEXT if signed else _NUMBER_TEXT}
    return {"anyOf": [number, text]}
