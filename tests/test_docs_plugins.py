"""docs/plugins.md works when copied: every code block is built, run or checked here.

A block right after ``<!-- file: PATH -->`` is a file of the tutorial's package
(``dealdesk-export-control/PATH``): the package is built in ``tmp_path``, put on ``sys.path``
(installing it into a venv is too slow for a test) and loaded with ``-p``, as the entry point
would load it; its pyproject's entry-point declaration is checked as text. Its tests run with
pytest. Every other ``python`` block is run, in order, as code of the plugin's module (a fresh
module named ``dealdesk_export_control``); one that implements hooks is then registered and
collected like any plugin, and its hooks called. ``$ dealdesk ...`` lines of ``console`` blocks
run through the CLI in the folder that holds the package.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import pytest
from docblocks import blocks

from dealdesk.manager import Plugins, add_plugin, collect_plugins, get_plugin_manager
from dealdesk.testing import CliRunner

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
PROJECT = "dealdesk-export-control"
MODULE = "dealdesk_export_control"
NO_AUTOLOAD = {"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1", "DEALDESK_ENGINE": None}


BLOCKS = blocks(DOC.read_text(encoding="utf-8"))
SNIPPETS = [b for b in BLOCKS if b.language == "python" and b.file is None]


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tutorial's package, built from the doc's file blocks and importable."""
    root = tmp_path / PROJECT
    written: dict[str, str] = {}
    for block in BLOCKS:
        if block.file is None:
            continue
        # a file shown twice (conftest.py) is the same file both times
        assert written.setdefault(block.file, block.text) == block.text, block.file
        path = root / block.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.text, encoding="utf-8")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    monkeypatch.chdir(tmp_path)
    return root


def test_the_doc_has_a_complete_tutorial_package() -> None:
    files = {b.file for b in BLOCKS if b.file}
    assert {
        "pyproject.toml",
        f"{MODULE}/__init__.py",
        f"{MODULE}/rulesets/export-control.yaml",
        f"{MODULE}/templates/export/screening.md.j2",
        "deal.yaml",
        "conftest.py",
        "tests/test_export_control.py",
    } <= files
    assert len(SNIPPETS) >= 9  # the hook reference's and the ActionContext example


def test_the_entry_point_names_the_tutorial_module(package: Path) -> None:
    pyproject = tomllib.loads((package / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["dealdesk"] == {"export_control": MODULE}
    assert (package / MODULE / "__init__.py").is_file()
    # the rulesets and templates ship as package data
    assert pyproject["tool"]["setuptools"]["packages"]["find"]["include"] == [f"{MODULE}*"]
    patterns = pyproject["tool"]["setuptools"]["package-data"]["*"]
    data = [p for p in (package / MODULE).rglob("*") if p.is_file() and p.suffix != ".py"]
    assert data and all(any(p.match(pattern) for pattern in patterns) for p in data)


def test_the_tutorial_plugin_validates_and_decides(package: Path) -> None:
    runner = CliRunner(env=NO_AUTOLOAD)
    validated = runner.run("-p", MODULE, "validate")
    assert validated.exit_code == 0, validated.stdout + validated.stderr
    assert validated.stdout == "4 rulesets OK\n"
    result = runner.run("-p", MODULE, "evaluate", f"{PROJECT}/deal.yaml", "--clauses")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["status"] == "needs_approval"
    assert record["approvals"] == ["legal"]
    assert record["policies"]["export-control"]["outputs"] == {
        "screening_ticket": "EXP-D-2001-legal"
    }
    assert record["flags"] == [
        {
            "policy": "export-control",
            "rule": "EC-1",
            "message": "Export destination KP is embargoed.",
        }
    ]
    [clause] = [c for c in record["clauses"] if c["policy"] == "export-control"]
    assert clause == {
        "id": "export/screening",
        "policy": "export-control",
        "rule": "EC-1",
        "title": "Screening",
        "text": "Products under this Order ship to KP only after export screening\n"
        "(ticket EXP-D-2001-legal, reference EXPORT_D_2001).",
    }


def test_the_console_commands_of_the_tutorial_run(package: Path) -> None:
    runner = CliRunner(env=NO_AUTOLOAD)
    commands = [
        line[2:].split()
        for block in BLOCKS
        if block.language == "console"
        for line in block.text.splitlines()
        if line.startswith("$ dealdesk ")
    ]
    assert len(commands) >= 4
    for command in commands:
        result = runner.run("-p", MODULE, *command[1:])
        assert result.exit_code == 0, (command, result.stderr)
        if command[1] == "plugins":
            row = next(line for line in result.stdout.splitlines() if line.startswith(MODULE))
            assert row.split()[1:4] == ["-", "external", "export-control"]
    pytest_lines = [
        line for block in BLOCKS if block.language == "console" for line in block.text.splitlines()
    ]
    assert f"$ pytest {PROJECT}" in pytest_lines


def test_the_tutorial_tests_pass(package: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package)],
        capture_output=True,
        text=True,
        cwd=package,
        env={
            **{k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"},
            "PYTHONPATH": str(package),
            "DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1",
        },
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b5 passed\b", done.stdout), done.stdout


# --- the snippets ----------------------------------------------------------------------------


def _exercise(plugins: Plugins, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> set[str]:
    """Call what a snippet registered; the names of what was exercised."""
    seen: set[str] = set()
    if "export-control" in plugins.policies:
        family = plugins.policies["export-control"]
        assert family.rulesets is not None and family.rulesets.is_dir()
        seen.add("policies")
    if "screening_ticket" in plugins.actions:
        from dealdesk.actions import ActionContext

        ctx = ActionContext({"id": "D-9"}, {}, rule="EC-1", policy="export-control")
        plugins.actions["screening_ticket"].func(ctx)
        assert ctx.effects.sets == [("screening_ticket", "EXP-D-9")]
        seen.add("actions")
    if "upper_snake" in plugins.filters:
        assert plugins.filters["upper_snake"]("export D-1") == "EXPORT_D_1"
        seen.add("filters")
    if ".tsv" in plugins.readers:
        sheet = tmp_path / "book.tsv"
        sheet.write_text("id\tcustomer\tsku\tamount\nT-1\tAcme\tHW\t100\n")
        from dealdesk.deal.validate import validate_deal

        [deal] = plugins.readers[".tsv"](sheet)
        assert deal["id"] == "T-1"
        assert validate_deal(deal, plugins.fact_types)[1] == []
        seen.add("readers")
    if "tsv-status" in plugins.writers:
        out = io.StringIO()
        plugins.writers["tsv-status"]([{"deal_id": "D-1", "status": "approved"}], out)
        assert out.getvalue() == "D-1\tapproved\n"
        seen.add("writers")
    derived = plugins.enrich({"id": "D-1", "export": {"destination": "KP"}})
    if derived:
        assert derived == {"export_risk": True}
        seen.add("enrich")
    if plugins.has_sinks:
        with caplog.at_level(logging.INFO, logger="export_control.audit"):
            plugins.decision({"deal_id": "D-1"})
        assert json.loads(caplog.records[-1].getMessage()) == {"deal_id": "D-1"}
        seen.add("decision")
    decided = plugins.combine({"approvals": ["legal"]})
    if decided is not None:
        assert decided == {"approvals": ["deal_desk", "legal"]}
        assert plugins.combine({"approvals": ["cfo"]}) is None
        seen.add("combine")
    return seen


def test_every_python_snippet_runs_and_every_hook_example_is_a_working_plugin(
    package: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    exercised: set[str] = set()
    for index, block in enumerate(SNIPPETS):
        module = types.ModuleType(MODULE)
        module.__file__ = str(package / MODULE / "__init__.py")
        try:
            exec(compile(block.text, f"{DOC}:{block.line}", "exec"), module.__dict__)
        except Exception as exc:  # the line of the doc, not of this test
            pytest.fail(f"{DOC.name}:{block.line}: the snippet fails: {type(exc).__name__}: {exc}")
        if any(name.startswith("dealdesk_") for name in vars(module)):
            pm = get_plugin_manager(autoload=False, disabled=["billing_milestone"])
            add_plugin(pm, module, name=f"snippet_{index}")
            exercised |= _exercise(collect_plugins(pm), tmp_path, caplog)
    assert exercised == {
        "policies",
        "actions",
        "filters",
        "readers",
        "writers",
        "enrich",
        "decision",
        "combine",
    }
