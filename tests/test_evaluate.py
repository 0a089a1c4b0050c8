"""Evaluating deals on every engine: hit policies, combining outputs, strata, windows, plugin
failures and the durable_rules behaviours we design around (SPEC §3, §4, §7, §9)."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from bounded import run_perturbed
from helpers import deal, evaluator, write_rulesets

from dealdesk.actions import ActionContext

HEADER = """
ruleset: r
policy: test
version: "7"
"""


@pytest.fixture(autouse=True)
def _every_engine(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEALDESK_ENGINE", engine)  # the tests here run on each engine


def build(tmp_path: Path, body: str, **kwargs: Any) -> Any:
    write_rulesets(tmp_path / "rs", r=HEADER + body)
    return evaluator(tmp_path / "rs", **kwargs)


def test_outputs_combine_by_priority_and_mode(tmp_path: Path) -> None:
    ev = build(
        tmp_path,
        """
outputs:
  first_one: {combine: first}
  biggest: {combine: max, type: fraction}
  smallest: {combine: min}
  total: {combine: sum, type: money}
  all: {combine: list}
  unset: {default: fallback}
rules:
  - id: LOW
    priority: 1
    when: totals.contract > 0
    then: {set: {first_one: low, biggest: 0.1, smallest: 5, total: "= totals.product", all: low}}
  - id: HIGH
    priority: 9
    when: totals.contract > 0
    then: {set: {first_one: high, biggest: 0.30004, smallest: 3, total: 0.125, all: high}}
  - id: UNKNOWN
    priority: 20
    when: totals.contract > 0
    then: {set: {first_one: "= partner.tier"}}
""",
    )
    record = ev.evaluate(deal())
    outputs = record["policies"]["test"]["outputs"]
    # UNKNOWN's value is unknown (no partner) and sets nothing; HIGH comes first by priority
    assert outputs == {
        "first_one": "high",
        "biggest": 0.3,
        "smallest": 3,
        "total": "200.13",
        "all": ["high", "low"],
        "unset": "fallback",
    }
    assert record["policies"]["test"]["fired"] == ["UNKNOWN", "HIGH", "LOW"]


def test_a_rule_reading_an_output_sees_its_combined_value(tmp_path: Path) -> None:
    ev = build(
        tmp_path,
        """
outputs:
  floor: {combine: max, type: fraction}
rules:
  - id: READ
    when: margin < outputs.floor - 0.05
    then: {require: cfo, reason: "margin {{ margin | percent }} vs floor {{ outputs.floor | percent }}"}
  - id: SET-A
    when: totals.contract > 0
    then: {set: {floor: 0.30}}
  - id: SET-B
    when: services_ratio < 0.5
    then: {set: {floor: 0.40}}
""",
    )
    # margin = 1 - 160/250 = 0.36; floor max(0.30, 0.40) = 0.40; 0.36 < 0.35 is false
    record = ev.evaluate(deal())
    assert record["status"] == "approved"
    # margin 0.35 exactly at floor - 0.05 (exact decimals, no float drift): still not below
    lines = [
        {"sku": "HW", "category": "hardware", "quantity": 1, "unit_price": 100, "unit_cost": 65},
    ]
    assert ev.evaluate(deal(lines=lines))["status"] == "approved"
    lines[0]["unit_cost"] = "65.01"
    record = ev.evaluate(deal(lines=lines))
    assert record["status"] == "needs_approval"
    assert record["reasons"] == [
        {"policy": "test", "rule": "READ", "message": "margin 34.99% vs floor 40%"}
    ]


@pytest.mark.parametrize(
    ("hit", "extra", "discount", "expected"),
    [
        ("first", "", "0.15", {"fired": ["T"], "level": "a"}),
        ("unique", "", "0.05", {"fired": ["T"], "level": "c"}),
        ("unique", "", "0.15", {"error": "hit policy unique, but rows 1, 2 all match"}),
        (
            "any",
            "",
            "0.15",
            {"error": "hit policy any, but rows 1, 2 match with different outputs"},
        ),
        ("priority", "priority: {level: [b, a, c]}", "0.15", {"fired": ["T"], "level": "b"}),
        (
            "output order",
            "priority: {level: [b, a, c]}",
            "0.15",
            {"fired": ["T"], "level": ["b", "a"]},
        ),
        ("rule order", "", "0.15", {"fired": ["T"], "level": ["a", "b"]}),
        ("collect", "", "0.15", {"fired": ["T"], "level": ["a", "b"]}),
        ("collect", "aggregation: count", "0.15", {"fired": ["T"], "level": 2}),
    ],
)
def test_hit_policies(
    tmp_path: Path, hit: str, extra: str, discount: str, expected: dict[str, Any]
) -> None:
    combine = "list" if isinstance(expected.get("level"), list) else "first"
    ev = build(
        tmp_path,
        f"""
outputs:
  level: {{combine: {combine}}}
tables:
  - id: T
    hit: {hit}
    {extra}
    inputs: [max_line_discount]
    rows:
      - when: ["[0.1..0.2]"]
        then: {{set: {{level: a}}}}
      - when: ["[0.12..0.3]"]
        then: {{set: {{level: b}}}}
      - when: ["< 0.1"]
        then: {{set: {{level: c}}}}
""",
    )
    price = str(100 - int(float(discount) * 100))
    lines = [
        {
            "sku": "HW",
            "category": "hardware",
            "quantity": 1,
            "unit_price": price,
            "list_price": 100,
            "unit_cost": 10,
        }
    ]
    record = ev.evaluate(deal(lines=lines))
    if "error" in expected:
        assert record["status"] == "invalid"
        assert expected["error"] in record["errors"][0]["message"]
        assert record["errors"][0]["message"].startswith(str(tmp_path / "rs" / "r.yaml") + ":")
    else:
        assert record["policies"]["test"]["fired"] == expected["fired"]
        assert record["policies"]["test"]["outputs"]["level"] == expected["level"]


def test_effective_window_is_compared_with_the_close_date(tmp_path: Path) -> None:
    ev = build(
        tmp_path,
        """
effective: {from: 2027-01-01, to: 2027-12-31}
rules:
  - id: R
    when: totals.contract > 0
    then: {require: deal_desk}
""",
    )
    assert ev.evaluate(deal())["approvals"] == []  # closes 2026-12-15
    assert ev.evaluate(deal(dates={"close": "2027-01-01"}))["approvals"] == ["deal_desk"]
    assert ev.evaluate(deal(dates={"close": "2028-01-01"}))["approvals"] == []
    assert ev.evaluate(deal(dates={}))["approvals"] == ["deal_desk"]  # no close date: applies


def test_actions_run_with_evaluated_arguments(tmp_path: Path) -> None:
    seen: list[ActionContext] = []

    def double(ctx: ActionContext) -> None:
        seen.append(ctx)
        ctx.set("doubled", ctx.args["value"] * 2)
        ctx.flag("doubled {{ totals.product | money }}")
        ctx.require("legal")

    ev = build(
        tmp_path,
        """
outputs:
  doubled: {type: money}
rules:
  - id: A
    when: totals.product > 0
    then: {action: double, with: {value: "= totals.product"}}
""",
        actions={"double": double},
    )
    record = ev.evaluate(deal())
    assert record["policies"]["test"]["outputs"]["doubled"] == "400.00"
    assert record["approvals"] == ["legal"]
    # an action's messages are plain text: deal data in them is never run as a template
    assert record["flags"] == [
        {"policy": "test", "rule": "A", "message": "doubled {{ totals.product | money }}"}
    ]
    assert seen[0].rule == "A" and seen[0].policy == "test"
    with pytest.raises(TypeError):
        seen[0].deal["id"] = "changed"  # type: ignore[index]


def test_an_action_may_set_undeclared_outputs_but_only_known_roles(tmp_path: Path) -> None:
    def sloppy(ctx: ActionContext) -> None:
        if ctx.deal["id"] == "role":
            ctx.require("chief_vibes_officer")
        else:
            ctx.set("nope", 1)

    ev = build(
        tmp_path,
        "outputs:\n  fine: {}\nrules:\n  - id: A\n    when: totals.product > 0\n    then: {action: sloppy}\n",
        actions={"sloppy": sloppy},
    )
    # an undeclared output combines with `first` and has no type (SPEC §3)
    record = ev.evaluate(deal())
    assert record["errors"] == []
    assert record["policies"]["test"]["outputs"] == {"fine": None, "nope": 1}
    (error,) = ev.evaluate(deal(id="role"))["errors"]
    assert error["message"].endswith("required the unknown approver role 'chief_vibes_officer'")


def test_a_failing_action_makes_only_that_deal_invalid_and_names_the_plugin(tmp_path: Path) -> None:
    def explode(ctx: ActionContext) -> None:
        if ctx.deal["id"] == "bad":
            raise RuntimeError("boom")

    ev = build(
        tmp_path,
        "rules:\n  - id: A\n    when: totals.product > 0\n    then: {action: explode}\n",
        actions={"explode": explode},
    )
    bad = ev.evaluate(deal(id="bad"))
    assert bad["status"] == "invalid"
    assert bad["errors"] == [
        {
            "path": "",
            "message": "plugin 'testplug' failed in action 'explode' (rule A): RuntimeError: boom",
            "plugin": "testplug",
        }
    ]
    assert ev.evaluate(deal(id="good"))["status"] == "approved"


def test_a_plugin_calling_sys_exit_is_named_and_costs_only_its_deal(tmp_path: Path) -> None:
    # sys.exit in a hook or an action is that plugin's failure, like an exception (SPEC §9)
    import sys

    def enrich(d: Any) -> None:
        if d["id"] == "enrich-exit":
            sys.exit(3)

    def leave(ctx: ActionContext) -> None:
        if ctx.deal["id"] == "action-exit":
            sys.exit("bye")

    ev = build(
        tmp_path,
        "rules:\n  - id: A\n    when: totals.product > 0\n    then: {action: leave}\n",
        actions={"leave": leave},
        enrich=enrich,
    )
    exited = ev.evaluate(deal(id="enrich-exit"))
    assert exited["status"] == "invalid"
    assert exited["errors"] == [
        {
            "path": "",
            "message": "plugin 'testplug' failed in dealdesk_enrich: sys.exit(3) was called",
            "plugin": "testplug",
        }
    ]
    acted = ev.evaluate(deal(id="action-exit"))
    assert acted["status"] == "invalid"
    assert acted["errors"] == [
        {
            "path": "",
            "message": "plugin 'testplug' failed in action 'leave' (rule A): "
            "sys.exit('bye') was called",
            "plugin": "testplug",
        }
    ]
    assert ev.evaluate(deal(id="good"))["status"] == "approved"


def test_enrich_facts_are_type_checked_and_failures_attributed(tmp_path: Path) -> None:
    def enrich(d: Any) -> dict[str, Any]:
        if d["id"] == "crash":
            raise ValueError("no rates today")
        if d["id"] == "nested":
            return {"fx_rate": 1.1, "fx": {"source": 7}}
        return {"fx_rate": "1.1" if d["id"] == "wrong" else 1.1}

    ev = build(
        tmp_path,
        "rules:\n  - id: FX\n    when: fx_rate > 1\n    then: {require: vp_finance}\n",
        enrich=enrich,
        facts={"fx_rate": "number", "fx": "object", "fx.source": "string"},
    )
    assert ev.evaluate(deal())["approvals"] == ["vp_finance"]
    crash = ev.evaluate(deal(id="crash"))
    assert crash["status"] == "invalid"
    assert (
        crash["errors"][0]["message"]
        == "plugin 'testplug' failed in dealdesk_enrich: ValueError: no rates today"
    )
    wrong = ev.evaluate(deal(id="wrong"))
    assert wrong["errors"][0]["message"] == (
        "plugin 'testplug' failed in dealdesk_enrich: returned fx_rate: expected a number, got string '1.1'"
    )
    assert wrong["errors"][0]["plugin"] == "testplug"
    nested = ev.evaluate(deal(id="nested"))  # nested declared facts are checked too
    assert nested["errors"][0]["message"].endswith(
        "returned fx.source: expected a string, got number 7"
    )


def test_an_invalid_deal_names_each_field(tmp_path: Path) -> None:
    ev = build(tmp_path, "rules: []\n")
    lines = [{"sku": "HW", "category": "hardware", "quantity": -1, "unit_price": 10}]
    record = ev.evaluate(deal(lines=lines, customer={"segment": "whale"}))
    assert record["status"] == "invalid"
    assert record["deal_id"] == "T-1"
    paths = {e["path"] for e in record["errors"]}
    assert {"lines[0].quantity", "lines[0].unit_cost", "customer.segment"} <= paths
    assert list(record) == [
        "deal_id",
        "status",
        "approvals",
        "policies",
        "reasons",
        "flags",
        "clauses",
        "errors",
        "provenance",
    ]


def test_records_are_byte_identical_for_identical_input(tmp_path: Path) -> None:
    ev = build(
        tmp_path,
        'rules:\n  - id: R\n    when: margin > 0.1\n    then: {reason: "margin {{ margin }}"}\n',
    )
    first = json.dumps(ev.evaluate(deal()), sort_keys=False)
    assert all(json.dumps(ev.evaluate(deal())) == first for _ in range(5))
    assert json.loads(first)["provenance"]["rulesets"] == {"r": "7"}
    assert json.loads(first)["provenance"]["digest"].startswith("sha256:")


def test_negation_only_conditions_fire_exactly_when_true(tmp_path: Path) -> None:
    # durable_rules fires a bare `$nex` endlessly or on its own state fact (SPEC §9); the
    # compiled rule carries a positive anchor, so it fires once, and only when true
    ev = build(
        tmp_path,
        "rules:\n  - id: DIRECT\n    when: not exists(partner)\n    then: {require: deal_desk}\n",
    )
    assert ev.evaluate(deal())["approvals"] == ["deal_desk"]
    assert ev.evaluate(deal())["policies"]["test"]["fired"] == ["DIRECT"]
    partnered = deal(partner={"name": "P", "kind": "reseller", "tier": "gold", "discount": 0.1})
    assert ev.evaluate(partnered)["approvals"] == []


def test_thousands_of_unmatched_deals_do_not_exhaust_durable_sessions(tmp_path: Path) -> None:
    # at most 1,024 live sessions per ruleset (SPEC §9): every session is deleted, matched or not
    threads = threading.active_count()
    ev = build(
        tmp_path,
        "rules:\n  - id: NEVER\n    when: totals.product > 1000000000\n    then: {reject: too big}\n",
    )
    for i in range(2500):
        assert ev.evaluate(deal(id=f"D-{i}"))["status"] == "approved"
    big = [
        {
            "sku": "HW",
            "category": "hardware",
            "quantity": 1,
            "unit_price": 2000000000,
            "unit_cost": 1,
        }
    ]
    assert ev.evaluate(deal(lines=big))["status"] == "rejected"
    assert threading.active_count() == threads  # no durable Host timer threads were started


def test_large_policies_run_whole(tmp_path: Path) -> None:
    # durable_rules' create_ruleset hung for minutes on 600+ rules (SPEC §9): its driver splits
    rules = "".join(
        f"  - id: R{i}\n    when: totals.product == {i}\n    then: {{reason: hit {i}}}\n"
        for i in range(1000)
    )
    ev = build(tmp_path, "rules:\n" + rules)
    for product in (0, 399, 400, 999):
        lines = [
            {
                "sku": "HW",
                "category": "hardware",
                "quantity": 1,
                "unit_price": product,
                "unit_cost": 0,
            }
        ]
        lines.append(
            {"sku": "SUP", "category": "support", "quantity": 1, "unit_price": 1, "unit_cost": 0}
        )
        record = ev.evaluate(deal(lines=lines))
        assert record["policies"]["test"]["fired"] == [f"R{product}"]


# durable_rules' limits (dealdesk.engines.durable.limits): any ruleset that validates evaluates.


def evaluate_isolated(tmp_path: Path, body: str, raw: dict[str, Any]) -> list[dict[str, Any]]:
    """Records for ``raw``, evaluated three times in a fresh interpreter with a perturbed heap:
    a crash in durable's C core fails the test, not the test run."""
    write_rulesets(tmp_path / "rs", r=HEADER + body)
    result = run_perturbed(
        f"""
        import json, pathlib
        from helpers import evaluator
        ev = evaluator(pathlib.Path({str(tmp_path / "rs")!r}))
        raw = json.loads({json.dumps(raw)!r})
        print(json.dumps([ev.evaluate(raw) for _ in range(3)]))
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records: list[dict[str, Any]] = json.loads(result.stdout)
    return records


@pytest.mark.parametrize("count", [1, 64, 65, 120, 500])
def test_every_rule_matching_a_deal_fires_however_many(tmp_path: Path, count: int) -> None:
    # 65 matches overflowed durable's stack (error 303); about 116 corrupted the heap.
    rules = "".join(
        f"  - id: R{i}\n    when: totals.product > -{i}\n    then: {{reason: hit {i}}}\n"
        for i in range(count)
    )
    for record in evaluate_isolated(tmp_path, "rules:\n" + rules, deal()):
        assert record["status"] == "approved", record["errors"]
        assert record["policies"]["test"]["fired"] == [f"R{i}" for i in range(count)]
        assert [r["message"] for r in record["reasons"]] == [f"hit {i}" for i in range(count)]


def test_every_row_of_a_collect_table_matching_a_deal_is_collected(tmp_path: Path) -> None:
    rows = "".join(
        f'      - when: ["> -{i}"]\n        then: {{flag: row {i}}}\n' for i in range(200)
    )
    body = f"tables:\n  - id: T\n    hit: collect\n    inputs: [totals.product]\n    rows:\n{rows}"
    for record in evaluate_isolated(tmp_path, body, deal()):
        assert record["status"] == "approved", record["errors"]
        assert record["policies"]["test"]["fired"] == ["T"]
        assert [f["message"] for f in record["flags"]] == [f"row {i}" for i in range(200)]


@pytest.mark.parametrize(
    ("country", "inside"), [("US", True), ("C999", True), ("ZZ", False), (None, None)]
)
def test_in_and_not_in_a_list_of_a_thousand_values(
    tmp_path: Path, country: str | None, inside: bool | None
) -> None:
    values = ", ".join([*(f'"C{i}"' for i in range(1, 1000)), '"US"'])
    ev = build(
        tmp_path,
        f"""
        rules:
          - id: IN
            when: customer.hq_country in [{values}]
            then: {{reason: in}}
          - id: NOT-IN
            when: customer.hq_country not in [{values}]
            then: {{reason: not in}}
          - id: NOT-NOT-IN
            when: not (customer.hq_country not in [{values}])
            then: {{reason: not not in}}
          - id: ANY-IN
            when: any(line.sku in [{values}, "HW"] for line in lines)
            then: {{reason: any in}}
        """.replace("\n        ", "\n"),
    )
    customer = {"name": "Acme", "segment": "elephant", "region": "emea"}
    if country is not None:
        customer["hq_country"] = country
    record = ev.evaluate(deal(customer=customer))
    expected = {True: ["IN", "NOT-NOT-IN"], False: ["NOT-IN"], None: []}[inside]
    assert record["policies"]["test"]["fired"] == [*expected, "ANY-IN"]


def test_a_stratum_reading_more_than_a_durable_fact_holds(tmp_path: Path) -> None:
    # each rule reads a value of its own: 300 synthetic fields, past durable's 255 properties
    rules = "".join(
        f"  - id: R{i}\n    when: totals.product + {i} > {i + 199}\n    then: {{reason: r}}\n"
        for i in range(300)
    )
    ev = build(tmp_path, "rules:\n" + rules)
    record = ev.evaluate(deal())  # totals.product is 200
    assert record["status"] == "approved", record["errors"]
    assert record["policies"]["test"]["fired"] == [f"R{i}" for i in range(300)]


def test_numbers_python_writes_with_an_exponent(tmp_path: Path) -> None:
    ev = build(
        tmp_path,
        """
        rules:
          - id: TINY
            when: max_line_discount > 0 and max_line_discount < 0.00002
            then: {reason: tiny}
          - id: HUGE
            when: totals.product < 1e16 and totals.product < 1e400 and totals.product > -1e300
            then: {reason: huge}
        """.replace("\n        ", "\n"),
    )
    # a discount of 1 in 100,000 is 1e-05, which durable_rules could not read (error 204)
    line = {"sku": "HW", "category": "hardware", "quantity": 1, "unit_cost": 1}
    record = ev.evaluate(deal(lines=[{**line, "unit_price": 99_999, "list_price": 100_000}]))
    assert record["status"] == "approved", record["errors"]
    assert record["policies"]["test"]["fired"] == ["TINY", "HUGE"]


@pytest.mark.parametrize(
    ("literal", "name", "equal"),
    [
        ("x" * 70_000, "x" * 70_000, True),
        ("abc", "abc" + "x" * 65_536, False),  # durable compared only "abc" of the name
        ("x" * 65_536 + "abc", "x" * 65_536 + "abd", False),
        ("Zürich 東京 😀", "Zürich 東京 😀", True),
        ("\ud83d", "\ud83d", True),  # a lone surrogate, from a YAML or JSON escape
        ("\ud83d\ude00", "😀", False),  # two code points, not the emoji they escape
    ],
    ids=["long", "long-name", "long-literal", "non-ascii", "lone-surrogate", "escaped-pair"],
)
def test_text_compares_exactly(tmp_path: Path, literal: str, name: str, equal: bool) -> None:
    # YAML reads JSON escapes in double quotes; a file cannot hold a lone surrogate unescaped
    text = re.sub(
        "[\ud800-\udfff]",
        lambda c: f"\\u{ord(c.group()):04x}",
        json.dumps(literal, ensure_ascii=False),
    )
    ev = build(
        tmp_path,
        f"rules:\n  - id: EQ\n    when: customer.name == {text}\n    then: {{reason: eq}}\n"
        f"  - id: NE\n    when: customer.name != {text}\n    then: {{reason: ne}}\n",
    )
    record = ev.evaluate(deal(customer={"name": name, "segment": "elephant", "region": "emea"}))
    assert record["status"] == "approved", record["errors"]
    assert record["policies"]["test"]["fired"] == (["EQ"] if equal else ["NE"])


def test_non_ascii_fact_names_and_values(tmp_path: Path) -> None:
    ev = build(
        tmp_path,
        'rules:\n  - id: U\n    when: größe > 3 and stadt == "Zürich 😀"\n    then: {reason: u}\n',
        facts={"größe": "number", "stadt": "string"},
        enrich=lambda d: {"größe": 5, "stadt": "Zürich 😀"},
    )
    record = ev.evaluate(deal())
    assert record["status"] == "approved", record["errors"]
    assert record["policies"]["test"]["fired"] == ["U"]


def test_a_value_strict_json_cannot_hold_makes_only_that_deal_invalid(tmp_path: Path) -> None:
    def infinite(ctx: ActionContext) -> None:
        if ctx.deal["id"] == "nan":
            ctx.set("big", float("nan"))

    ev = build(
        tmp_path,
        """
outputs:
  big: {}
  huge: {combine: max}
rules:
  - id: HUGE
    when: totals.contract > 100
    then: {set: {huge: "= 1e308 * 1e308 * totals.product"}}
  - id: NAN
    when: totals.contract > 0
    then: {action: infinite}
""",
        actions={"infinite": infinite},
    )
    small = [{"sku": "HW", "category": "hardware", "quantity": 1, "unit_price": 10, "unit_cost": 1}]
    assert ev.evaluate(deal(lines=small))["status"] == "approved"  # neither fires
    huge, nan = ev.evaluate(deal()), ev.evaluate(deal(id="nan", lines=small))
    assert [r["status"] for r in (huge, nan)] == ["invalid", "invalid"]
    assert [e["message"] for r in (huge, nan) for e in r["errors"]] == [
        "policies.test.outputs.huge is 2.000E+618, past the range of a JSON number; "
        "records are strict JSON (no NaN or Infinity)",
        "policies.test.outputs.big is NaN; records are strict JSON (no NaN or Infinity)",
    ]
    for record in (huge, nan):
        json.dumps(record, allow_nan=False)  # the record itself stays strict JSON


def test_each_message_of_a_policy_sees_its_own_rule(tmp_path: Path) -> None:
    # a policy's messages share one template context; each must still see the rule that fired
    ev = build(
        tmp_path,
        "rules:\n"
        '  - id: FIRST\n    when: margin > 0.1\n    then: {reason: "{{ rule }} quick"}\n'
        '  - id: SECOND\n    when: margin > 0.1\n    then: {reason: "{{ rule | lower }} by Jinja"}\n'
        '  - id: THIRD\n    when: margin > 0.1\n    then: {flag: "{{ rule }} flag"}\n',
    )
    record = ev.evaluate(deal())
    assert [r["message"] for r in record["reasons"]] == ["FIRST quick", "second by Jinja"]
    assert [f["message"] for f in record["flags"]] == ["THIRD flag"]
