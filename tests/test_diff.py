"""``dealdesk diff``: the house rulesets against an edited copy, on the example deals."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest

from dealdesk.diff import OutputChange, compare
from dealdesk.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "deals"
HOUSE = Path(str(resources.files("dealdesk.rulesets")))
NO_AUTOLOAD = {"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1"}
# the margin floor of a deal with few services (PM-2's first row), raised from 0.40
FLOOR = "then: {set: {margin_floor: 0.40}}"
RAISED = "then: {set: {margin_floor: 0.60}}"


@pytest.fixture
def run(cli_runner: CliRunner):
    def invoke(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
        return cli_runner.run(*map(str, args), env={**NO_AUTOLOAD, **(env or {})})

    return invoke


def copy_house(folder: Path) -> Path:
    """The house rulesets (without the approver ranks, which are not a ruleset) in ``folder``."""
    folder.mkdir(parents=True)
    for file in HOUSE.glob("*.yaml"):
        if file.name != "approvers.yaml":
            shutil.copy(file, folder / file.name)
    return folder


def edit(folder: Path, old: str = FLOOR, new: str = RAISED) -> None:
    file = folder / "partner-margin.yaml"
    text = file.read_text()
    assert text.count(old) == 1
    file.write_text(text.replace(old, new))


@pytest.fixture
def sides(tmp_path: Path) -> tuple[Path, Path]:
    """(base, head): the house rulesets, and a copy whose lowest margin floor is 0.60."""
    base = copy_house(tmp_path / "base")
    head = copy_house(tmp_path / "head")
    edit(head)
    return base, head


def evaluate(run, rulesets: Path) -> list[dict]:
    result = run("evaluate", EXAMPLES, "-r", rulesets, "-q", "--workers", "0")
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def decision(record: dict) -> tuple:
    outputs = {p: r["outputs"] for p, r in record["policies"].items()}
    return record["status"], record["approvals"], json.dumps(outputs, sort_keys=True)


def test_the_matrix_counts_what_two_evaluate_runs_give(run, sides, tmp_path: Path) -> None:
    base, head = sides
    expected = Counter(
        (b["status"], h["status"])
        for b, h in zip(evaluate(run, base), evaluate(run, head), strict=True)
    )
    assert any(b != h for b, h in expected), "the edit must move some deal to another status"
    page = tmp_path / "diff.html"
    result = run("diff", "--base", base, "--head", head, EXAMPLES, "-o", page)
    assert result.exit_code == 0, result.stderr
    cells = re.findall(r'data-from="(\w+)" data-to="(\w+)">([\d,]+)<', page.read_text())
    assert len(cells) == 16
    assert {(b, h): int(n) for b, h, n in cells if int(n)} == dict(expected)
    table = run("diff", "--base", base, "--head", head, EXAMPLES)
    approved_row = re.search(r"^  approved +(\d+) +(\d+) +(\d+) +(\d+)$", table.stdout, re.M)
    assert approved_row, table.stdout
    statuses = ["approved", "needs_approval", "rejected", "invalid"]
    assert [int(n) for n in approved_row.groups()] == [expected[("approved", s)] for s in statuses]


def test_jsonl_has_one_line_for_each_changed_deal_exactly(run, sides) -> None:
    base, head = sides
    before, after = evaluate(run, base), evaluate(run, head)
    result = run("diff", "--base", base, "--head", head, EXAMPLES, "-f", "jsonl", "--workers", "0")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    changed = [
        (i, b, h)
        for i, (b, h) in enumerate(zip(before, after, strict=True), 1)
        if decision(b) != decision(h)
    ]
    assert changed and len(changed) < len(before)
    assert [line["position"] for line in lines] == [i for i, _, _ in changed]
    for line, (_, b, h) in zip(lines, changed, strict=True):
        assert list(line) == [
            "deal_id",
            "position",
            "base",
            "head",
            "approvals_gained",
            "approvals_lost",
            "approvals_reordered",
            "policies_added",
            "policies_removed",
            "changed_outputs",
            "fired_added",
            "fired_removed",
            "fired_edited",
        ]
        assert line["deal_id"] == h["deal_id"]
        assert line["base"] == {"status": b["status"], "approvals": b["approvals"], "errors": []}
        assert line["head"] == {"status": h["status"], "approvals": h["approvals"], "errors": []}
        assert line["approvals_gained"] == [r for r in h["approvals"] if r not in b["approvals"]]
        for key, (old, new) in line["changed_outputs"].items():
            policy, name = key.split(".")
            assert old == b["policies"][policy]["outputs"][name] != new
            assert new == h["policies"][policy]["outputs"][name]
        for policy, result_ in h["policies"].items():
            fired_before = b["policies"][policy]["fired"]
            added = [r for r in result_["fired"] if r not in fired_before]
            assert line["fired_added"].get(policy, []) == added
    assert result.stderr.strip() == (
        f"{len(before)} deals: {len(changed)} decisions changed, "
        f"{len(before) - len(changed)} unchanged"
    )


def test_workers_and_in_process_give_the_same_lines(run, sides) -> None:
    base, head = sides
    args = ["diff", "--base", base, "--head", head, EXAMPLES, "-f", "jsonl"]
    in_process = run(*args, "--workers", "0")
    in_workers = run(*args, "--workers", "2")
    assert in_workers.exit_code == 0, in_workers.stderr
    assert in_workers.stdout == in_process.stdout != ""


def test_fail_on_change_exits_1_only_when_a_decision_changed(run, sides) -> None:
    base, head = sides
    assert run("diff", "--base", base, "--head", head, EXAMPLES).exit_code == 0
    changed = run("diff", "--base", base, "--head", head, EXAMPLES, "--fail-on-change")
    assert changed.exit_code == 1
    same = run("diff", "--base", base, "--head", base, EXAMPLES, "--fail-on-change")
    assert same.exit_code == 0, same.stderr


def test_an_unchanged_head_says_no_decision_changed(run, sides) -> None:
    base, _ = sides
    result = run("diff", "--base", base, "--head", base, EXAMPLES, "--workers", "0")
    assert result.exit_code == 0, result.stderr
    assert "29 deals: no decision changed" in result.stdout.splitlines()
    assert "Outputs that change" not in result.stdout
    jsonl = run("diff", "--base", base, "--head", base, EXAMPLES, "-f", "jsonl")
    assert jsonl.stdout == ""
    assert jsonl.stderr.strip() == "29 deals: no decision changed"


def test_the_report_names_the_rules_responsible(run, sides) -> None:
    base, head = sides
    result = run("diff", "--base", base, "--head", head, EXAMPLES, "--workers", "0")
    rules = result.stdout.split("Rules responsible")[1]
    # PM-2 was edited and fired on both sides; PM-3 fires only under the higher floor
    assert re.search(r"partner-margin PM-2 \[edited\]  \(both, edited \d+\)", rules)
    assert re.search(r"partner-margin PM-3  \(head only \d+\)", rules)
    outputs = result.stdout.split("Outputs that change")[1].split("Rules responsible")[0]
    assert re.search(r"partner-margin\.margin_floor +median \+0\.2; \d+ up, 0 down", outputs)


# --- REV:PATH -------------------------------------------------------------------------------


def git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=folder,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository holding the house rulesets in ``rules/``, committed, then edited in
    the working folder; the current directory."""
    folder = tmp_path / "repo"
    copy_house(folder / "rules")
    git(folder, "init", "-q")
    git(folder, "add", "rules")
    git(folder, "commit", "-q", "-m", "house rulesets")
    edit(folder / "rules")
    monkeypatch.chdir(folder)
    return folder


def test_rev_path_reads_the_rulesets_a_commit_has(run, repo: Path, tmp_path: Path) -> None:
    committed = copy_house(tmp_path / "committed")
    args = ["--head", "rules", EXAMPLES, "-f", "jsonl", "--workers", "0"]
    from_git = run("diff", "--base", "HEAD:rules", *args)
    from_copy = run("diff", "--base", committed, *args)
    assert from_git.exit_code == 0, from_git.stderr
    assert from_git.stdout == from_copy.stdout != ""
    # one file, from a sub-folder: PATH is relative to the current directory
    one = run(
        "diff",
        "--base",
        "HEAD:rules/partner-margin.yaml",
        "--head",
        "rules/partner-margin.yaml",
        EXAMPLES,
        "--fail-on-change",
    )
    assert one.exit_code == 1, one.stderr
    unchanged = run("diff", "--base", "HEAD:rules", "--head", "HEAD:rules", EXAMPLES)
    assert unchanged.exit_code == 0
    assert "no decision changed" in unchanged.stdout


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("NOPE:rules", "error: --base: NOPE:rules: unknown revision 'NOPE'"),
        ("HEAD:missing", "error: --base: HEAD:missing: no such file or directory in HEAD"),
        (":rules", "error: --base: :rules: give a revision before the colon (HEAD:rules)"),
    ],
)
def test_a_bad_rev_path_is_one_line_and_exit_2(run, repo: Path, spec: str, message: str) -> None:
    result = run("diff", "--base", spec, "--head", "rules", EXAMPLES)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [message]


def test_rev_path_outside_a_repository_or_without_git_is_exit_2(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = copy_house(tmp_path / "plain")
    monkeypatch.chdir(tmp_path)
    outside = run(
        "diff",
        "--base",
        "HEAD:plain",
        "--head",
        folder,
        EXAMPLES,
        env={"GIT_CEILING_DIRECTORIES": str(tmp_path.parent)},
    )
    assert outside.exit_code == 2
    assert outside.stderr.splitlines() == [
        f"error: --base: HEAD:plain: {tmp_path} is not in a git working tree"
    ]
    no_git = run("diff", "--base", "HEAD:plain", "--head", folder, EXAMPLES, env={"PATH": ""})
    assert no_git.exit_code == 2
    assert no_git.stderr.splitlines() == [
        "error: --base: HEAD:plain: git is not installed (needed to read REV:PATH)"
    ]


def test_a_broken_ruleset_in_git_is_named_rev_path_file_line_col(run, repo: Path) -> None:
    broken = repo / "rules" / "onsite-support.yaml"
    broken.write_text(broken.read_text().replace("when: risk_offer", "when: risk_offer &&", 1))
    git(repo, "commit", "-q", "-am", "broken")
    result = run("diff", "--base", "HEAD:rules", "--head", "HEAD~1:rules", EXAMPLES)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("HEAD:rules/onsite-support.yaml:") for line in lines)
    line = next(
        n for n, text in enumerate(broken.read_text().splitlines(), 1) if "risk_offer &&" in text
    )
    assert re.match(rf"HEAD:rules/onsite-support.yaml:{line}:\d+: ", lines[0])


# --- the page and the pieces ------------------------------------------------------------------


def test_the_page_is_self_contained_and_escapes_deal_ids(run, sides, tmp_path: Path) -> None:
    base, head = sides
    deal = (EXAMPLES / "acme-risk.yaml").read_text()
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text(re.sub(r"^id: .*$", 'id: "<script>alert(1)</script>"', deal, flags=re.M))
    # a margin floor above the deal's margin: its decision changes
    edit(head, "then: {set: {margin_floor: 0.35}}", "then: {set: {margin_floor: 0.99}}")
    page = tmp_path / "out.html"
    result = run("diff", "--base", base, "--head", head, hostile, "-o", page)
    assert result.exit_code == 0, result.stderr
    text = page.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<script>" not in text
    assert not re.search(r"(src|href)=\"?(https?:)?//", text)
    assert "1 deal: 1 decision changed, 0 unchanged" in text


def test_compare_counts_outputs_status_and_approvals_not_fired_rules() -> None:
    record = {
        "deal_id": "D-1",
        "status": "approved",
        "approvals": [],
        "policies": {"p": {"status": "approved", "fired": ["R-1"], "outputs": {"x": 1}}},
        "errors": [],
    }
    other_rules = json.loads(json.dumps(record))
    other_rules["policies"]["p"]["fired"] = ["R-2"]
    assert compare(1, record, other_rules) is None
    as_bool = json.loads(json.dumps(record))
    as_bool["policies"]["p"]["outputs"]["x"] = True  # equal to 1 in Python, not in JSON
    change = compare(4, record, as_bool)
    assert change is not None
    assert change.json()["changed_outputs"] == {"p.x": [1, True]}
    assert change.json()["fired_added"] == {} and change.position == 4
    gone = json.loads(json.dumps(record))
    gone["policies"]["p"]["outputs"] = {}
    assert compare(1, record, gone).changed_outputs == {"p.x": (1, None)}  # type: ignore[union-attr]


def test_the_typical_change_of_a_number_is_its_median() -> None:
    change = OutputChange("p.amount")
    for before, after in [("100.00", "110.00"), ("100.00", "130.00"), (0.5, 0.25), (1, 1.5)]:
        change.add(before, after)
    change.add("fixed", "kpi")
    assert change.deals == 5 and change.numeric == 4
    assert (change.up, change.down) == (3, 1)
    assert change.median == Decimal("5.25")  # of -0.25, 0.5, 10, 30
    assert change.typical() == "median +5.25 (-0.25 to +30); 3 up, 1 down; fixed → kpi (1)"
