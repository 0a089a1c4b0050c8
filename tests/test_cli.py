"""The ``dealdesk`` command, run in-process on the real engine, house rulesets and examples."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import textwrap
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from dealdesk.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "deals"
ACME = EXAMPLES / "acme-risk.yaml"
HOUSE = Path(str(resources.files("dealdesk.rulesets")))
NO_AUTOLOAD = {"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1"}
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


@pytest.fixture
def run(cli_runner: CliRunner):
    """``run(*args, input=None)``: the dealdesk command with installed plugins left out."""

    def invoke(
        *args: str | Path, input: str | None = None, env: dict[str, str | None] | None = None
    ) -> Result:
        return cli_runner.run(*map(str, args), input=input, env={**NO_AUTOLOAD, **(env or {})})

    return invoke


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def expected(path: Path) -> tuple[str, list[str]]:
    """The ``# Expected: STATUS [roles]`` line every example deal starts with."""
    match = re.search(r"^# Expected: (\w+)(?: \[(.*)\])?$", path.read_text(), re.M)
    assert match, f"{path} has no '# Expected:' line"
    roles = [r.strip() for r in (match.group(2) or "").split(",") if r.strip()]
    return match.group(1), roles


def deal_ids_in_order() -> list[str]:
    """The ids of every deal under examples/deals, in the order evaluate reads them (by path)."""
    ids: list[str] = []
    for path in sorted(p for p in EXAMPLES.rglob("*") if p.suffix in (".yaml", ".jsonl")):
        if path.suffix == ".jsonl":
            ids += [
                json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()
            ]
        else:
            ids.append(yaml.safe_load(path.read_text())["id"])
    return ids


def broken_ruleset(tmp_path: Path) -> Path:
    """The house billing ruleset with a typo in BM-1's condition."""
    text = (HOUSE / "billing-milestone.yaml").read_text()
    assert "risk_offer and totals.product >= 500000\n" in text
    path = tmp_path / "billing-typo.yaml"
    path.write_text(
        text.replace(
            "risk_offer and totals.product >= 500000\n",
            "risk_offer and totals.prodcut >= 500000\n",
            1,
        )
    )
    return path


# -- evaluate ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_evaluate_gives_each_example_its_documented_decision(run, path: Path) -> None:
    status, roles = expected(path)
    result = run("evaluate", path)
    assert result.exit_code == 0, result.stderr
    [record] = jsonl(result.stdout)
    assert record["status"] == status, record
    if status != "invalid":
        assert record["approvals"] == roles
    # standard error holds the run's summary only
    assert result.stderr.startswith("1 deal: ")
    assert "error" not in result.stderr.replace("Top errors", "")


def test_evaluate_writes_one_valid_record_per_deal_in_input_order(run) -> None:
    result = run("evaluate", EXAMPLES)
    assert result.exit_code == 0, result.stderr
    records = jsonl(result.stdout)
    assert [r["deal_id"] for r in records] == deal_ids_in_order()
    schema = json.loads(run("schema", "decision").stdout)
    for record in records:
        jsonschema.validate(record, schema)
    assert list(records[0]) == [
        "deal_id",
        "status",
        "approvals",
        "policies",
        "reasons",
        "flags",
        "clauses",
        "errors",
        "provenance",
    ]
    assert all(r["clauses"] == [] for r in records)  # only with --clauses


def test_evaluate_json_csv_and_table_formats_agree_with_jsonl(run) -> None:
    records = jsonl(run("evaluate", EXAMPLES).stdout)
    statuses = [(r["deal_id"], r["status"]) for r in records]

    as_json = run("evaluate", EXAMPLES, "--format", "json")
    assert as_json.exit_code == 0, as_json.stderr
    assert json.loads(as_json.stdout) == records

    as_csv = run("evaluate", EXAMPLES, "--format", "csv")
    assert as_csv.exit_code == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(row["deal_id"], row["status"]) for row in rows] == statuses
    acme = rows[0]
    assert acme["approvals"] == "deal_desk;sales_manager;services_finance"
    assert "partner-margin:PM-13" in acme["fired"].split(";")

    table = run("evaluate", EXAMPLES, "--format", "table")
    assert table.exit_code == 0, table.stderr
    counts = {
        s: sum(1 for _, st in statuses if st == s)
        for s in ("approved", "needs_approval", "rejected", "invalid")
    }
    summary = ", ".join(f"{counts[s]} {s}" for s in counts)
    assert f"{len(records)} deals: {summary}" in table.stdout
    assert "Top reasons (deals per rule):" in table.stdout


def test_evaluate_writes_to_a_file_with_dash_o(run, tmp_path: Path) -> None:
    out = tmp_path / "records.jsonl"
    result = run("evaluate", ACME, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert [r["deal_id"] for r in jsonl(out.read_text())] == ["D-1001"]


def test_evaluate_with_clauses_renders_their_texts(run) -> None:
    [record] = jsonl(run("evaluate", ACME, "--clauses").stdout)
    ids = [c["id"] for c in record["clauses"]]
    assert "billing/milestones" in ids
    milestones = record["clauses"][ids.index("billing/milestones")]
    assert milestones["policy"] == "billing-milestone" and milestones["rule"] == "BM-1"
    assert "1,000,000.00 USD" in milestones["text"]


def test_an_unparseable_line_becomes_an_invalid_record_and_the_batch_goes_on(
    run, tmp_path: Path
) -> None:
    book = (EXAMPLES / "book.jsonl").read_text().splitlines()
    deals = tmp_path / "deals.jsonl"
    deals.write_text("\n".join([book[0], '{"id": "broken", "lines": [', book[1]]) + "\n")
    result = run("evaluate", deals)
    assert result.exit_code == 0, result.stderr
    first, broken, third = jsonl(result.stdout)
    assert (first["deal_id"], third["deal_id"]) == (
        json.loads(book[0])["id"],
        json.loads(book[1])["id"],
    )
    assert first["status"] != "invalid" and third["status"] != "invalid"
    assert broken["deal_id"] is None
    assert broken["status"] == "invalid"
    [error] = broken["errors"]
    assert error["message"].startswith(f"{deals}:2: invalid JSON")


@pytest.mark.parametrize("engine", ["native", "columnar"])
@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_deal_without_an_id_is_found_by_where_it_was_read(
    run, tmp_path: Path, engine: str, workers: str
) -> None:
    # SPEC §9: bad input gets a located error; a record without a deal_id says where the deal
    # was read, on every reader and engine. A deal with an id keeps its record byte for byte.
    if engine == "columnar":
        pytest.importorskip("numpy")
    good = json.loads((EXAMPLES / "book.jsonl").read_text().splitlines()[0])
    no_id = {k: v for k, v in good.items() if k != "id"}
    book = tmp_path / "book.jsonl"
    book.write_text(
        "\n".join(json.dumps(d) for d in [good, {}, no_id, {**good, "id": True}, [], good]) + "\n"
    )
    yaml_book = tmp_path / "book.yaml"
    yaml_book.write_text(yaml.safe_dump([good, no_id]))
    json_book = tmp_path / "book.json"
    json_book.write_text(json.dumps([good, no_id]))
    csv_book = tmp_path / "book.csv"
    csv_book.write_text('id,currency,lines\nC-1,USD,"[{""sku"": oops]"\n,USD,"[]"\n')
    options = ("--engine", engine, "--workers", workers)
    result = run("evaluate", *options, book, yaml_book, json_book, csv_book)
    assert result.exit_code == 0, result.stderr
    records = jsonl(result.stdout)
    ids = [r["deal_id"] for r in records]
    assert ids == [good["id"], None, None, None, None, good["id"]] + [good["id"], None] * 2 + [
        "C-1",  # the row's id cell is fine, its lines cell is not JSON
        None,
    ]
    alone = jsonl(run("evaluate", *options, "-", input=json.dumps(good) + "\n").stdout)[0]
    assert records[0] == records[5] == records[6] == records[8] == alone
    items = [n for n, line in enumerate(yaml_book.read_text().splitlines(), 1) if line[:2] == "- "]
    places = [f"{book}:{n}" for n in (2, 3, 4, 5)] + [
        f"{yaml_book}:{items[1]}",
        f"{json_book}[1]",
        f"{csv_book}:2",
        f"{csv_book}:3",
    ]
    located = [records[i] for i in (1, 2, 3, 4, 7, 9, 10, 11)]
    for place, record in zip(places, located, strict=True):
        assert record["status"] == "invalid"
        assert record["errors"]
        assert all(e["message"].startswith(f"{place}: ") for e in record["errors"]), record
    assert records[1]["errors"][0] == {
        "path": "id",
        "message": f"{book}:2: missing required field",
    }


@pytest.mark.parametrize("engine", ["native", "columnar"])
def test_an_empty_requested_split_is_rejected(run, tmp_path: Path, engine: str) -> None:
    # BM-6: [] is a requested split that sums to 0, not an absent one
    if engine == "columnar":
        pytest.importorskip("numpy")
    deal = yaml.safe_load(ACME.read_text())
    deal["billing"]["requested_split"] = []
    path = tmp_path / "empty-split.yaml"
    path.write_text(yaml.safe_dump(deal))
    result = run("evaluate", "--engine", engine, path)
    assert result.exit_code == 0, result.stderr
    [record] = jsonl(result.stdout)
    assert record["status"] == "rejected", record
    assert record["policies"]["billing-milestone"]["status"] == "rejected"
    assert {
        "policy": "billing-milestone",
        "rule": "BM-6",
        "message": ("The requested split (empty) sums to 0, not 100."),
    } in record["reasons"]


def test_evaluate_reads_jsonl_from_standard_input(run) -> None:
    book = (EXAMPLES / "book.jsonl").read_text()
    result = run("evaluate", "-", input=book)
    assert result.exit_code == 0, result.stderr
    assert [r["deal_id"] for r in jsonl(result.stdout)] == [
        json.loads(line)["id"] for line in book.splitlines()
    ]


@pytest.mark.parametrize(
    ("deal", "fail_on", "code"),
    [
        ("acme-risk.yaml", "needs_approval", 1),
        ("acme-risk.yaml", "rejected", 0),
        ("risk-break-fix-rejected.yaml", "needs_approval", 1),
        ("risk-break-fix-rejected.yaml", "rejected", 1),
        ("risk-break-fix-rejected.yaml", "invalid", 0),
        ("invalid-missing-cost.yaml", "invalid", 1),
        ("standard-approved.yaml", "needs_approval", 0),
    ],
)
def test_fail_on_exits_1_when_a_record_is_that_severe_or_worse(
    run, deal: str, fail_on: str, code: int
) -> None:
    result = run("evaluate", EXAMPLES / deal, "--fail-on", fail_on)
    assert result.exit_code == code, result.stderr
    assert len(jsonl(result.stdout)) == 1  # the records are written either way
    if code:
        assert f"(--fail-on {fail_on})" in result.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--format", "yaml"], "unknown --format 'yaml'"),
        (["--workers", "-1"], "--workers"),
        (["--deal-timeout", "-2"], "--deal-timeout"),
        (["--scheduler", "tcp://localhost:8786"], "--scheduler needs --executor dask"),
        (["--workers", "0", "--executor", "dask"], "cannot use --executor dask"),
        (["--resume"], "--resume continues an output file"),
        (["--fail-on", "approved"], "--fail-on"),
    ],
)
def test_bad_flags_are_usage_errors(run, flags: list[str], message: str) -> None:
    result = run("evaluate", ACME, *flags)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("workers", ["0", "1", "3"])
def test_any_number_of_workers_gives_the_same_records(run, workers: str) -> None:
    result = run("evaluate", EXAMPLES, "--workers", workers, "--executor", "local", "-q")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == run("evaluate", EXAMPLES, "-q").stdout


def test_a_missing_deal_file_is_one_line_and_exit_2(run, tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    result = run("evaluate", ACME, missing)
    assert result.exit_code == 2
    assert result.stderr == f"error: {missing}: no such file or directory\n"
    assert result.stdout == ""  # checked before anything is written


def test_debug_shows_the_traceback(run, tmp_path: Path) -> None:
    result = run("--debug", "evaluate", tmp_path / "nope.jsonl")
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.rstrip().endswith("no such file or directory")


def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> str:
    """A real plugin module ``name`` on ``sys.path``, for ``-p name``."""
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_a_failing_plugin_writer_is_one_line_naming_it_and_exit_1(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a real plugin, loaded with -p, whose writer fails
    plugin_module(
        tmp_path,
        monkeypatch,
        "failing_writer",
        """
        from dealdesk import hookimpl

        def boom(records, out):
            for record in records:
                raise RuntimeError("the disk is on fire")

        @hookimpl
        def dealdesk_writers(register):
            register("boom", boom)
        """,
    )
    result = run("-p", "failing_writer", "evaluate", ACME, "--format", "boom")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: plugin 'failing_writer' failed in writer 'boom': "
        "RuntimeError: the disk is on fire\n"
    )
    debug = run("--debug", "-p", "failing_writer", "evaluate", ACME, "--format", "boom")
    assert debug.exit_code == 1
    assert "Traceback (most recent call last)" in debug.stderr


def test_a_failing_plugin_reader_costs_its_file_not_the_batch(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin_module(
        tmp_path,
        monkeypatch,
        "failing_reader",
        """
        from dealdesk import hookimpl

        def read(path):
            yield {"id": "X"}
            raise KeyError("bad cell")

        @hookimpl
        def dealdesk_readers(register):
            register(".xdeal", read)
        """,
    )
    broken = tmp_path / "a.xdeal"
    broken.write_text("x\n")
    result = run("-p", "failing_reader", "evaluate", broken, ACME)
    assert result.exit_code == 0, result.stderr
    x, failed, acme = jsonl(result.stdout)
    assert (x["deal_id"], x["status"]) == ("X", "invalid")  # read, but it has no lines
    assert (failed["deal_id"], failed["status"]) == (None, "invalid")
    assert failed["errors"] == [
        {
            "path": "",
            "message": f"{broken} (after 1 deal): plugin 'failing_reader' failed in reader "
            "'.xdeal': KeyError: 'bad cell'",
            "plugin": "failing_reader",
        }
    ]
    assert acme["deal_id"] == "D-1001" and acme["status"] != "invalid"


def test_a_failing_plugin_filter_in_the_memo_is_one_line_naming_it(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin_module(
        tmp_path,
        monkeypatch,
        "failing_filter",
        """
        from dealdesk import hookimpl

        def money(value, currency=None):
            raise ValueError("nope")

        @hookimpl
        def dealdesk_template_filters(register):
            register("money", money)
        """,
    )
    named = "plugin 'failing_filter' failed in template filter 'money': ValueError: nope"
    # in a clause, it makes the deal invalid and says so in the record ...
    [record] = jsonl(run("-p", "failing_filter", "evaluate", ACME, "--clauses").stdout)
    assert record["status"] == "invalid"
    assert any(named in error["message"] for error in record["errors"]), record["errors"]
    # ... and in the memo, it is the command's one-line error
    result = run("-p", "failing_filter", "render", ACME)
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: template memo.md.j2 line ")
    assert line.endswith(named)


def test_a_combine_plugin_returning_no_decision_makes_the_deal_invalid(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin_module(
        tmp_path,
        monkeypatch,
        "bad_combine",
        """
        from dealdesk import hookimpl

        @hookimpl
        def dealdesk_combine(records):
            return {"status": "ok", "approvals": "cfo"}
        """,
    )
    result = run("-p", "bad_combine", "evaluate", ACME)
    assert result.exit_code == 0, result.stderr
    [record] = jsonl(result.stdout)
    assert record["status"] == "invalid"
    [error] = record["errors"]
    assert error["plugin"] == "bad_combine"
    assert error["message"].startswith(
        "plugin 'bad_combine' failed in dealdesk_combine: returned status 'ok'"
    )


def test_numbers_out_of_range_and_impossible_dates_cost_only_their_deal(
    run, tmp_path: Path
) -> None:
    acme = yaml.safe_load(ACME.read_text())
    huge = json.loads(json.dumps(acme, default=str))
    huge["id"] = "HUGE"
    huge["lines"][0].update(quantity="1e999999", unit_price="1e999999")
    deals = tmp_path / "deals.jsonl"
    deals.write_text(
        json.dumps(huge) + "\n" + json.dumps(json.loads(json.dumps(acme, default=str))) + "\n"
    )
    result = run("evaluate", deals)
    assert result.exit_code == 0, result.stderr
    bad, good = jsonl(result.stdout)
    assert bad["status"] == "invalid"
    assert [e["path"] for e in bad["errors"]] == ["lines[0].quantity", "lines[0].unit_price"]
    assert "number out of range" in bad["errors"][0]["message"]
    assert good["deal_id"] == "D-1001" and good["status"] != "invalid"

    dates = tmp_path / "dates.yaml"
    text = ACME.read_text()
    assert "close: 2026-12-15" in text
    dates.write_text(
        "- "
        + text.replace("close: 2026-12-15", "close: 2026-13-01").replace("\n", "\n  ")
        + "\n- "
        + text.replace("\n", "\n  ")
        + "\n"
    )
    result = run("evaluate", dates)
    assert result.exit_code == 0, result.stderr
    bad, good = jsonl(result.stdout)
    assert (bad["deal_id"], bad["status"]) == ("D-1001", "invalid")
    assert bad["errors"] == [
        {"path": "dates.close", "message": "expected a date (YYYY-MM-DD), got '2026-13-01'"}
    ]
    assert good["status"] != "invalid"


def test_an_integer_id_is_the_records_string_id_and_found_by_id(run, tmp_path: Path) -> None:
    text = ACME.read_text()
    assert "id: D-1001" in text
    deals = tmp_path / "ids.yaml"
    deals.write_text(text.replace("id: D-1001", "id: 1001") + "---\n" + text)
    records = jsonl(run("evaluate", deals).stdout)
    assert [r["deal_id"] for r in records] == ["1001", "D-1001"]
    assert records[0]["status"] == records[1]["status"] != "invalid"
    one = run("explain", deals, "--id", "1001")
    assert one.exit_code == 0, one.stderr
    assert one.stdout.startswith("1001: ")


def test_validate_documents_where_its_problems_go(run) -> None:
    # validate's problems are its result (stdout); evaluate's are errors (stderr), as tested below
    text = " ".join(run("validate", "--help").stdout.split())
    assert "on standard output" in text and "the count on standard error" in text


def test_validate_the_house_policy(run) -> None:
    result = run("validate")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout == "3 rulesets OK\n"


def test_validate_checks_the_names_in_the_tests_expectations(run, tmp_path: Path) -> None:
    ruleset = tmp_path / "x.yaml"
    ruleset.write_text(
        "ruleset: x\npolicy: partner-margin\nversion: '1'\nrules:\n"
        "  - {id: X-1, when: totals.contract > 0, then: {require: [cfo]}}\n"
        f"tests:\n  - name: a case\n    deal: {{file: {ACME}}}\n"
        "    expect: {fired: [X_1], approvals: [cffo]}\n"
    )
    result = run("validate", "--no-plugin-rulesets", ruleset)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{ruleset}:9:22: expect.fired: no rule or table 'X_1' in policy 'partner-margin' "
        "(did you mean 'X-1'?)",
        f"{ruleset}:9:40: expect.approvals: unknown approver role 'cffo' (did you mean 'cfo'?)",
    ]
    assert result.stderr.strip() == "2 errors in 1 file"


def test_a_broken_ruleset_fails_validate_and_evaluate_with_its_location(
    run, tmp_path: Path
) -> None:
    path = broken_ruleset(tmp_path)
    line = next(
        i for i, text in enumerate(path.read_text().splitlines(), 1) if "totals.prodcut" in text
    )
    pattern = rf"^{re.escape(str(path))}:{line}:\d+: unknown path 'totals.prodcut' \(did you mean 'totals.product'\?\)$"

    validate = run("validate", path)
    assert validate.exit_code == 1
    assert re.search(pattern, validate.stdout, re.M), validate.stdout
    assert all(
        re.match(rf"{re.escape(str(path))}:\d+:\d+: ", text)
        for text in validate.stdout.splitlines()
    )
    assert validate.stderr.strip() == "1 error in 1 file"

    evaluate = run("evaluate", ACME, "-r", path)
    assert evaluate.exit_code == 1
    assert evaluate.stdout == ""  # nothing ran
    assert re.search(pattern, evaluate.stderr, re.M), evaluate.stderr
    assert "Traceback" not in evaluate.stderr


def test_explicit_rulesets_replace_the_house_policy(run) -> None:
    result = run("evaluate", ACME, "-r", HOUSE / "partner-margin.yaml")
    [record] = jsonl(result.stdout)
    assert list(record["policies"]) == ["partner-margin"]
    assert list(record["provenance"]["rulesets"]) == ["partner-margin"]


def test_several_r_merge_and_one_file_reached_twice_is_loaded_once(run) -> None:
    result = run("evaluate", ACME, "-r", HOUSE / "partner-margin.yaml", "-r", HOUSE)
    assert result.exit_code == 0, result.stderr
    [record] = jsonl(result.stdout)
    assert sorted(record["policies"]) == ["billing-milestone", "onsite-support", "partner-margin"]


def test_a_ruleset_name_given_twice_is_a_validation_error(run, tmp_path: Path) -> None:
    copy = tmp_path / "copy.yaml"
    copy.write_text((HOUSE / "partner-margin.yaml").read_text())
    result = run("evaluate", ACME, "-r", HOUSE, "-r", copy)
    assert result.exit_code == 1
    assert "ruleset 'partner-margin' is also defined in" in result.stderr
    assert result.stdout == ""


def test_a_missing_ruleset_path_is_a_usage_error(run, tmp_path: Path) -> None:
    result = run("validate", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'nope.yaml'}: no such ruleset file or directory\n"


def test_p_no_removes_a_builtin_plugin_and_its_policy(run) -> None:
    [record] = jsonl(run("-p", "no:partner_margin", "evaluate", ACME).stdout)
    assert sorted(record["policies"]) == ["billing-milestone", "onsite-support"]
    assert "partner-margin" not in record["provenance"]["rulesets"]
    plugins = run("-p", "no:partner_margin", "plugins")
    assert "partner_margin" not in plugins.stdout
    assert "billing_milestone" in plugins.stdout


def _example_plugin_installed() -> bool:
    try:
        import dealdesk_example_plugin  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(
    not _example_plugin_installed() and not os.environ.get("DEALDESK_REQUIRE_EXAMPLE_PLUGIN"),
    reason="dealdesk-example-plugin is not installed",
)
def test_r_keeps_external_plugin_rulesets_unless_no_plugin_rulesets(run) -> None:
    autoload = {"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": None}
    kept = run("evaluate", ACME, "-r", HOUSE / "partner-margin.yaml", env=autoload)
    assert kept.exit_code == 0, kept.stderr
    assert sorted(jsonl(kept.stdout)[0]["policies"]) == ["export-control", "partner-margin"]
    dropped = run(
        "evaluate", ACME, "-r", HOUSE / "partner-margin.yaml", "--no-plugin-rulesets", env=autoload
    )
    assert sorted(jsonl(dropped.stdout)[0]["policies"]) == ["partner-margin"]
    listed = run("plugins", env=autoload)
    assert "export_control" in listed.stdout


# -- explain and render -----------------------------------------------------------------------


def test_explain_shows_why_rules_fired_or_not(run) -> None:
    result = run("explain", ACME)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out.startswith(
        "D-1001: needs_approval  (approvals: deal_desk, sales_manager, services_finance)\n"
    )
    assert re.search(
        r"^  FIRED +PM-13: its condition is true\n +when: risk_offer\n +true +risk_offer = true$",
        out,
        re.M,
    ), out
    bm2 = re.search(
        r"^  not fired +BM-2: (.*)\n +when: (.*)\n(( +(true|false|unknown) .*\n)+)", out, re.M
    )
    assert bm2, out
    assert bm2.group(1) == "totals.product < 500000 is false"
    assert bm2.group(2) == "risk_offer and totals.product < 500000"
    assert "false   totals.product = 1000000 (< 500000: false)" in bm2.group(3)
    assert "PM-5 row 4: the row matches, but hit policy first chose row 3" in out


def test_explain_one_rule(run) -> None:
    result = run("explain", ACME, "--rule", "PM-13")
    assert result.exit_code == 0, result.stderr
    assert "PM-13" in result.stdout
    assert "BM-1" not in result.stdout and "billing-milestone" not in result.stdout
    unknown = run("explain", ACME, "--rule", "PM-31")
    assert unknown.exit_code == 2
    assert "no such rule" in unknown.stderr and "did you mean" in unknown.stderr


def test_explain_as_json(run) -> None:
    result = run("explain", ACME, "--rule", "BM-2", "--json")
    data = json.loads(result.stdout)
    [rule] = data["policies"]["billing-milestone"]["rules"]
    assert (rule["id"], rule["fired"], rule["value"]) == ("BM-2", False, False)
    assert [c["value"] for c in rule["conjuncts"]] == [True, False]


def test_explain_an_invalid_deal_shows_its_errors(run) -> None:
    result = run("explain", EXAMPLES / "invalid-missing-cost.yaml")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("D-9001: invalid\n")
    assert "  error: lines[0].unit_cost: missing" in result.stdout


def test_explain_picks_one_deal_of_several_with_id(run) -> None:
    several = run("explain", EXAMPLES / "book.jsonl")
    assert several.exit_code == 2
    assert "choose one with --id" in several.stderr
    one = run("explain", EXAMPLES / "book.jsonl", "--id", "B-03", "--rule", "OS-1")
    assert one.exit_code == 0, one.stderr
    assert one.stdout.startswith("B-03: ")


def test_render_names_a_deal_without_id_by_its_source(run, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: [D-1\n")
    memo = run("render", broken)
    assert memo.exit_code == 0, memo.stderr
    first = memo.stdout.splitlines()[0]
    assert first.startswith(f"# Decision memo: {broken}:") and first.endswith("(no deal id)")
    assert "None" not in first
    nameless = tmp_path / "nameless.yaml"
    nameless.write_text(ACME.read_text().replace("id: D-1001", "customer_ref: none"))
    html = run("render", nameless, "--format", "html")
    assert re.search(
        rf"<h1>Decision memo: {re.escape(str(nameless))}:\d+ \(no deal id\)</h1>", html.stdout
    )
    assert "<li>id: missing required field</li>" in html.stdout  # path first, then the message


def test_render_a_deal_whose_plugin_fails_shows_the_error(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin_module(
        tmp_path,
        monkeypatch,
        "failing_enrich",
        """
        from dealdesk import hookimpl

        @hookimpl
        def dealdesk_enrich(deal):
            raise RuntimeError("no crm")
        """,
    )
    memo = run("-p", "failing_enrich", "render", ACME)
    assert memo.exit_code == 0, memo.stderr
    assert memo.stdout.startswith("# Decision memo: D-1001\n")
    assert (
        "- plugin 'failing_enrich' failed in dealdesk_enrich: RuntimeError: no crm" in memo.stdout
    )


def test_render_memo_errors_are_path_then_message(run) -> None:
    memo = run("render", EXAMPLES / "invalid-missing-cost.yaml").stdout
    assert "\n- lines[0].unit_cost: missing; required on" in memo


def test_render_writes_the_memo_with_milestone_amounts(run, tmp_path: Path) -> None:
    result = run("render", ACME)
    assert result.exit_code == 0, result.stderr
    memo = result.stdout
    assert memo.startswith("# Decision memo: D-1001\n")
    for amount in ("300,000.00 USD", "100,000.00 USD"):
        assert amount in memo
    assert "## Clauses" in memo and "billing/milestones" in memo
    out = tmp_path / "memo.html"
    html = run("render", ACME, "--format", "html", "-o", out)
    assert html.exit_code == 0, html.stderr
    page = out.read_text()
    assert "<html" in page and "300,000.00 USD" in page


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("memo.md", "md"),
        ("memo.markdown", "md"),
        ("memo.html", "html"),
        ("memo.HTM", "html"),
        ("memo", "md"),
    ],
)
def test_render_picks_the_format_from_the_suffix_of_out(
    run, tmp_path: Path, name: str, fmt: str
) -> None:
    out = tmp_path / name
    result = run("render", ACME, "-o", out)
    assert result.exit_code == 0, result.stderr
    page = out.read_text()
    if fmt == "html":
        assert page.startswith("<!DOCTYPE html>") and "300,000.00 USD" in page
    else:
        assert page.startswith("# Decision memo: D-1001\n") and "<html" not in page


@pytest.mark.parametrize("name", ["memo.pdf", "memo.json", "memo.txt"])
def test_render_refuses_a_suffix_that_names_no_memo_format(run, tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    result = run("render", ACME, "-o", out)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {out}: cannot tell the memo format from its suffix; give --format md or html, "
        "or name OUT with .md, .markdown, .html or .htm\n"
    )
    assert not out.exists()


def test_render_format_given_wins_over_the_suffix(run, tmp_path: Path) -> None:
    markdown, page = tmp_path / "memo.html", tmp_path / "memo.pdf"
    assert run("render", ACME, "--format", "md", "-o", markdown).exit_code == 0
    assert markdown.read_text().startswith("# Decision memo: D-1001\n")
    assert run("render", ACME, "--format", "html", "-o", page).exit_code == 0
    assert page.read_text().startswith("<!DOCTYPE html>")


# A deal needs only an id and lines (SPEC §2). Each clause the house policy can ask for, with a
# deal that gives only what the rule asking for it needs: no names (customer, partner, sku).
HARDWARE = {"category": "hardware", "quantity": 1, "unit_price": 600000, "unit_cost": 100000}
LABOR = {"category": "labor", "quantity": 1, "unit_price": 10, "unit_cost": 1}
RISK = {"offer": {"type": "new_market"}, "lines": [HARDWARE]}
MINIMAL_DEALS: dict[str, dict] = {
    "billing/milestones": RISK,
    "billing/standard": {"offer": {"type": "standard"}, "lines": [HARDWARE]},
    "billing/effort": {"lines": [HARDWARE, LABOR]},
    "billing/gain-share": {"offer": {"pricing": "financial_improvement"}, "lines": [HARDWARE]},
    "support/resident-engineer": RISK,
    "support/personnel-security": {**RISK, "customer": {"government": True}},
    "support/proactive-schedule": {"support": {"model": "proactive"}, "lines": [HARDWARE]},
    "support/service-contract": {"offer": {"type": "standard"}, "lines": [HARDWARE]},
    "support/integration-vendor": {"customer": {"presales_consulting": True}, "lines": [HARDWARE]},
    "support/integration-customer": {"lines": [HARDWARE]},
}


def test_the_minimal_deals_cover_every_clause_the_house_policy_asks_for() -> None:
    asked = set()
    for path in HOUSE.glob("*.yaml"):
        rules = yaml.safe_load(path.read_text())
        for then in [r["then"] for r in rules.get("rules", [])] + [
            row["then"] for t in rules.get("tables", []) for row in t["rows"]
        ]:
            asked.update(then.get("clauses", []) + ([then["clause"]] if "clause" in then else []))
    assert asked == set(MINIMAL_DEALS)


@pytest.mark.parametrize("clause_id", sorted(MINIMAL_DEALS))
def test_a_minimal_deal_gets_its_clauses_rendered(run, clause_id: str) -> None:
    deal = {"id": "M-1", **MINIMAL_DEALS[clause_id]}
    result = run("evaluate", "-", "--clauses", "-q", input=json.dumps(deal) + "\n")
    assert result.exit_code == 0, result.stderr
    [record] = jsonl(result.stdout)
    assert record["status"] != "invalid", record["errors"]
    clauses = {c["id"]: c for c in record["clauses"]}
    assert clause_id in clauses
    assert all(c["title"] and c["text"] and "None" not in c["text"] for c in clauses.values())


@pytest.mark.parametrize("fmt", ["md", "html"])
@pytest.mark.parametrize("clause_id", sorted(MINIMAL_DEALS))
def test_render_a_minimal_deal(run, tmp_path: Path, clause_id: str, fmt: str) -> None:
    deal = tmp_path / "deal.json"
    deal.write_text(json.dumps({"id": "M-1", **MINIMAL_DEALS[clause_id]}))
    result = run("render", deal, "--format", fmt)
    assert result.exit_code == 0, result.stderr
    memo = result.stdout
    assert "Invalid" not in memo and "undefined" not in memo, memo
    assert f"{clause_id}, required by" in memo


def test_the_partner_clause_renders_for_a_partner_without_details(run, tmp_path: Path) -> None:
    ruleset = tmp_path / "margin-clause.yaml"
    ruleset.write_text(
        'ruleset: margin-clause\npolicy: partner-margin\nversion: "1"\nrules:\n'
        "  - id: T-1\n    when: totals.contract > 0\n    then: {clause: partner/margin-exception}\n"
    )
    deals = [
        {"id": "direct", "lines": [HARDWARE]},
        {"id": "unnamed", "partner": {}, "lines": [HARDWARE]},
        {"id": "gold", "partner": {"tier": "gold", "discount": 0.1}, "lines": [HARDWARE]},
    ]
    book = "".join(json.dumps(d) + "\n" for d in deals)
    result = run("evaluate", "-", "-r", ruleset, "--clauses", "-q", input=book)
    assert result.exit_code == 0, result.stderr
    texts = {r["deal_id"]: r["clauses"][0]["text"].splitlines()[0] for r in jsonl(result.stdout)}
    assert texts == {
        "direct": "This Order for the Customer is a direct sale; no partner discount applies.",
        "unnamed": "This Order for the Customer is sold through a partner with no partner "
        "discount requested.",
        "gold": "This Order for the Customer is sold through a gold partner at a partner "
        "discount of 10%.",
    }
    for fmt in ("md", "html"):
        memo = run("render", "-", "-r", ruleset, "--format", fmt, input=json.dumps(deals[1]))
        assert memo.exit_code == 0, memo.stderr
        assert "sold through a partner with no partner discount requested" in memo.stdout


# -- test -------------------------------------------------------------------------------------


def test_the_house_rulesets_pass_their_own_tests(run) -> None:
    result = run("test", "--fail-under", "100")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "  total 59/59  100.0%" in result.stdout.splitlines()
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"[1-9]\d* passed, 0 failed in \d+\.\d\ds", lines[-1]), lines[-1]
    files = lines[: lines.index("")]
    assert len(files) == 3
    assert all(re.fullmatch(r"\S+\.yaml \.+ \[\d+ cases?\]", line) for line in files)


TMP_RULESET = """\
ruleset: tmp-checks
policy: partner-margin
version: "1"
outputs:
  tier: {combine: first, type: string}
rules:
  - id: T-1
    when: risk_offer
    then: {require: deal_desk, set: {tier: "= partner.tier"}}
  - id: T-2
    when: customer.government
    then: {require: legal}
tests:
  - name: a risk offer needs the deal desk
    deal: {file: deal.yaml}
    expect: {status: needs_approval, fired: [T-1], not_fired: [T-2], approvals: [deal_desk], outputs: {tier: select}}
  - name: a wrong expectation
    deal: {file: deal.yaml, patch: {offer: {type: standard}}}
    expect: {fired: [T-1], status: approved}
"""


def test_a_failing_case_fails_the_run(run, tmp_path: Path) -> None:
    (tmp_path / "deal.yaml").write_text(ACME.read_text())
    ruleset = tmp_path / "tmp.yaml"
    ruleset.write_text(TMP_RULESET)
    result = run("test", ruleset, "--coverage", "-v")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"PASS {ruleset}::a risk offer needs the deal desk"
    assert lines[1] == f"FAIL {ruleset}::a wrong expectation"
    assert lines[5] == f"{ruleset}::a wrong expectation at {ruleset}:17:5"
    assert lines[6:11] == [
        "  --- expected",
        "  +++ actual",
        "  -fired:",
        "  -  - T-1",
        "  +fired: []",
    ]
    assert (
        f"{ruleset}  rules 1/2  table rows 0/0   50.0%" in result.stdout
        and "never fired: T-2" in result.stdout
    )
    assert re.fullmatch(r"1 passed, 1 failed in \d+\.\d\ds", lines[-1])


# -- schema and plugins -----------------------------------------------------------------------


def as_json_data(path: Path) -> object:
    """A YAML file as JSON would carry it (dates as ISO strings)."""
    return json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))


@pytest.mark.parametrize("kind", ["ruleset", "deal", "decision"])
def test_schema_prints_a_valid_json_schema(run, kind: str) -> None:
    result = run("schema", kind)
    assert result.exit_code == 0, result.stderr
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_deal_schema_accepts_the_examples_and_refuses_the_invalid_one(run) -> None:
    validator = jsonschema.Draft202012Validator(json.loads(run("schema", "deal").stdout))
    for path in EXAMPLE_FILES:
        errors = list(validator.iter_errors(as_json_data(path)))
        if path.name == "invalid-missing-cost.yaml":
            assert {"unit_cost", "region"} <= {
                str(part) for e in errors for part in [*e.path, *str(e.message).split("'")]
            }
        else:
            assert errors == [], (path.name, [e.message for e in errors])


def test_the_ruleset_schema_accepts_the_house_rulesets(run) -> None:
    schema = json.loads(run("schema", "ruleset").stdout)
    for path in sorted(HOUSE.glob("*.yaml")):
        if path.name != "approvers.yaml":
            jsonschema.validate(as_json_data(path), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"ruleset": "x", "policy": "y", "rulez": []}, schema)


def test_the_decision_schema_refuses_a_record_without_a_status(run) -> None:
    schema = json.loads(run("schema", "decision").stdout)
    [record] = jsonl(run("evaluate", ACME).stdout)
    jsonschema.validate(record, schema)
    del record["status"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(record, schema)


def test_plugins_lists_the_three_builtins_with_version_and_hooks(run) -> None:
    result = run("plugins")
    assert result.exit_code == 0, result.stderr
    header, *rows = result.stdout.split("\n\n")[0].splitlines()
    assert header.split() == ["NAME", "VERSION", "KIND", "POLICY", "FAMILIES", "HOOKS"]
    table = {row.split()[0]: row.split(None, 4) for row in rows}
    assert list(table) == ["billing_milestone", "onsite_support", "partner_margin"]
    assert all(version == "0.1.0" for _, version, *_ in table.values())
    assert "dealdesk_actions" in table["billing_milestone"][4]
    assert "dealdesk_policies" in table["partner_margin"][4]
