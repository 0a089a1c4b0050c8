"""Executors: one record per deal, in input order, whatever a deal does to its worker (SPEC §9).

The fault plugin (tests/io/fault_plugin.py) segfaults, exits, loops or hoards memory on chosen
deal ids; every other deal must get exactly the record the in-process run gives it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from dealdesk import app
from dealdesk.io import executor
from dealdesk.io.executor import InProcess, LocalWorkers, WorkSpec
from dealdesk.io.readers import SourceDeal
from dealdesk.io.writers import JsonlWriter

ACME = yaml.safe_load(
    (Path(__file__).parents[2] / "examples" / "deals" / "acme-risk.yaml").read_text()
)
SPEC = WorkSpec(enabled=("fault_plugin",), autoload=False)


@pytest.fixture(scope="module")
def application() -> app.App:
    return SPEC.build()


def deals(*ids: str) -> list[SourceDeal]:
    out = []
    for number, deal_id in enumerate(ids, 1):
        deal = copy.deepcopy(ACME)
        deal["id"] = deal_id
        # vary the deals so that a record put in the wrong place shows
        deal["lines"][0]["quantity"] = number
        out.append(SourceDeal(f"book.jsonl:{number}", deal))
    return out


def records(executor: Any, sources: list[SourceDeal]) -> list[dict[str, Any]]:
    try:
        return [done.record for done in executor.run(sources)]
    finally:
        executor.close()


def messages(record: dict[str, Any]) -> str:
    return " ".join(e["message"] for e in record["errors"])


def test_workers_give_the_in_process_records_in_order(application: app.App) -> None:
    sources = deals(*(f"D-{n}" for n in range(300)))
    expected = records(InProcess(application), sources)
    got = records(LocalWorkers(application, SPEC, workers=2), sources)
    assert got == expected
    assert [r["deal_id"] for r in got] == [f"D-{n}" for n in range(300)]


def test_workers_encode_records_as_the_writer_would(application: app.App) -> None:
    import io

    sources = deals("D-1", "D-2", "D-3")
    stream = io.StringIO()
    writer = JsonlWriter(stream)
    for record in records(InProcess(application), sources):
        writer.write(record)
    encoded = LocalWorkers(application, SPEC, workers=2, encode=_compact)
    try:
        done = list(encoded.run(sources))
    finally:
        encoded.close()
    assert "".join(d.text + "\n" for d in done if d.text) == stream.getvalue()
    assert [d.record["status"] for d in done] == ["needs_approval"] * 3


def _compact(record: dict[str, Any]) -> str:
    from dealdesk import jsoncodec

    return jsoncodec.dumps(record)


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        ("SEGV-1", "killed by signal SIGSEGV"),
        ("EXIT-1", "exited with status 3"),
        ("SYSEXIT-1", "sys.exit(4) was called"),
    ],
)
def test_a_deal_that_ends_its_worker_costs_only_itself(
    application: app.App, bad: str, said: str
) -> None:
    ids = [f"D-{n}" for n in range(40)]
    ids[17] = bad
    ids[33] = bad.replace("-1", "-2")
    sources = deals(*ids)
    got = records(LocalWorkers(application, SPEC, workers=2), sources)
    assert [r["deal_id"] for r in got] == ids
    good = [i for i, deal_id in enumerate(ids) if deal_id.startswith("D-")]
    expected = records(InProcess(application), [sources[i] for i in good])
    assert [got[i] for i in good] == expected
    for index in (17, 33):
        assert got[index]["status"] == "invalid"
        assert said in messages(got[index])
        if bad.startswith("SYSEXIT"):  # sys.exit is the plugin's failure, and names it
            assert [e.get("plugin") for e in got[index]["errors"]] == ["fault_plugin"]


def test_a_deal_past_its_time_budget_is_stopped(application: app.App) -> None:
    ids = ["D-1", "LOOP-1", "D-2", "D-3"]
    sources = deals(*ids)
    got = records(LocalWorkers(application, SPEC, workers=1, deal_timeout=0.5), sources)
    assert [r["deal_id"] for r in got] == ids
    assert got[1]["status"] == "invalid"
    assert "time budget of 0.5 s" in messages(got[1])
    assert [r["status"] for r in got[::2]] == ["needs_approval", "needs_approval"]
    assert got[3]["status"] == "needs_approval"


def test_a_deal_past_the_memory_budget_is_invalid(application: app.App) -> None:
    ids = ["D-1", "HOG-1", "D-2"]
    got = records(LocalWorkers(application, SPEC, workers=1, memory_mb=256), deals(*ids))
    assert [r["deal_id"] for r in got] == ids
    assert got[1]["status"] == "invalid"
    assert "memory" in messages(got[1]).lower()
    assert got[0]["status"] == got[2]["status"] == "needs_approval"


def test_a_deal_that_crashed_by_chance_is_decided_when_retried_alone(
    application: app.App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mark = tmp_path / "flaky"
    mark.touch()
    monkeypatch.setenv("DEALDESK_FLAKY_MARK", str(mark))
    ids = ["D-1", "FLAKY-1", "D-2"]
    got = records(LocalWorkers(application, SPEC, workers=1), deals(*ids))
    assert not mark.exists()  # it did crash once
    assert [r["status"] for r in got] == ["needs_approval"] * 3


def test_spawned_workers_build_the_app_themselves(application: app.App) -> None:
    sources = deals("D-1", "SEGV-1", "D-2")
    got = records(LocalWorkers(application, SPEC, workers=1, start_method="spawn"), sources)
    assert [r["status"] for r in got] == ["needs_approval", "invalid", "needs_approval"]


def test_in_process_decides_chunks_for_a_columnar_engine() -> None:
    # --workers 0 hands the columnar engine whole chunks (it gains from them); the records are
    # the per-deal ones, and a deal whose plugin calls sys.exit still costs only itself
    pytest.importorskip("numpy")
    columnar = WorkSpec(enabled=("fault_plugin",), autoload=False, engine="columnar").build()
    native = WorkSpec(enabled=("fault_plugin",), autoload=False, engine="native").build()
    assert columnar.pipeline.engine.chunked and not native.pipeline.engine.chunked
    sizes: list[int] = []
    evaluate = columnar.pipeline.engine.evaluate

    def counted(deals: Any) -> Any:
        sizes.append(len(deals))
        return evaluate(deals)

    columnar.pipeline.engine.evaluate = counted  # type: ignore[method-assign]
    ids = [f"D-{n}" for n in range(60)]
    ids[41] = "SYSEXIT-1"
    sources = deals(*ids)
    got = records(InProcess(columnar), sources)
    assert got == records(InProcess(native), sources)
    assert max(sizes) > 1  # chunks, not deal by deal
    assert got[41]["status"] == "invalid" and "sys.exit(4) was called" in messages(got[41])
    assert "plugin 'fault_plugin' failed in dealdesk_enrich" in messages(got[41])
    assert [r["deal_id"] for r in got] == ids


COLUMNAR = WorkSpec(enabled=("fault_plugin",), autoload=False, engine="columnar")


@pytest.fixture(scope="module")
def columnar_app() -> app.App:
    pytest.importorskip("numpy")
    return COLUMNAR.build()


def test_columnar_workers_decide_whole_tasks_with_the_in_process_records(
    application: app.App, columnar_app: app.App
) -> None:
    import multiprocessing

    sources = deals(*(f"D-{n}" for n in range(300)))
    expected = records(InProcess(application), sources)
    # the forked workers inherit this wrapper: the largest chunk any of them evaluated
    largest = multiprocessing.get_context("fork").Value("i", 0)
    engine = columnar_app.pipeline.engine
    evaluate = engine.evaluate

    def counted(chunk: Any) -> Any:
        with largest.get_lock():
            largest.value = max(largest.value, len(chunk))
        return evaluate(chunk)

    engine.evaluate = counted  # type: ignore[method-assign]
    try:
        got = records(LocalWorkers(columnar_app, COLUMNAR, workers=2), sources)
    finally:
        del engine.evaluate
    assert got == expected
    assert largest.value > 1  # whole tasks, not deal by deal


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        ("SEGV-1", "killed by signal SIGSEGV"),
        ("EXIT-1", "exited with status 3"),
        ("SYSEXIT-1", "sys.exit(4) was called"),
    ],
)
def test_a_fault_in_a_whole_task_costs_only_its_deal(
    application: app.App, columnar_app: app.App, bad: str, said: str
) -> None:
    # the worker decides a task at once; when it dies, the task's deals are decided again one
    # by one, and only the deal that ends its worker is invalid
    ids = [f"D-{n}" for n in range(40)]
    ids[17] = bad
    sources = deals(*ids)
    got = records(LocalWorkers(columnar_app, COLUMNAR, workers=2), sources)
    assert [r["deal_id"] for r in got] == ids
    good = [i for i, deal_id in enumerate(ids) if deal_id.startswith("D-")]
    assert [got[i] for i in good] == records(InProcess(application), [sources[i] for i in good])
    assert got[17]["status"] == "invalid" and said in messages(got[17])


def test_a_deal_past_its_time_budget_in_a_whole_task_is_stopped(columnar_app: app.App) -> None:
    ids = ["D-1", "D-2", "LOOP-1", "D-3", "D-4", "D-5"]
    got = records(LocalWorkers(columnar_app, COLUMNAR, workers=1, deal_timeout=0.5), deals(*ids))
    assert [r["deal_id"] for r in got] == ids
    assert got[2]["status"] == "invalid" and "time budget of 0.5 s" in messages(got[2])
    assert [r["status"] for i, r in enumerate(got) if i != 2] == ["needs_approval"] * 5


def lines(sources: list[SourceDeal]) -> list[SourceDeal]:
    """``sources`` as a lazy JSONL reader gives them: unparsed lines."""
    import json

    return [
        SourceDeal(s.source, None, text=json.dumps(s.deal, default=str).encode()) for s in sources
    ]


# one stratum, literal outputs: the columnar engine makes its records from group templates
FLAT = {
    "ruleset": "flat",
    "policy": "partner-margin",
    "version": "1",
    "outputs": {"big": {}},
    "rules": [{"id": "B", "when": "totals.contract > 100000", "then": {"set": {"big": True}}}],
}


@pytest.fixture(scope="module")
def flat_specs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, WorkSpec]:
    pytest.importorskip("pyarrow")
    folder = tmp_path_factory.mktemp("flat")
    (folder / "flat.yaml").write_text(yaml.safe_dump(FLAT))
    return {
        engine: WorkSpec((str(folder),), enabled=("fault_plugin",), autoload=False, engine=engine)
        for engine in ("columnar", "native")
    }


def test_columnar_workers_get_larger_tasks_when_records_come_from_templates(
    columnar_app: app.App, flat_specs: dict[str, WorkSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    # records by group: the fixed costs per task spread over up to MAX_CHUNK_WHOLE deals (or
    # MAX_CHUNK_WHOLE_BYTES of lines), the first tasks small; deals decided one by one (the
    # house policy's actions) keep MAX_CHUNK, as every other engine does
    cut: list[int] = []
    chunks = executor.chunks

    def spy(*args: Any, **kwargs: Any) -> Any:
        for chunk in chunks(*args, **kwargs):
            cut.append(len(chunk))
            yield chunk

    monkeypatch.setattr(executor, "chunks", spy)
    flat = flat_specs["columnar"].build()
    assert flat.pipeline.engine.large_chunks and not columnar_app.pipeline.engine.large_chunks
    sources = lines(deals(*(f"D-{n}" for n in range(1200))))
    got = records(LocalWorkers(flat, flat_specs["columnar"], workers=2), sources)
    assert [r["deal_id"] for r in got] == [f"D-{n}" for n in range(1200)]
    whole = (4, executor.MAX_CHUNK_WHOLE, executor.MAX_CHUNK_WHOLE_BYTES)
    assert cut == [len(c) for c in chunks(sources, *whole)]
    assert cut[:3] == [4, 8, 16] and max(cut) > executor.MAX_CHUNK
    one_by_one = (4, executor.MAX_CHUNK, executor.MAX_CHUNK_BYTES)
    cut.clear()
    records(LocalWorkers(columnar_app, COLUMNAR, workers=2), sources[:600])
    assert cut == [len(c) for c in chunks(sources[:600], *one_by_one)]
    cut.clear()
    records(InProcess(columnar_app), sources[:600])
    assert max(cut) == executor.MAX_CHUNK


def test_a_fault_in_a_large_whole_task_costs_only_its_deal(
    flat_specs: dict[str, WorkSpec],
) -> None:
    # after tasks of 4, 8... deals, deal 1300 is in a task of hundreds, decided at once
    ids = [f"D-{n}" for n in range(1500)]
    ids[1300] = "SEGV-1"
    sources = lines(deals(*ids))
    got = records(
        LocalWorkers(flat_specs["columnar"].build(), flat_specs["columnar"], workers=2), sources
    )
    assert [r["deal_id"] for r in got] == ids
    assert got[1300]["status"] == "invalid" and "SIGSEGV" in messages(got[1300])
    assert [got[i] for i in (0, 1299, 1301, 1499)] == records(
        InProcess(flat_specs["native"].build()), [sources[i] for i in (0, 1299, 1301, 1499)]
    )


def test_a_faulted_deal_without_an_id_says_where_it_was_read(application: app.App) -> None:
    # only its place finds a deal without an id (a worker may die reading a huge line)
    done = executor.fault(application, SourceDeal("book.jsonl:7", {"lines": []}), "killed", None)
    assert done.record["deal_id"] is None
    assert messages(done.record) == "book.jsonl:7: killed"
    named = executor.fault(application, SourceDeal("book.jsonl:8", {"id": "D-8"}), "killed", None)
    assert messages(named.record) == "killed"
