"""The policy authors' docs work as written: docs/tutorial.md and docs/rulesets.md.

The tutorial is replayed in an empty folder, in the doc's order: ``<!-- file: PATH -->`` blocks
are written, ``<!-- append: PATH -->`` blocks added at the end of their file, ``<!-- edit: PATH
-->`` ``diff`` blocks applied to it, and each ``$ ...`` line of a ``console`` block is run (the
``dealdesk`` commands through the real CLI) and its output compared with the lines shown under
it, timings aside.

The reference's examples are evaluated on its example deal (the block labelled
``<!-- example: deal -->``):

- each row of a table whose last column is ``on the example deal`` is a condition and its
  value there (``true``, ``false`` or ``unknown``);
- each ``<!-- example -->`` YAML block is part of a ruleset (its ``rules:``, ``tables:``,
  ``outputs:`` ...), and the ``json`` block after it is what the decision record shows: every
  key given must have that value (a policy's entry, and each mapping, on the keys given);
- each row of a table headed ``| cell | input | matches | does not match |`` is a decision-table
  cell, with values of its input that it matches and does not;
- each row of a table headed ``| hit | ... |`` gives what the ``<!-- example: hit policies -->``
  table decides under that hit policy.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from docblocks import Block, blocks

from dealdesk.testing import CliRunner

DOCS = Path(__file__).resolve().parents[1] / "docs"
TUTORIAL = DOCS / "tutorial.md"
# installed plugins would add their rulesets to every command; the engine is the default one
ENV = {"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1", "DEALDESK_ENGINE": None}


# --- the tutorial ----------------------------------------------------------------------------


def apply_diff(text: str, diff: str, where: str) -> str:
    """``text`` with the one place that the ``diff`` block's ``-`` and context lines show
    replaced by its ``+`` and context lines."""
    old: list[str] = []
    new: list[str] = []
    for line in diff.splitlines():
        mark, rest = line[:1], line[1:]
        if mark in (" ", ""):
            old.append(rest)
            new.append(rest)
        elif mark == "-":
            old.append(rest)
        elif mark == "+":
            new.append(rest)
        else:
            pytest.fail(f"{where}: a diff line starts with {mark!r}")
    before, after = "\n".join(old) + "\n", "\n".join(new) + "\n"
    found = text.count(before)
    assert found == 1, f"{where}: the lines the diff changes occur {found} times in the file"
    return text.replace(before, after)


def _timings(text: str) -> str:
    return re.sub(r"\bin \d+(\.\d+)?s\b", "in T", text)


def console_steps(block: Block) -> list[tuple[str, list[str]]]:
    """Each ``$ command`` of a console block with the output lines shown under it."""
    steps: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            assert steps, f"tutorial.md:{block.line}: output before any command"
            steps[-1][1].append(line)
    return steps


def run(command: str, runner: CliRunner, where: str) -> tuple[int, str]:
    """Run one console line in the current folder: its exit status and what it printed."""
    argv = shlex.split(command)
    if argv[0] == "dealdesk":
        result = runner.run(*argv[1:])
        assert result.exception is None, f"{where}: {command}: {result.exception!r}"
        # a terminal shows the report (stdout), then the summary (stderr)
        return result.exit_code, result.stdout + result.stderr
    if argv[:1] == ["mkdir"]:
        for name in argv[1:]:
            Path(name).mkdir()
        return 0, ""
    if argv[:2] == ["cp", "-r"] and len(argv) == 4:
        shutil.copytree(argv[2], argv[3])
        return 0, ""
    pytest.fail(f"{where}: the test does not know how to run {command!r}")


TUTORIAL_BLOCKS = blocks(TUTORIAL.read_text(encoding="utf-8"))


def test_the_tutorial_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner(env=ENV)
    done: list[str] = []
    for block in TUTORIAL_BLOCKS:
        where = f"tutorial.md:{block.line}"
        if block.label in ("file", "append", "edit"):
            assert block.value, f"{where}: a {block.label} label without a path"
            path = tmp_path / block.value
        if block.label == "file":
            assert not path.exists(), f"{where}: {block.value} is written twice"
            path.write_text(block.text, encoding="utf-8")
        elif block.label == "append":
            with path.open("a", encoding="utf-8") as file:
                file.write(block.text)
        elif block.label == "edit":
            assert block.language == "diff", where
            path.write_text(apply_diff(path.read_text("utf-8"), block.text, where), "utf-8")
        elif block.language == "console":
            for command, shown in console_steps(block):
                status, printed = run(command, runner, where)
                assert _timings(printed).splitlines() == _timings("\n".join(shown)).splitlines(), (
                    f"{where}: {command}\n--- printed:\n{printed}"
                )
                # a command the doc shows failing is one that says so with its exit status
                failing = any(re.search(r"\b[1-9]\d* (error|failed)\b", line) for line in shown)
                assert status == (1 if failing else 0), f"{where}: {command}: exit {status}"
                done.append(command.split()[1] if command.startswith("dealdesk ") else command)
    # every step the tutorial promises was run
    assert {"validate", "test", "explain", "diff", "whatif"} <= set(done), done
    assert (tmp_path / "policies-before" / "discounts.yaml").is_file()


@pytest.mark.parametrize("doc", ["tutorial.md", "rulesets.md"])
def test_the_links_lead_somewhere(doc: str) -> None:
    """Links to other docs and to headings (of this page or another) resolve."""
    text = (DOCS / doc).read_text(encoding="utf-8")
    links = re.findall(r"\]\(([\w./-]*\.md)?(?:#([\w-]+))?\)", text)
    assert links
    for target, anchor in links:
        page = (DOCS / (target or doc)).resolve()
        assert page.is_file(), f"{doc}: {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), flags=re.M)
            assert anchor in {_anchor(h) for h in headings}, f"{doc}: {target}#{anchor}"


def _anchor(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


# --- the reference ---------------------------------------------------------------------------

REFERENCE = DOCS / "rulesets.md"
REFERENCE_TEXT = REFERENCE.read_text(encoding="utf-8")
REFERENCE_BLOCKS = blocks(REFERENCE_TEXT)
# the examples leave these out (the doc says so): every example feeds partner-margin
HEADER = "ruleset: example\npolicy: partner-margin\n"


def example_deal() -> dict[str, Any]:
    [block] = [b for b in REFERENCE_BLOCKS if (b.label, b.value) == ("example", "deal")]
    return dict(yaml.safe_load(block.text))


def markdown_tables(text: str) -> list[tuple[int, list[str], list[list[str]]]]:
    """Each table of ``text``: the line of its header, its header cells and its rows' cells."""
    found: list[tuple[int, list[str], list[list[str]]]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        if not lines[index].startswith("|"):
            index += 1
            continue
        start = index
        while index < len(lines) and lines[index].startswith("|"):
            index += 1
        header, _, *rows = (_cells(line) for line in lines[start:index])
        found.append((start + 1, header, rows))
    return found


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])]


def code(cell: str) -> list[str]:
    """The code spans of a table cell."""
    return [span.replace("\\|", "|") for span in re.findall(r"`([^`]+)`", cell)]


def tables_headed(first: str, last: str | None = None) -> list[tuple[str, list[str]]]:
    """``(where, row)`` for each row of the reference's tables with these header cells."""
    return [
        (f"rulesets.md:{line}", row)
        for line, header, rows in markdown_tables(REFERENCE_TEXT)
        if header[0] == first and (last is None or header[-1] == last)
        for row in rows
    ]


def decide(
    folder: Path, ruleset: str, deals: list[dict[str, Any]], engine: str, *, clauses: bool = False
) -> list[dict[str, Any]]:
    """The records of ``deals`` under the ruleset ``HEADER + ruleset``, through the CLI."""
    folder.mkdir(parents=True)
    (folder / "rules").mkdir()
    (folder / "rules" / "example.yaml").write_text(HEADER + ruleset, encoding="utf-8")
    (folder / "deals.yaml").write_text(yaml.safe_dump(deals, sort_keys=False), encoding="utf-8")
    argv = ["evaluate", "-r", str(folder / "rules"), str(folder / "deals.yaml")]
    argv += ["--workers", "0", "-q", "--engine", engine, *(["--clauses"] if clauses else [])]
    result = CliRunner(env=ENV).run(*argv)
    assert result.exit_code == 0, f"{ruleset}\n{result.stderr}"
    return [json.loads(line) for line in result.stdout.splitlines()]


def mismatches(expected: Any, actual: Any, path: str = "record") -> list[str]:
    """Where ``actual`` differs from ``expected``: a mapping on the keys given, a list item by
    item, anything else by equality."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected a mapping, got {actual!r}"]
        return [
            problem
            for key, value in expected.items()
            for problem in (
                mismatches(value, actual[key], f"{path}.{key}")
                if key in actual
                else [f"{path}: no key {key!r} in {sorted(actual)}"]
            )
        ]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected {expected!r}, got {actual!r}"]
        return [p for i, e in enumerate(expected) for p in mismatches(e, actual[i], f"{path}[{i}]")]
    same = expected == actual and type(expected) is type(actual)
    return [] if same else [f"{path}: expected {expected!r}, got {actual!r}"]


def test_the_reference_examples_are_found() -> None:
    """The parsing below found what the doc holds (a renamed header must not skip a check)."""
    assert len(CONDITIONS) >= 25
    assert len(THEN_EXAMPLES) >= 8
    assert len(CELLS) >= 12
    assert len(HIT_POLICIES) == 11
    assert len(FACTS) >= 11
    keys = {"set", "require", "reject", "flag", "reason", "clause", "action", "with"}
    shown = {key for _, block, _ in THEN_EXAMPLES for key in _then_keys(block.text)}
    assert keys <= shown, keys - shown


def _then_keys(text: str) -> set[str]:
    parsed = yaml.safe_load(text) or {}
    rules = parsed.get("rules", []) + [
        row for table in parsed.get("tables", []) for row in table["rows"]
    ]
    return {key for rule in rules for key in rule["then"]}


# What a rule can read: each fact's value on the example deal

FACTS = [
    (where, code(row[0])[0], code(row[-1])[0])
    for where, row in tables_headed("fact", "on the example deal")
    if code(row[-1])
]


def test_the_facts_of_the_example_deal_are_as_shown() -> None:
    from decimal import Decimal

    from dealdesk.deal.derive import derive_facts

    facts = derive_facts(example_deal())
    for where, path, shown in FACTS:
        value: Any = facts
        for part in path.split("."):
            value = value[part]
        claimed = yaml.safe_load(shown)
        if isinstance(claimed, bool) or isinstance(value, bool):
            assert value is claimed, (where, path)
        else:
            places = len(shown.partition(".")[2])
            assert round(Decimal(value), places) == Decimal(shown), (where, path, value)


# Conditions: each example's value on the example deal

CONDITIONS = [
    (where, code(row[1])[0], code(row[-1])[0])
    for where, row in tables_headed("construct", "on the example deal")
    + tables_headed("case", "on the example deal")
]


def truth_of(conditions: list[str], folder: Path, engine: str) -> list[str]:
    """Each condition's value on the example deal: a rule on it fires when it is true, a rule on
    its negation when it is false, neither when it is unknown."""
    rules = "".join(
        f"  - id: C{i}\n    when: {json.dumps(c)}\n    then: {{}}\n"
        f"  - id: C{i}-not\n    when: {json.dumps(f'not ({c})')}\n    then: {{}}\n"
        for i, c in enumerate(conditions)
    )
    [record] = decide(folder, "rules:\n" + rules, [example_deal()], engine)
    fired = set(record["policies"]["partner-margin"]["fired"])
    values = []
    for i in range(len(conditions)):
        yes, no = f"C{i}" in fired, f"C{i}-not" in fired
        assert not (yes and no), conditions[i]
        values.append("true" if yes else "false" if no else "unknown")
    return values


def test_every_condition_has_the_value_shown(tmp_path: Path, engine: str) -> None:
    assert {claimed for _, _, claimed in CONDITIONS} == {"true", "false", "unknown"}
    values = truth_of([c for _, c, _ in CONDITIONS], tmp_path / "c", engine)
    wrong = [
        f"{where}: {condition} is {value}, the doc says {claimed}"
        for (where, condition, claimed), value in zip(CONDITIONS, values, strict=True)
        if value != claimed
    ]
    assert not wrong, "\n".join(wrong)


# Actions, outputs, priority and windows: each example's record

THEN_EXAMPLES = [
    (f"rulesets.md:{block.line}", block, REFERENCE_BLOCKS[i + 1])
    for i, block in enumerate(REFERENCE_BLOCKS)
    if (block.label, block.value) == ("example", None)
]


@pytest.mark.parametrize(
    ("where", "block", "shown"), THEN_EXAMPLES, ids=[w for w, _, _ in THEN_EXAMPLES]
)
def test_every_example_ruleset_decides_as_shown(
    tmp_path: Path, engine: str, where: str, block: Block, shown: Block
) -> None:
    assert (block.language, shown.language) == ("yaml", "json"), where
    [record] = decide(tmp_path / "x", block.text, [example_deal()], engine, clauses=True)
    problems = mismatches(json.loads(shown.text), record)
    assert not problems, f"{where}:\n" + "\n".join(problems) + f"\n{json.dumps(record)}"


# Decision-table cells: values each matches and does not

CELLS = [
    (where, code(row[0])[0], code(row[1])[0], code(row[2]), code(row[3]))
    for where, row in tables_headed("cell")
]
PARTNER = {"name": "Northwind Resellers", "kind": "reseller", "tier": "gold", "discount": 0.1}


def _with(path: str, value: Any) -> dict[str, Any]:
    """The example deal, with a partner, and ``path`` set to ``value`` (left out for null)."""
    deal = copy.deepcopy(example_deal()) | {"partner": dict(PARTNER)}
    *parents, leaf = path.split(".")
    where = deal
    for part in parents:
        where = where.setdefault(part, {})
    if value is None:
        where.pop(leaf, None)
    else:
        where[leaf] = value
    return deal


def test_every_cell_matches_the_values_shown(tmp_path: Path, engine: str) -> None:
    tables, deals, cases = [], [], []
    for i, (where, cell, path, yes, no) in enumerate(CELLS):
        tables.append(
            f"  - id: T{i}\n    hit: first\n    complete: false\n    inputs: [{path}]\n"
            f"    rows:\n      - when: [{json.dumps(cell)}]\n        then: {{}}\n"
        )
        for text, expected in [(v, True) for v in yes] + [(v, False) for v in no]:
            deals.append(_with(path, yaml.safe_load(text)))
            cases.append((where, cell, text, f"T{i}", expected))
    records = decide(tmp_path / "cells", "tables:\n" + "".join(tables), deals, engine)
    wrong = [
        f"{where}: cell {cell!r} {'does not match' if expected else 'matches'} {text}"
        for (where, cell, text, table, expected), record in zip(cases, records, strict=True)
        if (table in record["policies"]["partner-margin"]["fired"]) != expected
        or record["status"] == "invalid"
    ]
    assert not wrong, "\n".join(wrong)


# Hit policies: the example table's output under each

HIT_POLICIES = [(where, code(row[0]), code(row[1])[0]) for where, row in tables_headed("hit")]


@pytest.mark.parametrize(
    ("where", "hit", "shown"), HIT_POLICIES, ids=[" ".join(h) for _, h, _ in HIT_POLICIES]
)
def test_every_hit_policy_decides_as_shown(
    tmp_path: Path, engine: str, where: str, hit: list[str], shown: str
) -> None:
    [table] = [b for b in REFERENCE_BLOCKS if (b.label, b.value) == ("example", "hit policies")]
    policy, *rest = hit
    aggregation = "".join(f"    {a}\n" for a in rest if a.startswith("aggregation: "))
    assert table.text.count("    hit: first\n") == 1
    text = table.text.replace("    hit: first\n", f"    hit: {policy}\n{aggregation}")
    [record] = decide(tmp_path / "hit", text, [example_deal()], engine)
    if shown == "invalid":
        assert record["status"] == "invalid", (where, record)
        assert "hit policy " + policy in record["errors"][0]["message"]
    else:
        assert record["status"] != "invalid", (where, record["errors"])
        outputs = record["policies"]["partner-margin"]["outputs"]
        assert outputs["risk_points"] == json.loads(shown), where


# Tests next to the rules: the example ruleset's cases pass, and use every expect key


def test_the_example_tests_pass_as_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dealdesk.rules.model import EXPECT_KEYS

    [ruleset] = [b for b in REFERENCE_BLOCKS if (b.label, b.value) == ("example", "tests")]
    [console] = [b for b in REFERENCE_BLOCKS if (b.label, b.value) == ("example", "tests run")]
    [deal] = [b for b in REFERENCE_BLOCKS if (b.label, b.value) == ("example", "deal")]
    used = {key for case in yaml.safe_load(ruleset.text)["tests"] for key in case["expect"]}
    assert used == set(EXPECT_KEYS)
    (tmp_path / "floors.yaml").write_text(ruleset.text, encoding="utf-8")
    (tmp_path / "deal.yaml").write_text(deal.text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    [(command, shown)] = console_steps(console)
    status, printed = run(command, CliRunner(env=ENV), f"rulesets.md:{console.line}")
    assert status == 0, printed
    assert _timings(printed).splitlines() == _timings("\n".join(shown)).splitlines(), printed


# Common errors: what validate says of each condition


ERRORS = [
    (where, code(row[0])[0], code(row[1])[0])
    for where, row in tables_headed("written in a condition")
]


def test_validate_says_what_the_doc_shows_for_each_mistake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(ERRORS) >= 15
    monkeypatch.chdir(tmp_path)
    runner = CliRunner(env=ENV)
    wrong = []
    for where, condition, message in ERRORS:
        rule = f"rules:\n  - id: R\n    when: {json.dumps(condition)}\n    then: {{require: cfo}}\n"
        Path("mistake.yaml").write_text(HEADER + rule, encoding="utf-8")
        result = runner.run("validate", "mistake.yaml")
        said = re.sub(r"^mistake\.yaml:5:\d+: ", "", result.stdout.strip())
        if result.exit_code != 1 or said != message:
            wrong.append(f"{where}: {condition}: validate says {result.stdout!r}")
    assert not wrong, "\n".join(wrong)
