"""Validation of a whole ruleset set (SPEC §3): every problem, located, nothing half-loaded."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import expression_strategies as strategies
import pytest
from helpers import policy_set, write_rulesets
from hypothesis import given, settings
from hypothesis import strategies as st

from dealdesk.errors import ValidationFailed
from dealdesk.rules.expressions import (
    MAX_DEPTH,
    And,
    Compare,
    Const,
    Expr,
    Field,
    FieldType,
    InList,
    Not,
    Or,
    Scope,
    parse_expression,
)
from dealdesk.rules.policyset import _alternatives, load_policy_set, never_true

HEADER = """
ruleset: {name}
policy: test
version: "1"
outputs:
  floor: {{combine: max, type: fraction}}
  cap: {{combine: min, type: fraction}}
"""


def errors(tmp_path: Path, **files: str) -> list[str]:
    write_rulesets(tmp_path / "rs", **files)
    with pytest.raises(ValidationFailed) as info:
        policy_set(tmp_path / "rs")
    return [str(e) for e in info.value.errors]


def warnings(tmp_path: Path, **files: str) -> list[str]:
    """The warnings of a set with errors (found in the same run)."""
    write_rulesets(tmp_path / "rs", **files)
    with pytest.raises(ValidationFailed) as info:
        policy_set(tmp_path / "rs")
    return [str(e) for e in info.value.warnings]


def test_a_clean_set_compiles_into_strata_ordered_by_output_reads(tmp_path: Path) -> None:
    write_rulesets(
        tmp_path / "rs",
        a=HEADER.format(name="a")
        + """
rules:
  - id: R-read
    when: margin < outputs.floor
    then: {require: deal_desk}
  - id: R-set
    when: services_ratio < 0.2
    then: {set: {floor: 0.4}}
  - id: R-cap
    when: exists(partner)
    then: {set: {cap: "= outputs.floor - 0.1"}}
""",
    )
    ps, _, _ = policy_set(tmp_path / "rs")
    policy = ps.policies["test"]
    strata = {rule.id: rule.stratum for rule in policy.rules}
    assert strata == {"R-read": 1, "R-set": 0, "R-cap": 1}
    assert len(policy.strata) == 2
    # every durable rule is one fact pattern with the positive anchor: no joins, no bare negation
    lower_stratum = pytest.importorskip("dealdesk.engines.durable.engine").lower_stratum
    for k, stratum in enumerate(policy.strata):
        lowered = lower_stratum("test", k, stratum.rules)
        for body in lowered.definition.values():
            (pattern,) = body["all"]
            assert list(pattern) == ["m"]
            assert {"_a": 1} in pattern["m"].get("$and", [pattern["m"]])


def test_schema_problems_with_suggestions(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        a=HEADER.format(name="a")
        + """
rules:
  - id: R-3
    whn: margin < 0.3
    then: {}
  - id: R-4
    when: margin < 0.3
    priority: high
    then: {rejcet: "no"}
""",
    )
    path = tmp_path / "rs" / "a.yaml"
    assert found == [
        f"{path}:9:5: 'when' is required",
        f"{path}:10:5: unknown key 'whn' (did you mean 'when'?)",
        f"{path}:14:15: priority: expected a whole number, got 'high'",
        f"{path}:15:12: unknown key 'rejcet' (did you mean 'reject'?)",
    ]


def test_expression_and_name_errors_point_into_the_file(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        a=HEADER.format(name="a")
        + """
rules:
  - id: R-1
    when: risk_offer and totals.prodcut >= 500000
    then: {require: deal_dsk}
  - id: R-1
    when: "margin < 'x'"
    then: {clause: billing/nothing}
  - id: R-4
    when: margin < 0.3
    then: {action: no_such_action, set: {flor: 0.3}}
  - id: R-5
    when: >-
      margin < 0.3 and
      customer.regon == "emea"
    then: {set: {cap: "= max(0, margn)"}}
""",
    )
    path = tmp_path / "rs" / "a.yaml"
    assert found == [
        f"{path}:10:26: unknown path 'totals.prodcut' (did you mean 'totals.product'?)",
        f"{path}:11:21: unknown approver role 'deal_dsk' (see rulesets/approvers.yaml) (did you mean 'deal_desk'?)",
        f"{path}:12:9: duplicate rule id 'R-1' (first at {path}:9:9)",
        f"{path}:13:21: < compares numbers, but 'x' is a string",
        f"{path}:14:20: unknown clause template 'billing/nothing' (no billing/nothing.md.j2 in any template directory)",
        f"{path}:17:20: unknown action 'no_such_action' (no plugin registers it)",
        f"{path}:21:7: unknown path 'customer.regon' (did you mean 'customer.region'?)",
        f"{path}:22:33: unknown path 'margn' (did you mean 'margin'?)",
    ]


def test_problems_across_files_and_duplicate_ruleset_names(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        a=HEADER.format(name="same") + "rules: []\n",
        b=HEADER.format(name="same") + "rules: []\n",
        c="ruleset: c\npolicy: partner-margn\n",
        d="ruleset: d\npolicy: test\nrules: [\n",
    )
    rs = tmp_path / "rs"
    assert found == [
        f"{rs / 'b.yaml'}:1:10: ruleset 'same' is also defined in {rs / 'a.yaml'}",
        f"{rs / 'c.yaml'}:2:9: unknown policy family 'partner-margn' (no plugin registers it) (did you mean 'partner-margin'?)",
        f"{rs / 'd.yaml'}:4:1: invalid YAML: expected the node content, but found '<stream end>'",
    ]


def test_decision_table_problems(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        a=HEADER.format(name="a")
        + """
tables:
  - id: T-1
    hit: first
    inputs: [customer.segment, max_line_discount]
    rows:
      - when: ["-", "<= 0.2"]
        then: {set: {cap: 0.1}}
      - when: [deer, "[0.1..0.2]"]
        then: {set: {cap: 0.2}}
      - when: [dear, "> 0.2"]
        then: {set: {cap: 0.3}}
      - when: [rabbit, "< x"]
        then: {}
      - when: [rabbit]
        then: {}
""",
    )
    path = tmp_path / "rs" / "a.yaml"
    assert found == [
        f"{path}:15:9: row 2 of table 'T-1' is unreachable: row 1 matches everything it matches first",
        f"{path}:17:16: cell 'dear': 'dear' is not a value of 'customer.segment' (one of: elephant, deer, rabbit) (did you mean 'deer'?)",
        f"{path}:19:24: cell '< x': < compares numbers, but 'x' is a string",
        f"{path}:21:15: row 5 has 1 cells for 2 inputs",
    ]


def test_output_cycles_are_errors(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        a=HEADER.format(name="a")
        + """
rules:
  - id: R-1
    when: outputs.cap > 0.1
    then: {set: {floor: 0.3}}
  - id: R-2
    when: outputs.floor > 0.1
    then: {set: {cap: 0.3}}
""",
    )
    assert (
        len(found) == 1
        and "outputs depend on each other in a cycle: a/R-1 -> a/R-2 -> a/R-1" in found[0]
    )


def test_a_condition_that_can_never_be_true(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        a=HEADER.format(name="a")
        + "rules:\n  - id: R-1\n    when: exists(margin) and not exists(margin)\n    then: {}\n",
    )
    assert found == [f"{tmp_path / 'rs' / 'a.yaml'}:8:5: the condition of 'R-1' can never be true"]


def test_nothing_is_loaded_from_a_failing_set(tmp_path: Path) -> None:
    get_driver = pytest.importorskip("dealdesk.engines.durable.driver").get_driver
    before = set(get_driver()._rulesets)

    write_rulesets(
        tmp_path / "rs",
        a=HEADER.format(name="a") + "rules:\n  - id: R\n    when: margin <\n    then: {}\n",
    )
    with pytest.raises(ValidationFailed):
        policy_set(tmp_path / "rs")
    # validation failed before anything reached durable_rules (whose own error would be opaque)
    assert set(get_driver()._rulesets) == before


def test_missing_ruleset_path_is_a_usage_error(tmp_path: Path) -> None:
    from dealdesk.errors import UsageError

    with pytest.raises(UsageError, match="no such ruleset file or directory"):
        load_policy_set([tmp_path / "nope.yaml"], None)  # type: ignore[arg-type]


def test_messages_and_clause_ids_are_checked_before_anything_runs(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        a=HEADER.format(name="a")
        + """
rules:
  - id: R
    when: margin > 0.1
    then: {reject: "{{ partner.name ", clause: billing/milestone}
""",
    )
    path = tmp_path / "rs" / "a.yaml"
    assert found == [
        f"{path}:11:20: reject message: unexpected end of template, expected 'end of print statement'.",
        f"{path}:11:48: unknown clause template 'billing/milestone' (no billing/milestone.md.j2 in any "
        "template directory) (did you mean 'billing/milestones'?)",
    ]


def test_effective_dates_must_be_dates(tmp_path: Path) -> None:
    found = errors(tmp_path, a=HEADER.format(name="a") + "effective: {from: soon}\n")
    assert found == [
        f"{tmp_path / 'rs' / 'a.yaml'}:7:19: effective.from: expected a date (YYYY-MM-DD), got 'soon'"
    ]


def test_a_decision_table_is_one_unit_when_stratified(tmp_path: Path) -> None:
    write_rulesets(
        tmp_path / "rs",
        a=HEADER.format(name="a")
        + """
rules:
  - id: SET
    when: totals.contract > 0
    then: {set: {floor: 0.3}}
tables:
  - id: T
    hit: first
    inputs: [margin]
    rows:
      - when: ["> 0.5"]
        then: {set: {cap: 0.1}}
      - when: ["> 0"]
        then: {set: {cap: "= outputs.floor"}}
""",
    )
    ps, _, _ = policy_set(tmp_path / "rs")
    strata = {(r.id, r.row): r.stratum for r in ps.policies["test"].rules}
    # row 2 reads outputs.floor, so the whole table runs after SET, and `first` still holds
    assert strata == {("SET", None): 0, ("T", 0): 1, ("T", 1): 1}


def test_an_aggregation_needs_one_output_set_by_every_row(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        a=HEADER.format(name="a")
        + """
tables:
  - id: T
    hit: collect
    aggregation: count
    inputs: [margin]
    rows:
      - when: ["> 0.5"]
        then: {set: {cap: 0.1}}
      - when: ["> 0"]
        then: {require: deal_desk}
""",
    )
    assert found == [
        f"{tmp_path / 'rs' / 'a.yaml'}:11:18: aggregation count needs every row to set the same one output"
    ]


def test_a_pattern_re2_cannot_run_is_a_validation_error_at_its_place(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        a=HEADER.format(name="a")
        + """
rules:
  - id: R-1
    when: 'matches(customer.name, r"^(\\w+) \\1$")'
    then: {flag: repeated word}
""",
    )
    path = tmp_path / "rs" / "a.yaml"
    assert found == [
        f"{path}:10:35: invalid regular expression '^(\\\\w+) \\\\1$': invalid escape sequence: "
        "\\1 (matches() runs RE2 patterns, in linear time: no backreferences or lookaround; "
        "write \\z for \\Z)"
    ]


def test_deep_nesting_is_a_validation_error_at_its_place(tmp_path: Path) -> None:
    deep = "not " * 1000 + "risk_offer"
    found = errors(
        tmp_path,
        a=HEADER.format(name="a")
        + f"""
rules:
  - id: R-1
    when: {deep}
    then: {{flag: deep}}
tables:
  - id: T-1
    inputs: [margin]
    rows:
      - when: ["{"not(" * 1000 + "0.1" + ")" * 1000}"]
        then: {{flag: deep}}
""",
    )
    path = tmp_path / "rs" / "a.yaml"
    assert len(found) == 2
    assert (
        found[0]
        == f"{path}:10:{11 + 4 * MAX_DEPTH}: expression nested too deeply (limit {MAX_DEPTH})"
    )
    assert found[1].startswith(f"{path}:16:16: cell 'not(not(")
    assert found[1].endswith(f"': nested too deeply (limit {MAX_DEPTH})")


# -- "can never be true" without the durable lowering: policyset finds an alternative itself


def _lowering_never_true(condition: Expr) -> bool:
    from dealdesk.engines.durable.lowering import ConditionCompiler

    return not ConditionCompiler().compile(condition)


_EDGE_ATOMS = st.sampled_from(
    [
        "True",
        "False",
        "1 < 2",
        "2 < 1",
        "1 in [1, 2]",
        "a in []",
        "not exists(a)",
        "not exists(s)",
        "not exists(items)",
        "not exists(outputs.x)",
        "all(exists(line.v) and not exists(line.v) for line in items)",
        "any(not exists(line.v) and line.v > 1 for line in items)",
        "not all(line.v > 1 for line in items)",
    ]
)
_CONDITIONS = st.recursive(
    st.one_of(strategies.atom, _EDGE_ATOMS),
    lambda inner: st.one_of(
        st.builds(lambda x: f"not ({x})", inner),
        st.builds(lambda x, y: f"({x}) and ({y})", inner, inner),
        st.builds(lambda x, y: f"({x}) or ({y})", inner, inner),
    ),
    max_leaves=6,
)


@settings(max_examples=1500, deadline=None)
@given(_CONDITIONS)
def test_never_true_agrees_with_the_lowering(text: str) -> None:
    condition = parse_expression(text, strategies.SCOPE)
    expected = _lowering_never_true(condition)
    assert never_true(condition) == expected
    if _alternatives(condition, True):  # the fast answer is only ever "it can be true"
        assert not expected


def test_never_true_answers_for_null_constants_as_the_lowering_does() -> None:
    a = Field((1, 0), "a", "number")
    null = Const((1, 0), None, "null")
    for condition in [
        Compare((1, 0), "==", a, null),
        Not((1, 0), Compare((1, 0), "==", null, a)),
        InList((1, 0), a, (Const((1, 0), Decimal(1), "number"), null)),
        Not((1, 0), InList((1, 0), a, (null,))),
        null,
        Or((1, 0), ()),
        And((1, 0), ()),
    ]:
        assert never_true(condition) == _lowering_never_true(condition), condition


@pytest.mark.parametrize(
    "text",
    [
        # the house and peer rulesets' shapes that test a path missing
        'risk_offer and exists(partner) and (not exists(partner.tier) or partner.tier != "select")',
        "not exists(partner) and totals.contract >= 1000000",
        "not any(line.category == 'support' for line in lines) and exists(lines)",
    ],
)
def test_common_conditions_need_no_lowering(text: str) -> None:
    from dealdesk.deal.schema import FIELDS

    scope = Scope({path: FieldType(f.type, f.enum) for path, f in FIELDS.items()})
    assert _alternatives(parse_expression(text, scope), True)


def test_message_names_are_checked_against_what_a_message_sees(tmp_path: Path) -> None:
    from helpers import plugins_for

    write_rulesets(
        tmp_path / "rs",
        a=HEADER.format(name="a")
        + """
rules:
  - id: OK
    when: margin > 0
    then:
      set: {level: 1}
      flag: >-
        {{ customer.credit }} {{ export.anything.deep }} {{ outputs.level }} {{ outputs.cap }}
        {{ rule }} {{ decision.status }} {{ customer.name | upper }} {{ margin.real }}
        {% for line in lines %}{{ line.whatever }}{% endfor %}{% set x = 1 %}{{ x }}
  - id: BAD
    when: margin > 0
    then:
      flag: "{{ customer.credt }} {{ outputs.levl }} {{ partnr.name }} {{ owner }}"
""",
    )
    facts = {"customer.credit": "number", "export": "object", "export.screening": "string"}
    with pytest.raises(ValidationFailed) as info:
        policy_set(tmp_path / "rs", plugins_for(tmp_path / "rs", facts=facts))
    path = tmp_path / "rs" / "a.yaml"
    assert [str(e) for e in info.value.errors] == [
        f"{path}:20:17: flag message: unknown name 'customer.credt' (did you mean"
        " 'customer.credit'?)",
        f"{path}:20:38: flag message: no rule of policy 'test' sets output 'levl' (did you mean"
        " 'outputs.level'?)",
        f"{path}:20:57: flag message: unknown name 'partnr' (did you mean 'partner.name'?)",
    ]
    assert [str(w) for w in info.value.warnings] == [
        f"{path}:20:75: warning: flag message: 'owner' is not a field of the deal schema, a"
        " derived fact or a plugin fact: a deal without it cannot render this message"
    ]
