"""Tests for dealdesk.io.writers: records in, the same bytes out every time, strict JSON."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dealdesk.app import App
from dealdesk.errors import NonFiniteNumber
from dealdesk.io.summary import Summary
from dealdesk.io.writers import (
    WRITERS,
    CsvWriter,
    HtmlWriter,
    WriteContext,
    Writer,
    _csv_line,
    format_message,
)

EXAMPLES = Path(__file__).parents[2] / "examples" / "deals"


def record(deal_id: str, status: str = "needs_approval", **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "deal_id": deal_id,
        "status": status,
        "approvals": ["deal_desk", "vp_finance"],
        "policies": {
            "billing-milestone": {
                "status": "approved",
                "fired": ["BM-1"],
                "outputs": {"payment_terms_days": 45},
            },
            "partner-margin": {
                "status": "needs_approval",
                "fired": ["PM-3", "PM-13"],
                "outputs": {"margin": 0.3134},
            },
        },
        "reasons": [
            {
                "policy": "partner-margin",
                "rule": "PM-3",
                "message": f"Margin of {deal_id} is below the floor.",
            },
            {
                "policy": "partner-margin",
                "rule": "PM-13",
                "message": "Risk offers need deal desk review.",
            },
        ],
        "flags": [],
        "clauses": [],
        "errors": [],
        "provenance": {
            "rulesets": {"partner-margin": "2026.11.0"},
            "digest": "sha256:abc",
            "dealdesk": "0.1.0",
        },
    }
    base.update(extra)
    return base


RECORDS = [
    record("D-1001"),
    record("D-1002", "approved", approvals=[], policies={}, reasons=[]),
    record(
        "D-1003",
        "rejected",
        approvals=["deal_desk"],
        reasons=[
            {
                "policy": "onsite-support",
                "rule": "OS-1",
                "message": "Break-fix — not for risk offers.",
            }
        ],
    ),
    record(
        "D-1004",
        "invalid",
        approvals=[],
        policies={},
        reasons=[],
        errors=[
            {"path": "lines[0].unit_cost", "message": "missing"},
            "customer.region: unknown value 'mars'",
        ],
    ),
]


def make(fmt: str, stream: io.StringIO, context: WriteContext | None = None) -> Writer:
    """The writer of ``fmt``; the HTML report without its clock, so its bytes repeat too."""
    if fmt == "html":
        return HtmlWriter(stream, context, clock=None)
    return WRITERS[fmt](stream, context)


def render(fmt: str, records: list[dict[str, Any]], context: WriteContext | None = None) -> str:
    stream = io.StringIO()
    writer = make(fmt, stream, context)
    for item in records:
        writer.write(item)
    writer.close()
    return stream.getvalue()


def test_jsonl_writer_is_compact_ordered_and_utf8() -> None:
    text = render("jsonl", RECORDS)
    lines = text.splitlines()
    assert len(lines) == len(RECORDS) and text.endswith("\n")
    assert [json.loads(line) for line in lines] == RECORDS
    assert lines[0].startswith(
        '{"deal_id":"D-1001","status":"needs_approval","approvals":["deal_desk","vp_finance"],'
    )
    assert "Break-fix — not" in lines[2]  # ensure_ascii=False
    assert list(json.loads(lines[0])) == list(RECORDS[0])


@pytest.mark.parametrize("count", [0, 1, 4])
def test_json_writer_streams_the_same_text_as_json_dumps(count: int) -> None:
    records = RECORDS[:count]
    assert render("json", records) == json.dumps(records, indent=2, ensure_ascii=False) + "\n"


def test_json_writers_turn_stray_decimals_and_dates_into_strings() -> None:
    item = {"deal_id": "D-1", "amount": Decimal("1.10"), "close": dt.date(2026, 1, 2)}
    assert render("jsonl", [item]) == '{"deal_id":"D-1","amount":"1.10","close":"2026-01-02"}\n'
    with pytest.raises(TypeError):
        render("json", [{"x": object()}])


def test_format_message_is_path_then_message() -> None:
    assert format_message({"path": "lines[0].unit_cost", "message": "missing"}) == (
        "lines[0].unit_cost: missing"
    )
    assert format_message({"path": "", "message": "plugin 'x' failed"}) == "plugin 'x' failed"
    assert format_message({"policy": "p", "rule": "R", "message": "why"}) == "why"
    assert format_message("plain") == "plain"


@pytest.fixture(scope="module")
def example_records(app: App) -> list[dict[str, Any]]:
    return [app.evaluate_source(source) for source in app.read([str(EXAMPLES)])]


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_writer_columns_come_from_the_policy_set(
    app: App, context: WriteContext, example_records: list[dict[str, Any]]
) -> None:
    header = render("csv", [], context)
    declared = [
        f"{name}.{output}"
        for name, policy in app.policy_set.policies.items()
        for output in policy.outputs
    ]
    assert header == ",".join([*CsvWriter.COLUMNS, *declared, "other_outputs"]) + "\n"
    assert len(declared) > 10 and "partner-margin.margin" in declared
    assert render("csv", example_records, context).startswith(header)  # known before any row


def test_csv_writer_keeps_todays_columns_first() -> None:
    text = render("csv", RECORDS)
    assert text.splitlines()[0].startswith("deal_id,status,approvals,fired,reasons,errors,flags,")
    first, _, rejected, invalid = rows(text)
    assert first["approvals"] == "deal_desk;vp_finance"
    assert first["fired"] == ("billing-milestone:BM-1;partner-margin:PM-3;partner-margin:PM-13")
    assert first["reasons"] == (
        "Margin of D-1001 is below the floor. | Risk offers need deal desk review."
    )
    assert rejected["reasons"] == "Break-fix — not for risk offers."
    assert invalid["errors"] == (
        "lines[0].unit_cost: missing | customer.region: unknown value 'mars'"
    )
    assert "\r" not in text


def test_csv_writer_carries_outputs_flags_and_provenance(
    context: WriteContext, example_records: list[dict[str, Any]]
) -> None:
    written = rows(render("csv", example_records, context))
    assert len(written) == len(example_records)
    flagged = 0
    for row, record in zip(written, example_records, strict=True):
        assert row["deal_id"] == record["deal_id"] and row["status"] == record["status"]
        assert row["digest"] == record["provenance"]["digest"]
        assert row["dealdesk"] == record["provenance"]["dealdesk"]
        versions = dict(item.split("=") for item in row["rulesets"].split(";"))
        assert versions == record["provenance"]["rulesets"]
        assert row["flags"] == " | ".join(f["message"] for f in record["flags"])
        flagged += bool(record["flags"])
        for policy, result in record["policies"].items():
            for name, value in result["outputs"].items():
                cell = row[f"{policy}.{name}"]
                if value is None:
                    assert cell == ""
                elif isinstance(value, str):
                    assert cell == value
                else:
                    assert json.loads(cell) == value and " " not in cell
        assert row["other_outputs"] == ""  # the house rulesets declare every output
    assert flagged >= 2


def test_an_undeclared_output_lands_in_the_trailing_column() -> None:
    context = WriteContext(outputs={"partner-margin": ("margin",)})
    text = render("csv", RECORDS[:1], context)
    header, row = text.splitlines()
    assert header.endswith(",partner-margin.margin,other_outputs")
    assert rows(text)[0]["partner-margin.margin"] == "0.3134"
    assert json.loads(rows(text)[0]["other_outputs"]) == {
        "billing-milestone": {"payment_terms_days": 45}
    }
    # without a context nothing is dropped either: every output is in the trailing column
    alone = rows(render("csv", RECORDS[:1]))[0]
    assert json.loads(alone["other_outputs"]) == {
        policy: result["outputs"] for policy, result in RECORDS[0]["policies"].items()
    }


@pytest.mark.parametrize(
    "value",
    [
        '=HYPERLINK("http://evil.example","click")',
        "@SUM(A1:A9)",
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "-",
        "\tindented",
        "\rreturn",
        "=1",
    ],
)
def test_csv_neutralises_formula_cells(value: str) -> None:
    item = record(
        value,
        reasons=[{"policy": "p", "rule": "R", "message": value}],
        policies={"p": {"status": "approved", "fired": [], "outputs": {"note": value}}},
    )
    row = rows(render("csv", [item], WriteContext(outputs={"p": ("note",)})))[0]
    assert row["deal_id"] == row["reasons"] == row["p.note"] == "'" + value


def test_csv_escapes_terminal_control_in_every_cell() -> None:
    # SPEC §9: the deal id too, not only the messages; tabs, newlines and CRs stay CSV text
    hostile = "\x1b[31mRED\x1b]8;;http://x\x07\u202eevil\x85"
    item = record(
        hostile,
        approvals=[f"vp{hostile}"],
        reasons=[{"policy": "p", "rule": "R", "message": f"two\nlines\t{hostile}"}],
        errors=[{"path": "", "message": hostile}],
        policies={
            "p": {"status": "approved", "fired": [], "outputs": {"note": hostile, "x": [hostile]}}
        },
    )
    text = render("csv", [item], WriteContext(outputs={"p": ("note",)}))
    assert not re.search("[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\u202e]", text)
    row = rows(text)[0]
    shown = "\\x1b[31mRED\\x1b]8;;http://x\\x07\\u202eevil\\u0085"
    assert row["deal_id"] == row["p.note"] == row["errors"] == shown
    assert row["approvals"] == f"vp{shown}"
    assert row["reasons"] == f"two\nlines\t{shown}"
    assert json.loads(row["other_outputs"]) == {"p": {"x": [hostile]}}  # still JSON


@pytest.mark.parametrize("value", [-5, -0.25, "-5", "-0.25", "+3", "-1.5e-3", 7])
def test_csv_leaves_plain_numbers_alone(value: object) -> None:
    item = record(
        str(value), policies={"p": {"status": "approved", "fired": [], "outputs": {"x": value}}}
    )
    row = rows(render("csv", [item], WriteContext(outputs={"p": ("x",)})))[0]
    assert row["deal_id"] == row["p.x"] == str(value)


def test_csv_writer_refuses_an_output_that_is_nan() -> None:
    bad = record("D-9", policies={"p": {"status": "approved", "outputs": {"x": [1, float("nan")]}}})
    with pytest.raises(NonFiniteNumber) as caught:
        render("csv", [bad], WriteContext(outputs={"p": ("x",)}))
    assert str(caught.value) == (
        "cannot write the record of deal 'D-9': policies.p.outputs.x[1] is NaN; "
        "records are strict JSON (no NaN or Infinity)"
    )


def test_csv_writer_with_no_records_writes_the_header() -> None:
    assert render("csv", []) == ",".join([*CsvWriter.COLUMNS, "other_outputs"]) + "\n"


def test_table_writer_is_the_summary_without_rows(
    context: WriteContext, example_records: list[dict[str, Any]]
) -> None:
    text = render("table", example_records, context)
    summary = Summary(context)
    for item in example_records:
        summary.add(item)
    assert text == summary.text()
    assert text.startswith(f"{len(example_records)} deals: ")
    assert "Top reasons (deals per rule):" in text
    assert not any(item["deal_id"] and item["deal_id"] in text for item in example_records)


def test_table_writer_escapes_terminal_control() -> None:
    item = record("D-\x1b[2J\x1b]8;;http://x\x07", approvals=["vp\u202eecnanif"])
    text = render("table", [item])
    assert "\x1b" not in text and "\u202e" not in text
    assert "vp\\u202eecnanif" in text


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_json_writers_refuse_a_record_with_nan_or_infinity(fmt: str) -> None:
    bad = record("D-9", policies={"p": {"status": "approved", "outputs": {"x": float("inf")}}})
    stream = io.StringIO()
    writer = WRITERS[fmt](stream, None)
    writer.write(RECORDS[0])
    before = stream.getvalue()
    with pytest.raises(NonFiniteNumber) as caught:
        writer.write(bad)
    assert str(caught.value) == (
        "cannot write the record of deal 'D-9': policies.p.outputs.x is Infinity; "
        "records are strict JSON (no NaN or Infinity)"
    )
    assert stream.getvalue() == before  # nothing of it was written


@given(st.lists(st.text(), min_size=2, max_size=5))
def test_csv_rows_are_what_the_csv_module_writes_and_reads_back(cells: list[str]) -> None:
    text = _csv_line(cells)
    assert list(csv.reader(io.StringIO(text, newline=""))) == [cells]
    if not any("\r" in cell for cell in cells):
        expected = io.StringIO()
        csv.writer(expected, lineterminator="\n").writerow(cells)
        assert text == expected.getvalue()


def test_the_apps_writers_get_the_policy_sets_context(
    app: App, context: WriteContext, example_records: list[dict[str, Any]]
) -> None:
    out = io.StringIO()
    app.writers["table"](iter(example_records), out)
    assert out.getvalue() == render("table", example_records, context)
    assert (
        "  partner-margin PM-13  Every risk-model deal needs deal-desk review.\n" in out.getvalue()
    )
    out = io.StringIO()
    app.writers["csv"](iter(example_records), out)
    assert out.getvalue() == render("csv", example_records, context)
    assert ",partner-margin.margin," in out.getvalue().splitlines()[0]
