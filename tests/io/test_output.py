"""Tests for dealdesk.io.output: OUT checked before the run, written whole or not at all, resumed."""

from __future__ import annotations

import io
import os
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dealdesk.errors import UsageError
from dealdesk.io.output import (
    AtomicOutput,
    ResumeState,
    check_output,
    format_for,
    resume_records,
    verify_resume,
)
from dealdesk.io.writers import JsonlWriter

BUILT_IN = ("jsonl", "json", "csv", "table")
as_root = os.geteuid() == 0 if hasattr(os, "geteuid") else False


def usage_error(call: Any, *args: Any, **kwargs: Any) -> str:
    """The one-line message of the UsageError ``call`` raises."""
    with pytest.raises(UsageError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 2
    return message


def hidden_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def umask() -> Iterator[Any]:
    """Set the process umask for one test (restored after)."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


# --- check_output ----------------------------------------------------------------------------


@pytest.fixture
def deals(tmp_path: Path) -> Path:
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": "D-1"}\n')
    return path


def test_stdout_is_always_fine(deals: Path) -> None:
    check_output("-", [str(deals), "-"])


def test_standard_input_never_conflicts(tmp_path: Path) -> None:
    check_output(str(tmp_path / "out.jsonl"), ["-"])


def test_a_new_file_beside_the_input_is_fine(deals: Path) -> None:
    check_output(str(deals.with_name("out.jsonl")), [str(deals)])


def test_out_naming_the_input_is_refused(deals: Path) -> None:
    message = usage_error(check_output, str(deals), ["-", str(deals)])
    assert message.startswith(f"{deals}: is the input {deals} (the same file)")


def test_out_naming_the_input_by_another_path_is_refused(
    deals: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(deals.parent)
    message = usage_error(check_output, "./sub/../s.jsonl", [str(deals)])
    assert "is the input" in message


def test_out_linked_to_the_input_is_refused(deals: Path) -> None:
    link = deals.with_name("link.jsonl")
    link.symlink_to(deals)
    assert "is the input" in usage_error(check_output, str(link), [str(deals)])
    # and the other way round: the input is the link
    assert "is the input" in usage_error(check_output, str(deals), [str(link)])


def test_out_hard_linked_to_the_input_is_refused(deals: Path) -> None:
    twin = deals.with_name("twin.jsonl")
    os.link(deals, twin)
    assert "is the input" in usage_error(check_output, str(twin), [str(deals)])


def test_out_inside_an_input_directory_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "book"
    (folder / "2026").mkdir(parents=True)
    for out in (folder / "out.jsonl", folder / "2026" / "deep" / "out.jsonl"):
        if out.parent.name == "deep":
            out.parent.mkdir()
        message = usage_error(check_output, str(out), [str(folder)])
        assert message.startswith(f"{out}: lies inside the input directory {folder};")


def test_out_inside_an_input_directory_reached_through_a_link_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "book"
    folder.mkdir()
    alias = tmp_path / "alias"
    alias.symlink_to(folder)
    assert "lies inside" in usage_error(check_output, str(alias / "out.jsonl"), [str(folder)])
    assert "lies inside" in usage_error(check_output, str(folder / "out.jsonl"), [str(alias)])


def test_out_linking_into_or_out_of_an_input_directory_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "book"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere.jsonl"
    inside = folder / "link.jsonl"
    inside.symlink_to(elsewhere)  # readers would follow the link back to the records
    assert "lies inside" in usage_error(check_output, str(inside), [str(folder)])
    outside = tmp_path / "link-in.jsonl"
    outside.symlink_to(folder / "out.jsonl")
    assert "lies inside" in usage_error(check_output, str(outside), [str(folder)])


def test_a_sibling_directory_with_a_common_prefix_is_fine(tmp_path: Path) -> None:
    (tmp_path / "book").mkdir()
    (tmp_path / "book-out").mkdir()
    check_output(str(tmp_path / "book-out" / "out.jsonl"), [str(tmp_path / "book")])


def test_out_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    message = usage_error(check_output, str(tmp_path), ["-"])
    assert message == f"{tmp_path}: is a directory; -o needs a file name"


def test_out_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "nowhere" / "out.jsonl"
    message = usage_error(check_output, str(out), [])
    assert message == f"{out}: cannot write: directory {out.parent} does not exist"


def test_out_under_a_file_is_refused(deals: Path) -> None:
    out = deals / "out.jsonl"
    message = usage_error(check_output, str(out), [])
    assert message == f"{out}: cannot write: directory {deals} is not a directory"


def test_missing_inputs_are_left_to_the_readers(tmp_path: Path) -> None:
    check_output(str(tmp_path / "out.jsonl"), [str(tmp_path / "missing.jsonl")])


def test_a_device_is_no_conflict() -> None:
    check_output(os.devnull, [os.devnull])


# --- format_for ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("out", "expected"),
    [
        ("out.jsonl", "jsonl"),
        ("out.ndjson", "jsonl"),
        ("out.json", "json"),
        ("out.csv", "csv"),
        ("OUT.CSV", "csv"),
        ("out.html", "html"),
        ("out.htm", "html"),
        ("out.txt", "table"),
        ("out.table", "table"),
        ("out", "jsonl"),
        ("dir.csv/out", "jsonl"),
        ("-", "jsonl"),
    ],
)
def test_format_from_the_suffix(out: str, expected: str) -> None:
    assert format_for(out, None, BUILT_IN) == expected


@pytest.mark.parametrize("out", ["out.tsv", "out.yaml", "out.jsonl.gz"])
def test_a_suffix_that_names_no_format_is_a_usage_error(out: str) -> None:
    with pytest.raises(UsageError, match=r"cannot tell the output format from .*give --format"):
        format_for(out, None, BUILT_IN)
    assert format_for(out, "jsonl", BUILT_IN) == "jsonl"


def test_format_flag_wins_over_the_suffix() -> None:
    assert format_for("out.csv", "JSON", BUILT_IN) == "json"
    assert format_for("-", "table", BUILT_IN) == "table"
    assert format_for("out.csv", "nosuch", BUILT_IN) == "nosuch"  # the caller names the error


def test_a_plugin_format_name_is_a_suffix() -> None:
    assert format_for("out.parquet", None, [*BUILT_IN, "parquet"]) == "parquet"
    assert format_for("out.XLSX", None, [*BUILT_IN, "xlsx"]) == "xlsx"
    # a plugin's own "txt" writer is what out.txt means then
    assert format_for("out.txt", None, [*BUILT_IN, "txt"]) == "txt"


# --- AtomicOutput: regular files -------------------------------------------------------------


def test_records_reach_out_only_at_commit(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    output = AtomicOutput(str(out))
    stream = output.open()
    stream.write('{"deal_id": "D-1"}\n')
    stream.flush()
    assert not out.exists()
    assert output.temp is not None and not output.direct
    temp = Path(output.temp)
    assert temp.parent == tmp_path
    assert temp.name.startswith(".out.jsonl.") and temp.name.endswith(".tmp")
    assert temp.read_text() == '{"deal_id": "D-1"}\n'
    output.commit()
    assert out.read_text() == '{"deal_id": "D-1"}\n'
    assert hidden_files(tmp_path) == []


def test_the_stream_is_utf8_text_without_newline_translation(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    with AtomicOutput(str(out)) as stream:
        stream.write("Zürich,\r\n€\n")
    assert out.read_bytes() == "Zürich,\r\n€\n".encode()


def test_a_lone_surrogate_is_written_as_its_escape(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with AtomicOutput(str(out)) as stream:
        JsonlWriter(stream).write({"deal_id": "D-\ud800", "status": "invalid"})
    assert out.read_bytes() == b'{"deal_id":"D-\\ud800","status":"invalid"}\n'
    assert list(resume_records(str(out)).ids()) == [(1, "D-\ud800")]


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077], ids=oct)
def test_a_new_out_gets_the_mode_of_any_new_file(tmp_path: Path, umask: Any, mask: int) -> None:
    umask(mask)
    out = tmp_path / "out.jsonl"
    with AtomicOutput(str(out)) as stream:
        stream.write("x\n")
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask


def test_an_existing_out_is_replaced_and_keeps_its_mode(tmp_path: Path, umask: Any) -> None:
    umask(0o022)
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")
    out.chmod(0o640)
    before = out.stat().st_ino
    with AtomicOutput(str(out)) as stream:
        stream.write("new\n")
    assert out.read_text() == "new\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert out.stat().st_ino != before  # a new file moved into place, not the old one rewritten


def test_abort_leaves_an_existing_out_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")
    output = AtomicOutput(str(out))
    output.open().write("new\n" * 100_000)  # past the buffer: bytes reached the temporary file
    output.abort()
    assert out.read_text() == "old\n"
    assert hidden_files(tmp_path) == []
    output.commit()  # after abort: nothing more happens
    assert out.read_text() == "old\n"


def test_an_exception_in_the_block_aborts(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")
    with pytest.raises(KeyError), AtomicOutput(str(out)) as stream:
        stream.write("new\n")
        raise KeyError("boom")
    assert out.read_text() == "old\n"
    assert hidden_files(tmp_path) == []


def test_an_out_that_is_a_link_is_followed(tmp_path: Path) -> None:
    target = tmp_path / "real.jsonl"
    target.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    with AtomicOutput(str(link)) as stream:
        stream.write("new\n")
    assert link.is_symlink() and link.resolve() == target
    assert target.read_text() == "new\n"


def test_out_in_a_read_only_place_is_one_line(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("")
    message = usage_error(AtomicOutput(str(file / "out.jsonl")).open)
    assert message == f"{file / 'out.jsonl'}: cannot write: Not a directory"
    if Path("/sys").is_dir():  # sysfs refuses new files, even to root
        message = usage_error(AtomicOutput("/sys/dealdesk-out.jsonl").open)
        assert message.startswith("/sys/dealdesk-out.jsonl: cannot write: ")


@pytest.mark.skipif(as_root, reason="root writes in read-only directories")
def test_out_in_a_read_only_directory_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        message = usage_error(AtomicOutput(str(folder / "out.jsonl")).open)
    finally:
        folder.chmod(0o755)
    assert message == f"{folder / 'out.jsonl'}: cannot write: Permission denied"


@pytest.mark.skipif(as_root, reason="root writes read-only files")
def test_a_read_only_out_is_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("keep\n")
    out.chmod(0o444)
    assert usage_error(AtomicOutput(str(out)).open) == f"{out}: cannot write: Permission denied"
    assert out.read_text() == "keep\n"


def test_out_that_became_a_directory_is_one_line(tmp_path: Path) -> None:
    assert "is a directory" in usage_error(AtomicOutput(str(tmp_path)).open)


# --- AtomicOutput: devices, FIFOs, standard output -------------------------------------------


def test_dev_null_is_written_directly() -> None:
    with AtomicOutput(os.devnull) as stream:
        stream.write("x\n" * 100_000)
    assert Path(os.devnull).is_char_device()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
@pytest.mark.parametrize("size", [10, 1_000_000])
def test_dev_full_says_no_space(size: int) -> None:
    output = AtomicOutput("/dev/full")

    def run() -> None:
        with output as stream:
            stream.write("x" * size + "\n")  # small: fails at commit; large: while writing

    assert usage_error(run) == "/dev/full: cannot write: No space left on device"
    assert output.direct and output.temp is None


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_a_fifo_is_written_directly(tmp_path: Path) -> None:
    fifo = tmp_path / "records"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def drain() -> None:
        with open(fifo, "rb") as reader:
            received.append(reader.read())

    reader = threading.Thread(target=drain)
    reader.start()
    with AtomicOutput(str(fifo)) as stream:
        stream.write('{"deal_id": "D-1"}\n')
    reader.join(timeout=30)
    assert received == [b'{"deal_id": "D-1"}\n']
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert hidden_files(tmp_path) == []


class FakeStdout(io.TextIOWrapper):
    """Standard output whose bytes land in ``raw`` (latin-1, to show the records are UTF-8)."""

    def __init__(self, buffer: io.BufferedIOBase | None = None):
        self.raw_bytes = io.BytesIO()
        super().__init__(buffer or self.raw_bytes, encoding="latin-1", newline="")


def test_stdout_gets_utf8_after_what_was_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeStdout()
    monkeypatch.setattr(sys, "stdout", fake)
    print("before", end="\n")
    with AtomicOutput("-") as stream:
        stream.write("€\n")
    assert not fake.closed
    print("after", end="\n")
    fake.flush()
    assert fake.raw_bytes.getvalue() == "before\n€\nafter\n".encode()


def test_a_text_only_stdout_is_handed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = io.StringIO()
    monkeypatch.setattr(sys, "stdout", fake)
    output = AtomicOutput("-")
    with output as stream:
        stream.write("€\n")
    assert output.direct
    assert not fake.closed and fake.getvalue() == "€\n"


class FailingBuffer(io.BufferedIOBase):
    def __init__(self, error: OSError):
        self.error = error

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        raise self.error


def test_stdout_write_errors_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", FakeStdout(FailingBuffer(OSError(28, os.strerror(28)))))

    def run() -> None:
        with AtomicOutput("-") as stream:
            stream.write("x\n")

    assert usage_error(run) == "<stdout>: cannot write: No space left on device"


def test_stdout_failing_on_what_was_printed_before_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdout", FakeStdout(FailingBuffer(OSError(28, os.strerror(28)))))
    sys.stdout.write("printed before\n")
    message = usage_error(AtomicOutput("-").open)
    assert message == "<stdout>: cannot write: No space left on device"


def test_a_broken_pipe_on_stdout_stays_a_broken_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    # the CLI ends quietly on BrokenPipeError (`dealdesk evaluate ... | head`)
    monkeypatch.setattr(sys, "stdout", FakeStdout(FailingBuffer(BrokenPipeError(32, "pipe"))))
    with pytest.raises(BrokenPipeError), AtomicOutput("-") as stream:
        stream.write("x\n")


# --- resume ----------------------------------------------------------------------------------


def records(*ids: str | None) -> str:
    stream = io.StringIO()
    writer = JsonlWriter(stream)
    for deal_id in ids:
        writer.write({"deal_id": deal_id, "status": "approved", "note": "é"})
    return stream.getvalue()


def test_resume_finds_whole_records_and_drops_a_cut_one(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    whole = records("D-1", "D-2", None)
    cut = records("D-4")[:-9]
    out.write_bytes((whole + cut).encode())
    state = resume_records(str(out))
    assert (state.exists, state.count, state.length) == (True, 3, len(whole.encode()))
    assert state.cut == len(cut.encode())
    assert list(state.ids()) == [(1, "D-1"), (2, "D-2"), (3, None)]
    assert "resuming after 3 whole records (dropped a cut-off last record" in state.message


def test_resume_of_a_complete_output(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text(records("D-1"))
    state = resume_records(str(out))
    assert (state.count, state.cut) == (1, 0)
    assert state.message == f"{out}: resuming after 1 whole record"


def test_resume_of_an_empty_output(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("")
    assert resume_records(str(out)) == ResumeState(str(out), exists=True)


def test_resume_without_out_has_nothing_to_resume(tmp_path: Path) -> None:
    out = str(tmp_path / "out.jsonl")
    state = resume_records(out)
    assert not state.exists and state.count == 0 and list(state.ids()) == []
    assert state.message == f"{out}: nothing to resume (no such file)"
    ids = iter(["D-1"])
    assert verify_resume(state, ids) == 0
    assert next(ids) == "D-1"


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ('[\n  {"deal_id": "D-1"}\n]\n', 1, "not a decision record"),  # --format json output
        (records("D-1") + "{oops\n" + records("D-3"), 2, "not JSON"),
        (records("D-1") + "\n" + records("D-3"), 2, "not JSON"),
        (records("D-1") + '{"status": "approved"}\n', 2, "not a decision record"),
        (records("D-1") + '{"deal_id": 7}\n', 2, "not a decision record"),
        ("deal_id,status\nD-1,approved\n", 1, "not JSON"),  # CSV output
    ],
)
def test_resume_refuses_what_is_not_jsonl_records(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text(text)
    message = usage_error(resume_records, str(out))
    assert message.startswith(f"{out}:{line}: cannot resume: {reason}")
    assert message.endswith("--resume continues JSONL output only")


def test_resume_reads_what_only_the_standard_library_parses(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"deal_id": "D-1", "note": "\\ud800"}\n')
    assert list(resume_records(str(out)).ids()) == [(1, "D-1")]


def test_resume_needs_a_regular_file(tmp_path: Path) -> None:
    assert "needs an output file" in usage_error(resume_records, "-")
    assert usage_error(resume_records, str(tmp_path)).endswith("cannot resume: not a regular file")
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        assert "not a regular file" in usage_error(resume_records, str(fifo))


def test_verify_resume_takes_exactly_k_ids(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text(records("D-1", None, "D-3") + '{"deal_id": "D-4", "sta')
    ids = iter(["D-1", None, "D-3", "D-4", "D-5"])
    assert verify_resume(resume_records(str(out)), ids) == 3
    assert list(ids) == ["D-4", "D-5"]


def test_verify_resume_names_the_first_mismatch(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text(records(*(f"D-{n}" for n in range(1, 8))))
    given = ["D-1", "D-2", "D-3", "D-4", "D-5", "D-6", "D-8"]
    message = usage_error(verify_resume, resume_records(str(out)), given)
    assert message == (
        f"{out}:7 has deal 'D-7' but input deal 7 is 'D-8'; the input changed since the "
        "interrupted run — start again without --resume"
    )


def test_verify_resume_names_deals_without_ids(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text(records("D-1", None))
    message = usage_error(verify_resume, resume_records(str(out)), ["D-1", "D-2"])
    assert message.startswith(f"{out}:2 has a deal without an id but input deal 2 is 'D-2';")
    message = usage_error(verify_resume, resume_records(str(out)), [None, None])
    assert message.startswith(f"{out}:1 has deal 'D-1' but input deal 1 is without an id;")


def test_verify_resume_refuses_an_output_removed_since(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text(records("D-1"))
    state = resume_records(str(out))
    out.unlink()
    message = usage_error(verify_resume, state, ["D-1"])
    assert message == f"{out}: cannot resume: no such file"


def test_verify_resume_refuses_a_shorter_input(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text(records("D-1", "D-2", "D-3"))
    message = usage_error(verify_resume, resume_records(str(out)), ["D-1"])
    assert message.startswith(f"{out}: holds 3 records but the input has only 1 deals;")


def test_resume_continues_the_whole_records(tmp_path: Path) -> None:
    ids = [f"D-{n}" for n in range(1, 7)]
    out = tmp_path / "out.jsonl"
    out.write_text(records(*ids[:3]) + records(ids[3])[:20])  # killed while writing D-4
    state = resume_records(str(out))
    deals = iter(ids)
    assert verify_resume(state, deals) == 3
    with AtomicOutput(str(out), keep=state.length) as stream:
        writer = JsonlWriter(stream)
        for deal_id in deals:
            writer.write({"deal_id": deal_id, "status": "approved", "note": "é"})
        writer.close()
    assert out.read_text() == records(*ids)
    assert hidden_files(tmp_path) == []


def test_an_aborted_resume_leaves_the_old_output(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    old = records("D-1", "D-2") + '{"deal_'
    out.write_text(old)
    output = AtomicOutput(str(out), keep=resume_records(str(out)).length)
    output.open().write(records("D-3"))
    output.abort()
    assert out.read_text() == old
    assert hidden_files(tmp_path) == []


def test_resume_refuses_a_shrunk_or_missing_output(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text(records("D-1"))
    message = usage_error(AtomicOutput(str(out), keep=10_000).open)
    assert message == f"{out}: cannot resume: the file is shorter than when it was read"
    assert hidden_files(tmp_path) == []
    gone = tmp_path / "gone.jsonl"
    assert "no such file" in usage_error(AtomicOutput(str(gone), keep=5).open)
    assert "needs an output file" in usage_error(AtomicOutput("-", keep=5).open)
    assert "cannot resume: not a regular file" in usage_error(AtomicOutput(os.devnull, keep=5).open)
