"""Tests for the Parquet reader: nested columns become the deals their JSON text would be."""

from __future__ import annotations

import datetime as dt
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dealdesk import jsoncodec
from dealdesk.errors import UsageError
from dealdesk.io import parquet
from dealdesk.io.readers import read_deals, read_parquet
from dealdesk.testing import CliRunner

MONEY = pa.decimal128(14, 2)
LINE = pa.struct(
    [
        ("sku", pa.string()),
        ("category", pa.string()),
        ("quantity", pa.int64()),
        ("unit_price", MONEY),
        ("list_price", MONEY),
        ("unit_cost", MONEY),
        ("resource", pa.string()),
        ("grade", pa.int64()),
        ("hours", pa.int64()),
    ]
)
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("currency", pa.string()),
        (
            "customer",
            pa.struct(
                [
                    ("name", pa.string()),
                    ("segment", pa.string()),
                    ("region", pa.string()),
                    ("hq_country", pa.string()),
                    ("government", pa.bool_()),
                    ("platinum_club", pa.bool_()),
                    ("presales_consulting", pa.bool_()),
                ]
            ),
        ),
        (
            "offer",
            pa.struct(
                [("type", pa.string()), ("pricing", pa.string()), ("kpi_at_risk", pa.int64())]
            ),
        ),
        (
            "partner",
            pa.struct(
                [
                    ("name", pa.string()),
                    ("kind", pa.string()),
                    ("tier", pa.string()),
                    ("discount", pa.float64()),
                ]
            ),
        ),
        ("support", pa.struct([("model", pa.string()), ("resident_cost_to", pa.string())])),
        (
            "billing",
            pa.struct(
                [("payment_terms_days", pa.int64()), ("requested_split", pa.list_(pa.int64()))]
            ),
        ),
        ("lines", pa.list_(LINE)),
        ("dates", pa.struct([("close", pa.date32()), ("start", pa.date32())])),
        ("note", pa.string()),
    ]
)

CUSTOMER = (
    '"customer": {{"name": "{name}", "segment": "{segment}", "region": "{region}", '
    '"hq_country": "US", "government": false, "platinum_club": false, '
    '"presales_consulting": true}}'
)
# The same deals as JSON Lines: money with two decimals (as the decimal column holds it), an
# absent field where the Parquet cell is null.
BOOK = [
    '{"id": "P-1", "currency": "USD", '
    + CUSTOMER.format(name="Acme Robotics", segment="elephant", region="us-west")
    + ', "offer": {"type": "new_market", "pricing": "fixed", "kpi_at_risk": 0}, '
    '"partner": {"name": "Delta SI", "kind": "system_integrator", "tier": "select", '
    '"discount": 0.18}, "support": {"model": "proactive", "resident_cost_to": "project"}, '
    '"billing": {"payment_terms_days": 45, "requested_split": [30, 30, 30, 10]}, '
    '"lines": [{"sku": "EDGE-APL", "category": "hardware", "quantity": 4, '
    '"unit_price": 150000.00, "list_price": 175000.00, "unit_cost": 97500.50}, '
    '{"sku": "ARCH", "category": "labor", "quantity": 1, "unit_price": 89600.00, '
    '"unit_cost": 67200.00, "resource": "architect", "grade": 12, "hours": 640}, '
    '{"sku": "PRO-SUP", "category": "support", "quantity": 1, "unit_price": 300000.00, '
    '"unit_cost": 180000.00}], "dates": {"close": "2026-12-15", "start": "2027-01-15"}}',
    '{"id": "P-2", "currency": "USD", '
    + CUSTOMER.format(name="Aster Textiles", segment="deer", region="emea")
    + ', "offer": {"type": "standard", "pricing": "fixed"}, "support": {"model": "proactive"}, '
    '"billing": {"payment_terms_days": 30}, "lines": [{"sku": "SRV-2U", "category": "hardware", '
    '"quantity": 8, "unit_price": 25000.00, "list_price": 26000.00, "unit_cost": 15000.00}, '
    '{"sku": "SUP-PRO", "category": "support", "quantity": 1, "unit_price": 45000.00, '
    '"unit_cost": 20000.00}], "dates": {"close": "2026-12-15"}, "note": "direct"}',
    '{"id": "P-3", "currency": "USD", '
    + CUSTOMER.format(name="Cobalt Mining", segment="elephant", region="us-central")
    + ', "offer": {"type": "advanced_technology", "pricing": "fixed"}, '
    '"support": {"model": "break_fix"}, "billing": {"payment_terms_days": 30}, '
    '"lines": [{"sku": "GPU-RACK", "category": "hardware", "quantity": 3, '
    '"unit_price": 200000.00, "unit_cost": 120000.00}, {"sku": "SUP-BF", "category": "support", '
    '"quantity": 1, "unit_price": 180000.00, "unit_cost": 90000.00}], '
    '"dates": {"close": "2026-12-15"}}',
    '{"id": "P-4", "currency": "USD", '
    + CUSTOMER.format(name="Typo Traders", segment="rabbit", region="apac")
    + ', "offer": {"type": "standard", "pricing": "fixed"}, "support": {"model": "break_fix"}, '
    '"billing": {"payment_terms_days": 30}, "lines": [{"sku": "SRV-1U", "category": "hardware", '
    '"quantity": 2, "unit_price": 12000.25}], "dates": {"close": "2026-12-15"}}',
]


def arrow_value(value: Any, kind: pa.DataType) -> Any:
    """A JSON value as pyarrow takes it for a column of type ``kind`` (absent is null)."""
    if value is None:
        return None
    if pa.types.is_struct(kind):
        fields = [kind.field(i) for i in range(kind.num_fields)]
        return {f.name: arrow_value(value.get(f.name), f.type) for f in fields}
    if pa.types.is_list(kind):
        return [arrow_value(item, kind.value_type) for item in value]
    if pa.types.is_decimal(kind):
        return Decimal(value)
    if pa.types.is_floating(kind):
        return float(value)
    if pa.types.is_date(kind):
        return dt.date.fromisoformat(value)
    return value


def write_book(tmp_path: Path, row_group_size: int | None = None) -> tuple[Path, Path]:
    """The book as JSON Lines and as Parquet: (deals.jsonl, deals.parquet)."""
    as_jsonl = tmp_path / "deals.jsonl"
    as_jsonl.write_text("\n".join(BOOK) + "\n", encoding="utf-8")
    rows = [
        {f.name: arrow_value(deal.get(f.name), f.type) for f in SCHEMA}
        for deal in map(json.loads, BOOK)
    ]
    as_parquet = tmp_path / "deals.parquet"
    pq.write_table(
        pa.Table.from_pylist(rows, schema=SCHEMA), as_parquet, row_group_size=row_group_size
    )
    return as_jsonl, as_parquet


def test_read_parquet_gives_the_deals_their_json_text_would(tmp_path: Path) -> None:
    _, path = write_book(tmp_path)
    items = list(read_parquet(path))
    assert [(item.source, item.error) for item in items] == [
        (f"{path}[{row}]", None) for row in range(len(BOOK))
    ]
    assert [item.deal for item in items] == [jsoncodec.loads(line) for line in BOOK]
    first, second = items[0].deal, items[1].deal
    assert isinstance(first, dict) and isinstance(second, dict)
    # exact decimals, a float as its shortest text, dates as ISO text, nulls absent
    assert str(first["lines"][0]["unit_cost"]) == "97500.50"
    assert first["partner"]["discount"] == Decimal("0.18")
    assert first["dates"] == {"close": "2026-12-15", "start": "2027-01-15"}
    assert "partner" not in second and "kpi_at_risk" not in second["offer"]
    assert "resource" not in first["lines"][0] and first["lines"][1]["resource"] == "architect"


def test_read_parquet_reads_batch_by_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parquet, "BATCH_ROWS", 1)
    _, path = write_book(tmp_path, row_group_size=2)
    assert pq.ParquetFile(path).num_row_groups == 2
    deals = read_deals([str(path)])
    seen = [(item.deal["id"], deals.bytes_read) for item in deals]  # type: ignore[index]
    assert [deal_id for deal_id, _ in seen] == ["P-1", "P-2", "P-3", "P-4"]
    assert deals.bytes_read == deals.bytes_total == path.stat().st_size


def test_read_parquet_other_types(tmp_path: Path) -> None:
    table = pa.table(
        {
            "id": pa.array(["F-1", "F-2"]),
            "ratio": pa.array([0.1, None], pa.float32()),
            "big": pa.array([1e16, 1.5e-7], pa.float64()),
            "at": pa.array([dt.datetime(2026, 1, 2, 3, 4, 5), None], pa.timestamp("s")),
            "tags": pa.array([[("a", 1)], None], pa.map_(pa.string(), pa.int64())),
            "xs": pa.array([[1, None], []], pa.list_(pa.int64())),
            "kind": pa.array(["x", "y"]).dictionary_encode(),
            "nothing": pa.array([None, None], pa.null()),
        }
    )
    path = tmp_path / "other.parquet"
    pq.write_table(table, path)
    assert [item.deal for item in read_parquet(path)] == [
        {
            "id": "F-1",
            "ratio": Decimal("0.1"),  # the float32's own shortest text, not 0.10000000149...
            "big": Decimal("1E+16"),
            "at": "2026-01-02T03:04:05",
            "tags": {"a": 1},
            "xs": [1, None],
            "kind": "x",
        },
        {"id": "F-2", "big": Decimal("1.5E-7"), "xs": [], "kind": "y"},
    ]


def test_a_file_that_is_not_parquet_is_one_invalid_record(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 not really")
    [item] = read_parquet(path)
    assert item.deal is None and item.source == str(path)
    assert str(item.error).startswith(f"{path}: not a readable Parquet file: ")


def test_without_pyarrow_a_parquet_input_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_runner: CliRunner
) -> None:
    _, path = write_book(tmp_path)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # as if it were not installed
    message = f"{path}: reading .parquet files needs pyarrow: pip install 'dealdesk[parquet]'"
    with pytest.raises(UsageError) as info:
        read_deals([str(tmp_path / "deals.jsonl"), str(path)])
    assert str(info.value) == message
    result = cli_runner.run("evaluate", str(path), env={"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert result.exit_code == 2
    assert message in result.stderr and result.stdout == ""


def test_evaluate_decides_parquet_as_the_same_deals_in_json_lines(
    tmp_path: Path, cli_runner: CliRunner
) -> None:
    as_jsonl, as_parquet = write_book(tmp_path)
    env = {"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1"}
    from_jsonl = cli_runner.run("evaluate", str(as_jsonl), env=env)
    from_parquet = cli_runner.run("evaluate", str(as_parquet), env=env)
    assert from_jsonl.exit_code == from_parquet.exit_code == 0, from_parquet.stderr
    assert from_parquet.stdout == from_jsonl.stdout
    statuses = [json.loads(line)["status"] for line in from_parquet.stdout.splitlines()]
    assert statuses == ["needs_approval", "approved", "rejected", "invalid"]
