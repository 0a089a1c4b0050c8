"""Tests for dealdesk.io.summary: a batch's counts from real records, in bounded memory."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers import deal

from dealdesk.app import App, build
from dealdesk.io.summary import Summary, WriteContext, error_kind, printable
from dealdesk.record import STATUS_ORDER
from dealdesk.testing import CliRunner

EXAMPLES = Path(__file__).parents[2] / "examples" / "deals"


@pytest.fixture(scope="module")
def app() -> App:
    return build(autoload=False)


@pytest.fixture(scope="module")
def records(app: App) -> list[dict[str, Any]]:
    """Every example deal's record, plus a few made here (one id with terminal escapes)."""
    made = [
        deal(id="G-1"),
        deal(id="G-\x1b[31mRED\x1b[0m\u202e", lines=[]),
        deal(id="G-3", customer={"name": "X", "segment": "mouse", "region": "pluto"}),
    ]
    sources = [*app.read([str(EXAMPLES)])]
    return [app.evaluate_source(s) for s in sources] + [
        app.pipeline.decide([raw])[0] for raw in made
    ]


@pytest.fixture(scope="module")
def context(app: App) -> WriteContext:
    return WriteContext.of(app.policy_set)


def summarize(records: list[dict[str, Any]], context: WriteContext | None) -> Summary:
    summary = Summary(context)
    for record in records:
        summary.add(record)
    return summary


def test_counts_every_status_in_spec_order(records: list[dict[str, Any]]) -> None:
    summary = summarize(records, None)
    expected = Counter(r["status"] for r in records)
    assert summary.deals == len(records)
    assert summary.status_counts() == [(s, expected[s]) for s in STATUS_ORDER]
    assert all(expected[s] for s in STATUS_ORDER)  # the examples cover all four


def test_all_four_statuses_show_even_at_zero() -> None:
    assert Summary().text() == "0 deals: 0 approved, 0 needs_approval, 0 rejected, 0 invalid\n"


def test_approvals_count_deals_per_role_in_rank_order(
    records: list[dict[str, Any]], context: WriteContext
) -> None:
    summary = summarize(records, context)
    expected = Counter(role for r in records for role in set(r["approvals"]))
    counts = summary.approval_counts()
    assert dict(counts) == dict(expected)
    ranks = [context.approvers.index(role) for role, _ in counts]
    assert ranks == sorted(ranks) and len(counts) > 3


def test_unranked_roles_come_after_the_ranked_ones() -> None:
    summary = Summary(WriteContext(approvers=("deal_desk", "cfo")))
    for approvals in (["cfo", "zeta"], ["alpha", "deal_desk"], ["cfo"]):
        summary.add({"status": "needs_approval", "approvals": approvals})
    assert summary.approval_counts() == [("deal_desk", 1), ("cfo", 2), ("alpha", 1), ("zeta", 1)]


def test_top_reasons_are_grouped_by_rule_with_the_rulesets_description(
    records: list[dict[str, Any]], context: WriteContext
) -> None:
    summary = summarize(records, context)
    per_rule = Counter(
        (policy, rule)
        for r in records
        for policy, rule in {(x["policy"], x["rule"]) for x in r["reasons"]}
    )
    top = summary.top_reasons()
    assert len(top) == min(Summary.TOP, len(per_rule))
    assert [r.deals for r in top] == sorted((r.deals for r in top), reverse=True)
    for reason in top:
        assert reason.deals == per_rule[(reason.policy, reason.rule)]
        assert reason.description == context.descriptions[(reason.policy, reason.rule)]
    # BM-8 gives differently worded reasons (consumption, KPI, gain share): one line for all
    bm8 = next(r for r in top if r.rule == "BM-8")
    messages = {x["message"] for r in records for x in r["reasons"] if x["rule"] == "BM-8"}
    assert len(messages) > 2
    assert bm8.description.startswith("Outcome-based pricing")
    text = summary.text()
    assert f"  {bm8.deals}  billing-milestone BM-8  Outcome-based pricing" in text
    assert not any(message in text for message in messages)  # no one deal's numbers


def test_a_table_id_shows_the_tables_description(context: WriteContext) -> None:
    summary = Summary(context)
    summary.add({"status": "needs_approval", "reasons": [{"policy": "partner-margin", "rule": "PM-5", "message": "A 14.29% line discount"}]})  # fmt: skip
    assert summary.top_reasons()[0].description == (
        "Discount authority by the largest line discount and the contract size."
    )


def test_without_a_context_a_rule_is_described_by_its_id(records: list[dict[str, Any]]) -> None:
    summary = summarize(records, None)
    top = summary.top_reasons()
    assert top and all(r.description == r.rule for r in top)
    assert f"  {top[0].deals}  {top[0].policy} {top[0].rule}  {top[0].rule}\n" in summary.text()


def test_a_reason_counts_once_per_deal() -> None:
    summary = Summary()
    twice = [{"policy": "p", "rule": "R", "message": f"part {n}"} for n in (1, 2)]
    summary.add({"status": "approved", "reasons": twice})
    summary.add({"status": "approved", "reasons": twice[:1]})
    assert [tuple(r) for r in summary.top_reasons()] == [("p", "R", "R", 2)]


def test_reasons_without_a_rule_group_by_the_shape_of_their_message() -> None:
    summary = Summary()
    for n in (3, 14, 15):
        summary.add({"status": "approved", "reasons": [f"margin {n}% is low"]})
    assert [(r.rule, r.deals) for r in summary.top_reasons()] == [("margin #% is low", 3)]


def test_flags_count_per_rule_and_unknown_deal_keys_by_kind(app: App) -> None:
    summary = Summary(WriteContext.of(app.policy_set))
    typo = deal(id="F-1", partner={"teir": "gold"})
    for raw in (typo, {**typo, "id": "F-2"}, deal(id="F-3")):
        summary.add(app.pipeline.decide([raw])[0])
    flags = {(f.policy, f.rule): f.deals for f in summary.top_flags()}
    assert flags == {("", "partner.teir: unknown field; did you mean partner.tier?"): 2}
    assert "\nTop flags (deals per rule or kind):\n  2  partner.teir: unknown field" in (
        summary.text()
    )
    ruled = Summary()
    flag = {"policy": "partner-margin", "rule": "PM-10", "message": "low margin"}
    ruled.add({"status": "approved", "flags": [flag, flag]})
    assert [tuple(f) for f in ruled.top_flags()] == [("partner-margin", "PM-10", "PM-10", 1)]


def test_errors_of_invalid_deals_group_by_kind(records: list[dict[str, Any]]) -> None:
    summary = summarize(records, None)
    invalid = [r for r in records if r["status"] == "invalid"]
    kinds = dict(summary.top_errors())
    # the two example deals with region 'mars' and the generated one with 'pluto': one kind
    region = "customer.region: unknown value '…'; expected one of: us-west, us-central, us-east, emea, apac, latam"
    assert kinds[region] == sum(
        any(e["path"] == "customer.region" for e in r["errors"]) for r in invalid
    )
    assert kinds[region] >= 3
    assert "lines[#].quantity: must not be negative, got -#" in kinds
    assert all("mars" not in kind and "pluto" not in kind for kind in kinds)
    assert "\nTop errors (invalid deals per kind):\n" in summary.text()


def test_error_kind_masks_numbers_quotes_and_locations() -> None:
    assert error_kind("deals.jsonl:5001: undecodable bytes at offset 17") == (
        "undecodable bytes at offset #"
    )
    assert error_kind("book.csv:12:3: cell over 131,072 characters") == ("cell over # characters")
    assert error_kind('duplicate deal id "D-1001"') == "duplicate deal id '…'"
    assert error_kind("lines[12].unit_cost: missing") == "lines[#].unit_cost: missing"


def test_kinds_are_bounded_and_the_rest_count_as_other() -> None:
    summary = Summary()
    summary.MAX_KINDS = 3
    for n in range(10):
        summary.add({"status": "invalid", "errors": [{"path": f"f{'x' * n}", "message": "bad"}]})
    kinds = dict(summary.top_errors())
    assert len(summary.errors) == 4
    assert kinds[Summary.OTHER] == 7 and sum(kinds.values()) == 10


def test_text_strips_terminal_control_from_every_value(records: list[dict[str, Any]]) -> None:
    summary = Summary()
    summary.add(
        {
            "status": "needs\x1b]0;owned\x07",
            "approvals": ["cfo\x1b[2J"],
            "reasons": [{"policy": "p\u202e", "rule": "R\r\n", "message": "m"}],
        }
    )
    text = summary.text(elapsed=1.0)
    assert "\x1b" not in text and "\u202e" not in text and "\r" not in text
    assert "1 needs\\x1b]0;owned\\x07" in text
    assert "  1  cfo\\x1b[2J\n" in text
    assert "  1  p\\u202e R\\x0d\\x0a  R\\x0d\\x0a\n" in text
    assert text.count("\n") == len(text.splitlines())  # no line break came from a value


def test_printable_escapes_controls_and_keeps_other_text() -> None:
    assert printable("D-1\x1b[31m") == "D-1\\x1b[31m"
    assert printable("a\u2066b\u2069\x85\x7f\x00") == "a\\u2066b\\u2069\\x85\\x7f\\x00"
    assert printable("Break-fix — déjà 東京 €5") == "Break-fix — déjà 東京 €5"
    assert printable(42) == "42"


def test_throughput_is_given_by_the_caller(records: list[dict[str, Any]]) -> None:
    summary = summarize(records, None)
    n = len(records)
    line = f"Throughput: {n} deals in 2.00 s ({n / 2:,.0f} deals/s)\n"
    assert summary.text(elapsed=2.0).splitlines(keepends=True)[1] == line
    assert "Throughput" not in summary.text()
    assert "(- deals/s)" in summary.text(elapsed=0.0)


def test_watch_counts_what_passes_through_unchanged(records: list[dict[str, Any]]) -> None:
    summary = Summary()
    assert list(summary.watch(iter(records))) == records
    assert summary.deals == len(records)


def test_large_counts_have_thousands_separators() -> None:
    summary = Summary()
    for _ in range(1200):
        summary.add({"status": "approved", "approvals": ["deal_desk"]})
    text = summary.text()
    assert text.startswith("1,200 deals: 1,200 approved, 0 needs_approval,")
    assert "  1,200  deal_desk\n" in text


@pytest.mark.parametrize("workers", ["0", "1"])
@pytest.mark.parametrize("engine", ["native", "columnar"])
def test_the_run_summary_counts_flags_however_records_are_made(
    tmp_path: Path, cli_runner: CliRunner, workers: str, engine: str
) -> None:
    # a worker (and the columnar engine's templates) send the summary's keys only: flags too
    typo = deal(id="F-1", partner={"teir": "gold"})
    book = tmp_path / "book.jsonl"
    book.write_text("".join(json.dumps({**typo, "id": f"F-{i}"}) + "\n" for i in range(3)))
    result = cli_runner.run(
        "evaluate",
        str(book),
        "-o",
        str(tmp_path / "out.jsonl"),
        "--workers",
        workers,
        "--engine",
        engine,
        env={"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    assert result.exit_code == 0, result.stderr
    assert (
        "\nTop flags (deals per rule or kind):\n  3  partner.teir: unknown field" in result.stderr
    )
