"""One ``evaluate`` run: an executor's outcomes → decision sinks → the writer, counted and shown.

:class:`Batch` pulls outcomes from an executor in input order, hands each final record to the
decision sinks (in this process, in order), counts it, shows progress, and gives the records
(or the text the workers encoded) to the writer. Ctrl-C and SIGTERM stop it between records:
the writer still finishes what it has (a JSON array is closed), and :attr:`BatchResult.interrupted`
tells the caller (SPEC §9).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from dealdesk.record import STATUS_ORDER

if TYPE_CHECKING:
    from dealdesk.io.executor import Done
    from dealdesk.io.readers import SourceDeal
    from dealdesk.pipeline import Pipeline

__all__ = ["Batch", "BatchResult", "Executor", "Progress"]


class Executor(Protocol):
    """What runs the deals: ``run`` gives one outcome per source, in order; ``close`` stops."""

    def run(self, sources: Iterable[SourceDeal]) -> Iterator[Done]: ...

    def close(self) -> None: ...


@dataclass
class BatchResult:
    """What a run did: deals written, how many matched ``--fail-on``, whether it was stopped."""

    deals: int = 0
    matched: int = 0
    interrupted: bool = False
    elapsed: float = 0.0


class Progress:
    """A progress bar on standard error, cleared when done: deals, deals/s, and — when the
    input's size is known — the percentage, an estimated total and the ETA (from the bytes
    read so far).

    :param size: ``(bytes_read, bytes_total)`` of the input now; ``bytes_total`` may be None.
    """

    INTERVAL = 0.1  # seconds between redraws
    KNOWN = (
        "{desc}: {percentage:3.0f}%|{bar:24}| {n:,}/~{total:,} deals "
        "[{elapsed}<{remaining}, {rate_fmt}]"
    )
    UNKNOWN = "{desc}: {n:,} deals [{elapsed}, {rate_fmt}]"

    def __init__(self, size: Callable[[], tuple[int, int | None]]):
        import tqdm

        tqdm.tqdm.monitor_interval = 0  # no monitor thread: workers may be forked later
        self.size = size
        self.shown = 0.0
        self.bar = tqdm.tqdm(
            desc="evaluating",
            unit=" deals",
            bar_format=self.UNKNOWN,
            file=sys.stderr,
            unit_scale=True,
            leave=False,
            dynamic_ncols=True,
            mininterval=self.INTERVAL,
        )

    def advance(self, deals: int, read: int) -> None:
        """``deals`` are done and ``read`` deals were read; redraw when it is time."""
        now = time.monotonic()
        if now - self.shown < self.INTERVAL:
            return
        self.shown = now
        bytes_read, bytes_total = self.size()
        if bytes_total and bytes_read:
            # the deals in the whole input, estimated from the bytes those read so far take
            self.bar.total = max(deals, round(read * bytes_total / bytes_read))
            self.bar.bar_format = self.KNOWN
        self.bar.update(deals - self.bar.n)

    def close(self) -> None:
        self.bar.close()


class _Stop:
    """Ctrl-C and SIGTERM: raise at once while waiting for outcomes, else at the next record."""

    def __init__(self) -> None:
        self.waiting = False
        self.pending = False

    def handle(self, signum: int, frame: Any) -> None:
        self.pending = True
        if self.waiting:
            raise KeyboardInterrupt

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach the main thread only
            return
        previous = {s: signal.signal(s, self.handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


class Batch:
    """Runs the deals through an executor and into a writer.

    :param pipeline: the pipeline whose ``finish`` hands records to the decision sinks.
    :param executor: where deals are decided.
    :param fail_on: count records at least this bad (``--fail-on``), or ``None``.
    :param on_record: called with each final record (or its brief, when workers encoded it).
    :param progress: the progress bar, or ``None``.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        executor: Executor,
        *,
        fail_on: str | None = None,
        on_record: Callable[[Mapping[str, Any]], None] | None = None,
        progress: Progress | None = None,
    ):
        self.pipeline = pipeline
        self.executor = executor
        self.threshold = STATUS_ORDER.index(fail_on) if fail_on else None
        self.on_record = on_record
        self.progress = progress
        self.result = BatchResult()
        self.read = 0  # deals read so far (ahead of the deals decided)

    def records(self, sources: Iterable[SourceDeal]) -> Iterator[dict[str, Any]]:
        """The final records, in order (for a writer)."""
        for done in self._outcomes(sources):
            yield done.record

    def texts(self, sources: Iterable[SourceDeal]) -> Iterator[str]:
        """The records as the workers encoded them, in order."""
        for done in self._outcomes(sources):
            assert done.text is not None, "an executor that encodes gives text for every deal"
            yield done.text

    def count(self, record: Mapping[str, Any]) -> None:
        """Count a final record (``--fail-on``, the summary): each decided one, and those an
        interrupted run kept (``--resume``)."""
        result = self.result
        result.deals += 1
        if self.threshold is not None:
            result.matched += STATUS_ORDER.index(record["status"]) >= self.threshold
        if self.on_record is not None:
            self.on_record(record)

    def _counted(self, sources: Iterable[SourceDeal]) -> Iterator[SourceDeal]:
        for source in sources:
            self.read += 1
            yield source

    def _outcomes(self, sources: Iterable[SourceDeal]) -> Iterator[Done]:
        result, stop = self.result, _Stop()
        started = time.monotonic()
        outcomes = self.executor.run(self._counted(sources))
        with stop.installed():
            try:
                while True:
                    stop.waiting = True
                    try:
                        if stop.pending:
                            raise KeyboardInterrupt
                        done = next(outcomes, None)
                    finally:
                        stop.waiting = False
                    if done is None:
                        break
                    if done.text is None:
                        self.pipeline.finish(done.record)
                    self.count(done.record)
                    if self.progress is not None:
                        self.progress.advance(result.deals, self.read)
                    yield done
            except KeyboardInterrupt:
                result.interrupted = True
            finally:
                result.elapsed = time.monotonic() - started
                self.executor.close()
                if self.progress is not None:
                    self.progress.close()


def write_texts(texts: Iterable[str], out: TextIO) -> None:
    """Write records already encoded as JSON Lines."""
    write = out.write
    for text in texts:
        write(text + "\n")
