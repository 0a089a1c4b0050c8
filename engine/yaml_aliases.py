"""A budget on YAML aliases, for rulesets and deals alike (SPEC §9 "Hostile rulesets are bounded").

An alias (``*name``) makes the composed node graph share a node, so parsing stays cheap: a
600-byte "billion laughs" document composes to a few dozen nodes. The cost comes later, from
anything that walks the values as a tree (positions for every ruleset value, deal validation,
a sink that serializes the deal) — it sees every alias expanded, 9**9 times over. So every
document is measured on its node graph, in time linear in its size, before anything walks it:
aliases may add at most :data:`MAX_ALIAS_VALUES` values, or :data:`ALIAS_FACTOR` times the
values written, whichever is larger. ``<<: *defaults`` merges and shared blocks in a long list
of deals stay well inside that; a document whose aliases refer to themselves is refused too.
"""

from __future__ import annotations

from collections.abc import Iterator

import yaml
from yaml.composer import ComposerError

__all__ = ["ALIAS_FACTOR", "MAX_ALIAS_VALUES", "check_aliases"]

#: Values that aliases may add to any document, however small.
MAX_ALIAS_VALUES = 10_000
#: ... or this many times the values written in the document, when that is more.
ALIAS_FACTOR = 10


def check_aliases(root: yaml.Node) -> None:
    """Refuse a composed document whose aliases expand it beyond the budget, or into itself.

    :param root: a document's node, from a loader's ``get_node()`` (PyYAML or libyaml).
    :raises yaml.composer.ComposerError: marked at the mapping key, or the sequence, where the
        expansion passes the budget (an alias node keeps no mark of its own).
    """
    budget = max(MAX_ALIAS_VALUES, ALIAS_FACTOR * _written(root))
    sizes: dict[int, int] = {}  # values in a node with its aliases expanded, by node identity
    added = 0
    open_nodes = {id(root)}
    stack: list[tuple[yaml.Node, Iterator[tuple[yaml.Node, yaml.Mark]], list[int]]] = [
        (root, _children(root), [1])
    ]
    while stack:
        node, children, size = stack[-1]
        entry = next(children, None)
        if entry is None:
            stack.pop()
            open_nodes.discard(id(node))
            sizes[id(node)] = size[0]
            if stack:
                stack[-1][2][0] += size[0]
            continue
        child, mark = entry
        if id(child) in open_nodes:
            raise ComposerError(
                None, None, "an alias refers to a value that contains it (recursive data)", mark
            )
        known = sizes.get(id(child))
        if known is None:  # first time: the anchored (or only) occurrence
            open_nodes.add(id(child))
            stack.append((child, _children(child), [1]))
            continue
        added += known  # met again: an alias, expanded
        size[0] += known
        if added > budget:
            raise ComposerError(
                None,
                None,
                f"aliases here expand the document by more than {budget:,} values "
                f"(the limit: {MAX_ALIAS_VALUES:,}, or {ALIAS_FACTOR}x the values written)",
                mark,
            )


def _written(root: yaml.Node) -> int:
    """The number of distinct nodes: the values as written, aliases not expanded."""
    seen = {id(root)}
    stack = [root]
    while stack:
        for child, _ in _children(stack.pop()):
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return len(seen)


def _children(node: yaml.Node) -> Iterator[tuple[yaml.Node, yaml.Mark]]:
    """Each child node with the mark an error about it points at: its key, or its sequence."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key, key.start_mark
            yield value, key.start_mark
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield item, node.start_mark
