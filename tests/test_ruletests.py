"""dealdesk.ruletests: the ``tests:`` cases of rulesets, run on the real engine."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from dealdesk import app as dealdesk_app
from dealdesk.ruletests import CaseResult, TestReport, merge_patch, run_tests

ROOT = Path(__file__).resolve().parents[1]
ACME = ROOT / "examples" / "deals" / "acme-risk.yaml"

HEADER = """\
ruleset: checks
policy: partner-margin
version: "1"
outputs:
  tier: {combine: first, type: string}
  floor: {combine: max, type: fraction}
  contract: {combine: first, type: money}
rules:
  - id: C-1
    when: risk_offer
    then: {require: deal_desk, set: {tier: "= partner.tier", contract: "= totals.contract"}, clause: billing/effort}
  - id: C-2
    when: customer.government
    then: {require: legal}
  - id: C-3
    when: max_line_discount > 0.1
    then: {flag: "discount {{ max_line_discount }}", set: {floor: 0.35}}
tables:
  - id: C-T
    hit: first
    inputs: [partner.tier]
    rows:
      - when: [select]
        then: {set: {floor: 0.3}}
      - when: [gold]
        then: {set: {floor: 0.2}}
"""


def run_cases(tmp_path: Path, tests: str) -> TestReport:
    """Write the checks ruleset with these ``tests:`` next to a copy of the acme deal and run it."""
    (tmp_path / "deals").mkdir(exist_ok=True)
    (tmp_path / "deals" / "acme.yaml").write_text(ACME.read_text())
    path = tmp_path / "checks.yaml"
    path.write_text(HEADER + "tests:\n" + textwrap.indent(textwrap.dedent(tests), "  "))
    application = dealdesk_app.build([path], autoload=False)
    return run_tests(application)


def only(report: TestReport) -> CaseResult:
    [result] = report.results
    return result


def test_every_expectation_that_holds_passes(tmp_path: Path) -> None:
    result = only(
        run_cases(
            tmp_path,
            """
            - name: everything
              deal: {file: deals/acme.yaml}
              expect:
                status: needs_approval
                policy_status: needs_approval
                fired: [C-1, C-3, C-T]
                not_fired: [C-2]
                approvals: [deal_desk]
                outputs: {tier: select, floor: 0.35, contract: 1389600}
                clauses: [billing/effort]
                flags: 1
            """,
        )
    )
    assert result.failures == []
    assert result.passed


def test_each_failed_expectation_is_reported(tmp_path: Path) -> None:
    result = only(
        run_cases(
            tmp_path,
            """
            - name: everything wrong
              deal: {file: deals/acme.yaml}
              expect:
                status: approved
                policy_status: rejected
                fired: [C-2]
                not_fired: [C-1]
                approvals: [deal_desk, legal]
                outputs: {tier: gold, nope: 1, contract: "1389600.01"}
                clauses: []
                flags: 0
            """,
        )
    )
    assert not result.passed
    assert result.failures == [
        'status: expected "approved", got "needs_approval"',
        'policy_status: expected "rejected", got "needs_approval"',
        "fired: expected C-2 to fire; fired: C-1, C-3, C-T",
        "not_fired: C-1 fired, expected not to fire",
        'approvals: expected ["deal_desk", "legal"], got ["deal_desk"]',
        'outputs.tier: expected "gold", got "select"',
        "outputs.nope: expected 1, but the policy has no such output",
        'outputs.contract: expected "1389600.01", got "1389600.00"',
        'clauses: expected [], got ["billing/effort"]',
        "flags: expected 0, got 1",
    ]
    lines = (tmp_path / "checks.yaml").read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "name: everything wrong" in text)
    assert result.location == f"{tmp_path / 'checks.yaml'}:{line}:5"


def test_a_patch_merges_mappings_and_replaces_lists(tmp_path: Path) -> None:
    report = run_cases(
        tmp_path,
        """
        - name: government, gold partner
          deal: {file: deals/acme.yaml, patch: {customer: {government: true}, partner: {tier: gold}}}
          expect: {fired: [C-1, C-2, C-T], outputs: {tier: gold, floor: 0.35}, approvals: [legal, deal_desk]}
        - name: one line without a list price
          deal:
            file: deals/acme.yaml
            patch: {lines: [{sku: X, category: hardware, quantity: 1, unit_price: 100, unit_cost: 50}]}
          expect: {not_fired: [C-3], outputs: {contract: "100.00", floor: 0.3}}
        """,
    )
    assert [r.failures for r in report.results] == [[], []]


def test_an_inline_deal(tmp_path: Path) -> None:
    inline = yaml.safe_load(ACME.read_text())
    inline["id"] = "INLINE-1"
    inline["dates"] = {k: str(v) for k, v in inline["dates"].items()}
    deal = yaml.safe_dump(inline, default_flow_style=True, width=10_000).strip()
    result = only(
        run_cases(
            tmp_path,
            f"- name: inline\n  deal: {deal}\n  expect: {{fired: [C-1], status: needs_approval}}\n",
        )
    )
    assert result.failures == []


def test_a_missing_or_invalid_deal_fails_the_case_with_the_reason(tmp_path: Path) -> None:
    report = run_cases(
        tmp_path,
        """
        - name: missing file
          deal: {file: deals/nope.yaml}
          expect: {status: approved}
        - name: invalid deal
          deal: {file: deals/acme.yaml, patch: {customer: {region: mars}}}
          expect: {fired: [C-1]}
        - name: invalid on purpose
          deal: {file: deals/acme.yaml, patch: {customer: {region: mars}}}
          expect: {status: invalid, policy_status: invalid}
        """,
    )
    missing, invalid, expected_invalid = report.results
    assert missing.failures == [
        f"deal: deal file deals/nope.yaml not found (looked for {tmp_path / 'deals' / 'nope.yaml'})"
    ]
    assert invalid.failures[0] == "fired: expected C-1 to fire; fired: nothing"
    assert invalid.failures[-1].startswith(
        "the deal is invalid: customer.region: unknown value 'mars'"
    )
    assert expected_invalid.passed


def test_coverage_counts_rules_and_table_rows_fired_by_some_case(tmp_path: Path) -> None:
    report = run_cases(
        tmp_path,
        """
        - name: acme
          deal: {file: deals/acme.yaml}
          expect: {fired: [C-1]}
        """,
    )
    [coverage] = report.coverage
    assert [label for _, label in coverage.units] == ["C-1", "C-2", "C-3", "C-T row 1", "C-T row 2"]
    assert coverage.covered == 3
    assert coverage.percent == pytest.approx(60.0)
    assert coverage.never_fired == ["C-2", "C-T row 2"]
    assert (report.passed, report.failed) == (1, 0)


@pytest.mark.parametrize(
    ("base", "patch", "merged"),
    [
        ({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}, {"a": {"b": 1, "c": 3}}),
        ({"a": [1, 2, 3]}, {"a": [4]}, {"a": [4]}),
        ({"a": {"b": 1}}, {"a": None}, {"a": None}),
        ({"a": 1}, {"b": {"c": 2}}, {"a": 1, "b": {"c": 2}}),
        ({"a": {"b": {"c": 1, "d": 2}}}, {"a": {"b": {"d": 3}}}, {"a": {"b": {"c": 1, "d": 3}}}),
    ],
)
def test_merge_patch(base: dict, patch: dict, merged: dict) -> None:
    before = repr(base)
    assert merge_patch(base, patch) == merged
    assert repr(base) == before  # the base deal is not modified


def test_a_directory_fifo_or_device_as_the_deal_says_what_it_is(tmp_path: Path) -> None:
    import os

    (tmp_path / "deals" / "folder").mkdir(parents=True)
    os.mkfifo(tmp_path / "deals" / "pipe")
    report = run_cases(
        tmp_path,
        """
        - name: a folder
          deal: {file: deals/folder}
          expect: {status: approved}
        - name: a fifo
          deal: {file: deals/pipe}
          expect: {status: approved}
        - name: a device
          deal: {file: /dev/null}
          expect: {status: approved}
        """,
    )
    folder, fifo, device = (r.failures for r in report.results)
    assert folder == ["deal: deal file deals/folder is a directory; a case needs one deal file"]
    assert fifo == [
        "deal: deal file deals/pipe is not a regular file (a FIFO, device or socket); a case "
        "needs one deal file"
    ]
    assert device == [fifo[0].replace("deals/pipe", "/dev/null")]


def test_names_in_expect_are_checked_with_a_did_you_mean(tmp_path: Path) -> None:
    from dealdesk.ruletests import expectation_problems

    (tmp_path / "checks.yaml").write_text(
        HEADER
        + textwrap.dedent(
            """\
            tests:
              - name: misspelt
                deal: {file: acme.yaml}
                expect:
                  fired: [C-1, C_3, X-9]
                  not_fired: [c-t]
                  approvals: [deal_desk, cffo]
                  clauses: [billing/efort, billing/effort]
                  outputs: {tier: gold, flor: 0.3}
            """
        )
    )
    application = dealdesk_app.build([tmp_path / "checks.yaml"], autoload=False)
    shown = [str(p).replace(str(tmp_path) + "/", "") for p in expectation_problems(application)]
    assert shown == [
        "checks.yaml:31:20: expect.fired: no rule or table 'C_3' in policy 'partner-margin'"
        " (did you mean 'C-3'?)",
        "checks.yaml:31:25: expect.fired: no rule or table 'X-9' in policy 'partner-margin'",
        "checks.yaml:32:19: expect.not_fired: no rule or table 'c-t' in policy 'partner-margin'"
        " (did you mean 'C-T'?)",
        "checks.yaml:33:30: expect.approvals: unknown approver role 'cffo' (did you mean 'cfo'?)",
        "checks.yaml:34:17: expect.clauses: unknown clause template 'billing/efort' (no "
        "billing/efort.md.j2 in any template directory) (did you mean 'billing/effort'?)",
        "checks.yaml:35:29: expect.outputs: policy 'partner-margin' has no output 'flor' (no rule "
        "sets it and no outputs: entry declares it) (did you mean 'floor'?)",
    ]


@pytest.mark.parametrize(
    ("expression", "chosen"),
    [
        ("gold", ["gold partner", "Gold and risk"]),
        ("GOLD and not risk", ["gold partner"]),
        ("risk or direct", ["Gold and risk", "direct deal"]),
        ("not (gold or direct)", ["silver"]),
        ("checks.yaml::direct deal", ["direct deal"]),
        ("(risk)and(gold)", ["Gold and risk"]),
    ],
)
def test_k_reads_and_or_not_ignoring_case(expression: str, chosen: list[str]) -> None:
    from dealdesk.rules.model import TestCase
    from dealdesk.ruletests import selector

    names = ["gold partner", "Gold and risk", "direct deal", "silver"]
    select = selector(expression, lambda ruleset: "checks.yaml")
    ruleset = object()  # the selector reads the ruleset only through `shown`
    assert [n for n in names if select(ruleset, TestCase(n, {}, {}))] == chosen  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("gold and", "-k 'gold and': at the end: expected a word, 'not' or '('"),
        ("(gold", "-k '(gold': at the end: expected ')'"),
        ("gold )", "-k 'gold )': at column 6: unexpected ')'"),
        ("  ", "-k: empty expression"),
    ],
)
def test_a_k_expression_that_does_not_parse_says_where(expression: str, message: str) -> None:
    from dealdesk.errors import UsageError
    from dealdesk.ruletests import selector

    with pytest.raises(UsageError) as caught:
        selector(expression, str)
    assert str(caught.value) == message
