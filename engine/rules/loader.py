"""YAML with positions: safe loading that remembers where every value came from.

Ruleset errors must read ``file:line:col``; PyYAML's safe loader forgets positions once it has
built Python values, so :func:`load_yaml` composes the node tree itself and records the start
of every value under its path (``("rules", 0, "when")``).

Hostile input is bounded before anything walks it (SPEC §9): aliases by
:func:`dealdesk.yaml_aliases.check_aliases`, nesting by :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dealdesk.errors import Location, RulesetError
from dealdesk.rules import cache

# PyYAML is imported on the first parse, not with this module: a run whose rulesets are all
# remembered (load_yaml_cached) reads none.
if TYPE_CHECKING:
    import yaml

Path = tuple[str | int, ...]

#: Deepest nesting of mappings and sequences in a ruleset; a real one is under ten deep. The
#: composer and :func:`_construct` recurse once or twice per level, so this keeps them far from
#: Python's recursion limit.
MAX_DEPTH = 100


@dataclass(frozen=True)
class Span:
    """Where a value starts: 1-based line and column, and the offset in the document's text."""

    line: int
    column: int
    index: int = 0


@dataclass
class Document:
    """One parsed YAML document and the position of each value in it."""

    file: str
    data: Any
    spans: dict[Path, Span] = field(default_factory=dict)
    text: str = ""
    keys: dict[Path, Span] = field(default_factory=dict)  # where each mapping key is written
    # problems that leave the rest readable (a duplicate key, a key that is not text): raised
    # unless the caller asked to read on (``tolerant``) and reports them itself
    problems: list[RulesetError] = field(default_factory=list)

    def key_location(self, path: Path) -> Location:
        """The location of the key of the value at ``path`` (for "unknown key" errors)."""
        span = self.keys.get(path)
        return Location(self.file, span.line, span.column) if span else self.location(path)

    def location(self, path: Path, offset: tuple[int, int] | None = None) -> Location:
        """The location of the value at ``path`` (or of its nearest located parent).

        ``offset`` is a (line, column) position inside a string value, 1-based line within
        the string and 0-based column, used to point into an expression — through quotes,
        block scalars and folded lines.
        """
        while path not in self.spans and path:
            path = path[:-1]
        span = self.spans.get(path, Span(1, 1))
        value = lookup_path(self.data, path)
        if offset is None or not isinstance(value, str) or not self.text:
            return Location(self.file, span.line, span.column)
        line, col = offset
        lines = value.split("\n")
        target = sum(len(text) + 1 for text in lines[: line - 1]) + col
        index = _align(value, self.text, span.index, min(target, len(value)))
        before = self.text.rfind("\n", 0, index)
        return Location(self.file, self.text.count("\n", 0, index) + 1, index - before)


def _align(value: str, source: str, start: int, target: int) -> int:
    """The index in ``source`` of ``value[target]``, walking both from ``start``: source
    characters a scalar drops (quotes, indentation, block indicators) are skipped, and a line
    break may stand for a folded space."""
    position = start
    for i, char in enumerate(value[: target + 1]):
        while position < len(source) and not (
            source[position] == char or (char == " " and source[position] == "\n")
        ):
            position += 1
        if i == target:
            break
        position += 1
    return min(position, len(source))


def lookup_path(data: Any, path: Sequence[Any]) -> Any:
    """The value at ``path`` (keys and indices) in parsed YAML, None where there is none."""
    for key in path:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return None
    return data


@functools.cache
def _loaders() -> tuple[type[Any], type[Any]]:
    """The loader classes: the Python parser's and libyaml's (the Python one without libyaml)."""
    import yaml
    from yaml.composer import ComposerError

    class _Loader(yaml.SafeLoader):
        """SafeLoader that keeps ISO dates as strings (the deal and ruleset models use strings)
        and refuses nesting deeper than :data:`MAX_DEPTH`."""

        _depth = 0

        def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
            self._depth += 1
            try:
                if self._depth > MAX_DEPTH:
                    raise ComposerError(
                        None,
                        None,
                        f"values nested too deeply (limit {MAX_DEPTH})",
                        self.peek_event().start_mark,
                    )
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def construct_iso_date(self, node: yaml.ScalarNode) -> str:
            try:
                return _iso(self.construct_yaml_timestamp(node))
            except ValueError:
                # `2026-13-01` looks like a date but is none: keep its text, so the ruleset's
                # schema (format: date) or the deal's checks report it where it is written
                return str(node.value)

    # A date in a ruleset or deal is compared and printed as ISO text; keep it as text.
    _Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_iso_date)

    # libyaml's parser, when PyYAML was built with it, is about ten times faster than the Python
    # one (most of `dealdesk evaluate`'s start-up went into parsing the house rulesets); see
    # _PYTHON_PARSER_ONLY for the texts it is not given.
    fast_base: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # without libyaml: Python

    class _FastLoader(fast_base):
        construct_iso_date = _Loader.construct_iso_date

    _FastLoader.add_constructor("tag:yaml.org,2002:timestamp", _FastLoader.construct_iso_date)
    return _Loader, _FastLoader


# libyaml gives every node the same value and position as the Python parser, except in corners
# found by running both on mutated rulesets: libyaml accepts tabs, `?` and a block scalar header
# followed by `#` (`>#`) where the Python parser refuses them, counts a byte-order mark in
# columns, places an empty value in a flow mapping (`{a: , b: 1}`) one column later, and resolves
# an empty value tagged `!` to "", not null. A text with any of those (or any tag or directive,
# rare in rulesets), or one libyaml refuses (so that errors are worded as always), is parsed by
# the Python parser.
_PYTHON_PARSER_ONLY = re.compile(
    r"[\t\ufeff?]|:\s*(?:#[^\n]*\n\s*)*[,}\]]|[|>][-+0-9]*#|(?<![^\s\[{,])!(?!=[\s\"'])|^%",
    re.M,
)


def _iso(value: dt.date | dt.datetime) -> str:
    return value.isoformat()


def load_yaml(text: str, file: str, *, tolerant: bool = False) -> Document:
    """Parse one YAML document from ``text``; syntax errors become located RulesetErrors.

    :param tolerant: keep reading past a duplicate key or a key that is not text (the pair is
        left out), putting the problem in ``Document.problems`` instead of raising it.
    """
    documents = list(load_yaml_documents(text, file, tolerant=tolerant))
    if not documents:
        return Document(file, None)
    if len(documents) > 1:
        raise RulesetError("expected one YAML document, found several", Location(file, 1, 1))
    return documents[0]


def load_yaml_cached(text: str, file: str, *, tolerant: bool = False) -> Document:
    """:func:`load_yaml`, remembered in the cache folder (:mod:`dealdesk.rules.cache`) by the
    text, PyYAML's and this module's stamps: a text read before is not parsed again. Only a
    text that parses into one document of JSON values is remembered; errors never are."""
    key = cache.digest(
        text,
        cache.module_stamp("yaml"),
        cache.file_stamp(__file__),
        cache.module_stamp("dealdesk.yaml_aliases"),  # the alias bounds
    )
    found = _decode(cache.read("yaml", key), key, file, text)
    if found is not None:
        return found
    doc = load_yaml(text, file, tolerant=tolerant)
    if doc.text == text and not doc.problems:  # one document (none gives a bare Document)
        cache.write("yaml", key, _encode(doc, key))
    return doc


def _encode(doc: Document, key: str) -> dict[str, Any]:
    return {
        "key": key,
        "data": doc.data,
        "spans": [[list(path), s.line, s.column, s.index] for path, s in doc.spans.items()],
        "keys": [[list(path), s.line, s.column, s.index] for path, s in doc.keys.items()],
    }


def _decode(entry: Any, key: str, file: str, text: str) -> Document | None:
    """The document :func:`_encode` wrote, or None for anything else."""
    if not isinstance(entry, dict) or entry.get("key") != key or "data" not in entry:
        return None
    spans, keys = _decode_spans(entry.get("spans")), _decode_spans(entry.get("keys"))
    if spans is None or keys is None:
        return None
    return Document(file, entry["data"], spans, text, keys)


def _decode_spans(rows: Any) -> dict[Path, Span] | None:
    if not isinstance(rows, list):
        return None
    spans: dict[Path, Span] = {}
    for row in rows:
        if not (isinstance(row, list) and len(row) == 4 and isinstance(row[0], list)):
            return None
        path, line, column, index = row
        if not all(type(part) in (str, int) for part in path):
            return None
        if not all(type(number) is int for number in (line, column, index)):
            return None
        spans[tuple(path)] = Span(line, column, index)
    return spans


def load_yaml_documents(text: str, file: str, *, tolerant: bool = False) -> Iterator[Document]:
    """Parse every ``---`` document in ``text`` in order, with positions (``tolerant`` as
    for :func:`load_yaml`)."""
    python_loader, fast_loader = _loaders()
    if not _PYTHON_PARSER_ONLY.search(text):
        try:
            return iter(list(_documents(fast_loader, text, file, tolerant)))
        except RulesetError:
            pass  # the Python parser decides, and words the error
    return _documents(python_loader, text, file, tolerant)


def _documents(
    loader_class: type[Any], text: str, file: str, tolerant: bool = False
) -> Iterator[Document]:
    import yaml

    from dealdesk.yaml_aliases import check_aliases

    loader = loader_class(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            check_aliases(node)
            doc = Document(file, None, text=text)
            doc.data = _construct(loader, node, (), doc)
            if doc.problems and not tolerant:
                raise doc.problems[0]
            yield doc
    except yaml.MarkedYAMLError as exc:
        raise yaml_error(exc, text, file) from None
    except yaml.YAMLError as exc:
        raise RulesetError(f"invalid YAML: {exc}", Location(file)) from None
    finally:
        loader.dispose()


def yaml_error(exc: yaml.MarkedYAMLError, text: str, file: str) -> RulesetError:
    """PyYAML's error, located where the mistake is rather than where the parser gave up.

    The scanner notices a key without its ``:`` (or text under-indented below a block scalar's
    key) only on the next line, and an unclosed quote or bracket only at the end: the place it
    started reading (the error's context mark) is where the author must look.
    """
    problem = str(exc.problem or exc.context or "")
    context = str(exc.context or "")
    mark, start = exc.problem_mark, exc.context_mark
    where = mark or start
    if mark is not None and start is not None and start.line < mark.line:
        if problem == "could not find expected ':'":
            return RulesetError(f"invalid YAML: {_NO_COLON}", _at(file, start))
        if context.startswith("while scanning a quoted scalar"):
            return RulesetError("invalid YAML: this quoted text is never closed", _at(file, start))
        if context in ("while parsing a flow sequence", "while parsing a flow mapping"):
            opener = "[" if "sequence" in context else "{"
            return RulesetError(
                f"invalid YAML: the {opener!r} here is not closed where expected: {problem} "
                f"at line {mark.line + 1}, column {mark.column + 1}",
                _at(file, start),
            )
    if problem == "mapping values are not allowed here" and mark is not None:
        # `require cfo` then `reason: x` below it: one plain text across both lines, whose ':'
        # is refused; the line above, without its ':', is the mistake
        line = _line_missing_colon(text, mark.line)
        if line is not None:
            return RulesetError(f"invalid YAML: {_NO_COLON}", Location(file, line[0], line[1]))
    if problem.startswith("could not determine a constructor for the tag '!") and where:
        # `when: !risk_offer`: YAML reads a leading ! as a tag
        return RulesetError(
            "invalid YAML: a value that starts with '!' is a YAML tag; quote the value "
            "(and in a condition write `not`, not `!`)",
            _at(file, where),
        )
    hint = " (check this line's indentation)" if problem.startswith("expected <block end>") else ""
    return RulesetError(
        f"invalid YAML: {problem}{hint}", _at(file, where) if where else Location(file)
    )


_NO_COLON = "this line has no ':' after its key (or it needs indenting under the key above)"


def _at(file: str, mark: Any) -> Location:
    return Location(file, mark.line + 1, mark.column + 1)


def _line_missing_colon(text: str, index: int) -> tuple[int, int] | None:
    """(line, column) of the line above line ``index`` (0-based) when it is a key without its
    ``:`` at the same indentation, which YAML then reads as text continued onto line ``index``."""
    lines = text.split("\n")
    if index >= len(lines):
        return None
    here = lines[index]
    indent = len(here) - len(here.lstrip(" "))
    for number in range(index - 1, -1, -1):
        content = lines[number].split(" #", 1)[0].rstrip()
        if not content.strip() or content.lstrip().startswith("#"):
            continue
        above_indent = len(content) - len(content.lstrip(" "))
        body = content.strip()
        if above_indent != indent or ":" in body or body[0] in "-[{|>'\"&*!%@`":
            return None
        return number + 1, indent + 1
    return None


def _construct(loader: Any, node: yaml.Node, path: Path, doc: Document) -> Any:
    import yaml

    file = doc.file
    doc.spans[path] = _span(node)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves `<<` merge keys like safe_load does
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                # YAML reads yes/no/on/off as booleans and 12 as a number: names must be text
                doc.problems.append(
                    RulesetError(
                        f"the key {key_node.value!r} is read as {type(key).__name__} {key!r}; "
                        f'quote it ("{key_node.value}") to make it a name',
                        _mark(file, key_node),
                    )
                )
                continue  # the pair is left out; the rest of the mapping is still read
            if key in result:
                doc.problems.append(RulesetError(f"duplicate key {key!r}", _mark(file, key_node)))
                continue  # the first value stands
            doc.keys[(*path, str(key))] = _span(key_node)
            result[key] = _construct(loader, value_node, (*path, str(key)), doc)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(loader, item, (*path, i), doc) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _span(node: yaml.Node) -> Span:
    return Span(node.start_mark.line + 1, node.start_mark.column + 1, node.start_mark.index)


def _mark(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)
