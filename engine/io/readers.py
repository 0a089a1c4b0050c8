"""Readers: deal files → :class:`SourceDeal`, one per deal, in file order (SPEC §2).

Readers stream, and a line, row or document that cannot be parsed becomes a ``SourceDeal`` with
``error`` set, so the batch still gives one record per input deal (SPEC §9). JSON is parsed by
:func:`dealdesk.jsoncodec.loads`: numbers with a fraction are exact ``Decimal``s.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from dealdesk import jsoncodec
from dealdesk.deal.schema import FIELDS
from dealdesk.errors import PluginError, UsageError
from dealdesk.io import suffix_key

__all__ = [
    "READERS",
    "Reader",
    "SourceDeal",
    "read_csv",
    "read_deals",
    "read_json",
    "read_jsonl",
    "read_jsonl_stream",
    "read_yaml",
]


@dataclass
class SourceDeal:
    """One deal as read from its source, before validation.

    :ivar source: where it came from: ``deals.jsonl:3`` (line), ``deals.csv:4`` (the row's first
        line), ``deals.yaml:12`` (the document's or list item's first line), ``deals.json`` or
        ``deals.json[2]`` (index in a top-level list), ``<stdin>:3``.
    :ivar deal: the parsed value (normally a mapping; anything else fails validation), or
        ``None`` when it could not be parsed.
    :ivar error: why it could not be parsed (``deals.jsonl:3: invalid JSON: ...``), else ``None``.
    :ivar plugin: the plugin whose reader failed, when that is why it could not be parsed.
    """

    source: str
    deal: object
    error: str | None = None
    plugin: str | None = None

    def parsed(self) -> SourceDeal:
        """This deal, parsed (readers here parse as they read)."""
        return self


Reader = Callable[[Path], Iterator[SourceDeal]]


def _json_error(where: str, exc: json.JSONDecodeError) -> str:
    return f"{where}: invalid JSON: {exc.msg} at column {exc.colno}"


def read_json(path: Path) -> Iterator[SourceDeal]:
    """Read a ``.json`` file holding one deal (an object) or a list of deals.

    Numbers with a fraction are parsed as ``Decimal`` so money stays exact. The whole file is
    parsed at once (JSON has no record boundaries); use JSONL for very large books.
    """
    name = str(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
        value = jsoncodec.loads(text)
    except UnicodeDecodeError as exc:
        yield SourceDeal(name, None, f"{name}: not valid UTF-8 at byte {exc.start}")
        return
    except json.JSONDecodeError as exc:
        yield SourceDeal(name, None, _json_error(f"{name}:{exc.lineno}", exc))
        return
    except RecursionError:
        yield SourceDeal(name, None, f"{name}: invalid JSON: nested too deeply")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield SourceDeal(f"{name}[{index}]", item)
    else:
        yield SourceDeal(name, value)


def read_jsonl_stream(lines: Iterable[str | bytes], name: str) -> Iterator[SourceDeal]:
    """Read JSON Lines from ``lines`` (text or bytes), naming each deal ``name:LINE``.

    Blank lines are skipped; a line that is not JSON (or not UTF-8) becomes an error and reading
    goes on with the next line.
    """
    loads = jsoncodec.loads
    for number, line in enumerate(lines, 1):
        if isinstance(line, bytes):
            try:
                line = line.decode()
            except UnicodeDecodeError as exc:
                source = f"{name}:{number}"
                yield SourceDeal(
                    source, None, f"{source}: not valid UTF-8 at column {exc.start + 1}"
                )
                continue
        if number == 1:
            line = line.removeprefix("\ufeff")  # a byte-order mark some editors write
        line = line.rstrip("\r\n")  # so an error's column is on this line, not the next
        if not line or line.isspace():  # what line.strip() would leave empty, without the copy
            continue
        source = f"{name}:{number}"
        try:
            yield SourceDeal(source, loads(line))
        except json.JSONDecodeError as exc:
            yield SourceDeal(source, None, _json_error(source, exc))
        except RecursionError:
            yield SourceDeal(source, None, f"{source}: invalid JSON: nested too deeply")


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
        """

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


def _yaml_error(name: str, exc: Exception, fallback_line: int) -> tuple[str, str]:
    """The source (``file:line``) and message of a YAML error, at the line of its mark."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        source = f"{name}:{fallback_line}"
        return source, f"{source}: invalid YAML: {problem}"
    source = f"{name}:{mark.line + 1}"
    return source, f"{source}: invalid YAML: {problem} at column {mark.column + 1}"


def read_yaml(path: Path) -> Iterator[SourceDeal]:
    """Read a ``.yaml``/``.yml`` file: one deal, a list of deals, or several ``---`` documents.

    Safe loading only (plain data, no Python objects). Each deal is named by the line where its
    document or list item starts; empty documents are skipped. A syntax error ends the file (the
    parser cannot resynchronize); a document that parses but cannot be built becomes an error and
    reading goes on with the next document. An impossible date (``2026-13-01``) stays text, so
    only that deal is invalid, with the field named.
    """
    import yaml

    from dealdesk.yaml_aliases import check_aliases

    name = str(path)
    with path.open("rb") as stream:
        loader = _yaml_loader()(stream)
        line = 1
        try:
            while True:
                try:
                    if not loader.check_node():
                        return
                    node = loader.get_node()
                except yaml.YAMLError as exc:
                    source, message = _yaml_error(name, exc, line)
                    yield SourceDeal(source, None, message)
                    return
                line = node.start_mark.line + 1
                try:
                    check_aliases(node)
                    value = loader.construct_document(node)
                except (yaml.YAMLError, ValueError) as exc:
                    # construct_document resets its caches only on success.
                    loader.constructed_objects, loader.recursive_objects = {}, {}
                    loader.state_generators, loader.deep_construct = [], False
                    source, message = _yaml_error(name, exc, line)
                    yield SourceDeal(source, None, message)
                    continue
                if value is None:
                    continue
                if isinstance(value, list) and isinstance(node, yaml.SequenceNode):
                    for item_node, item in zip(node.value, value, strict=True):
                        yield SourceDeal(f"{name}:{item_node.start_mark.line + 1}", item)
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
            return jsoncodec.loads(stripped)
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


def read_csv(path: Path) -> Iterator[SourceDeal]:
    """Read a ``.csv`` file: one deal per row, named by the line where the row starts.

    Dotted column names (``customer.region``) build nested mappings; ``lines``,
    ``billing.requested_split`` and unknown columns whose cells look like JSON are parsed as JSON;
    ``true``/``false`` in boolean (and unknown) columns become booleans; numbers stay text for
    :func:`~dealdesk.deal.validate.validate_deal` to parse exactly; empty cells are absent fields.
    """
    name = str(path)
    with path.open(encoding="utf-8-sig", newline="") as stream:
        rows = csv.reader(stream)
        try:
            header = [column.strip() for column in next(rows)]
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            yield SourceDeal(f"{name}:1", None, f"{name}:1: unreadable CSV header: {exc}")
            return
        duplicates = sorted({c for c in header if c and header.count(c) > 1})
        header_error = (
            f"column {duplicates[0]!r} appears twice in the header" if duplicates else None
        )
        start = rows.line_num + 1
        while True:
            source = f"{name}:{start}"
            try:
                row = next(rows)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                # The csv module cannot reliably resume after a malformed record.
                yield SourceDeal(source, None, f"{source}: unreadable CSV: {exc}")
                return
            start = rows.line_num + 1
            if not any(cell.strip() for cell in row):
                continue  # a blank line is not a deal
            if header_error:
                yield SourceDeal(source, None, f"{source}: {header_error}")
                continue
            try:
                yield SourceDeal(source, _row_to_deal(header, row))
            except ValueError as exc:
                yield SourceDeal(source, None, f"{source}: {exc}")


READERS: dict[str, Reader] = {
    ".json": read_json,
    ".jsonl": read_jsonl,
    ".yaml": read_yaml,
    ".yml": read_yaml,
    ".csv": read_csv,
}


def _plan(paths: Sequence[str], readers: Mapping[str, Reader]) -> list[tuple[Path, Reader] | None]:
    """Resolve every path to (file, reader), ``None`` standing for stdin, before reading any.

    :raises UsageError: a missing or unreadable path, an unknown suffix, a directory without
        deal files.
    """
    known = ", ".join(sorted(readers))
    plan: list[tuple[Path, Reader] | None] = []
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
            plan.append((file, readers[suffix_key(file.suffix)]))
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


def read_deals(
    paths: Sequence[str],
    readers: Mapping[str, Reader] | None = None,
    stdin: IO[Any] | None = None,
) -> Iterator[SourceDeal]:
    """Yield every deal of ``paths`` in order, as :class:`SourceDeal`.

    A directory gives its files with a known suffix, recursively, sorted by path, skipping hidden
    files and folders; ``-`` reads JSONL from ``stdin`` (``sys.stdin`` by default). Every path is
    checked before the first deal is read.

    :param paths: files, directories or ``-``.
    :param readers: suffix (``".json"`` or ``"json"``) → reader; :data:`READERS` by default. A
        reader may yield :class:`SourceDeal` or plain values (named ``file[INDEX]``).
    :raises UsageError: a missing or unreadable path, an unknown suffix, a directory without deal
        files (exit status 2).
    """
    table = {
        suffix_key(suffix): reader
        for suffix, reader in (READERS if readers is None else readers).items()
    }
    for entry in _plan(paths, table):
        if entry is None:
            stream = stdin if stdin is not None else sys.stdin
            # Read bytes when we can, so one line that is not UTF-8 does not end the batch.
            lines = getattr(stream, "buffer", stream)
            yield from _guarded("<stdin>", read_jsonl_stream(lines, "<stdin>"))
        else:
            file, reader = entry
            yield from _guarded(str(file), reader(file))
