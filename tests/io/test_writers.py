"""Tests for dealdesk.io.writers: records in, the same bytes out every time, strict JSON."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal
from typing import Any

import pytest

from dealdesk.errors import NonFiniteNumber
from dealdesk.io.writers import (
    WRITERS,
    CsvWriter,
    JsonlWriter,
    JsonWriter,
    TableWriter,
    format_message,
)


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


def render(fmt: str, records: list[dict[str, Any]]) -> str:
    stream = io.StringIO()
    writer = WRITERS[fmt](stream)
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


def test_csv_writer_columns() -> None:
    text = render("csv", RECORDS)
    assert text.splitlines() == [
        "deal_id,status,approvals,fired,reasons,errors",
        "D-1001,needs_approval,deal_desk;vp_finance,billing-milestone:BM-1;partner-margin:PM-3;partner-margin:PM-13,"
        "Margin of D-1001 is below the floor. | Risk offers need deal desk review.,",
        "D-1002,approved,,,,",
        "D-1003,rejected,deal_desk,billing-milestone:BM-1;partner-margin:PM-3;partner-margin:PM-13,Break-fix — not for risk offers.,",
        "D-1004,invalid,,,,lines[0].unit_cost: missing | customer.region: unknown value 'mars'",
    ]
    assert "\r" not in text


def test_csv_writer_with_no_records_writes_the_header() -> None:
    assert render("csv", []) == "deal_id,status,approvals,fired,reasons,errors\n"


def test_table_writer_lists_deals_then_summarizes() -> None:
    records = [*RECORDS, record("D-1005")]
    text = render("table", records)
    assert text == (
        "D-1001        needs_approval  deal_desk, vp_finance\n"
        "D-1002        approved\n"
        "D-1003        rejected        deal_desk\n"
        "D-1004        invalid         lines[0].unit_cost: missing; customer.region: unknown value 'mars'\n"
        "D-1005        needs_approval  deal_desk, vp_finance\n"
        "\n"
        "5 deals: 1 approved, 2 needs_approval, 1 rejected, 1 invalid\n"
        "\n"
        "Top reasons:\n"
        "  2  partner-margin PM-13  Risk offers need deal desk review.\n"
        "  2  partner-margin PM-3  Margin of D-1001 is below the floor.\n"
        "  1  onsite-support OS-1  Break-fix — not for risk offers.\n"
    )


def test_table_writer_keeps_ten_reasons_and_plain_messages() -> None:
    records = [record(f"D-{n}", reasons=[{"message": f"reason {n % 12}"}]) for n in range(30)]
    text = render("table", records)
    top = text.split("Top reasons:\n")[1].splitlines()
    assert len(top) == TableWriter.TOP == 10
    assert top[0] == "  3  reason 0"
    assert render("table", []) == "\n0 deals: 0 approved, 0 needs_approval, 0 rejected, 0 invalid\n"


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_writers_are_deterministic(fmt: str) -> None:
    first = render(fmt, RECORDS)
    assert first
    assert render(fmt, json.loads(json.dumps(RECORDS))) == first


def test_writer_classes_are_registered() -> None:
    assert WRITERS == {
        "jsonl": JsonlWriter,
        "json": JsonWriter,
        "csv": CsvWriter,
        "table": TableWriter,
    }


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_json_writers_refuse_a_record_with_nan_or_infinity(fmt: str) -> None:
    bad = record("D-9", policies={"p": {"status": "approved", "outputs": {"x": float("inf")}}})
    stream = io.StringIO()
    writer = WRITERS[fmt](stream)
    writer.write(RECORDS[0])
    before = stream.getvalue()
    with pytest.raises(NonFiniteNumber) as caught:
        writer.write(bad)
    assert str(caught.value) == (
        "cannot write the record of deal 'D-9': policies.p.outputs.x is Infinity; "
        "records are strict JSON (no NaN or Infinity)"
    )
    assert stream.getvalue() == before  # nothing of it was written
