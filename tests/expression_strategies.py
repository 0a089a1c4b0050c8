"""Hypothesis strategies for conditions and the deals they read: every engine's meaning is
checked against the direct three-valued one (``evaluate``) with them."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from dealdesk.engines.durable.lowering import MAX_LISTED_VALUES
from dealdesk.rules.expressions import FieldType, Scope

SCOPE = Scope(
    {
        "a": FieldType("number"),
        "b": FieldType("number"),
        "c": FieldType("number"),
        "s": FieldType("string", ("p", "q", "r")),
        "f": FieldType("boolean"),
        "items": FieldType("array"),
        "items[].k": FieldType("string", ("p", "q")),
        "items[].v": FieldType("number"),
        "outputs": FieldType("object"),
        "outputs.x": FieldType("number"),
        "g": FieldType("object"),
        "g.n": FieldType("number"),
        "g.t": FieldType("string", ("p", "q")),
    }
)
NUMBERS = ["0", "0.1", "0.2", "0.3", "1", "-1", "2.5", "0.35", "0.05"]
OPS = ["==", "!=", "<", "<=", ">", ">="]
# Longer than the lists the compiler turns into one durable rule per value.
LONG_LIST = "[" + ", ".join([*NUMBERS, *map(str, range(100, 100 + MAX_LISTED_VALUES))]) + "]"
MEMBERSHIP = st.sampled_from(["in", "not in"])

numeric = st.sampled_from(["a", "b", "c", "outputs.x", "g.n"])
literal = st.sampled_from(NUMBERS)
arith = st.builds(
    lambda x, op, y: f"{x} {op} {y}",
    numeric,
    st.sampled_from(["+", "-", "*", "/"]),
    st.one_of(numeric, literal),
)
operand = st.one_of(numeric, literal, arith)
item_atom = st.one_of(
    st.builds(lambda k: f'line.k == "{k}"', st.sampled_from(["p", "q"])),
    st.builds(lambda op, n: f"line.v {op} {n}", st.sampled_from(OPS), literal),
    st.just("exists(line.v)"),
    st.builds(lambda op: f"line.v {op} line.v * 2", st.sampled_from(OPS)),
    st.builds(lambda op: f"line.v {op} {LONG_LIST}", MEMBERSHIP),
)
item_condition = st.one_of(
    item_atom, st.builds(lambda x, y: f"({x} and not {y})", item_atom, item_atom)
)
atom = st.one_of(
    st.builds(lambda x, op, y: f"{x} {op} {y}", numeric, st.sampled_from(OPS), operand),
    st.builds(lambda x, op, y: f"{x} {op} {y}", arith, st.sampled_from(OPS), operand),
    st.builds(
        lambda x, op, y: f"{x} {op} {y} {op} 2", literal, st.sampled_from(["<", "<="]), numeric
    ),
    st.builds(lambda v: f's == "{v}"', st.sampled_from(["p", "q"])),
    st.builds(
        lambda op, v: f'g.t {op} "{v}"', st.sampled_from(["==", "!="]), st.sampled_from(["p", "q"])
    ),
    st.builds(lambda v: f's != "{v}"', st.sampled_from(["p", "q"])),
    st.just('s in ["p", "q"]'),
    st.just('s not in ["p"]'),
    st.builds(lambda x, op: f"{x} {op} {LONG_LIST}", numeric, MEMBERSHIP),
    st.just("f"),
    st.builds(lambda p: f"exists({p})", st.sampled_from(["a", "s", "f", "items", "outputs.x"])),
    st.just('matches(s, "^[pq]$")'),
    st.builds(
        lambda q, body: f"{q}({body} for line in items)",
        st.sampled_from(["any", "all"]),
        item_condition,
    ),
)
condition = st.recursive(
    atom,
    lambda inner: st.one_of(
        st.builds(lambda x: f"not ({x})", inner),
        st.builds(lambda x, y: f"({x}) and ({y})", inner, inner),
        st.builds(lambda x, y: f"({x}) or ({y})", inner, inner),
    ),
    max_leaves=5,
)

maybe_number = st.one_of(st.none(), st.sampled_from(NUMBERS).map(Decimal))
deal = st.fixed_dictionaries(
    {
        "a": maybe_number,
        "b": maybe_number,
        "c": maybe_number,
        "s": st.one_of(st.none(), st.sampled_from(["p", "q", "r"])),
        "f": st.one_of(st.none(), st.booleans()),
        "items": st.one_of(
            st.none(),
            st.lists(
                st.fixed_dictionaries(
                    {"k": st.one_of(st.none(), st.sampled_from(["p", "q"])), "v": maybe_number}
                ),
                max_size=3,
            ),
        ),
        "outputs": st.fixed_dictionaries({"x": maybe_number}),
        # a group that is missing, null, not a mapping, or holds the values (or not)
        "g": st.one_of(
            st.none(),
            st.just("text"),
            st.fixed_dictionaries(
                {},
                optional={
                    "n": maybe_number,
                    "t": st.one_of(st.none(), st.sampled_from(["p", "q"])),
                },
            ),
        ),
    }
)
