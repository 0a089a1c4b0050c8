"""Choosing an engine, what every engine must agree on, and the stage boundaries the engine
split introduced (sinks for evaluate only, one enrichment per command, one validation
environment)."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from bounded import run_python

from dealdesk.engines import DEFAULT_ENGINE, available_engines, engine_name
from dealdesk.errors import UsageError
from dealdesk.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "deals"
NO_AUTOLOAD = {"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1"}


@pytest.fixture
def run(cli_runner: CliRunner):
    def invoke(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
        return cli_runner.run(*map(str, args), env={**NO_AUTOLOAD, **(env or {})})

    return invoke


def test_the_native_engine_runs_everywhere_and_is_the_default() -> None:
    assert "native" in available_engines()
    assert DEFAULT_ENGINE == "native"
    if sys.version_info < (3, 13):
        assert "durable" in available_engines()  # installed by the environment marker


def test_an_unknown_engine_is_a_usage_error(run, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="unknown engine 'rete'"):
        engine_name("rete")
    monkeypatch.setenv("DEALDESK_ENGINE", "rete")
    with pytest.raises(UsageError, match="choose from native, durable"):
        engine_name(None)
    result = run("evaluate", EXAMPLES / "acme-risk.yaml", "--engine", "nope")
    assert result.exit_code == 2
    assert "unknown engine 'nope'" in result.stderr


def test_every_engine_writes_the_same_bytes(run, tmp_path: Path) -> None:
    outputs = {}
    for engine in available_engines():
        result = run("evaluate", EXAMPLES, "--clauses", "--engine", engine)
        assert result.exit_code == 0, result.stderr
        outputs[engine] = result.stdout
    assert len(set(outputs.values())) == 1, "engines disagree"
    assert "native" not in outputs["native"] and "durable" not in outputs["native"]
    # DEALDESK_ENGINE chooses when --engine does not
    for engine in available_engines():
        result = run("evaluate", EXAMPLES, "--clauses", env={"DEALDESK_ENGINE": engine})
        assert result.stdout == outputs["native"]


HOSTILE = [
    '"); import os; os._exit(3) #',
    "__import__('os').system('exit 3')",
    "{{ 7*7 }}\n\"'",
    "\u2028 lambda: 0 \\",
]


def test_hostile_strings_in_a_ruleset_stay_data(run, tmp_path: Path) -> None:
    # literals end up as values in closures, never as code: the process survives, every string
    # compares as the text it is, and every engine agrees
    rules = [
        {
            "id": f"H-{i}",
            "when": f"customer.name == {json.dumps(text)} or customer.name in [{json.dumps(text)}, 'x']",
            "then": {"flag": f"hostile {i}", "set": {"last": text}},
        }
        for i, text in enumerate(HOSTILE)
    ]
    ruleset = {
        "ruleset": "hostile",
        "policy": "partner-margin",
        "version": "1",
        "outputs": {"last": {"combine": "first"}},
        "rules": rules,
    }
    (tmp_path / "rs").mkdir()
    (tmp_path / "rs" / "h.yaml").write_text(yaml.safe_dump(ruleset))
    line = {"sku": "A", "category": "hardware", "quantity": 1, "unit_price": 10, "unit_cost": 5}
    deals = tmp_path / "deals.jsonl"
    deals.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"H-{i}",
                    "customer": {"name": name, "segment": "deer", "region": "emea"},
                    "offer": {"type": "standard", "pricing": "fixed"},
                    "lines": [line],
                }
            )
            + "\n"
            for i, name in enumerate([*HOSTILE, "nobody"])
        )
    )
    outputs = set()
    for engine in available_engines():
        result = run("evaluate", deals, "-r", tmp_path / "rs", "--engine", engine)
        assert result.exit_code == 0, result.stderr
        outputs.add(result.stdout)
        records = [json.loads(r) for r in result.stdout.split("\n") if r]
        assert [r["flags"][0]["message"] if r["flags"] else None for r in records] == [
            *(f"hostile {i}" for i in range(len(HOSTILE))),
            None,
        ]
        outs = [r["policies"]["partner-margin"]["outputs"]["last"] for r in records]
        assert outs == [*HOSTILE, None]
    assert len(outputs) == 1


# -- stage boundaries (bugs fixed with the engine split) -----------------------------------

PLUGIN = """
from pathlib import Path
from dealdesk import hookimpl

LOG = Path({log!r})


@hookimpl
def dealdesk_enrich(deal):
    with LOG.open("a") as log:
        log.write("enrich\\n")


@hookimpl
def dealdesk_decision(record):
    with LOG.open("a") as log:
        log.write("sink " + str(record["deal_id"]) + "\\n")
"""


@pytest.fixture
def spy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A plugin module ``spyplug`` that logs every enrichment and every sink call."""
    log = tmp_path / "calls.log"
    log.touch()
    (tmp_path / "spyplug.py").write_text(PLUGIN.format(log=str(log)))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "spyplug", raising=False)  # another test's log path
    return log


def test_sinks_see_evaluate_records_only(run, spy: Path) -> None:
    acme = EXAMPLES / "acme-risk.yaml"
    assert run("-p", "spyplug", "explain", acme).exit_code == 0
    assert run("-p", "spyplug", "test").exit_code == 0
    assert run("-p", "spyplug", "render", acme).exit_code == 0
    assert "sink" not in spy.read_text()
    assert run("-p", "spyplug", "evaluate", acme).exit_code == 0
    assert spy.read_text().count("sink D-1001") == 1


@pytest.mark.parametrize("command", ["explain", "render"])
def test_explain_and_render_enrich_the_deal_once(run, spy: Path, command: str) -> None:
    result = run("-p", "spyplug", command, EXAMPLES / "acme-risk.yaml")
    assert result.exit_code == 0, result.stderr
    assert spy.read_text().splitlines() == ["enrich"]


def test_validate_checks_messages_like_every_other_command(run, tmp_path: Path) -> None:
    (tmp_path / "rs").mkdir()
    (tmp_path / "rs" / "bad.yaml").write_text(
        textwrap.dedent(
            """
            ruleset: bad
            policy: partner-margin
            version: "1"
            rules:
              - id: B-1
                when: risk_offer
                then: {reject: "{{ unclosed"}
            """
        )
    )
    result = run("validate", tmp_path / "rs")
    assert result.exit_code == 1
    assert "bad.yaml:8:" in result.stdout and "reject message" in result.stdout
    assert run("evaluate", EXAMPLES / "acme-risk.yaml", "-r", tmp_path / "rs").exit_code == 1


def test_matches_runs_in_linear_time_on_every_engine(tmp_path: Path) -> None:
    # (a+)+$ backtracks exponentially in Python's re; RE2 answers at once on every engine
    out = run_python(
        f"""
        from helpers import deal, evaluator, write_rulesets
        from pathlib import Path
        from dealdesk.engines import available_engines

        write_rulesets(Path({str(tmp_path)!r}) / "rs", r='''
        ruleset: r
        policy: test
        version: "1"
        rules:
          - id: EVIL
            when: matches(customer.name, "(a+)+$")
            then: {{flag: evil}}
        ''')
        for engine in available_engines():
            ev = evaluator(Path({str(tmp_path)!r}) / "rs", engine)
            record = ev.evaluate(deal(customer={{"name": "a" * 40 + "!"}}))
            print(engine, record["status"], record["flags"])
        """,
        timeout=30,
    )
    for line in out.splitlines():
        assert line.endswith("approved []"), line
