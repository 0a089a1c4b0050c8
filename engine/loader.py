"""YAML with positions: safe loading that remembers where every value came from.

Ruleset errors must read ``file:line:col``; PyYAML's safe loader forgets positions once it has
built Python values, so :func:`load_yaml` composes the node tree itself and records the start
of every value under its path (``("rules", 0, "when")``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from dealdesk.errors import Location, RulesetError

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Span:
    """Where a value starts, and how its text is quoted (to place errors inside a string)."""

    line: int
    column: int
    style: str | None = (
        None  # None for plain scalars, '"' or "'" when quoted, '|' or '>' for blocks
    )


@dataclass
class Document:
    """One parsed YAML document and the position of each value in it."""

    file: str
    data: Any
    spans: dict[Path, Span] = field(default_factory=dict)

    def location(self, path: Path, offset: tuple[int, int] | None = None) -> Location:
        """The location of the value at ``path`` (or of its nearest located parent).

        ``offset`` is a (line, column) position inside a string value, 1-based line within
        the string and 0-based column, used to point into an expression.
        """
        while path not in self.spans and path:
            path = path[:-1]
        span = self.spans.get(path, Span(1, 1))
        if offset is None:
            return Location(self.file, span.line, span.column)
        line, col = offset
        if span.style in ("|", ">"):
            return Location(self.file, span.line + line, col + 1)
        quote = 1 if span.style in ('"', "'") else 0
        if line > 1:
            return Location(self.file, span.line + line - 1, col + 1)
        return Location(self.file, span.line, span.column + quote + col)


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps ISO dates as strings (the deal and ruleset models use strings)."""

    def construct_iso_date(self, node: yaml.ScalarNode) -> str:
        return _iso(self.construct_yaml_timestamp(node))


# A date in a ruleset or deal is compared and printed as ISO text; keep it as text.
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_iso_date)


def _iso(value: dt.date | dt.datetime) -> str:
    return value.isoformat()


def load_yaml(text: str, file: str) -> Document:
    """Parse one YAML document from ``text``; syntax errors become located RulesetErrors."""
    documents = list(load_yaml_documents(text, file))
    if not documents:
        return Document(file, None)
    if len(documents) > 1:
        raise RulesetError("expected one YAML document, found several", Location(file, 1, 1))
    return documents[0]


def load_yaml_documents(text: str, file: str) -> Iterator[Document]:
    """Parse every ``---`` document in ``text`` in order, with positions."""
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            doc = Document(file, None)
            doc.data = _construct(loader, node, (), doc.spans, file)
            yield doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        raise RulesetError(f"invalid YAML: {exc.problem or exc.context}", where) from None
    except yaml.YAMLError as exc:
        raise RulesetError(f"invalid YAML: {exc}", Location(file)) from None
    finally:
        loader.dispose()


def _construct(
    loader: _Loader, node: yaml.Node, path: Path, spans: dict[Path, Span], file: str
) -> Any:
    spans[path] = Span(
        node.start_mark.line + 1, node.start_mark.column + 1, getattr(node, "style", None)
    )
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves `<<` merge keys like safe_load does
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                raise RulesetError("mapping keys must be scalars", _mark(file, key_node))
            if key in result:
                raise RulesetError(f"duplicate key {key!r}", _mark(file, key_node))
            result[key] = _construct(loader, value_node, (*path, str(key)), spans, file)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(loader, item, (*path, i), spans, file) for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


def _mark(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)
