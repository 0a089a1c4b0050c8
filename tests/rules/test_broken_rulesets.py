"""A corpus of broken rulesets (tests/rules/broken/): ``dealdesk validate`` reports each one's
problems, every one of them, with the exact message at the exact line and column.

Each file starts with one ``# expect: LINE:COL: message`` line per problem, in the order
validate prints them (a warning found in the same run reads ``LINE:COL: warning: message``). To add a case, write the file with its headers; the headers count as lines.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dealdesk.testing import CliRunner

BROKEN = Path(__file__).with_name("broken")
CASES = sorted(BROKEN.glob("*.yaml"))
NO_AUTOLOAD = {"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1"}


def expectations(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.removeprefix("# expect: ") for line in lines if line.startswith("# expect: ")]


def test_the_corpus_is_large_and_every_case_expects_something() -> None:
    assert len(CASES) >= 30
    assert all(expectations(path) for path in CASES)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_validate_reports_each_broken_ruleset_exactly(cli_runner: CliRunner, path: Path) -> None:
    result = cli_runner.run("validate", str(path), env=NO_AUTOLOAD)
    assert result.exit_code == 1, result.stdout + result.stderr
    # a message naming another place in the file names it by the file's name
    found = [
        line.removeprefix(f"{path}:").replace(str(path), path.name)
        for line in result.stdout.splitlines()
    ]
    assert found == expectations(path)
    count = sum(": warning: " not in line for line in found)  # warnings are shown, not counted
    assert result.stderr == f"{count} error{'s' if count != 1 else ''} in 1 file\n"
