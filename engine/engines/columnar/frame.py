"""A chunk of JSONL deals read into columns: the columnar engine's reader (issue 8).

:func:`read_frame` reads a chunk's lines with ``pyarrow.json`` against an explicit schema built
from the deal schema (:data:`~dealdesk.deal.schema.FIELDS`): money and every other number as
``decimal128(38, 12)`` (exact, from the number's own text, JSON numbers and decimal strings
alike), enums, texts and dates as strings, booleans, the schema's objects as structs, ``lines``
as a list of structs. It then decides, with vectorised tests over those columns, which rows are
**fast**: rows about which the per-deal path (:func:`~dealdesk.io.readers._parse_line`,
:func:`~dealdesk.deal.validate.prepare_deal`, :func:`~dealdesk.deal.unknown.unknown_fields`)
would have nothing to say, and whose every value in the frame is the one ``prepare_deal``
computes. Every other row is decided per deal from :meth:`Frame.raw`; so correctness never
depends on a row being fast, and the tests here are conservative: in doubt, a row is not fast.

What Arrow itself guarantees, and what is tested here (tests/engines/test_frame.py pins both):

- Arrow refuses the whole chunk for a value of the wrong JSON type (a number where a string
  goes, a string where an object goes), a malformed or non-finite number in a number column
  (``"12,34"``, ``NaN``), a number of more than 12 decimal places that are not trailing zeros
  or of 27 digits or more before the point, a key named twice in one object (at any depth), a
  lone surrogate, a raw control character in a string, and JSON syntax errors. A refused chunk
  is read again without the lines Arrow's message points at (the text of the number it could
  not take, the row it could not parse), a few times; then, if it is still refused, its lines
  are parsed one by one with :func:`~dealdesk.jsoncodec.loads_unique`, and the lines whose
  value Arrow could not take (or that do not parse) are left out. Left-out lines are not fast;
  the others are read as the frame (never halving). A wrong guess only costs speed.
- Arrow does *not* check UTF-8 (invalid bytes reach its strings), reads several objects on one
  line as several rows, takes a byte-order mark, reads a ``null`` line as a row of nulls (and
  crashes on a chunk of one ``null``, and on nesting some 20,000 deep): so only lines that
  start with ``{`` and end with ``}``, hold no other line break, are valid UTF-8 and have fewer
  than 1,000 opening brackets are given to Arrow at all, and a chunk read into another number
  of rows than lines it was given counts as refused.
- Keys outside the schema are read with ``unexpected_field_behavior="infer"``: such a column
  marks the rows where it is not null. Arrow reads a key whose value is ``null`` as absent, but
  ``prepare_deal`` refuses a derived fact given as ``null`` and ``unknown_fields`` names a
  ``null`` key inside a schema object: for those columns a row where the key may be written at
  all (its name is in the line, or the line has an escape) is not fast either. A top-level key
  that ``prepare_deal`` keeps quietly (neither a schema path nor a derived fact nor a near miss
  of a known key) only marks the rows where it is not null.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Context, Decimal
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from dealdesk import jsoncodec
from dealdesk.deal.schema import (
    DEFAULT_CURRENCY,
    DERIVED_PATHS,
    FRACTIONS,
    INPUT_FIELDS,
    ITEM_FIELDS,
    Field,
)
from dealdesk.deal.unknown import unknown_fields
from dealdesk.deal.validate import prepare_deal, prepared_object
from dealdesk.engines.columnar.exact import number_column
from dealdesk.engines.columnar.vector import Column
from dealdesk.money import minor_units
from dealdesk.rules.meaning import lookup

__all__ = ["SCHEMA", "Frame", "read_frame"]

#: Every number of the deal, exact: at most 12 places (MAX_PLACES) and 26 digits before the
#: point, more than the bound below 10**15 that the fast tests then check.
NUMBER = pa.decimal128(38, 12)
_SCALE = 12
# unscaled bounds: 10**15 (MAX_MAGNITUDE) and 1 (a fraction's maximum) at scale 12
_MAGNITUDE_UNSCALED = 10**27
_ONE_UNSCALED = 10**12
_MASK64 = (1 << 64) - 1

_LINES = "lines"
_LINE = "lines[]"
_SPLIT = "billing.requested_split"
_SUBSCRIPTION = "subscription"
# deeper than this (as counted by opening brackets), a line is not given to Arrow
_MAX_DEPTH = 1000


def _children(prefix: str) -> list[str]:
    """The direct child names of ``prefix`` among the input paths, in FIELDS order."""
    start = f"{prefix}." if prefix else ""
    return [
        path[len(start) :]
        for path in INPUT_FIELDS
        if path.startswith(start)
        and "." not in path[len(start) :]
        and "[" not in path[len(start) :]
    ]


def _arrow_type(path: str) -> pa.DataType:
    field = INPUT_FIELDS[path]
    if path == _LINES:
        return pa.list_(_struct(_LINE))
    if field.type == "array":  # billing.requested_split: numbers
        return pa.list_(NUMBER)
    if field.type == "object":
        return _struct(path)
    if field.type == "number":
        return NUMBER
    if field.type == "boolean":
        return pa.bool_()
    return pa.string()  # texts, enums, dates (checked here), the id


def _struct(prefix: str) -> pa.StructType:
    return pa.struct([(name, _arrow_type(f"{prefix}.{name}")) for name in _children(prefix)])


#: The Arrow schema of a deal (input fields only; derived facts are refused in the input).
SCHEMA = pa.schema([(name, _arrow_type(name)) for name in _children("")])

_READ_OPTIONS = pj.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="infer")
# what validation knows at the top level (a key there is looked up as a whole path)
_ROOT_KEYS = frozenset(INPUT_FIELDS) | frozenset(ITEM_FIELDS) | DERIVED_PATHS
_OBJECTS = frozenset(path for path, field in INPUT_FIELDS.items() if field.type == "object")
# the top-level keys whose absence a view answers from the frame, without preparing the deal
_OPTIONAL = frozenset(name for name in _children("") if name in _OBJECTS)


# ---------------------------------------------------------------------------------------------
# reading


def read_frame(texts: Sequence[bytes]) -> Frame:
    """A chunk of JSONL lines (each one deal, as :class:`~dealdesk.io.readers.SourceDeal` gives
    them in ``text``, with or without a line end) read into columns, with the rows the per-deal
    path need not see marked :attr:`Frame.fast`."""
    n = len(texts)
    lines: list[bytes] = [t.rstrip(b"\r\n") for t in texts]
    joined = b"\n".join(lines)
    candidate = _candidates(lines, joined)
    if not joined.isascii():
        try:
            joined.decode()
        except UnicodeDecodeError:
            candidate &= np.fromiter(map(_is_utf8, lines), dtype=bool, count=n)
    frame = Frame(texts, lines)
    rows = np.flatnonzero(candidate)
    table, rows = _read_around(lines, rows)
    if table is None and len(rows):
        rows = frame._arrow_rows(rows)
        table, _ = _read(lines, rows)
    if table is None:
        return frame
    if len(rows) != n:  # each row at its line; the others a row of nulls
        index = np.full(n, -1, dtype=np.int64)
        index[rows] = np.arange(len(rows))
        table = table.take(pa.array(index, mask=index < 0))
    taken = np.zeros(n, dtype=bool)
    taken[rows] = True
    try:
        frame._build(table, taken)
    except pa.ArrowException:  # a table Arrow itself cannot work with: every row per deal
        return Frame(texts, lines)
    return frame


def _candidates(lines: list[bytes], joined: bytes) -> np.ndarray:
    """The lines Arrow may be given: one object on a line (it starts with ``{`` and ends with
    ``}``), and no other line break that could shift the rows."""
    n = len(lines)
    lengths = np.fromiter(map(len, lines), dtype=np.intp, count=n)
    ends = np.cumsum(lengths + 1) - 1  # each line's line break (or the end)
    starts = ends - lengths
    data = np.frombuffer(joined + b"\n", dtype=np.uint8)
    found = (lengths > 0) & (data[starts] == ord("{")) & (data[ends - 1] == ord("}"))
    if np.count_nonzero(data == ord("\n")) != n or b"\r" in joined:
        found &= np.fromiter((b"\n" not in t and b"\r" not in t for t in lines), bool, count=n)
    # Arrow's parser recurses: nesting some 20,000 deep crashes the process. A line nested
    # _MAX_DEPTH deep has that many opening brackets and as many closing ones.
    for i in np.flatnonzero(found & (lengths >= 2 * _MAX_DEPTH)).tolist():
        line = lines[i]
        if line.count(b"[") + line.count(b"{") >= _MAX_DEPTH:
            found[i] = False
    return found


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode()
    except UnicodeDecodeError:
        return False
    return True


def _read(lines: list[bytes], rows: np.ndarray) -> tuple[pa.Table | None, str]:
    """Lines ``rows`` as one table; or None and why, when Arrow refuses them (or reads another
    number of rows)."""
    if not len(rows):
        return None, ""
    data = b"\n".join([lines[i] for i in rows.tolist()])
    try:
        table = pj.read_json(
            io.BytesIO(data),
            read_options=pj.ReadOptions(use_threads=False, block_size=max(1 << 20, len(data) + 1)),
            parse_options=_READ_OPTIONS,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        return None, str(exc)
    if table.num_rows != len(rows):
        return None, ""
    # Arrow can build an invalid array (a key outside the schema holding a list of a null,
    # then a text: the offsets pass the values): every table is checked in full (about
    # 0.2 µs a deal), and an invalid one is refused
    try:
        table.validate(full=True)
    except pa.ArrowInvalid:
        return None, ""
    return table.combine_chunks(), ""


# Arrow's words for a number it cannot take, and for a line it cannot parse
_REFUSED_NUMBER = re.compile(
    r"The string '(.+)' (?:is not a valid decimal128 number|cannot be represented as decimal128)"
    r"|Failed to convert JSON to decimal128\(38, 12\): (\S+) requires"
)
_REFUSED_ROW = re.compile(r"JSON parse error: .* in row (\d+)$")
# refusals traced to their lines before the lines are parsed one by one
_RETRIES = 3


def _refused(lines: list[bytes], rows: np.ndarray, message: str) -> np.ndarray | None:
    """Of ``rows``, the ones Arrow's ``message`` points at (a number's text, a row), or None
    when it points at none. Whatever it points at is merely not fast: a wrong guess costs
    speed, never correctness."""
    number = _REFUSED_NUMBER.search(message)
    if number is not None:
        token = (number.group(1) or number.group(2)).encode()
        hits = np.fromiter((token in lines[i] for i in rows.tolist()), dtype=bool, count=len(rows))
        return hits if hits.any() else None
    row = _REFUSED_ROW.search(message)
    if row is not None and int(row.group(1)) < len(rows):
        hits = np.zeros(len(rows), dtype=bool)
        hits[int(row.group(1))] = True
        return hits
    return None


def _read_around(lines: list[bytes], rows: np.ndarray) -> tuple[pa.Table | None, np.ndarray]:
    """Lines ``rows`` as one table, leaving out the lines Arrow's refusals point at (a few
    times at most); or None and the rows last tried."""
    table, message = _read(lines, rows)
    for _ in range(_RETRIES):
        if table is not None or not len(rows):
            break
        hits = _refused(lines, rows, message)
        if hits is None:
            break
        rows = rows[~hits]
        table, message = _read(lines, rows)
    return table, rows


# ---------------------------------------------------------------------------------------------
# what Arrow takes, for a refused chunk's lines one by one

_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PLACES = Decimal(1).scaleb(-_SCALE)
_ARROW_LIMIT = Decimal(10) ** 26
_WIDE = Context(prec=80)  # a number below 10**26 with 12 places, and more
_INT_LIMIT = 10**26
# what a value must be for an Arrow column of text, booleans or numbers (_taker's codes)
_TEXT, _BOOL, _NUMBER = "text", "bool", "number"


def _taker(kind: pa.DataType) -> Any:
    """The rule for a value of an Arrow type: a code, a struct's table, or a list's (rule,)."""
    if pa.types.is_struct(kind):
        return {kind.field(i).name: _taker(kind.field(i).type) for i in range(kind.num_fields)}
    if pa.types.is_list(kind):
        return (_taker(kind.value_type),)
    if pa.types.is_decimal(kind):
        return _NUMBER
    if pa.types.is_boolean(kind):
        return _BOOL
    return _TEXT


def _takes(value: Any, rule: Any) -> bool:
    """Whether Arrow reads the parsed ``value`` under ``rule`` (conservative: a value it might
    refuse is refused, and its line goes per deal)."""
    if value is None:
        return True
    if rule is _TEXT:
        return type(value) is str and (value.isascii() or _encodes(value))
    if rule is _NUMBER:
        return _takes_number(value)
    if rule is _BOOL:
        return value is True or value is False
    if type(rule) is dict:
        if type(value) is not dict:
            return False
        for key, item in value.items():
            inner = rule.get(key)
            if inner is None or not (item is None or _takes(item, inner)):
                return False
        return True
    inner = rule[0]
    return type(value) is list and all(_takes(item, inner) for item in value)


def _takes_number(value: Any) -> bool:
    kind = type(value)
    if kind is int:
        return -_INT_LIMIT < value < _INT_LIMIT
    if kind is str:
        if not _DECIMAL_TEXT.fullmatch(value):
            return False
        value = Decimal(value)
    elif kind is not Decimal:
        return False
    try:
        if not value.is_finite() or abs(value) >= _ARROW_LIMIT:
            return False
        return value.quantize(_PLACES, context=_WIDE) == value
    except ArithmeticError:
        return False


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


_ROOT_RULE = _taker(pa.struct(list(SCHEMA)))


# ---------------------------------------------------------------------------------------------
# the vectorised tests


def _valid(array: pa.Array) -> np.ndarray:
    """Where ``array`` is not null, from its validity bitmap."""
    nulls, n = array.null_count, len(array)
    if nulls == 0:
        return np.ones(n, dtype=bool)
    if nulls == n:
        return np.zeros(n, dtype=bool)
    bits = np.unpackbits(np.frombuffer(array.buffers()[0], dtype=np.uint8), bitorder="little")
    return bits[array.offset : array.offset + n].astype(bool)


def _offsets(array: pa.Array) -> np.ndarray:
    """A string or list array's n + 1 offsets (int32)."""
    start = array.offset
    return np.frombuffer(array.buffers()[1], dtype=np.int32)[start : start + len(array) + 1]


def _items(array: pa.ListArray) -> tuple[pa.Array, np.ndarray]:
    """A list array's items, in order, and each item's list (a null list has none to give:
    its items, if any, are attributed to it all the same)."""
    offsets = _offsets(array)
    first, last = int(offsets[0]), int(offsets[-1])
    items = array.values.slice(first, last - first)
    owners = np.repeat(np.arange(len(array), dtype=np.intp), np.diff(offsets))
    return items, owners


def _words(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A decimal128 array's unscaled values as (high int64, low uint64) words; a null's words
    are whatever the buffer holds (mask them)."""
    start, n = array.offset, len(array)
    buffer = array.buffers()[1]
    if buffer is None:  # no values at all
        zeros = np.zeros(n, dtype=np.uint64)
        return zeros.view(np.int64), zeros
    words = np.frombuffer(buffer, dtype=np.uint64)[2 * start : 2 * (start + n)]
    pairs = words.reshape(-1, 2)
    return pairs[:, 1].view(np.int64), pairs[:, 0]


def _split_words(value: int) -> tuple[np.int64, np.uint64]:
    """A 128-bit two's complement value's (high, low) words."""
    value &= (1 << 128) - 1
    high = value >> 64
    return np.int64(high - (1 << 64) if high >> 63 else high), np.uint64(value & _MASK64)


_TOP_HIGH, _TOP_LOW = _split_words(_MAGNITUDE_UNSCALED)
_BOTTOM_HIGH, _BOTTOM_LOW = _split_words(-_MAGNITUDE_UNSCALED)
_ONE_LOW = np.uint64(_ONE_UNSCALED)


# the kinds of number: never negative, a fraction of 1, signed (the split's parts)
_UNSIGNED, _FRACTION, _SIGNED = 0, 1, 2


def _kind_of(path: str) -> int:
    if path == f"{_SPLIT}[]":
        return _SIGNED
    return _FRACTION if path in FRACTIONS else _UNSIGNED


def _in_range(high: np.ndarray, low: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """Where numbers (their words) are within the bounds of their kind: below 10**15, never
    negative (the split's parts: above -10**15), a fraction at most 1."""
    below = (high < _TOP_HIGH) | ((high == _TOP_HIGH) & (low < _TOP_LOW))
    unsigned = below & (high >= 0)
    if not (kinds != _UNSIGNED).any():
        return unsigned
    fraction = (high == 0) & (low <= _ONE_LOW)
    signed = below & ((high > _BOTTOM_HIGH) | ((high == _BOTTOM_HIGH) & (low > _BOTTOM_LOW)))
    return np.where(kinds == _UNSIGNED, unsigned, np.where(kinds == _FRACTION, fraction, signed))


def _nonzero(array: pa.Array) -> np.ndarray:
    high, low = _words(array)
    return ((high != 0) | (low != 0)) & _valid(array)


def _date_ok(text: str) -> bool:
    # prepare_deal's rule (validate._iso_date): YYYY-MM-DD, a real date, kept as it is
    if len(text) != 10 or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        return False
    try:
        return dt.date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


def _currency_ok(code: str) -> bool:
    try:
        minor_units(code)
    except ValueError:
        return False
    return True


# The text checks, as bits of a value's properties: one bit per enum path (the value is one of
# its values), a valid date, a known currency, the subscription category.
_ENUM_PATHS = [path for path, field in INPUT_FIELDS.items() if field.enum is not None]
_ENUM_BIT = {path: 1 << index for index, path in enumerate(_ENUM_PATHS)}
_DATE_BIT = 1 << len(_ENUM_PATHS)
_CURRENCY_BIT = _DATE_BIT << 1
_SUBSCRIPTION_BIT = _CURRENCY_BIT << 1
_ENUM_BITS: dict[str, int] = {}
for _path in _ENUM_PATHS:
    for _value in INPUT_FIELDS[_path].enum or ():
        _ENUM_BITS[_value] = _ENUM_BITS.get(_value, 0) | _ENUM_BIT[_path]
# the properties of the texts seen (bounded: a batch repeats its enums, dates and currencies)
_PROPERTIES: dict[str, int] = {}
_PROPERTIES_MAX = 1 << 16


def _properties(text: str) -> int:
    found = _PROPERTIES.get(text)
    if found is None:
        found = _ENUM_BITS.get(text, 0)
        if _date_ok(text):
            found |= _DATE_BIT
        if _currency_ok(text):
            found |= _CURRENCY_BIT
        if text == _SUBSCRIPTION:
            found |= _SUBSCRIPTION_BIT
        if len(_PROPERTIES) < _PROPERTIES_MAX:
            _PROPERTIES[text] = found
    return found


@lru_cache(maxsize=256)
def _quiet(name: str) -> bool:
    """A top-level key prepare_deal keeps as it is and unknown_fields does not name."""
    return name not in _ROOT_KEYS and not unknown_fields({name: 0}, ())


class _Checks:
    """The fast tests of one table: ``bad`` per row, found walking the table against the
    schema. Texts to check are gathered and dictionary-encoded together, once."""

    def __init__(self, frame: Frame, table: pa.Table):
        self.frame = frame
        self.n = table.num_rows
        self.bad = np.zeros(self.n, dtype=bool)
        self.lines: pa.StructArray | None = None
        self.line_owners: np.ndarray | None = None
        self.line_fields: dict[str, pa.Array] = {}
        self.texts: list[tuple[pa.Array, int, np.ndarray | None]] = []
        self.text_properties = np.zeros(0, dtype=np.int64)
        self.numbers: list[tuple[pa.Array, int, np.ndarray | None]] = []

    def row_bad(self, bad: np.ndarray, parents: np.ndarray | None) -> None:
        if parents is None:
            self.bad |= bad
        elif bad.any():
            self.bad[parents[bad]] = True

    def ambiguous(self, name: str) -> np.ndarray:
        """The rows whose line may hold the key ``name`` (an escape may spell it)."""
        key = json.dumps(name, ensure_ascii=False).encode()
        lines = self.frame._lines
        return np.fromiter(
            ((key in line or b"\\" in line) for line in lines), dtype=bool, count=len(lines)
        )

    def extra(
        self, name: str, array: pa.Array, parent: np.ndarray, parents: np.ndarray | None, top: bool
    ) -> None:
        self.row_bad(_valid(array), parents)
        if top and _quiet(name):
            return
        # a null value reads as absent: wherever its parent is, the key may be there
        if parents is None:
            self.bad |= parent & self.ambiguous(name)
        else:
            rows = np.zeros(self.n, dtype=bool)
            rows[parents[parent]] = True
            self.bad |= rows & self.ambiguous(name)

    def walk(
        self, array: pa.StructArray, prefix: str, parents: np.ndarray | None
    ) -> dict[str, pa.Array]:
        """Test every field of the struct ``array`` (the objects at ``prefix``); ``parents``
        gives each element's row (None: element i is row i). Returns its fields, validity
        merged."""
        fields = dict(zip([f.name for f in array.type], array.flatten(), strict=True))
        return self.walk_fields(fields, _valid(array), prefix, parents)

    def walk_fields(
        self,
        fields: dict[str, pa.Array],
        parent: np.ndarray,
        prefix: str,
        parents: np.ndarray | None,
    ) -> dict[str, pa.Array]:
        """:meth:`walk` for the fields of an object, ``parent`` where the object is."""
        for name, child in fields.items():
            path = f"{prefix}.{name}" if prefix else name
            # a key with a dot is looked up as a whole path by validation: never fast
            field = None if "." in name or "[" in name else INPUT_FIELDS.get(path)
            if field is None:
                self.extra(name, child, parent, parents, top=not prefix)
            elif field.type == "object":
                self.walk(child, path, parents)
            elif path == _LINES:
                self.walk_lines(child)
            elif field.type == "array":
                self.walk_numbers(child, path, parents)
            elif field.type == "number":
                self.number(child, _kind_of(path), parents)
            elif field.type == "date":
                self.texts.append((child, _DATE_BIT, parents))
            elif path == "currency":
                self.texts.append((child, _CURRENCY_BIT, parents))
            elif field.enum is not None:
                self.texts.append((child, _ENUM_BIT[path], parents))
        return fields

    def number(self, array: pa.Array, kind: int, parents: np.ndarray | None) -> None:
        if array.null_count != len(array):
            self.numbers.append((array, kind, parents))

    def walk_numbers(self, child: pa.ListArray, path: str, parents: np.ndarray | None) -> None:
        items, owners = _items(child)
        if len(items):
            rows = owners if parents is None else parents[owners]
            self.row_bad(~_valid(items), rows)
            self.number(items, _kind_of(f"{path}[]"), rows)

    def check_numbers(self) -> None:
        """Every gathered number within its bounds, in one pass over their words."""
        numbers = self.numbers
        if not numbers:
            return
        words = [_words(a) for a, _, _ in numbers]
        high = np.concatenate([h for h, _ in words])
        low = np.concatenate([w for _, w in words])
        lengths = [len(a) for a, _, _ in numbers]
        kinds = np.repeat(np.array([k for _, k, _ in numbers], dtype=np.int8), lengths)
        valid = np.concatenate([_valid(a) for a, _, _ in numbers])
        bad = valid & ~_in_range(high, low, kinds)
        if bad.any():
            rows = np.concatenate(
                [np.arange(len(a)) if p is None else p for a, _, p in numbers]
            ).astype(np.intp)
            self.bad[rows[bad]] = True

    def walk_lines(self, child: pa.ListArray) -> None:
        items, owners = _items(child)
        self.lines, self.line_owners = items, owners
        if len(items):
            self.row_bad(~_valid(items), owners)
            self.line_fields = self.walk(items, _LINE, owners)

    def check_texts(self) -> None:
        """Every gathered text against its bit, from one dictionary of the chunk's texts."""
        texts = self.texts
        if not texts:
            return
        encoded = pc.dictionary_encode(pa.concat_arrays([a for a, _, _ in texts]))
        values = np.array(
            [_properties(v) for v in encoded.dictionary.to_pylist()] or [0], dtype=np.int64
        )
        indices = encoded.indices
        start, total = indices.offset, len(indices)
        codes = np.frombuffer(indices.buffers()[1], dtype=np.int32)[start : start + total]
        valid = _valid(indices)
        found = np.where(valid, values[np.where(valid, codes, 0)], 0)
        self.text_properties = found
        lengths = [len(a) for a, _, _ in texts]
        bits = np.repeat(np.array([bit for _, bit, _ in texts], dtype=np.int64), lengths)
        bad = valid & ((found & bits) == 0)
        if bad.any():
            rows = np.concatenate(
                [np.arange(len(a)) if p is None else p for a, _, p in texts]
            ).astype(np.intp)
            self.bad[rows[bad]] = True

    def check_lines(self, fields: dict[str, pa.Array]) -> None:
        """Required line fields, a cost on every line but subscription lines, a non-zero
        contract."""
        items, owners = self.lines, self.line_owners
        nonzero = np.zeros(self.n, dtype=bool)
        if items is not None and owners is not None and len(items):
            category = fields["category"]
            quantity, price, cost = fields["quantity"], fields["unit_price"], fields["unit_cost"]
            at = 0
            for array, _, _ in self.texts:
                if array is category:
                    break
                at += len(array)
            found = self.text_properties[at : at + len(category)]
            subscription = (found & _SUBSCRIPTION_BIT) != 0
            complete = (
                _valid(items)
                & _valid(category)
                & _valid(quantity)
                & _valid(price)
                & (_valid(cost) | subscription)
            )
            self.row_bad(~complete, owners)
            nonzero[owners[_nonzero(quantity) & _nonzero(price)]] = True
        self.bad |= ~nonzero

    def root(self, table: pa.Table) -> dict[str, pa.Array]:
        columns = [c.chunk(0) if c.num_chunks == 1 else c.combine_chunks() for c in table.columns]
        fields = dict(zip(table.column_names, columns, strict=True))
        self.walk_fields(fields, np.ones(self.n, dtype=bool), "", None)
        self.check_texts()
        self.check_numbers()
        self.check_lines(self.line_fields)
        ids, lines = fields["id"], fields[_LINES]
        self.bad |= ~_valid(ids) | (np.diff(_offsets(ids)) == 0)
        self.bad |= ~_valid(lines) | (np.diff(_offsets(lines)) == 0)
        return fields


# ---------------------------------------------------------------------------------------------
# the frame


class Frame:
    """A chunk's deals as columns; see :func:`read_frame`.

    :ivar n: the number of lines read.
    :ivar fast: per row, whether the per-deal path would find nothing to say (see the module).
    :ivar ids: each fast row's id (``prepare_deal``'s ``data["id"]``); None elsewhere.
    :ivar currencies: each fast row's currency (``USD`` when it has none); None elsewhere.
    :ivar owners: per line of the fast rows (in row order), its row.
    :ivar table: the Arrow table, a row per line (a row of nulls for a line Arrow was not
        given), or None when Arrow took no line.

    Columns, :meth:`present` and :meth:`view` speak for the fast rows; the others are the
    per-deal path's, from :meth:`raw`.
    """

    def __init__(self, texts: Sequence[bytes], lines: list[bytes]):
        self.n = len(texts)
        self._texts = texts
        self._lines = lines
        self.fast = np.zeros(self.n, dtype=bool)
        self.ids: list[Any] = [None] * self.n
        self.currencies: list[Any] = [None] * self.n
        self.owners = np.zeros(0, dtype=np.intp)
        self.table: pa.Table | None = None
        self._fields: dict[str, pa.Array] = {}
        self._line_fields: dict[str, pa.Array] = {}
        self._line_rows = np.zeros(0, dtype=np.intp)
        self._columns: dict[str, Column | None] = {}
        self._line_columns: dict[str, Column | None] = {}
        self._raw: dict[int, Any] = {}
        self._present: dict[str, np.ndarray] = {}

    # -- building

    def _arrow_rows(self, rows: np.ndarray) -> np.ndarray:
        """Of ``rows`` (Arrow refused them together), those whose parsed value Arrow takes."""
        kept = []
        for i in rows.tolist():
            try:
                value = self.raw(i)
            except Exception:  # not JSON, a repeated key, too deep: the per-deal path says so
                continue
            if _takes(value, _ROOT_RULE):
                kept.append(i)
        return np.array(kept, dtype=np.intp)

    def _build(self, table: pa.Table, taken: np.ndarray) -> None:
        checks = _Checks(self, table)
        fields = checks.root(table)
        fast = taken & ~checks.bad
        self.fast, self.table = fast, table
        self._fields = fields
        ids = fields["id"].to_pylist()
        currencies = fields["currency"].to_pylist()
        if fast.all():
            self.ids = ids
            self.currencies = [DEFAULT_CURRENCY if c is None else c for c in currencies]
        else:
            for i in np.flatnonzero(fast).tolist():
                self.ids[i] = ids[i]
                currency = currencies[i]
                self.currencies[i] = DEFAULT_CURRENCY if currency is None else currency
        owners = checks.line_owners
        if owners is not None and len(owners):
            keep = fast[owners]
            self._line_rows = np.flatnonzero(keep)
            self.owners = owners[keep]
            self._line_fields = checks.line_fields

    # -- columns

    def _field(self, path: str) -> pa.Array | None:
        """The array of a scalar input path over every row (parents' nulls merged)."""
        first, _, rest = path.partition(".")
        array = self._fields.get(first)
        for name in rest.split(".") if rest else ():
            if array is None or not pa.types.is_struct(array.type):
                return None
            index = array.type.get_field_index(name)
            if index < 0:
                return None
            array = array.flatten()[index]
        return array

    def array(self, path: str) -> pa.Array | None:
        """The Arrow array of a scalar input path (``offer.type``) over every row, its parents'
        nulls merged; None when the frame has no such array."""
        return self._field(path)

    def column(self, path: str) -> Column | None:
        """The value at ``path`` for every row (unknown where a row is not fast or has none);
        None when the frame cannot give that path as a column (a list, an object, a derived
        fact, a path outside the schema)."""
        if path in self._columns:
            return self._columns[path]
        column: Column | None = None
        if path == "id":
            column = Column(list(self.ids))
        elif path == "currency":
            column = Column(list(self.currencies))
        else:
            field = INPUT_FIELDS.get(path)
            if field is not None and field.type == "object" and "[]" not in path:
                # known where the object is there (exists(partner)); its values are the views'
                array = self._field(path)
                known = np.zeros(self.n, dtype=bool) if array is None else _valid(array)
                column = _ObjectColumn(self, path, known & self.fast)
            elif field is not None and field.type not in ("object", "array") and "[]" not in path:
                array = self._field(path)
                if array is None:  # no table: Arrow took no line
                    column = Column([None] * self.n)
                else:
                    column = self._column_of(array, field, self.fast)
        self._columns[path] = column
        return column

    def line_column(self, path: str) -> Column | None:
        """The value at ``path`` (``category`` or ``lines[].category``) of every line of every
        fast row, in row order (:attr:`owners` gives each line's row)."""
        name = path.removeprefix("lines[].")
        if name in self._line_columns:
            return self._line_columns[name]
        field = INPUT_FIELDS.get(f"lines[].{name}")
        array = self._line_fields.get(name)
        column: Column | None = None
        if field is not None and (array is not None or not self._line_fields):
            if array is None:  # no line at all
                column = Column([])
            else:
                rows = self._line_rows
                taken = array if len(rows) == len(array) else array.take(pa.array(rows))
                column = self._column_of(taken, field, np.ones(len(taken), dtype=bool))
        self._line_columns[name] = column
        return column

    @staticmethod
    def _column_of(array: pa.Array, field: Field, rows: np.ndarray) -> Column:
        if field.type == "number":
            return number_column(array, rows)
        values = array.to_pylist()
        if rows.all():
            return Column(values)
        return Column([v if ok else None for v, ok in zip(values, rows.tolist(), strict=True)])

    def present(self, key: str) -> np.ndarray:
        """Per row: the top-level ``key`` is in the deal, not null (for fast rows)."""
        found = self._present.get(key)
        if found is None:
            array = self._fields.get(key)
            found = np.zeros(self.n, dtype=bool) if array is None else _valid(array)
            self._present[key] = found
        return found

    def lacking(self, keys: Iterable[Any]) -> np.ndarray:
        """Per row: a fast row whose deal has none of the top-level ``keys``, as far as the
        columns tell (:meth:`DealView._quick`); False where only the deal could say."""
        mask = self.fast.copy()
        for key in keys:
            if key in _OPTIONAL:
                mask &= ~self.present(key)
            elif type(key) is not str or key in _ROOT_KEYS or key in self._fields:
                return np.zeros(self.n, dtype=bool)
        return mask

    # -- rows

    def raw(self, i: int) -> object:
        """Row ``i`` parsed as :func:`~dealdesk.io.readers._parse_line` parses it.

        :raises UnicodeDecodeError: the line is not UTF-8.
        :raises json.JSONDecodeError, DuplicateKey, RecursionError: as
            :func:`~dealdesk.jsoncodec.loads_unique`.
        """
        if i in self._raw:
            return self._raw[i]
        text = self._texts[i].decode().rstrip("\r\n")
        value = self._raw[i] = jsoncodec.loads_unique(text)
        return value

    def view(self, i: int) -> Mapping[str, Any]:
        """Row ``i`` as ``prepare_deal`` gives it (derived facts included), read-only; the
        deal is prepared on first use, but a fast row answers ``id`` and ``currency``, and
        ``get``/``in``/``[]`` for a key it does not have (a schema object such as ``billing``,
        by :meth:`present`; a key no line of the chunk has), without it.

        :raises ValueError: on use, for a row ``prepare_deal`` refuses (never a fast row).
        """
        return DealView(self, i)


_MISSING: Any = object()
_UNKNOWN: Any = object()


class DealView(Mapping[str, Any]):
    """A row of a :class:`Frame` as a read-only mapping equal to ``prepare_deal``'s data."""

    __slots__ = ("_data", "_frame", "_i", "_objects")

    def __init__(self, frame: Frame, i: int):
        self._frame = frame
        self._i = i
        self._data: dict[str, Any] | None = None
        self._objects: dict[str, Any] | None = None  # objects normalized alone, by key

    def _deal(self) -> dict[str, Any]:
        data = self._data
        if data is None:
            data, errors = prepare_deal(self._frame.raw(self._i), {})
            if data is None:
                raise ValueError(f"row {self._i} is not a valid deal: {errors[0].path}")
            self._data = data
        return data

    def _quick(self, key: object) -> Any:
        """``key``'s value when the frame knows it without the deal, :data:`_MISSING` when it
        knows the deal has no such key, else :data:`_UNKNOWN`."""
        frame, i = self._frame, self._i
        if self._data is not None or not frame.fast[i] or type(key) is not str:
            return _UNKNOWN
        if key == "id":
            return frame.ids[i]
        if key == "currency":
            return frame.currencies[i]
        if key in _OPTIONAL:
            if not frame.present(key)[i]:
                return _MISSING
            # an object the deal has (billing, for a plugin's enrich hook): normalized alone
            objects = self._objects
            if objects is None:
                objects = self._objects = {}
            found = objects.get(key, _MISSING)
            if found is _MISSING:
                raw = frame.raw(i)
                assert isinstance(raw, dict)  # a fast row is a deal
                found = objects[key] = prepared_object(raw, key)
            return _UNKNOWN if found is None else found
        # every key of a line given to Arrow is a column of the table (a null one too)
        if key not in _ROOT_KEYS and key not in frame._fields:
            return _MISSING
        return _UNKNOWN

    def __getitem__(self, key: str) -> Any:
        value = self._quick(key)
        if value is _MISSING:
            raise KeyError(key)
        return self._deal()[key] if value is _UNKNOWN else value

    def get(self, key: str, default: Any = None) -> Any:
        value = self._quick(key)
        if value is _MISSING:
            return default
        return self._deal().get(key, default) if value is _UNKNOWN else value

    def __contains__(self, key: object) -> bool:
        value = self._quick(key)
        if value is _MISSING:
            return False
        return key in self._deal() if value is _UNKNOWN else True

    def __iter__(self) -> Iterator[str]:
        return iter(self._deal())

    def __len__(self) -> int:
        return len(self._deal())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DealView):
            other = other._deal()
        return self._deal() == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"DealView({self._deal()!r})"


class _ObjectColumn(Column):
    """An object of the deal (``partner``) in every row: where it is there, for ``exists()``;
    the objects themselves (of a kind no vector compares) from the rows' views, if asked."""

    def __init__(self, frame: Frame, path: str, known: np.ndarray):
        # the frame caches its columns: a reference back would make a cycle, and a chunk's
        # frame (its Arrow table) would wait for the collector instead of going with the chunk
        self.frame = weakref.ref(frame)
        self.path = path
        self.known = known
        self.kind = "mixed" if known.any() else "none"
        self.filled = None

    @property
    def values(self) -> list[Any]:
        frame = self.frame()
        assert frame is not None, "a column is read while its chunk is decided"
        return [
            lookup(frame.view(i), self.path) if known else None
            for i, known in enumerate(self.known.tolist())
        ]
