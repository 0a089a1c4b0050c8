"""Deal validation: a raw deal checked against the schema, normalized, errors named by field path.

:func:`validate_deal` turns a raw JSON/YAML/CSV value into a normalized deal (money and
quantities as :class:`~decimal.Decimal`, dates as ISO strings, integer ids as strings);
:func:`check_fact_types` checks what plugins derive against the types they declare.

Numbers are bounded (:data:`~dealdesk.deal.schema.MAX_MAGNITUDE`,
:data:`~dealdesk.deal.schema.MAX_PLACES`): anything else is a located
:class:`~dealdesk.errors.DealError` (``lines[0].quantity: number out of range ...``), never an
arithmetic overflow later.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Mapping, Sequence
from decimal import Context, Decimal
from functools import lru_cache
from typing import Any

from dealdesk.deal.schema import (
    CATEGORIES,
    DEFAULT_CURRENCY,
    DERIVED_PATHS,
    FRACTIONS,
    INPUT_FIELDS,
    ITEM_FIELDS,
    JSON_TYPES,
    MAX_MAGNITUDE,
    MAX_PLACES,
    REQUIRED_LINE_FIELDS,
    Field,
)
from dealdesk.errors import DealError
from dealdesk.money import minor_units, parse_decimal

__all__ = ["check_fact_types", "deal_id_of", "validate_deal"]

# What validation walks: the input paths plus the items of each array ("path[]").
_CORE_SCHEMA: Mapping[str, Field] = {**INPUT_FIELDS, **ITEM_FIELDS}
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
    errors. Numbers must be below :data:`~dealdesk.deal.schema.MAX_MAGNITUDE` with at most
    :data:`~dealdesk.deal.schema.MAX_PLACES` decimal places (trailing zeros do not count).
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
        for name in REQUIRED_LINE_FIELDS:
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
        if path in DERIVED_PATHS:
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
    if number < 0 and path in INPUT_FIELDS:
        errors.append(DealError(where, f"must not be negative, got {value}"))
        return _INVALID
    if path in FRACTIONS and number > 1:
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
        if path in schema or path in DERIVED_PATHS:
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
