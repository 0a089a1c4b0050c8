"""Tests for dealdesk.io.readers: one SourceDeal per deal, in order, whatever the input holds."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dealdesk.deal.validate import validate_deal
from dealdesk.errors import PluginError, UsageError
from dealdesk.io import readers, suffix_key
from dealdesk.io.readers import (
    READERS,
    DealReader,
    SourceDeal,
    read_csv,
    read_deals,
    read_json,
    read_jsonl,
    read_jsonl_stream,
    read_yaml,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "deals"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def summary(items: Iterator[SourceDeal]) -> list[tuple[str, object, str | None]]:
    return [(item.source, item.deal, item.error) for item in items]


# -- JSON ---------------------------------------------------------------------------------------


def test_read_json_object_and_list(tmp_path: Path) -> None:
    one = write(tmp_path / "one.json", '{"id": "D-1", "x": 0.1}')
    many = write(tmp_path / "many.json", '[{"id": "D-1"}, {"id": "D-2"}, 3]')
    assert summary(read_json(one)) == [(str(one), {"id": "D-1", "x": Decimal("0.1")}, None)]
    assert summary(read_json(many)) == [
        (f"{many}[0]", {"id": "D-1"}, None),
        (f"{many}[1]", {"id": "D-2"}, None),
        (f"{many}[2]", 3, None),  # not a deal: validate_deal says so in the record
    ]


def test_read_json_keeps_decimals_exact_and_skips_a_bom(tmp_path: Path) -> None:
    path = write(tmp_path / "d.json", '\ufeff{"price": 1500.123456789012345678901}'.encode())
    [item] = read_json(path)
    assert item.deal == {"price": Decimal("1500.123456789012345678901")}


def test_read_json_syntax_error_is_one_error_deal(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.json", '{"id": "D-1",\n "x": }')
    assert summary(read_json(path)) == [
        (str(path), None, f"{path}:2: invalid JSON: Expecting value at column 7")
    ]


# -- JSONL --------------------------------------------------------------------------------------


def test_read_jsonl_goes_on_after_a_bad_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.jsonl", b'{"id": "D-1"}\n\n{"id": \n\xff\xfe\n{"id": "D-5", "q": 2.50}\n'
    )
    assert summary(read_jsonl(path)) == [
        (f"{path}:1", {"id": "D-1"}, None),
        (f"{path}:3", None, f"{path}:3: invalid JSON: Expecting value at column 8"),
        (f"{path}:4", None, f"{path}:4: not valid UTF-8 at column 1"),
        (f"{path}:5", {"id": "D-5", "q": Decimal("2.50")}, None),
    ]


@pytest.mark.parametrize("encode", [False, True])
def test_read_jsonl_skips_every_blank_line_and_counts_it(encode: bool) -> None:
    # whatever str.strip() removes is blank, Unicode spaces and form feeds too
    lines = ["\ufeff\r\n", " \t\r\n", "\u2003\u00a0\x0c\n", '{"id": 1.50}\r\n', "\n", "[1, \n"]
    source = [line.encode() for line in lines] if encode else lines
    assert summary(read_jsonl_stream(source, "in")) == [
        ("in:4", {"id": Decimal("1.50")}, None),
        ("in:6", None, "in:6: invalid JSON: Expecting value at column 5"),
    ]


def test_read_jsonl_a_line_past_the_limit_is_one_invalid_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MAX_RECORD_BYTES", 64)
    at_limit = '{"id": "D-3", "note": "' + "x" * 39 + '"}'
    assert len(at_limit) == 64  # not counting its line end: still read
    long_line = '{"id": "D-2", "note": "' + "y" * 300 + '"}'
    text = f'{{"id": "D-1"}}\n{long_line}\n{at_limit}\r\n{at_limit}x\n{{"id": "D-5"}}\n'
    path = write(tmp_path / "d.jsonl", text)

    class Pieces(io.BytesIO):
        """A file that remembers the longest piece it gave out."""

        longest = 0

        def readline(self, size: int | None = -1) -> bytes:
            piece = super().readline(size)
            Pieces.longest = max(Pieces.longest, len(piece))
            return piece

    too_long = "the line is longer than 32 MiB, the limit for one deal"
    items = summary(read_jsonl_stream(Pieces(text.encode()), str(path)))
    assert items == [
        (f"{path}:1", {"id": "D-1"}, None),
        (f"{path}:2", None, f"{path}:2: {too_long}"),
        (f"{path}:3", {"id": "D-3", "note": "x" * 39}, None),
        (f"{path}:4", None, f"{path}:4: {too_long}"),
        (f"{path}:5", {"id": "D-5"}, None),
    ]
    assert Pieces.longest <= 66  # the long line was never held whole
    assert summary(read_jsonl(path)) == items
    # lines already in memory are held to the same limit
    assert summary(read_jsonl_stream(text.splitlines(keepends=True), str(path))) == items


def test_read_jsonl_stream_reads_anything_with_readline() -> None:
    class Lines:
        """Not an io class: only readline, giving text."""

        def __init__(self, text: str) -> None:
            self._text = io.StringIO(text)

        def readline(self, size: int = -1) -> str:
            return self._text.readline(size)

    assert summary(read_jsonl_stream(Lines('{"id": 1}\n\n{"id": 2}'), "x")) == [  # type: ignore[arg-type]
        ("x:1", {"id": 1}, None),
        ("x:3", {"id": 2}, None),
    ]
    assert summary(read_jsonl_stream(Lines(""), "x")) == []  # type: ignore[arg-type]


def test_read_jsonl_a_repeated_key_makes_its_line_invalid(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.jsonl",
        '{"id": "D-1", "note": "a: b"}\n'
        '{"id": "D-2", "id": "D-3"}\n'
        '{"id": "D-4", "lines": [{"sku": "A"}, {"sku": "B", "qty": 1, "sku": "C"}]}\n'
        '{"id": "D-5", "\\u0069d": "D-6"}\n'  # the same key, spelt with an escape
        '{"id": "D-7", "a": 1, "b": "\\u003a"}\n'  # an escaped colon, no repeat
        '{"id": "D-8"}\n',
    )
    assert summary(read_jsonl(path)) == [
        (f"{path}:1", {"id": "D-1", "note": "a: b"}, None),
        (f"{path}:2", None, f'{path}:2: duplicate key "id"'),
        (f"{path}:3", None, f'{path}:3: duplicate key "sku" in lines[1]'),
        (f"{path}:4", None, f'{path}:4: duplicate key "id"'),
        (f"{path}:5", {"id": "D-7", "a": 1, "b": ":"}, None),
        (f"{path}:6", {"id": "D-8"}, None),
    ]


def test_read_json_a_repeated_key_costs_only_its_item(tmp_path: Path) -> None:
    many = write(
        tmp_path / "many.json",
        '[{"id": "D-1"}, {"id": "D-2", "x": {"y": 1, "y": 2}}, {"id": "D-3"}, {"id": 4, "id": 5}]',
    )
    assert summary(read_json(many)) == [
        (f"{many}[0]", {"id": "D-1"}, None),
        (f"{many}[1]", None, f'{many}[1]: duplicate key "y" in x'),
        (f"{many}[2]", {"id": "D-3"}, None),
        (f"{many}[3]", None, f'{many}[3]: duplicate key "id"'),
    ]
    one = write(tmp_path / "one.json", '{"id": "D-1",\n "id": "D-2"}')
    assert summary(read_json(one)) == [(str(one), None, f'{one}: duplicate key "id"')]


# -- YAML ---------------------------------------------------------------------------------------


def test_read_yaml_documents_lists_and_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.yaml",
        "# a comment\nid: D-1\ndates: {close: 2026-12-15}\n---\n---\n- id: D-2\n- id: D-3\n  x: 0.1\n---\nid: D-4\n",
    )
    assert summary(read_yaml(path)) == [
        (f"{path}:2", {"id": "D-1", "dates": {"close": dt.date(2026, 12, 15)}}, None),
        (f"{path}:6", {"id": "D-2"}, None),
        (f"{path}:7", {"id": "D-3", "x": 0.1}, None),
        (f"{path}:10", {"id": "D-4"}, None),
    ]


def test_read_yaml_a_broken_document_costs_only_itself(tmp_path: Path) -> None:
    path = write(tmp_path / "d.yaml", "id: D-1\n---\nid: [D-2\nx: 1\n---\nid: D-3\n")
    assert summary(read_yaml(path)) == [
        (f"{path}:1", {"id": "D-1"}, None),
        # the error's line is the file's (line 3 of its document), not the document's
        (
            f"{path}:4",
            None,
            f"{path}:4: invalid YAML: did not find expected ',' or ']' at column 2",
        ),
        (f"{path}:6", {"id": "D-3"}, None),
    ]


def test_read_yaml_a_duplicate_key_costs_only_its_document(tmp_path: Path) -> None:
    text = "id: D-1\n---\nid: D-2\ncurrency: USD\nid: D-3\n---\nbase: &b {id: D-4}\n<<: *b\n"
    path = write(tmp_path / "d.yaml", text)
    assert summary(read_yaml(path)) == [
        (f"{path}:1", {"id": "D-1"}, None),
        (f"{path}:5", None, f"{path}:5: invalid YAML: duplicate key 'id' at column 1"),
        # a merge may bring a key the mapping has too: that is YAML, not a duplicate
        (f"{path}:7", {"base": {"id": "D-4"}, "id": "D-4"}, None),
    ]


def test_read_yaml_a_broken_single_document_is_one_invalid_record(tmp_path: Path) -> None:
    path = write(tmp_path / "d.yaml", "# one deal\nid: D-1\nlines: [{a: 1}\n")
    [(source, deal, error)] = summary(read_yaml(path))
    assert deal is None and source == f"{path}:4"
    assert error == f"{path}:4: invalid YAML: did not find expected ',' or ']' at column 1"


def test_read_yaml_an_undecodable_byte_costs_only_its_document(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.yaml",
        b"- id: D-1\n- id: D-2\n---\nid: D-3\nname: Caf\xe9 \xff\n---\nid: D-4\n",
    )
    assert summary(read_yaml(path)) == [
        (f"{path}:1", {"id": "D-1"}, None),
        (f"{path}:2", {"id": "D-2"}, None),
        (f"{path}:5", None, f"{path}:5: not valid UTF-8 at column 10"),
        (f"{path}:7", {"id": "D-4"}, None),
    ]


def test_read_yaml_splits_at_markers_only_where_documents_start(tmp_path: Path) -> None:
    text = (
        "%YAML 1.1\n"  # a directive belongs to the document after it
        "---\n"
        "id: D-1\n"
        "note: |\n"
        "  --- not a marker (indented)\n"
        "...\n"
        "# between documents\n"
        "%YAML 1.1\n"
        "--- {id: D-2}\n"
        "--- # a comment, then the document\n"
        "id: D-3\n"
        "...\n"
        "id: D-4\n"
        "---\n"
        "---\n"
    )
    path = write(tmp_path / "d.yaml", "\ufeff" + text)
    assert summary(read_yaml(path)) == [
        (f"{path}:3", {"id": "D-1", "note": "--- not a marker (indented)\n"}, None),
        (f"{path}:9", {"id": "D-2"}, None),
        (f"{path}:11", {"id": "D-3"}, None),
        (f"{path}:13", {"id": "D-4"}, None),
    ]


def test_read_yaml_reads_utf16(tmp_path: Path) -> None:
    path = write(tmp_path / "d.yaml", "id: D-1\nname: Café\n---\nid: D-2\n".encode("utf-16"))
    assert summary(read_yaml(path)) == [
        (f"{path}:1", {"id": "D-1", "name": "Café"}, None),
        (f"{path}:4", {"id": "D-2"}, None),
    ]


def test_read_yaml_is_safe_and_goes_on_after_a_bad_document(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.yaml",
        "id: D-1\n---\nid: !!python/object/apply:os.system [echo hi]\n---\nid: D-3\n",
    )
    items = summary(read_yaml(path))
    assert items[0] == (f"{path}:1", {"id": "D-1"}, None)
    assert items[1][0] == f"{path}:3" and items[1][1] is None
    assert "could not determine a constructor" in str(items[1][2])
    assert items[2] == (f"{path}:5", {"id": "D-3"}, None)


def test_read_yaml_an_impossible_date_costs_only_its_deal(tmp_path: Path) -> None:
    # PyYAML raises a bare ValueError for month 13; it used to cost the whole file
    path = write(
        tmp_path / "d.yaml",
        "- id: Y1\n  dates: {close: 2026-13-01}\n- id: Y2\n  dates: {close: 2026-12-15}\n"
        "---\nid: Y3\ndates: {start: 2026-02-30}\n---\nid: Y4\n",
    )
    items = summary(read_yaml(path))
    assert items == [
        (f"{path}:1", {"id": "Y1", "dates": {"close": "2026-13-01"}}, None),
        (f"{path}:3", {"id": "Y2", "dates": {"close": dt.date(2026, 12, 15)}}, None),
        (f"{path}:6", {"id": "Y3", "dates": {"start": "2026-02-30"}}, None),
        (f"{path}:9", {"id": "Y4"}, None),
    ]
    # the deal is read, so validation names the field
    raw = dict(items[0][1], lines=[{"category": "subscription", "quantity": 1, "unit_price": 1}])  # type: ignore[arg-type]
    assert [str(e) for e in validate_deal(raw)[1]] == [
        "dates.close: expected a date (YYYY-MM-DD), got '2026-13-01'"
    ]


def test_huge_integers_are_read_for_validation_to_refuse(tmp_path: Path) -> None:
    # Python refuses int() of more than 4300 digits with a ValueError, not a parse error
    digits = "9" * 5000
    jsonl = write(tmp_path / "d.jsonl", f'{{"id": "A", "q": {digits}}}\n{{"id": "B"}}\n')
    yaml_file = write(tmp_path / "d.yaml", f"id: C\nq: {digits}\n---\nid: D\n")
    one = write(tmp_path / "d.json", f'{{"id": "E", "q": {digits}, "n": 7}}')
    assert summary(read_jsonl(jsonl)) == [
        (f"{jsonl}:1", {"id": "A", "q": Decimal(digits)}, None),
        (f"{jsonl}:2", {"id": "B"}, None),
    ]
    assert summary(read_yaml(yaml_file)) == [
        (f"{yaml_file}:1", {"id": "C", "q": Decimal(digits)}, None),
        (f"{yaml_file}:4", {"id": "D"}, None),
    ]
    [item] = read_json(one)
    assert item.deal == {"id": "E", "q": Decimal(digits), "n": 7}
    assert type(item.deal["n"]) is int  # type: ignore[index]
    csv_file = write(tmp_path / "d.csv", f'id,lines\nF,"[{{""quantity"": {digits}}}]"\n')
    assert summary(read_csv(csv_file)) == [
        (f"{csv_file}:2", {"id": "F", "lines": [{"quantity": Decimal(digits)}]}, None)
    ]


# -- CSV ----------------------------------------------------------------------------------------

CSV_HEADER = "id,customer.region,customer.government,customer.name,lines,billing.requested_split,crm.flag,crm.note\n"


def test_read_csv_builds_nested_deals(tmp_path: Path) -> None:
    lines = '"[{""category"": ""hardware"", ""quantity"": 1, ""unit_price"": ""1500.50"", ""unit_cost"": 0.1}]"'
    path = write(
        tmp_path / "d.csv", CSV_HEADER + f'D-1,us-west,TRUE,true,{lines},"[30, 70]",false,[draft]\n'
    )
    [item] = read_csv(path)
    assert item.source == f"{path}:2" and item.error is None
    assert item.deal == {
        "id": "D-1",
        "customer": {"region": "us-west", "government": True, "name": "true"},
        "lines": [
            {
                "category": "hardware",
                "quantity": 1,
                "unit_price": "1500.50",
                "unit_cost": Decimal("0.1"),
            }
        ],
        "billing": {"requested_split": [30, 70]},
        "crm": {"flag": False, "note": "[draft]"},
    }
    deal, errors = validate_deal(item.deal)
    assert errors == [] and deal is not None
    assert deal["lines"][0]["unit_price"] == Decimal("1500.50")


def test_read_csv_empty_cells_are_absent_and_numbers_stay_text(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.csv", "id,offer.kpi_at_risk,partner.tier,partner.discount\nD-1,  ,,0.18\n"
    )
    [item] = read_csv(path)
    assert item.deal == {"id": "D-1", "partner": {"discount": "0.18"}}


def test_read_csv_bad_rows_do_not_stop_the_file(tmp_path: Path) -> None:
    text = (
        "id,lines,customer,customer.region,note\n"
        'D-1,"[{""category"": ""hardware""}]",,emea,\n'
        "\n"
        'D-2,"[oops",,,\n'
        'D-3,"[]",,,,extra\n'
        'D-4,"[]","{""name"": ""Acme""}",apac,"two\nlines"\n'
        'D-5,"[]",x,apac,\n'
        'D-6,"[]",,latam,,,\n'
    )
    path = write(tmp_path / "d.csv", text)
    items = summary(read_csv(path))
    assert [source for source, _, _ in items] == [f"{path}:{n}" for n in (2, 4, 5, 6, 8, 9)]
    assert items[0][1] == {
        "id": "D-1",
        "lines": [{"category": "hardware"}],
        "customer": {"region": "emea"},
    }
    assert items[1][2] == f"{path}:4: column 'lines': invalid JSON: Expecting value at column 2"
    assert items[2][2] == f"{path}:5: the row has 6 cells but the header has 5 columns"
    # A quoted cell may span lines; the next row is named by its own first line.
    assert items[3][1] == {
        "id": "D-4",
        "lines": [],
        "customer": {"name": "Acme", "region": "apac"},
        "note": "two\nlines",
    }
    assert items[4][2] == f"{path}:8: column 'customer': invalid JSON: Expecting value at column 1"
    # Trailing empty cells beyond the header are harmless.
    assert items[5] == (
        f"{path}:9",
        {"id": "D-6", "lines": [], "customer": {"region": "latam"}},
        None,
    )


def test_read_csv_a_row_that_cannot_be_read_keeps_the_id_of_its_id_cell(tmp_path: Path) -> None:
    # its invalid record is named by the id, as a deal that fails validation is
    text = (
        "id,lines,note\n"
        'D-1,"[oops",\n'  # lines is not JSON
        ',"[oops",\n'  # nor here, and no id
        '1001,"[]",,extra\n'  # a cell too many
        ' ,"[oops",\n'  # a blank id cell
        'D-5,"[]",ok\n'
    )
    path = write(tmp_path / "d.csv", text.encode() + b'D-6,"[]",\xff\n')
    items = list(read_csv(path))
    assert [(i.deal_id, i.error is None) for i in items] == [
        ("D-1", False),
        (None, False),
        ("1001", False),
        (None, False),  # a blank cell is an absent field
        (None, True),  # read: its record says its id
        ("D-6", False),
    ]
    no_id_column = write(tmp_path / "n.csv", 'lines\n"[oops"\n')
    assert [i.deal_id for i in read_csv(no_id_column)] == [None]


def test_read_csv_conflicting_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "id,crm,crm.stage\nD-1,won,late\nD-2,,late\n")
    assert summary(read_csv(path)) == [
        (f"{path}:2", None, f"{path}:2: column 'crm.stage' conflicts with column 'crm'"),
        (f"{path}:3", {"id": "D-2", "crm": {"stage": "late"}}, None),
    ]


def test_read_csv_duplicate_columns_make_every_row_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "id,id\nD-1,D-2\nD-3,D-4\n")
    items = summary(read_csv(path))
    assert items == [
        (f"{path}:2", None, f"{path}:2: column 'id' appears twice in the header"),
        (f"{path}:3", None, f"{path}:3: column 'id' appears twice in the header"),
    ]


def test_read_csv_an_undecodable_byte_costs_only_its_row(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.csv",
        b"id,customer.name,note\n"
        b"D-1,Caf\xc3\xa9,\n"
        b'D-2,Caf\xe9,"two\nlines"\n'  # Latin-1, not UTF-8
        b"D-3,ok,\xff\n"
        b"D-4,Zo\xc3\xab,\n",
    )
    assert summary(read_csv(path)) == [
        (f"{path}:2", {"id": "D-1", "customer": {"name": "Café"}}, None),
        (f"{path}:3", None, f"{path}:3: not valid UTF-8 in column 'customer.name' (byte 0xe9)"),
        (f"{path}:5", None, f"{path}:5: not valid UTF-8 in column 'note' (byte 0xff)"),
        (f"{path}:6", {"id": "D-4", "customer": {"name": "Zoë"}}, None),
    ]


def test_read_csv_an_undecodable_header_makes_every_row_invalid(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", b"id,n\xffote\nD-1,x\nD-2,y\n")
    assert summary(read_csv(path)) == [
        (f"{path}:2", None, f"{path}:2: the header is not valid UTF-8"),
        (f"{path}:3", None, f"{path}:3: the header is not valid UTF-8"),
    ]


def _csv_cell(value: object) -> str:
    return '"' + json.dumps(value).replace('"', '""') + '"'


def test_read_csv_a_deal_with_1500_lines_is_read(tmp_path: Path) -> None:
    lines = [
        {"category": "hardware", "quantity": 1, "unit_price": "1500.50", "unit_cost": 1000}
    ] * 1500
    cell = _csv_cell(lines)
    assert len(cell) > 131_072  # the csv module's default limit for one cell
    path = write(tmp_path / "d.csv", f"id,lines\nD-1,[]\nD-2,{cell}\nD-3,[]\n")
    default = csv.field_size_limit(131_072)  # as a fresh process has it
    try:
        items = summary(read_csv(path))
    finally:
        csv.field_size_limit(default)
    assert [(source, error) for source, _, error in items] == [
        (f"{path}:{n}", None) for n in (2, 3, 4)
    ]
    big = items[1][1]
    assert isinstance(big, dict) and len(big["lines"]) == 1500


def test_read_csv_a_row_past_the_limit_is_one_invalid_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MAX_RECORD_BYTES", 100)
    cell = _csv_cell([{"sku": "x" * 40}] * 3)
    path = write(tmp_path / "d.csv", f"id,lines\nD-1,[]\nD-2,{cell}\nD-3,[]\n")
    assert summary(read_csv(path)) == [
        (f"{path}:2", {"id": "D-1", "lines": []}, None),
        (f"{path}:3", None, f"{path}:3: the row is longer than 32 MiB, the limit for one deal"),
        (f"{path}:4", {"id": "D-3", "lines": []}, None),
    ]


@pytest.fixture
def small_csv_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CSV limits scaled down a thousandfold: a row may hold 1,000 characters and a cell
    4,000 (the csv module's own limit), so a cell past the csv module's limit is a few KB."""
    monkeypatch.setattr(readers, "MAX_RECORD_BYTES", 1000)
    monkeypatch.setattr(readers, "_CSV_FIELD_LIMIT", 4000)
    default = csv.field_size_limit(4000)
    try:
        yield
    finally:
        csv.field_size_limit(default)


def write_big_cell(path: Path, before: str, chunk: str, count: int, after: str) -> Path:
    """A file holding ``before``, ``chunk`` ``count`` times, ``after``, written a chunk at a time."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(before)
        for _ in range(count):
            out.write(chunk)
        out.write(after)
    return path


TOO_LONG = "the row is longer than 32 MiB, the limit for one deal"


@pytest.mark.usefixtures("small_csv_limits")
def test_read_csv_rows_after_a_cell_past_the_csv_modules_limit_are_read(tmp_path: Path) -> None:
    # the acceptance case scaled down: H2's one cell is 140 KB, past the csv module's 4 KB
    path = write_big_cell(
        tmp_path / "d.csv",
        "id,lines,note\r\nH1,[],a\r\nH2,[],",
        "y" * 1024,
        140,
        '\r\nH3,[],"two\nlines"\r\nH4,"[]",\r\n\r\nH5,[],"x,""y"""\r\n',
    )
    assert summary(read_csv(path)) == [
        (f"{path}:2", {"id": "H1", "lines": [], "note": "a"}, None),
        (f"{path}:3", None, f"{path}:3: {TOO_LONG}"),
        (f"{path}:4", {"id": "H3", "lines": [], "note": "two\nlines"}, None),
        (f"{path}:6", {"id": "H4", "lines": []}, None),
        (f"{path}:8", {"id": "H5", "lines": [], "note": 'x,"y"'}, None),
    ]


@pytest.mark.usefixtures("small_csv_limits")
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_read_csv_an_oversized_quoted_cell_with_line_ends_costs_its_row(
    tmp_path: Path, newline: str
) -> None:
    # 400 lines of a quoted cell: quotes, commas and line ends inside it do not end the row
    line = f'x ""quoted"", "",{newline}'
    path = write_big_cell(
        tmp_path / "d.csv",
        f'id,note,lines{newline}H1,a,[]{newline}H2,"start{newline}',
        line * 10,
        40,
        f'end""",[]{newline}H3,"b{newline}c",[]{newline}H4,d,[]{newline}',
    )
    assert summary(read_csv(path)) == [
        (f"{path}:2", {"id": "H1", "note": "a", "lines": []}, None),
        (f"{path}:3", None, f"{path}:3: {TOO_LONG}"),
        (f"{path}:405", {"id": "H3", "note": f"b{newline}c", "lines": []}, None),
        (f"{path}:407", {"id": "H4", "note": "d", "lines": []}, None),
    ]


@pytest.mark.usefixtures("small_csv_limits")
@pytest.mark.parametrize("end", ["", "\n", '"', '"\r\n'])
def test_read_csv_an_oversized_cell_in_the_last_row(tmp_path: Path, end: str) -> None:
    # unquoted or quoted (then with line ends), with a line end after it or not
    quoted = end.startswith('"')
    path = write_big_cell(
        tmp_path / "d.csv",
        "id,note\nH1,a\nH2," + ('"' if quoted else ""),
        "z" * 99 + ("\n" if quoted else "z"),
        50,
        end,
    )
    assert summary(read_csv(path)) == [
        (f"{path}:2", {"id": "H1", "note": "a"}, None),
        (f"{path}:3", None, f"{path}:3: {TOO_LONG}"),
    ]


@pytest.mark.usefixtures("small_csv_limits")
def test_read_csv_a_row_past_the_limit_is_never_held(tmp_path: Path) -> None:
    import tracemalloc

    path = write_big_cell(tmp_path / "d.csv", "id,note\nH1,", "w" * 1000, 1000, "\nH2,b\n")
    tracemalloc.start()
    try:
        items = summary(read_csv(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert items == [
        (f"{path}:2", None, f"{path}:2: {TOO_LONG}"),
        (f"{path}:3", {"id": "H2", "note": "b"}, None),
    ]
    assert peak < 200_000  # the 1 MB cell was read a piece at a time


@pytest.mark.usefixtures("small_csv_limits")
def test_read_csv_a_header_past_the_limit_makes_every_row_invalid(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "id," + "n" * 5000 + "\nD-1,a\nD-2,b\n")
    error = "the header is longer than 32 MiB, the limit for one row"
    assert summary(read_csv(path)) == [
        (f"{path}:2", None, f"{path}:2: {error}"),
        (f"{path}:3", None, f"{path}:3: {error}"),
    ]


@pytest.mark.usefixtures("small_csv_limits")
def test_evaluate_a_csv_file_with_a_cell_past_the_csv_modules_limit(
    tmp_path: Path, cli_runner: Any
) -> None:
    deal = json.loads((EXAMPLES / "book.jsonl").read_text().splitlines()[0])
    cell = _csv_cell(deal["lines"])
    assert len(cell) < 1000
    head = "id,currency,customer.name,customer.region,lines,note\n"

    def row(deal_id: str) -> str:
        return f"{deal_id},{deal['currency']},Acme,{deal['customer']['region']},{cell},"

    path = write_big_cell(
        tmp_path / "book.csv",
        f'{head}{row("H1")}\n{row("H2")}"',
        "q" * 99 + "\n",
        50,
        f'"\n{row("H3")}\n{row("H4")}\n',
    )
    result = cli_runner.run("evaluate", str(path), env={"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["deal_id"] for r in records] == ["H1", None, "H3", "H4"]
    assert [r["status"] != "invalid" for r in records] == [True, False, True, True]
    assert [e["message"] for e in records[1]["errors"]] == [f"{path}:3: {TOO_LONG}"]


# -- read_deals ---------------------------------------------------------------------------------


def test_read_deals_walks_directories_sorted_and_skips_hidden(tmp_path: Path) -> None:
    write(tmp_path / "b" / "z.jsonl", '{"id": "Z"}\n')
    write(tmp_path / "a.yaml", "id: A\n")
    write(tmp_path / "b" / "c.JSON", '{"id": "C"}')
    write(tmp_path / "notes.txt", "not a deal")
    write(tmp_path / ".hidden" / "h.json", '{"id": "H"}')
    write(tmp_path / ".h.json", '{"id": "H"}')
    ids = [item.deal["id"] for item in read_deals([str(tmp_path)])]
    assert ids == ["A", "C", "Z"]


def test_read_deals_keeps_the_order_of_paths_and_reads_stdin(tmp_path: Path) -> None:
    second = write(tmp_path / "second.json", '{"id": "S"}')
    stdin = io.StringIO('{"id": "IN-1"}\nnope\n')
    items = summary(read_deals(["-", str(second)], stdin=stdin))
    assert items == [
        ("<stdin>:1", {"id": "IN-1"}, None),
        ("<stdin>:2", None, "<stdin>:2: invalid JSON: Expecting value at column 1"),
        (str(second), {"id": "S"}, None),
    ]


def test_read_deals_reads_stdin_bytes_when_it_can() -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b'{"id": "A"}\n\xff\n{"id": "B"}\n'), encoding="utf-8")
    items = summary(read_deals(["-"], stdin=stdin))
    assert [deal for _, deal, _ in items] == [{"id": "A"}, None, {"id": "B"}]
    assert items[1][2] == "<stdin>:2: not valid UTF-8 at column 1"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.json", "missing.json: no such file or directory"),
        (
            "deals.txt",
            "deals.txt: unknown deal file type '.txt'; known: "
            ".csv, .json, .jsonl, .parquet, .yaml, .yml",
        ),
        (
            "empty",
            "empty: no deal files (.csv, .json, .jsonl, .parquet, .yaml, .yml) in this directory",
        ),
    ],
)
def test_read_deals_usage_errors_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "ok.json", '{"id": "A"}')
    write(tmp_path / "deals.txt", "x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError) as info:
        read_deals(["ok.json", name])  # every path is checked before the first deal is read
    assert str(info.value) == message
    assert info.value.exit_code == 2


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions, not root"
)
def test_read_deals_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.json", "{}")
    path.chmod(0)
    with pytest.raises(UsageError, match="cannot read"):
        list(read_deals([str(path)]))


def test_read_deals_with_plugin_readers(tmp_path: Path) -> None:
    def read_lines(path: Path) -> Iterator[Any]:
        for text in path.read_text().split():
            yield {"id": text}

    def read_broken(path: Path) -> Iterator[Any]:
        yield {"id": "first"}
        raise RuntimeError("disk on fire")

    write(tmp_path / "a.ids", "A B")
    write(tmp_path / "b.broken", "")
    write(tmp_path / "c.json", '{"id": "C"}')
    readers = {**READERS, "ids": read_lines, ".BROKEN": read_broken}
    items = summary(
        read_deals([str(tmp_path / n) for n in ("a.ids", "b.broken", "c.json")], readers=readers)
    )
    assert items == [
        (f"{tmp_path / 'a.ids'}[0]", {"id": "A"}, None),
        (f"{tmp_path / 'a.ids'}[1]", {"id": "B"}, None),
        (f"{tmp_path / 'b.broken'}[0]", {"id": "first"}, None),
        (
            str(tmp_path / "b.broken"),
            None,
            f"{tmp_path / 'b.broken'}: reader failed after 1 deals: RuntimeError: disk on fire",
        ),
        (str(tmp_path / "c.json"), {"id": "C"}, None),
    ]


@pytest.mark.parametrize("count", [0, 3])
def test_a_failing_reader_names_how_many_deals_it_gave(tmp_path: Path, count: int) -> None:
    def read_some(path: Path) -> Iterator[Any]:
        for index in range(count):
            yield SourceDeal(f"{path}#{index}", {"id": index})
        raise RuntimeError("gone")

    write(tmp_path / "a.some", "")
    items = summary(read_deals([str(tmp_path / "a.some")], readers={".some": read_some}))
    label = str(tmp_path / "a.some")
    assert items == [(f"{label}#{i}", {"id": i}, None) for i in range(count)] + [
        (label, None, f"{label}: reader failed after {count} deals: RuntimeError: gone")
    ]


def test_a_failing_plugin_reader_is_named_and_the_batch_goes_on(tmp_path: Path) -> None:
    # what the manager's wrapped plugin readers raise
    def read_broken(path: Path) -> Iterator[Any]:
        yield {"id": "first"}
        raise PluginError("xls", "reader '.xdeal'", KeyError("bad cell"))

    write(tmp_path / "a.xdeal", "")
    write(tmp_path / "b.json", '{"id": "B"}')
    readers = {**READERS, ".xdeal": read_broken}
    items = list(read_deals([str(tmp_path)], readers=readers))
    assert [(i.deal, i.error, i.plugin) for i in items] == [
        ({"id": "first"}, None, None),
        (
            None,
            f"{tmp_path / 'a.xdeal'} (after 1 deal): "
            "plugin 'xls' failed in reader '.xdeal': KeyError: 'bad cell'",
            "xls",
        ),
        ({"id": "B"}, None, None),
    ]


# -- lazy JSONL and sizes ------------------------------------------------------------------------

DAMAGED_JSONL = (
    b'\xef\xbb\xbf{"id": "D-1", "q": 1.50}\n'
    b"\n"
    b"   \r\n"
    b"\xe2\x80\x83\n"  # an em space: blank too
    b'{"id": \n'
    b"\xff\xfe\n"
    b'{"id": "D-7", "id": "D-8"}\n'
    b'{"id": "D-9", "note": "' + b"z" * 200 + b'"}\n'
    b'  [{"id": "D-10"}]\n'
    b'{"id": "D-11"}'
)


@pytest.mark.parametrize("where", ["file", "stdin"])
def test_lazy_jsonl_parsed_is_the_eager_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.setattr(readers, "MAX_RECORD_BYTES", 100)
    path = write(tmp_path / "d.jsonl", DAMAGED_JSONL)

    def read(lazy: bool) -> list[SourceDeal]:
        if where == "file":
            return list(read_deals([str(path)], lazy=lazy))
        stdin = io.TextIOWrapper(io.BytesIO(DAMAGED_JSONL), encoding="utf-8")
        return list(read_deals(["-"], stdin=stdin, lazy=lazy))

    eager, lazy = read(False), read(True)
    name = str(path) if where == "file" else "<stdin>"
    assert [item.source for item in eager] == [f"{name}:{n}" for n in (1, 5, 6, 7, 8, 9, 10)]
    assert [item.error is None for item in eager] == [True, False, False, False, False, True, True]
    # the parent only split the lines: each is parsed later, except the one past the limit
    assert [item.text is None for item in lazy] == [False] * 4 + [True] + [False] * 2
    assert lazy[4] == eager[4]
    assert [item.parsed() for item in lazy] == eager
    assert all(item.parsed() is item for item in eager)


def test_lazy_leaves_other_readers_parsing(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "id: A\n")
    write(tmp_path / "b.csv", "id\nB\n")
    items = list(read_deals([str(tmp_path)], lazy=True))
    assert [(item.deal, item.text) for item in items] == [({"id": "A"}, None), ({"id": "B"}, None)]


def test_deal_reader_says_how_much_is_read(tmp_path: Path) -> None:
    line = json.dumps({"id": "D", "note": "n" * 300}) + "\n"
    big = write(tmp_path / "a.jsonl", line * 1000)  # larger than a read buffer
    small = write(tmp_path / "b.csv", "id\nB-1\nB-2\n")
    odd = write(tmp_path / "c.ids", "C-1 C-2")

    def read_ids(path: Path) -> Iterator[Any]:
        for text in path.read_text().split():
            yield {"id": text}

    deals = read_deals(
        [str(tmp_path / n) for n in ("a.jsonl", "b.csv", "c.ids")], {**READERS, ".ids": read_ids}
    )
    assert isinstance(deals, DealReader)
    sizes = [p.stat().st_size for p in (big, small, odd)]
    assert deals.bytes_total == sum(sizes)
    assert deals.bytes_read == 0
    seen = [(item.source, deals.bytes_read) for item in deals]
    assert len(seen) == 1000 + 2 + 2
    progress = [read for _, read in seen]
    assert progress == sorted(progress)  # never backwards
    assert 0 < progress[0] < progress[999] <= sizes[0]  # within the first file, as it is read
    assert sizes[0] <= progress[1000] <= sizes[0] + sizes[1]
    assert progress[-1] == sizes[0] + sizes[1]  # a plugin reader's file counts when it is done
    assert deals.bytes_read == deals.bytes_total


def test_deal_reader_of_stdin_has_no_total() -> None:
    deals = read_deals(["-"], stdin=io.StringIO('{"id": "A"}\n'))
    assert deals.bytes_total is None
    assert [item.deal for item in deals] == [{"id": "A"}]


def test_suffix_key_names_one_reader_however_written() -> None:
    assert {suffix_key(s) for s in ("JSON", "json", ".json", ".Json")} == {".json"}


def test_read_deals_on_the_bundled_examples() -> None:
    items = list(read_deals([str(EXAMPLES)]))
    assert all(item.error is None for item in items)
    assert len(items) == 9 + 20  # nine YAML examples and the book of twenty
    statuses = [validate_deal(item.deal)[1] == [] for item in items]
    assert statuses.count(False) == 3  # invalid-missing-cost.yaml, B-13, B-14
    first_key = (EXAMPLES / "acme-risk.yaml").read_text(encoding="utf-8").splitlines().index(
        "id: D-1001"
    ) + 1
    assert items[0].source == f"{EXAMPLES / 'acme-risk.yaml'}:{first_key}"
