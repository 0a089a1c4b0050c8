"""Readers: deal files → :class:`SourceDeal`, one per deal, in file order (SPEC §2).

Readers stream and account for every input record (SPEC §9): a line, row or document that
cannot be read (undecodable bytes, broken syntax, a repeated key, a record past
:data:`MAX_RECORD_BYTES`) becomes a ``SourceDeal`` with ``error`` set, naming its file and line,
and reading goes on with the next record. JSON is parsed by
:func:`dealdesk.jsoncodec.loads_unique`: numbers with a fraction are exact ``Decimal``s.
:func:`read_deals` gives a :class:`DealReader`, which also says how much of the input is read.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import itertools
import json
import os
import re
import sys
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from dealdesk import jsoncodec
from dealdesk.deal.schema import FIELDS
from dealdesk.errors import DuplicateKey, PluginError, UsageError
from dealdesk.io import suffix_key

__all__ = [
    "MAX_RECORD_BYTES",
    "READERS",
    "DealReader",
    "Reader",
    "SourceDeal",
    "read_csv",
    "read_deals",
    "read_json",
    "read_jsonl",
    "read_jsonl_stream",
    "read_parquet",
    "read_yaml",
]

#: The most one record may take: a JSONL line (not counting its newline) or a CSV row. Far more
#: than any real deal (one with 1,500 lines is about 300 KB); a longer one is an invalid record.
MAX_RECORD_BYTES = 32 * 1024 * 1024
_LIMIT_TEXT = f"{MAX_RECORD_BYTES // (1024 * 1024)} MiB"


@dataclass
class SourceDeal:
    """One deal as read from its source, before validation.

    :ivar source: where it came from: ``deals.jsonl:3`` (line), ``deals.csv:4`` (the row's first
        line), ``deals.yaml:12`` (the document's or list item's first line), ``deals.json`` or
        ``deals.json[2]`` (index in a top-level list), ``deals.parquet[7]`` (row), ``<stdin>:3``.
    :ivar deal: the parsed value (normally a mapping; anything else fails validation), or
        ``None`` when it could not be parsed (or is not parsed yet: see ``text``).
    :ivar error: why it could not be parsed (``deals.jsonl:3: invalid JSON: ...``), else ``None``.
    :ivar plugin: the plugin whose reader failed, when that is why it could not be parsed.
    :ivar text: the raw JSONL line when it is not parsed yet (``read_deals(..., lazy=True)``),
        for a worker process to parse with :meth:`parsed`; else ``None``.
    :ivar deal_id: the deal's id when it could not be parsed but its id could be read (a CSV
        row whose ``id`` cell is fine but whose ``lines`` cell is not JSON), for its ``invalid``
        record; else ``None``.
    """

    source: str
    deal: object
    error: str | None = None
    plugin: str | None = None
    text: bytes | None = None
    deal_id: str | None = None

    def parsed(self) -> SourceDeal:
        """This deal parsed: itself when ``text`` is ``None``, else a ``SourceDeal`` with the
        ``deal`` or ``error`` the eager reader would have given."""
        if self.text is None:
            return self
        return _parse_line(self.source, self.text)


Reader = Callable[[Path], Iterator[SourceDeal]]


def _json_error(where: str, exc: json.JSONDecodeError) -> str:
    return f"{where}: invalid JSON: {exc.msg} at column {exc.colno}"


def read_json(path: Path) -> Iterator[SourceDeal]:
    """Read a ``.json`` file holding one deal (an object) or a list of deals.

    Numbers with a fraction are parsed as ``Decimal`` so money stays exact. The whole file is
    parsed at once (JSON has no record boundaries); use JSONL for very large books. In a list,
    an item with a repeated key is an error on its own; a syntax error costs the file.
    """
    with path.open("rb") as stream:
        yield from _read_json_stream(stream, str(path))


def _read_json_stream(stream: BinaryIO, name: str) -> Iterator[SourceDeal]:
    try:
        text = stream.read().decode("utf-8-sig")
        value = jsoncodec.loads_unique(text)
    except UnicodeDecodeError as exc:
        yield SourceDeal(name, None, f"{name}: not valid UTF-8 at byte {exc.start}")
        return
    except json.JSONDecodeError as exc:
        yield SourceDeal(name, None, _json_error(f"{name}:{exc.lineno}", exc))
        return
    except RecursionError:
        yield SourceDeal(name, None, f"{name}: invalid JSON: nested too deeply")
        return
    except DuplicateKey as exc:
        if not exc.path or not isinstance(exc.path[0], int):
            yield SourceDeal(name, None, f"{name}: {exc}")
            return
        # a list: each item with a repeated key is invalid, the others are read
        value = jsoncodec.loads(text)
        repeated: dict[int, DuplicateKey] = {}
        for found in jsoncodec.duplicate_keys(text):
            index = found.path[0]
            assert isinstance(index, int)
            repeated.setdefault(index, DuplicateKey(found.key, found.path[1:]))
        for index, item in enumerate(value):
            source = f"{name}[{index}]"
            if index in repeated:
                yield SourceDeal(source, None, f"{source}: {repeated[index]}")
            else:
                yield SourceDeal(source, item)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield SourceDeal(f"{name}[{index}]", item)
    else:
        yield SourceDeal(name, value)


# -- JSONL --------------------------------------------------------------------------------------


def _parse_line(source: str, line: str | bytes) -> SourceDeal:
    """One JSONL line (not blank) as the eager reader gives it."""
    if isinstance(line, bytes):
        try:
            line = line.decode()
        except UnicodeDecodeError as exc:
            return SourceDeal(source, None, f"{source}: not valid UTF-8 at column {exc.start + 1}")
    line = line.rstrip("\r\n")  # so an error's column is on this line, not the next
    try:
        return SourceDeal(source, jsoncodec.loads_unique(line))
    except json.JSONDecodeError as exc:
        return SourceDeal(source, None, _json_error(source, exc))
    except RecursionError:
        return SourceDeal(source, None, f"{source}: invalid JSON: nested too deeply")
    except DuplicateKey as exc:
        return SourceDeal(source, None, f"{source}: {exc}")


def _is_blank(line: str | bytes) -> bool:
    """Whether a line holds no deal: what ``str.strip()`` would leave empty (Unicode spaces too).

    A line that is not UTF-8 is not blank: it is an invalid record.
    """
    if isinstance(line, bytes):
        if not line.strip():
            return True
        try:
            line = line.decode()
        except UnicodeDecodeError:
            return False
    return not line or line.isspace()


def _oversized(line: str | bytes) -> bool:
    """Whether a line holds more than :data:`MAX_RECORD_BYTES`, not counting its line end."""
    size = len(line)
    if size <= MAX_RECORD_BYTES:
        return False
    if size == MAX_RECORD_BYTES + 1:
        return line[-1:] not in ("\n", b"\n")
    return size > MAX_RECORD_BYTES + 2 or line[-2:] not in ("\r\n", b"\r\n")


_BOM = codecs.BOM_UTF8


def _jsonl(
    lines: Iterable[str | bytes],
    name: str,
    lazy: bool = False,
    skip_rest: Callable[[], None] | None = None,
) -> Iterator[SourceDeal]:
    """The deals of JSON Lines; ``skip_rest`` reads past the end of a line cut at the limit."""
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_RECORD_BYTES and _oversized(line):
            if skip_rest is not None and line[-1:] not in ("\n", b"\n"):
                skip_rest()  # the rest of this line, not held
            source = f"{name}:{number}"
            yield SourceDeal(
                source,
                None,
                f"{source}: the line is longer than {_LIMIT_TEXT}, the limit for one deal",
            )
            continue
        if number == 1:  # a byte-order mark some editors write
            line = (
                line.removeprefix(_BOM) if isinstance(line, bytes) else line.removeprefix("\ufeff")
            )
        if lazy and isinstance(line, bytes):
            # the parent only splits lines; a worker parses (SourceDeal.parsed)
            if line[:1] != b"{" and _is_blank(line):
                continue
            yield SourceDeal(f"{name}:{number}", None, text=line)
            continue
        if isinstance(line, bytes):
            try:
                line = line.decode()
            except UnicodeDecodeError as exc:
                source = f"{name}:{number}"
                yield SourceDeal(
                    source, None, f"{source}: not valid UTF-8 at column {exc.start + 1}"
                )
                continue
        line = line.rstrip("\r\n")
        if not line or line.isspace():  # what line.strip() would leave empty, without the copy
            continue
        yield _parse_line(f"{name}:{number}", line)


def read_jsonl_stream(
    lines: Iterable[str | bytes], name: str, *, lazy: bool = False
) -> Iterator[SourceDeal]:
    """Read JSON Lines from ``lines`` (text or bytes), naming each deal ``name:LINE``.

    Blank lines are skipped; a line that is not JSON (or not UTF-8, or repeats a key, or is longer
    than :data:`MAX_RECORD_BYTES`) becomes an error and reading goes on with the next line. A
    stream with ``readline`` is read a bounded piece at a time, so an endless line costs no more
    memory than the limit.

    :param lazy: give each line of bytes unparsed (``text``), for :meth:`SourceDeal.parsed`.
    """
    readline = getattr(lines, "readline", None)
    if readline is None:
        yield from _jsonl(lines, name, lazy)
        return
    read_piece = functools.partial(readline, MAX_RECORD_BYTES + 2)  # with a CRLF
    first = read_piece()
    if not first:
        return
    end = first[:0]  # "" or b"": what readline gives at the end of this stream

    def skip_rest() -> None:
        while True:  # the rest of the line, a piece at a time
            piece = read_piece()
            if not piece or piece[-1:] in ("\n", b"\n"):
                return

    pieces = itertools.chain((first,), iter(read_piece, end))
    yield from _jsonl(pieces, name, lazy, skip_rest)


def read_jsonl(path: Path) -> Iterator[SourceDeal]:
    """Read a ``.jsonl`` file: one deal per line, streamed."""
    with path.open("rb") as stream:
        yield from read_jsonl_stream(stream, str(path))


@functools.cache
def _yaml_loader() -> type[Any]:
    """The YAML loader class, made on the first YAML file read (PyYAML is imported then)."""
    import yaml

    # libyaml's parser when present (several times faster); both only build plain Python values.
    safe_loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class _YamlLoader(safe_loader):
        """Safe loading, but a scalar that looks like a date or an integer and is not one stays
        readable.

        PyYAML raises a bare ``ValueError`` for ``close: 2026-13-01`` (month 13) or an integer of
        more than 4300 digits, which would cost the whole document. Kept as the text (the date)
        or a ``Decimal`` (the integer), the deal is read and ``validate_deal`` names the field.

        A key written twice in one mapping is an error (PyYAML keeps the last one silently), as
        it is in JSON; keys a merge (``<<``) brings may be overridden, as YAML means them to.
        """

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
            seen: set[tuple[str, str]] = set()
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep)

        def construct_yaml_timestamp(self, node: yaml.Node) -> object:
            try:
                return super().construct_yaml_timestamp(node)
            except ValueError:
                return self.construct_scalar(node)

        def construct_yaml_int(self, node: yaml.Node) -> object:
            try:
                return super().construct_yaml_int(node)
            except ValueError:
                text = str(self.construct_scalar(node))
                try:
                    return Decimal(text.replace("_", ""))
                except ArithmeticError:
                    return text

    _YamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _YamlLoader.construct_yaml_timestamp)
    _YamlLoader.add_constructor("tag:yaml.org,2002:int", _YamlLoader.construct_yaml_int)
    return _YamlLoader


def _yaml_error(name: str, exc: Exception, fallback_line: int, offset: int = 0) -> tuple[str, str]:
    """The source (``file:line``) and message of a YAML error, at the line of its mark.

    :param offset: lines of the file before the text the parser was given.
    """
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        source = f"{name}:{fallback_line}"
        return source, f"{source}: invalid YAML: {problem}"
    source = f"{name}:{offset + mark.line + 1}"
    return source, f"{source}: invalid YAML: {problem} at column {mark.column + 1}"


def _yaml_marker(line: bytes) -> bytes:
    """``b"---"`` or ``b"..."`` when ``line`` is a document marker (at column 0), else ``b""``."""
    head = line[:3]
    if (head == b"---" or head == b"...") and line[3:4] in (b"", b" ", b"\t", b"\r", b"\n"):
        return head
    return b""


def _yaml_documents(lines: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Split a YAML stream into its documents: (first line number, bytes) of each.

    A document starts at a ``---`` line and ends at a ``...`` line or where the next starts
    (YAML's own rule: markers are at column 0, and no scalar may hold one); directives and
    comments before a ``---`` stay with it. Pieces without content are left out.
    """
    piece: list[bytes] = []
    start = 1
    content = False  # whether piece has more than directives, comments and blank lines
    for number, line in enumerate(lines, 1):
        marker = _yaml_marker(line)
        if marker == b"---" and content:
            yield start, b"".join(piece)
            piece, start, content = [], number, False
        piece.append(line)
        if marker == b"...":
            if content:
                yield start, b"".join(piece)
            piece, start, content = [], number + 1, False
        elif not content:
            if marker:  # "---", maybe with the document's first value on the same line
                content = bool(line[3:].split(b"#", 1)[0].strip())
            else:
                content = line[:1] not in (b"%", b"#") and bool(line.strip())
    if content:
        yield start, b"".join(piece)


def read_yaml(path: Path) -> Iterator[SourceDeal]:
    """Read a ``.yaml``/``.yml`` file: one deal, a list of deals, or several ``---`` documents.

    Safe loading only (plain data, no Python objects). Each deal is named by the line where its
    document or list item starts; empty documents are skipped. The stream is split into
    documents at their ``---``/``...`` lines and each is parsed alone, so a syntax error or an
    undecodable byte costs only its document (one invalid record, at the line of the error), and
    a document that parses but cannot be built too. An impossible date (``2026-13-01``) stays
    text, so only that deal is invalid, with the field named.
    """
    with path.open("rb") as stream:
        yield from _read_yaml_stream(stream, str(path))


def _read_yaml_stream(stream: BinaryIO, name: str) -> Iterator[SourceDeal]:
    first = stream.readline()
    lines: Iterable[bytes]
    if first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # YAML may be UTF-16 (rare): read it whole, then split it as UTF-8
        data = first + stream.read()
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            yield SourceDeal(name, None, f"{name}: not valid UTF-16 at byte {exc.start}")
            return
        lines = io.BytesIO(text.encode("utf-8", "surrogatepass"))
    else:
        lines = _chain_line(first.removeprefix(_BOM), stream)
    for start, piece in _yaml_documents(lines):
        yield from _yaml_piece(name, start, piece)


def _chain_line(first: bytes, rest: Iterable[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _yaml_piece(name: str, start: int, data: bytes) -> Iterator[SourceDeal]:
    """The deals of one document of a stream, ``data``, which starts at line ``start``."""
    import yaml

    from dealdesk.yaml_aliases import check_aliases

    offset = start - 1
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = start + data.count(b"\n", 0, exc.start)
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        source = f"{name}:{line}"
        yield SourceDeal(source, None, f"{source}: not valid UTF-8 at column {column}")
        return
    loader = _yaml_loader()(text)
    line = start
    try:
        while True:
            try:
                if not loader.check_node():
                    return
                node = loader.get_node()
            except yaml.YAMLError as exc:
                source, message = _yaml_error(name, exc, line, offset)
                yield SourceDeal(source, None, message)
                return
            line = offset + node.start_mark.line + 1
            try:
                check_aliases(node)
                value = loader.construct_document(node)
            except (yaml.YAMLError, ValueError) as exc:
                # construct_document resets its caches only on success.
                loader.constructed_objects, loader.recursive_objects = {}, {}
                loader.state_generators, loader.deep_construct = [], False
                source, message = _yaml_error(name, exc, line, offset)
                yield SourceDeal(source, None, message)
                continue
            if value is None:
                continue
            if isinstance(value, list) and isinstance(node, yaml.SequenceNode):
                for item_node, item in zip(node.value, value, strict=True):
                    yield SourceDeal(f"{name}:{offset + item_node.start_mark.line + 1}", item)
            else:
                yield SourceDeal(f"{name}:{line}", value)
    finally:
        loader.dispose()


# Columns whose cells are JSON even when they do not look like it ("lines" always does).
_JSON_COLUMNS = frozenset(
    path for path, f in FIELDS.items() if f.type in ("array", "object") and not f.derived
)
# Known text columns keep "true"/"false" as text; only boolean and unknown columns convert.
_TEXT_COLUMNS = frozenset(
    path for path, f in FIELDS.items() if f.type in ("string", "date", "number") and not f.derived
)


def _cell_value(column: str, cell: str) -> object:
    """Turn one CSV cell into a value: JSON for JSON columns, booleans, else the text itself."""
    stripped = cell.strip()
    if column in _JSON_COLUMNS or (column not in _TEXT_COLUMNS and stripped[:1] in ("[", "{")):
        try:
            return jsoncodec.loads_unique(stripped)
        except DuplicateKey as exc:
            raise ValueError(str(DuplicateKey(exc.key, (column, *exc.path)))) from None
        except json.JSONDecodeError as exc:
            if column in _JSON_COLUMNS:
                raise ValueError(
                    f"column {column!r}: invalid JSON: {exc.msg} at column {exc.colno}"
                ) from None
            return cell  # an unknown text column that merely starts with a bracket
    if column not in _TEXT_COLUMNS and stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    return cell


def _put(deal: dict[str, Any], column: str, value: object) -> None:
    """Store ``value`` at the dotted ``column`` path, building nested mappings."""
    *parents, leaf = column.split(".")
    target = deal
    for depth, part in enumerate(parents):
        child = target.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(
                f"column {column!r} conflicts with column {'.'.join(parents[: depth + 1])!r}"
            )
        target = child
    if leaf in target:
        raise ValueError(f"column {column!r} conflicts with another column for the same field")
    target[leaf] = value


def _row_to_deal(header: Sequence[str], row: Sequence[str]) -> dict[str, Any]:
    if len(row) > len(header) and any(cell.strip() for cell in row[len(header) :]):
        raise ValueError(f"the row has {len(row)} cells but the header has {len(header)} columns")
    deal: dict[str, Any] = {}
    for column, cell in zip(header, row, strict=False):
        if not cell.strip():
            continue  # an empty cell is an absent field
        if not column:
            raise ValueError("a value under a column without a name")
        _put(deal, column, _cell_value(column, cell))
    return deal


def _row_id(header: Sequence[str], row: Sequence[str]) -> str | None:
    """The id a row's ``id`` cell gives the deal (as its record would name a valid deal), when
    the rest of the row cannot be read; ``None`` when there is no such cell or it is unusable."""
    from dealdesk.deal.validate import deal_id_of  # only for a row that cannot be read

    index = header.index("id") if "id" in header else len(row)
    if index >= len(row) or not row[index].strip() or _UNDECODABLE.search(row[index]):
        return None  # an empty cell is an absent field
    try:
        return deal_id_of({"id": _cell_value("id", row[index])})
    except ValueError:
        return None


# What the csv module may hold of one cell (process-wide, raised to this when lower): above any
# row :class:`_CsvLines` lets through, so the csv module never stops inside a cell of ours.
_CSV_FIELD_LIMIT = 4 * MAX_RECORD_BYTES
# What the utf-8 decoder's surrogateescape handler makes of a byte that is not UTF-8.
_UNDECODABLE = re.compile("[\udc80-\udcff]")


def _undecodable(header: Sequence[str], row: Sequence[str]) -> str | None:
    """Why a row (decoded with ``surrogateescape``) is not valid UTF-8, else ``None``."""
    for index, cell in enumerate(row):
        found = None if cell.isascii() else _UNDECODABLE.search(cell)
        if found:
            column = header[index] if index < len(header) else f"#{index + 1}"
            byte = ord(found.group()) - 0xDC00
            return f"not valid UTF-8 in column {column!r} (byte 0x{byte:02x})"
    return None


# Where :func:`_csv_row_end` is in a row, as the csv module's default dialect reads it.
_CELL_START, _UNQUOTED, _QUOTED, _QUOTE_IN_QUOTED = range(4)


def _csv_scan(piece: str, state: int) -> tuple[int, bool]:
    """Where a row is after ``piece`` (a line, or part of one), and whether the row ends in it.

    As the csv module's default dialect reads: a quote opens a quoted cell only at the start of a
    cell; inside one, ``""`` is a quote and a quote before anything else closes it (what follows
    it goes on unquoted); a line end outside a quoted cell ends the row. A piece from
    ``readline`` holds a line end only at its end.
    """
    at, size = 0, len(piece)
    while at < size:
        if state == _QUOTED:
            at = piece.find('"', at)
            if at < 0:
                return _QUOTED, False
            state, at = _QUOTE_IN_QUOTED, at + 1
            continue
        char = piece[at]
        if char in "\r\n":
            return state, True
        if state == _UNQUOTED:
            comma = piece.find(",", at)
            if comma < 0:  # the rest of the line is this cell's
                return _UNQUOTED, piece[-1] in "\r\n"
            state, at = _CELL_START, comma + 1
            continue
        # at the start of a cell, or after a quote in a quoted one
        state = _QUOTED if char == '"' else _CELL_START if char == "," else _UNQUOTED
        at += 1
    return state, False


def _csv_row_end(pieces: Iterator[str], quoted: bool, piece_size: int) -> tuple[int, str | None]:
    """Read past the rest of a CSV row, a piece at a time, holding only the piece being looked at.

    :param pieces: ``readline`` pieces of at most ``piece_size`` characters, from the start of a
        line: the row's first line, or one inside a quoted cell (``quoted``) when the row started
        on an earlier line.
    :returns: the lines the row spans from that line on, and the piece after the row when it had
        to be read (to see whether a CRLF cut in two at ``piece_size`` goes on with its LF).
    """
    state = _QUOTED if quoted else _CELL_START
    lines, last = 0, "\n"
    for piece in pieces:
        if last == "\n" or (last == "\r" and piece[0] != "\n"):
            lines += 1  # a new line (not more of the last one, nor the LF of its CRLF)
        state, ended = _csv_scan(piece, state)
        if ended:
            split_crlf = piece[-1] == "\r" and len(piece) == piece_size
            del piece
            after = next(pieces, "") if split_crlf else "\n"
            return lines, (None if after in ("", "\n") else after)
        last = piece[-1]
        del piece  # not held while the next one is read
    return lines, None  # the end of the file


class _CsvLines:
    """The lines of CSV text for :func:`csv.reader`, read a bounded piece at a time, without the
    rows longer than :data:`MAX_RECORD_BYTES` (not counting a row's last line end).

    Such a row is read past here (:func:`_csv_row_end`), never held, and the csv module gets one
    line in its place that ends its row at once (``\\n``, or ``"\\n`` that closes the quoted cell
    it is in): the row it gives for that is not the file's, which :attr:`cut` says. The reader
    sets :attr:`size` to 0 before asking for each row; the csv module asks for another line of
    the same row only inside a quoted cell.

    :ivar size: the characters of the row being read given to the csv module so far.
    :ivar cut: whether the row the csv module gave last stands for a row past the limit.
    :ivar hidden: the lines read past that the csv module did not count (its ``line_num`` plus
        this is the file's line).
    """

    def __init__(self, text: IO[str], limit: int):
        self._piece_size = limit + 2  # with a CRLF
        self._read = functools.partial(text.readline, self._piece_size)
        self._limit = limit
        self.size = 0
        self.cut = False
        self.hidden = 0

    def __iter__(self) -> Iterator[str]:
        limit = self._limit
        pieces: Iterator[str] = iter(self._read, "")
        while True:
            for line in pieces:
                size = self.size + len(line)
                if size <= limit or size - _line_end(line) <= limit:
                    self.size = size
                    yield line
                    continue
                quoted = self.size > 0  # the csv module is inside a quoted cell
                rest = itertools.chain((line,), pieces)
                del line  # held by rest only until the next piece is read
                lines, after = _csv_row_end(rest, quoted, self._piece_size)
                self.cut = True
                self.hidden += lines - 1
                yield '"\n' if quoted else "\n"
                if after is not None:
                    pieces = itertools.chain((after,), iter(self._read, ""))
                    break
            else:
                return


def _line_end(line: str) -> int:
    """How many characters of ``line`` are its line end."""
    if line[-1:] == "\n":
        return 2 if line[-2:] == "\r\n" else 1
    return 1 if line[-1:] == "\r" else 0


def read_csv(path: Path) -> Iterator[SourceDeal]:
    """Read a ``.csv`` file: one deal per row, named by the line where the row starts.

    Dotted column names (``customer.region``) build nested mappings; ``lines``,
    ``billing.requested_split`` and unknown columns whose cells look like JSON are parsed as JSON;
    ``true``/``false`` in boolean (and unknown) columns become booleans; numbers stay text for
    :func:`~dealdesk.deal.validate.validate_deal` to parse exactly; empty cells are absent fields.
    A row with bytes that are not UTF-8, or longer than :data:`MAX_RECORD_BYTES` characters (not
    counting its last line end; read past a piece at a time, never held, however long a cell),
    is an error on its own, and reading goes on with the next row.
    """
    with path.open("rb") as stream:
        yield from _read_csv_stream(stream, str(path))


def _read_csv_stream(stream: BinaryIO, name: str) -> Iterator[SourceDeal]:
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)  # process-wide; 131,072 would refuse large deals
    # surrogateescape: a byte that is not UTF-8 spoils its row only, found below
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    lines = _CsvLines(text, MAX_RECORD_BYTES)
    rows = csv.reader(lines)
    too_long = f"the row is longer than {_LIMIT_TEXT}, the limit for one deal"
    try:
        header = [column.strip() for column in next(rows)]
    except StopIteration:
        return
    except csv.Error as exc:
        yield SourceDeal(f"{name}:1", None, f"{name}:1: unreadable CSV header: {exc}")
        return
    duplicates = sorted({c for c in header if c and header.count(c) > 1})
    header_error = f"column {duplicates[0]!r} appears twice in the header" if duplicates else None
    if not all(map(str.isascii, header)) and _undecodable(header, header):
        header_error = "the header is not valid UTF-8"
    if lines.cut:
        lines.cut = False
        header_error = f"the header is longer than {_LIMIT_TEXT}, the limit for one row"
    start = rows.line_num + lines.hidden + 1
    while True:
        source = f"{name}:{start}"
        lines.size = 0
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            # not met: the default dialect is not strict, and no row given to the csv module
            # holds a cell past its limit; after one, where the next row starts is not known
            yield SourceDeal(
                source, None, f"{source}: unreadable CSV: {exc}; the rest of the file is not read"
            )
            return
        if lines.cut:  # not the row: it was read past
            lines.cut = False
            start = rows.line_num + lines.hidden + 1
            yield SourceDeal(source, None, f"{source}: {too_long}")  # not looked into
            continue
        start = rows.line_num + lines.hidden + 1
        if not any(cell.strip() for cell in row):
            continue  # a blank line is not a deal
        if header_error:
            yield SourceDeal(source, None, f"{source}: {header_error}")
            continue
        problem = None if all(map(str.isascii, row)) else _undecodable(header, row)
        if problem is not None:
            yield SourceDeal(source, None, f"{source}: {problem}", deal_id=_row_id(header, row))
            continue
        try:
            yield SourceDeal(source, _row_to_deal(header, row))
        except ValueError as exc:
            yield SourceDeal(source, None, f"{source}: {exc}", deal_id=_row_id(header, row))


def read_parquet(path: Path) -> Iterator[SourceDeal]:
    """Read a ``.parquet`` file: one deal per row, named ``deals.parquet[ROW]`` (needs pyarrow:
    ``pip install 'dealdesk[parquet]'``); see :mod:`dealdesk.io.parquet`."""
    with path.open("rb") as stream:
        yield from _read_parquet_stream(stream, str(path))


def _read_parquet_stream(stream: BinaryIO, name: str) -> Iterator[SourceDeal]:
    from dealdesk.io.parquet import read_parquet_stream

    # type checkers that see this file and the installed package apart take the two
    # SourceDeal classes for different ones
    return cast(Iterator[SourceDeal], read_parquet_stream(stream, name))


READERS: dict[str, Reader] = {
    ".json": read_json,
    ".jsonl": read_jsonl,
    ".yaml": read_yaml,
    ".yml": read_yaml,
    ".csv": read_csv,
    ".parquet": read_parquet,
}

# The built-in readers on an open file, so DealReader can say how far into it reading is.
_ON_STREAM: dict[Reader, Callable[[BinaryIO, str], Iterator[SourceDeal]]] = {
    read_json: _read_json_stream,
    read_jsonl: read_jsonl_stream,
    read_yaml: _read_yaml_stream,
    read_csv: _read_csv_stream,
    read_parquet: _read_parquet_stream,
}

# Readers that need an optional extra: the module they import and how to install it.
_EXTRAS: dict[Reader, tuple[str, str]] = {read_parquet: ("pyarrow.parquet", "dealdesk[parquet]")}


def _importable(module: str) -> bool:
    """Whether ``module`` imports (a reader about to read needs it anyway)."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _plan(
    paths: Sequence[str], readers: Mapping[str, Reader]
) -> list[tuple[Path, Reader, int] | None]:
    """Resolve every path to (file, reader, size), ``None`` standing for stdin, before reading.

    :raises UsageError: a missing or unreadable path, an unknown suffix, a directory without
        deal files, a file whose reader needs an extra that is not installed.
    """
    known = ", ".join(sorted(readers))
    plan: list[tuple[Path, Reader, int] | None] = []
    for raw in paths:
        if raw == "-":
            plan.append(None)
            continue
        path = Path(raw)
        if path.is_dir():
            files = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and suffix_key(p.suffix) in readers
                # hidden files and folders (.git, editor backups) are not deals
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not files:
                raise UsageError(f"{raw}: no deal files ({known}) in this directory")
        elif path.exists():
            if suffix_key(path.suffix) not in readers:
                suffix = path.suffix or "(no suffix)"
                raise UsageError(f"{raw}: unknown deal file type {suffix!r}; known: {known}")
            files = [path]
        else:
            raise UsageError(f"{raw}: no such file or directory")
        for file in files:
            if not os.access(file, os.R_OK):
                raise UsageError(f"{file}: cannot read the file (permission denied)")
            reader = readers[suffix_key(file.suffix)]
            extra = _EXTRAS.get(reader)
            if extra is not None and not _importable(extra[0]):
                raise UsageError(
                    f"{file}: reading {file.suffix} files needs {extra[0].partition('.')[0]}: "
                    f"pip install '{extra[1]}'"
                )
            plan.append((file, reader, file.stat().st_size))
    return plan


def _guarded(label: str, items: Iterable[Any]) -> Iterator[SourceDeal]:
    """Yield a reader's deals; wrap plain values (plugin readers) and turn a crash into an error."""
    index = 0  # deals yielded so far
    try:
        # enumerate counts in C; index is only read when a reader fails
        for index, item in enumerate(items, 1):
            yield (
                item if isinstance(item, SourceDeal) else SourceDeal(f"{label}[{index - 1}]", item)
            )
    except UsageError:
        raise
    except OSError as exc:
        raise UsageError(f"{label}: cannot read: {exc.strerror or exc}") from exc
    except PluginError as exc:
        # a plugin reader (wrapped by the manager): the message names the plugin already
        after = f"after {index} deal{'' if index == 1 else 's'}"
        yield SourceDeal(label, None, f"{label} ({after}): {exc}", plugin=exc.plugin)
    except Exception as exc:
        # A reader bug or odd file costs that file's remaining deals, never the batch.
        yield SourceDeal(
            label, None, f"{label}: reader failed after {index} deals: {type(exc).__name__}: {exc}"
        )


class DealReader:
    """Every deal of some paths, in order, as :class:`SourceDeal`; made by :func:`read_deals`.

    Iterate it once. Every path is checked when it is made. It also says how far reading is, for
    a progress bar: :attr:`bytes_read` of :attr:`bytes_total`.

    :ivar bytes_total: the size of every input file together; ``None`` when standard input is
        read (its size is not known).
    """

    def __init__(
        self,
        paths: Sequence[str],
        readers: Mapping[str, Reader] | None = None,
        stdin: IO[Any] | None = None,
        *,
        lazy: bool = False,
    ):
        table = {
            suffix_key(suffix): reader
            for suffix, reader in (READERS if readers is None else readers).items()
        }
        self._plan = _plan(paths, table)
        self._stdin = stdin
        self._lazy = lazy
        self.bytes_total: int | None = (
            None if None in self._plan else sum(e[2] for e in self._plan if e is not None)
        )
        self._done = 0  # bytes of the files finished
        self._stream: IO[bytes] | None = None  # the file being read by a built-in reader
        self._size = 0  # its size
        self._deals = self._read()

    @property
    def bytes_read(self) -> int:
        """Bytes of the input files read so far: the files finished and, when a built-in reader
        reads one now, its position (where its buffered stream is)."""
        stream = self._stream
        if stream is None:
            return self._done
        try:
            return self._done + min(stream.tell(), self._size)
        except (OSError, ValueError):  # closed meanwhile
            return self._done

    def __iter__(self) -> Iterator[SourceDeal]:
        return self._deals

    def __next__(self) -> SourceDeal:
        return next(self._deals)

    def close(self) -> None:
        """Stop reading and close the file being read (when the deals are not all wanted)."""
        self._deals.close()

    def _read(self) -> Generator[SourceDeal, None, None]:
        for entry in self._plan:
            if entry is None:
                stream = self._stdin if self._stdin is not None else sys.stdin
                # Read bytes when we can, so one line that is not UTF-8 does not end the batch.
                lines = getattr(stream, "buffer", stream)
                yield from _guarded("<stdin>", read_jsonl_stream(lines, "<stdin>", lazy=self._lazy))
                continue
            file, reader, size = entry
            on_stream = _ON_STREAM.get(reader)
            if on_stream is None:  # a plugin's reader
                yield from _guarded(str(file), reader(file))
            else:
                yield from _guarded(str(file), self._read_file(file, size, on_stream))
            self._done += size

    def _read_file(
        self, file: Path, size: int, read: Callable[..., Iterator[SourceDeal]]
    ) -> Iterator[SourceDeal]:
        with file.open("rb") as stream:
            self._stream, self._size = stream, size
            try:
                if self._lazy and read is read_jsonl_stream:
                    yield from read_jsonl_stream(stream, str(file), lazy=True)
                else:
                    yield from read(stream, str(file))
            finally:
                self._stream = None


def read_deals(
    paths: Sequence[str],
    readers: Mapping[str, Reader] | None = None,
    stdin: IO[Any] | None = None,
    *,
    lazy: bool = False,
) -> DealReader:
    """Every deal of ``paths`` in order, as :class:`SourceDeal` (a :class:`DealReader`).

    A directory gives its files with a known suffix, recursively, sorted by path, skipping hidden
    files and folders; ``-`` reads JSONL from ``stdin`` (``sys.stdin`` by default). Every path is
    checked here, before any deal is read.

    :param paths: files, directories or ``-``.
    :param readers: suffix (``".json"`` or ``"json"``) → reader; :data:`READERS` by default. A
        reader may yield :class:`SourceDeal` or plain values (named ``file[INDEX]``).
    :param lazy: JSONL (files and stdin) is only split into lines, each given unparsed
        (``text`` set) for :meth:`SourceDeal.parsed` to parse, in a worker process; a line over
        the size limit is still found here. Other readers parse as usual.
    :raises UsageError: a missing or unreadable path, an unknown suffix, a directory without deal
        files, a ``.parquet`` file without pyarrow installed (exit status 2).
    """
    return DealReader(paths, readers, stdin, lazy=lazy)
