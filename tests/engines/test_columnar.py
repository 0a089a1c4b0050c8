"""The columnar engine: conditions over a chunk's columns mean exactly what the direct
three-valued meaning says for each deal (Kleene logic, exact decimals), and whole chunks give
the native engine's records byte for byte."""

from __future__ import annotations

import copy
import importlib.util
import io
import json
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from expression_strategies import SCOPE, condition, deal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("numpy")

from dealdesk import app, jsoncodec  # noqa: E402
from dealdesk.deal.validate import prepare_deal  # noqa: E402
from dealdesk.engines import available_engines  # noqa: E402
from dealdesk.engines.columnar.vector import Chunk, ConditionVector  # noqa: E402
from dealdesk.io.executor import InProcess  # noqa: E402
from dealdesk.io.readers import SourceDeal  # noqa: E402
from dealdesk.rules.expressions import (  # noqa: E402
    And,
    Arith,
    Compare,
    Const,
    Exists,
    Expr,
    Field,
    FieldType,
    InList,
    Matches,
    Not,
    Or,
    Quantifier,
    Scope,
    parse_expression,
)
from dealdesk.rules.meaning import evaluate  # noqa: E402
from dealdesk.testing import CliRunner  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# installed plugins (CI installs the example plugin, with a decision sink) left out
NO_AUTOLOAD: dict[str, str | None] = {"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1"}
POS = (1, 0)


def fires(conditions: list[Expr], deals: list[dict[str, Any]]) -> list[list[bool]]:
    """Per condition, where it fires on the chunk of ``deals`` (one vector for them all)."""
    vector = ConditionVector(Chunk(deals))
    return [vector.fires(c).tolist() for c in conditions]


def expected(conditions: list[Expr], deals: list[dict[str, Any]]) -> list[list[bool]]:
    return [[evaluate(c, d) is True for d in deals] for c in conditions]


def truth(text: str, deals: list[dict[str, Any]], scope: Scope = SCOPE) -> list[bool | None]:
    """The three-valued value of a condition on each deal of one chunk, from its masks."""
    true, false = ConditionVector(Chunk(deals)).truth(parse_expression(text, scope))
    return [True if t else False if f else None for t, f in zip(true, false, strict=True)]


def test_the_engine_is_available_but_not_the_default() -> None:
    from dealdesk.engines import DEFAULT_ENGINE

    assert "columnar" in available_engines()
    assert DEFAULT_ENGINE == "native"


# -- Kleene logic, on one chunk holding a true, a false and an unknown row


ROWS = [{"a": Decimal("1"), "s": "p"}, {"a": Decimal("5"), "s": "q"}, {}]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("a < 2", [True, False, None]),
        ("not (a < 2)", [False, True, None]),  # not unknown is unknown
        ("a < 2 and a > 0", [True, False, None]),
        ("a < 2 and a > 9", [False, False, None]),
        ("a < 2 and exists(s)", [True, False, False]),  # unknown and false is false
        ("a < 2 or a > 9", [True, False, None]),
        ("a < 2 or exists(s) == False", [True, False, True]),
        ("a < 2 or not exists(a)", [True, False, True]),  # unknown or true is true
        ('s != "p"', [False, True, None]),  # a missing value is not "different"
        ('s in ["p", "r"]', [True, False, None]),
        ('s not in ["p", "r"]', [False, True, None]),
        ("exists(a)", [True, True, False]),  # never unknown
        ("a * 2 > 3", [False, True, None]),  # arithmetic with a missing operand is unknown
        ("a / (a - 1) > 0", [None, True, None]),  # division by zero is unknown
    ],
)
def test_three_valued_logic_on_a_chunk(text: str, want: list[bool | None]) -> None:
    scope = Scope({"a": FieldType("number"), "s": FieldType("string")})
    assert truth(text, ROWS, scope) == want
    assert want == [evaluate(parse_expression(text, scope), row) for row in ROWS]


def test_any_and_all_over_a_chunks_lists() -> None:
    deals = [
        {"items": [{"k": "p", "v": Decimal(1)}, {"k": "q"}]},
        {"items": [{"k": "p", "v": Decimal(3)}]},
        {"items": []},  # all() over no elements is false, as any()
        {},
        {"items": "text"},  # not a list: no elements
    ]
    assert truth('any(line.k == "q" for line in items)', deals) == [
        True,
        False,
        False,
        False,
        False,
    ]
    # an element whose body is unknown (no v) is not true
    assert truth("all(line.v > 0 for line in items)", deals) == [
        False,
        True,
        False,
        False,
        False,
    ]
    assert truth("not all(line.v > 2 for line in items)", deals) == [
        True,
        False,
        True,
        True,
        True,
    ]


def test_text_that_reads_as_a_number_compares_as_a_number() -> None:
    # meaning._compare compares two texts that both read as numbers as numbers ("1.0" == "1",
    # "10" > "9"): a text column meets such a constant row by row, never as text
    deals: list[dict[str, Any]] = [{"s": "1.0"}, {"s": "10"}, {"s": "p"}, {}]
    s = Field(POS, path="s")
    conditions: list[Expr] = [
        Compare(POS, op="==", left=s, right=Const(POS, value="1")),
        Compare(POS, op=">", left=s, right=Const(POS, value="9")),
        Compare(POS, op="<", left=Const(POS, value="9"), right=s),
        InList(POS, operand=s, values=(Const(POS, value="1"), Const(POS, value="q"))),
        Compare(POS, op="==", left=s, right=Const(POS, value="p")),
    ]
    assert fires(conditions, deals) == expected(conditions, deals)
    # "p" > "9" as texts: "p" does not read as a number
    assert fires(conditions, deals)[:2] == [[True, False, False, False], [False, True, True, False]]


# -- exact boundaries: money and fractions as the per-deal engines compare them


def prepared(*lines: dict[str, Any], **fields: Any) -> dict[str, Any]:
    raw = {
        "id": "B-1",
        "customer": {"name": "X", "segment": "deer", "region": "emea"},
        "offer": {"type": "standard", "pricing": "fixed"},
        "lines": list(lines),
        **fields,
    }
    data, problems = prepare_deal(raw)
    assert not problems and data is not None
    return data


def line(price: Any, cost: Any, list_price: Any = None, quantity: Any = 1) -> dict[str, Any]:
    found = {"sku": "S", "category": "hardware", "quantity": quantity, "unit_price": price}
    found["unit_cost"] = cost
    if list_price is not None:
        found["list_price"] = list_price
    return found


HOUSE = Scope(
    {
        "max_line_discount": FieldType("number"),
        "margin": FieldType("number"),
        "services_ratio": FieldType("number"),
        "totals.contract": FieldType("number"),
    }
)


def test_a_list_price_of_100_sold_at_70_is_a_discount_of_exactly_030() -> None:
    deals = [
        prepared(line(70, 10, list_price=100)),
        prepared(line("69.99", 10, list_price=100)),
        prepared(line("70.01", 10, list_price=100)),
    ]
    assert deals[0]["max_line_discount"] == Decimal("0.30")
    assert truth("max_line_discount > 0.30", deals, HOUSE) == [False, True, False]
    assert truth("max_line_discount >= 0.30", deals, HOUSE) == [True, True, False]
    assert truth("max_line_discount == 0.3", deals, HOUSE) == [True, False, False]
    assert truth("max_line_discount in [0.3, 0.5]", deals, HOUSE) == [True, False, False]


def test_a_margin_on_its_boundary_is_not_below_it() -> None:
    # 1 - 0.7 is 0.3 exactly in decimals (0.30000000000000004 in floats)
    deals = [
        prepared(line(1, "0.7")),
        prepared(line(1, "0.7000000001")),
        prepared(line(3, "2.1")),
        prepared(line(10, "7.5")),
    ]
    assert truth("margin < 0.30", deals, HOUSE) == [False, True, False, True]
    assert truth("margin <= 0.3", deals, HOUSE) == [True, True, True, True]
    assert truth("margin == 0.25", deals, HOUSE) == [False, False, False, True]
    assert truth("margin < 0.30 - 0.05", deals, HOUSE) == [False, False, False, False]
    assert truth("totals.contract >= 3", deals, HOUSE) == [False, False, True, True]


# -- the meaning, on generated conditions and chunks


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(condition, min_size=1, max_size=5), st.lists(deal, min_size=1, max_size=8))
def test_chunk_conditions_are_the_direct_meaning_on_checked_conditions(
    texts: list[str], deals: list[dict[str, Any]]
) -> None:
    conditions = [parse_expression(t, SCOPE) for t in texts]
    assert fires(conditions, deals) == expected(conditions, deals), texts


# values of every kind a path may hold at run time, typed or not (an untyped plugin fact): a
# column of several kinds is compared per row, never guessed
VALUES = [
    None,
    True,
    False,
    0,
    1,
    Decimal("0"),
    Decimal("1"),
    Decimal("0.5"),
    "",
    "p",
    "1",
    "1.0",
    0.5,
]
value = st.sampled_from(VALUES)
path = st.sampled_from(["a", "b", "g.n", "g.t", "missing.x"])
field = path.map(lambda p: Field(POS, path=p))
leaf = st.one_of(field, value.map(lambda v: Const(POS, value=v)))
item = st.sampled_from(["k", "v"]).map(lambda p: Field(POS, path=p, item=True))
atom = st.one_of(
    leaf,
    st.builds(
        lambda op, left, right: Compare(POS, op=op, left=left, right=right),
        st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
        leaf,
        leaf,
    ),
    st.builds(
        lambda left, right: Compare(
            POS, op="<", left=Arith(POS, op="/", left=left, right=right), right=Const(POS, value=1)
        ),
        field,
        field,
    ),
    st.builds(
        lambda operand, values, negated: InList(
            POS, operand=operand, values=tuple(Const(POS, value=v) for v in values), negated=negated
        ),
        field,
        st.lists(st.sampled_from([v for v in VALUES if v is not None]), min_size=1, max_size=3),
        st.booleans(),
    ),
    field.map(lambda f: Exists(POS, target=f)),
    field.map(lambda f: Matches(POS, target=f, pattern="^p")),
    st.builds(
        lambda kind, op, target, v: Quantifier(
            POS,
            kind=kind,
            items=Field(POS, path="items"),
            body=Compare(POS, op=op, left=target, right=Const(POS, value=v)),
        ),
        st.sampled_from(["any", "all"]),
        st.sampled_from(["==", "<"]),
        item,
        value,
    ),
)
tree = st.recursive(
    atom,
    lambda inner: st.one_of(
        inner.map(lambda x: Not(POS, operand=x)),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: And(POS, operands=tuple(xs))),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: Or(POS, operands=tuple(xs))),
    ),
    max_leaves=8,
)
group = st.one_of(
    st.none(),
    st.just("text"),
    st.just([1, 2]),
    st.fixed_dictionaries({}, optional={"n": value, "t": value}),
)
element = st.one_of(value, st.fixed_dictionaries({}, optional={"k": value, "v": value}))
untyped = st.fixed_dictionaries(
    {},
    optional={
        "a": value,
        "b": value,
        "g": group,
        "items": st.one_of(value, st.lists(element, max_size=3)),
    },
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(tree, min_size=1, max_size=4), st.lists(untyped, min_size=1, max_size=6))
def test_chunk_conditions_are_the_direct_meaning_on_any_values(
    conditions: list[Expr], deals: list[dict[str, Any]]
) -> None:
    assert fires(conditions, deals) == expected(conditions, deals), conditions


# -- whole chunks: the native engine's records, byte for byte


def load_gen_book() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_book", ROOT / "bench" / "gen_book.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def decided(engine: str, deals: list[dict[str, Any]], rulesets: list[str] | None = None) -> str:
    application = app.build(rulesets, engine=engine, autoload=False)
    texts = []
    for start in range(0, len(deals), 256):  # the executor's largest chunk
        chunk = [copy.deepcopy(d) for d in deals[start : start + 256]]
        # as a batch decides them: records from the group templates where the engine has them
        for record, text in application.pipeline.decide_encoded(chunk, jsoncodec.dumps):
            texts.append(jsoncodec.dumps(record) if text is None else text)
    return "".join(text + "\n" for text in texts)


def test_chunks_of_the_generated_book_give_the_native_records() -> None:
    out = io.StringIO()
    load_gen_book().write_book(600, 3, out)
    deals = [jsoncodec.loads(text) for text in out.getvalue().splitlines()]
    native = decided("native", deals)
    assert decided("columnar", deals) == native
    assert '"status":"invalid"' in native and '"status":"rejected"' in native


def test_a_later_stratum_reads_the_first_strata_outputs_exactly(tmp_path: Path) -> None:
    # margin < outputs.margin_floor - 0.05 at its boundary, in a chunk: the second stratum is
    # matched per deal on the outputs the first stratum's column-matched rules set
    ruleset = {
        "ruleset": "floors",
        "policy": "partner-margin",
        "version": "1",
        "outputs": {"margin_floor": {"combine": "max"}},
        "rules": [
            {"id": "F-1", "when": "totals.contract > 0", "then": {"set": {"margin_floor": 0.35}}},
            {"id": "F-2", "when": "services_ratio > 0.4", "then": {"set": {"margin_floor": 0.4}}},
            {
                "id": "F-3",
                "when": "margin < outputs.margin_floor - 0.05",
                "then": {"require": ["cfo"]},
            },
        ],
    }
    (tmp_path / "floors.yaml").write_text(yaml.safe_dump(ruleset))
    costs = ["0.7", "0.70000001", "0.69999999", "0.6"]  # margin 0.30 is the floor less 0.05
    deals = [
        {
            "id": f"F-{i}",
            "customer": {"name": "X", "segment": "deer", "region": "emea"},
            "offer": {"type": "standard", "pricing": "fixed"},
            "lines": [line(1, cost)],
        }
        for i, cost in enumerate(costs)
    ]
    native = decided("native", deals, [str(tmp_path)])
    assert decided("columnar", deals, [str(tmp_path)]) == native
    fired = [jsoncodec.loads(r)["policies"]["partner-margin"]["fired"] for r in native.splitlines()]
    assert fired == [["F-1"], ["F-1", "F-3"], ["F-1"], ["F-1"]]


def test_a_chunk_the_vectors_cannot_compare_is_decided_deal_by_deal() -> None:
    # a NaN (from an untyped plugin fact) cannot be ordered: the native engine makes that deal
    # invalid; the columnar engine, whose vector raises for the whole chunk, does the same
    # deal by deal, and the other deals of the chunk are decided
    application = app.build(None, engine="columnar", autoload=False)
    native = app.build(None, engine="native", autoload=False)
    deals = [
        prepared(line(100, 50), offer={"type": "new_market", "pricing": "fixed"}),
        prepared(line(100, 50)),
    ]
    deals[0]["margin"] = Decimal("NaN")
    got = application.pipeline.engine.evaluate(copy.deepcopy(deals))
    want = native.pipeline.engine.evaluate(copy.deepcopy(deals))
    assert [e.error for e in got] == [e.error for e in want]
    assert got[0].error is not None and got[1].error is None
    assert {k: r.fired_ids() for k, r in got[1].runs.items()} == {
        k: r.fired_ids() for k, r in want[1].runs.items()
    }


def test_a_policy_that_depends_only_on_its_fired_rules_is_run_once_per_fired_set(
    tmp_path: Path,
) -> None:
    ruleset = {
        "ruleset": "static",
        "policy": "partner-margin",
        "version": "1",
        "outputs": {"tier": {"combine": "max"}, "notes": {"combine": "list"}},
        "rules": [
            {"id": "T-1", "when": "totals.contract >= 100", "then": {"set": {"tier": 1}}},
            {"id": "T-2", "when": "totals.contract >= 200", "then": {"set": {"tier": 2}}},
            {"id": "T-3", "when": 'customer.region == "emea"', "then": {"set": {"notes": "eu"}}},
        ],
        "tables": [
            {
                "id": "T-4",
                "hit": "unique",  # two rows match a contract of 300 or more: an error
                "inputs": ["totals.contract"],
                "rows": [
                    {"when": [">= 300"], "then": {"require": ["cfo"]}},
                    {"when": [">= 250"], "then": {"require": ["vp_finance"]}},
                ],
            }
        ],
    }
    (tmp_path / "static.yaml").write_text(yaml.safe_dump(ruleset))
    deals = [
        {
            "id": f"S-{i}",
            "customer": {"name": "X", "segment": "deer", "region": region},
            "offer": {"type": "standard", "pricing": "fixed"},
            "lines": [line(price, 1)],
        }
        for i, (price, region) in enumerate(
            [
                (150, "emea"),
                (250, "emea"),
                (150, "emea"),
                (50, "apac"),
                (300, "emea"),
                (350, "emea"),
            ]
        )
    ]
    native = decided("native", deals, [str(tmp_path)])
    assert decided("columnar", deals, [str(tmp_path)]) == native
    application = app.build([str(tmp_path)], engine="columnar", autoload=False)
    engine = application.pipeline.engine
    assert "partner-margin" in engine.shared_runs
    chunk = [application.pipeline.prepare(copy.deepcopy(d)).data for d in deals]
    runs = [e.runs["partner-margin"] for e in engine.evaluate(chunk)]
    assert runs[0] is runs[2]  # the same fired rules: one run
    assert runs[0] is not runs[1] and runs[3].fired_ids() == []
    assert runs[4].errors and runs[4] is not runs[5]  # a run with errors is never shared
    assert len(engine.shared_runs["partner-margin"]) == 3


def test_a_policy_with_expressions_or_actions_is_run_for_each_deal() -> None:
    application = app.build(None, engine="columnar", autoload=False)
    # the house policies set outputs from expressions (= totals.product * 0.30) or run actions
    assert application.pipeline.engine.shared_runs == {}


TEMPLATED = {
    "ruleset": "templated",
    "policy": "onsite-support",
    "version": "1",
    "outputs": {
        "service": {"type": "money"},
        "ratio": {"type": "fraction"},
        "tier": {"combine": "max"},
        "raw": {},
    },
    "rules": [
        {
            "id": "A",
            "when": "totals.contract >= 100",
            "then": {"set": {"service": "= totals.contract * 0.3"}},
        },
        {
            "id": "B",
            "when": "totals.contract >= 200",
            "then": {"set": {"tier": 2, "raw": "= partner.discount * 2"}},
        },
        {
            "id": "C",
            "when": "totals.contract >= 100",
            "then": {"set": {"tier": 1, "ratio": "= margin"}},
        },
        {"id": "D", "when": 'customer.region == "emea"', "then": {"require": ["cfo"]}},
        {
            "id": "E",
            "when": 'customer.region == "apac"',
            "then": {"reason": "apac {{ totals.contract }}"},
        },
    ],
}


def templated_deals() -> list[dict[str, Any]]:
    deals = []
    for i in range(40):
        deal: dict[str, Any] = {
            "id": f"T-{i}" if i % 7 else i,
            "currency": "JPY" if i % 5 == 0 else "USD",
            "customer": {
                "name": "X",
                "segment": "deer",
                "region": ("emea", "apac", "latam")[i % 3],
            },
            "offer": {"type": "standard", "pricing": "fixed"},
            "lines": [line(Decimal(150 + 13 * i) / 2, Decimal(90 + i) / 8)],
        }
        if i % 4:
            deal["partner"] = {"name": "P", "kind": "reseller", "tier": "gold", "discount": i / 100}
        deals.append(deal)
    return deals


def test_records_from_group_templates_are_the_native_records(tmp_path: Path) -> None:
    (tmp_path / "templated.yaml").write_text(yaml.safe_dump(TEMPLATED))
    deals = templated_deals()
    rulesets = [str(tmp_path)]
    assert decided("columnar", deals, rulesets) == decided("native", deals, rulesets)
    application = app.build(rulesets, engine="columnar", autoload=False)
    results = application.pipeline.decide_encoded(copy.deepcopy(deals), jsoncodec.dumps)
    filled = [i for i, (_, text) in enumerate(results) if text is not None]
    # each group's first deal is decided in full and teaches the template the rest fill
    assert 0 < len(filled) < len(deals)
    assert all(r["status"] != "invalid" for r, _ in results)
    for index in filled:
        brief, text = results[index]
        assert set(brief) == {"deal_id", "status", "approvals", "reasons", "flags", "errors"}
        assert brief["deal_id"] == str(deals[index]["id"]) == jsoncodec.loads(text)["deal_id"]
    # a message with Jinja (rule E, apac) differs per deal: never from a template
    assert not any(deals[i]["customer"]["region"] == "apac" for i in filled)
    # nor a deal whose expression is unknown (rule B without a partner: raw keeps its default)
    unknown = [
        i
        for i, (record, _) in enumerate(results)
        if "B" in record.get("policies", {}).get("onsite-support", {}).get("fired", ())
        and "partner" not in deals[i]
    ]
    assert unknown and not set(unknown) & set(filled)
    assert any(
        "B" in jsoncodec.loads(results[i][1])["policies"]["onsite-support"]["fired"] for i in filled
    )


VERBOSE = {
    "ruleset": "verbose",
    "policy": "partner-margin",
    "version": "1",
    "outputs": {"floor": {"type": "fraction"}},
    "rules": [
        {
            "id": "C",
            "when": 'customer.region == "emea" and margin < 0.3',
            "then": {"set": {"floor": 0.3}},
        },
        {"id": "M", "when": 'matches(customer.name, "^A")', "then": {"flag": "A"}},
        {"id": "A", "when": "totals.contract * 2 > 100", "then": {"flag": "big"}},
        {"id": "N", "when": "any(line.quantity > 1 for line in lines)", "then": {"flag": "many"}},
        {"id": "O", "when": "margin < outputs.floor", "then": {"require": ["cfo"]}},
    ],
}


def test_validate_verbose_says_what_runs_as_columns_and_what_per_deal(
    tmp_path: Path, cli_runner: CliRunner
) -> None:
    (tmp_path / "verbose.yaml").write_text(yaml.safe_dump(VERBOSE))
    result = cli_runner.run(
        "validate", str(tmp_path), "--engine", "columnar", "-v", env=NO_AUTOLOAD
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "columnar engine: first strata as columns; records made per deal (templates need every "
        "policy to allow them)",
        "partner-margin: no templates: rules read outputs (later strata)",
        "  C: columns",
        "  M: per row for matches()",
        "  A: per row for arithmetic",
        "  N: columns",
        "  O: per deal (reads outputs)",
        "1 ruleset OK",
    ]
    flat = {**VERBOSE, "rules": VERBOSE["rules"][:4]}
    (tmp_path / "verbose.yaml").write_text(yaml.safe_dump(flat))
    result = cli_runner.run(
        "validate", str(tmp_path), "--engine", "columnar", "--verbose", env=NO_AUTOLOAD
    )
    assert result.stdout.splitlines()[:2] == [
        "columnar engine: first strata as columns; records from group templates",
        "partner-margin: templates allowed",
    ]
    native = cli_runner.run("validate", str(tmp_path), "--engine", "native", "-v", env=NO_AUTOLOAD)
    assert native.stdout.splitlines() == [
        "native engine: every rule matched deal by deal",
        "1 ruleset OK",
    ]
    assert "engine" not in cli_runner.run("validate", str(tmp_path), env=NO_AUTOLOAD).stdout


def texts_of(engine: str, lines: list[bytes], rulesets: list[str] | None = None) -> list[str]:
    """``dealdesk evaluate --workers 0``'s records of JSONL ``lines``, in order (the columnar
    engine reads the lines as columns itself)."""
    application = app.build(rulesets, engine=engine, autoload=False)
    sources = [SourceDeal(f"book.jsonl:{n + 1}", None, text=line) for n, line in enumerate(lines)]
    return [d.text or "" for d in InProcess(application, encode=jsoncodec.dumps).run(sources)]


def test_records_of_lines_read_as_columns_are_the_native_records(tmp_path: Path) -> None:
    (tmp_path / "templated.yaml").write_text(yaml.safe_dump(TEMPLATED))
    out = io.StringIO()
    load_gen_book().write_book(700, 5, out)
    # the book's deals (invalid ones, requested splits the house plugin enriches), with the
    # templated ones' regions and lines, a line that is not JSON and one that is not a deal
    lines = [text.encode() for text in out.getvalue().splitlines()]
    lines += [jsoncodec.dumps(d).encode() for d in templated_deals()]
    lines[17:17] = [b'{"id": "broken",', b"[1, 2]"]
    rulesets = [str(tmp_path)]
    native = texts_of("native", lines, rulesets)
    assert texts_of("columnar", lines, rulesets) == native
    assert all(native) and '"status":"invalid"' in native[17]


def test_a_big_book_is_decided_by_the_columnar_engine_when_it_pays(
    tmp_path: Path, cli_runner: CliRunner
) -> None:
    from dealdesk.cli import COLUMNAR_FROM_BYTES, _columnar_pays

    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "templated.yaml").write_text(yaml.safe_dump(TEMPLATED))
    deals = templated_deals()
    line = "".join(jsoncodec.dumps(d) + "\n" for d in deals)
    big, small = tmp_path / "big.jsonl", tmp_path / "small.jsonl"
    big.write_text(line * (COLUMNAR_FROM_BYTES // len(line) + 1))
    small.write_text(line)
    templated = app.build([str(tmp_path / "rules")], autoload=False)
    assert _columnar_pays(templated, [str(big)], "jsonl")
    assert _columnar_pays(templated, [str(tmp_path)], "jsonl")  # a folder: its files' sizes
    assert _columnar_pays(templated, ["-"], "jsonl")  # standard input streams books
    assert not _columnar_pays(templated, [str(small)], "jsonl")
    assert not _columnar_pays(templated, [str(big)], "csv")
    assert not _columnar_pays(templated, [str(big)], "jsonl", "dask")  # workers may lack pyarrow
    clauses = app.build([str(tmp_path / "rules")], clauses=True, autoload=False)
    assert not _columnar_pays(clauses, [str(big)], "jsonl")
    assert not _columnar_pays(
        app.build(None, autoload=False), [str(big)], "jsonl"
    )  # the house policy: actions
    # the run without --engine writes what the native engine writes
    outs = {}
    for name, args in (("auto", []), ("native", ["--engine", "native"])):
        outs[name] = tmp_path / f"{name}.jsonl"
        result = cli_runner.run(
            "evaluate",
            str(big),
            "-r",
            str(tmp_path / "rules"),
            "-o",
            str(outs[name]),
            "--workers",
            "0",
            "-q",
            *args,
            env={"DEALDESK_ENGINE": None, **NO_AUTOLOAD},
        )
        assert result.exit_code == 0, result.stderr
    assert outs["auto"].read_bytes() == outs["native"].read_bytes()


def test_a_deal_whose_expression_is_unknown_does_not_stop_its_group_from_templates(
    tmp_path: Path,
) -> None:
    (tmp_path / "templated.yaml").write_text(yaml.safe_dump(TEMPLATED))
    application = app.build([str(tmp_path)], engine="columnar", autoload=False)
    base = templated_deals()[21]  # rules A, B, C and D fire: raw = partner.discount * 2
    deals = [{**copy.deepcopy(base), "id": f"U-{i}"} for i in range(6)]
    del deals[0]["partner"]  # unknown here: raw keeps its default on this deal
    results = application.pipeline.decide_encoded(copy.deepcopy(deals), jsoncodec.dumps)
    # the first deal cannot teach the group (its raw is unknown); the second does; the rest fill
    assert [text is not None for _, text in results] == [False, False, True, True, True, True]
    assert decided("columnar", deals, [str(tmp_path)]) == decided("native", deals, [str(tmp_path)])


def test_validate_verbose_says_a_policy_without_rules_allows_templates(
    tmp_path: Path, cli_runner: CliRunner
) -> None:
    (tmp_path / "templated.yaml").write_text(yaml.safe_dump(TEMPLATED))
    empty = {"ruleset": "empty", "policy": "partner-margin", "version": "1", "rules": []}
    (tmp_path / "empty.yaml").write_text(yaml.safe_dump(empty))
    result = cli_runner.run(
        "validate", str(tmp_path), "--engine", "columnar", "-v", env=NO_AUTOLOAD
    )
    assert "partner-margin: templates allowed" in result.stdout.splitlines()


MONEY_HOLES = {
    "ruleset": "money-holes",
    "policy": "billing-milestone",
    "version": "1",
    "outputs": {
        "fee": {"type": "money"},
        "rebate": {"type": "money"},
        "gap": {"type": "money"},
        "mix": {"type": "money"},
        "ratio": {"type": "fraction"},
    },
    "rules": [
        {
            "id": "F",
            "when": "totals.contract > 0",
            "then": {
                "set": {
                    "fee": "= totals.contract * 0.005",
                    "rebate": "= totals.contract * -0.005",
                    "gap": "= totals.contract - 1000",
                }
            },
        },
        {
            "id": "M",
            "when": 'customer.region == "emea"',
            "then": {"set": {"mix": "= totals.product * 0.125 + 0.5", "ratio": "= margin"}},
        },
    ],
}


def money_hole_lines() -> list[bytes]:
    """Deals in four currencies (2, 0, 3 and 2 minor units) whose ``=`` money outputs land on
    rounding ties of both signs (``fee`` of USD 5 is 0.025, of JPY 500 is 2.5, of KWD 0.5 is
    0.0025), and one past int64 (a 12-place price: a slow row)."""
    lines = []
    for i in range(96):
        odd = 2 * (i // 4) + 1
        currency = ("USD", "JPY", "KWD", "EUR")[i % 4]
        price = {"USD": odd, "JPY": 100 * odd, "KWD": Decimal(odd) / 10, "EUR": Decimal(odd) / 2}
        deal = {
            "id": f"M-{i}",
            "currency": currency,
            "customer": {"name": "C", "segment": "deer", "region": ("emea", "apac")[i % 3 > 0]},
            "offer": {"type": "standard", "pricing": "fixed"},
            "lines": [line(price[currency], Decimal(price[currency]) / 2)],
        }
        if i == 50:
            deal["lines"][0]["unit_price"] = Decimal("1234567.123456789012")
        lines.append(jsoncodec.dumps(deal).encode())
    return lines


def test_money_outputs_filled_from_int64_columns_are_the_native_records(tmp_path: Path) -> None:
    (tmp_path / "holes.yaml").write_text(yaml.safe_dump(MONEY_HOLES))
    rulesets = [str(tmp_path)]
    lines = money_hole_lines()
    native = texts_of("native", lines, rulesets)
    assert texts_of("columnar", lines, rulesets) == native
    # a chunk whose groups' templates are known: filled as columns, money in int64 units
    application = app.build(rulesets, engine="columnar", autoload=False)
    pipeline = application.pipeline
    assert pipeline.decide_lines(lines, jsoncodec.dumps) is not None  # learns the templates
    groups = pipeline.engine.read_lines(lines, pipeline.combiner)
    assert groups is not None and pipeline._absent_enough is not None
    filled = groups.filled(pipeline._absent_enough)
    assert [i for i, found in enumerate(filled) if found is None] == [50]  # past int64
    assert [text for _, text in filled[:50] + filled[51:]] == native[:50] + native[51:]
    outputs = [
        jsoncodec.loads(native[i])["policies"]["billing-milestone"]["outputs"] for i in (8, 9, 10)
    ]
    # ties rounded half-up, away from zero, to each currency's minor units
    assert [(o["fee"], o["rebate"]) for o in outputs] == [
        ("0.03", "-0.03"),
        ("3", "-3"),
        ("0.003", "-0.003"),
    ]


SPLIT = {
    "ruleset": "split",
    "policy": "billing-milestone",
    "version": "1",
    "outputs": {"fee": {"type": "money"}, "split": {}},
    "rules": [
        {"id": "F", "when": "totals.contract > 0", "then": {"set": {"fee": "= totals.contract"}}},
        # a fact the billing plugin's enrich hook derives from billing.requested_split
        {"id": "S", "when": 'requested_split.key == "50/50"', "then": {"set": {"split": "even"}}},
    ],
}


def test_a_deal_an_enrich_hook_adds_facts_to_is_never_filled_from_a_template(
    tmp_path: Path,
) -> None:
    (tmp_path / "split.yaml").write_text(yaml.safe_dump(SPLIT))
    deals = []
    for i in range(40):
        deal: dict[str, Any] = {
            "id": f"S-{i}",
            "customer": {"name": "C", "segment": "deer", "region": "emea"},
            "offer": {"type": "standard", "pricing": "fixed"},
            "lines": [line(100 + i, 50)],
        }
        if i % 3 == 2:
            deal["billing"] = {"requested_split": [50, 50]}
        deals.append(jsoncodec.dumps(deal).encode())
    native = texts_of("native", deals, [str(tmp_path)])
    assert texts_of("columnar", deals, [str(tmp_path)]) == native
    assert sum('"fired":["F","S"]' in text for text in native) == 13


CYCLES = {
    "ruleset": "cycles",
    "policy": "partner-margin",
    "version": "1",
    "outputs": {"seen": {"combine": "max"}},
    "rules": [
        {"id": "P", "when": "exists(partner)", "then": {"set": {"seen": 1}}},
        {
            "id": "L",
            "when": "any(line.quantity > 1 for line in lines)",
            "then": {"set": {"seen": 2}},
        },
        {"id": "M", "when": 'matches(customer.name, "^A")', "then": {"flag": "A"}},
    ],
}


@pytest.mark.parametrize("rulesets", ["house", "cycles"])
def test_a_decided_chunk_leaves_no_garbage_for_the_collector(rulesets: str, tmp_path: Path) -> None:
    # a chunk's frame, columns and elements go with the chunk (by their counts), not at the
    # collector's next full pass: with a large first generation, chunks would pile up
    import gc

    (tmp_path / "cycles.yaml").write_text(yaml.safe_dump(CYCLES))
    application = app.build(
        None if rulesets == "house" else [str(tmp_path)], engine="columnar", autoload=False
    )
    out = io.StringIO()
    load_gen_book().write_book(300, 7, out)
    sources = [
        SourceDeal(f"book.jsonl:{n + 1}", None, text=text.encode())
        for n, text in enumerate(out.getvalue().splitlines())
    ]
    run = InProcess(application, encode=jsoncodec.dumps).run
    assert len(list(run(sources))) == 300  # warm: templates, caches
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        assert len(list(run(sources))) == 300
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []


COMBINED_HOLES = {
    "ruleset": "combined-holes",
    "policy": "partner-margin",
    "version": "1",
    "outputs": {
        "name": {"combine": "max"},
        "total": {"combine": "sum", "type": "money"},
        "least": {"combine": "min", "type": "money"},
    },
    "rules": [
        {
            "id": "A",
            "when": "totals.contract > 0",
            "then": {
                "set": {
                    "name": "= customer.name",
                    "total": "= totals.contract",
                    "least": "= totals.contract * 1",
                }
            },
        }
    ],
}


def test_holes_are_combined_as_the_runner_combines_one_value(tmp_path: Path) -> None:
    # max/min/sum read a text as a number ("123" is 123, "NaN" makes the deal invalid), a sum
    # rounds to 28 digits, and a money column at 24 places stays out of the int64 path
    (tmp_path / "combined.yaml").write_text(yaml.safe_dump(COMBINED_HOLES))
    names = ["Acme", "123", " 7 ", "1e5", "NaN", "Infinity"]
    deals = []
    for i in range(60):
        price: Any = Decimal(100 + i)
        quantity: Any = 1
        if i % 5 == 1:  # 29 digits: the sum rounds it
            price = Decimal("10000.004999999999")
            quantity = 1
        if i % 5 == 2:  # amounts at 24 places
            price, quantity = "0.000000000007", f"0.00000000000{1 + i % 9}"
        lines = [
            {"sku": "S", "category": "subscription", "quantity": quantity, "unit_price": price}
        ]
        if i % 5 == 1:
            lines.append(
                {
                    "sku": "T",
                    "category": "subscription",
                    "quantity": "0.000000000001",
                    "unit_price": "0.999999999999",
                }
            )
        deal = {"id": f"C-{i}", "customer": {"name": names[i % len(names)]}, "lines": lines}
        deals.append(jsoncodec.dumps(deal).encode())
    rulesets = [str(tmp_path)]
    native = texts_of("native", deals, rulesets)
    assert texts_of("columnar", deals, rulesets) == native
    shown = [json.loads(text) for text in native]
    assert shown[1]["policies"]["partner-margin"]["outputs"]["name"] == 123
    assert shown[1]["policies"]["partner-margin"]["outputs"]["total"] == "10000.01"
    assert shown[4]["status"] == "invalid"  # a name of NaN, summed as a number
    parsed = [jsoncodec.loads(line.decode()) for line in deals]
    assert decided("columnar", parsed, rulesets) == decided("native", parsed, rulesets)
