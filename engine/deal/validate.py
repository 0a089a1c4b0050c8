"""The deal: its schema, its validation (errors named by field path) and its derived facts.

``FIELDS`` is the one table of every path a ruleset may use — the input fields of SPEC §2 and the
facts derived from them — with its type and enum values; the expression compiler, the deal JSON
Schema and :func:`validate_deal` all read it. :func:`validate_deal` turns a raw JSON/YAML/CSV
value into a normalized deal (money and quantities as :class:`~decimal.Decimal`, dates as ISO
strings, integer ids as strings); :func:`derive_facts` computes the derived facts in exact
decimal arithmetic; :func:`check_fact_types` checks what plugins derive against the types they
declare.

Numbers are bounded so that exact arithmetic stays exact and every number survives the trip to
durable_rules as a finite JSON number: a deal's number must be below 10^15 in magnitude (a
quadrillion in any currency or unit) with at most 12 decimal places (trailing zeros do not
count). Anything else is a located :class:`~dealdesk.errors.DealError`
(``lines[0].quantity: number out of range ...``), never an arithmetic overflow later.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from dealdesk.errors import DealError
from dealdesk.money import minor_units, parse_decimal

__all__ = [
    "CATEGORIES",
    "DEFAULT_CURRENCY",
    "FIELDS",
    "JSON_TYPES",
    "MAX_MAGNITUDE",
    "MAX_PLACES",
    "RISK_OFFER_TYPES",
    "Field",
    "check_fact_types",
    "deal_id_of",
    "deal_json_schema",
    "derive_facts",
    "validate_deal",
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
#: products are exact in :func:`derive_facts` and every value is a finite float for durable_rules.
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

RISK_OFFER_TYPES = frozenset({"new_market", "advanced_technology"})
_PRODUCT = frozenset({"hardware", "software"})
_SERVICES = frozenset({"labor", "support"})


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

_FRACTIONS = frozenset({"partner.discount"})
_REQUIRED_LINE_FIELDS = ("category", "quantity", "unit_price")

_INPUT_SCHEMA: dict[str, Field] = {path: f for path, f in FIELDS.items() if not f.derived}
# What validation walks: the input paths plus the items of each array ("path[]").
_CORE_SCHEMA: dict[str, Field] = {
    **_INPUT_SCHEMA,
    "lines[]": Field("object"),
    "billing.requested_split[]": Field("number"),
}
_DERIVED_PATHS = frozenset(path for path, f in FIELDS.items() if f.derived)
# JSON Schema type names validate_deal's extra_types accept: a plugin's (SPEC §7), "integer", "null".
_EXTRA_TYPE_NAMES = frozenset(JSON_TYPES) | {"integer", "null"}
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Integers beyond this (about 150 digits) are never shown in full.
_PRINTABLE_INT_BITS = 512
_INVALID = object()


def deal_id_of(raw: object) -> str | None:
    """Return the ``id`` of a raw deal as :func:`validate_deal` keeps it, else ``None``.

    A non-empty string as is, an integer as its decimal string (``1001`` → ``"1001"``, as
    ``validate_deal`` normalizes it); anything else is no id. For the decision record of a deal
    that ``validate_deal`` refused, and to find a deal by id.
    """
    if isinstance(raw, Mapping):
        value = raw.get("id")
        if isinstance(value, str) and value:
            return value
        if _is_integer_id(value):
            return str(value)
    return None


def _is_integer_id(value: object) -> bool:
    # YAML reads `id: 1001` as an int; bool is an int subclass but never an id, and neither is
    # an integer too long to print (str() refuses ints over 4300 digits).
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value.bit_length() <= _PRINTABLE_INT_BITS
    )


# ---------------------------------------------------------------------------------------------
# validation


def validate_deal(
    raw: object, extra_types: Mapping[str, str | Sequence[str]] | None = None
) -> tuple[dict[str, Any] | None, list[DealError]]:
    """Check a raw deal and return ``(deal, errors)``; ``deal`` is ``None`` when there are errors.

    The normalized ``deal`` is a copy of ``raw`` in which every number of the schema (money,
    quantities, hours, grade, ``partner.discount``, ``payment_terms_days``, the parts of
    ``requested_split``) is a :class:`Decimal`, every date an ISO ``YYYY-MM-DD`` string, and
    ``currency`` is ``"USD"`` when the deal has none (every example in SPEC §2 is in USD, and a
    deal desk books in one home currency; an explicit code is still checked against ISO 4217).
    An integer ``id`` (YAML reads ``id: 1001`` as a number) is accepted and kept as the string
    ``"1001"``, so the deal and its record always carry a string id; other non-string ids are
    errors. Numbers must be below :data:`MAX_MAGNITUDE` with at most :data:`MAX_PLACES` decimal
    places (see the module docstring).
    A known field whose value is ``null`` is treated as absent. Fields nobody declares are kept
    as they are (not copied). Derived facts (``totals``, ``margin``, ``lines[].amount`` ...) may
    not appear in the input: dealdesk computes them, and a stale value would mislead a reader.

    :param raw: the value a reader parsed (normally a mapping).
    :param extra_types: input paths that plugins declare (``{"export.destination": "string"}``,
        ``"lines[].warranty"`` for a line field) mapped to a JSON Schema type or list of types;
        those fields are type-checked when present and numbers become ``Decimal``.
    :returns: the normalized deal (or ``None``) and every problem found, each a
        :class:`DealError` naming the field by path (``lines[2].unit_cost``).
    """
    if not isinstance(raw, Mapping):
        return None, [DealError("", f"a deal must be a mapping of fields, got {_kind(raw)}")]
    errors: list[DealError] = []
    schema = _schema(_extra_key(extra_types))
    if _is_integer_id(raw.get("id")):
        raw = {**raw, "id": str(raw["id"])}
    deal = _normalize_mapping(raw, "", "", schema, errors)
    # A field whose value was refused is already reported; "missing" would say it twice.
    reported = {error.path for error in errors}

    if "id" not in deal and "id" not in reported:
        errors.append(DealError("id", "missing required field"))
    elif deal.get("id") == "":
        errors.append(DealError("id", "must not be empty"))

    currency = deal.setdefault("currency", DEFAULT_CURRENCY)
    if isinstance(currency, str):
        try:
            minor_units(currency)
        except ValueError:
            hint = (
                f" (did you mean {currency.upper()!r}?)" if _is_currency(currency.upper()) else ""
            )
            errors.append(
                DealError(
                    "currency", f"unknown currency {currency!r}; expected an ISO 4217 code{hint}"
                )
            )

    _check_lines(deal, errors, reported)
    if errors:
        return None, errors
    return deal, []


def _check_lines(deal: dict[str, Any], errors: list[DealError], reported: set[str]) -> None:
    """Required line fields, unit_cost on costed lines, and a non-zero contract value."""
    lines = deal.get("lines", _INVALID)
    if lines is _INVALID:
        if "lines" in reported:
            return
        errors.append(DealError("lines", "missing required field (a deal needs at least one line)"))
        return
    if not lines:
        errors.append(DealError("lines", "a deal needs at least one line"))
        return
    complete = True
    contract = Decimal(0)
    for index, line in enumerate(lines):
        if not isinstance(line, dict):
            complete = False
            continue
        for name in _REQUIRED_LINE_FIELDS:
            if name not in line and f"lines[{index}].{name}" not in reported:
                errors.append(DealError(f"lines[{index}].{name}", "missing required field"))
        category = line.get("category")
        cost_path = f"lines[{index}].unit_cost"
        if (
            category in CATEGORIES
            and category != "subscription"
            and "unit_cost" not in line
            and cost_path not in reported
        ):
            # PM-11: a costed line without a cost is never treated as zero cost.
            errors.append(
                DealError(
                    cost_path,
                    f"missing; required on {category} lines (only subscription lines may omit it)",
                )
            )
        quantity, price = line.get("quantity"), line.get("unit_price")
        if isinstance(quantity, Decimal) and isinstance(price, Decimal):
            contract += quantity * price
        else:
            complete = False
    if complete and contract == 0:
        errors.append(
            DealError(
                "lines", "the contract value is zero (every line has quantity or unit_price 0)"
            )
        )


def _normalize_mapping(
    value: Mapping[Any, Any],
    prefix: str,
    shown: str,
    schema: Mapping[str, Field],
    errors: list[DealError],
) -> dict[Any, Any]:
    """Copy a mapping, normalizing the fields ``schema`` knows; ``prefix`` is its schema path."""
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            out[key] = item
            continue
        path = f"{prefix}.{key}" if prefix else key
        where = f"{shown}.{key}" if shown else key
        if path in _DERIVED_PATHS:
            errors.append(
                DealError(where, "is a derived fact computed by dealdesk; remove it from the deal")
            )
            continue
        field = schema.get(path)
        if field is None:
            out[key] = item
        elif item is not None:  # a null known field is absent
            normalized = _normalize_value(item, path, where, field, schema, errors)
            if normalized is not _INVALID:
                out[key] = normalized
    return out


def _normalize_value(
    value: object,
    path: str,
    where: str,
    field: Field,
    schema: Mapping[str, Field],
    errors: list[DealError],
) -> Any:
    """Check one known field; return its normalized value, or ``_INVALID`` after an error."""
    types = _types(field.type)
    if "null" in types and value is None:
        return None
    if "object" in types and isinstance(value, Mapping):
        return _normalize_mapping(value, path, where, schema, errors)
    if "array" in types and isinstance(value, list | tuple):
        return _normalize_array(value, path, where, schema, errors)
    if "boolean" in types and isinstance(value, bool):
        return value
    if "string" in types and isinstance(value, str):
        return _check_enum(value, where, field, errors)
    if "date" in types and isinstance(value, str | dt.date):
        return _normalize_date(value, where, errors)
    numeric = isinstance(value, int | float | Decimal | str) and not isinstance(value, bool)
    if numeric and ("number" in types or "integer" in types):
        return _normalize_number(
            value, path, where, field, "integer" in types and "number" not in types, errors
        )
    errors.append(
        DealError(
            where, f"expected {_type_phrase(types)}, got {_kind(value)}{_yaml_hint(value, types)}"
        )
    )
    return _INVALID


def _normalize_array(
    value: Sequence[Any],
    path: str,
    where: str,
    schema: Mapping[str, Field],
    errors: list[DealError],
) -> list[Any]:
    item_path = f"{path}[]"
    item_field = schema.get(item_path)
    if item_field is None:
        return list(value)
    out: list[Any] = []
    for index, item in enumerate(value):
        item_where = f"{where}[{index}]"
        if item_field.type != "object":
            normalized = _normalize_value(item, item_path, item_where, item_field, schema, errors)
        elif isinstance(item, Mapping):
            normalized = _normalize_mapping(item, item_path, item_where, schema, errors)
        else:
            errors.append(DealError(item_where, f"expected an object, got {_kind(item)}"))
            normalized = _INVALID
        out.append(item if normalized is _INVALID else normalized)
    return out


def _normalize_number(
    value: object, path: str, where: str, field: Field, integer: bool, errors: list[DealError]
) -> Decimal | object:
    try:
        number = parse_decimal(value)
    except ValueError:
        what = "money" if field.money else "number"
        errors.append(
            DealError(
                where,
                f"malformed {what} {value!r}; expected a number or a decimal string such as '1500.50'",
            )
        )
        return _INVALID
    if abs(number) >= MAX_MAGNITUDE:
        errors.append(
            DealError(
                where,
                f"number out of range: {_short(value)}; the magnitude must be below 1e15",
            )
        )
        return _INVALID
    trimmed = _within_places(number)
    if trimmed is None:
        errors.append(
            DealError(
                where,
                f"too many decimal places in {_short(value)}; at most {MAX_PLACES} are allowed",
            )
        )
        return _INVALID
    number = trimmed
    if integer and number != number.to_integral_value():
        errors.append(DealError(where, f"expected an integer, got {value!r}"))
        return _INVALID
    # Schema numbers are never negative; split parts (not in the schema) are BM-6's to reject.
    if number < 0 and path in _INPUT_SCHEMA:
        errors.append(DealError(where, f"must not be negative, got {value}"))
        return _INVALID
    if path in _FRACTIONS and number > 1:
        errors.append(DealError(where, f"must be a fraction between 0 and 1, got {value}"))
        return _INVALID
    return number


# Wide enough for any number below MAX_MAGNITUDE with its places (and their trailing zeros).
_PLACES_CONTEXT = Context(prec=MAX_PLACES + 15 + 2)
_QUANTUM = Decimal(1).scaleb(-MAX_PLACES)


def _within_places(number: Decimal) -> Decimal | None:
    """``number`` with at most :data:`MAX_PLACES` decimal places, or ``None`` when it has more.

    Trailing zeros are not places (``"1.50000000000000000"`` is ``1.50...`` cut to 12 places);
    only a bounded number (below :data:`MAX_MAGNITUDE`) is handed in.
    """
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite: parse_decimal refuses NaN and infinities
    if exponent >= -MAX_PLACES:
        return number
    cut = number.quantize(_QUANTUM, context=_PLACES_CONTEXT)
    return cut if cut == number else None


def _short(value: object, limit: int = 40) -> str:
    """``repr(value)``, cut short: a number of a million digits must not make a million-byte error."""
    if isinstance(value, int) and value.bit_length() > _PRINTABLE_INT_BITS:
        # str() refuses ints over 4300 digits; nobody reads 150 digits of one either
        return f"<{len(Decimal(value).as_tuple().digits)} digits>"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _normalize_date(value: object, where: str, errors: list[DealError]) -> str | object:
    if isinstance(value, dt.datetime):
        errors.append(DealError(where, "expected a date (YYYY-MM-DD), got a date and time"))
        return _INVALID
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    shown = repr(value) if isinstance(value, str) else _kind(value)
    errors.append(DealError(where, f"expected a date (YYYY-MM-DD), got {shown}"))
    return _INVALID


def _check_enum(value: str, where: str, field: Field, errors: list[DealError]) -> str | object:
    if field.enum is None or value in field.enum:
        return value
    allowed = ", ".join(field.enum)
    close = [v for v in field.enum if v.lower() == value.lower()] or difflib.get_close_matches(
        value, field.enum, n=1
    )
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    errors.append(DealError(where, f"unknown value {value!r}; expected one of: {allowed}{hint}"))
    return _INVALID


@lru_cache(maxsize=64)
def _types(type_: str) -> tuple[str, ...]:
    """``"string|number"`` → ``("string", "number")``, once per type string."""
    return tuple(type_.split("|"))


def _type_phrase(types: tuple[str, ...]) -> str:
    names = {
        "object": "an object",
        "array": "an array",
        "boolean": "a boolean (true or false)",
        "integer": "an integer",
        "date": "a date (YYYY-MM-DD)",
    }
    return " or ".join(names.get(t, f"a {t}") for t in types)


def _kind(value: object) -> str:
    """Describe a value in the words of JSON (``string 'abc'``, ``number 5``, ``boolean true``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float | Decimal):
        return f"number {_short(value)}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dt.date):
        return f"date {value.isoformat()}"
    return type(value).__name__


def _yaml_hint(value: object, types: tuple[str, ...]) -> str:
    # YAML 1.1 reads no/yes/on/off (Norway's "NO") as booleans and 2026-01-01 as a date.
    if "string" in types and isinstance(value, bool | dt.date):
        return " (quote the value in YAML)"
    return ""


def _is_currency(code: str) -> bool:
    try:
        minor_units(code)
    except ValueError:
        return False
    return True


def _extra_key(
    extra_types: Mapping[str, str | Sequence[str]] | None,
) -> tuple[tuple[str, str], ...]:
    """A hashable form of ``extra_types`` (types joined with ``|``) for the schema cache."""
    if not extra_types:
        return ()
    items = []
    for path, types in extra_types.items():
        names = (types,) if isinstance(types, str) else tuple(types)
        unknown = [name for name in names if name not in _EXTRA_TYPE_NAMES]
        if unknown:
            raise ValueError(f"unknown JSON Schema type {unknown[0]!r} declared for {path!r}")
        items.append((path, "|".join(names)))
    return tuple(sorted(items))


@lru_cache(maxsize=64)
def _schema(extra: tuple[tuple[str, str], ...]) -> Mapping[str, Field]:
    """The input schema plus plugin-declared paths; their unknown parents become objects."""
    if not extra:
        return _CORE_SCHEMA
    schema = dict(_CORE_SCHEMA)
    for path, types in extra:
        if path in schema or path in _DERIVED_PATHS:
            continue  # the core schema wins over a plugin's declaration
        schema[path] = Field(types)
        parent = path
        while "." in parent:
            parent = parent.rsplit(".", 1)[0]
            if parent.endswith("[]"):
                schema.setdefault(parent, Field("object"))
                schema.setdefault(parent[:-2], Field("array"))
                parent = parent[:-2]
            else:
                schema.setdefault(parent, Field("object"))
    return schema


# ---------------------------------------------------------------------------------------------
# plugin-derived facts


def check_fact_types(derived: Mapping[str, Any], fact_types: Mapping[str, str]) -> list[DealError]:
    """Check the facts plugins derived against the JSON Schema types they declare.

    Every declared path under a key of ``derived`` is checked, nested ones included:
    ``{"x.total": "number"}`` catches ``{"x": {"total": "abc"}}`` (and ``{"x": "abc"}``: the
    parents of a declared path must be objects), and ``"x[].total"`` checks the ``total`` of
    each item of the list ``x``. A missing or null value is not checked (facts are optional),
    and nothing is reported below a value already reported. A number must be finite and fit a
    JSON double, since it reaches durable_rules as one.

    :param derived: the top-level keys the plugins returned from ``dealdesk_enrich``.
    :param fact_types: declared path → type name (a key of :data:`JSON_TYPES`), as
        :attr:`dealdesk.manager.Plugins.fact_types` gives them; paths whose first key is not in
        ``derived`` (input fields) are :func:`validate_deal`'s to check.
    :returns: one :class:`DealError` per value of the wrong type, its path naming the value
        (``x.total``, ``x[2].total``); shallower paths first.
    """
    errors: list[DealError] = []
    declared = [(path, kind) for path, kind in fact_types.items() if _fact_head(path) in derived]
    for path, kind in sorted(declared, key=lambda item: item[0].count(".")):
        _check_fact(derived, path.split("."), "", kind, errors)
    return errors


def _fact_head(path: str) -> str:
    return path.split(".", 1)[0].removesuffix("[]")


def _check_fact(
    value: Mapping[str, Any], steps: list[str], where: str, kind: str, errors: list[DealError]
) -> None:
    """Follow ``steps`` (``["x[]", "total"]``) down from ``value``, the mapping at ``where``."""
    key, is_list = steps[0].removesuffix("[]"), steps[0].endswith("[]")
    child = value.get(key)
    if child is None:
        return
    here = f"{where}.{key}" if where else key
    if is_list:
        if not isinstance(child, list | tuple):
            _add_fact_error(errors, here, f"expected an array, got {_kind(child)}")
            return
        items = [(f"{here}[{i}]", item) for i, item in enumerate(child)]
    else:
        items = [(here, child)]
    for item_where, item in items:
        if item is None:
            continue
        if len(steps) == 1:
            problem = _fact_type_problem(item, kind)
            if problem:
                _add_fact_error(errors, item_where, problem)
        elif isinstance(item, Mapping):
            _check_fact(item, steps[1:], item_where, kind, errors)
        else:
            _add_fact_error(errors, item_where, f"expected an object, got {_kind(item)}")


def _add_fact_error(errors: list[DealError], path: str, message: str) -> None:
    """Add the error unless ``path`` or a value above it is already reported."""
    for error in errors:
        if path == error.path or path.startswith((f"{error.path}.", f"{error.path}[")):
            return
    errors.append(DealError(path, message))


def _fact_type_problem(value: Any, kind: str) -> str | None:
    expected = JSON_TYPES.get(kind)
    if expected is None:
        return None  # not a JSON type name; the manager refuses such declarations
    if not isinstance(value, expected) or (kind == "number" and isinstance(value, bool)):
        return f"expected {_type_phrase((kind,))}, got {_kind(value)}"
    if kind == "number" and isinstance(value, int | float | Decimal):
        try:
            finite = math.isfinite(float(value))
        except OverflowError:  # an int beyond a double
            finite = False
        if not finite:
            return f"expected a finite number (a JSON double), got {_short(value)}"
    return None


# ---------------------------------------------------------------------------------------------
# derived facts

# Enough digits that sums and products are exact: validated numbers have at most 27 digits
# (MAX_MAGNITUDE, MAX_PLACES), so a product has at most 54 and a sum a few more.
_EXACT = Context(prec=80)
# Quotients round to Python's standard 28 digits, whatever context the caller has set, so a
# plugin or a test computing 1 - cost / price the usual way gets the same Decimal.
_QUOTIENT = Context(prec=28)


def _one_minus(numerator: Decimal, denominator: Decimal) -> Decimal:
    """``1 - numerator / denominator`` with the standard 28-digit quotient."""
    return _QUOTIENT.subtract(Decimal(1), _QUOTIENT.divide(numerator, denominator))


def _number(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else parse_decimal(value)


def derive_facts(deal: Mapping[str, Any]) -> dict[str, Any]:
    """Return the derived facts of SPEC §2 for a validated deal, in exact decimal arithmetic.

    Keys: ``totals`` (``product``, ``services``, ``support``, ``subscription``, ``contract``,
    ``cost``), ``margin`` (absent when the contract is 0 or a costed line lacks ``unit_cost``),
    ``services_ratio`` (absent when the contract is 0), ``max_line_discount`` (0 when no line
    has a non-zero list price), ``risk_offer`` (bool), ``labor_margin`` (absent without labor
    lines, when their price is 0 or one lacks a cost) and ``lines``: new copies of the lines,
    each with ``amount`` and, when ``unit_price`` is not 0 and the line has a cost, ``margin``.
    The caller merges these keys into the deal; the deal itself is not changed. Numbers that are
    not yet ``Decimal`` are parsed, so a hand-written deal works too.
    """
    totals = dict.fromkeys(
        ("product", "services", "support", "subscription", "contract", "cost"), Decimal(0)
    )
    lines: list[dict[str, Any]] = []
    costed_complete = True
    labor_price = labor_cost = Decimal(0)
    labor_lines = 0
    labor_complete = True
    discounts: list[Decimal] = []
    with localcontext(_EXACT):
        for line in deal.get("lines") or ():
            category = line.get("category")
            price = _number(line.get("unit_price", 0))
            quantity = _number(line.get("quantity", 0))
            amount = quantity * price
            copy = {**line, "amount": amount}
            cost = None if line.get("unit_cost") is None else _number(line["unit_cost"])
            if cost is not None:
                totals["cost"] += quantity * cost
                if price != 0:
                    copy["margin"] = _one_minus(cost, price)
            elif category != "subscription":
                costed_complete = False
            lines.append(copy)

            totals["contract"] += amount
            if category in _PRODUCT:
                totals["product"] += amount
            elif category in _SERVICES:
                totals["services"] += amount
                if category == "support":
                    totals["support"] += amount
            elif category == "subscription":
                totals["subscription"] += amount
            if category == "labor":
                labor_lines += 1
                labor_price += amount
                if cost is None:
                    labor_complete = False
                else:
                    labor_cost += quantity * cost

            list_price = line.get("list_price")
            if list_price is not None and _number(list_price) != 0:
                discounts.append(_one_minus(price, _number(list_price)))

        facts: dict[str, Any] = {"totals": totals}
        contract = totals["contract"]
        if contract != 0 and costed_complete:
            facts["margin"] = _one_minus(totals["cost"], contract)
        if contract != 0:
            facts["services_ratio"] = _QUOTIENT.divide(totals["services"], contract)
        facts["max_line_discount"] = max(discounts) if discounts else Decimal(0)
        offer = deal.get("offer")
        facts["risk_offer"] = isinstance(offer, Mapping) and offer.get("type") in RISK_OFFER_TYPES
        if labor_lines and labor_price != 0 and labor_complete:
            facts["labor_margin"] = _one_minus(labor_cost, labor_price)
    facts["lines"] = lines
    return facts


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
    for path in _INPUT_SCHEMA:
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
        field = _INPUT_SCHEMA[path]
        node = {"description": field.description}
    kind = "object" if field is None else field.type

    if kind == "object":
        node["type"] = "object"
        node["properties"] = {
            name: _schema_node(f"{path}.{name}" if path else name) for name in _children(path)
        }
        if path == "":
            node["required"] = ["id", "lines"]
    elif kind == "array" and _CORE_SCHEMA[f"{path}[]"].type != "object":
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
                "required": list(_REQUIRED_LINE_FIELDS),
                # unit_cost is required on every line except subscription lines (PM-11).
                "if": {
                    "required": ["category"],
                    "properties": {"category": {"not": {"const": "subscription"}}},
                },
                "then": {"required": ["unit_cost"]},
            },
        )
    elif kind == "number":
        node.update(_number_schema(signed=False, fraction=path in _FRACTIONS))
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
