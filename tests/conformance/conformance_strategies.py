"""Hypothesis strategies: valid deals (SPEC §2) and valid ruleset sets (SPEC §3) over them.

Deals draw their amounts from small pools so that derived facts land exactly on the literals
the rulesets compare them with (a margin of 1 - 70/100 = 0.3 against ``margin < 0.3``), and
vary every optional part: no partner, a partner without a tier, no support or billing, null
values, subscription lines without cost, a missing or empty ``extras`` list.

Rulesets are generated as data (:class:`RulesetSpec`) and written as YAML files, then loaded
through ``app.build`` with ``-r`` semantics. Every generated set is valid by construction: paths
and literals are typed as the deal schema says, outputs are read only by rules of a later
stratum (no cycles), first-hit tables have no unreachable rows, and priority tables carry a
value order. Conditions are checked with the same lowering ``app.build`` uses so that none is
impossible ("can never be true") or too large (more than 64 alternatives).

The lowering check also bounds how many durable rules one deal can match per policy (8 rules of
at most 6 alternatives, and at most 10 table rows, of which one alternative each can match):
durable_rules fails from 65 distinct matching conditions on one fact (see
test_conformance_many_rules.py), which could otherwise crash the test process.

Two kinds of input are generated only on request, for engines without the matching known bug
(see conformance_support): ``edges`` (literals and amounts beyond a double's precision) and
``mixed`` (outputs holding values of mixed types).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from dealdesk.deal.schema import (
    CATEGORIES,
    COST_CENTERS,
    FIELDS,
    OFFER_TYPES,
    PARTNER_KINDS,
    PARTNER_TIERS,
    PRICING_MODELS,
    REGIONS,
    RESOURCES,
    SEGMENTS,
    SUPPORT_MODELS,
)
from dealdesk.engines.durable.lowering import ConditionCompiler
from dealdesk.manager import load_plugins
from dealdesk.rules.expressions import FieldType, Scope, parse_expression
from dealdesk.rules.policyset import house_approvers
from dealdesk.rules.tables import cell_interval, covers

PLUGIN = "conformance_plugin"
POLICIES = ("partner-margin", "billing-milestone", "onsite-support")
ABSENT = object()

# ---------------------------------------------------------------------------------------------
# Pools shared by deals and rulesets, so that values meet literals exactly

DATES = ["2025-12-31", "2026-01-01", "2026-06-30", "2026-12-31", "2027-01-01"]
NAMES = ["Acme Robotics", "Delta Systems Integration", "Ωmega Ltd", "ACME", ""]
SKUS = ["HW-1", "SW-2", "LAB-3", "SUP-9", "subs", "ÉDGE-1"]
SPLITS = [[30, 30, 30, 10], [50, 50], [100], [100, 0], [30, 30, 30], ["33.3", "33.3", "33.4"]]
PRICES: list[Any] = [0, 20, 50, 70, 80, 100, 150, "99.99", "0.01", 250000, 500000]
BIG_PRICE = "999999999999999.99"  # just below the deal schema's 1e15 bound
QUANTITIES: list[Any] = [0, 1, 2, 3, "0.5", 1.5]
COSTS: list[Any] = [0, 10, 35, 50, 70, 100, "65.01"]
LIST_PRICES: list[Any] = [0, 100, 125, 200, None]
DISCOUNTS: list[Any] = [0, "0.05", "0.1", "0.15", "0.25", "0.2501", 1, None]
TERMS: list[Any] = [0, 30, 45, 60, 61, 90, None]
KPI: list[Any] = [0, 20, "92000", None]

#: Literals conditions compare amounts and ratios with: the values the deal pools produce (a line
#: of 100 at a cost of 70 has a margin of exactly 0.3), so comparisons often sit on the boundary.
AMOUNTS = ("0", "20", "50", "60", "100", "150", "200", "500000", "-1")
RATIOS = ("0", "0.05", "0.1", "0.2", "0.25", "0.3", "0.35", "0.5", "1", "-1")
NUMBERS = tuple(sorted(set(AMOUNTS + RATIOS), key=float))
#: Literals that a double cannot tell from a derived value (1/3 as 28 exact digits against
#: 0.3333333333333333), and a literal a double cannot hold at all: exact decimal comparison
#: (SPEC §2, §3) and a comparison of doubles disagree on them. Generated with ``edges=True``.
EDGE_NUMBERS = ("0.3333333333333333", "0.6666666666666666", "999999999999999.98")


# ---------------------------------------------------------------------------------------------
# Deals


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``strategy``, or ABSENT: the key is left out."""
    return st.one_of(st.just(ABSENT), strategy)


def _present(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not ABSENT}


def _object(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A mapping in which each field may be missing."""
    return st.fixed_dictionaries({k: _maybe(v) for k, v in fields.items()}).map(_present)


_LINE = st.fixed_dictionaries(
    {
        "sku": st.sampled_from(SKUS),
        "category": st.sampled_from(CATEGORIES),
        "quantity": st.sampled_from(QUANTITIES),
        "unit_price": st.sampled_from([100] * 4 + PRICES),  # mostly 100: most lines sell
    },
    optional={"list_price": st.sampled_from(LIST_PRICES), "unit_cost": st.sampled_from(COSTS)},
)
_LABOR = _object(
    resource=st.sampled_from(RESOURCES),
    grade=st.sampled_from([10, 11, 12]),
    hours=st.sampled_from([0, 8, 640]),
)


@st.composite
def lines(draw: st.DrawFn, edges: bool = True) -> dict[str, Any]:
    """A valid line: a cost on every line but (sometimes) subscription lines; with ``edges``,
    sometimes a price with more digits than a double holds."""
    line = draw(_LINE)
    if edges and draw(st.integers(0, 9)) == 0:
        line["unit_price"] = BIG_PRICE
    if line["category"] != "subscription" and "unit_cost" not in line:
        line["unit_cost"] = draw(st.sampled_from(COSTS))
    if line["category"] == "labor":
        line.update(draw(_LABOR))
    return line


_CUSTOMER = _object(
    name=st.sampled_from(NAMES),
    segment=st.sampled_from(SEGMENTS),
    region=st.sampled_from(REGIONS),
    hq_country=st.sampled_from(["US", "FR", "JP"]),
    government=st.booleans() | st.none(),
    platinum_club=st.booleans(),
    presales_consulting=st.booleans(),
)
_OFFER = _object(
    type=st.sampled_from(OFFER_TYPES),
    pricing=st.sampled_from(PRICING_MODELS),
    kpi_at_risk=st.sampled_from(KPI),
)
_OPTIONAL_PARTS = {
    "currency": st.sampled_from(["USD", "EUR", "JPY"]),
    "partner": _object(
        name=st.sampled_from(NAMES),
        kind=st.sampled_from(PARTNER_KINDS),
        tier=st.sampled_from(PARTNER_TIERS) | st.none(),
        discount=st.sampled_from(DISCOUNTS),
    ),
    "support": _object(
        model=st.sampled_from(SUPPORT_MODELS), resident_cost_to=st.sampled_from(COST_CENTERS)
    ),
    "billing": _object(
        payment_terms_days=st.sampled_from(TERMS), requested_split=st.sampled_from(SPLITS)
    ),
    "dates": _object(close=st.sampled_from(DATES), start=st.sampled_from(DATES)),
    "extras": st.lists(
        _object(k=st.sampled_from(["p", "q"]), v=st.sampled_from([0, "0.5", 1, 2])), max_size=3
    ),
}


def _priced(deal: dict[str, Any]) -> dict[str, Any]:
    if all(str(x["quantity"]) == "0" or str(x["unit_price"]) == "0" for x in deal["lines"]):
        deal["lines"][0].update(quantity=1, unit_price=100)  # a deal needs a contract value
    return deal


@functools.lru_cache(maxsize=2)
def deals_with(edges: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Valid deals: every required part; optional parts present, absent or null."""
    return st.fixed_dictionaries(
        {
            "id": st.sampled_from(["G-1", "G-2", "été-3"]),
            "customer": _CUSTOMER,
            "offer": _OFFER,
            "lines": st.lists(lines(edges), min_size=1, max_size=4),
        },
        optional=_OPTIONAL_PARTS,
    ).map(_priced)


deals = deals_with(True)


# ---------------------------------------------------------------------------------------------
# The vocabulary of conditions: every path a ruleset may read, by type

NUMERIC = [
    "totals.product",
    "totals.services",
    "totals.support",
    "totals.subscription",
    "totals.contract",
    "totals.cost",
    "margin",
    "services_ratio",
    "max_line_discount",
    "labor_margin",
    "partner.discount",
    "billing.payment_terms_days",
    "offer.kpi_at_risk",
    "requested_split.total",
    "requested_split.min",
    "extras_count",
]
#: Numeric paths holding fractions rather than amounts, days or counts.
RATIO_PATHS = frozenset(
    {"margin", "services_ratio", "max_line_discount", "labor_margin", "partner.discount"}
)
ENUMS: dict[str, Sequence[str]] = {
    "customer.segment": SEGMENTS,
    "customer.region": REGIONS,
    "offer.type": OFFER_TYPES,
    "offer.pricing": PRICING_MODELS,
    "partner.kind": PARTNER_KINDS,
    "partner.tier": PARTNER_TIERS,
    "support.model": SUPPORT_MODELS,
    "support.resident_cost_to": COST_CENTERS,
}
STRINGS: dict[str, Sequence[str]] = {
    "customer.name": NAMES,
    "partner.name": NAMES,
    "customer.hq_country": ["US", "FR"],
    "requested_split.key": ["30/30/30/10", "50/50", "100"],
    "currency": ["USD", "JPY"],
    "id": ["G-1", "été-3"],
}
DATE_PATHS = ["dates.close", "dates.start"]
PATTERNS = ["^A", "Robotics$", "^$", "[Ωé]", "^[A-Z]+$", "30/", "^G-\\d$", "(?i)acme"]
BOOLEANS = [
    "risk_offer",
    "customer.government",
    "customer.platinum_club",
    "customer.presales_consulting",
]
OPTIONAL = [
    "partner",
    "partner.tier",
    "partner.name",
    "partner.discount",
    "support",
    "support.model",
    "billing",
    "billing.requested_split",
    "billing.payment_terms_days",
    "margin",
    "labor_margin",
    "customer.government",
    "offer.kpi_at_risk",
    "requested_split",
    "dates.close",
    "extras",
    "extras_count",
]


@dataclass(frozen=True)
class ItemVocabulary:
    """The fields of one list's elements: ``for VAR in LIST``."""

    list: str
    var: str
    numeric: Sequence[str]
    enums: Mapping[str, Sequence[str]]
    strings: Mapping[str, Sequence[str]]


LISTS = [
    ItemVocabulary(
        "lines",
        "line",
        ["quantity", "unit_price", "list_price", "unit_cost", "amount", "margin", "hours"],
        {"category": CATEGORIES, "resource": RESOURCES},
        {"sku": SKUS},
    ),
    ItemVocabulary("extras", "x", ["v"], {}, {"k": ["p", "q"]}),
]
OPS = ("==", "!=", "<", "<=", ">", ">=")
ARITH = ("+", "-", "*", "/")
#: Paths compared with each other: numbers, names (equal across customer and partner), dates.
PAIRS = (tuple(NUMERIC), ("customer.name", "partner.name"), tuple(DATE_PATHS))


@dataclass(frozen=True)
class OutputSpec:
    """A generated output: how it combines, its type, and the stratum of the rules setting it."""

    name: str
    combine: str
    type: str
    kind: str  # number | string | mixed (strings and numbers in one `any` output)
    level: int
    default: Any = ABSENT

    @property
    def readable(self) -> str | None:
        """How a condition may read it: number, string, mixed, or not at all (a list)."""
        return None if self.combine == "list" else self.kind


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def member_tests(path: str, values: Sequence[str]) -> st.SearchStrategy[str]:
    """``path == "v"``, ``!=``, ``"v" == path``, ``in [...]``, ``not in [...]``."""
    one = st.sampled_from(list(values)).map(_quote)
    many = st.lists(st.sampled_from(list(values)), min_size=1, max_size=3, unique=True).map(
        lambda vs: ", ".join(map(_quote, vs))
    )
    return st.one_of(
        one.map(lambda q: f"{path} == {q}"),
        one.map(lambda q: f"{path} != {q}"),
        one.map(lambda q: f"{q} == {path}"),
        many.map(lambda m: f"{path} in [{m}]"),
        many.map(lambda m: f"{path} not in [{m}]"),
    )


def number(edges: bool, path: str = "") -> st.SearchStrategy[str]:
    """A literal; for ``path``, one from the values that path takes in generated deals."""
    pool = RATIOS if path in RATIO_PATHS else AMOUNTS if path in NUMERIC else NUMBERS
    return st.sampled_from(pool + EDGE_NUMBERS if edges else pool)


def on_boundary(paths: Sequence[str], edges: bool) -> st.SearchStrategy[str]:
    """``path OP literal`` with a literal that path often equals."""
    return st.sampled_from(tuple(paths)).flatmap(
        lambda path: st.builds(
            lambda op, n: f"{path} {op} {n}", st.sampled_from(OPS), number(edges, path)
        )
    )


def numeric_operand(readable: Sequence[OutputSpec], edges: bool) -> st.SearchStrategy[str]:
    """A path, output or arithmetic on them, never a bare literal (so a comparison reads data)."""
    paths = st.sampled_from(
        (*NUMERIC, *(f"outputs.{o.name}" for o in readable if o.kind != "string"))
    )
    arith = st.builds(
        lambda a, op, b: f"({a} {op} {b})",
        paths,
        st.sampled_from(ARITH),
        paths | number(edges) | st.just("0"),
    )
    return paths | arith


@functools.lru_cache(maxsize=256)
def atoms(readable: tuple[OutputSpec, ...], edges: bool) -> st.SearchStrategy[str]:
    """One test: comparisons, memberships, exists(), matches(), any()/all(), booleans."""
    operand = numeric_operand(readable, edges)
    strings_out = [f"outputs.{o.name}" for o in readable if o.kind in ("string", "mixed")]
    string_paths = {**STRINGS, **{p: ["a", "b", "abc", "5"] for p in strings_out}}

    @st.composite
    def enum_atom(draw: st.DrawFn) -> str:
        path, values = draw(st.sampled_from(sorted({**ENUMS, **string_paths}.items())))
        return draw(member_tests(path, values))

    @st.composite
    def field_pair(draw: st.DrawFn) -> str:
        group = draw(st.sampled_from(PAIRS))
        a, b = draw(st.lists(st.sampled_from(group), min_size=2, max_size=2, unique=True))
        op = draw(st.sampled_from(OPS if group is PAIRS[0] else ("==", "!=")))
        return f"{a} {op} {b}"

    return st.one_of(
        on_boundary(NUMERIC, edges),
        st.builds(lambda a, op, b: f"{a} {op} {b}", operand, st.sampled_from(OPS), number(edges)),
        st.builds(lambda a, op, b: f"{a} {op} {b}", operand, st.sampled_from(OPS), operand),
        st.builds(
            lambda lo, op1, path, op2, hi: f"{lo} {op1} {path} {op2} {hi}",
            number(edges),
            st.sampled_from(["<", "<="]),
            st.sampled_from(NUMERIC),
            st.sampled_from(["<", "<="]),
            number(edges),
        ),
        enum_atom(),
        st.sampled_from(DATE_PATHS).flatmap(lambda path: member_tests(path, DATES)),
        field_pair(),
        st.builds(
            lambda path, form: form.format(path),
            st.sampled_from(BOOLEANS),
            st.sampled_from(["{}", "{} == True", "{} != False", "{} == False"]),
        ),
        st.builds(
            lambda path: f"exists({path})",
            st.sampled_from(OPTIONAL + [f"outputs.{o.name}" for o in readable]),
        ),
        st.builds(
            lambda path, pattern: f"matches({path}, {_quote(pattern)})",
            st.sampled_from(sorted(STRINGS) + strings_out),
            st.sampled_from(PATTERNS),
        ),
        st.one_of(*(quantified(items, edges) for items in LISTS)),
    )


def connect(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``not``, ``and`` and ``or`` over smaller conditions (the extend step of st.recursive)."""
    return st.one_of(
        st.builds(lambda x: f"not ({x})", inner),
        st.builds(lambda x, y: f"({x}) and ({y})", inner, inner),
        st.builds(lambda x, y: f"({x}) or ({y})", inner, inner),
    )


def quantified(items: ItemVocabulary, edges: bool) -> st.SearchStrategy[str]:
    """``any(...)``/``all(...)`` over one list, with a body of and/or/not over its fields."""
    v = items.var
    numeric = st.sampled_from([f"{v}.{f}" for f in items.numeric])
    literal_tests = [
        member_tests(f"{v}.{f}", vals) for f, vals in {**items.enums, **items.strings}.items()
    ]
    atom = st.one_of(
        st.sampled_from(items.numeric).flatmap(
            lambda f: st.builds(
                lambda op, n: f"{v}.{f} {op} {n}",
                st.sampled_from(OPS),
                number(edges, "margin" if f == "margin" else "totals.contract"),
            )
        ),
        st.builds(
            lambda a, op, b, cmp, n: f"{a} {op} {b} {cmp} {n}",
            numeric,
            st.sampled_from(ARITH),
            numeric | number(edges),
            st.sampled_from(OPS),
            number(edges),
        ),
        st.builds(lambda a, op, b: f"{a} {op} {b}", numeric, st.sampled_from(OPS), numeric),
        st.builds(lambda f: f"exists({v}.{f})", st.sampled_from([*items.numeric, *items.enums])),
        *literal_tests,
        *(
            st.builds(
                lambda p, f=f: f"matches({v}.{f}, {_quote(p)})",
                st.sampled_from(["^HW", "-\\d$", "^[a-z]+$"]),
            )
            for f in items.strings
        ),
    )
    body = st.recursive(
        atom,
        connect,
        max_leaves=3,
    )
    return st.builds(
        lambda kind, text: f"{kind}({text} for {v} in {items.list})",
        st.sampled_from(["any", "all"]),
        body,
    )


def output_atoms(readable: tuple[OutputSpec, ...], edges: bool) -> st.SearchStrategy[str]:
    """Tests of outputs set by earlier strata (``margin < outputs.floor - 0.05``)."""
    numbers = [f"outputs.{o.name}" for o in readable if o.kind != "string"]
    strings = [f"outputs.{o.name}" for o in readable if o.kind != "number"]
    found = [st.sampled_from([f"outputs.{o.name}" for o in readable]).map(lambda p: f"exists({p})")]
    if numbers:
        out = st.sampled_from(tuple(numbers))
        found += [
            st.builds(lambda o, op, n: f"{o} {op} {n}", out, st.sampled_from(OPS), number(edges)),
            st.builds(
                lambda p, op, o, n: f"{p} {op} {o} - {n}",
                st.sampled_from(tuple(NUMERIC)),
                st.sampled_from(OPS),
                out,
                number(edges),
            ),
            st.builds(
                lambda o, op, p: f"{o} {op} {p}",
                out,
                st.sampled_from(OPS),
                st.sampled_from(tuple(NUMERIC)),
            ),
        ]
    if strings:
        found.append(
            st.sampled_from(tuple(strings)).flatmap(
                lambda p: member_tests(p, ("a", "b", "abc", "5"))
            )
        )
    return st.one_of(*found)


@functools.lru_cache(maxsize=256)
def conditions(
    readable: tuple[OutputSpec, ...] = (), edges: bool = True, max_leaves: int = 4
) -> st.SearchStrategy[str]:
    """Conditions over the deal and the ``readable`` outputs: atoms under not/and/or; half the
    atoms read an output when there are outputs to read. ``edges``: see EDGE_NUMBERS."""
    leaves = atoms(readable, edges)
    if readable:
        leaves = st.one_of(output_atoms(readable, edges), leaves)
    return st.recursive(
        leaves,
        connect,
        max_leaves=max_leaves,
    )


# ---------------------------------------------------------------------------------------------
# What `app.build` will check: the scope of paths, and the lowering's limits


def _plugin_facts() -> dict[str, str]:
    return dict(load_plugins(autoload=False, enabled=[PLUGIN]).fact_types)


FACT_TYPES = _plugin_facts()
_OUTPUT_TYPES = {
    "money": "number",
    "fraction": "number",
    "number": "number",
    "integer": "number",
    "string": "string",
    "list": "array",
}


def scope_of(outputs: Sequence[OutputSpec]) -> Scope:
    """The paths a condition of a policy with these outputs may read (as app.build sees them)."""
    known = {path: FieldType(f.type, f.enum) for path, f in FIELDS.items()}
    for path, kind in FACT_TYPES.items():
        known.setdefault(path, FieldType(kind))
    known["outputs"] = FieldType("object")
    for output in outputs:
        known[f"outputs.{output.name}"] = FieldType(_OUTPUT_TYPES.get(output.type, "any"))
    return Scope(known)


def alternatives(text: str, scope: Scope) -> int:
    """How many durable rules the condition becomes (0: never true; one too complex for durable
    rules is one synthetic rule).

    A condition the parser refuses is a bug in the generator: the error is raised.
    """
    return len(ConditionCompiler().compile(parse_expression(text, scope)))


# ---------------------------------------------------------------------------------------------
# Rulesets


@dataclass
class RulesetSpec:
    name: str
    policy: str
    data: dict[str, Any]
    rule_ids: list[str] = field(default_factory=list)


ROLES = tuple(house_approvers())
MESSAGES = (
    "plain text",
    "rule {{ rule }} on {{ totals.contract | money }}",
    "tier {{ (partner | default({})).tier | default('none') }}, status so far {{ decision.status }}",
    "ünïcode ✓ <b>&</b>",
)
#: Set values: number literals, and expressions over the deal (None when an operand is missing).
NUMBER_VALUES = (0, 1, 0.5, 100, 0.35, -2)
#: Numbers written as strings: a number output holding text (generated with ``mixed``).
NUMERALS = ("0.5", "1e2")
NUMBER_EXPRESSIONS = (
    "= totals.product * 0.30",
    "= margin",
    "= labor_margin",
    "= 1 - totals.cost / totals.contract",
    "= totals.services / totals.support",
    "= max(0, 1 - totals.cost / totals.contract)",
    "= min(partner.discount, 0.25)",
    "= round(services_ratio, 2)",
    "= abs(totals.cost - totals.product)",
    "= sum(line.amount for line in lines)",
    "= partner.discount + max_line_discount",
)
STRING_VALUES = ("a", "b", "abc", "5", "= partner.tier", "= customer.region", "= support.model")
MIXED_VALUES = ("abc", "5", 5, 0.5, "0.30", "= margin", "= partner.tier")


@dataclass
class _Ids:
    count: int = 0

    def next(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"


def _value(draw: st.DrawFn, output: OutputSpec, readable: Sequence[OutputSpec], mixed: bool) -> Any:
    if output.kind == "string":
        return draw(st.sampled_from(STRING_VALUES))
    if output.kind == "mixed":
        return draw(st.sampled_from(MIXED_VALUES))
    lower = tuple(f"= outputs.{o.name} * 2" for o in readable if o.kind == "number")
    literals = NUMBER_VALUES + (NUMERALS if mixed else ())
    return draw(st.sampled_from(literals + NUMBER_EXPRESSIONS + lower))


def _actions(
    draw: st.DrawFn,
    settable: Sequence[OutputSpec],
    readable: Sequence[OutputSpec],
    mixed: bool,
    sets: Sequence[OutputSpec] | None = None,
) -> dict[str, Any]:
    then: dict[str, Any] = {}
    if sets is not None:
        chosen = list(sets)
    elif settable:
        chosen = draw(st.lists(st.sampled_from(settable), max_size=2, unique=True))
    else:
        chosen = []
    if chosen:
        then["set"] = {o.name: _value(draw, o, readable, mixed) for o in chosen}
    for key in draw(st.lists(st.sampled_from(("require", "reject", "flag", "reason")), max_size=2)):
        if key == "require":
            roles = draw(st.lists(st.sampled_from(ROLES), min_size=1, max_size=2, unique=True))
            then["require"] = roles[0] if len(roles) == 1 else roles
        else:
            then[key] = draw(st.sampled_from(MESSAGES))
    return then


def _outputs(draw: st.DrawFn, ids: _Ids, mixed: bool, flat: bool = False) -> list[OutputSpec]:
    """Up to four outputs; with ``mixed``, some hold strings and numbers or a string default;
    ``flat``: all set in the first stratum."""
    specs = []
    kinds = ("number", "number", "string", "mixed") if mixed else ("number", "string")
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(kinds))
        if kind == "number":
            combine = draw(st.sampled_from(("first", "max", "min", "sum", "list")))
            types = ["any", "list"] if combine == "list" else ["any", "number", "fraction", "money"]
            types += ["integer"] if combine != "list" else []
        elif kind == "string":
            combine = draw(st.sampled_from(("first", "list")))
            types = ["any", "list"] if combine == "list" else ["any", "string"]
        else:
            combine, types = "first", ["any"]
        default = draw(st.sampled_from((ABSENT, ABSENT, 0, "none")))
        if default is not ABSENT and (kind == "string" or not mixed):
            default = "none" if kind == "string" else 0
        declared = draw(st.sampled_from(tuple(types)))
        if default is not ABSENT and (
            declared == "list" or (default == "none" and declared not in ("any", "string"))
        ):
            default = ABSENT  # a default that is not of the declared type is a validation error
        specs.append(
            OutputSpec(
                ids.next("o"),
                combine,
                declared,
                kind,
                0 if flat else draw(st.integers(0, 2)),
                default,
            )
        )
    return specs


def _condition(
    draw: st.DrawFn, readable: Sequence[OutputSpec], scope: Scope, limit: int, edges: bool
) -> str:
    strategy = conditions(tuple(readable), edges)
    return draw(strategy.filter(lambda t: 0 < alternatives(t, scope) <= limit))


# -- decision tables


@functools.lru_cache(maxsize=64)
def _cells(kind: str, values: tuple[str, ...], edges: bool) -> st.SearchStrategy[Any]:
    """S-FEEL unary tests for an input of this kind (number, enum, string, date, boolean)."""
    if kind == "boolean":
        return st.sampled_from((True, False, "-", "not(true)"))
    if kind == "number":
        single = st.one_of(
            number(edges),
            st.builds(
                lambda op, n: f"{op} {n}",
                st.sampled_from(["<", "<=", ">", ">=", "=", "!="]),
                number(edges),
            ),
            st.builds(
                lambda o, pair, c: f"{o}{pair[0]}..{pair[1]}{c}",
                st.sampled_from(["[", "(", "]"]),
                st.lists(number(edges), min_size=2, max_size=2, unique=True).map(
                    lambda p: sorted(p, key=float)
                ),
                st.sampled_from(["]", ")", "["]),
            ),
        )
        listed = st.one_of(
            st.lists(number(edges), min_size=2, max_size=3, unique=True).map(", ".join),
            # a list of comparisons and ranges: any of them matches
            st.lists(single, min_size=2, max_size=3, unique=True).map(", ".join),
        )
        literal = st.sampled_from((0, 0.2, 0.3, 100, 1))  # YAML numbers as cells
        negated = st.tuples(st.sampled_from(("not(", "not (")), single | listed).map("".join)
        return st.one_of(st.just("-"), single, listed, literal, negated.map(lambda c: f"{c})"))
    quoted = kind in ("string", "date")
    shown = (lambda v: _quote(v)) if quoted else (lambda v: v)
    one = st.sampled_from(values).map(shown)
    listed = st.lists(st.sampled_from(values), min_size=2, max_size=3, unique=True).map(
        lambda vs: ", ".join(shown(v) for v in vs)
    )
    return st.one_of(st.just("-"), one, listed, (one | listed).map(lambda c: f"not({c})"))


@functools.lru_cache(maxsize=256)
def _table_inputs(readable: tuple[OutputSpec, ...]) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """Candidate inputs: (expression, kind, values for enum/string cells)."""
    inputs: list[tuple[str, str, tuple[str, ...]]] = [(p, "number", ()) for p in NUMERIC]
    inputs += [
        ("totals.services / totals.support", "number", ()),
        ("offer.kpi_at_risk / totals.contract", "number", ()),
    ]
    inputs += [(p, "enum", tuple(v)) for p, v in ENUMS.items()]
    inputs += [("customer.name", "string", tuple(NAMES))]
    inputs += [("requested_split.key", "string", ("50/50", "100"))]
    inputs += [("dates.close", "date", tuple(DATES))]
    inputs += [(p, "boolean", ()) for p in BOOLEANS]
    inputs += [
        ('any(line.category == "labor" for line in lines)', "boolean", ()),
        ("all(x.v > 0 for x in extras)", "boolean", ()),
    ]
    for o in readable:
        if o.kind == "number":
            inputs.append((f"outputs.{o.name}", "number", ()))
        elif o.kind == "string":
            inputs.append((f"outputs.{o.name}", "string", ("a", "b", "abc")))
    return tuple(inputs)


HITS = ("unique", "any", "first", "priority", "output order", "rule order", "collect")


@st.composite
def tables(
    draw: st.DrawFn,
    ids: _Ids,
    settable: Sequence[OutputSpec],
    readable: Sequence[OutputSpec],
    edges: bool,
    mixed: bool,
) -> dict[str, Any]:
    """A decision table of any hit policy, its rows reachable and its value order declared."""
    hit = draw(st.sampled_from(HITS))
    candidates = _table_inputs(tuple(readable))
    chosen = draw(
        st.lists(st.sampled_from(candidates), min_size=1, max_size=3, unique_by=lambda c: c[0])
    )
    from_outputs = [c for c in candidates if c[0].startswith("outputs.")]
    if from_outputs and draw(st.booleans()):  # a table of a later stratum reading an output
        first = draw(st.sampled_from(from_outputs))
        chosen = [first, *(c for c in chosen if c[0] != first[0])][:3]
    table: dict[str, Any] = {"id": ids.next("T"), "hit": hit}
    if draw(st.booleans()):
        table["priority"] = draw(st.sampled_from((0, 1, 5, -1)))
    table["inputs"] = [text for text, _, _ in chosen]
    ordered = [o for o in settable if o.kind != "mixed"]
    aggregation = None
    target: OutputSpec | None = None
    order: list[Any] = []
    numeric = [o for o in ordered if o.kind == "number"]
    if hit == "collect" and (numeric or (mixed and ordered)) and draw(st.booleans()):
        aggregation = draw(
            st.sampled_from(("sum", "min", "max", "count") if numeric else ("count",))
        )
        # a count is a number: into a string output only when mixed types are wanted
        counted = ordered if aggregation == "count" and mixed else numeric
        target = draw(st.sampled_from(counted))
        table["aggregation"] = aggregation
    if hit in ("priority", "output order") and ordered:
        target = draw(st.sampled_from(ordered))
        pool = ["a", "b", "abc"] if target.kind == "string" else [0, 1, 0.5, 100]
        order = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
        table["priority"] = {target.name: order}
    elif hit in ("priority", "output order"):
        hit = table["hit"] = "rule order"  # a value order needs an output to order
    rows: list[dict[str, Any]] = []
    intervals: list[list[Any]] = []
    for _ in range(draw(st.integers(1, 5))):
        cells = [draw(_cells(kind, values, edges)) for _, kind, values in chosen]
        interval = [cell_interval(c) for c in cells]
        if hit == "first" and any(
            all(covers(o, i) for o, i in zip(earlier, interval, strict=True))
            for earlier in intervals
        ):
            continue  # unreachable under hit first: app.build refuses it
        intervals.append(interval)
        if target is not None and hit in ("priority", "output order"):
            then = _actions(draw, settable, readable, mixed, sets=[])
            # a value outside the order is a validation error: every row sets one in it
            then.setdefault("set", {})[target.name] = draw(st.sampled_from(order))
        elif target is not None:  # collect with aggregation: every row sets just the target
            then = _actions(draw, settable, readable, mixed, sets=[target])
        else:
            then = _actions(draw, settable, readable, mixed)
        rows.append({"when": cells, "then": then})
    table["rows"] = rows
    return table


@st.composite
def policy_rulesets(
    draw: st.DrawFn, policy: str, ids: _Ids, count: int, edges: bool, mixed: bool, flat: bool
) -> tuple[list[RulesetSpec], list[OutputSpec]]:
    """``count`` rulesets of one policy: its outputs (declared in the first), rules and tables,
    at most 8 rules in all; ``flat``: one stratum and no effective windows."""
    outputs = _outputs(draw, ids, mixed, flat)
    specs: list[RulesetSpec] = []
    budget = 8
    for index in range(count):
        name = ids.next(f"{policy}-gen-")
        data: dict[str, Any] = {"ruleset": name, "policy": policy, "version": f"v{index}"}
        window = draw(
            st.fixed_dictionaries(
                {}, optional={"from": st.sampled_from(DATES), "to": st.sampled_from(DATES)}
            )
        )
        if window and not flat and draw(st.booleans()):
            # a window that ends before it starts is a validation error, not a ruleset
            if len(window) == 2:
                window = {"from": min(window.values()), "to": max(window.values())}
            data["effective"] = window
        if index == 0 and outputs:
            data["outputs"] = {
                o.name: {"combine": o.combine, "type": o.type}
                | ({} if o.default is ABSENT else {"default": o.default})
                for o in outputs
            }
        spec = RulesetSpec(name, policy, data)
        rules = []
        for _ in range(draw(st.integers(1 if index == 0 else 0, min(budget, 5)))):
            level = 0 if flat else draw(st.integers(0, 2))
            readable = [o for o in outputs if o.level < level and o.readable]
            settable = [o for o in outputs if o.level == level]
            scope = scope_of(outputs)
            rule: dict[str, Any] = {"id": ids.next("R")}
            if draw(st.booleans()):
                rule["priority"] = draw(st.sampled_from((0, 1, 5, 100, -3)))
            rule["when"] = _condition(draw, readable, scope, 6, edges)
            rule["then"] = _actions(draw, settable, readable, mixed)
            rules.append(rule)
            spec.rule_ids.append(rule["id"])
        budget -= len(rules)
        if rules:
            data["rules"] = rules
        table_list = []
        for _ in range(draw(st.integers(0, 1))):  # two tables per policy at most
            level = 0 if flat else draw(st.integers(0, 2))
            readable = [o for o in outputs if o.level < level and o.readable]
            settable = [o for o in outputs if o.level == level]
            table = draw(tables(ids, settable, readable, edges, mixed))
            table_list.append(table)
            spec.rule_ids.append(table["id"])
        if table_list:
            data["tables"] = table_list
        specs.append(spec)
    return specs, outputs


@st.composite
def ruleset_sets(
    draw: st.DrawFn, edges: bool = True, mixed: bool = True, flat: bool = False
) -> list[RulesetSpec]:
    """One or two policies, each with one or two generated rulesets.

    :param edges: use literals beyond a double's precision (EDGE_NUMBERS).
    :param mixed: let outputs hold values of mixed types (strings and numbers in an output
        declared without a type, a string default or numeral in a number output).
    :param flat: one stratum per policy and no effective windows (what the columnar engine
        decides from group templates).
    """
    ids = _Ids()
    policies = draw(st.lists(st.sampled_from(POLICIES), min_size=1, max_size=2, unique=True))
    result: list[RulesetSpec] = []
    for policy in policies:
        count = draw(st.integers(1, 2))
        specs, _ = draw(policy_rulesets(policy, ids, count, edges, mixed, flat))
        result.extend(specs)
    return result
