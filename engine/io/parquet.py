"""The Parquet reader (SPEC §2: nested columns; the optional extra ``dealdesk[parquet]``).

Rows become deals as their JSON text would: structs are mappings, lists (``lines``) lists,
decimal columns exact ``Decimal``s, float columns the ``Decimal`` of their shortest text
(``0.18``, not the binary fraction), dates and timestamps ISO 8601 text, and a null is an
absent field. The file is read a batch of rows at a time, so memory stays bounded by one row
group. pyarrow is imported only when a Parquet file is read.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any, BinaryIO

from dealdesk.io.readers import SourceDeal

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["BATCH_ROWS", "read_parquet_stream"]

#: Rows converted at a time.
BATCH_ROWS = 1024

Convert = Callable[[Any], Any]


def read_parquet_stream(stream: BinaryIO, name: str) -> Iterator[SourceDeal]:
    """The deals of a Parquet file open for reading, one per row, named ``name[ROW]``.

    A file pyarrow cannot read gives one error (``deals.parquet: not a readable Parquet
    file: ...``) after the rows read before it.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = 0
    try:
        batches = pq.ParquetFile(stream).iter_batches(batch_size=BATCH_ROWS)
        columns: list[tuple[str, Convert | None]] | None = None
        for batch in batches:
            if columns is None:
                columns = [(f.name, _converter(f.type)) for f in batch.schema]
            values = [
                _convert_all(convert, batch.column(index).to_pylist())
                for index, (_, convert) in enumerate(columns)
            ]
            names = [column for column, _ in columns]
            for cells in zip(*values, strict=True):
                deal = {
                    key: cell for key, cell in zip(names, cells, strict=True) if cell is not None
                }
                yield SourceDeal(f"{name}[{row}]", deal)
                row += 1
    except (pa.ArrowException, OSError) as exc:
        where = f"{name}[{row}]" if row else name
        yield SourceDeal(where, None, f"{where}: not a readable Parquet file: {exc}")


def _convert_all(convert: Convert | None, cells: list[Any]) -> list[Any]:
    if convert is None:
        return cells
    return [None if cell is None else convert(cell) for cell in cells]


def _converter(kind: pa.DataType) -> Convert | None:
    """How to turn a value of this Arrow type (as pyarrow gives it) into a deal's value; ``None``
    when it is one already (text, integers, booleans, decimals)."""
    import pyarrow as pa

    types = pa.types
    if types.is_struct(kind):
        return _struct(
            [(kind.field(i).name, _converter(kind.field(i).type)) for i in range(kind.num_fields)]
        )
    if types.is_map(kind):
        return _map(_converter(kind.key_type), _converter(kind.item_type))
    if types.is_list(kind) or types.is_large_list(kind) or types.is_fixed_size_list(kind):
        item = _converter(kind.value_type)
        return None if item is None else _list(item)
    if types.is_dictionary(kind):
        return _converter(kind.value_type)
    if types.is_float32(kind):
        return _float32
    if types.is_floating(kind):  # float16 and float64: Python's repr is their shortest text
        return _float
    if types.is_date(kind) or types.is_timestamp(kind) or types.is_time(kind):
        return _iso
    return None


def _struct(fields: list[tuple[str, Convert | None]]) -> Convert:
    def struct_value(value: dict[str, Any]) -> dict[str, Any]:
        result = {}
        for key, convert in fields:
            item = value[key]
            if item is not None:  # a null is an absent field
                result[key] = item if convert is None else convert(item)
        return result

    return struct_value


def _map(key: Convert | None, item: Convert | None) -> Convert:
    def map_value(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
        return {
            k if key is None else key(k): v if v is None or item is None else item(v)
            for k, v in pairs
        }

    return map_value


def _list(item: Convert) -> Convert:
    def list_value(values: list[Any]) -> list[Any]:
        return [None if value is None else item(value) for value in values]

    return list_value


def _float(value: float) -> Decimal | float:
    # a NaN or an infinity stays a float, as JSON text would give it: validation refuses it
    return Decimal(repr(value)) if math.isfinite(value) else value


def _float32(value: float) -> Decimal | float:
    """The shortest text that reads back as the same 32-bit float (``0.1``, not
    ``0.10000000149011612``), as a ``Decimal``."""
    if not math.isfinite(value):
        return value
    packed = struct.pack("<f", value)
    for digits in range(1, 10):  # 9 significant digits always round-trip a float32
        text = f"{value:.{digits}g}"
        if struct.pack("<f", float(text)) == packed:
            return Decimal(text)
    return Decimal(repr(value))


def _iso(value: dt.date | dt.time) -> str:
    return value.isoformat()
