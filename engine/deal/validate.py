"""Deal validation: a raw deal checked against the schema, normalized, errors named by field path.

:func:`validate_deal` turns a raw JSON/YAML/CSV value into a normalized deal (money and
quantities as :class:`~decimal.Decimal`, dates as ISO strings, integer ids as strings);
:func:`prepare_deal` does the same and adds the derived facts of
:mod:`dealdesk.deal.derive` in the same walk, for the evaluator; :func:`check_fact_types` checks
what plugins derive against the types they declare.

The schema (:data:`~dealdesk.deal.schema.FIELDS` plus the plugins' declared paths) is compiled
once into a checker per path and a table per object (key → checker), so a deal is walked once,
with a dictionary lookup and a call per field, and an error's path and message are only built
for a field that has one. A plain deal of the usual values goes by a quicker road first
(:func:`_quick_deal`): the same rules inline, giving up at the first unusual value, so the walk
alone decides (and words) every error. Numbers are bounded
(:data:`~dealdesk.deal.schema.MAX_MAGNITUDE`, :data:`~dealdesk.deal.schema.MAX_PLACES`):
anything else is a located
:class:`~dealdesk.errors.DealError` (``lines[0].quantity: number out of range ...``), never an
arithmetic overflow later.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Context, Decimal, getcontext, setcontext
from functools import lru_cache
from operator import itemgetter
from typing import Any

from dealdesk.deal.derive import EXACT, Ledger
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

__all__ = ["ExtraTypes", "check_fact_types", "deal_id_of", "prepare_deal", "validate_deal"]

#: Input paths that plugins declare, mapped to a JSON Schema type or list of types.
ExtraTypes = Mapping[str, str | Sequence[str]]

# What validation walks: the input paths plus the items of each array ("path[]").
_CORE_SCHEMA: Mapping[str, Field] = {**INPUT_FIELDS, **ITEM_FIELDS}
# JSON Schema type names validate_deal's extra_types accept: a plugin's (SPEC §7), "integer", "null".
_EXTRA_TYPE_NAMES = frozenset(JSON_TYPES) | {"integer", "null"}
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Integers beyond this (about 150 digits) are never shown in full.
_PRINTABLE_INT_BITS = 512
# Line categories that must have a unit_cost (PM-11).
_COSTED = frozenset(CATEGORIES) - {"subscription"}
_INVALID: Any = object()

# The precision the magnitude has always been checked at (Python's default): the caller's context
# must not change which numbers are in range (a number of more digits is rounded first).
_MAGNITUDE_CONTEXT = Context(prec=28)
# Wide enough for any number below MAX_MAGNITUDE with its places (and their trailing zeros).
_PLACES_CONTEXT = Context(prec=MAX_PLACES + 15 + 2)
_QUANTUM = Decimal(1).scaleb(-MAX_PLACES)
_ZERO_PLACES = Decimal(0).scaleb(-MAX_PLACES)
# A non-zero number is below MAX_MAGNITUDE, a power of ten, when its adjusted exponent is below this.
_MAX_ADJUSTED = MAX_MAGNITUDE.adjusted()
assert Decimal(10) ** _MAX_ADJUSTED == MAX_MAGNITUDE

# A checker normalizes the value at ``key`` of the object or array whose path is shown as
# ``parent``, or reports it and returns _INVALID. The shown path ("lines[2].unit_cost") is
# only built for an error or for a nested object or array.
_Check = Callable[[Any, str, Any, list[DealError]], Any]
# A walker normalizes a whole object or array, shown at the path it is given.
_Walk = Callable[[Any, str, list[DealError]], Any]

# The quick path's rule for a key (see _quick_deal): one of the codes below, an enum's frozenset,
# an object's spec (dict) or a number list's (item code,); _OTHER sends the deal to the walk.
_QuickRule = Any
_QuickSpec = dict[Any, _QuickRule]
_STRING, _BOOLEAN, _DATE, _ID, _LINES, _REFUSE, _OTHER = range(7)
# Numbers: the codes from _NUMBER up (never negative, signed, a fraction of 1).
_NUMBER, _SIGNED, _FRACTION = range(7, 10)


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
    raw: object, extra_types: ExtraTypes | None = None
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
    :raises ValueError: when ``extra_types`` names a type that is not a JSON Schema type.
    """
    return _check_deal(raw, extra_types, None)


def prepare_deal(
    raw: object, extra_types: ExtraTypes | None = None
) -> tuple[dict[str, Any] | None, list[DealError]]:
    """Validate a raw deal and derive its facts in one walk: what the evaluator runs per deal.

    The same as ``validate_deal`` followed by ``{**deal, **derive_facts(deal)}``
    (:func:`~dealdesk.deal.derive.derive_facts`), key order included: the normalized deal with
    ``totals``, ``margin``, ``services_ratio``, ``max_line_discount``, ``risk_offer`` and
    ``labor_margin`` added and each line carrying its ``amount`` and ``margin``.

    :param raw: the value a reader parsed (normally a mapping).
    :param extra_types: as for :func:`validate_deal`, the plugins' declared facts.
    :returns: ``(deal with its derived facts, [])``, or ``(None, errors)`` exactly as
        :func:`validate_deal` reports them.
    :raises ValueError: when ``extra_types`` names a type that is not a JSON Schema type.
    """
    return _check_deal(raw, extra_types, Ledger())


def prepared_object(raw: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """Object ``key`` of a deal that :func:`prepare_deal` accepts (``billing``), as it is in
    the prepared deal, normalized alone, without the rest of the deal; None when only the whole
    deal's walk can say (an unusual value in it: the caller prepares the deal)."""
    value = raw.get(key)
    rule = _validator(None).quick_root.get(key)
    if value.__class__ is not dict or rule.__class__ is not dict:
        return None
    caller = getcontext()
    setcontext(EXACT)
    try:
        return _quick_object(value, rule)
    except (_Unusual, ArithmeticError):
        return None
    finally:
        setcontext(caller)


def _check_deal(
    raw: object, extra_types: ExtraTypes | None, ledger: Ledger | None, *, quick: bool = True
) -> tuple[dict[str, Any] | None, list[DealError]]:
    """Validate ``raw``; with a ``ledger``, also derive the facts of its lines.

    A plain ``dict`` goes through :func:`_quick_deal` first (``quick=False`` skips it, for the
    tests that pin it to the walk); whatever that path does not accept is walked in full.
    """
    if not (raw.__class__ is dict or isinstance(raw, Mapping)):
        return None, [DealError("", f"a deal must be a mapping of fields, got {_kind(raw)}")]
    validator = _validator(extra_types)
    if quick and raw.__class__ is dict:
        try:
            return _quick_deal(raw, validator.quick_root, validator.quick_line, ledger), []
        except (_Unusual, ArithmeticError):
            pass  # the walk decides, and words the errors
    errors: list[DealError] = []
    deal, lines = validator.walk(raw, errors, ledger)
    walked = len(errors)  # a field whose value was refused is not also reported missing

    if "id" not in deal:
        if not _reported(errors, walked, "id"):
            errors.append(DealError("id", "missing required field"))
    elif deal["id"] == "":
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

    if lines is None:
        if not _reported(errors, walked, "lines"):
            errors.append(
                DealError("lines", "missing required field (a deal needs at least one line)")
            )
    elif not deal["lines"]:
        errors.append(DealError("lines", "a deal needs at least one line"))
    else:
        lines.check(errors, walked)

    if errors:
        return None, errors
    if ledger is not None:
        deal.update(ledger.facts(deal.get("offer")))  # "lines" is in the deal already
    return deal, []


def _reported(errors: list[DealError], walked: int, path: str) -> bool:
    return any(error.path == path for error in errors[:walked])


class _Lines:
    """What the walk saw of the lines, for the checks that need the whole deal walked first."""

    __slots__ = ("complete", "nonzero", "pending")

    def __init__(self) -> None:
        # Every line is an object with a quantity and a unit_price (the contract is known) ...
        self.complete = True
        # ... and one of them has both non-zero (so the contract value is not zero).
        self.nonzero = False
        # The lines missing a required field, checked once every refused field is known.
        self.pending: list[tuple[int, dict[str, Any]]] = []

    def check(self, errors: list[DealError], walked: int) -> None:
        """Required line fields, unit_cost on costed lines, and a non-zero contract value."""
        if self.pending:
            reported = {error.path for error in errors[:walked]}
            for index, line in self.pending:
                for name in REQUIRED_LINE_FIELDS:
                    if name not in line and f"lines[{index}].{name}" not in reported:
                        errors.append(DealError(f"lines[{index}].{name}", "missing required field"))
                category = line.get("category")
                cost_path = f"lines[{index}].unit_cost"
                if category in _COSTED and "unit_cost" not in line and cost_path not in reported:
                    # PM-11: a costed line without a cost is never treated as zero cost.
                    errors.append(
                        DealError(
                            cost_path,
                            f"missing; required on {category} lines "
                            "(only subscription lines may omit it)",
                        )
                    )
        if self.complete and not self.nonzero:
            errors.append(
                DealError(
                    "lines", "the contract value is zero (every line has quantity or unit_price 0)"
                )
            )


class _Validator:
    """The schema compiled for one set of plugin-declared paths: walks a raw deal once."""

    def __init__(self, schema: Mapping[str, Field]):
        self.schema = schema
        self._checks: dict[str, _Check] = {}
        self.root = self._table("")
        self.lines = self.check("lines")
        self.line = self.check("lines[]")
        # The same schema as rules for the quick path (see _quick_deal).
        self.quick_root = self._quick_spec("")
        self.quick_line = self._quick_spec("lines[]")

    # -- the per-deal walk

    def walk(
        self, raw: Mapping[Any, Any], errors: list[DealError], ledger: Ledger | None
    ) -> tuple[dict[Any, Any], _Lines | None]:
        """Normalize the top level of ``raw``; the lines are checked and summed on the way."""
        deal: dict[Any, Any] = {}
        lines = None
        table, check_lines = self.root, self.lines
        for key, item in raw.items():
            check = table.get(key)
            if check is None:
                deal[key] = item
            elif item is None:  # a null known field is absent
                if check is _refuse_derived:
                    _refuse_derived(item, "", key, errors)
            else:
                if check is check_lines:
                    result, lines = self.walk_lines(item, errors, ledger)
                else:
                    result = check(item, "", key, errors)
                if result is not _INVALID:
                    deal[key] = result
        return deal, lines

    def walk_lines(
        self, value: object, errors: list[DealError], ledger: Ledger | None
    ) -> tuple[Any, _Lines | None]:
        """Normalize the ``lines`` array, noting what the deal-wide checks need of each line."""
        if not (value.__class__ is list or isinstance(value, list | tuple)):
            return self.lines(value, "", "lines", errors), None
        seen = _Lines()
        out: list[Any] = []
        check_line = self.line
        for index, item in enumerate(value):
            line = check_line(item, "lines", index, errors)
            if line is _INVALID:
                out.append(item)
                seen.complete = False
                continue
            out.append(line)
            category = line.get("category")
            quantity = line.get("quantity")
            price = line.get("unit_price")
            if quantity is None or price is None:
                seen.complete = False
                seen.pending.append((index, line))
                continue
            if quantity and price:  # neither is ever negative, so the contract is not zero
                seen.nonzero = True
            if ledger is not None:
                cost, list_price = line.get("unit_cost"), line.get("list_price")
                ledger.add(line, category, quantity, price, cost, list_price)
            if category is None or (category in _COSTED and "unit_cost" not in line):
                seen.pending.append((index, line))
        return out, seen

    # -- compiling

    def check(self, path: str) -> _Check:
        """The checker of the field at schema path ``path``, compiled once."""
        check = self._checks.get(path)
        if check is None:
            check = self._checks[path] = self._compile(path, self.schema[path])
        return check

    def _table(self, prefix: str) -> dict[str, _Check]:
        """Key → checker for the keys of the object at ``prefix``; derived facts are refused.

        A key is looked up as the rest of a path after ``prefix.``, so a key with a dot in it
        (``"a.b"``) finds the path ``prefix.a.b``, as the walk has always looked keys up.
        """
        start = f"{prefix}." if prefix else ""
        table: dict[str, _Check] = {
            path[len(start) :]: self.check(path) for path in self.schema if path.startswith(start)
        }
        for path in DERIVED_PATHS:
            if path.startswith(start):
                table[path[len(start) :]] = _refuse_derived
        return table

    def _quick_spec(self, prefix: str) -> _QuickSpec:
        """Key → quick rule for the keys of the object at ``prefix``, as :meth:`_table` has them."""
        start = f"{prefix}." if prefix else ""
        spec: _QuickSpec = {
            path[len(start) :]: self._quick_rule(path, field)
            for path, field in self.schema.items()
            if path.startswith(start)
        }
        for path in DERIVED_PATHS:
            if path.startswith(start):
                spec[path[len(start) :]] = _REFUSE
        return spec

    def _quick_rule(self, path: str, field: Field) -> _QuickRule:
        """What the quick path accepts at ``path``: the values :meth:`check` takes as they are.

        Whoever changes a checker changes its quick rule with it (tests/deal/test_quick_path.py
        pins the two together).

        A field of several types, or of a kind the quick path does not know, is ``_OTHER``: a
        deal that has it is walked.
        """
        types = _types(field.type)
        if path == "id":
            return _ID
        if len(types) != 1:
            return _OTHER
        kind = types[0]
        if kind == "string":
            return _STRING if field.enum is None else frozenset(field.enum)
        if kind == "boolean":
            return _BOOLEAN
        if kind == "date":
            return _DATE
        if kind == "number":
            return _number_code(path)
        if kind == "object":
            return self._quick_spec(path)
        if kind == "array" and path == "lines":
            return _LINES
        item = self.schema.get(f"{path}[]")
        if kind == "array" and item is not None and item.type == "number":
            return (_number_code(f"{path}[]"),)
        return _OTHER

    def _object_walker(self, path: str) -> _Walk:
        table = self._table(path)

        def walk_object(value: Mapping[Any, Any], where: str, errors: list[DealError]) -> Any:
            out: dict[Any, Any] = {}
            for key, item in value.items():
                check = table.get(key)
                if check is None:  # a field nobody declares is kept as it is
                    out[key] = item
                elif item is None:  # a null known field is absent
                    if check is _refuse_derived:
                        _refuse_derived(item, where, key, errors)
                else:
                    result = check(item, where, key, errors)
                    if result is not _INVALID:
                        out[key] = result
            return out

        return walk_object

    def _array_walker(self, path: str) -> _Walk:
        item_path = f"{path}[]"
        if item_path not in self.schema:
            return _copy_list
        check_item = self.check(item_path)

        def walk_array(value: Sequence[Any], where: str, errors: list[DealError]) -> Any:
            out: list[Any] = []
            for index, item in enumerate(value):
                normalized = check_item(item, where, index, errors)
                out.append(item if normalized is _INVALID else normalized)
            return out

        return walk_array

    def _compile(self, path: str, field: Field) -> _Check:
        """The checker of one field: the general rule, behind a shortcut for its usual values.

        Each shortcut accepts only values of the exact built-in type the rule accepts, and
        returns what the rule would; anything else (errors included) goes to the rule.
        """
        types = _types(field.type)
        walk_object = self._object_walker(path) if "object" in types else None
        walk_array = self._array_walker(path) if "array" in types else None
        number = (
            _number_rule(path, field, integer="integer" in types and "number" not in types)
            if "number" in types or "integer" in types
            else None
        )
        enum = field.enum
        accepts_null, accepts_bool = "null" in types, "boolean" in types
        accepts_string, accepts_date = "string" in types, "date" in types

        def general(value: Any, parent: str, key: Any, errors: list[DealError]) -> Any:
            if accepts_null and value is None:
                return None
            if walk_object is not None and isinstance(value, Mapping):
                return walk_object(value, _where(parent, key), errors)
            if walk_array is not None and isinstance(value, list | tuple):
                return walk_array(value, _where(parent, key), errors)
            if accepts_bool and isinstance(value, bool):
                return value
            if accepts_string and isinstance(value, str):
                return _check_enum(value, parent, key, enum, errors)
            if accepts_date and isinstance(value, str | dt.date):
                return _normalize_date(value, parent, key, errors)
            numeric = isinstance(value, int | float | Decimal | str) and not isinstance(value, bool)
            if number is not None and numeric:
                return number(value, parent, key, errors)
            hint = _yaml_hint(value, types)
            message = f"expected {_type_phrase(types)}, got {_kind(value)}{hint}"
            errors.append(DealError(_where(parent, key), message))
            return _INVALID

        if path == "id":
            return _id_check(general)
        if len(types) > 1:
            return general
        kind = types[0]
        if kind == "string":
            return _string_check(general, enum)
        if kind == "number":
            return _number_check(general, path)
        if kind == "object":
            assert walk_object is not None
            return _object_check(general, walk_object)
        if kind == "array":
            assert walk_array is not None
            return _array_check(general, walk_array)
        if kind == "boolean":
            return _boolean_check(general)
        if kind == "date":
            return _date_check(general)
        return general


@lru_cache(maxsize=64)
def _compiled(extra: tuple[tuple[str, str], ...]) -> _Validator:
    return _Validator(_schema(extra))


# The extra_types last seen, as a copy, with their validator: the evaluator passes the same
# plugin declarations for every deal, and comparing them is cheaper than keying them again.
_last_seen: tuple[dict[str, str | Sequence[str]], _Validator] | None = None


def _validator(extra_types: ExtraTypes | None) -> _Validator:
    global _last_seen
    if not extra_types:
        return _compiled(())
    last = _last_seen
    if last is not None and extra_types == last[0]:
        return last[1]
    validator = _compiled(_extra_key(extra_types))
    if all(isinstance(types, str) for types in extra_types.values()):
        _last_seen = (dict(extra_types), validator)
    return validator


# -- the quick path: a well-formed deal of plain built-in types, in straight-line code


class _Unusual(Exception):
    """The quick path met something it does not take as it is: the full walk decides."""


# Currencies found valid (ISO 4217 codes, a few hundred at most): a set is cheaper to ask.
_VALID_CURRENCIES: set[str] = set()
# Date strings found valid, with their ISO form: a batch repeats its dates; the first few
# thousand are kept (a dict lookup is a fraction of the lru_cache'd call).
_QUICK_DATES: dict[str, str] = {}
_QUICK_DATES_MAX = 4096
_INT_HIGH = int(MAX_MAGNITUDE)
_ZERO = Decimal(0)
_ONE = Decimal(1)
# The required line fields, which the quick path finds present (a null one is dropped).
_REQUIRED_OF_LINE = itemgetter(*REQUIRED_LINE_FIELDS)
assert REQUIRED_LINE_FIELDS == ("category", "quantity", "unit_price")
# The Decimals of small ints, made once: quantities, grades, hours and many prices are such ints.
_SMALL_INTS = 4096
_DECIMAL_OF = tuple(Decimal(i) for i in range(_SMALL_INTS))


def _quick_deal(
    raw: dict[Any, Any], root: _QuickSpec, line_spec: _QuickSpec, ledger: Ledger | None
) -> dict[Any, Any]:
    """The deal the walk would return for ``raw``, with the derived facts when given a ``ledger``.

    Only values the compiled checkers accept as they are (exact built-in types within the
    schema's bounds) are taken, and only a deal with no problem at all; anything else raises
    :class:`_Unusual` (or an ``ArithmeticError``), and :func:`_check_deal` walks the deal in full,
    so every error keeps its wording and order. Nothing is changed before that, neither ``raw``
    nor ``ledger``. The whole runs under :data:`~dealdesk.deal.derive.EXACT`, which the ledger's
    sums need and under which ``number + 0E-12`` tells the places of a bounded number exactly;
    the caller's decimal context is given back.
    """
    caller = getcontext()
    setcontext(EXACT)
    try:
        deal: dict[Any, Any] = {}
        entries = None
        for key, item in raw.items():
            rule = root.get(key)
            if rule is None:  # a field nobody declares is kept as it is
                deal[key] = item
            elif item is None:  # a null known field is absent
                if rule is _REFUSE:
                    raise _Unusual
            elif rule.__class__ is dict and item.__class__ is dict:
                deal[key] = _quick_object(item, rule)
            elif item.__class__ is str and (rule is _STRING or (rule is _ID and item)):
                deal[key] = item
            elif rule is _LINES:
                deal[key], entries = _quick_lines(item, line_spec)
            else:
                deal[key] = _quick_value(item, rule)
        if entries is None or "id" not in deal:
            raise _Unusual
        currency = deal.setdefault("currency", DEFAULT_CURRENCY)
        if currency not in _VALID_CURRENCIES:
            if not _is_currency(currency):
                raise _Unusual
            _VALID_CURRENCIES.add(currency)
        if ledger is not None:
            ledger.lines = entries
            deal.update(ledger.facts_exact(deal.get("offer")))  # "lines" is in the deal already
        return deal
    finally:
        setcontext(caller)


def _quick_lines(value: object, spec: _QuickSpec) -> tuple[list[Any], list[Any]]:
    """The normalized lines and what the ledger needs of each; every line must be complete."""
    if value.__class__ is not list:
        raise _Unusual
    lines: list[Any] = []
    entries: list[Any] = []
    nonzero = False
    for item in value:
        if item.__class__ is not dict:
            raise _Unusual
        line = _quick_object(item, spec)
        try:
            category, quantity, price = _REQUIRED_OF_LINE(line)
        except KeyError:
            raise _Unusual from None  # a required field is missing
        cost = line.get("unit_cost")
        if cost is None and category in _COSTED:
            raise _Unusual
        if quantity and price:
            nonzero = True
        lines.append(line)
        entries.append((line, category, quantity, price, cost, line.get("list_price")))
    if not nonzero:  # no line, or a contract value of zero
        raise _Unusual
    return lines, entries


def _quick_object(value: dict[Any, Any], spec: _QuickSpec) -> dict[Any, Any]:
    """``walk_object`` for a value the quick path takes; the usual values inline."""
    out: dict[Any, Any] = {}
    for key, item in value.items():
        rule = spec.get(key)
        if rule is None:
            out[key] = item
            continue
        kind = item.__class__
        if kind is str:
            if rule is _STRING or (rule.__class__ is frozenset and item in rule):
                out[key] = item
                continue
            if rule is _DATE:
                iso = _QUICK_DATES.get(item)
                if iso is not None:
                    out[key] = iso
                    continue
        elif kind is Decimal:
            if (
                rule is _NUMBER
                and _ZERO <= item < MAX_MAGNITUDE  # NaN raises InvalidOperation
                and (item + _ZERO_PLACES).same_quantum(_ZERO_PLACES)  # _has_few_places, exact
            ):
                out[key] = item
                continue
        elif kind is int:
            if rule is _NUMBER and 0 <= item < _SMALL_INTS:
                out[key] = _DECIMAL_OF[item]
                continue
        elif kind is bool:
            if rule is _BOOLEAN:
                out[key] = item
                continue
        elif item is None:  # a null known field is absent
            if rule is _REFUSE:
                raise _Unusual
            continue
        out[key] = _quick_value(item, rule)
    return out


def _quick_value(item: Any, rule: _QuickRule) -> Any:
    """``item`` (not ``None``) as its checker returns it, when it takes it as it is."""
    kind = item.__class__
    rule_kind = rule.__class__
    if rule_kind is int:
        if rule >= _NUMBER:
            return _quick_number(item, rule)
        if rule is _BOOLEAN:
            if item is True or item is False:
                return item
        elif rule is _STRING:
            if kind is str:
                return item
        elif rule is _DATE:
            if kind is str:
                iso = _iso_date(item)
                if iso is not None:
                    if len(_QUICK_DATES) < _QUICK_DATES_MAX:
                        _QUICK_DATES[item] = iso
                    return iso
            elif kind is dt.date:
                return item.isoformat()
        elif rule is _ID:
            if kind is str:
                if item:  # an empty id is an error
                    return item
            elif _is_integer_id(item):
                return str(item)
    elif rule_kind is frozenset:
        if kind is str and item in rule:
            return item
    elif rule_kind is dict:
        if kind is dict:
            return _quick_object(item, rule)
    elif rule_kind is tuple and kind is list:
        code = rule[0]
        return [_quick_number(number, code) for number in item]
    raise _Unusual  # _OTHER (several types ...), _REFUSE, or a value to report


def _quick_number(item: Any, code: int) -> Decimal:
    """A number as ``check_number`` returns it without the general rule, else :class:`_Unusual`.

    Runs under :data:`~dealdesk.deal.derive.EXACT` (see :func:`_quick_deal`).
    """
    kind = item.__class__
    if kind is int:
        if (
            (-_INT_HIGH < item if code is _SIGNED else 0 <= item)
            and item < _INT_HIGH
            and (code is not _FRACTION or item <= 1)
        ):
            return _DECIMAL_OF[item] if 0 <= item < _SMALL_INTS else Decimal(item)
        raise _Unusual
    if kind is Decimal:
        number = item
    elif kind is float or kind is str:
        try:
            number = parse_decimal(item)
        except ValueError:
            raise _Unusual from None
    else:
        raise _Unusual
    if (
        (-MAX_MAGNITUDE < number if code is _SIGNED else _ZERO <= number)  # NaN raises
        and number < MAX_MAGNITUDE
        and (code is not _FRACTION or number <= _ONE)
        and (number + _ZERO_PLACES).same_quantum(_ZERO_PLACES)
    ):
        return number
    raise _Unusual


def _number_code(path: str) -> int:
    """The quick code of the number at ``path``: signed and fraction as in ``_number_check``."""
    if path not in INPUT_FIELDS:
        return _SIGNED
    return _FRACTION if path in FRACTIONS else _NUMBER


# -- the checkers' shortcuts: exact built-in types first, then the general rule


def _id_check(general: _Check) -> _Check:
    def check_id(value: Any, parent: str, key: Any, errors: list[DealError]) -> Any:
        if value.__class__ is str:
            return value
        if _is_integer_id(value):  # kept as the string "1001"
            return str(value)
        return general(value, parent, key, errors)

    return check_id


def _string_check(general: _Check, enum: tuple[str, ...] | None) -> _Check:
    if enum is None:

        def check_string(value: Any, parent: str, key: Any, errors: list[DealError]) -> Any:
            return value if value.__class__ is str else general(value, parent, key, errors)

        return check_string
    allowed = frozenset(enum)

    def check_enum(value: Any, parent: str, key: Any, errors: list[DealError]) -> Any:
        if value.__class__ is str and value in allowed:
            return value
        return general(value, parent, key, errors)

    return check_enum


def _object_check(general: _Check, walk_object: _Walk) -> _Check:
    def check_object(value: Any, parent: str, key: Any, errors: list[DealError]) -> Any:
        if value.__class__ is dict:
            return walk_object(value, _where(parent, key), errors)
        return general(value, parent, key, errors)

    return check_object


def _array_check(general: _Check, walk_array: _Walk) -> _Check:
    def check_array(value: Any, parent: str, key: Any, errors: list[DealError]) -> Any:
        if value.__class__ is list:
            return walk_array(value, _where(parent, key), errors)
        return general(value, parent, key, errors)

    return check_array


def _boolean_check(general: _Check) -> _Check:
    def check_boolean(value: Any, parent: str, key: Any, errors: list[DealError]) -> Any:
        if value is True or value is False:
            return value
        return general(value, parent, key, errors)

    return check_boolean


def _date_check(general: _Check) -> _Check:
    def check_date(value: Any, parent: str, key: Any, errors: list[DealError]) -> Any:
        if value.__class__ is str:
            iso = _iso_date(value)
            if iso is not None:
                return iso
        elif value.__class__ is dt.date:
            return value.isoformat()
        return general(value, parent, key, errors)

    return check_date


def _number_rule(path: str, field: Field, integer: bool) -> _Check:
    """The rule for a number: a :class:`Decimal` within the bounds, never negative in the schema."""
    what = "money" if field.money else "number"
    # Schema numbers are never negative; split parts (not in the schema) are BM-6's to reject.
    signed = path not in INPUT_FIELDS
    fraction = path in FRACTIONS

    def check_number_rule(value: Any, parent: str, key: Any, errors: list[DealError]) -> Any:
        try:
            number = parse_decimal(value)
        except ValueError:
            errors.append(
                DealError(
                    _where(parent, key),
                    f"malformed {what} {value!r}; expected a number or a decimal string such as "
                    "'1500.50'",
                )
            )
            return _INVALID
        # a non-zero exponent past the context's range would overflow it: out of range anyway
        huge = bool(number) and number.adjusted() > _MAX_ADJUSTED
        if huge or _MAGNITUDE_CONTEXT.abs(number) >= MAX_MAGNITUDE:
            errors.append(
                DealError(
                    _where(parent, key),
                    f"number out of range: {_short(value)}; the magnitude must be below 1e15",
                )
            )
            return _INVALID
        trimmed = _within_places(number)
        if trimmed is None:
            errors.append(
                DealError(
                    _where(parent, key),
                    f"too many decimal places in {_short(value)}; at most {MAX_PLACES} are allowed",
                )
            )
            return _INVALID
        number = trimmed
        if integer and number != number.to_integral_value():
            errors.append(DealError(_where(parent, key), f"expected an integer, got {value!r}"))
            return _INVALID
        if number < 0 and not signed:
            errors.append(DealError(_where(parent, key), f"must not be negative, got {value}"))
            return _INVALID
        if fraction and number > 1:
            errors.append(
                DealError(_where(parent, key), f"must be a fraction between 0 and 1, got {value}")
            )
            return _INVALID
        return number

    return check_number_rule


def _number_check(general: _Check, path: str) -> _Check:
    """The shortcut for an int, Decimal, float or decimal string that the rule accepts as is."""
    signed = path not in INPUT_FIELDS
    fraction = path in FRACTIONS
    int_high = int(MAX_MAGNITUDE)
    int_low = -int_high if signed else 0
    one = Decimal(1)
    add, zero_places = _PLACES_CONTEXT.add, _ZERO_PLACES

    def check_number(value: Any, parent: str, key: Any, errors: list[DealError]) -> Any:
        kind = value.__class__
        if kind is int:
            # exact and without places; the lower bound is inclusive (0) for unsigned numbers
            if (
                (int_low < value if signed else int_low <= value)
                and value < int_high
                and (not fraction or value <= 1)
            ):
                return Decimal(value)
            return general(value, parent, key, errors)
        if kind is Decimal:
            number = value
        elif kind is float or kind is str:
            try:
                number = parse_decimal(value)
            except ValueError:
                return general(value, parent, key, errors)
        else:
            return general(value, parent, key, errors)
        if (
            number.is_finite()
            # below MAX_MAGNITUDE (a zero whose exponent is 15 or more is left to the rule)
            and number.adjusted() < _MAX_ADJUSTED
            and (signed or not number.is_signed())  # -0 too is left to the rule
            and (not fraction or number <= one)
            and add(number, zero_places).same_quantum(zero_places)  # _has_few_places, inlined
        ):
            return number
        return general(value, parent, key, errors)

    return check_number


def _copy_list(value: Sequence[Any], where: str, errors: list[DealError]) -> list[Any]:
    return list(value)


def _refuse_derived(value: object, parent: str, key: Any, errors: list[DealError]) -> Any:
    errors.append(
        DealError(
            _where(parent, key), "is a derived fact computed by dealdesk; remove it from the deal"
        )
    )
    return _INVALID


def _where(parent: str, key: str | int) -> str:
    """The path shown for ``key`` of the value at ``parent``: ``lines[2]``, ``customer.region``."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def _has_few_places(number: Decimal) -> bool:
    """Whether a number below :data:`MAX_MAGNITUDE` has an exponent of ``-MAX_PLACES`` or more.

    Adding ``0E-12`` gives the exponent ``-12`` exactly then (the sum is exact: 27 digits at
    most), and a smaller one otherwise; ``as_tuple()`` would say so too, at several times the cost.
    """
    return _PLACES_CONTEXT.add(number, _ZERO_PLACES).same_quantum(_ZERO_PLACES)


def _within_places(number: Decimal) -> Decimal | None:
    """``number`` with at most :data:`MAX_PLACES` decimal places, or ``None`` when it has more.

    Trailing zeros are not places (``"1.50000000000000000"`` is ``1.50...`` cut to 12 places);
    only a bounded number (below :data:`MAX_MAGNITUDE`) is handed in.
    """
    if _has_few_places(number):
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


def _iso_date(text: str) -> str | None:
    """``text`` as a valid ISO date ``YYYY-MM-DD``, else ``None``."""
    return _iso_date_of_ten(text) if len(text) == 10 else None


@lru_cache(maxsize=1024)
def _iso_date_of_ten(text: str) -> str | None:
    # A batch repeats its dates; only ten-character strings are cached, so the cache stays small.
    if _ISO_DATE.fullmatch(text):
        try:
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            pass
    return None


def _normalize_date(value: object, parent: str, key: Any, errors: list[DealError]) -> Any:
    if isinstance(value, dt.datetime):
        errors.append(
            DealError(_where(parent, key), "expected a date (YYYY-MM-DD), got a date and time")
        )
        return _INVALID
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        iso = _iso_date(value)
        if iso is not None:
            return iso
    shown = repr(value) if isinstance(value, str) else _kind(value)
    errors.append(DealError(_where(parent, key), f"expected a date (YYYY-MM-DD), got {shown}"))
    return _INVALID


def _check_enum(
    value: str, parent: str, key: Any, enum: tuple[str, ...] | None, errors: list[DealError]
) -> Any:
    if enum is None or value in enum:
        return value
    # only a plain str is cached: a subclass may print differently
    unknown = _unknown_value if value.__class__ is str else _unknown_value.__wrapped__
    errors.append(DealError(_where(parent, key), unknown(value, enum)))
    return _INVALID


@lru_cache(maxsize=256)
def _unknown_value(value: str, enum: tuple[str, ...]) -> str:
    # A batch repeats its mistakes, and difflib is slow: each message is made once.
    allowed = ", ".join(enum)
    close = [v for v in enum if v.lower() == value.lower()] or difflib.get_close_matches(
        value, enum, n=1
    )
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown value {value!r}; expected one of: {allowed}{hint}"


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


def _extra_key(extra_types: ExtraTypes | None) -> tuple[tuple[str, str], ...]:
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
    if not derived:  # nothing to check (the usual case: no plugin derived anything)
        return errors
    for head, steps, kind in _fact_plan(fact_types):
        if head in derived:
            _check_fact(derived, steps, "", kind, errors)
    return errors


# The fact_types last seen, as a copy, with their plan: the pipeline passes the same every deal.
_last_plan: tuple[dict[str, str], list[tuple[str, list[str], str]]] | None = None


def _fact_plan(fact_types: Mapping[str, str]) -> list[tuple[str, list[str], str]]:
    """``(head, steps, kind)`` of each declared path, shallower paths first (a stable sort)."""
    global _last_plan
    last = _last_plan
    if last is not None and fact_types == last[0]:
        return last[1]
    plan = [
        (_fact_head(path), path.split("."), kind)
        for path, kind in sorted(fact_types.items(), key=lambda item: item[0].count("."))
    ]
    _last_plan = (dict(fact_types), plan)
    return plan


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
