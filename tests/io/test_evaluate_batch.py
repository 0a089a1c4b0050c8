"""``dealdesk evaluate`` as a batch user runs it: workers, faults, safe output, interruption,
resume (SPEC §6, §9). Deals come from the bundled examples; faults from tests/io/fault_plugin.py.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dealdesk.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "deals"
ACME = yaml.safe_load((EXAMPLES / "acme-risk.yaml").read_text())
HERE = Path(__file__).resolve().parent
ENV = {"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1"}
DEALDESK = Path(sys.executable).with_name("dealdesk")


def book(path: Path, ids: list[str]) -> Path:
    """A JSONL book of the acme deal under ``ids``, each a little different."""
    with path.open("w") as out:
        for number, deal_id in enumerate(ids, 1):
            deal = copy.deepcopy(ACME)
            deal["id"] = deal_id
            deal["lines"][0]["quantity"] = number
            out.write(json.dumps(deal, default=str) + "\n")
    return path


def cli(*args: object, input: str | None = None, fault: bool = False):
    env = dict(ENV)
    if fault:
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
        args = ("-p", "fault_plugin", *args)
    return CliRunner().run(*map(str, args), input=input, env=env)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(autouse=True)
def _fault_plugin_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))


def test_every_worker_count_writes_the_same_bytes(tmp_path: Path) -> None:
    deals = book(tmp_path / "book.jsonl", [f"D-{n}" for n in range(120)])
    outputs = []
    for workers in ("0", "1", "2"):
        out = tmp_path / f"out{workers}.jsonl"
        result = cli("evaluate", deals, "--workers", workers, "-o", out, "-q")
        assert result.exit_code == 0, result.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    assert [r["deal_id"] for r in lines(tmp_path / "out2.jsonl")] == [f"D-{n}" for n in range(120)]


def test_faults_cost_only_the_deals_that_cause_them(tmp_path: Path) -> None:
    ids = [f"D-{n}" for n in range(30)]
    ids[3], ids[11], ids[20], ids[27] = "SEGV-1", "EXIT-1", "LOOP-1", "SYSEXIT-1"
    deals = book(tmp_path / "book.jsonl", ids)
    out = tmp_path / "out.jsonl"
    result = cli(
        "evaluate", deals, "--workers", "2", "--deal-timeout", "1", "-o", out, "-q", fault=True
    )
    assert result.exit_code == 0, result.stderr
    records = lines(out)
    assert [r["deal_id"] for r in records] == ids  # one each, in order, none lost or doubled
    bad = {i for i, deal_id in enumerate(ids) if not deal_id.startswith("D-")}
    assert {i for i, r in enumerate(records) if r["status"] == "invalid"} == bad
    assert "time budget of 1 s" in records[20]["errors"][0]["message"]
    assert "SIGSEGV" in records[3]["errors"][0]["message"]


def test_default_settings_isolate_a_crash(tmp_path: Path) -> None:
    deals = book(tmp_path / "book.jsonl", ["D-1", "SEGV-1", "D-2"])
    result = cli("evaluate", deals, "-q", fault=True)
    assert result.exit_code == 0, result.stderr
    statuses = [json.loads(line)["status"] for line in result.stdout.splitlines()]
    assert statuses == ["needs_approval", "invalid", "needs_approval"]


@pytest.mark.parametrize("where", ["same", "inside"])
def test_output_over_an_input_is_refused_before_anything_is_written(
    tmp_path: Path, where: str
) -> None:
    folder = tmp_path / "deals"
    folder.mkdir()
    deals = book(folder / "book.jsonl", ["D-1", "D-2"])
    before = deals.read_bytes()
    target = deals if where == "same" else folder / "out.jsonl"
    result = cli("evaluate", deals if where == "same" else folder, "-o", target)
    assert result.exit_code == 2
    assert "input" in result.stderr
    assert deals.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["book.jsonl"]


def test_the_output_format_follows_the_suffix(tmp_path: Path) -> None:
    out = tmp_path / "records.json"
    result = cli("evaluate", EXAMPLES / "acme-risk.yaml", "-o", out, "-q")
    assert result.exit_code == 0, result.stderr
    assert json.loads(out.read_text())[0]["deal_id"] == "D-1001"


def test_a_summary_ends_the_run_on_stderr(tmp_path: Path) -> None:
    result = cli("evaluate", EXAMPLES, "-o", tmp_path / "out.jsonl")
    assert result.exit_code == 0
    assert "deals/s" in result.stderr
    assert "needs_approval" in result.stderr
    quiet = cli("evaluate", EXAMPLES, "-o", tmp_path / "out.jsonl", "-q")
    assert quiet.stderr == ""


def test_closed_standard_input_is_a_usage_error() -> None:
    result = subprocess.run(
        [str(DEALDESK), "evaluate", "-"],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
        preexec_fn=lambda: os.close(0),
        timeout=60,
    )
    assert result.returncode == 2
    assert "standard input is closed" in result.stderr


def test_a_full_disk_is_one_line(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    result = cli("evaluate", EXAMPLES / "acme-risk.yaml", "-o", "/dev/full", "-q")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: /dev/full: cannot write: No space left on device"
    ]


def _interrupt(args: list[str], out: Path, signum: int) -> subprocess.CompletedProcess[str]:
    """Run dealdesk, wait for its first records in ``out``'s temporary file, then signal it."""
    process = subprocess.Popen(
        [str(DEALDESK), "-p", "fault_plugin", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ENV, "PYTHONPATH": str(HERE)},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        temps = list(out.parent.glob(f".{out.name}.*"))
        if temps and temps[0].stat().st_size > 0:
            break
        time.sleep(0.05)
    else:
        process.kill()
        pytest.fail("no records were written within a minute")
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=30)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_json_run_keeps_a_valid_array(tmp_path: Path, signum: int) -> None:
    ids = [f"D-{n}" for n in range(40)] + ["LOOP-1"] + [f"E-{n}" for n in range(10)]
    deals = book(tmp_path / "book.jsonl", ids)
    out = tmp_path / "out.json"
    result = _interrupt(
        ["evaluate", str(deals), "-o", str(out), "--workers", "1", "--deal-timeout", "0"],
        out,
        signum,
    )
    assert result.returncode == 130, result.stderr
    records = json.loads(out.read_text())
    assert 0 < len(records) <= 40
    assert [r["deal_id"] for r in records] == ids[: len(records)]
    assert f"interrupted: {len(records)} deals decided" in result.stderr
    assert "Traceback" not in result.stderr


def test_resume_continues_an_interrupted_run(tmp_path: Path) -> None:
    ids = [f"D-{n}" for n in range(60)]
    deals = book(tmp_path / "book.jsonl", ids)
    whole = tmp_path / "whole.jsonl"
    assert cli("evaluate", deals, "-o", whole, "-q").exit_code == 0
    full = whole.read_bytes()
    out = tmp_path / "out.jsonl"
    cut = full.index(b"\n", len(full) // 3) + 40  # 20 whole records and part of one
    out.write_bytes(full[:cut])
    result = cli("evaluate", deals, "-o", out, "--resume")
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes() == full
    assert "resuming after the" in result.stderr


def test_resume_refuses_an_input_that_changed(tmp_path: Path) -> None:
    deals = book(tmp_path / "book.jsonl", ["D-1", "D-2", "D-3"])
    out = tmp_path / "out.jsonl"
    assert cli("evaluate", deals, "-o", out, "-q").exit_code == 0
    book(deals, ["D-1", "X-2", "D-3"])
    kept = out.read_bytes()
    result = cli("evaluate", deals, "-o", out, "--resume")
    assert result.exit_code == 2
    assert "changed since the interrupted run" in result.stderr
    assert out.read_bytes() == kept


def _on_a_terminal(args: list[str]) -> str:
    """Run dealdesk with standard error on a pseudo-terminal; what the terminal showed."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    # a terminal of 24 rows and 120 columns (a new pseudo-terminal has none, and tqdm draws
    # nothing on a terminal without rows)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    process = subprocess.Popen(
        [str(DEALDESK), *args],
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env={**os.environ, **ENV},
    )
    os.close(follower)
    shown = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    process.wait(timeout=60)
    os.close(leader)
    assert process.returncode == 0, shown.decode(errors="replace")
    return shown.decode(errors="replace")


def test_a_terminal_shows_progress_with_a_total_and_clears_it(tmp_path: Path) -> None:
    deals = book(tmp_path / "book.jsonl", [f"D-{n}" for n in range(3000)])
    shown = _on_a_terminal(["evaluate", str(deals), "-o", str(tmp_path / "out.jsonl")])
    bars = [part for part in shown.split("\r") if part.startswith("evaluating")]
    assert bars, shown
    # a percentage, deals done of an estimated total, the time left and the rate
    moving = [
        bar for bar in bars if re.search(r"\d+%\|.*\| [\d,]+/~[\d,]+ deals \[.*<.*deals/s", bar)
    ]
    assert moving, bars
    assert re.search(r"\r +\r3,000 deals: ", shown)  # the bar is wiped before the summary
    assert "3,000 deals: " in shown  # then the summary


def test_piped_output_shows_no_progress(tmp_path: Path) -> None:
    deals = book(tmp_path / "book.jsonl", [f"D-{n}" for n in range(50)])
    result = subprocess.run(
        [str(DEALDESK), "evaluate", str(deals), "-o", str(tmp_path / "out.jsonl")],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
        timeout=60,
    )
    assert result.returncode == 0
    assert "\r" not in result.stderr
    assert "evaluating" not in result.stderr
    assert result.stderr.startswith("50 deals: ")
