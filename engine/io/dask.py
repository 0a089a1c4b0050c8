"""The Dask executor: the same batch on a Dask distributed cluster (``--executor dask``, SPEC §9).

:class:`DaskExecutor` has the interface of :class:`~dealdesk.io.executor.LocalWorkers`: ``run``
yields one :class:`~dealdesk.io.executor.Done` per deal, in input order, as chunks complete, and
``close`` lets go of the cluster. Chunks of deals go to the cluster as tasks of
:func:`_decide_chunk`, which builds the app once per Dask worker process; a bounded number of
chunks is in flight, so memory does not grow with the book.

Faults cost only the deal that causes them:

- a chunk whose worker died (Dask's ``KilledWorker``) is split and its deals run one per task;
  a deal whose own task kills a worker again is retried alone on the cluster (nothing else in
  flight), and when that kills a worker too it is ``invalid`` saying so;
- each worker process watches the deal it is deciding: past ``deal_timeout`` it tells the
  client, which restarts that worker (a running Dask task cannot be cancelled), marks the deal
  ``invalid`` and gives the chunk's other deals out again; a chunk stuck where that thread
  cannot run (C code holding the GIL) ends its process after ``deal_timeout`` per deal and
  some slack, a worker death as above.

The ruleset texts travel with the tasks (a worker needs none of the client's files), and every
worker's app is checked against the client's (dealdesk version, rulesets digest, engine,
plugins), so the records are byte-identical to a local run or the run stops with one line
saying which worker differs and how.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
import uuid
import warnings
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from dealdesk import __version__
from dealdesk.deal.validate import deal_id_of
from dealdesk.errors import DealdeskError, UsageError
from dealdesk.io import DEFAULT_DEAL_TIMEOUT
from dealdesk.io.executor import (
    Done,
    Encoder,
    Job,
    Scheduler,
    Task,
    WorkSpec,
    decide_source,
    decide_sources,
)

if TYPE_CHECKING:
    from dealdesk.app import App
    from dealdesk.io.readers import SourceDeal

__all__ = ["CLUSTER_CONFIG", "DaskExecutor", "MAX_CHUNK", "start_local_cluster"]

#: Deals per task at most: tasks cost the scheduler about a millisecond each, so chunks are
#: bigger than the local executor's; they start small so that the first records come at once.
MAX_CHUNK = 1024
_FIRST_CHUNK = 8
#: Scheduler settings of the cluster ``--executor dask`` starts when no ``--scheduler`` is given.
CLUSTER_CONFIG: dict[str, Any] = {
    # Dask's own retries of a task whose worker died only cost worker restarts here: the
    # executor splits the chunk and retries the deal alone, which finds the deal that kills.
    "distributed.scheduler.allowed-failures": 0,
}
# Chunks read ahead of the next one to write, per worker thread: bounds memory, keeps the
# workers busy while the client writes.
_AHEAD_PER_THREAD = 2
# How long the client waits for the cluster to have a worker before it gives up.
_WORKERS_TIMEOUT = 60.0
# Deals retried alone that kill their worker, before any deal was decided, before the run gives
# up: the workers cannot run dealdesk at all (a plugin that crashes on import...).
_MAX_EARLY_DEATHS = 3
# How often the client looks again at the cluster's size, in seconds.
_RESIZE_EVERY = 5.0
_INSTALL_HINT = "pip install 'dealdesk[dask]'"


def _distributed() -> Any:
    """The ``distributed`` package, or a usage error saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise UsageError(
            f"--executor dask needs Dask's distributed scheduler, which is not installed: "
            f"{_INSTALL_HINT}"
        ) from None
    return distributed


def start_local_cluster(workers: int | None = None, *, debug: bool = False) -> Any:
    """A ``distributed.LocalCluster`` of ``workers`` single-threaded processes (default: the
    CPUs), with :data:`CLUSTER_CONFIG`, no dashboard, and quiet unless ``debug``."""
    import dask

    from dealdesk.io.executor import default_workers

    distributed = _distributed()
    with dask.config.set(CLUSTER_CONFIG):
        return distributed.LocalCluster(
            n_workers=workers or default_workers(),
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: no clash with another run or cluster
            silence_logs=False if debug else logging.CRITICAL,
        )


# ---------------------------------------------------------------------------------------------
# what the workers run


@dataclass(frozen=True)
class _Shipped:
    """How a Dask worker builds the client's app: the spec, and the ruleset texts it loaded.

    :ivar spec: the client's spec, its engine pinned to the one the client chose.
    :ivar rulesets: ``(path on the client, text)`` of every ruleset file the client loaded, in
        load order; empty when it loaded none (the worker then follows ``spec``).
    :ivar key: a digest of all of it: a worker keeps one app per key.
    :ivar topic: the Dask event topic on which workers report deals past their time budget.
    :ivar deal_timeout: seconds a deal may take; ``None``: no limit.
    :ivar quiet: whether the worker keeps quiet (a cluster started here, on this terminal).
    """

    spec: WorkSpec
    rulesets: tuple[tuple[str, str], ...]
    key: str
    topic: str
    deal_timeout: float | None
    quiet: bool = False

    @classmethod
    def of(cls, app: App, spec: WorkSpec, deal_timeout: float | None, quiet: bool) -> _Shipped:
        rulesets = []
        for path in app.ruleset_files:
            try:
                rulesets.append((str(path.resolve()), path.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"{path}: cannot read: {exc}") from None
        pinned = dataclasses.replace(spec, engine=app.engine)
        digest = hashlib.sha256(repr((pinned, rulesets)).encode())
        return cls(
            pinned,
            tuple(rulesets),
            digest.hexdigest(),
            f"dealdesk-overrun-{uuid.uuid4().hex}",
            deal_timeout,
            quiet,
        )

    def build(self) -> App:
        """The app, with the shipped ruleset texts written to a scratch folder and loaded."""
        if not self.rulesets:
            return self.spec.build()
        root = Path(tempfile.mkdtemp(prefix="dealdesk-rulesets-"))
        try:
            paths = []
            for original, text in self.rulesets:
                # mirror the client's absolute path, so that messages can name the original
                local = root / Path(original).relative_to(Path(original).anchor)
                local.parent.mkdir(parents=True, exist_ok=True)
                local.write_text(text, encoding="utf-8")
                paths.append(str(local))
            # the texts are every ruleset the client loaded: none of the worker's own
            spec = dataclasses.replace(self.spec, rulesets=tuple(paths), no_plugin_rulesets=True)
            try:
                return spec.build()
            except DealdeskError as exc:
                raise DealdeskError(str(exc).replace(str(root), "")) from None
        finally:
            shutil.rmtree(root, ignore_errors=True)


class _Fingerprint(NamedTuple):
    """What makes records byte-identical: the same dealdesk, rulesets, engine and plugins."""

    dealdesk: str
    digest: str
    engine: str
    plugins: tuple[tuple[str, str | None], ...]

    @classmethod
    def of(cls, app: App) -> _Fingerprint:
        plugins = tuple((p["name"], p["version"]) for p in app.plugins.plugin_info())
        return cls(__version__, app.policy_set.digest, app.engine, plugins)

    def differences(self, other: _Fingerprint) -> str:
        """How ``other`` (a worker's) differs from this (the client's), for people."""
        said = []
        if other.dealdesk != self.dealdesk:
            said.append(f"dealdesk {other.dealdesk} (here {self.dealdesk})")
        if other.engine != self.engine:
            said.append(f"the {other.engine} engine (here {self.engine})")
        if other.plugins != self.plugins:
            theirs = ", ".join(f"{n} {v or ''}".strip() for n, v in other.plugins)
            said.append(f"plugins {theirs or 'none'}")
        if other.digest != self.digest:
            said.append("other rulesets")
        return "; ".join(said)


@dataclass(frozen=True)
class _Decided:
    """A chunk's outcomes, from the worker at ``worker`` whose app is ``fingerprint``."""

    worker: str
    fingerprint: _Fingerprint
    outcomes: list[Done]


@dataclass(frozen=True)
class _Refused:
    """The worker at ``worker`` could not build the app, for ``reason`` (one line)."""

    worker: str
    reason: str


# One app per worker process, for the last shipped key (a long-lived worker serves run after
# run), with its fingerprint.
_APPS: dict[str, tuple[App, _Fingerprint]] = {}
_BUILD_LOCK = threading.Lock()
# Deals are decided one at a time per process, whatever the worker's thread count: the app is
# not shared between threads, and the watchdogs below watch one deal and one chunk.
_DECIDE_LOCK = threading.Lock()
# Seconds a chunk may take beyond deal_timeout per deal (and one more) before its process ends.
_CHUNK_SLACK = 5.0
# The index a watchdog reports for a partition decided all at once (a chunked engine).
_WHOLE = -1


class _Watchdog:
    """Watches the deal this worker process is deciding; past its budget, tells the client."""

    def __init__(self, worker: Any):
        self.worker = worker
        # (topic, budget, task id, index in the task, when it started), set per deal
        self.current: tuple[str, float, int, int, float] | None = None
        self.reported: tuple[int, int] | None = None
        threading.Thread(target=self.watch, daemon=True, name="dealdesk-watchdog").start()

    def watch(self) -> None:
        while True:
            time.sleep(0.1)
            current = self.current
            if current is None:
                continue
            topic, budget, task_id, index, started = current
            if time.monotonic() - started > budget and self.reported != (task_id, index):
                self.reported = (task_id, index)
                message = {"task": task_id, "index": index, "worker": self.worker.address}
                self.worker.log_event(topic, message)


_WATCHDOG: list[_Watchdog] = []


def _decide_chunk(
    shipped: _Shipped, task_id: int, sources: list[SourceDeal], encode: Encoder | None
) -> _Decided | _Refused:
    """A Dask task: the outcomes of ``sources``, in order, decided in this worker process.

    With a time budget, a thread reports a deal past it to the client (which restarts this
    worker); and should the whole chunk outrun ``deal_timeout`` per deal with some slack — a
    deal stuck in C code that holds the GIL, where no Python thread runs — faulthandler's
    timer, which needs no GIL, ends the process, which the client sees as a worker death.
    """
    import faulthandler

    from distributed import get_worker

    worker = get_worker()
    with _BUILD_LOCK:
        if shipped.key not in _APPS:
            try:
                app = shipped.build()
            except Exception as exc:  # the client says it, naming this worker
                return _Refused(worker.address, _one_line(exc))
            _APPS.clear()
            _APPS[shipped.key] = (app, _Fingerprint.of(app))
        app, fingerprint = _APPS[shipped.key]
        timeout = shipped.deal_timeout
        if timeout is not None and not _WATCHDOG:
            _WATCHDOG.append(_Watchdog(worker))
    outcomes = []
    whole = app.pipeline.engine.chunked and len(sources) > 1
    with _DECIDE_LOCK:
        if timeout is None:
            if whole:
                outcomes = decide_sources(app, sources, encode)
            else:
                outcomes = [decide_source(app, source, encode) for source in sources]
        elif whole:
            # the whole partition at once (a columnar engine), in one deal's budget: past it,
            # the client restarts this worker and hands the deals out one by one
            watchdog = _WATCHDOG[0]
            budget = timeout * (len(sources) + 1) + _CHUNK_SLACK  # the nanny acts first
            faulthandler.dump_traceback_later(budget, exit=True, file=_dump_file(shipped.quiet))
            watchdog.current = (shipped.topic, timeout, task_id, _WHOLE, time.monotonic())
            try:
                outcomes = decide_sources(app, sources, encode)
            finally:
                watchdog.current = None
                faulthandler.cancel_dump_traceback_later()
        else:
            watchdog = _WATCHDOG[0]
            budget = timeout * (len(sources) + 1) + _CHUNK_SLACK
            faulthandler.dump_traceback_later(budget, exit=True, file=_dump_file(shipped.quiet))
            try:
                for index, source in enumerate(sources):
                    watchdog.current = (shipped.topic, timeout, task_id, index, time.monotonic())
                    outcomes.append(decide_source(app, source, encode))
            finally:
                watchdog.current = None
                faulthandler.cancel_dump_traceback_later()
    return _Decided(worker.address, fingerprint, outcomes)


def _dump_file(quiet: bool) -> Any:
    """Where faulthandler writes the stack of a stuck chunk: the worker's log, or nowhere."""
    import sys

    if not quiet:
        return sys.stderr
    if not _DEVNULL:
        _DEVNULL.append(open(os.devnull, "w"))  # kept open for the process
    return _DEVNULL[0]


_DEVNULL: list[Any] = []


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    more = f" (and {len(lines) - 1} more lines)" if len(lines) > 1 else ""
    if isinstance(exc, DealdeskError):
        return lines[0] + more
    return f"{type(exc).__name__}: {lines[0]}{more}"


# ---------------------------------------------------------------------------------------------
# the client


@dataclass(eq=False)
class _Task(Task):
    """Deals of a job handed to the cluster as one Dask task."""

    alone: bool = False  # a deal that killed a worker, retried with nothing else in flight
    future: Any = field(default=None, repr=False)


class DaskExecutor(Scheduler):
    """Decides deals on a Dask distributed cluster, isolating each deal's faults.

    :param app: the built app (its pipeline makes the records of deals that fault).
    :param spec: how a worker builds the app (the ruleset texts are sent along).
    :param scheduler: the scheduler's address (``tcp://host:8786``); ``None`` starts a local
        cluster of single-threaded worker processes, closed by :meth:`close`.
    :param workers: worker processes of that local cluster (default: the CPUs).
    :param deal_timeout: seconds a deal may take; ``None`` for no limit.
    :param encode: how workers encode records (``None``: they send whole records).
    :param debug: let Dask's logging through (it is silenced otherwise).
    :raises UsageError: ``distributed`` is not installed.
    :raises DealdeskError: the scheduler cannot be reached, or has no worker.
    """

    def __init__(
        self,
        app: App,
        spec: WorkSpec,
        *,
        scheduler: str | None = None,
        workers: int | None = None,
        deal_timeout: float | None = DEFAULT_DEAL_TIMEOUT,
        encode: Encoder | None = None,
        debug: bool = False,
    ):
        distributed = _distributed()
        super().__init__(app, encode)
        self.deal_timeout = deal_timeout
        # workers of a cluster started here write to this terminal: keep them quiet
        self.shipped = _Shipped.of(app, spec, deal_timeout, quiet=scheduler is None and not debug)
        self.fingerprint = _Fingerprint.of(app)
        self.checked: set[str] = set()
        self.token = uuid.uuid4().hex[:12]
        self.pending: dict[int, _Task] = {}  # submitted and not yet handled
        self.suspects: deque[_Task] = deque()  # to run alone, one after the other
        self.alone: _Task | None = None
        self.decided_any = False
        self.early_deaths = 0
        self.events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self.threads = 1
        self.sized = 0.0
        self.looked = 0.0  # when the workers were last counted
        self.workerless_since: float | None = None
        # distributed logs through handlers of its own on its root logger (its children have
        # levels of their own): quiet those, as LocalCluster's silence_logs does; a worker
        # dying is said in its deal's record
        self.quieted: list[tuple[logging.Handler, int]] = []
        if not debug:
            for handler in logging.getLogger("distributed").handlers:
                self.quieted.append((handler, handler.level))
                handler.setLevel(logging.CRITICAL)
        self.cluster: Any = None
        self.client: Any = None
        try:
            if scheduler is None:
                self.cluster = start_local_cluster(workers, debug=debug)
                address = self.cluster.scheduler_address
            else:
                address = scheduler
            try:
                self.client = distributed.Client(address, timeout="10s", set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise UsageError(
                    f"cannot connect to the Dask scheduler at {address}: {_one_line(exc)}"
                ) from None
            try:
                self.client.wait_for_workers(1, timeout=_WORKERS_TIMEOUT)
            except (OSError, TimeoutError):
                raise UsageError(
                    f"the Dask scheduler at {address} has no worker "
                    f"(waited {_WORKERS_TIMEOUT:g} s); start some with `dask worker {address}`"
                ) from None
            self.client.subscribe_topic(self.shipped.topic, self._overrun)
        except BaseException:
            self.close()
            raise

    first_chunk = _FIRST_CHUNK
    most_chunk = MAX_CHUNK

    def _room(self) -> int:
        # nothing more is read while a deal that killed a worker is retried alone
        if self.suspects or self.alone is not None:
            return 0
        return self._threads() * _AHEAD_PER_THREAD

    def close(self) -> None:
        """Cancel what is in flight, disconnect, and stop the local cluster if one was started."""
        if self.client is not None:
            futures = [t.future for t in self.pending.values() if t.future is not None]
            self.pending.clear()
            try:
                if futures:
                    self.client.cancel(futures)
                self.client.close()
            except Exception:  # the scheduler is already gone: nothing to let go of
                pass
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None
        for handler, level in self.quieted:
            handler.setLevel(level)
        self.quieted = []

    # -- giving out work

    def _threads(self) -> int:
        """The worker threads of the cluster, looked at again every few seconds."""
        now = time.monotonic()
        if now - self.sized > _RESIZE_EVERY:
            self.sized = now
            try:
                self.threads = max(1, sum(self.client.nthreads().values()))
            except (OSError, TimeoutError):
                pass  # keep the last size; a lost scheduler shows in the tasks
        return self.threads

    def _task(self, job: Job, indices: list[int], *, alone: bool = False) -> _Task:
        self.task_ids += 1
        return _Task(self.task_ids, job, indices, alone)

    def _dispatch(self) -> None:
        """Hand ready tasks to the cluster; a suspect deal only when nothing else is running."""
        if self.alone is not None:
            return
        if self.suspects:
            if not self.pending:
                self.alone = self.suspects.popleft()
                self._send(self.alone)
            return
        while self.ready:
            self._send(self.ready.popleft())

    def _send(self, task: _Task) -> None:
        sources = [task.job.sources[i] for i in task.indices]
        with warnings.catch_warnings():
            # a chunk of large deals is a large "graph" to Dask; sending it is the point
            warnings.filterwarnings("ignore", message="Sending large graph")
            task.future = self.client.submit(
                _decide_chunk,
                self.shipped,
                task.id,
                sources,
                self.encode,
                key=f"dealdesk-{self.token}-{task.id}",
            )
        self.pending[task.id] = task
        task.future.add_done_callback(lambda future, task=task: self.events.put(("done", task)))

    def _overrun(self, event: tuple[float, Any]) -> None:
        """A worker's watchdog: a deal is past its time budget (runs in the client's loop)."""
        self.events.put(("overrun", event[1]))

    # -- waiting for outcomes, deaths and overruns

    def _wait(self) -> None:
        try:
            kind, what = self.events.get(timeout=0.2)
        except queue.Empty:
            self._check_workers()
            return
        while True:
            if kind == "done":
                self._done(what)
            else:
                self._overran(what)
            try:
                kind, what = self.events.get_nowait()
            except queue.Empty:
                return

    def _check_workers(self) -> None:
        """Stop the run, saying so, when the cluster has had no worker for a while (nannies
        that gave up restarting would otherwise leave it waiting for ever)."""
        now = time.monotonic()
        if now - self.looked < _RESIZE_EVERY:
            return
        self.looked = now
        try:
            alive = bool(self.client.scheduler_info().get("workers"))
        except (OSError, TimeoutError):
            alive = False
        if alive:
            self.workerless_since = None
        elif self.workerless_since is None:
            self.workerless_since = now
        elif now - self.workerless_since > _WORKERS_TIMEOUT:
            raise DealdeskError(
                f"the Dask cluster has had no worker for {_WORKERS_TIMEOUT:g} s; the run stops"
            )

    def _done(self, task: _Task) -> None:
        if self.pending.pop(task.id, None) is None:
            return  # cancelled here (past its budget) and settled then
        if task is self.alone:
            self.alone = None
        future, task.future = task.future, None
        from distributed import KilledWorker

        if future.status == "cancelled":
            raise DealdeskError("the Dask scheduler dropped a task; was the cluster restarted?")
        try:
            # a finished task's outcomes live on its worker until fetched: its death loses them
            outcome = future.result()
        except KilledWorker as error:
            self._killed(task, error)
            return
        except (Exception, asyncio.CancelledError) as error:
            raise DealdeskError(_failure(error)) from None
        self._decided(task, outcome)

    def _decided(self, task: _Task, outcome: _Decided | _Refused) -> None:
        if isinstance(outcome, _Refused):
            raise DealdeskError(
                f"Dask worker {outcome.worker} cannot build the app: {outcome.reason}"
            )
        if outcome.worker not in self.checked:
            if outcome.fingerprint != self.fingerprint:
                raise DealdeskError(
                    f"Dask worker {outcome.worker} would decide differently from this machine: "
                    f"it has {self.fingerprint.differences(outcome.fingerprint)}; install the "
                    "same dealdesk and plugins on every worker"
                )
            self.checked.add(outcome.worker)
        self.decided_any = True
        for index, done in zip(task.indices, outcome.outcomes, strict=True):
            task.job.done[index] = done
        self._finish_job(task.job)

    def _killed(self, task: _Task, exc: Any) -> None:
        """A task's worker died (as many times as the scheduler allows): find the deal."""
        if len(task.indices) > 1:
            # one deal per task: the deals that do not kill their worker are decided
            self.ready.extendleft(reversed([self._task(task.job, [i]) for i in task.indices]))
        elif not task.alone:
            # it may have shared its worker with the deal that killed it: once more, alone
            self.suspects.append(self._task(task.job, task.indices, alone=True))
        else:
            worker = exc.last_worker.address
            if not self.decided_any:
                self.early_deaths += 1
                if self.early_deaths >= _MAX_EARLY_DEATHS:
                    raise DealdeskError(
                        f"Dask workers keep dying before deciding any deal (the last: {worker}); "
                        "their logs say why, or run with --executor local --workers 0"
                    )
            index = task.indices[0]
            deaths = exc.allowed_failures + 1
            times = "" if deaths == 1 else f" {deaths} times"
            task.job.done[index] = self._fault(
                task.job.sources[index],
                f"the Dask worker process deciding this deal ended{times}, also when the deal "
                f"was retried alone (a crash, an exit, out of memory, or stuck in code that "
                "never returns); the Dask workers' logs say which",
            )
            self._finish_job(task.job)

    def _overran(self, message: dict[str, Any]) -> None:
        """A deal is past its time budget: stop its worker, settle it, give out the rest."""
        task = self.pending.get(message.get("task", -1))
        whole = message.get("index") == _WHOLE
        if task is None or not (whole or 0 <= message.get("index", -1) < len(task.indices)):
            return  # the task was settled meanwhile
        del self.pending[task.id]
        if task is self.alone:
            self.alone = None
        self.client.cancel([task.future])
        task.future = None
        worker = message["worker"]
        index = task.indices[0 if whole else message["index"]]
        # A Dask task cannot be stopped: the worker process must go (its nanny starts another).
        try:
            restarted = self.client.restart_workers([worker], raise_for_error=False)
        except Exception as exc:
            restarted = {worker: _one_line(exc)}
        # "timed out": its nanny is at it still (a loaded machine); the run goes on without it
        if restarted.get(worker) not in ("OK", "removed", "timed out"):
            what = f"deal {deal_id_of(task.job.sources[index].parsed().deal)!r}"
            if whole:
                what = f"a partition of {len(task.indices)} deals from {what}"
            raise DealdeskError(
                f"{what} is past its time budget on Dask "
                f"worker {worker}, which could not be restarted to stop it "
                f"({restarted.get(worker)}); workers need a nanny to be restarted (dask worker's default)"
            )
        if whole:  # a partition decided at once names no deal: each again, alone
            self.ready.extendleft(reversed([self._task(task.job, [i]) for i in task.indices]))
            return
        task.job.done[index] = self._fault(
            task.job.sources[index],
            f"deciding this deal took longer than its time budget of {self.deal_timeout:g} s "
            "(--deal-timeout); its Dask worker was restarted to stop it",
        )
        rest = [i for i in task.indices if i != index]
        if rest:
            self.ready.appendleft(self._task(task.job, rest, alone=task.alone))
        self._finish_job(task.job)


def _failure(exc: BaseException | None) -> str:
    """A task that failed for another reason than its worker dying, for people: a setup problem
    (dealdesk or a plugin missing on a worker), since deals' own errors become records."""
    if isinstance(exc, ImportError):
        return (
            f"a Dask worker cannot import what the tasks need ({_one_line(exc)}); install "
            "dealdesk and the plugins in the workers' environment"
        )
    return f"a Dask task failed: {_one_line(exc) if exc is not None else 'no reason given'}"
