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
from docblocks import blocks

from dealdesk.diff import Comparison, OutputChange, compare, moved
from dealdesk.engines import ENGINES
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


# --- REV:PATH from a sub-folder, and which side an error belongs to --------------------------


@pytest.fixture
def nested(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository whose rulesets are in ``team/rules`` (committed, then edited); the
    current directory is ``team``, a sub-folder of the repository."""
    folder = tmp_path / "nested"
    copy_house(folder / "team" / "rules")
    git(folder, "init", "-q")
    git(folder, "add", "team")
    git(folder, "commit", "-q", "-m", "house rulesets")
    edit(folder / "team" / "rules")
    monkeypatch.chdir(folder / "team")
    return folder


def test_rev_path_is_relative_to_a_sub_folder_for_files_and_directories(
    run, nested: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed = copy_house(tmp_path / "committed")
    jsonl = [EXAMPLES, "-f", "jsonl", "--workers", "0"]
    expected = run("diff", "--base", committed, "--head", "rules", *jsonl)
    assert expected.exit_code == 0 and expected.stdout != "", expected.stderr
    folder = run("diff", "--base", "HEAD:rules", "--head", "rules", *jsonl)
    assert folder.exit_code == 0, folder.stderr
    assert folder.stdout == expected.stdout
    monkeypatch.chdir(nested / "team" / "rules")
    here = run("diff", "--base", "HEAD:.", "--head", ".", *jsonl)
    assert here.exit_code == 0, here.stderr
    assert here.stdout == expected.stdout
    up_and_back = run("diff", "--base", "HEAD:../rules", "--head", ".", *jsonl)
    assert up_and_back.stdout == expected.stdout
    one_file = run(
        "diff", "--base", "HEAD:partner-margin.yaml", "--head", "partner-margin.yaml", *jsonl
    )
    assert one_file.exit_code == 0, one_file.stderr
    copied = run(
        "diff", "--base", committed / "partner-margin.yaml", "--head", "partner-margin.yaml", *jsonl
    )
    assert one_file.stdout == copied.stdout != ""
    outside = run("diff", "--base", "HEAD:../../..", "--head", ".", EXAMPLES)
    assert outside.exit_code == 2
    assert outside.stderr.splitlines() == [
        "error: --base: HEAD:../../..: ../../.. is outside the git repository"
    ]


def test_errors_name_the_side_they_come_from_and_only_then(run, sides) -> None:
    base, head = sides
    missing = run("diff", "--base", base, "--head", "nosuch", EXAMPLES)
    assert missing.exit_code == 2
    assert missing.stderr.splitlines() == [
        "error: --head: nosuch: no such ruleset file or directory"
    ]
    # the engine and the plugins are the same on both sides
    engine = run("diff", "--base", base, "--head", head, EXAMPLES, "--engine", "bogus")
    assert engine.exit_code == 2
    assert engine.stderr.splitlines() == [
        f"error: unknown engine 'bogus' (choose from {', '.join(ENGINES)})"
    ]
    plugin = run("-p", "dealdesk_no_such_plugin", "diff", "--base", base, "--head", head, EXAMPLES)
    assert plugin.exit_code != 0
    assert plugin.stderr.startswith('error: Error importing plugin "dealdesk_no_such_plugin"')
    assert "--base" not in plugin.stderr and "--head" not in plugin.stderr


# --- every changed decision explained ----------------------------------------------------------


def jsonl_lines(result: Result) -> list[dict]:
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def section(text: str, title: str) -> list[str]:
    """The lines under the section whose title starts with ``title``, its title first."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i]), len(lines))
    return lines[start:end]


def test_new_approver_ranks_show_as_approvals_reordered_and_name_the_file(
    run, tmp_path: Path
) -> None:
    base = copy_house(tmp_path / "base")
    head = copy_house(tmp_path / "head")
    ranks = (HOUSE / "approvers.yaml").read_text()
    assert "  - deal_desk\n" in ranks
    # deal_desk, the lowest rank, becomes the highest
    (head / "approvers.yaml").write_text(ranks.replace("  - deal_desk\n", "") + "  - deal_desk\n")
    before, after = evaluate(run, base), evaluate(run, head)
    reordered = [
        i
        for i, (b, h) in enumerate(zip(before, after, strict=True), 1)
        if b["approvals"] != h["approvals"]
    ]
    assert reordered and all(
        sorted(before[i - 1]["approvals"]) == sorted(after[i - 1]["approvals"]) for i in reordered
    )
    table = run("diff", "--base", base, "--head", head, EXAMPLES, "--workers", "0")
    assert table.exit_code == 0, table.stderr
    cause = f"approver ranks changed: rulesets/approvers.yaml → {head}/approvers.yaml"
    assert f"{cause} (deal_desk moved)" in table.stdout.splitlines()
    assert f"{len(reordered)} decisions changed" in table.stdout
    assert section(table.stdout, "Approvals reordered") == [
        f"Approvals reordered ({len(reordered)} deals; roles that moved, "
        "as the approver ranks changed):",
        f"  {len(reordered)}  deal_desk",
    ]
    result = run("diff", "--base", base, "--head", head, EXAMPLES, "-f", "jsonl", "--workers", "0")
    lines = jsonl_lines(result)
    assert [line["position"] for line in lines] == reordered
    for line in lines:
        assert line["approvals_reordered"] == ["deal_desk"]
        assert line["approvals_gained"] == line["approvals_lost"] == []
        assert line["head"]["approvals"][-1] == "deal_desk" != line["base"]["approvals"][-1]
    assert f"{cause} (deal_desk moved)" in result.stderr.splitlines()
    page = tmp_path / "page.html"
    assert run("diff", "--base", base, "--head", head, EXAMPLES, "-o", page).exit_code == 0
    text = page.read_text()
    assert "(deal_desk moved)</code>" in text.split('id="ranks"')[1].split("</li>")[0]
    reordered_card = text.split('id="reordered"')[1].split("</section>")[0]
    assert f'<td>deal_desk</td><td class="n">{len(reordered)}</td>' in reordered_card


def test_jsonl_names_edited_rules_that_fired_on_both_sides(run, sides) -> None:
    base, head = sides
    before, after = evaluate(run, base), evaluate(run, head)
    result = run("diff", "--base", base, "--head", head, EXAMPLES, "-f", "jsonl", "--workers", "0")
    lines = jsonl_lines(result)
    assert lines
    for line in lines:
        b, h = before[line["position"] - 1], after[line["position"] - 1]
        both = [
            rule
            for rule in h["policies"]["partner-margin"]["fired"]
            if rule in b["policies"]["partner-margin"]["fired"]
        ]
        # PM-2 is the one rule whose YAML differs
        expected = {"partner-margin": ["PM-2"]} if "PM-2" in both else {}
        assert line["fired_edited"] == expected
    assert any(line["fired_edited"] and not line["fired_added"] for line in lines)


@pytest.mark.parametrize("removed_on", ["head", "base"])
def test_a_policy_on_one_side_only_is_added_or_removed_not_null(
    run, tmp_path: Path, removed_on: str
) -> None:
    full = copy_house(tmp_path / "full")
    fewer = copy_house(tmp_path / "fewer")
    (fewer / "onsite-support.yaml").unlink()
    base, head = (full, fewer) if removed_on == "head" else (fewer, full)
    how = "removed" if removed_on == "head" else "added"
    records = evaluate(run, full)
    deciding = [i for i, r in enumerate(records, 1) if "onsite-support" in r["policies"]]
    assert deciding
    table = run("diff", "--base", base, "--head", head, EXAMPLES, "--workers", "0")
    assert table.exit_code == 0, table.stderr
    assert section(table.stdout, "Policies on one side only") == [
        "Policies on one side only (deals):",
        f"  {len(deciding)}  onsite-support  policy {how}",
    ]
    assert "null → null" not in table.stdout
    assert "onsite-support." not in table.stdout.split("Outputs that change")[-1].split("Rules")[0]
    lines = jsonl_lines(
        run("diff", "--base", base, "--head", head, EXAMPLES, "-f", "jsonl", "--workers", "0")
    )
    assert [line["position"] for line in lines] == deciding
    for line in lines:
        assert line[f"policies_{how}"] == ["onsite-support"]
        assert not any(key.startswith("onsite-support.") for key in line["changed_outputs"])
    page = tmp_path / "page.html"
    assert run("diff", "--base", base, "--head", head, EXAMPLES, "-o", page).exit_code == 0
    assert f"<code>onsite-support</code> policy {how}" in page.read_text()


def overlap_pm2(folder: Path) -> None:
    """PM-2's rows (hit policy unique) overlap from 0.10 to 0.20: deals there become invalid."""
    edit(folder, 'when: ["[0.20..0.40]"]', 'when: ["[0.10..0.40]"]')


def test_the_report_lists_the_errors_of_deals_invalid_under_head(run, tmp_path: Path) -> None:
    base = copy_house(tmp_path / "base")
    head = copy_house(tmp_path / "head")
    overlap_pm2(head)
    before, after = evaluate(run, base), evaluate(run, head)
    counts: dict[str, list[int]] = {}
    for b, h in zip(before, after, strict=True):
        if h["status"] == "invalid":
            for message in {
                (f"{e['path']}: " if e["path"] else "") + e["message"] for e in h["errors"]
            }:
                counts.setdefault(message, [0, 0])[b["status"] == "invalid"] += 1
    became = sum(
        b["status"] != "invalid" == h["status"] for b, h in zip(before, after, strict=True)
    )
    assert became and any(message.startswith(f"{head}/partner-margin.yaml:") for message in counts)
    table = run("diff", "--base", base, "--head", head, EXAMPLES, "--workers", "0")
    lines = section(table.stdout, "Errors under head")
    invalid = sum(h["status"] == "invalid" for h in after)
    assert lines[0] == (
        f"Errors under head ({invalid} invalid deals: {became} became invalid, "
        f"{invalid - became} stayed invalid):"
    )
    shown = {}
    for line in lines[1:]:
        match = re.fullmatch(r"  +(\d+)  (.*)  \((.*)\)", line)
        assert match, line
        shown[match.group(2)] = (int(match.group(1)), match.group(3))
    for message, (new, old) in counts.items():
        parts = [f"became invalid {new}"] if new else []
        parts += [f"stayed invalid {old}"] if old else []
        assert shown[message] == (new + old, ", ".join(parts))
    assert len(shown) == len(counts)
    page = tmp_path / "page.html"
    assert run("diff", "--base", base, "--head", head, EXAMPLES, "-o", page).exit_code == 0
    errors = page.read_text().split('id="errors"')[1].split("</section>")[0]
    assert f"{became} became invalid" in errors
    assert "table &#39;PM-2&#39;: hit policy unique" in errors


def test_errors_from_a_git_revision_name_rev_path(run, repo: Path) -> None:
    overlap_pm2(repo / "rules")
    git(repo, "commit", "-q", "-am", "overlapping rows")
    result = run("diff", "--base", "HEAD~1:rules", "--head", "HEAD:rules", EXAMPLES, "-f", "jsonl")
    lines = jsonl_lines(result)
    errors = [e for line in lines for e in line["head"]["errors"] if "PM-2" in e]
    assert errors
    assert all(e.startswith("HEAD:rules/partner-margin.yaml:") for e in errors), errors
    table = run("diff", "--base", "HEAD~1:rules", "--head", "HEAD:rules", EXAMPLES)
    assert re.search(
        r"^ +\d+  HEAD:rules/partner-margin.yaml:\d+:\d+: table 'PM-2'", table.stdout, re.M
    )
    assert "dealdesk-diff-" not in table.stdout


def test_moved_roles_are_the_fewest_that_explain_the_new_order() -> None:
    assert moved(["a", "b", "c"], ["a", "b", "c"]) == []
    assert moved(["a", "b", "c"], ["b", "c", "a"]) == ["a"]
    assert moved(["a", "b", "c", "d"], ["d", "a", "b", "c"]) == ["d"]
    assert len(moved(["a", "b"], ["b", "a"])) == 1


# --- docs/diff.md --------------------------------------------------------------------------------


def test_the_docs_example_is_what_diff_prints(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = blocks((ROOT / "docs" / "diff.md").read_text())
    outputs = {block.value: block.text for block in doc if block.label == "output"}
    change = next(block for block in doc if block.language == "diff").text.splitlines()
    assert [line[1:].strip() for line in change if line[:1] in "-+"] == [FLOOR, RAISED]
    folder = tmp_path / "example"
    copy_house(folder / "policies")
    git(folder, "init", "-q")
    git(folder, "add", "policies")
    git(folder, "commit", "-q", "-m", "house rulesets")
    edit(folder / "policies")
    monkeypatch.chdir(folder)
    args = ["diff", "--base", "HEAD:policies", "--head", "policies", EXAMPLES]
    table = run(*args)
    assert table.exit_code == 0, table.stderr
    assert table.stdout == outputs["table"]
    jsonl = run(*args, "-f", "jsonl")
    assert outputs["jsonl"].strip() in jsonl.stdout.splitlines()


def test_only_a_policy_whose_rulesets_one_side_lacks_counts_as_added_or_removed() -> None:
    record = {
        "deal_id": "D-1",
        "status": "approved",
        "approvals": [],
        "policies": {
            "p": {"status": "approved", "fired": [], "outputs": {"x": None}},
            "q": {"status": "approved", "fired": [], "outputs": {"y": 1}},
        },
        "errors": [],
    }
    without_p = json.loads(json.dumps(record))
    del without_p["policies"]["p"]
    sets = Comparison(base_policies=frozenset({"p", "q"}), head_policies=frozenset({"q"}))
    change = compare(1, record, without_p, sets)
    assert change is not None
    assert change.policies_removed == ("p",) and change.changed_outputs == {}
    # a policy that neither set has rulesets for is compared output by output, as without sets
    neither = Comparison(base_policies=frozenset({"q"}), head_policies=frozenset({"q"}))
    other = compare(1, record, without_p, neither)
    assert other is not None and other.policies_removed == ()
    assert list(other.changed_outputs) == ["p.x"]
