"""Executors: deals as read → their records, in input order, in chunks (SPEC §9).

The pipeline knows nothing of processes; an executor feeds it. :class:`InProcess` decides every
deal in the calling process (``--workers 0``, for debugging). :class:`LocalWorkers` hands chunks
of deals to worker processes, each with the app built once, and keeps faults to the deals they
touch:

- a worker that dies (a segfault in a C core, ``os._exit`` in a plugin, the kernel's OOM killer)
  costs only the deal it was evaluating — each worker tells, through a word of shared memory,
  which deal it is on — and that deal is retried alone in a fresh worker before it is marked
  ``invalid``; the deals it held before and after it are evaluated again;
- a deal past its time budget (``deal_timeout``) is stopped by killing its worker, and is
  ``invalid`` saying so;
- each worker may use a memory budget on top of what it holds when it starts (an address-space
  limit): a deal past it fails with ``MemoryError`` (``invalid``) or kills its worker (as above).

For an engine that evaluates whole chunks (``Engine.chunked``: the columnar one) a worker
decides each task at once, its word saying "the whole task"; a task that kills its worker or
passes one deal's time budget names no deal, so its deals are handed out again one by one and
the rules above find the one at fault.

Records are deterministic, so the output is byte-identical whatever the number of workers.
Decision sinks and writing happen in the calling process (in order), never in a worker.
"""

from __future__ import annotations

import faulthandler
import gc
import multiprocessing
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from dealdesk.deal.validate import deal_id_of
from dealdesk.errors import DealdeskError
from dealdesk.io import DEFAULT_DEAL_TIMEOUT
from dealdesk.record import BRIEF_KEYS

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess
    from multiprocessing.sharedctypes import Synchronized

    from dealdesk.app import App
    from dealdesk.io.readers import SourceDeal

__all__ = [
    "Done",
    "Encoder",
    "InProcess",
    "LocalWorkers",
    "Scheduler",
    "Task",
    "WorkSpec",
    "Job",
    "chunks",
    "decide_source",
    "decide_sources",
    "fault",
    "outcome",
    "default_workers",
]

#: Deals per chunk: small first (records and progress come at once), then this many.
MAX_CHUNK = 256
#: Deals per chunk for a chunked engine in this process (no pipe to fit: 2 MiB of text at most):
#: its fixed costs per chunk (Arrow's reader, the vectors) spread over more deals.
MAX_CHUNK_IN_PROCESS = 2048
#: Bytes of unparsed deals per chunk: a task fits in the pipe's buffer, so handing it to a busy
#: worker never waits for the worker to read it (while other workers' outcomes wait).
MAX_CHUNK_BYTES = 128 * 1024
#: Deals and bytes per task for a chunked engine's local workers, which decide a task at once:
#: the fixed costs per task (Arrow's reader, the vectors, the records' templates each worker
#: learns) spread over more deals. The first chunks stay small (records and progress at once).
MAX_CHUNK_WHOLE = 1024
MAX_CHUNK_WHOLE_BYTES = 512 * 1024
# The send buffer asked for on the parent's end of each worker's pipe (a socket on Unix), so that
# a whole task of MAX_CHUNK_WHOLE_BYTES fits: see _enlarge_send_buffer.
_SEND_BUFFER = 2 * MAX_CHUNK_WHOLE_BYTES
# Chunks read ahead of the next one to write, per worker: bounds memory, keeps workers busy.
_AHEAD_PER_WORKER = 4
# Bits of the progress word that hold the deal's index in its task (the rest: the task id).
_INDEX_BITS = 24
# The index that says a worker decides its whole task at once (a chunked engine): a fault
# then names no deal, and the task's deals are decided again one by one.
_WHOLE = (1 << _INDEX_BITS) - 1
# How often the parent looks at the workers' clocks when nothing else happens.
_TICK = 0.2
# Workers that die before deciding anything, in a row, before the run gives up.
_MAX_EARLY_DEATHS = 3


class Done(NamedTuple):
    """One deal's outcome.

    :ivar record: the decision record; when ``text`` is set, only the keys a summary reads
        (:data:`dealdesk.record.BRIEF_KEYS`).
    :ivar text: the record already encoded for the output (by a worker), or ``None``.
    """

    record: dict[str, Any]
    text: str | None = None


#: Encodes a final record for the output (``dealdesk.io.writers.encode_jsonl``...), in a worker.
Encoder = Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class WorkSpec:
    """How to build the app again in another process (a spawned worker, a Dask worker).

    Everything :func:`dealdesk.app.build` takes, so that a worker loads the same plugins and
    rulesets. Plugins must be importable there (installed, or ``-p module`` on its path).
    """

    rulesets: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    enabled: tuple[str, ...] = ()
    no_plugin_rulesets: bool = False
    clauses: bool = False
    engine: str | None = None
    autoload: bool | None = None

    def build(self) -> App:
        """The app, with its pipeline (engine) built."""
        from dealdesk import app

        built = app.build(
            list(self.rulesets) or None,
            disabled=self.disabled,
            enabled=self.enabled,
            no_plugin_rulesets=self.no_plugin_rulesets,
            clauses=self.clauses,
            autoload=self.autoload,
            engine=self.engine,
        )
        _ = built.pipeline
        return built


def decide_source(app: App, source: SourceDeal, encode: Encoder | None = None) -> Done:
    """The outcome of one deal as read: its record, encoded by ``encode`` when given.

    ``encode`` is only for runs without decision sinks (sinks may change the record). A plugin
    calling ``sys.exit`` costs this deal an ``invalid`` record, not the run.
    """
    try:
        record = app.evaluate_source(source.parsed())
    except SystemExit as exc:  # not a plugin's hook (those name the plugin): the last resort
        from dealdesk.app import located

        record = app.pipeline.invalid(
            _source_deal_id(source),
            [
                {
                    "path": "",
                    "message": f"sys.exit({exc.code!r}) was called while deciding this deal",
                }
            ],
        )
        record = located(record, source.source)
    return outcome(app, record, encode)


def decide_sources(
    app: App, sources: Sequence[SourceDeal], encode: Encoder | None = None
) -> list[Done]:
    """The outcomes of a chunk of deals as read, decided together (for an engine that
    evaluates whole chunks, ``Engine.chunked``); the same records as :func:`decide_source`
    gives one by one. A plugin calling ``sys.exit`` sends the chunk through
    :func:`decide_source`, deal by deal, so that only its deal is ``invalid``."""
    try:
        read = _decide_lines(app, sources, encode)
        rest = [s.parsed() for s, done in zip(sources, read, strict=True) if done is None]
        decided = iter(app.decide_sources(rest, encode))
    except SystemExit:
        return [decide_source(app, source.parsed(), encode) for source in sources]
    results = []
    for done in read:
        if done is None:
            record, text = next(decided)
            done = outcome(app, record, encode) if text is None else Done(record, text)
        results.append(done)
    return results


def _decide_lines(
    app: App, sources: Sequence[SourceDeal], encode: Encoder | None
) -> list[Done | None]:
    """The outcomes of a chunk of JSONL lines an engine reads as columns itself
    (``Pipeline.decide_lines``); None for each deal still to parse and decide."""
    texts = [s.text for s in sources]
    if encode is None or any(t is None for t in texts):
        return [None] * len(sources)
    decided = app.pipeline.decide_lines(texts, encode)  # type: ignore[arg-type]
    if decided is None:
        return [None] * len(sources)
    return [
        None if d is None else outcome(app, d[0], encode) if d[1] is None else Done(*d)
        for d in decided
    ]


def outcome(app: App, record: dict[str, Any], encode: Encoder | None) -> Done:
    """``record`` as an outcome: encoded by ``encode`` when given (with the keys a summary
    reads), else whole."""
    if encode is None:
        return Done(record)
    try:
        text = encode(record)
    except Exception as exc:  # a value strict JSON cannot hold: the deal is invalid, not the run
        from dealdesk.errors import record_error

        record = app.pipeline.invalid(record.get("deal_id"), [record_error(exc)])
        text = encode(record)
    return Done({key: record[key] for key in BRIEF_KEYS}, text)


def _source_deal_id(source: SourceDeal) -> str | None:
    return deal_id_of(source.parsed().deal)


def chunks(
    sources: Iterable[SourceDeal],
    first: int = 4,
    most: int = MAX_CHUNK,
    most_bytes: int = MAX_CHUNK_BYTES,
) -> Iterator[list[SourceDeal]]:
    """Chunks of ``first``, twice that... deals up to ``most``: the first records come at once.

    A chunk of unparsed lines also ends at ``most_bytes`` of text.
    """
    size, held = first, 0
    chunk: list[SourceDeal] = []
    for source in sources:
        chunk.append(source)
        if source.text is not None:
            held += len(source.text)
        if len(chunk) >= size or held >= most_bytes:
            yield chunk
            chunk, held = [], 0
            size = min(size * 2, most)
    if chunk:
        yield chunk


def default_workers() -> int:
    """The CPUs this process may run on (``--workers`` default)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class InProcess:
    """Decides every deal in the calling process, in order (``--workers 0``): no isolation."""

    def __init__(self, app: App, encode: Encoder | None = None):
        self.app = app
        self.encode = encode

    def run(self, sources: Iterable[SourceDeal]) -> Iterator[Done]:
        """One :class:`Done` per source, in order: a chunk at a time for an engine that
        evaluates whole chunks (the columnar one), else deal by deal."""
        if not self.app.pipeline.engine.chunked:
            for source in sources:
                yield decide_source(self.app, source, self.encode)
            return
        most = MAX_CHUNK_IN_PROCESS if self.app.pipeline.engine.large_chunks else MAX_CHUNK
        for chunk in chunks(sources, most=most, most_bytes=1 << 21):
            yield from decide_sources(self.app, chunk, self.encode)

    def close(self) -> None:
        """Nothing to stop."""


# ---------------------------------------------------------------------------------------------
# worker processes


@dataclass(eq=False)
class Job:
    """A chunk of deals as read (the ``seq``-th), and the outcomes found so far."""

    seq: int
    sources: list[SourceDeal]
    done: list[Done | None]
    suspects: set[int] = field(default_factory=set)  # deals a worker died on once

    @classmethod
    def of(cls, seq: int, sources: list[SourceDeal]) -> Job:
        return cls(seq, sources, [None] * len(sources))

    def outcomes(self) -> list[Done] | None:
        """Every deal's outcome, once all are known."""
        return None if any(d is None for d in self.done) else [d for d in self.done if d]


def fault(app: App, source: SourceDeal, message: str, encode: Encoder | None) -> Done:
    """The ``invalid`` outcome of a deal that faulted its worker, saying ``message`` (and where
    it was read, when it has no id)."""
    from dealdesk.app import located

    record = app.pipeline.invalid(_source_deal_id(source), [{"path": "", "message": message}])
    return outcome(app, located(record, source.source), encode)


@dataclass(eq=False)
class Task:
    """Part of a job handed out at once: the indices of the job's deals still to decide."""

    id: int
    job: Job
    indices: list[int]


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    progress: Synchronized[int]
    tasks: deque[Task] = field(default_factory=deque)
    seen: int = -1  # the progress word when last looked at
    since: float = 0.0  # when it last changed (or the worker was given work)

    def current(self) -> tuple[Task, int] | None:
        """The task and index (in the task) of the deal the worker is deciding, if any."""
        if not self.tasks:
            return None
        word = self.progress.value
        task = self.tasks[0]
        if word < 0 or word >> _INDEX_BITS != task.id:
            return None
        index = word & _WHOLE
        return (task, index) if index < len(task.indices) else None

    def whole(self) -> Task | None:
        """The task the worker is deciding all at once (a chunked engine), if it is."""
        if not self.tasks:
            return None
        task = self.tasks[0]
        return task if self.progress.value == (task.id << _INDEX_BITS) | _WHOLE else None


def _worker_main(
    target: App | WorkSpec,
    conn: Connection,
    progress: Synchronized[int],
    memory_mb: int | None,
    encode: Encoder | None,
    parents_end: Connection | None,
) -> None:
    """A worker process: receives tasks, decides their deals one by one, sends the outcomes,
    until it receives ``None`` or the parent is gone."""
    if parents_end is not None:
        parents_end.close()  # inherited by fork; the parent's copy is the one in use
    parent = os.getppid()
    gc.freeze()  # objects shared with the parent (fork): a collection would copy their pages
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C for the run
    faulthandler.disable()  # the parent reports a crash, naming the deal; no stack dump here
    app = target if not isinstance(target, WorkSpec) else target.build()
    if memory_mb is not None:
        _limit_memory(memory_mb)
    # Tasks are received on a thread so that the parent never blocks sending the next task
    # while this process sends its results.
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def receive() -> None:
        try:
            while True:
                while not conn.poll(1.0):
                    if os.getppid() != parent:
                        os._exit(0)  # the parent was killed: nobody waits for these outcomes
                message = conn.recv()
                inbox.put(message)
                if message is None:
                    return
        except (EOFError, OSError):
            inbox.put(None)

    threading.Thread(target=receive, daemon=True).start()
    chunked = app.pipeline.engine.chunked
    while (message := inbox.get()) is not None:
        task_id, sources = message
        base = task_id << _INDEX_BITS
        if chunked and len(sources) > 1:
            # the whole task at once; if it faults, the parent hands its deals out one by one
            progress.value = base | _WHOLE
            outcomes = decide_sources(app, sources, encode)
        else:
            outcomes = []
            for index, source in enumerate(sources):
                progress.value = base | index
                outcomes.append(decide_source(app, source, encode))
        progress.value = base | len(sources)
        try:
            conn.send((task_id, outcomes))
        except OSError:
            return  # the parent stopped the run (Ctrl-C, a closed output): nobody is waiting


def _limit_memory(megabytes: int) -> None:
    """Cap this process's address space at what it maps now plus ``megabytes``."""
    import resource

    try:
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return  # no /proc: no budget rather than a wrong one
    limit = mapped + megabytes * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _enlarge_send_buffer(conn: Connection) -> None:
    """Let the socket under ``conn`` hold a whole task unread (:data:`_SEND_BUFFER`).

    A worker's receive thread reads each task as it comes, but it needs the GIL for each read,
    and the worker's main thread, deciding a task, gives it up only every switch interval
    (5 ms). A task larger than the send buffer (208 KiB by default on Linux) therefore held the
    parent in ``send`` for a few of those while other workers' outcomes waited: a 567 KiB task
    (1024 deals of 510 bytes, pickled) to a busy worker, 10 ms median and 28 ms at most; with
    this buffer, 0.2 ms. Linux doubles the size asked and caps it at ``net.core.wmem_max``
    (often 208 KiB, so 416 KiB): then most of a task fits, and the wait is one switch interval
    at most. Elsewhere (not a socket) the receive thread alone keeps the wait that short.
    """
    try:
        with socket.fromfd(conn.fileno(), socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
    except (AttributeError, OSError):  # no AF_UNIX (Windows), or not a socket
        pass


def _death(exitcode: int | None) -> str:
    """How a worker ended, for people: ``killed by signal SIGSEGV (segmentation fault)``."""
    if exitcode is None:
        return "stopped"
    if exitcode < 0:
        try:
            sig = signal.Signals(-exitcode)
        except ValueError:
            return f"killed by signal {-exitcode}"
        described = signal.strsignal(sig)
        name = f"{sig.name} ({described.lower()})" if described else sig.name
        if sig == signal.SIGKILL:
            name += ", perhaps out of memory"
        return f"killed by signal {name}"
    return f"exited with status {exitcode}"


class Scheduler:
    """What the executors that hand out chunks share: chunks read ahead (bounded), tasks ready
    to hand out, and outcomes written in input order as their chunks complete.

    Subclasses hand tasks out (:meth:`_dispatch`), wait for what comes back (:meth:`_wait`),
    and say how many chunks may be read ahead (:meth:`_room`).
    """

    first_chunk = 4
    most_chunk = MAX_CHUNK
    most_chunk_bytes = MAX_CHUNK_BYTES

    def __init__(self, app: App, encode: Encoder | None):
        self.app = app
        self.encode = encode
        self.ready: deque[Any] = deque()  # tasks to hand out, first first
        self.finished: dict[int, list[Done]] = {}  # chunk number → its outcomes
        self.task_ids = 0

    def run(self, sources: Iterable[SourceDeal]) -> Iterator[Done]:
        """One :class:`Done` per source, in order, as the chunks complete."""
        numbered = enumerate(chunks(sources, *self._sizes()))
        open_jobs = 0  # read and not yet written
        next_seq = 0
        exhausted = False
        while True:
            while not exhausted and open_jobs < self._room():
                try:
                    seq, chunk = next(numbered)
                except StopIteration:
                    exhausted = True
                    break
                self.ready.append(self._task(Job.of(seq, chunk), list(range(len(chunk)))))
                open_jobs += 1
            self._dispatch()
            if next_seq in self.finished:
                outcomes = self.finished.pop(next_seq)
                next_seq += 1
                open_jobs -= 1
                yield from outcomes
                continue
            if exhausted and open_jobs == 0:
                return
            self._wait()

    def close(self) -> None:
        raise NotImplementedError

    def _sizes(self) -> tuple[int, int, int]:
        """The first chunk's deals, the most deals and the most bytes (unparsed) of a chunk."""
        return self.first_chunk, self.most_chunk, self.most_chunk_bytes

    def _room(self) -> int:
        """How many chunks may be read and not yet written."""
        raise NotImplementedError

    def _dispatch(self) -> None:
        raise NotImplementedError

    def _wait(self) -> None:
        raise NotImplementedError

    def _task(self, job: Job, indices: list[int]) -> Any:
        self.task_ids += 1
        return Task(self.task_ids, job, indices)

    def _finish_job(self, job: Job) -> None:
        outcomes = job.outcomes()
        if outcomes is not None:
            self.finished[job.seq] = outcomes

    def _fault(self, source: SourceDeal, message: str) -> Done:
        return fault(self.app, source, message, self.encode)


class LocalWorkers(Scheduler):
    """Decides deals in up to ``workers`` local processes, isolating each deal's faults.

    Workers start as work arrives (a one-deal run starts one); with the ``fork`` start method
    they inherit the built app, otherwise each builds it from ``spec``.

    :param app: the built app (its pipeline makes the records of deals that fault).
    :param spec: how a worker builds the app when it cannot inherit it.
    :param workers: the most processes to run at once (at least 1).
    :param deal_timeout: seconds a deal may take; ``None`` for no limit.
    :param memory_mb: each worker's memory budget in MiB on top of its start; ``None``: none.
    :param encode: how workers encode records (``None``: they send whole records).
    """

    def __init__(
        self,
        app: App,
        spec: WorkSpec,
        *,
        workers: int,
        deal_timeout: float | None = DEFAULT_DEAL_TIMEOUT,
        memory_mb: int | None = None,
        encode: Encoder | None = None,
        start_method: str | None = None,
    ):
        super().__init__(app, encode)
        self.spec = spec
        self.max_workers = max(1, workers)
        self.deal_timeout = deal_timeout
        self.memory_mb = memory_mb
        method = start_method or ("fork" if sys.platform == "linux" else "spawn")
        self.context: Any = multiprocessing.get_context(
            method
        )  # typeshed: no Process on BaseContext
        self.workers: list[_Worker] = []
        self.early_deaths = 0

    def _sizes(self) -> tuple[int, int, int]:
        if self.app.pipeline.engine.large_chunks:  # records by group: larger tasks pay
            return self.first_chunk, MAX_CHUNK_WHOLE, MAX_CHUNK_WHOLE_BYTES
        return super()._sizes()

    def _room(self) -> int:
        return self.max_workers * _AHEAD_PER_WORKER

    def close(self) -> None:
        """Stop every worker (at the end, or when the run is interrupted)."""
        for worker in self.workers:
            try:
                worker.conn.send(None)
            except OSError:
                pass  # it is gone already
            worker.conn.close()
        deadline = time.monotonic() + 1.0
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
        self.workers = []

    # -- giving out work

    def _dispatch(self) -> None:
        """Hand ready tasks to workers with room, starting workers while there is work."""
        while self.ready:
            idle = [w for w in self.workers if len(w.tasks) < 2]
            if not idle:
                if len(self.workers) >= self.max_workers:
                    return
                idle = [self._start()]
            worker = min(idle, key=lambda w: len(w.tasks))
            task = self.ready.popleft()
            if not worker.tasks:
                worker.since = time.monotonic()
            worker.tasks.append(task)
            try:
                worker.conn.send((task.id, [task.job.sources[i] for i in task.indices]))
            except OSError:  # it died since it last answered: its deals go out again
                self._replace(worker, timed_out=False)

    def _start(self) -> _Worker:
        parent, child = self.context.Pipe()
        _enlarge_send_buffer(parent)
        progress = self.context.Value("q", -1, lock=False)
        inherit = self.context.get_start_method() == "fork"
        process = self.context.Process(
            target=_worker_main,
            args=(
                self.app if inherit else self.spec,
                child,
                progress,
                self.memory_mb,
                self.encode,
                parent if inherit else None,
            ),
            daemon=True,
            name=f"dealdesk-worker-{len(self.workers) + 1}",
        )
        process.start()
        child.close()
        worker = _Worker(process, parent, progress, since=time.monotonic())
        self.workers.append(worker)
        return worker

    # -- waiting for outcomes, deaths and overruns

    def _wait(self) -> None:
        from multiprocessing.connection import wait

        by_handle: dict[Any, _Worker] = {}
        for worker in self.workers:
            by_handle[worker.conn] = worker
            by_handle[worker.process.sentinel] = worker
        for handle in wait(list(by_handle), timeout=_TICK):
            worker = by_handle[handle]
            if worker not in self.workers:
                continue  # handled this round (its connection and its sentinel were both ready)
            if handle is worker.conn:
                try:
                    task_id, outcomes = worker.conn.recv()
                except (EOFError, OSError):
                    self._replace(worker, timed_out=False)
                    continue
                self._complete(worker, task_id, outcomes)
            elif worker.conn.poll():
                continue  # outcomes sent before it ended: read them first, next round
            else:
                self._replace(worker, timed_out=False)
        if self.deal_timeout is not None:
            now = time.monotonic()
            for worker in list(self.workers):
                word = worker.progress.value
                if word != worker.seen or not worker.tasks:
                    worker.seen, worker.since = word, now
                elif now - worker.since > self.deal_timeout and (
                    worker.current() is not None or worker.whole() is not None
                ):
                    self._replace(worker, timed_out=True)

    def _complete(self, worker: _Worker, task_id: int, outcomes: Sequence[Done]) -> None:
        task = worker.tasks.popleft()
        assert task.id == task_id, "a worker answers its tasks in order"
        worker.since = time.monotonic()
        self.early_deaths = 0
        for index, outcome in zip(task.indices, outcomes, strict=True):
            task.job.done[index] = outcome
        self._finish_job(task.job)

    def _replace(self, worker: _Worker, *, timed_out: bool) -> None:
        """Stop ``worker``, settle the deal it was on and give its other deals out again."""
        current = worker.current()
        whole = worker.whole()
        worker.process.kill()
        worker.process.join()
        worker.conn.close()
        self.workers.remove(worker)
        requeue: list[Task] = []
        if whole is not None:
            # a task decided all at once names no deal: each is decided again alone, so that
            # the fault (or the time budget) costs only the deal that caused it
            worker.tasks.popleft()
            requeue.extend(self._task(whole.job, [index]) for index in whole.indices)
        elif current is not None:
            task, index = current
            job, culprit = task.job, task.indices[index]
            rest = task.indices[:index] + task.indices[index + 1 :]
            if timed_out:
                job.done[culprit] = self._fault(
                    job.sources[culprit],
                    f"deciding this deal took longer than its time budget of "
                    f"{self.deal_timeout:g} s (--deal-timeout); it was stopped",
                )
            elif culprit in job.suspects:
                how = _death(worker.process.exitcode)
                job.done[culprit] = self._fault(
                    job.sources[culprit],
                    f"the worker process deciding this deal ended ({how}), also when it was "
                    "retried alone",
                )
            else:
                job.suspects.add(culprit)
                requeue.append(self._task(job, [culprit]))  # alone, to tell cause from chance
            if rest:
                requeue.append(self._task(job, rest))
            self._finish_job(job)
            worker.tasks.popleft()
        elif not timed_out:
            self.early_deaths += 1
            if self.early_deaths >= _MAX_EARLY_DEATHS:
                raise DealdeskError(
                    f"worker processes keep ending before deciding any deal "
                    f"(the last {_death(worker.process.exitcode)}); run with --workers 0 "
                    "to see why"
                )
        requeue.extend(worker.tasks)
        self.ready.extendleft(reversed(requeue))
