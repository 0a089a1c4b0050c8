"""The bundled example deals on the house policy: every engine writes the REFERENCE's records,
byte for byte, with and without rendered clauses, in process and through ``dealdesk evaluate``."""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import pytest
from conformance_support import (
    EXAMPLE_DEALS,
    REFERENCE,
    app_on,
    assert_identical,
    engine_args,
    jsonl_text,
    needs_example,
)

from dealdesk.app import App
from dealdesk.testing import CliRunner

NO_AUTOLOAD = {"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1", "DEALDESK_ENGINE": None}


def evaluate_all(application: App, paths: list[str]) -> tuple[list[dict], list[object]]:
    """Every record of ``paths`` as ``dealdesk evaluate`` makes them, and the raw deals."""
    sources = list(application.read(paths))
    return [application.evaluate_source(s) for s in sources], [s.deal for s in sources]


@pytest.mark.parametrize("clauses", [False, True], ids=["records", "clauses"])
def test_example_deals(engine: str, house: Callable[..., App], clauses: bool) -> None:
    paths = [str(EXAMPLE_DEALS)]
    got, deals = evaluate_all(house(engine, clauses), paths)
    want, _ = evaluate_all(house(REFERENCE, clauses), paths)
    assert len(got) >= 15  # the YAML examples and book.jsonl
    assert {r["status"] for r in want} == {"approved", "needs_approval", "rejected", "invalid"}
    if clauses:
        assert any(r["clauses"] for r in want)
    assert_identical(got, want, engine=engine, deals=deals, context=f"{EXAMPLE_DEALS}")


@needs_example
@pytest.mark.parametrize("clauses", [False, True], ids=["records", "clauses"])
def test_example_deals_with_the_example_plugin(engine: str, clauses: bool) -> None:
    """The house policy and the example plugin's export-control policy, loaded by entry point."""
    embargoed = files("dealdesk_example_plugin") / "deals" / "embargoed.yaml"
    paths = [str(EXAMPLE_DEALS), str(embargoed)]
    got, deals = evaluate_all(app_on(engine, autoload=True, clauses=clauses), paths)
    want, _ = evaluate_all(app_on(REFERENCE, autoload=True, clauses=clauses), paths)
    assert all("export-control" in r["policies"] for r in want if r["status"] != "invalid")
    assert want[-1]["policies"]["export-control"]["fired"] == ["EC-1"]
    assert_identical(got, want, engine=engine, deals=deals)


@pytest.mark.parametrize("clauses", [False, True], ids=["records", "clauses"])
def test_cli_writes_the_reference_bytes(
    engine: str, house: Callable[..., App], clauses: bool, tmp_path: Path
) -> None:
    """``dealdesk evaluate examples/deals [--clauses] --engine NAME``: JSONL bytes on stdout and
    in ``-o``, the same as the REFERENCE's records through the same writer."""
    reference = house(REFERENCE, clauses)
    want = jsonl_text(reference, evaluate_all(reference, [str(EXAMPLE_DEALS)])[0])
    extra = ["--clauses"] if clauses else []
    runner = CliRunner(env=NO_AUTOLOAD)
    result = runner.run("evaluate", str(EXAMPLE_DEALS), *extra, *engine_args(engine))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == want
    out = tmp_path / "records.jsonl"
    result = runner.run(
        "evaluate", str(EXAMPLE_DEALS), *extra, *engine_args(engine), "-o", str(out)
    )
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes() == want.encode("utf-8")


def test_cli_engine_from_the_environment(engine: str, house: Callable[..., App]) -> None:
    """``DEALDESK_ENGINE=NAME`` chooses the engine like ``--engine NAME``; same bytes."""
    reference = house(REFERENCE)
    want = jsonl_text(reference, evaluate_all(reference, [str(EXAMPLE_DEALS)])[0])
    result = CliRunner(env=NO_AUTOLOAD).run(
        "evaluate", str(EXAMPLE_DEALS), env={"DEALDESK_ENGINE": engine}
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == want
