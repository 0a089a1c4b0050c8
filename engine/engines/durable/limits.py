"""What one durable_rules 2.0.28 ruleset and one fact can hold, and what a definition reads.

For the lowering (which keeps each compiled rule inside these limits) and the driver (which
splits definitions and narrows facts to stay inside them). Pure Python: nothing here imports
durable_rules, so the compiler stays testable where durable does not import. Each limit below
was read in durable's C source (``src/rules``) and reproduced on the extension; the tests in
``tests/engines/test_durable_limits.py`` pin them.

- **Matches per fact.** ``handleAlpha`` (events.c) walks the alpha network of a ruleset with a
  stack of ``MAX_STACK_SIZE`` = 64 pending nodes. Every matching child of a node is pushed at
  once, so a fact matching 65 rules whose conditions part after a shared prefix fails with error
  303 ("max stack size"), and the half-built session then corrupts the heap when anything touches
  it. The pending nodes never include one another's ancestors, and durable's alpha network is a
  tree (a node is shared only between rules with the same path to it), so there are never more
  of them than leaves, nor leaves than rules: a ruleset of at most 64 rules — the driver's own
  session rule included — never overflows, whatever the fact.
- **Properties per message.** ``setObjectProperty`` (state.c) fails with error 302 when a
  message reaches 255 properties: every key counts, nested ones too (``customer`` and
  ``customer.region`` are two), plus ``sid`` and ``id``; a list counts once and each of its
  elements is parsed apart, with its own 255.
- **String length.** Strings are compared by ``reduceString`` (events.c), which takes the lengths
  of both sides as 16-bit numbers: beyond 65,535 bytes of escaped JSON text a string compares
  equal to anything that matches it up to its length modulo 65,536.
- **Numbers.** ``getNumber`` (json.c) reads an exponent only after a fraction: ``1e-05`` and
  ``1e+16`` (how Python writes 0.00001 and 10**16) are error 204; ``1.0e-05`` parses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "MAX_ELEMENT_PROPERTIES",
    "MAX_FACT_PROPERTIES",
    "MAX_PROPERTIES",
    "MAX_RULES",
    "MAX_STRING_BYTES",
    "ReadTree",
    "fits",
    "merge",
    "project",
    "property_count",
    "reads",
    "rule_reads",
]

# durable's alpha stack holds 64 pending nodes; the driver adds one rule of its own per ruleset.
MAX_RULES = 64 - 1
# A message fails on reaching 255 properties (nested keys count, list items do not); the driver
# adds sid and id to every fact, so a caller's fact may hold 252.
MAX_PROPERTIES = 255
MAX_FACT_PROPERTIES = MAX_PROPERTIES - 1 - 2
MAX_ELEMENT_PROPERTIES = MAX_PROPERTIES - 1
# Longest escaped JSON text of a string that durable_rules compares in full.
MAX_STRING_BYTES = 2**16 - 1

# What a condition reads, as a tree of property names: None for a value that is read as a whole
# (for an object or a list, only its presence: durable cannot compare them), a nested tree for an
# object whose properties are read, and under the key ELEMENTS what is read in each element of a
# list that $iany/$iall walk.
ReadTree = dict[str, Any]
ELEMENTS = "[]"
_ELEMENT = "$i"
# Operators that take {property: operand}; any other key of a condition is an equality test.
_OPERATORS = frozenset(("$ex", "$nex", "$lt", "$lte", "$gt", "$gte", "$neq", "$mt", "$imt"))


def reads(condition: Any) -> ReadTree:
    """The properties a durable_rules condition (what a rule puts under ``"m"``) reads."""
    tree: ReadTree = {}
    _walk(condition, tree, tree, element=False)
    return tree


def rule_reads(rule: Mapping[str, Any]) -> ReadTree:
    """What a durable_rules rule (``{"all": [{"m": condition}]}``) reads from its fact."""
    tree: ReadTree = {}
    for pattern in [*rule.get("all", ()), *rule.get("any", ())]:
        if isinstance(pattern, Mapping):
            for condition in pattern.values():
                _walk(condition, tree, tree, element=False)
    return tree


def _walk(condition: Any, names: ReadTree, fact: ReadTree, *, element: bool) -> None:
    """Record what ``condition`` reads: its property names in ``names`` (the fact's tree, or an
    element's inside ``$iany``/``$iall``, where names start with ``$i.``), and the fact's
    properties it refers to with ``{"$m": name}`` in ``fact``."""
    if not isinstance(condition, Mapping):
        return
    for key, value in condition.items():
        if key in ("$and", "$or"):
            for item in value if isinstance(value, list) else ():
                _walk(item, names, fact, element=element)
        elif key in ("$iany", "$iall") and isinstance(value, Mapping):
            for name, body in value.items():
                inner: ReadTree = {}
                _walk(body, inner, fact, element=True)
                _add(_own(name, element), names, inner)
        elif key in _OPERATORS and isinstance(value, Mapping):
            for name, operand in value.items():  # {"$gt": {name: operand}}, {"$ex": {name: 1}}
                _add(_own(name, element), names)
                _refs(operand, fact)
        else:  # equality: {name: operand}
            _add(_own(key, element), names)
            _refs(value, fact)


def _own(name: str, element: bool) -> str:
    """A property name relative to what it is read from (the element's without ``$i.``)."""
    if element and (name == _ELEMENT or name.startswith(_ELEMENT + ".")):
        return name[len(_ELEMENT) + 1 :]
    return name


def _refs(operand: Any, fact: ReadTree) -> None:
    """Record the fact's properties that an operand refers to (``{"$m": name}``, in expressions
    too)."""
    if isinstance(operand, Mapping):
        for key, value in operand.items():
            if key == "$m" and isinstance(value, str):
                _add(value, fact)
            else:
                _refs(value, fact)


def _add(name: str, tree: ReadTree, inner: ReadTree | None = None) -> None:
    """Record a read of the dotted ``name``; ``inner`` is read in each element when a
    quantifier walks it."""
    if not name:
        return  # the element itself, in a list of scalars: nothing to narrow
    *parents, leaf = name.split(".")
    for part in parents:
        child = tree.get(part)
        if not isinstance(child, dict):
            child = tree[part] = {}
        tree = child
    node = tree.get(leaf)
    if inner is not None:
        if not isinstance(node, dict):
            node = tree[leaf] = {}
        node[ELEMENTS] = merge(node.get(ELEMENTS) or {}, inner)
    elif leaf not in tree:
        tree[leaf] = None


def merge(left: ReadTree, right: ReadTree) -> ReadTree:
    """What two read trees read together (neither is changed)."""
    result: ReadTree = dict(left)
    for key, node in right.items():
        mine = result.get(key)
        if isinstance(mine, dict) and isinstance(node, dict):
            result[key] = merge(mine, node)
        elif isinstance(node, dict):
            result[key] = dict(node)
        elif key not in result:
            result[key] = None
    return result


def property_count(tree: ReadTree) -> int:
    """How many message properties a fact narrowed to ``tree`` can hold (lists count once)."""
    return sum(
        1 + (property_count(node) if isinstance(node, dict) else 0)
        for key, node in tree.items()
        if key != ELEMENTS
    )


def _element_trees(tree: ReadTree) -> Iterable[ReadTree]:
    for key, node in tree.items():
        if not isinstance(node, dict):
            continue
        if key == ELEMENTS:
            yield node
        yield from _element_trees(node)


def fits(tree: ReadTree) -> bool:
    """Whether a fact narrowed to ``tree`` always stays below durable's property limits."""
    return property_count(tree) <= MAX_FACT_PROPERTIES and all(
        property_count(element) <= MAX_ELEMENT_PROPERTIES for element in _element_trees(tree)
    )


def project(value: Any, tree: ReadTree | None) -> Any:
    """``value`` with only what ``tree`` reads: objects and lists read whole are kept as
    presence markers (``{}``, ``[]``), which is all durable_rules can test of them."""
    if tree is None:
        if isinstance(value, Mapping):
            return {}
        return [] if isinstance(value, list) else value
    if isinstance(value, Mapping):
        return {
            key: project(value[key], node)
            for key, node in tree.items()
            if key != ELEMENTS and key in value
        }
    if isinstance(value, list):
        element = tree.get(ELEMENTS)
        return [project(item, element) for item in value] if element is not None else []
    return value
