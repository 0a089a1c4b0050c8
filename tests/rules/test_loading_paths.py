"""Every command's loading path: a set without rulesets is a usage error, never a clean run."""

from __future__ import annotations

from pathlib import Path

import pytest

from dealdesk.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
DEAL = ROOT / "examples" / "deals" / "acme-risk.yaml"
NO_AUTOLOAD = {"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1"}
BUILTINS = ("partner_margin", "billing_milestone", "onsite_support")


@pytest.mark.parametrize(
    "command",
    [
        ["validate", "{dir}"],
        ["test", "{dir}"],
        ["evaluate", "-r", "{dir}", str(DEAL)],
        ["explain", "-r", "{dir}", str(DEAL)],
    ],
)
@pytest.mark.parametrize(
    "contents", [{}, {"notes.txt": "x\n"}, {"approvers.yaml": "approvers: [cfo]\n"}]
)
def test_a_folder_without_rulesets_is_a_usage_error(
    cli_runner: CliRunner, tmp_path: Path, command: list[str], contents: dict[str, str]
) -> None:
    folder = tmp_path / "policy"
    folder.mkdir()
    for name, text in contents.items():
        (folder / name).write_text(text, encoding="utf-8")
    args = [part.format(dir=folder) for part in command]
    result = cli_runner.run(*args, env=NO_AUTOLOAD)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: no rulesets in {folder}: no .yaml or .yml ruleset file there "
        "(with none, every deal would be approved)\n"
    )


def test_every_family_disabled_is_a_usage_error(cli_runner: CliRunner) -> None:
    disabled = [arg for name in BUILTINS for arg in ("-p", f"no:{name}")]
    result = cli_runner.run(*disabled, "evaluate", str(DEAL), env=NO_AUTOLOAD)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no rulesets to load: no enabled policy family ships")
