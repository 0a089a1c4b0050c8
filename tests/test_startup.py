"""Start-up: ``dealdesk --help`` loads none of the heavy libraries (no timing here, only which
modules a fresh interpreter has loaded; ``bench/bench_startup.py`` measures the time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# What a command loads only when it needs it: templates, the rules engine, ruleset schemas,
# money formatting, YAML, the progress bar, entry-point metadata, the readers and writers.
HEAVY = (
    "jinja2",
    "durable_rules_engine",
    "durable",
    "jsonschema",
    "babel",
    "yaml",
    "tqdm",
    "importlib.metadata",
    "dealdesk.app",
    "dealdesk.io.readers",
    "dealdesk.io.writers",
    "dealdesk.manager",
    # test-only libraries never load outside tests
    "hypothesis",
    "pytest",
    "_pytest",
)


def loaded_modules(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    report = "import json, sys; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(f"{h}.") for h in HEAVY))


def test_importing_the_cli_loads_no_heavy_library() -> None:
    modules = loaded_modules("import dealdesk.cli")
    assert "click" in modules  # the check can see what was imported
    assert heavy_in(modules) == []


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["evaluate", "--help"]])
def test_help_and_version_load_no_heavy_library(args: list[str]) -> None:
    code = (
        "import contextlib, io, sys\n"
        "from dealdesk.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main({args!r}, standalone_mode=False)\n"
    )
    assert heavy_in(loaded_modules(code)) == []


def test_evaluating_loads_no_test_library() -> None:
    code = (
        "import contextlib, io\n"
        "from dealdesk.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['evaluate', '-'], standalone_mode=False)\n"
    )
    modules = loaded_modules(f"import sys, io\nsys.stdin = io.StringIO('')\n{code}")
    assert "dealdesk.evaluate" in modules
    assert not {m for m in modules if m.split(".")[0] in ("hypothesis", "pytest", "_pytest")}


def test_the_plugin_manager_does_not_import_the_readers() -> None:
    modules = loaded_modules("import dealdesk.manager")
    assert "dealdesk.manager" in modules
    assert not {"dealdesk.io.readers", "yaml", "jinja2", "importlib.metadata"} & modules


PLAIN_RULESET = """
ruleset: plain
policy: partner-margin
version: "1"
rules:
  - id: P-1
    when: not exists(partner) and totals.contract >= 1000
    then: {require: deal_desk, reason: "Direct deals of 1,000 or more need the deal desk."}
  - id: P-2
    when: margin < 0.1
    then: {reject: "Margin below 10%."}
"""


def test_evaluating_plain_messages_loads_neither_jinja_nor_the_durable_lowering(
    tmp_path: Path,
) -> None:
    # messages without "{" are text, and the "can never be true" check needs no lowering for
    # conditions like these: a run of such rulesets on the native engine imports neither
    (tmp_path / "plain.yaml").write_text(PLAIN_RULESET)
    deals = Path(__file__).parents[1] / "examples" / "deals" / "book.jsonl"
    code = (
        "import contextlib, io, os\n"
        "os.environ['DEALDESK_DISABLE_PLUGIN_AUTOLOAD'] = '1'\n"
        "from dealdesk.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    main(['evaluate', {str(deals)!r}, '-r', {str(tmp_path)!r}, '--engine', 'native'],"
        " standalone_mode=False)\n"
        "assert out.getvalue().count('\\n') == 20, out.getvalue()\n"
    )
    modules = loaded_modules(code)
    assert "dealdesk.evaluate" in modules
    assert not {m for m in modules if m.split(".")[0] == "jinja2"}
    assert "dealdesk.engines.durable.lowering" not in modules


def test_validating_the_house_rulesets_again_loads_no_jinja(tmp_path: Path) -> None:
    # the second run finds the documents and message checks remembered in the cache folder
    code = (
        "import os\n"
        f"os.environ['DEALDESK_CACHE_DIR'] = {str(tmp_path)!r}\n"
        "os.environ['DEALDESK_DISABLE_PLUGIN_AUTOLOAD'] = '1'\n"
        "from dealdesk import app\n"
        "app.build(None, engine='native').pipeline\n"
    )
    first = loaded_modules(code)
    assert "jinja2" in first  # the house messages hold Jinja: checked by compiling them
    again = loaded_modules(code)
    assert "dealdesk.rules.policyset" in again
    assert not {m for m in again if m.split(".")[0] == "jinja2"}
    assert "dealdesk.engines.durable.lowering" not in again


def test_the_program_pauses_the_collector_until_the_app_is_built(tmp_path: Path) -> None:
    (tmp_path / "plain.yaml").write_text(PLAIN_RULESET)
    deals = Path(__file__).parents[1] / "examples" / "deals" / "book.jsonl"
    code = (
        "import gc, os, sys\n"
        "os.environ['DEALDESK_DISABLE_PLUGIN_AUTOLOAD'] = '1'\n"
        "from dealdesk import cli\n"
        # Python 3.12 starts with objects in the permanent generation already
        "start = gc.get_freeze_count()\n"
        "seen = []\n"
        "build = cli.Settings.build\n"
        "def watched(self, *args, **kwargs):\n"
        "    seen.append(gc.isenabled())\n"
        "    built = build(self, *args, **kwargs)\n"
        "    seen.append((gc.isenabled(), gc.get_freeze_count() > start))\n"
        "    return built\n"
        "cli.Settings.build = watched\n"
        "arguments = ['evaluate', sys.argv[1], '-r', sys.argv[2], '-o', os.devnull]\n"
        "cli.main(arguments, standalone_mode=False)\n"
        "print(seen, gc.get_freeze_count() > start)\n"
        "sys.argv = ['dealdesk', *arguments]\n"
        "seen.clear()\n"
        "cli.main(standalone_mode=False)\n"
        "print(seen)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(deals), str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    given_arguments, from_the_command_line = done.stdout.splitlines()
    # called with arguments (tests, embedders): the collector is left alone
    assert given_arguments == "[True, (True, False)] False"
    # as the program: paused while starting, then on, with start-up's objects frozen
    assert from_the_command_line == "[False, (True, True)]"


def test_autoload_without_plugins_installed_reads_no_distribution_metadata() -> None:
    from dealdesk.manager import _may_declare_entry_points

    if _may_declare_entry_points():
        pytest.skip("a dealdesk plugin is installed here: its entry points are read")
    code = (
        "import os\n"
        "os.environ.pop('DEALDESK_DISABLE_PLUGIN_AUTOLOAD', None)\n"
        "from dealdesk.manager import load_plugins\n"
        "assert len(load_plugins().policies) == 3\n"
    )
    assert "importlib.metadata" not in loaded_modules(code)


def test_a_house_deal_whose_messages_only_print_values_needs_no_jinja(tmp_path: Path) -> None:
    # acme-risk's reasons print values through `percent` and plain paths only; with the house
    # rulesets remembered in the cache folder, nothing in the run needs Jinja
    deal = Path(__file__).parents[1] / "examples" / "deals" / "acme-risk.yaml"
    code = (
        "import contextlib, io, os\n"
        f"os.environ['DEALDESK_CACHE_DIR'] = {str(tmp_path)!r}\n"
        "os.environ['DEALDESK_DISABLE_PLUGIN_AUTOLOAD'] = '1'\n"
        "from dealdesk.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    main(['evaluate', {str(deal)!r}, '--engine', 'native'], standalone_mode=False)\n"
        "assert 'Labor margin 25% is below' in out.getvalue(), out.getvalue()\n"
    )
    loaded_modules(code)  # fills the cache
    assert not {m for m in loaded_modules(code) if m.split(".")[0] == "jinja2"}
