"""Decision-table cells (SPEC §3): DMN S-FEEL unary tests read into conditions on the
table's inputs, and the intervals the unreachable-row check compares."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from dealdesk.errors import short_repr
from dealdesk.rules.expressions import MAX_DEPTH, And, Compare, Const, Expr, Not, Or

_COMPARISON = re.compile(r"^(<=|>=|<|>|!=|=)\s*(.+)$")


class CellError(ValueError):
    """A cell that is not a unary test."""


def _range(text: str) -> tuple[str, str, str, str] | None:
    """``(opening, low, high, closing)`` of a range cell like ``[0.2..0.4)``, else None.

    Split by hand, in linear time: the regular expression this replaces backtracked
    quadratically, so a 20,000-character cell held validation for seconds.
    """
    if len(text) < 2 or text[0] not in "[(]" or text[-1] not in "])[":
        return None
    inner = text[1:-1].strip()
    cut = inner.find("..", 1)  # the first "..", after at least one character of the low end
    if cut < 0:
        return None
    low, high = inner[:cut].strip(), inner[cut + 2 :].strip()
    return (text[0], low, high, text[-1]) if low and high else None


def parse_cell(cell: Any, subject: Expr, depth: int = 1) -> Expr | None:
    """The condition a decision-table cell puts on ``subject``; None for ``-`` (any value).

    Unary tests in the DMN S-FEEL style: a literal, ``< 0.2``, ``[0.2..0.4)``, ``gold, silver``,
    ``not(...)`` of any of these, nested at most :data:`MAX_DEPTH` deep.
    """
    if depth > MAX_DEPTH:
        raise CellError(f"nested too deeply (limit {MAX_DEPTH})")
    pos = subject.pos
    if isinstance(cell, bool):
        return Compare(pos, "==", subject, Const(pos, cell, "boolean"))
    if isinstance(cell, int | float):
        return Compare(pos, "==", subject, Const(pos, Decimal(str(cell)), "number"))
    text = str(cell).strip()
    if text in ("-", ""):
        return None
    if text.startswith("not(") and text.endswith(")"):
        inner = parse_cell(text[4:-1], subject, depth + 1)
        if inner is None:
            raise CellError("not(-) matches nothing")
        return Not(pos, inner)
    parts = _split_list(text)
    if len(parts) > 1:
        tests = [parse_cell(p, subject, depth + 1) for p in parts]
        if any(t is None for t in tests):
            raise CellError("'-' cannot be part of a list")
        return Or(pos, tuple(t for t in tests if t is not None))
    bounds = _range(text)
    if bounds:
        opening, low, high, closing = bounds
        return And(
            pos,
            (
                Compare(pos, ">=" if opening == "[" else ">", subject, _literal(low, pos)),
                Compare(pos, "<=" if closing == "]" else "<", subject, _literal(high, pos)),
            ),
        )
    match = _COMPARISON.match(text)
    if match:
        op = "==" if match.group(1) == "=" else match.group(1)
        return Compare(pos, op, subject, _literal(match.group(2), pos))
    return Compare(pos, "==", subject, _literal(text, pos))


def _split_list(text: str) -> list[str]:
    parts, depth, current, quote = [], 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        current += char
    parts.append(current.strip())
    return [p for p in parts if p]


def _literal(text: str, pos: tuple[int, int]) -> Const:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return Const(pos, text[1:-1], "string")
    if text in ("true", "false", "True", "False"):
        return Const(pos, text.lower() == "true", "boolean")
    try:
        return Const(pos, Decimal(text), "number")
    except Exception:
        if re.fullmatch(r"[A-Za-z_][\w\- ]*", text):
            return Const(pos, text, "string")  # bare words like gold are strings, as in the spec
        raise CellError(f"cannot read {short_repr(text)} as a literal") from None


def cell_interval(cell: Any) -> tuple[Any, ...] | None:
    """A comparable description of the values a cell accepts, for the unreachable-row check:
    ``("all",)``, ``("values", frozenset)``, ``("range", low, low_closed, high, high_closed)``,
    or None when the cell is too complex to reason about."""
    if isinstance(cell, bool):
        return ("values", frozenset([cell]))
    if isinstance(cell, int | float):
        return ("range", Decimal(str(cell)), True, Decimal(str(cell)), True)
    text = str(cell).strip()
    if text in ("-", ""):
        return ("all",)
    if text.startswith("not("):
        return None
    parts = _split_list(text)
    if len(parts) > 1:
        literals = [_literal(p, (1, 0)).value for p in parts]
        return (
            ("values", frozenset(literals)) if all(isinstance(v, str) for v in literals) else None
        )
    bounds = _range(text)
    try:
        if bounds:
            o, low, high, c = bounds
            return ("range", Decimal(low), o == "[", Decimal(high), c == "]")
        match = _COMPARISON.match(text)
        if match:
            op, value = match.group(1), Decimal(match.group(2))
            inf = Decimal("Infinity")
            return {
                "<": ("range", -inf, False, value, False),
                "<=": ("range", -inf, False, value, True),
                ">": ("range", value, False, inf, False),
                ">=": ("range", value, True, inf, False),
                "=": ("range", value, True, value, True),
            }.get(op)
        literal = _literal(text, (1, 0)).value
    except Exception:
        return None
    if isinstance(literal, Decimal):
        return ("range", literal, True, literal, True)
    return ("values", frozenset([literal]))


def covers(outer: tuple[Any, ...] | None, inner: tuple[Any, ...] | None) -> bool:
    """Whether every value ``inner`` accepts is accepted by ``outer`` (False when unsure)."""
    if outer is None or inner is None:
        return False
    if outer[0] == "all":
        return True
    if inner[0] == "all" or outer[0] != inner[0]:
        return False
    if outer[0] == "values":
        return inner[1] <= outer[1]
    _, olo, oloc, ohi, ohic = outer
    _, ilo, iloc, ihi, ihic = inner
    low_ok = olo < ilo or (olo == ilo and (oloc or not iloc))
    high_ok = ohi > ihi or (ohi == ihi and (ohic or not ihic))
    return low_ok and high_ok
