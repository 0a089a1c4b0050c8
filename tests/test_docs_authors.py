"""The policy authors' docs work as written: docs/tutorial.md and docs/rulesets.md.

The tutorial is replayed in an empty folder, in the doc's order: ``<!-- file: PATH -->`` blocks
are written, ``<!-- append: PATH -->`` blocks added at the end of their file, ``<!-- edit: PATH
-->`` ``diff`` blocks applied to it, and each ``$ ...`` line of a ``console`` block is run (the
``dealdesk`` commands through the real CLI) and its output compared with the lines shown under
it, timings aside.

The reference's examples are evaluated on its example deal (the block labelled
``<!-- example deal -->``):

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
    assert {"validate", "test", "explain", "diff"} <= set(done), done
    assert (tmp_path / "policies-before" / "discounts.yaml").is_file()


def test_the_tutorial_leaves_the_whatif_section_for_the_command() -> None:
    text = TUTORIAL.read_text(encoding="utf-8")
    section = text.split("## 8. What would it take to approve this deal?\n", 1)[1]
    section = section.split("\n## ", 1)[0].strip().splitlines()
    assert section[0] == "<!-- whatif: filled in when the command lands -->"
    assert "`dealdesk whatif`" in section[1] and len(section) == 2


def test_the_tutorials_links_lead_somewhere() -> None:
    text = TUTORIAL.read_text(encoding="utf-8")
    for target, anchor in re.findall(r"\]\(([\w./-]+\.md)(?:#([\w-]+))?\)", text):
        page = (TUTORIAL.parent / target).resolve()
        assert page.is_file(), target
        if anchor:
            headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), flags=re.M)
            assert anchor in {_anchor(h) for h in headings}, f"{target}#{anchor}"


def _anchor(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")
