"""Decision-table cells (SPEC §3): DMN S-FEEL unary tests read into conditions on the
table's inputs, and the intervals the unreachable-row check compares."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from dealdesk.errors import short_repr
from dealdesk.rules.expressions import MAX_DEPTH, And, Compare, Const, Expr, Not, Or

_COMPARISON = re.compile(r"^(<=|>=|<|>|!=|=)\s*(.+)$")
#: Operators of other languages that authors type into cells, and what S-FEEL writes instead
#: (a function of the operand). Checked before ``_COMPARISON``, which would read ``=> 0.3`` as
#: ``=`` of ``> 0.3``.
_SLIPS: dict[str, tuple[str, Any]] = {
    "==": ("S-FEEL tests equality with the bare value", lambda v: v),
    "===": ("S-FEEL tests equality with the bare value", lambda v: v),
    "=>": ("'=>' is not an S-FEEL operator", lambda v: f">= {v}"),
    "=<": ("'=<' is not an S-FEEL operator", lambda v: f"<= {v}"),
    "<>": ("'<>' is not an S-FEEL operator", lambda v: f"not({v})"),
    "!==": ("'!==' is not an S-FEEL operator", lambda v: f"!= {v}"),
    "≥": ("'≥' is not an S-FEEL operator", lambda v: f">= {v}"),
    "≤": ("'≤' is not an S-FEEL operator", lambda v: f"<= {v}"),
    "≠": ("'≠' is not an S-FEEL operator", lambda v: f"not({v})"),
}
_SLIP = re.compile(r"^(===|!==|==|=>|=<|<>|≥|≤|≠)\s*(.*)$", re.DOTALL)
#: A number written with thousands separators (``5,000,000``), outside quotes: a list of
#: numbers is written with a space after each comma, and a number never starts with ``000``.
_THOUSANDS = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?![\w.])")
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")


class CellError(ValueError):
    """A cell that is not a unary test, with what was probably meant when that can be told."""

    def __init__(self, message: str, suggestion: str | None = None):
        super().__init__(message)
        self.suggestion = suggestion


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


def _negated(text: str) -> str | None:
    """The inside of ``not(...)`` (DMN allows a space before the parenthesis), else None.

    Called on one test, a list being split first: brackets are not counted, since a range's
    (``[0..0.5)``) need not balance.
    """
    if not text.startswith("not") or not text.endswith(")"):
        return None
    rest = text[3:].lstrip()
    return rest[1:-1] if rest.startswith("(") else None


def parse_cell(cell: Any, subject: Expr, depth: int = 1) -> Expr | None:
    """The condition a decision-table cell puts on ``subject``; None for ``-`` (any value).

    Unary tests in the DMN S-FEEL style: a literal, ``< 0.2``, ``[0.2..0.4)``, a list of any of
    these (``gold, silver``, ``< 1, > 2``: any of them matches), ``not(...)`` of any of these,
    nested at most :data:`MAX_DEPTH` deep.

    :raises CellError: the cell is not a unary test (with a suggestion for common slips).
    """
    if depth > MAX_DEPTH:
        raise CellError(f"nested too deeply (limit {MAX_DEPTH})")
    pos = subject.pos
    if isinstance(cell, bool):
        return Compare(pos, "==", subject, Const(pos, cell, "boolean"))
    if isinstance(cell, int | float):
        number = Decimal(str(cell))
        if not number.is_finite():  # YAML's .nan and .inf
            raise CellError(f"{cell} is not a number a cell can test")
        return Compare(pos, "==", subject, Const(pos, number, "number"))
    text = str(cell).strip()
    if text in ("-", ""):
        return None
    if depth == 1:
        _check_separators(text)
    parts = _split_list(text)
    if len(parts) > 1:
        tests = [_within(text, p, subject, depth) for p in parts]
        if any(t is None for t in tests):
            raise CellError("'-' cannot be part of a list")
        return Or(pos, tuple(t for t in tests if t is not None))
    inside = _negated(text)
    if inside is not None:
        inner = _within(text, inside, subject, depth)
        if inner is None:
            raise CellError("not(-) matches nothing")
        return Not(pos, inner)
    bounds = _range(text)
    if bounds:
        opening, low, high, closing = bounds
        low_value, high_value = _literal(low, pos), _literal(high, pos)
        _check_nonempty(opening, low_value, high_value, closing)
        return And(
            pos,
            (
                Compare(pos, ">=" if opening == "[" else ">", subject, low_value),
                Compare(pos, "<=" if closing == "]" else "<", subject, high_value),
            ),
        )
    _check_slips(text)
    match = _COMPARISON.match(text)
    if match:
        op = "==" if match.group(1) == "=" else match.group(1)
        return Compare(pos, op, subject, _literal(match.group(2), pos))
    return Compare(pos, "==", subject, _literal(text, pos))


def _within(text: str, part: str, subject: Expr, depth: int) -> Expr | None:
    """The test of ``part``, a list item or the inside of ``not(...)`` of the cell ``text``; a
    suggestion for it is made one for the whole cell."""
    try:
        return parse_cell(part, subject, depth + 1)
    except CellError as exc:
        if exc.suggestion is not None and part.strip():
            exc.suggestion = text.replace(part.strip(), exc.suggestion, 1)
        raise


def _check_separators(text: str) -> None:
    """Refuse ``> 5,000,000``: read as a list it would mean ``> 5`` or ``0``, silently."""
    found = list(_THOUSANDS.finditer(_QUOTED.sub(lambda m: " " * len(m.group()), text)))
    if found:
        fixed = text
        for match in reversed(found):  # every such number, from the end so positions hold
            fixed = fixed[: match.start()] + match.group().replace(",", "") + fixed[match.end() :]
        raise CellError(
            f"{found[0].group()!r} has thousands separators: S-FEEL numbers have none "
            "(a comma separates the tests of a list)",
            fixed,
        )


def _check_nonempty(opening: str, low: Const, high: Const, closing: str) -> None:
    """A range no value is inside is a slip (bounds swapped, or one value with an open end)."""
    lo, hi = low.value, high.value
    if isinstance(lo, Decimal) and isinstance(hi, Decimal):
        if lo.is_nan() or hi.is_nan():
            return  # NaN does not order; the cell's meaning (nothing is inside) is as written
        above, same = lo > hi, lo == hi
    elif isinstance(lo, str) and isinstance(hi, str):
        above, same = lo > hi, lo == hi
    else:
        return  # a type problem, which the cell's type check reports
    if above:
        swapped = f"{opening}{_shown(high)}..{_shown(low)}{closing}"
        raise CellError(f"empty range: {_shown(low)} is above {_shown(high)}", swapped)
    if same and not (opening == "[" and closing == "]"):
        raise CellError("empty range: no value is inside it", _shown(low))


def _shown(const: Const) -> str:
    return f'"{const.value}"' if isinstance(const.value, str) else str(const.value)


def _check_slips(text: str) -> None:
    """Operators and ranges written as other languages write them, with the S-FEEL form."""
    slip = _SLIP.match(text)
    if slip:
        operator, operand = slip.groups()
        message, fix = _SLIPS[operator]
        raise CellError(message, fix(operand.strip()) if operand.strip() else None)
    if text.startswith("not ") and not text[4:].lstrip().startswith("("):
        raise CellError("not takes parentheses in S-FEEL", f"not({text[4:].strip()})")
    if len(text) >= 2 and text[0] in "[(]" and text[-1] in "])[" and ".." not in text:
        low, comma, high = text[1:-1].partition(",")
        if comma and low.strip() and high.strip():
            fixed = f"{text[0]}{low.strip()}..{high.strip()}{text[-1]}"
            raise CellError("a range is written with '..' between its ends", fixed)
    if ".." in text and text[0] not in "[(]" and text[-1] not in "])[":
        raise CellError("a range needs brackets: [ ] include an end, ( ) exclude it", f"[{text}]")


def _split_list(text: str) -> list[str]:
    """The tests of a list cell, split at the commas outside quotes, ranges and ``not(...)``.

    A range may open with ``]`` and close with ``[`` (``]0..1[`` in DMN) and mix brackets with
    parentheses (``[0..1)``), so brackets are not counted in pairs: a parenthesis after ``not``
    opens a negation, closed by ``)``; any other opens a range, as ``[`` and ``]`` do outside
    one, and inside a range ``)``, ``]`` or ``[`` closes it.
    """
    parts, current, quote = [], "", ""
    opened: list[str] = []  # "not" or "range", innermost last
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "(":
            opened.append("not" if current.rstrip().endswith("not") else "range")
        elif char in "[]":
            if opened and opened[-1] == "range":
                opened.pop()
            else:
                opened.append("range")
        elif char == ")" and opened:
            opened.pop()
        elif char == "," and not opened:
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
        number = Decimal(text)
    except ArithmeticError:
        number = None
    if number is not None and number.is_finite():
        return Const(pos, number, "number")
    # bare words like gold are strings, as in the spec; so are NaN and Infinity (no S-FEEL
    # numbers: a NaN bound would make comparisons raise)
    if re.fullmatch(r"[A-Za-z_][\w\- ]*", text):
        return Const(pos, text, "string")
    raise CellError(f"cannot read {short_repr(text)} as a literal")


def cell_interval(cell: Any) -> tuple[Any, ...] | None:
    """A comparable description of the values a cell accepts, for the unreachable-row check:
    ``("all",)``, ``("values", frozenset)``, ``("range", low, low_closed, high, high_closed)``,
    ``("union", pieces)`` for a list cell (any of the pieces), or None when the cell is too
    complex to reason about (or not a unary test: its error is reported elsewhere)."""
    try:
        return _interval(cell)
    except (CellError, ArithmeticError):
        return None


def _interval(cell: Any) -> tuple[Any, ...] | None:
    if isinstance(cell, bool):
        return ("values", frozenset([cell]))
    if isinstance(cell, int | float):
        return ("range", _finite(str(cell)), True, _finite(str(cell)), True)
    text = str(cell).strip()
    if text in ("-", ""):
        return ("all",)
    if _negated(text) is not None:
        return None
    parts = _split_list(text)
    if len(parts) > 1:
        pieces = [_interval(p) for p in parts]
        if any(p is None or p[0] != "range" and p[0] != "values" for p in pieces):
            return None
        values = frozenset(v for p in pieces if p and p[0] == "values" for v in p[1])
        ranges = [p for p in pieces if p and p[0] == "range"]
        if not ranges:
            return ("values", values)
        return ("union", (*ranges, *([("values", values)] if values else [])))
    bounds = _range(text)
    if bounds:
        o, low, high, c = bounds
        return ("range", _finite(low), o == "[", _finite(high), c == "]")
    match = _COMPARISON.match(text)
    if match:
        op, value = match.group(1), _finite(match.group(2))
        inf = Decimal("Infinity")
        return {
            "<": ("range", -inf, False, value, False),
            "<=": ("range", -inf, False, value, True),
            ">": ("range", value, False, inf, False),
            ">=": ("range", value, True, inf, False),
            "=": ("range", value, True, value, True),
        }.get(op)
    literal = _literal(text, (1, 0)).value
    if isinstance(literal, Decimal):
        return ("range", literal, True, literal, True)
    return ("values", frozenset([literal]))


def _finite(text: str) -> Decimal:
    """The number ``text`` is; NaN and infinities are none (a NaN would make ``covers`` raise)."""
    number = Decimal(text)
    if not number.is_finite():
        raise CellError(f"{text!r} is not a number")
    return number


def covers(outer: tuple[Any, ...] | None, inner: tuple[Any, ...] | None) -> bool:
    """Whether every value ``inner`` accepts is accepted by ``outer`` (False when unsure).

    A list cell is a union: it is covered when each of its pieces is, and covers what one of its
    pieces covers (values that only several pieces together cover give False: unsure).
    """
    if outer is None or inner is None:
        return False
    mine = outer[1] if outer[0] == "union" else (outer,)
    for piece in inner[1] if inner[0] == "union" else (inner,):
        # each value of a value set on its own: "gold, > 5" covers "gold" through one piece
        singles = (
            [("values", frozenset([v])) for v in piece[1]] if piece[0] == "values" else [piece]
        )
        if not all(any(_covers(o, s) for o in mine) for s in singles):
            return False
    return True


def _covers(outer: tuple[Any, ...], inner: tuple[Any, ...]) -> bool:
    if outer[0] == "all":
        return True
    if inner[0] == "all" or outer[0] != inner[0]:
        return False
    if outer[0] == "values":
        return bool(inner[1] <= outer[1])
    _, olo, oloc, ohi, ohic = outer
    _, ilo, iloc, ihi, ihic = inner
    low_ok = olo < ilo or (olo == ilo and (oloc or not iloc))
    high_ok = ohi > ihi or (ohi == ihi and (ohic or not ihic))
    return bool(low_ok and high_ok)
