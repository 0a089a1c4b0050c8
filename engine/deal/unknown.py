"""Unknown keys in a deal, reported as flags on its record without changing the decision.

SPEC §2 keeps fields nobody declares: a deal may carry ``owner`` or ``notes`` for its templates
and sinks. A key inside one of the schema's own objects (``customer``, ``offer``, ``partner``,
``support``, ``billing``, ``dates``) or a line is another matter: nothing but a typo puts
``teir`` under ``partner``, and the rule that reads ``partner.tier`` then silently sees no tier.
So :func:`unknown_fields` names:

- every key inside those objects and the lines that neither the schema nor a plugin declares,
  with the nearest known key when there is one (``partner.teir``: did you mean ``partner.tier``?);
- a top-level key only when it is a near miss of a known one (``partnr``, ``custmer``): other
  top-level keys are the deal's own, kept quietly as SPEC §2 says.

Plugin-declared paths (SPEC §7 ``facts``) are known keys; the inside of an object only a plugin
declares is the plugin's and is not looked at.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeGuard

from dealdesk.deal.schema import DERIVED_PATHS, INPUT_FIELDS

__all__ = ["UnknownField", "unknown_fields"]

# A top-level key this close to a known one is taken for a typo of it (difflib's ratio).
_TOP_LEVEL_CUTOFF = 0.8
_CUTOFF = 0.6


@dataclass(frozen=True)
class UnknownField:
    """A key of the deal that nothing declares: its path and the known path it is most like."""

    path: str
    suggestion: str | None = None

    @property
    def message(self) -> str:
        """What the record's flag says (the path is the flag's own ``path``)."""
        if self.suggestion:
            return f"unknown field; did you mean {self.suggestion}?"
        return "unknown field; it is kept as it is, but no rule can read it"

    def flag(self) -> dict[str, str]:
        """The record's flag: no policy or rule raised it, the deal's own ``path`` says where."""
        return {"policy": "", "rule": "", "path": self.path, "message": self.message}


@dataclass(frozen=True)
class _Known:
    top: frozenset[str]  # every known top-level key
    objects: tuple[tuple[str, frozenset[str]], ...]  # a schema object and its known keys
    line: frozenset[str]  # the known keys of a line


def unknown_fields(raw: object, declared: Iterable[str] = ()) -> list[UnknownField]:
    """The keys of ``raw`` that look like typos, as the module says, in the deal's order.

    :param raw: the deal as read (a mapping; anything else has none).
    :param declared: input paths plugins declare (``customer.credit_score``, ``lines[].warranty``).
    """
    if not isinstance(raw, Mapping):
        return []
    known = _known(tuple(sorted(declared)))
    found: list[UnknownField] = []
    # every deal passes here: `keys <= known` tests without building a set, and most pass
    if not raw.keys() <= known.top:
        for key in raw.keys() - known.top:
            if isinstance(key, str):
                close = _closest(key, known.top, _TOP_LEVEL_CUTOFF)
                if close:
                    found.append(UnknownField(key, close))
    for name, keys in known.objects:
        value = raw.get(name)
        if _mapping(value) and not value.keys() <= keys:
            found.extend(_unknown_in(value, keys, name))
    lines = raw.get("lines")
    if isinstance(lines, list):
        for index, line in enumerate(lines):
            if _mapping(line) and not line.keys() <= known.line:
                found.extend(_unknown_in(line, known.line, f"lines[{index}]"))
    if not found:
        return found
    order = {key: i for i, key in enumerate(raw)}
    # in the deal's order: by the top-level key each path starts with, then as found
    return sorted(found, key=lambda f: order.get(_head(f.path), len(order)))


def _mapping(value: object) -> TypeGuard[Mapping[Any, Any]]:
    # a dict (what readers give) without the Mapping ABC's slower check
    return isinstance(value, dict) or isinstance(value, Mapping)


def _unknown_in(value: Mapping[Any, Any], keys: frozenset[str], where: str) -> list[UnknownField]:
    found = []
    for key in value:
        if key in keys:
            continue
        text = str(key)
        close = _closest(text, keys, _CUTOFF)
        found.append(UnknownField(f"{where}.{text}", f"{where}.{close}" if close else None))
    return found


@lru_cache(maxsize=4096)  # a book repeats its few unknown keys on deal after deal
def _closest(word: str, keys: frozenset[str], cutoff: float) -> str | None:
    close = difflib.get_close_matches(word, keys, n=1, cutoff=cutoff)
    return close[0] if close else None


def _head(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


@lru_cache(maxsize=16)
def _known(declared: tuple[str, ...]) -> _Known:
    paths = set(INPUT_FIELDS) | set(DERIVED_PATHS) | set(declared)
    top = frozenset(p.split(".", 1)[0].removesuffix("[]") for p in paths)
    objects = []
    for path, field in INPUT_FIELDS.items():
        if field.type == "object":
            children = frozenset(
                p[len(path) + 1 :].split(".", 1)[0] for p in paths if p.startswith(f"{path}.")
            )
            objects.append((path, children))
    line = frozenset(
        p[len("lines[].") :].split(".", 1)[0] for p in paths if p.startswith("lines[].")
    )
    return _Known(top, tuple(objects), line)
