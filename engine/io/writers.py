"""Writers: decision records → a stream, each record written as it arrives (SPEC §4, §6).

The same records always give the same bytes. JSON records are strict JSON (SPEC §9): a record
holding a NaN or an infinity is refused with :class:`~dealdesk.errors.NonFiniteNumber`, never
written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TextIO

from dealdesk import jsoncodec
from dealdesk.errors import NonFiniteNumber
from dealdesk.io.html import HtmlWriter
from dealdesk.io.summary import Summary, WriteContext, format_message

__all__ = [
    "WRITERS",
    "WriteContext",
    "CsvWriter",
    "HtmlWriter",
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


#: ``factory(stream, context)``: a built-in writer onto ``stream``; ``context`` (what the
#: policy set says about rules, approvers and outputs) may be ``None``.
WriterFactory = Callable[[TextIO, WriteContext | None], Writer]


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

    def __init__(self, stream: TextIO, context: WriteContext | None = None):
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

    def __init__(self, stream: TextIO, context: WriteContext | None = None):
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
    """One row per record, flat columns a spreadsheet can filter on, safe to open in one.

    Columns: :data:`COLUMNS` (lists joined by ``;``, messages by `` | ``, ``rulesets`` as
    ``name=version;...``), then ``POLICY.OUTPUT`` for each output the policy set declares
    (text as is, numbers and booleans as JSON, lists and objects as compact JSON, null empty),
    then ``other_outputs``: the outputs no column holds, as compact JSON
    ``{policy: {output: value}}`` (empty when there are none), so nothing is dropped. The
    columns come from the context, before the first row; without a context every output goes
    to ``other_outputs``.

    A cell that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return; OWASP's CSV injection advice) gets a leading ``'``;
    a plain number such as ``-5`` or ``-0.25`` stays as it is. In every cell (the deal id
    too), a control character other than a tab, a newline or a carriage return (an ANSI
    escape, a bidi override) is written as an escape (``\\x1b``), as the table does, so a file
    shown in a terminal can neither restyle it nor reorder what follows.

    :raises NonFiniteNumber: from ``write``, for an output that is NaN or an infinity.
    """

    COLUMNS = (
        "deal_id",
        "status",
        "approvals",
        "fired",
        "reasons",
        "errors",
        "flags",
        "rulesets",
        "digest",
        "dealdesk",
    )
    OTHER = "other_outputs"

    def __init__(self, stream: TextIO, context: WriteContext | None = None):
        self.stream = stream
        outputs = (context or WriteContext()).outputs
        declared = [f"{policy}.{name}" for policy, names in outputs.items() for name in names]
        stream.write(_csv_line([*self.COLUMNS, *declared, self.OTHER]))
        self.declared = {column: i for i, column in enumerate(declared)}

    def write(self, record: Mapping[str, Any]) -> None:
        """Write one record's row."""
        policies = record.get("policies") or {}
        fired = [
            f"{policy}:{rule}"
            for policy, result in policies.items()
            for rule in (result or {}).get("fired", ())
        ]
        provenance = record.get("provenance") or {}
        versions = provenance.get("rulesets") or {}
        values: list[str] = ["" for _ in self.declared]
        other: dict[str, dict[str, Any]] = {}
        for policy, result in policies.items():
            for name, value in ((result or {}).get("outputs") or {}).items():
                column = self.declared.get(f"{policy}.{name}")
                if column is not None:
                    values[column] = _cell_value(value, record, policy, name)
                else:
                    other.setdefault(policy, {})[name] = value
        row = [
            _text(record.get("deal_id")),
            _text(record.get("status")),
            ";".join(map(str, record.get("approvals") or ())),
            ";".join(fired),
            " | ".join(format_message(r) for r in record.get("reasons") or ()),
            " | ".join(format_message(e) for e in record.get("errors") or ()),
            " | ".join(format_message(f) for f in record.get("flags") or ()),
            ";".join(f"{name}={version}" for name, version in versions.items()),
            _text(provenance.get("digest")),
            _text(provenance.get("dealdesk")),
            *values,
            _encode_value(other, record, "policies") if other else "",
        ]
        self.stream.write(_csv_line([_neutralise(cell) for cell in row]))

    def close(self) -> None:
        """Nothing to finish: every row is complete."""


# what a spreadsheet reads as the start of a formula (OWASP, CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _csv_line(cells: list[str]) -> str:
    """One CSV row as the csv module writes it (quotes doubled, ``"\\n"`` ending it on every
    platform), except that a cell holding a carriage return is quoted too: the csv module
    leaves it bare when the line ends with ``"\\n"``, and a bare one breaks the row."""
    return ",".join(_quoted(cell) for cell in cells) + "\n"


def _quoted(cell: str) -> str:
    if any(special in cell for special in _CSV_SPECIAL):
        return '"' + cell.replace('"', '""') + '"'
    return cell


_CSV_SPECIAL = (",", '"', "\n", "\r")


# summary.printable's control characters, less the three a CSV cell may hold as text
_TERMINAL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
    "\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff]"
)


def _escape(match: re.Match[str]) -> str:
    # \uXXXX from DEL on: a JSON cell (other_outputs) stays JSON (it has C0 escaped already)
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x20 else f"\\u{code:04x}"


def _neutralise(cell: str) -> str:
    """``cell`` with its terminal control characters escaped, and a leading ``'`` when a
    spreadsheet would run it as a formula."""
    cell = _TERMINAL.sub(_escape, cell)
    if cell.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _cell_value(value: Any, record: Mapping[str, Any], policy: str, name: str) -> str:
    """An output as one cell: text as is, null empty, anything else as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _encode_value(value, record, f"policies.{policy}.outputs.{name}")


def _encode_value(value: Any, record: Mapping[str, Any], where: str) -> str:
    try:
        return jsoncodec.dumps(value)
    except NonFiniteNumber as exc:
        context = f"cannot write the record of deal {record.get('deal_id')!r}"
        path = f"{where}{'' if exc.path.startswith('[') else '.'}{exc.path}" if exc.path else where
        raise NonFiniteNumber(path, exc.value, context) from None


class TableWriter:
    """``--format table``: the batch's :class:`~dealdesk.io.summary.Summary`, written at the end.

    Counts per status, approvals per role, the top reasons by rule (with the rule's
    description) and the top errors; every value made :func:`~dealdesk.io.summary.printable`
    (no terminal escape codes from a deal id). No per-deal rows and no timing, so the same
    records give the same text; memory holds only the counters.
    """

    def __init__(self, stream: TextIO, context: WriteContext | None = None):
        self.stream = stream
        self.summary = Summary(context)

    def write(self, record: Mapping[str, Any]) -> None:
        """Count the record."""
        self.summary.add(record)

    def close(self) -> None:
        """Write the summary."""
        self.stream.write(self.summary.text())


WRITERS: dict[str, WriterFactory] = {
    "jsonl": JsonlWriter,
    "json": JsonWriter,
    "csv": CsvWriter,
    "table": TableWriter,
    "html": HtmlWriter,
}
