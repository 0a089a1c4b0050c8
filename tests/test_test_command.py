"""``dealdesk test``: its pytest-like report, -v, -k, the failure diff and coverage."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dealdesk.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parents[1]
ACME = ROOT / "examples" / "deals" / "acme-risk.yaml"

RULESET = """\
ruleset: small
policy: partner-margin
version: "1"
outputs:
  tier: {combine: first, type: string}
rules:
  - id: S-1
    when: risk_offer
    then: {require: deal_desk, set: {tier: "= partner.tier"}}
  - id: S-2
    when: customer.government
    then: {require: legal}
tables:
  - id: S-T
    hit: first
    complete: false
    inputs: [partner.tier]
    rows:
      - when: [select]
        then: {set: {floor: 0.3}}
      - when: [gold]
        then: {set: {floor: 0.2}}
tests:
  - name: risk offer
    deal: {file: deal.yaml}
    expect: {status: needs_approval, fired: [S-1], approvals: [deal_desk], outputs: {tier: select}}
"""

WRONG = """\
  - name: all wrong
    deal: {file: deal.yaml}
    expect:
      status: approved
      fired: [S-2, S-1]
      not_fired: [S-T]
      approvals: [legal, deal_desk]
      outputs: {tier: gold}
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with the acme deal, the working directory of the runs."""
    (tmp_path / "deal.yaml").write_text(ACME.read_text())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def dealdesk_test(cli_runner: CliRunner, *args: str) -> tuple[Result, str]:
    """Run ``dealdesk test ARGS`` and its stdout with the time taken made ``in T``."""
    result = cli_runner.run("test", *args, env={"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1"})
    return result, re.sub(r" in \d+\.\d\ds$", " in T", result.stdout, flags=re.M)


def write(folder: Path, name: str, extra: str = "", prefix: str = "S") -> None:
    text = RULESET.replace("ruleset: small", f"ruleset: {name[:-5]}").replace("S-", f"{prefix}-")
    (folder / name).write_text(text + extra)


def test_a_passing_run_is_one_line_per_file(cli_runner: CliRunner, folder: Path) -> None:
    write(folder, "small.yaml")
    result, out = dealdesk_test(cli_runner, "small.yaml")
    assert result.exit_code == 0, result.stderr
    assert out == "small.yaml . [1 case]\n\n1 passed, 0 failed in T\n"


def test_a_failing_run_ends_with_each_failure_as_a_diff(
    cli_runner: CliRunner, folder: Path
) -> None:
    write(folder, "small.yaml", WRONG)
    (folder / "sub").mkdir()
    (folder / "sub" / "deal.yaml").write_text(ACME.read_text())
    write(folder / "sub", "other.yaml", prefix="O")
    result, out = dealdesk_test(cli_runner, "small.yaml", "sub/other.yaml")
    assert result.exit_code == 1
    assert out == (
        "small.yaml .F [2 cases]\n"
        "sub/other.yaml . [1 case]\n"
        "\n"
        "FAILURES\n"
        "\n"
        "small.yaml::all wrong at small.yaml:27:5\n"
        "  --- expected\n"
        "  +++ actual\n"
        "  -status: approved\n"
        "  +status: needs_approval\n"
        "   fired:\n"
        "     - S-1\n"
        "     - S-T\n"
        "     - O-1\n"
        "     - O-T\n"
        "  -  - S-2\n"
        "   approvals:\n"
        "     - deal_desk\n"
        "  -  - legal\n"
        "   outputs:\n"
        "  -  tier: gold\n"
        "  +  tier: select\n"
        "  not_fired: S-T fired, expected not to fire\n"
        "\n"
        "2 passed, 1 failed in T\n"
    )


def test_verbose_prints_a_line_per_case(cli_runner: CliRunner, folder: Path) -> None:
    write(folder, "small.yaml", WRONG)
    result, out = dealdesk_test(cli_runner, "small.yaml", "-v")
    assert result.exit_code == 1
    assert out.splitlines()[:3] == [
        "PASS small.yaml::risk offer",
        "FAIL small.yaml::all wrong",
        "",
    ]


@pytest.mark.parametrize(
    ("expression", "lines", "code"),
    [
        ("risk", ["PASS small.yaml::risk offer", "", "1 passed, 0 failed, 1 deselected in T"], 0),
        ("not risk", ["FAIL small.yaml::all wrong"], 1),
        ("small.yaml::all", ["FAIL small.yaml::all wrong"], 1),
        ("nothing like it", ["no tests ran: -k selected none of 2 cases"], 5),
    ],
)
def test_k_selects_cases_by_file_and_name(
    cli_runner: CliRunner, folder: Path, expression: str, lines: list[str], code: int
) -> None:
    write(folder, "small.yaml", WRONG)
    result, out = dealdesk_test(cli_runner, "small.yaml", "-v", "-k", expression)
    assert result.exit_code == code
    assert out.splitlines()[: len(lines)] == lines
    if code == 1:
        assert out.splitlines()[-1] == "0 passed, 1 failed, 1 deselected in T"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "      status: approved",
            "      policy_stauts: approved",
            "small.yaml:30:7: unknown key 'policy_stauts' (did you mean 'policy_status'?)",
        ),
        (
            "      fired: [S-2, S-1]",
            "      fired: S-1",
            'small.yaml:31:14: expect.fired: expected a list of rule or table ids, got "S-1"',
        ),
        (
            "      outputs: {tier: gold}",
            "      flags: -1",
            "small.yaml:34:14: expect.flags: expected a count (0 or more), got -1",
        ),
    ],
)
def test_a_wrong_expect_key_is_a_load_error_at_its_place(
    cli_runner: CliRunner, folder: Path, old: str, new: str, message: str
) -> None:
    write(folder, "small.yaml", WRONG.replace(old, new))
    assert new in (folder / "small.yaml").read_text()
    for command in ("test", "validate"):
        result = cli_runner.run(
            command, "small.yaml", env={"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1"}
        )
        assert result.exit_code == 1
        assert message in (result.stdout + result.stderr).splitlines()


def test_every_expect_key_is_documented_and_checked() -> None:
    from dealdesk.rules.model import EXPECT_KEYS, RULESET_SCHEMA

    docs = (ROOT / "docs" / "rulesets.md").read_text()
    section = docs[docs.index("## Tests next to the rules") :]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, flags=re.M)
    assert {key: kind.strip() for key, kind in rows} == {k: v[0] for k, v in EXPECT_KEYS.items()}
    expect = RULESET_SCHEMA["properties"]["tests"]["items"]["properties"]["expect"]
    assert set(expect["properties"]) == set(EXPECT_KEYS)
    assert expect["additionalProperties"] is False


def test_coverage_counts_rules_and_rows_per_file(cli_runner: CliRunner, folder: Path) -> None:
    write(folder, "small.yaml")
    result, out = dealdesk_test(cli_runner, "small.yaml", "--coverage")
    assert result.exit_code == 0, result.stderr
    assert out == (
        "small.yaml . [1 case]\n"
        "\n"
        "Coverage (rules and table rows fired by at least one case):\n"
        "  small.yaml  rules 1/2  table rows 1/2   50.0%\n"
        "    never fired: S-2, S-T row 2\n"
        "  total 2/4   50.0%\n"
        "\n"
        "1 passed, 0 failed in T\n"
    )


@pytest.mark.parametrize(("pct", "code"), [("50", 0), ("50.1", 1), ("0", 0), ("100", 1)])
def test_fail_under_exits_1_below_the_total_coverage(
    cli_runner: CliRunner, folder: Path, pct: str, code: int
) -> None:
    write(folder, "small.yaml")
    # a case that makes both S-2 and M-2 fire (one policy): 6 of the 8 units with both files
    write(
        folder,
        "more.yaml",
        "  - name: government\n    deal: {file: deal.yaml, patch: {customer: {government: true}}}\n"
        "    expect: {fired: [M-2]}\n",
        prefix="M",
    )
    result, out = dealdesk_test(cli_runner, "small.yaml", "--fail-under", pct)
    assert "  total 2/4   50.0%" in out.splitlines()
    assert result.exit_code == code
    below = f"coverage 50.0% is below --fail-under {float(pct):g}%"
    assert (below in result.stderr) == bool(code)
    both, out = dealdesk_test(cli_runner, "small.yaml", "more.yaml", "--fail-under", "75")
    assert "  total 6/8   75.0%" in out.splitlines()
    assert both.exit_code == 0, both.stderr


@pytest.mark.parametrize("close", ["2026-13-01", "2026-02-30"])
def test_an_impossible_date_in_an_inline_deal_makes_that_deal_invalid(
    cli_runner: CliRunner, folder: Path, close: str
) -> None:
    # YAML reads 2026-13-01 as a date it cannot build; it stays text and the deal says so
    write(folder, "dated.yaml")
    case = f"""\
  - name: impossible close
    deal: {{id: Q, dates: {{close: {close}}}, lines: [{{sku: s, category: hardware, quantity: 1, unit_price: 1000, unit_cost: 10}}]}}
    expect: {{status: approved}}
"""
    (folder / "dated.yaml").write_text((folder / "dated.yaml").read_text() + case)
    result, out = dealdesk_test(cli_runner, "dated.yaml")
    assert result.exit_code == 1, out
    assert f"the deal is invalid: dates.close: expected a date (YYYY-MM-DD), got '{close}'" in out
    assert "internal error" not in result.stderr


def test_a_misspelt_name_in_expect_fails_before_any_case_runs(
    cli_runner: CliRunner, folder: Path
) -> None:
    write(folder, "small.yaml", WRONG.replace("not_fired: [S-T]", "not_fired: [S_T]"))
    result, out = dealdesk_test(cli_runner, "small.yaml")
    assert result.exit_code == 1
    assert out == ""  # no case ran: `not_fired: [S_T]` would have passed whatever fired
    assert result.stderr.splitlines() == [
        "small.yaml:32:19: expect.not_fired: no rule or table 'S_T' in policy 'partner-margin'"
        " (did you mean 'S-T'?)"
    ]


def test_a_set_without_cases_says_no_tests_ran_and_exits_5(
    cli_runner: CliRunner, folder: Path
) -> None:
    (folder / "bare.yaml").write_text(RULESET[: RULESET.index("tests:")])
    result, out = dealdesk_test(cli_runner, "bare.yaml")
    assert (result.exit_code, out) == (5, "no tests ran: no test cases in 1 ruleset\n")
