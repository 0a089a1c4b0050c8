"""Tests for dealdesk.io.html: the self-contained batch report, read as text and in Chromium.

The browser tests drive Debian's chromium (``.ci/run`` installs it) through Playwright, with no
browser download. Without chromium they skip, or fail when ``DEALDESK_REQUIRE_CHROMIUM=1``
(tox sets it), so CI cannot pass them by skipping.
"""

from __future__ import annotations

import io
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from helpers import deal

from dealdesk.app import App
from dealdesk.io.html import TABLE_ROWS, HtmlWriter
from dealdesk.io.summary import WriteContext, printable
from dealdesk.record import STATUS_ORDER

EXAMPLES = Path(__file__).parents[2] / "examples" / "deals"
SCRIPT_ID = "<script>alert('owned')</script>"


@pytest.fixture(scope="module")
def records(app: App) -> list[dict[str, Any]]:
    """The example deals' records and a few generated ones: a hostile id, an id with terminal
    escapes, an unknown region, a deal with no lines."""
    made = [
        deal(id=SCRIPT_ID),
        deal(id="G-\x1b[31mred\u202e", offer={"type": "new_market", "pricing": "fixed"}),
        deal(id="G-3", customer={"name": "X", "segment": "mouse", "region": "pluto"}),
        deal(id="G-4", lines=[]),
    ]
    examples = [app.evaluate_source(s) for s in app.read([str(EXAMPLES)])]
    return examples + [app.pipeline.decide([raw])[0] for raw in made]


def report(
    records: list[dict[str, Any]],
    context: WriteContext | None,
    *,
    clock: Any = None,
    table_rows: int = TABLE_ROWS,
) -> str:
    stream = io.StringIO()
    writer = HtmlWriter(stream, context, clock=clock, table_rows=table_rows)
    for record in records:
        writer.write(record)
    writer.close()
    return stream.getvalue()


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of each ``<td>``."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.cells: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.cells.append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(text: str) -> Tags:
    tags = Tags()
    tags.feed(text)
    return tags


# -- the page as text


def test_a_deal_id_is_text_never_markup(
    records: list[dict[str, Any]], context: WriteContext
) -> None:
    text = report(records, context)
    page = parse(text)
    assert [tag for tag, _ in page.tags].count("script") == 1  # the page's own
    assert SCRIPT_ID in page.cells  # shown as the characters it is
    assert "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;" in text


def test_the_page_needs_no_network(records: list[dict[str, Any]], context: WriteContext) -> None:
    text = report(records, context)
    page = parse(text)
    assert not [attrs for _, attrs in page.tags if "src" in attrs or "href" in attrs]
    assert not {tag for tag, _ in page.tags} & {"link", "img", "iframe", "object", "embed"}
    assert "url(" not in text and "@import" not in text and "fetch(" not in text
    assert "<svg" in text and "<style>" in text


def test_the_page_repeats_without_a_clock_and_shows_throughput_with_one(
    records: list[dict[str, Any]], context: WriteContext
) -> None:
    assert report(records, context) == report(records, context)
    assert 'id="throughput"' in report(records, context)
    ticks = iter([10.0, 12.5])
    timed = report(records, context, clock=lambda: next(ticks))
    n = len(records)
    assert f"<strong>{n}</strong> deals in 2.50 s · {n / 2.5:,.0f} deals/s</li>" in timed


def test_a_long_book_keeps_the_first_rows_and_counts_every_deal(
    records: list[dict[str, Any]], context: WriteContext
) -> None:
    book = records * 3
    text = report(book, context, table_rows=7)
    page = parse(text)
    assert sum(1 for tag, _ in page.tags if tag == "tr") == 7 + 1  # the header row
    assert f"The table lists the first 7 of {len(book)} deals" in text
    counts = Counter(r["status"] for r in book)
    legend = {
        a["data-status"]: a["data-count"] for t, a in page.tags if t == "li" and "data-status" in a
    }
    for status in STATUS_ORDER:
        assert legend[status] == str(counts[status])
    assert "The table lists" not in report(records, context)


def test_the_table_holds_one_row_per_deal_with_its_first_reason_or_error(
    records: list[dict[str, Any]], context: WriteContext
) -> None:
    page = parse(report(records, context))
    rows = [page.cells[i : i + 5] for i in range(0, len(page.cells), 5)]
    assert len(rows) == len(records)
    for row, record in zip(rows, records, strict=True):
        if record["status"] == "invalid":
            error = record["errors"][0]
            expected = f"{error['path']}: {error['message']}" if error["path"] else error["message"]
            assert row[4] == expected
        elif record["reasons"]:
            assert row[4] == record["reasons"][0]["message"]
        assert row[2] == "".join(record["approvals"])


# -- the page in Chromium


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium under Playwright (no browser download); skipped when absent unless
    ``DEALDESK_REQUIRE_CHROMIUM=1``."""
    required = os.environ.get("DEALDESK_REQUIRE_CHROMIUM") == "1"
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            pytest.fail("DEALDESK_REQUIRE_CHROMIUM=1 but playwright is not installed")
        pytest.skip("playwright is not installed")
    if executable is None:
        if required:
            pytest.fail(
                "DEALDESK_REQUIRE_CHROMIUM=1 but chromium is not on PATH (.ci/run installs it)"
            )
        pytest.skip("chromium is not installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable)
        yield launched
        launched.close()


@pytest.fixture
def page(
    browser: Any, records: list[dict[str, Any]], context: WriteContext, tmp_path: Path
) -> Iterator[Any]:
    path = tmp_path / "report.html"
    path.write_text(report(records, context), encoding="utf-8")
    opened = browser.new_page(viewport={"width": 1280, "height": 900})
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    opened.set_default_timeout(30_000)
    opened.goto(path.as_uri())
    opened.dialogs = dialogs
    yield opened
    opened.close()


def visible_rows(page: Any) -> list[list[str]]:
    return page.eval_on_selector_all(
        "#deals tbody tr:not([hidden])",
        "rows => rows.map(r => Array.from(r.cells, c => c.textContent.trim()))",
    )


def test_the_status_chart_shows_the_counts(page: Any, records: list[dict[str, Any]]) -> None:
    counts = Counter(r["status"] for r in records)
    for status in STATUS_ORDER:
        item = page.locator(f'#status-chart [data-status="{status}"]')
        assert item.locator(".count").inner_text() == str(counts[status])
        assert item.is_visible()
    segments = page.locator("#status-chart circle.seg")
    assert segments.count() == sum(1 for s in STATUS_ORDER if counts[s])
    total = page.locator("#status-chart .ring-total").text_content()
    assert total == str(len(records))
    # each ring segment's arc is its share of the deals
    shares = [
        float(s.split()[0])
        for s in segments.evaluate_all("c => c.map(x => x.getAttribute('stroke-dasharray'))")
    ]
    expected = [100 * counts[s] / len(records) for s in STATUS_ORDER if counts[s]]
    assert shares == pytest.approx(expected, abs=0.01)


def test_the_approval_and_reason_charts_count_deals(
    page: Any, records: list[dict[str, Any]], context: WriteContext
) -> None:
    roles = Counter(role for r in records for role in set(r["approvals"]))
    shown = page.eval_on_selector_all(
        "#approval-chart li",
        "items => items.map(i => [i.dataset.role, i.querySelector('.count').firstChild.textContent])",
    )
    assert {role: int(n) for role, n in shown} == dict(roles)
    assert [role for role, _ in shown] == [a for a in context.approvers if a in roles]
    top = page.locator("#reason-chart li").first
    rules = Counter(
        key for r in records for key in {(x["policy"], x["rule"]) for x in r["reasons"]}
    )
    (policy, rule), most = rules.most_common(1)[0]
    assert top.get_attribute("data-rule") == rule
    assert top.locator(".count").inner_text() == str(most)
    assert top.locator(".rule-text").inner_text() == context.describe(policy, rule)


def test_searching_filters_the_rows(page: Any, records: list[dict[str, Any]]) -> None:
    assert len(visible_rows(page)) == len(records)
    page.fill("#search", "D-9001")
    assert [row[0] for row in visible_rows(page)] == ["D-9001"]
    assert page.locator("#shown").inner_text() == "1"
    page.fill("#search", "public_sector_legal")
    expected = [r["deal_id"] for r in records if "public_sector_legal" in r["approvals"]]
    assert [row[0] for row in visible_rows(page)] == expected and expected
    page.fill("#search", "")
    page.click('.chip[data-filter="invalid"]')
    invalid = [printable(r["deal_id"] or "no deal id") for r in records if r["status"] == "invalid"]
    assert [row[0] for row in visible_rows(page)] == invalid
    page.click('.chip[data-filter=""]')
    assert len(visible_rows(page)) == len(records)


def test_clicking_a_header_sorts(page: Any, records: list[dict[str, Any]]) -> None:
    page.click("#deals th:nth-child(2)")  # Status
    statuses = [row[1] for row in visible_rows(page)]
    labels = ["Approved", "Needs approval", "Rejected", "Invalid"]
    assert statuses == sorted(statuses, key=labels.index)
    assert page.get_attribute("#deals th:nth-child(2)", "aria-sort") == "ascending"
    page.click("#deals th:nth-child(2)")
    assert [row[1] for row in visible_rows(page)] == sorted(
        statuses, key=labels.index, reverse=True
    )
    page.click("#deals th:nth-child(3)")  # Approvals: by how many
    counts = page.eval_on_selector_all(
        "#deals tbody tr", "rows => rows.map(r => r.cells[2].querySelectorAll('.tag').length)"
    )
    assert counts == sorted(counts) and counts[-1] > counts[0]
    page.click("#deals th:nth-child(1)")  # Deal: ids in natural order (B-2 before B-10)
    ids = [row[0] for row in visible_rows(page)]
    assert ids.index("B-02") < ids.index("B-10") < ids.index("B-20")
    assert page.get_attribute("#deals th:nth-child(2)", "aria-sort") == "none"


def test_a_script_in_a_deal_id_stays_text(page: Any, tmp_path: Path) -> None:
    cell = page.locator("#deals td.id", has_text="alert")
    assert cell.text_content() == SCRIPT_ID
    assert page.evaluate("document.scripts.length") == 1
    assert page.dialogs == []
    # the id with terminal escapes shows them as text
    assert page.locator("#deals td.id", has_text="G-").first.text_content().startswith("G-")
    assert page.locator("#deals td.id", has_text="\\x1b[31mred\\u202e").count() == 1
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the lead (or CI) may keep the screenshot to look at
    if os.environ.get("DEALDESK_REPORT_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["DEALDESK_REPORT_SCREENSHOT"])


def test_a_long_book_in_the_browser(
    browser: Any, records: list[dict[str, Any]], context: WriteContext, tmp_path: Path
) -> None:
    book = records * 4
    path = tmp_path / "book.html"
    path.write_text(report(book, context, table_rows=10), encoding="utf-8")
    opened = browser.new_page()
    opened.goto(path.as_uri())
    assert opened.locator("#deals tbody tr").count() == 10
    assert re.search(rf"first 10 of {len(book)} deals", opened.locator("#truncated").inner_text())
    approved = sum(r["status"] == "approved" for r in book)
    assert opened.locator('[data-status="approved"] .count').inner_text() == str(approved)
    opened.close()
