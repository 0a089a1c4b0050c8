"""Many rules matching one deal, and rulesets larger than one durable ruleset chunk.

Nothing in SPEC §3 bounds how many rules may fire for one deal. durable_rules 2.0.28 fails when
65 or more *distinct* conditions match one fact: ``error code 303 (max stack size)``, or the
process aborts in the C core (``free(): invalid pointer``, ``double free or corruption``, or a
silent death) — seen with 65, 66, 70, 80 and 100, never with 64. Rules with identical conditions
share the engine's nodes and do not count: 200 rules over 40 distinct conditions are fine. So
these cases run ``dealdesk evaluate`` in a child process: a crash fails the test instead of
killing the test run. The durable driver keeps each C ruleset under that limit; every engine
must pass them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conformance_support import (
    EXAMPLE_DEALS,
    app_on,
    assert_identical,
    engine_args,
    jsonl_text,
    reference_app,
    reference_of,
)

DEALS = [EXAMPLE_DEALS / "acme-risk.yaml", EXAMPLE_DEALS / "standard-approved.yaml"]


def ruleset(rules: int, matching: int, *, distinct: int = 0, table_rows: int = 0) -> dict[str, Any]:
    """``rules`` rules of which the first ``matching`` match every deal with a contract (over
    ``distinct`` different conditions, default all different), each requiring, flagging and
    adding to a summed output; and a collect table of ``table_rows`` rows that all match (with
    conditions of their own)."""
    data: dict[str, Any] = {
        "ruleset": "many",
        "policy": "partner-margin",
        "version": "1",
        "outputs": {"count": {"combine": "sum", "type": "integer"}, "ids": {"combine": "list"}},
        "rules": [
            {
                "id": f"M{i}",
                "priority": i % 7,
                "when": f"totals.contract {'>' if i < matching else '<'} {i % (distinct or rules)}",
                "then": {
                    "set": {"count": 1, "ids": f"M{i}"},
                    "require": ["deal_desk", "cfo"][i % 2],
                    "flag": f"rule {i}",
                },
            }
            for i in range(rules)
        ],
    }
    if table_rows:
        data["tables"] = [
            {
                "id": "MT",
                "hit": "collect",
                "inputs": ["totals.contract"],
                "rows": [
                    {"when": [f">= {i}"], "then": {"set": {"ids": f"MT{i}"}}}
                    for i in range(table_rows)
                ],
            }
        ]
    return data


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    directory = tmp_path / "rulesets"
    directory.mkdir()
    (directory / "many.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return directory


def evaluate_in_child(engine: str, rulesets: Path) -> subprocess.CompletedProcess[str]:
    """``dealdesk evaluate DEALS -r RULESETS [--engine ENGINE]`` in a child process."""
    command = "import sys; from dealdesk.cli import main; sys.exit(main())"
    env = {**os.environ, "DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("DEALDESK_ENGINE", None)
    return subprocess.run(
        [sys.executable, "-c", command, "evaluate", *map(str, DEALS), "-r", str(rulesets)]
        + engine_args(engine),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("rules", "matching", "distinct", "rows"),
    [
        pytest.param(64, 64, 0, 0, id="64 rules match"),
        pytest.param(200, 200, 40, 0, id="200 rules over 40 conditions match"),
        pytest.param(80, 80, 0, 0, id="80 rules match"),
        pytest.param(100, 65, 0, 0, id="65 of 100 rules match"),
        pytest.param(40, 40, 0, 40, id="40 rules and 40 table rows match"),
    ],
)
def test_many_rules_match_one_deal(
    engine: str,
    tmp_path: Path,
    rules: int,
    matching: int,
    distinct: int,
    rows: int,
) -> None:
    directory = write(tmp_path, ruleset(rules, matching, distinct=distinct, table_rows=rows))
    reference = reference_app([directory], autoload=False)
    want_records = [reference.pipeline.evaluate(yaml.safe_load(p.read_text())) for p in DEALS]
    fired = want_records[0]["policies"]["partner-margin"]["fired"]
    assert len(fired) == matching + (1 if rows else 0)
    assert want_records[0]["policies"]["partner-margin"]["outputs"]["count"] == matching
    result = evaluate_in_child(engine, directory)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == jsonl_text(reference, want_records)


def test_rules_beyond_one_durable_chunk(engine: str, tmp_path: Path) -> None:
    """420 rules (durable's compiler splits a stratum every 400 rules), 60 of them matching."""
    directory = write(tmp_path, ruleset(420, 60))
    deals = [yaml.safe_load(p.read_text()) for p in DEALS]
    application = app_on(engine, [directory], autoload=False)
    got = [application.pipeline.evaluate(d) for d in deals]
    reference = reference_of(application).pipeline
    want = [reference.evaluate(d) for d in deals]
    assert len(want[0]["policies"]["partner-margin"]["fired"]) == 60
    assert_identical(got, want, engine=engine, deals=deals)


def test_many_deals_in_one_run(engine: str, tmp_path: Path) -> None:
    """1,100 deals through one app, nine in ten matching no rule at all (durable_rules keeps at
    most 1,024 sessions alive, and an unmatched deal's session must be deleted too, SPEC §9)."""
    directory = write(tmp_path, ruleset(3, 0))  # totals.contract < 0, < 1, < 2
    base = yaml.safe_load(DEALS[1].read_text())
    cheap = [{**base["lines"][0], "quantity": 1, "unit_price": "0.5"}]  # a contract of 0.5
    deals = [
        {**base, "id": f"N-{i}", **({"lines": cheap} if i % 10 == 0 else {})} for i in range(1100)
    ]
    application = app_on(engine, [directory], autoload=False)
    got = [application.pipeline.evaluate(d) for d in deals]
    reference = reference_of(application).pipeline
    want = [reference.evaluate(d) for d in deals]
    assert [len(r["policies"]["partner-margin"]["fired"]) for r in want[:2]] == [2, 0]
    assert_identical(got, want, engine=engine, deals=deals)
