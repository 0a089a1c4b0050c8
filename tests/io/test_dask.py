"""The Dask executor on a real LocalCluster of two worker processes (SPEC §9).

Same records as the in-process run, byte for byte and in order; a deal that kills its worker
or runs past its time budget costs only itself. The fault plugin (tests/io/fault_plugin.py)
reaches the workers through ``Client.upload_file``, as a single-module plugin reaches a real
cluster.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dealdesk import app, jsoncodec
from dealdesk.errors import DealdeskError, UsageError
from dealdesk.io.executor import InProcess, WorkSpec
from dealdesk.io.readers import SourceDeal

EXAMPLES = Path(__file__).parents[2] / "examples" / "deals"
SPEC = WorkSpec(enabled=("fault_plugin",), autoload=False)

# tox installs the dask extra and sets DEALDESK_REQUIRE_DASK, so there these tests run or fail,
# never skip; a checkout without distributed skips them
needs_dask = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None and not os.environ.get("DEALDESK_REQUIRE_DASK"),
    reason="distributed is not installed (pip install 'dealdesk[dask]')",
)


@pytest.fixture(scope="module")
def application() -> app.App:
    return SPEC.build()


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """The address of a LocalCluster of 2 worker processes that can import the fault plugin."""
    import distributed

    from dealdesk.io.dask import start_local_cluster

    cluster = start_local_cluster(2)
    try:
        with distributed.Client(cluster, set_as_default=False) as client:
            import fault_plugin

            # also reaches the workers the nanny starts after one dies
            client.upload_file(fault_plugin.__file__)
        yield cluster.scheduler_address
    finally:
        cluster.close()


def book(size: int) -> list[SourceDeal]:
    """``size`` deals: the example deals in turn, each with its own id, and one unreadable."""
    examples = [
        s for s in app.build(autoload=False).read([str(EXAMPLES)]) if isinstance(s.deal, dict)
    ]
    out = []
    for number in range(size):
        if number == size // 2:
            out.append(SourceDeal("book.jsonl:7", None, "book.jsonl:7: invalid JSON: broken"))
            continue
        source = examples[number % len(examples)]
        deal = copy.deepcopy(source.deal)
        assert isinstance(deal, dict)
        deal["id"] = f"{deal.get('id')}-{number}"
        out.append(SourceDeal(f"{source.source}#{number}", deal))
    return out


def with_ids(*ids: str) -> list[SourceDeal]:
    """Copies of an example deal with these ids (``SEGV-1`` crashes its worker...)."""
    deal = yaml.safe_load((EXAMPLES / "acme-risk.yaml").read_text(encoding="utf-8"))
    out = []
    for number, deal_id in enumerate(ids):
        copied = copy.deepcopy(deal)
        assert isinstance(copied, dict)
        copied["id"] = deal_id
        out.append(SourceDeal(f"book.jsonl:{number + 1}", copied))
    return out


def dask_executor(application: app.App, scheduler: str | None, **options: Any) -> Any:
    from dealdesk.io.dask import DaskExecutor

    return DaskExecutor(application, SPEC, scheduler=scheduler, **options)


def run(executor: Any, sources: list[SourceDeal]) -> list[Any]:
    try:
        return list(executor.run(sources))
    finally:
        executor.close()


def messages(record: dict[str, Any]) -> str:
    return " ".join(e["message"] for e in record["errors"])


@needs_dask
def test_dask_writes_the_in_process_bytes_in_order(application: app.App, scheduler: str) -> None:
    sources = book(300)
    expected = run(InProcess(application, encode=jsoncodec.dumps), sources)
    got = run(dask_executor(application, scheduler, encode=jsoncodec.dumps), sources)
    assert [d.text for d in got] == [d.text for d in expected]
    assert [d.record for d in got] == [d.record for d in expected]
    assert {d.record["status"] for d in got} >= {"approved", "needs_approval", "invalid"}


@needs_dask
@pytest.mark.parametrize("bad", ["SEGV-1", "EXIT-1"])
def test_a_deal_that_kills_its_worker_costs_only_itself(
    application: app.App, scheduler: str, bad: str
) -> None:
    ids = [f"D-{n}" for n in range(40)]
    ids[13] = bad
    sources = with_ids(*ids)
    got = [d.record for d in run(dask_executor(application, scheduler), sources)]
    assert [r["deal_id"] for r in got] == ids
    good = [i for i, deal_id in enumerate(ids) if deal_id != bad]
    expected = run(InProcess(application), [sources[i] for i in good])
    assert [got[i] for i in good] == [d.record for d in expected]
    assert got[13]["status"] == "invalid"
    assert "Dask worker process deciding this deal ended" in messages(got[13])
    assert "retried alone" in messages(got[13])


@needs_dask
def test_a_deal_past_its_time_budget_is_stopped(application: app.App, scheduler: str) -> None:
    ids = ["D-1", "D-2", "LOOP-1", "D-3", "D-4"]
    got = [
        d.record for d in run(dask_executor(application, scheduler, deal_timeout=1), with_ids(*ids))
    ]
    assert [r["deal_id"] for r in got] == ids
    assert got[2]["status"] == "invalid"
    assert "time budget of 1 s" in messages(got[2])
    assert [r["status"] for i, r in enumerate(got) if i != 2] == ["needs_approval"] * 4


@needs_dask
def test_a_worker_that_cannot_build_the_app_is_one_clear_error(
    application: app.App, scheduler: str, tmp_path: Path
) -> None:
    executor = dask_executor(application, scheduler)
    broken = str(tmp_path / "broken.yaml")
    # as if this ruleset's text had reached the workers damaged
    executor.shipped = dataclasses.replace(
        executor.shipped, rulesets=((broken, "ruleset: [unclosed\n"),), key="broken"
    )
    with pytest.raises(DealdeskError) as raised:
        run(executor, with_ids("D-1"))
    said = str(raised.value)
    assert said.startswith("Dask worker tcp://")
    assert "cannot build the app" in said and broken in said
    assert "\n" not in said


@needs_dask
def test_a_worker_that_would_decide_differently_is_named(
    application: app.App, scheduler: str
) -> None:
    executor = dask_executor(application, scheduler)
    executor.fingerprint = executor.fingerprint._replace(dealdesk="9.9.9")
    with pytest.raises(DealdeskError, match=r"Dask worker tcp://\S+ would decide differently"):
        run(executor, with_ids("D-1"))


@needs_dask
def test_without_a_scheduler_a_local_cluster_is_started_and_stopped() -> None:
    application = app.build(autoload=False)
    spec = WorkSpec(autoload=False)
    from dealdesk.io.dask import DaskExecutor

    sources = book(20)
    executor = DaskExecutor(application, spec, workers=2)
    cluster = executor.cluster
    assert len(cluster.workers) == 2
    got = run(executor, sources)
    assert [d.record for d in got] == [d.record for d in run(InProcess(application), sources)]
    assert cluster.status.name == "closed"


def test_without_distributed_the_dask_executor_is_a_usage_error(
    application: app.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # what a missing package looks like
    with pytest.raises(UsageError, match=r"pip install 'dealdesk\[dask\]'"):
        dask_executor(application, None)


FLAT = {
    "ruleset": "flat",
    "policy": "onsite-support",
    "version": "1",
    "outputs": {"service": {"type": "money"}},
    "rules": [
        {
            "id": "F-1",
            "when": "totals.contract >= 100000",
            "then": {"set": {"service": "= totals.contract * 0.3"}},
        },
        {"id": "F-2", "when": 'customer.region == "emea"', "then": {"require": ["cfo"]}},
    ],
}


@needs_dask
def test_the_columnar_engine_decides_whole_partitions_as_in_process(
    scheduler: str, tmp_path: Path
) -> None:
    (tmp_path / "flat.yaml").write_text(yaml.safe_dump(FLAT))
    spec = dataclasses.replace(SPEC, rulesets=(str(tmp_path),), engine="columnar")
    application = spec.build()
    deal = yaml.safe_load((EXAMPLES / "acme-risk.yaml").read_text(encoding="utf-8"))
    texts = []
    for number in range(120):
        copied = copy.deepcopy(deal)
        copied["id"] = "LOOP-1" if number == 70 else f"C-{number}"
        copied["lines"][0]["unit_price"] = 1000 * number + 1
        texts.append(jsoncodec.dumps(copied).encode())
    sources = [SourceDeal(f"book.jsonl:{i + 1}", None, text=t) for i, t in enumerate(texts)]
    good = [s for i, s in enumerate(sources) if i != 70]
    expected = run(InProcess(application, encode=jsoncodec.dumps), good)
    from dealdesk.io.dask import DaskExecutor

    executor = DaskExecutor(
        application, spec, scheduler=scheduler, encode=jsoncodec.dumps, deal_timeout=2
    )
    got = run(executor, sources)
    # a partition decided at once and stopped past its budget is decided again deal by deal:
    # only the deal that loops is invalid
    assert got[70].record["status"] == "invalid"
    assert "time budget of 2 s" in messages(got[70].record)
    assert [d.text for i, d in enumerate(got) if i != 70] == [d.text for d in expected]
