"""Writers: decision records → a stream, each record written as it arrives (SPEC §4, §6).

The same records always give the same bytes. JSON records are strict JSON (SPEC §9): a record
holding a NaN or an infinity is refused with :class:`~dealdesk.errors.NonFiniteNumber`, never
written.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TextIO

from dealdesk import jsoncodec
from dealdesk.errors import NonFiniteNumber

__all__ = [
    "WRITERS",
    "CsvWriter",
    "JsonWriter",
    "JsonlWriter",
    "TableWriter",
    "Writer",
    "WriterFactory",
    "format_message",
]


class Writer(Protocol):
    """Consumes decision records one at a time; ``close`` finishes the output (not the stream)."""

    def write(self, record: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


WriterFactory = Callable[[TextIO], Writer]


def format_message(item: object) -> str:
    """One line for a reason, flag or error: ``path: message`` (``message`` without a path).

    The one formatting of a record's errors used by writers, ``dealdesk explain`` and
    ``dealdesk test``; accepts a mapping (``{"path", "message"}``) or a plain string.
    """
    if isinstance(item, Mapping):
        message = str(item.get("message", ""))
        path = item.get("path")
        return f"{path}: {message}" if path else message
    return str(item)


def _encode(record: Mapping[str, Any], *, indent: bool) -> str:
    """The record as JSON text (see :func:`dealdesk.jsoncodec.dumps`); NaN names the deal."""
    try:
        return jsoncodec.dumps(record, indent=indent)
    except NonFiniteNumber as exc:
        context = f"cannot write the record of deal {record.get('deal_id')!r}"
        raise NonFiniteNumber(exc.path, exc.value, context) from None


class JsonlWriter:
    """One compact JSON object per line, keys in the record's order, UTF-8 text as is.

    :raises NonFiniteNumber: from ``write``, for a record that holds NaN or an infinity.
    """

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, record: Mapping[str, Any]) -> None:
        """Write one record as one line."""
        self.stream.write(_encode(record, indent=False) + "\n")

    def close(self) -> None:
        """Nothing to finish: every line is complete."""


class JsonWriter:
    """A JSON array indented by 2, written record by record (the same text as ``json.dumps(records, indent=2)``).

    :raises NonFiniteNumber: from ``write``, for a record that holds NaN or an infinity.
    """

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.count = 0

    def write(self, record: Mapping[str, Any]) -> None:
        """Write one element of the array."""
        text = _encode(record, indent=True)
        # JSON escapes newlines inside strings, so every line break here is structure.
        self.stream.write(("[\n" if self.count == 0 else ",\n") + "  " + text.replace("\n", "\n  "))
        self.count += 1

    def close(self) -> None:
        """Close the array (``[]`` when no record was written)."""
        self.stream.write("\n]\n" if self.count else "[]\n")


class CsvWriter:
    """One row per record: deal_id, status, approvals, fired rules, reasons, errors."""

    COLUMNS = ("deal_id", "status", "approvals", "fired", "reasons", "errors")

    def __init__(self, stream: TextIO):
        # "\n" whatever the platform, so the same records give the same bytes everywhere.
        self.writer = csv.writer(stream, lineterminator="\n")
        self.writer.writerow(self.COLUMNS)

    def write(self, record: Mapping[str, Any]) -> None:
        """Write one row: lists joined by ``;`` (fired as ``policy:RULE``), messages by `` | ``."""
        policies = record.get("policies") or {}
        fired = [
            f"{policy}:{rule}"
            for policy, result in policies.items()
            for rule in (result or {}).get("fired", ())
        ]
        self.writer.writerow(
            (
                record.get("deal_id") or "",
                record.get("status") or "",
                ";".join(record.get("approvals") or ()),
                ";".join(fired),
                " | ".join(format_message(r) for r in record.get("reasons") or ()),
                " | ".join(format_message(e) for e in record.get("errors") or ()),
            )
        )

    def close(self) -> None:
        """Nothing to finish: every row is complete."""


class TableWriter:
    """A readable summary: one line per deal as it arrives, then counts and the top reasons.

    ``D-1001        needs_approval  deal_desk, vp_finance``; an invalid deal shows its errors.
    Memory holds only the counters, not the records.
    """

    STATUSES = ("approved", "needs_approval", "rejected", "invalid")
    TOP = 10

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.statuses: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def write(self, record: Mapping[str, Any]) -> None:
        """Print the deal's line and count its status and reasons."""
        status = str(record.get("status") or "")
        self.statuses[status] += 1
        if status == "invalid":
            detail = "; ".join(format_message(e) for e in record.get("errors") or ())
        else:
            detail = ", ".join(record.get("approvals") or ())
        deal_id = str(record.get("deal_id") or "-")
        self.stream.write(f"{deal_id:<12}  {status:<14}  {detail}".rstrip() + "\n")
        for reason in record.get("reasons") or ():
            # Count by rule and message shape: amounts differ from deal to deal, and one rule
            # id (a decision table) can give different reasons
            message = format_message(reason)
            rule = (
                f"{reason.get('policy', '')} {reason.get('rule', '')}".strip()
                if isinstance(reason, Mapping)
                else ""
            )
            key = f"{rule}  {_DIGITS.sub('#', message)}" if rule else message
            self.reasons[key] += 1
            self.examples.setdefault(key, f"{rule}  {message}" if rule else message)

    def close(self) -> None:
        """Print the counts per status and the most frequent reasons."""
        total = sum(self.statuses.values())
        order = [*self.STATUSES, *sorted(set(self.statuses) - set(self.STATUSES))]
        counts = ", ".join(
            f"{self.statuses[s]} {s}" for s in order if s in self.STATUSES or self.statuses[s]
        )
        out = [f"\n{total} deal{'' if total == 1 else 's'}: {counts}\n"]
        top = sorted(self.reasons.items(), key=lambda item: (-item[1], item[0]))[: self.TOP]
        if top:
            width = len(str(top[0][1]))
            out.append("\nTop reasons:\n")
            for key, count in top:
                out.append(f"  {count:>{width}}  {self.examples[key]}\n")
        self.stream.write("".join(out))


_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")

WRITERS: dict[str, WriterFactory] = {
    "jsonl": JsonlWriter,
    "json": JsonWriter,
    "csv": CsvWriter,
    "table": TableWriter,
}
