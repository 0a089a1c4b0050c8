"""Approver ranks as data: ``approvers.yaml`` beside the rulesets, never read as a ruleset."""

from __future__ import annotations

import json
import shutil
import textwrap
from importlib import resources
from pathlib import Path

import pytest

from dealdesk.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "deals"
HOUSE = Path(str(resources.files("dealdesk.rulesets")))
NO_AUTOLOAD = {"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1"}

# A deal of the house examples that needs the CFO (BM-8); under RISKY it needs the risk officer too.
KPI = EXAMPLES / "kpi-at-risk-cfo.yaml"
RISKY = """
ruleset: risk
policy: partner-margin
rules:
  - id: R-1
    when: offer.kpi_at_risk > 0
    then:
      require: {role}
      reason: Money at risk needs the risk officer.
"""


@pytest.fixture
def run(cli_runner: CliRunner):
    def invoke(*args: str | Path) -> Result:
        return cli_runner.run(*map(str, args), env=NO_AUTOLOAD)

    return invoke


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def records(result: Result) -> list[dict]:
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_copy_of_the_house_folder_validates_and_gives_identical_records(
    run, tmp_path: Path
) -> None:
    copy = tmp_path / "rulesets"
    shutil.copytree(HOUSE, copy)
    assert (copy / "approvers.yaml").is_file()
    result = run("validate", copy)
    assert (result.exit_code, result.stdout) == (0, "3 rulesets OK\n"), result.stdout
    assert records(run("evaluate", "-r", copy, EXAMPLES)) == records(run("evaluate", EXAMPLES))


def test_an_approvers_file_beside_the_rulesets_gives_the_ranks(run, tmp_path: Path) -> None:
    folder = tmp_path / "policy"
    shutil.copytree(HOUSE, folder, ignore=shutil.ignore_patterns("approvers.yaml", "*.py"))
    write(folder / "risk.yaml", RISKY.format(role="risk_officer"))
    # without ranks of its own, the folder is checked against the house ranks
    result = run("validate", folder)
    assert result.exit_code == 1
    assert "unknown approver role 'risk_officer' (see rulesets/approvers.yaml)" in result.stdout
    # the new role ranked above the CFO comes last in approvals; one ranked lowest comes first
    ranks = (HOUSE / "approvers.yaml").read_text(encoding="utf-8")
    write(folder / "approvers.yaml", ranks + "  - risk_officer\n")
    [record] = records(run("evaluate", "-r", folder, KPI))
    assert record["approvals"] == ["cfo", "risk_officer"]
    write(
        folder / "approvers.yaml", ranks.replace("approvers:\n", "approvers:\n  - risk_officer\n")
    )
    [record] = records(run("evaluate", "-r", folder, KPI))
    assert record["approvals"] == ["risk_officer", "cfo"]
    # ranks of their own change what the records are checked against: another digest
    [house] = records(run("evaluate", KPI))
    assert record["provenance"]["digest"] != house["provenance"]["digest"]


def test_an_unknown_role_is_suggested_from_the_sets_own_ranks(run, tmp_path: Path) -> None:
    write(tmp_path / "p" / "approvers.yaml", "approvers: [deal_desk, risk_officer, cfo]\n")
    write(tmp_path / "p" / "risk.yaml", RISKY.format(role="risk_oficer"))
    result = run("validate", tmp_path / "p")
    assert result.exit_code == 1
    assert result.stdout == (
        f"{tmp_path / 'p' / 'risk.yaml'}:7:16: unknown approver role 'risk_oficer' "
        f"(see {tmp_path / 'p' / 'approvers.yaml'}) (did you mean 'risk_officer'?)\n"
    )


def test_a_ruleset_named_by_itself_keeps_the_ranks_beside_it(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "p" / "approvers.yaml", "approvers: [deal_desk, risk_officer, cfo]\n")
    write(tmp_path / "p" / "risk.yaml", RISKY.format(role="risk_oficer"))
    monkeypatch.chdir(tmp_path)
    # as when the folder is named: the folder's ranks, and the paths as the user wrote them
    by_file = run("validate", "p/risk.yaml")
    assert by_file.stdout == (
        "p/risk.yaml:7:16: unknown approver role 'risk_oficer' "
        "(see p/approvers.yaml) (did you mean 'risk_officer'?)\n"
    )
    assert by_file.stdout == run("validate", "p").stdout
    write(tmp_path / "p" / "risk.yaml", RISKY.format(role="risk_officer"))
    [record] = records(run("evaluate", "-r", "p/risk.yaml", "-r", "p/approvers.yaml", KPI))
    assert records(run("evaluate", "-r", "p/risk.yaml", KPI)) == [record]


def test_two_different_rank_files_are_an_error_naming_both(run, tmp_path: Path) -> None:
    first = write(tmp_path / "a" / "approvers.yaml", "approvers: [deal_desk, cfo]\n")
    second = write(tmp_path / "b" / "approvers.yml", "approvers: [cfo, deal_desk]\n")
    write(tmp_path / "a" / "risk.yaml", RISKY.format(role="cfo"))
    result = run("validate", tmp_path / "a", tmp_path / "b")
    assert result.exit_code == 1
    assert result.stdout == (
        f"{second}:1:1: approver ranks differ from those in {first}; "
        "a set has one approvers.yaml (or copies of it)\n"
    )
    # copies of one list agree
    write(second, "approvers: [deal_desk, cfo]\n")
    assert run("validate", tmp_path / "a", tmp_path / "b").exit_code == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("roles: [cfo]\n", "1:1: an approvers file holds the approver ranks"),
        ("approvers: [cfo]\nextra: 1\n", "2:1: unknown key 'extra' (an approvers file"),
        ("approvers: [cfo, legal, cfo]\n", "1:25: approvers: role 'cfo' is listed twice"),
        ("approvers: []\n", "1:12: approvers: expected a list of roles"),
    ],
)
def test_a_malformed_approvers_file_is_located(
    run, tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path / "p" / "approvers.yaml", text)
    write(tmp_path / "p" / "risk.yaml", RISKY.format(role="cfo"))
    result = run("validate", tmp_path / "p")
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{path}:{message}"), result.stdout


def test_a_ruleset_cannot_declare_ranks(run, tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", RISKY.format(role="cfo") + "approvers: [cfo]\n")
    result = run("validate", path)
    assert result.stdout == (
        f"{path}:9:1: unknown key 'approvers': approver ranks go in an approvers.yaml "
        "beside the rulesets\n"
    )
