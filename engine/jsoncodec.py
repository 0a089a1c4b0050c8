"""JSON in and out: exact decimals when reading deals, strict and byte-stable JSON for records.

msgspec (reading) and orjson (writing) do the work where their answer is provably the standard
library's; the standard library answers everything else, so the values read and the bytes
written are exactly those of ``json.loads(text, parse_float=Decimal)`` and
``json.dumps(record, ensure_ascii=False, ...)``:

- **Reading** (:func:`loads`): msgspec hands the source text of every fraction and exponent to
  ``Decimal`` (``float_hook``), so its values are the standard library's, number for number
  (``1.50`` stays ``Decimal('1.50')``), at about 3x its speed. A text msgspec refuses goes to the
  standard library: it reads ``NaN``/``Infinity``, lone surrogates and integers past 4300 digits
  (validation then names the field), and its error messages are the ones readers report. A text
  with 200 or more brackets goes there too, so the standard library's own depth limit decides.
- **Duplicate keys** (:func:`loads_unique`): a deal that names a key twice is ambiguous, so
  readers refuse it. msgspec keeps the last value silently; re-encoding its value with msgspec
  and counting colons finds every text with a duplicate at about a third of the parse's cost,
  and only those (and texts with ``\\u003a`` escapes) are parsed again to name the key.
- **Writing** (:func:`dumps`): orjson writes some floats differently (``0.00001`` for ``1e-05``;
  some releases also ``1e16`` for ``1e+16``), knows no ``Decimal``, and silently turns NaN into
  ``null``. A record of plain JSON types whose floats print without an exponent goes to orjson;
  any other record (an exponent float, an unusual type, an integer past 64 bits, a key that is
  not a string) to the standard library. A NaN or an infinity is never written (SPEC §9:
  records are strict JSON): :func:`check_finite` raises :class:`~dealdesk.errors.NonFiniteNumber`
  naming where it is.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import msgspec.json
import orjson

from dealdesk.errors import DuplicateKey, NonFiniteNumber

__all__ = ["check_finite", "duplicate_keys", "dumps", "loads", "loads_unique"]


# --- reading ---------------------------------------------------------------------------------


def _big_int(text: str) -> int | Decimal:
    """An integer literal; one beyond Python's int-string limit (4300 digits) as a ``Decimal``."""
    try:
        return int(text)
    except ValueError:
        return Decimal(text)


def _stdlib_loads(text: str) -> Any:
    """``json.loads`` with exact fractions; a huge integer is kept for validation to report.

    Python refuses to parse integers of more than 4300 digits (a ``ValueError``, not a JSON
    error); such a deal is still read, and ``validate_deal`` names the field as out of range.
    """
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError:
        raise
    except ValueError:
        return json.loads(text, parse_float=Decimal, parse_int=_big_int)


# Deeper than this, the standard library parses (or refuses: RecursionError) as it always did.
_MAX_DEPTH = 200


# exact fractions: msgspec passes each number's own text to Decimal
_exact_decode = msgspec.json.Decoder(float_hook=Decimal).decode


def loads(text: str) -> Any:
    """Parse one JSON text as ``json.loads(text, parse_float=Decimal)`` does, value for value.

    Numbers with a fraction or an exponent are exact ``Decimal``s; integers are ``int`` (one of
    more than 4300 digits a ``Decimal``).

    :raises json.JSONDecodeError: the standard library's error, with its message and position.
    :raises RecursionError: nesting deeper than the standard library's parser goes.
    """
    # fewer brackets than _MAX_DEPTH: not as deep as either parser's limit (msgspec's is deeper)
    if text.count("[") + text.count("{") < _MAX_DEPTH:
        try:
            return _exact_decode(text)
        except (ValueError, RecursionError):
            pass  # msgspec's DecodeError, a lone surrogate, a huge integer: the stdlib's word
    return _stdlib_loads(text)


_encode = msgspec.json.encode


def loads_unique(text: str) -> Any:
    """:func:`loads`, refusing a text where an object names a key twice.

    :raises DuplicateKey: the first such object (in document order) and its repeated key.
    :raises json.JSONDecodeError: as :func:`loads`.
    :raises RecursionError: as :func:`loads`.
    """
    value = loads(text)
    if _may_repeat_keys(text, value):
        for found in duplicate_keys(text):
            raise found
    return value


def _may_repeat_keys(text: str, value: Any) -> bool:
    """False only when no object of ``text`` repeats a key; ``value`` is what it parsed to.

    Every colon of the text is a member's or inside a string. Re-encoded, the value has one colon
    per key it kept plus those of the strings it kept; unless an escape spells a colon, the counts
    are equal exactly when no member was dropped for a repeated key.
    """
    if "\\" in text and ("\\u003a" in text or "\\u003A" in text):
        return True
    try:
        return _encode(value).count(b":") != text.count(":")
    except (TypeError, ValueError, OverflowError, RecursionError):
        return True  # what msgspec cannot write (a lone surrogate): ask the slow way


class _Members(list[tuple[str, Any]]):
    """An object's members as written, repeated keys kept."""


def duplicate_keys(text: str) -> Iterator[DuplicateKey]:
    """Each object of a valid JSON ``text`` that repeats a key, in document order (slow: the
    standard library parses the text again, keeping every member).

    :returns: for each such object, its first repeated key and its path.
    """
    tree = json.loads(text, parse_float=Decimal, parse_int=_big_int, object_pairs_hook=_Members)
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(tree, ())]
    while stack:  # not recursive: the standard library parses deeper than Python recurses
        node, path = stack.pop()
        if type(node) is _Members:
            seen: set[str] = set()
            for key, _ in node:
                if key in seen:
                    yield DuplicateKey(key, path)
                    break
                seen.add(key)
            children = [(item, (*path, key)) for key, item in node]
        elif type(node) is list:
            children = [(item, (*path, index)) for index, item in enumerate(node)]
        else:
            continue
        stack.extend(reversed(children))


# --- writing ---------------------------------------------------------------------------------


# Values orjson writes exactly as the standard library does (Decimals and dates through
# _json_default, as with the standard library); containers and floats are checked in _scan.
_PLAIN = frozenset({str, int, bool, type(None), Decimal, date, datetime})
_ORJSON, _STDLIB, _NONFINITE = 0, 1, 2
_isfinite = math.isfinite


def _scan(value: Any) -> int:
    """Which encoder writes ``value`` as ``json.dumps`` would: ``_ORJSON`` or ``_STDLIB``;
    ``_NONFINITE`` when it holds a float NaN or infinity, which neither may write."""
    try:
        return _scan_items((value,))
    except RecursionError:  # a value that holds itself: the standard library reports the cycle
        return _STDLIB


def _scan_items(items: Iterable[Any]) -> int:
    verdict = _ORJSON
    for item in items:
        kind = type(item)
        if kind is str:
            continue  # most of a record
        if kind is dict:
            found = _scan_items(item.values())
        elif kind is list or kind is tuple:
            found = _scan_items(item)
        elif kind is float:
            if not _isfinite(item):
                return _NONFINITE
            # repr() switches to an exponent outside [1e-4, 1e16); orjson's form differs there
            if item and not 1e-4 <= abs(item) < 1e16:
                verdict = _STDLIB
            continue
        elif kind in _PLAIN:
            continue
        else:
            found = _scan_other(item)
        if found:
            if found == _NONFINITE:
                return _NONFINITE
            verdict = _STDLIB
    return verdict


def _scan_other(item: Any) -> int:
    """A subclass or another type: the standard library writes it (or refuses it)."""
    if isinstance(item, Mapping):
        return _scan_items(item.values()) or _STDLIB
    if isinstance(item, list | tuple):
        return _scan_items(item) or _STDLIB
    if isinstance(item, float) and not _isfinite(item):
        return _NONFINITE
    return _STDLIB


def _non_finite(value: Any, path: str) -> tuple[str, float] | None:
    """The path and value of the first float NaN or infinity in ``value``, else ``None``."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, value)
    if isinstance(value, Mapping):
        items: Any = ((f"{path}.{key}" if path else str(key), item) for key, item in value.items())
    elif isinstance(value, list | tuple):
        items = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    for where, item in items:
        found = _non_finite(item, where)
        if found is not None:
            return found
    return None


def check_finite(value: Any) -> None:
    """Refuse a record (or any JSON-like value) that holds a float NaN or infinity.

    Mappings, lists and tuples are searched. ``Decimal("NaN")`` is not refused: records write a
    ``Decimal`` as its string.

    :raises NonFiniteNumber: naming the first such number by its path in ``value``
        (``policies.partner-margin.outputs.margin``).
    """
    if _scan(value) == _NONFINITE:
        found = _non_finite(value, "")
        assert found is not None
        raise NonFiniteNumber(*found)


def _json_default(value: object) -> object:
    # Records carry strings and floats; a stray Decimal or date must not end a long batch.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# datetimes go through _json_default (isoformat), as with the standard library
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME


def dumps(value: Any, *, indent: bool = False) -> str:
    """``value`` as JSON text, byte for byte what the standard library writes, never NaN.

    Compact (``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``) or indented by 2
    (``json.dumps(value, ensure_ascii=False, indent=2)``); keys in insertion order, UTF-8 text as
    is, a ``Decimal`` as its string and a date as ISO 8601.

    :raises NonFiniteNumber: ``value`` holds a float NaN or infinity (strict JSON has neither).
    :raises TypeError: a value JSON cannot represent (as the standard library does).
    """
    verdict = _scan(value)
    if verdict == _NONFINITE:
        check_finite(value)
    elif verdict == _ORJSON:
        option = _OPTIONS | orjson.OPT_INDENT_2 if indent else _OPTIONS
        try:
            return orjson.dumps(value, default=_json_default, option=option).decode()
        except orjson.JSONEncodeError:
            pass  # an integer past 64 bits, a key that is not a string, a lone surrogate
    if indent:
        return json.dumps(
            value, ensure_ascii=False, indent=2, default=_json_default, allow_nan=False
        )
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), default=_json_default, allow_nan=False
    )


_SCALARS = frozenset((str, int, bool, type(None)))


def dumps_scalar(value: Any) -> str:
    """:func:`dumps` for one value, quicker for the text, integers and booleans records hold
    (a deal id, a formatted output); anything else as :func:`dumps` writes it."""
    if type(value) in _SCALARS:
        try:
            return orjson.dumps(value).decode()
        except orjson.JSONEncodeError:  # an integer past 64 bits, a lone surrogate
            pass
    return dumps(value)
