"""Where ``dealdesk evaluate`` writes its records: output that is never destroyed (SPEC §9).

For the CLI, in the order it needs them:

- :func:`check_output`: ``-o OUT`` may not be an input, lie inside an input directory, be a
  directory, or sit in a directory that does not exist (a usage error before anything is read).
- :func:`format_for`: the format from ``--format``, else from OUT's suffix, else JSONL.
- :func:`resume_records` and :func:`verify_resume`: ``--resume`` reads the whole records of an
  interrupted JSONL output and checks their deal ids against the input's first deals.
- :class:`AtomicOutput`: records go to a temporary file beside OUT, moved into place by
  :meth:`~AtomicOutput.commit`; standard output, devices and FIFOs are written directly.

Every failure to write is one line, ``OUT: cannot write: No space left on device``, raised as a
:class:`~dealdesk.errors.UsageError` (exit status 2), never an internal error.
"""

from __future__ import annotations

import contextlib
import errno
import io
import itertools
import os
import secrets
import stat
import sys
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, ParamSpec, TextIO, TypeVar

import msgspec

from dealdesk import jsoncodec
from dealdesk.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from _typeshed import ReadableBuffer

P = ParamSpec("P")
R = TypeVar("R")

__all__ = [
    "STDOUT",
    "SUFFIX_FORMATS",
    "AtomicOutput",
    "ResumeState",
    "check_output",
    "format_for",
    "resume_records",
    "verify_resume",
]

#: ``-o -``: the records go to standard output.
STDOUT = "-"

#: OUT's suffix → format, when ``--format`` is not given (a plugin's format name counts too).
SUFFIX_FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".html": "html",
    ".htm": "html",
    ".txt": "table",
}

_BUFFER = 1 << 16  # bytes buffered before a write reaches the file
_COPY_CHUNK = 1 << 20  # bytes copied at a time from a resumed output


# --- checks before the run -------------------------------------------------------------------


def check_output(out: str, inputs: Sequence[str]) -> None:
    """Refuse an ``-o OUT`` that would destroy deals or cannot be written, before any work.

    OUT is refused when it is the same file as an input (also through a symbolic or hard link),
    when it lies inside an input directory (a later run would read the records as deals), when
    it is a directory, or when its directory does not exist. ``-`` (standard output) is always
    fine, and an input ``-`` (standard input) never conflicts. Inputs that do not exist are left
    to the readers to report.

    :param out: the ``-o`` value.
    :param inputs: the DEALS arguments: files, directories or ``-``.
    :raises UsageError: one line naming OUT and, for a conflict, the input.
    """
    if out == STDOUT:
        return
    target = os.path.realpath(out)
    if os.path.isdir(target):
        raise UsageError(f"{out}: is a directory; -o needs a file name")
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        what = "is not a directory" if os.path.exists(parent) else "does not exist"
        raise UsageError(f"{out}: cannot write: directory {parent} {what}")
    out_stat = _stat(target)
    # OUT as given and OUT resolved: a link inside an input folder is read back through it too
    folders = _ancestors(os.path.dirname(os.path.abspath(out))) | _ancestors(parent)
    for source in inputs:
        if source == "-":
            continue
        source_stat = _stat(source)
        if source_stat is None:
            continue
        if stat.S_ISDIR(source_stat.st_mode):
            if _identity(source_stat) in folders:
                raise UsageError(
                    f"{out}: lies inside the input directory {source}; a later run would read "
                    "the records as deals (write them elsewhere)"
                )
        elif (
            out_stat is not None
            and stat.S_ISREG(out_stat.st_mode)
            and _identity(out_stat) == _identity(source_stat)
        ):
            raise UsageError(
                f"{out}: is the input {source} (the same file); writing it would destroy the "
                "deals (write the records elsewhere)"
            )


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None


def _identity(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


def _ancestors(folder: str) -> set[tuple[int, int]]:
    """The identities of ``folder`` and every folder above it (bind mounts and links included)."""
    found = set()
    while True:
        st = _stat(folder)
        if st is not None:
            found.add(_identity(st))
        up = os.path.dirname(folder)
        if up == folder:
            return found
        folder = up


def format_for(out: str, fmt: str | None, known: Collection[str], default: str = "jsonl") -> str:
    """The output format: ``fmt`` (``--format``) when given, else OUT's suffix, else ``jsonl``.

    A suffix that names a known format is that format (``.csv`` → ``csv``, a plugin's
    ``.parquet`` → ``parquet``); then :data:`SUFFIX_FORMATS` (``.ndjson`` → ``jsonl``, ``.htm`` →
    ``html``, ``.txt`` → ``table``). Standard output and any other suffix give ``jsonl``. The
    answer is lower case; whether the format exists is the caller's check. Without a suffix
    it is ``jsonl``.

    :raises UsageError: a suffix that names no format (``out.tsv``): say ``--format``.

    :param out: the ``-o`` value (``-`` for standard output).
    :param fmt: the ``--format`` value, or ``None`` when not given.
    :param known: the formats there are writers for (built-in and plugin).
    :param default: the format for standard output and an OUT without a suffix.
    """
    if fmt is not None:
        return fmt.lower()
    if out == STDOUT:
        return default
    suffix = os.path.splitext(out)[1].lower()
    name = suffix[1:]
    if name and name in {k.lower() for k in known}:
        return name
    if suffix and suffix not in SUFFIX_FORMATS:
        choices = ", ".join(sorted({*SUFFIX_FORMATS, *(f".{k.lower()}" for k in known)}))
        raise UsageError(
            f"{out}: cannot tell the output format from {suffix!r}; give --format, or name "
            f"OUT with one of {choices}"
        )
    return SUFFIX_FORMATS.get(suffix, default)


# --- resume ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResumeState:
    """The whole records of an interrupted JSONL output, as :func:`resume_records` found them.

    :ivar path: OUT.
    :ivar exists: False when there was no OUT: nothing to resume (the caller decides whether
        that is an error; :attr:`message` says so).
    :ivar count: how many whole records OUT holds (K: the input deals to skip).
    :ivar length: the bytes of those records: the prefix of OUT to keep
        (``AtomicOutput(out, keep=state.length)``).
    :ivar cut: the bytes of a last line without its newline (a record cut off by a kill),
        dropped; 0 when OUT ends with a whole record.
    """

    path: str
    exists: bool = False
    count: int = 0
    length: int = 0
    cut: int = 0

    @property
    def message(self) -> str:
        """One line for the user: what ``--resume`` found in OUT."""
        if not self.exists:
            return f"{self.path}: nothing to resume (no such file)"
        cut = f" (dropped a cut-off last record of {self.cut} bytes)" if self.cut else ""
        plural = "" if self.count == 1 else "s"
        return f"{self.path}: resuming after {self.count} whole record{plural}{cut}"

    def ids(self) -> Iterator[tuple[int, str | None]]:
        """``(line, deal_id)`` of each whole record, in order, read again from OUT.

        Read on demand rather than kept, so resuming a million-record output takes no more
        memory than a small one.

        :raises UsageError: OUT is gone or no longer JSONL records since
            :func:`resume_records` read it.
        """
        if not self.exists:
            return
        try:
            stream = _open_for_resume(self.path)
        except FileNotFoundError:
            raise UsageError(f"{self.path}: cannot resume: no such file") from None
        with stream:
            # the first `count` lines only: records written since are not part of this state
            for line, deal_id, _ in itertools.islice(_records(self.path, stream), self.count):
                yield line, deal_id


def resume_records(out: str) -> ResumeState:
    """Read an interrupted JSONL output: how many whole records it holds and their length.

    A whole record is a line ending with its newline; a last line without one (a record cut off
    by a kill) is dropped. Every whole line must be a decision record (a JSON object with a
    ``deal_id``).

    :param out: the ``-o`` value.
    :returns: the state; ``exists`` is False when OUT does not exist.
    :raises UsageError: OUT is standard output or not a regular file; a whole line is not a
        JSONL decision record (``OUT:LINE: ...``); OUT cannot be read.
    """
    if out == STDOUT:
        raise UsageError("--resume needs an output file (-o OUT), not standard output")
    try:
        stream = _open_for_resume(out)
    except FileNotFoundError:
        return ResumeState(out)
    count = length = 0
    with stream:
        for _, _, end in _records(out, stream):
            count, length = count + 1, end
        size = os.fstat(stream.fileno()).st_size
    return ResumeState(out, exists=True, count=count, length=length, cut=size - length)


def verify_resume(state: ResumeState, ids: Iterable[str | None]) -> int:
    """Check the input's first deals against the records of ``state``; return how many (K).

    Takes exactly K ids from ``ids`` (no more), so the caller goes on with the same iterator:
    pass the deal ids of the input in order (``deal_id_of(source.deal)``, ``None`` for a deal
    that could not be read).

    :raises UsageError: the first record whose deal id differs from the input's, or an input
        shorter than OUT: the input changed since the interrupted run.
    """
    taken = iter(ids)
    done = 0
    for line, recorded in state.ids():
        try:
            given = next(taken)
        except StopIteration:
            raise UsageError(
                f"{state.path}: holds {state.count} records but the input has only {done} "
                "deals; the input changed since the interrupted run — start again without "
                "--resume"
            ) from None
        done += 1
        if given != recorded:
            has = f"deal {recorded!r}" if recorded is not None else "a deal without an id"
            is_ = repr(given) if given is not None else "without an id"
            raise UsageError(
                f"{state.path}:{line} has {has} but input deal {done} is {is_}; the input "
                "changed since the interrupted run — start again without --resume"
            )
    return done


def _open_for_resume(out: str) -> BinaryIO:
    """OUT opened for reading: a regular file (FileNotFoundError when there is none)."""
    try:
        # looked at first: opening a FIFO would wait for a writer
        if not stat.S_ISREG(os.stat(out).st_mode):
            raise UsageError(f"{out}: cannot resume: not a regular file")
        return open(out, "rb")  # closed by the caller
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise UsageError(f"{out}: cannot resume: {exc.strerror or exc}") from None


def _records(out: str, stream: BinaryIO) -> Iterator[tuple[int, str | None, int]]:
    """``(line, deal_id, end)`` of each whole line of a JSONL output; ``end`` is its last byte + 1."""
    end = 0
    for number, line in enumerate(stream, 1):
        if not line.endswith(b"\n"):
            return  # cut off by a kill: not a whole record
        end += len(line)
        yield number, _deal_id(out, number, line), end


_NOT_A_RECORD = (
    "not a decision record (a JSON object with a deal_id); --resume continues JSONL output only"
)


class _Record(msgspec.Struct):
    """Only the deal id of a record: the rest of the line is skipped, not built."""

    deal_id: str | None


_decode_record = msgspec.json.Decoder(_Record).decode


def _deal_id(out: str, number: int, line: bytes) -> str | None:
    """The ``deal_id`` of one line of a JSONL output, or a usage error naming ``OUT:LINE``."""
    try:
        return _decode_record(line).deal_id
    except msgspec.ValidationError:
        raise UsageError(f"{out}:{number}: cannot resume: {_NOT_A_RECORD}") from None
    except msgspec.DecodeError:
        pass  # what msgspec refuses (a lone surrogate escape): the standard library decides
    try:
        value = jsoncodec.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):
        raise UsageError(
            f"{out}:{number}: cannot resume: not JSON; --resume continues JSONL output only"
        ) from None
    deal_id = value.get("deal_id", 0) if isinstance(value, dict) else 0
    if deal_id is None or isinstance(deal_id, str):
        return deal_id
    raise UsageError(f"{out}:{number}: cannot resume: {_NOT_A_RECORD}")


# --- writing ---------------------------------------------------------------------------------


class AtomicOutput:
    """Where the records of a run go: OUT replaced whole at the end, or left as it was.

    ``open()`` gives a UTF-8 text stream (``newline=""``) to write the records to. For a regular
    file (or a new one) that stream writes a temporary file beside OUT (``.OUT.1a2b3c4d.tmp``,
    its mode from the umask as for any new file, or OUT's own mode when OUT exists);
    :meth:`commit` flushes it, syncs it to disk and renames it over OUT, which is never seen
    half-written. :meth:`abort` removes it, leaving any existing OUT untouched. An OUT that is a
    symbolic link is followed: the file it names is replaced, the link stays.

    ``-`` is standard output, and an existing OUT that is not a regular file (``/dev/null``,
    ``/dev/full``, a FIFO) is written directly, never replaced.

    An interrupted run commits too: the writer decides which records are whole (and closes a
    JSON array), this class only places the result. As a context manager, leaving the block
    commits and an exception aborts::

        with AtomicOutput(out) as stream:
            write(records, stream)

    :param out: the ``-o`` value.
    :param keep: for ``--resume``, how many bytes of the existing OUT to start from
        (:attr:`ResumeState.length`); records written then follow them.
    :raises UsageError: from every method, one line ``OUT: cannot write: REASON``.
    """

    def __init__(self, out: str, *, keep: int = 0):
        self.out = out
        self.keep = keep
        #: the temporary file while the run writes (``None`` when OUT is written directly)
        self.temp: str | None = None
        #: the file the temporary file replaces: OUT with symbolic links resolved
        self.target = out if out == STDOUT else os.path.realpath(out)
        self.stream: TextIO | None = None
        #: True once opened when OUT is written in place (standard output, a device, a FIFO)
        self.direct = False
        self._raw: _RawFile | None = None
        self._borrowed = False
        self._done = False

    def open(self) -> TextIO:
        """Start the output; returns the text stream the writer writes records to."""
        if self.stream is not None:
            raise RuntimeError("AtomicOutput.open() called twice")
        if self.out == STDOUT:
            if self.keep:
                raise UsageError("--resume needs an output file (-o OUT), not standard output")
            self.direct = True
            self.stream = _stdout_stream()
            # a text-only stand-in for standard output is handed over as it is, never closed
            self._borrowed = self.stream is sys.stdout
            return self.stream
        # OUT itself, links followed: /dev/stdout is the pipe or file it stands for
        existing = _stat(self.out)
        if existing is not None and stat.S_ISDIR(existing.st_mode):
            raise UsageError(f"{self.out}: is a directory; -o needs a file name")
        if existing is not None and not stat.S_ISREG(existing.st_mode):
            if self.keep:
                raise UsageError(f"{self.out}: cannot resume: not a regular file")
            fd = self._os(os.open, self.out, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
            self.direct = True
        else:
            fd = self._create_temp(existing)
        self._raw = _RawFile(fd, self.out)
        buffered = io.BufferedWriter(self._raw, _BUFFER)
        self.stream = _text(buffered)
        return self.stream

    def commit(self, to: str | None = None) -> None:
        """Finish: flush, sync and move the temporary file over OUT — or over ``to`` instead,
        leaving OUT as it was — (or just flush OUT when it is written directly).

        :raises UsageError: OUT could not be written; the temporary file is removed first and
            any existing OUT is left as it was.
        """
        if self._done or self.stream is None:
            return
        self._done = True
        try:
            self.stream.flush()
            if self.temp is not None and self._raw is not None:
                self._os(os.fsync, self._raw.fileno())
            if not self._borrowed:
                self.stream.close()
            if self.temp is not None:
                target = self.target if to is None else os.path.realpath(to)
                self._os(os.replace, self.temp, target)
                self.temp = None
                _sync_folder(os.path.dirname(target))
        except BaseException:
            self._discard()
            raise

    def abort(self) -> None:
        """Give up: remove the temporary file (OUT stays as it was); never raises."""
        if self._done:
            return
        self._done = True
        self._discard()

    def __enter__(self) -> TextIO:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def _create_temp(self, existing: os.stat_result | None) -> int:
        """A new hidden file beside the target, opened for writing, holding ``keep`` bytes."""
        folder, name = os.path.split(self.target)
        if existing is not None and not os.access(self.target, os.W_OK):
            # a read-only OUT is a refusal to be overwritten, as the shell's `>` treats it
            raise UsageError(f"{self.out}: cannot write: {os.strerror(errno.EACCES)}")
        if self.keep and existing is None:
            raise UsageError(f"{self.out}: cannot resume: no such file")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        while True:
            # 0o666 and the umask: the mode any new file gets (mkstemp would give 0600)
            temp = os.path.join(folder, f".{name[:200]}.{secrets.token_hex(4)}.tmp")
            try:
                fd = os.open(temp, flags, 0o666)
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise _cannot_write(self.out, exc) from None
        self.temp = temp
        try:
            if existing is not None:
                # keep OUT's permissions, as writing it in place would
                self._os(os.fchmod, fd, stat.S_IMODE(existing.st_mode))
            if self.keep:
                self._copy_prefix(fd)
        except BaseException:
            os.close(fd)
            self._discard()
            raise
        return fd

    def _copy_prefix(self, fd: int) -> None:
        """Copy the first ``keep`` bytes of the existing OUT into the temporary file."""
        try:
            source = os.open(self.target, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise UsageError(f"{self.out}: cannot resume: {exc.strerror or exc}") from None
        try:
            left = self.keep
            while left:
                chunk = os.read(source, min(left, _COPY_CHUNK))
                if not chunk:
                    raise UsageError(
                        f"{self.out}: cannot resume: the file is shorter than when it was read"
                    )
                view = memoryview(chunk)
                while view:
                    view = view[self._os(os.write, fd, view) :]
                left -= len(chunk)
        finally:
            os.close(source)

    def _discard(self) -> None:
        """Close the stream ignoring errors, then remove the temporary file if there is one."""
        if self.stream is not None and not self._borrowed:
            with contextlib.suppress(Exception):
                self.stream.close()
            if self._raw is not None and not self._raw.closed:
                # the buffer could not be flushed: the raw file is still open
                with contextlib.suppress(Exception):
                    self._raw.close()
        if self.temp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp)
            self.temp = None

    def _os(self, call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """``call(*args)``, an OSError becoming ``OUT: cannot write: REASON``."""
        try:
            return call(*args, **kwargs)
        except OSError as exc:
            raise _cannot_write(self.out, exc) from None


def _cannot_write(out: str, exc: OSError) -> UsageError:
    return UsageError(f"{out}: cannot write: {exc.strerror or exc}")


def _sync_folder(folder: str) -> None:
    """Sync a folder so that a rename into it survives a crash (where the system allows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (OSError, AttributeError):
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename itself is done
    finally:
        os.close(fd)


class _RawFile(io.FileIO):
    """A file whose write errors read ``OUT: cannot write: REASON``, wherever they surface."""

    def __init__(self, fd: int, out: str):
        super().__init__(fd, "wb", closefd=True)
        self.out = out

    def write(self, data: ReadableBuffer, /) -> int:
        try:
            return super().write(data)
        except OSError as exc:
            raise _cannot_write(self.out, exc) from None


class _StdoutSink(io.RawIOBase):
    """Bytes to ``sys.stdout``'s buffer, flushed as they come; write errors read as a usage error.

    A broken pipe (the reader went away, ``| head``) stays a ``BrokenPipeError`` for the CLI to
    end quietly. Closing this sink never closes standard output.
    """

    def __init__(self, target: BinaryIO):
        self.target = target

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer, /) -> int:
        try:
            self.target.write(data)
            self.target.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _cannot_write("<stdout>", exc) from None
        return memoryview(data).nbytes


def _stdout_stream() -> TextIO:
    """Standard output as a UTF-8 text stream (``newline=""``), after what was printed before."""
    stdout = sys.stdout
    target = getattr(stdout, "buffer", None)
    if target is None:
        return stdout  # a text-only stand-in (an embedder's StringIO): written as it is
    try:
        stdout.flush()  # what was printed before comes before the records
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise _cannot_write("<stdout>", exc) from None
    line_buffering = bool(getattr(stdout, "line_buffering", False))
    return _text(io.BufferedWriter(_StdoutSink(target), _BUFFER), line_buffering)


def _text(buffered: BinaryIO, line_buffering: bool = False) -> TextIO:
    """The UTF-8 text stream writers get (``newline=""``: their line ends are the bytes written).

    A lone surrogate (a deal read from ``"\\ud800"``) cannot be UTF-8; it is written as its
    ``\\ud800`` escape rather than ending the batch: inside a JSON string that is the same
    text, and elsewhere it stays readable.
    """
    return io.TextIOWrapper(
        buffered,
        encoding="utf-8",
        errors="backslashreplace",
        newline="",
        line_buffering=line_buffering,
    )
