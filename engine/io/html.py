"""``--format html``: one self-contained HTML report of a batch (SPEC §6).

Inline CSS, inline SVG charts and a little inline JavaScript; nothing is fetched to view it.
The charts count every deal through a :class:`~dealdesk.io.summary.Summary`; the table of deals
keeps the first :data:`TABLE_ROWS` deals only, so a book of millions costs bounded memory (the
page says so). Every value goes through Jinja's autoescape: deal ids are user text.

Jinja is imported when the report is rendered, at ``close``, never by importing this module
(``dealdesk evaluate`` in another format does not load it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from dealdesk.io.summary import Summary, WriteContext, format_message, printable

__all__ = ["TABLE_ROWS", "HtmlWriter", "render_report"]

#: Deals listed in the report's table; the charts and counts cover every deal.
TABLE_ROWS = 5000

TEMPLATE = "report.html.j2"

_LABELS = {
    "approved": "Approved",
    "needs_approval": "Needs approval",
    "rejected": "Rejected",
    "invalid": "Invalid",
}


class DealRow(NamedTuple):
    """One deal of the report's table, as its cells show it."""

    deal_id: str | None
    status: str
    approvals: tuple[str, ...]
    fired: tuple[tuple[str, str], ...]  # (policy, rule)
    detail: str  # the first reason, or the first error of an invalid deal
    detail_is_error: bool


class HtmlWriter:
    """Counts every record, keeps the first :data:`TABLE_ROWS` rows, writes the page at ``close``.

    :param clock: seconds for the throughput line (``time.monotonic``); ``None`` leaves the
        line out (the same records then give the same bytes).
    """

    def __init__(
        self,
        stream: TextIO,
        context: WriteContext | None = None,
        *,
        clock: Callable[[], float] | None = time.monotonic,
        table_rows: int = TABLE_ROWS,
    ):
        self.stream = stream
        self.summary = Summary(context)
        self.rows: list[DealRow] = []
        self.table_rows = table_rows
        self.provenance: Mapping[str, Any] = {}
        self.clock = clock
        self.started = clock() if clock is not None else None

    def write(self, record: Mapping[str, Any]) -> None:
        """Count the record; keep its row while the table has room."""
        self.summary.add(record)
        if not self.provenance and record.get("provenance"):
            self.provenance = record["provenance"]
        if len(self.rows) < self.table_rows:
            self.rows.append(deal_row(record))

    def close(self) -> None:
        """Write the whole page."""
        elapsed = None
        if self.clock is not None and self.started is not None:
            elapsed = self.clock() - self.started
        self.stream.write(render_report(self.summary, self.rows, self.provenance, elapsed))


def deal_row(record: Mapping[str, Any]) -> DealRow:
    """The table row of one record."""
    status = str(record.get("status") or "")
    errors = record.get("errors") or ()
    reasons = record.get("reasons") or ()
    if status == "invalid" and errors:
        detail, is_error = format_message(errors[0]), True
    elif reasons:
        detail, is_error = format_message(reasons[0]), False
    else:
        detail, is_error = "", False
    policies = record.get("policies") or {}
    fired = tuple(
        (printable(policy), printable(rule))
        for policy, result in policies.items()
        for rule in (result or {}).get("fired", ())
    )
    deal_id = record.get("deal_id")
    return DealRow(
        None if deal_id is None else printable(deal_id),
        printable(status),
        tuple(printable(role) for role in record.get("approvals") or ()),
        fired,
        printable(detail),
        is_error,
    )


def render_report(
    summary: Summary,
    rows: list[DealRow],
    provenance: Mapping[str, Any] | None = None,
    elapsed: float | None = None,
) -> str:
    """The report page for ``summary`` with ``rows`` in its table.

    :param provenance: a record's provenance (ruleset versions, digest) for the page header.
    :param elapsed: seconds the run took, for the throughput line; ``None`` leaves it out.
    """
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,  # deal ids, messages and descriptions are text, never markup
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["count"] = lambda n: f"{n:,}"
    return env.get_template(TEMPLATE).render(_page(summary, rows, provenance or {}, elapsed))


def _page(
    summary: Summary, rows: list[DealRow], provenance: Mapping[str, Any], elapsed: float | None
) -> dict[str, Any]:
    """What the template draws, every number computed here."""
    total = summary.deals
    statuses = []
    start = 0.0
    for status, count in summary.status_counts():
        share = 100 * count / total if total else 0.0
        statuses.append(
            {
                "status": printable(status),
                "label": _LABELS.get(status, printable(status)),
                "count": count,
                "percent": _percent(share),
                "share": round(share, 3),
                "offset": round(25 - start, 3),  # the ring starts at 12 o'clock
                "css": _css(status),
            }
        )
        start += share
    approvals = summary.approval_counts()
    most = max((n for _, n in approvals), default=0)
    reasons = summary.top_reasons()
    most_reasons = max((r.deals for r in reasons), default=0)
    errors = summary.top_errors()
    most_errors = max((n for _, n in errors), default=0)
    rulesets = provenance.get("rulesets") or {}
    return {
        "deals": total,
        "statuses": statuses,
        "approvals": [
            {
                "role": printable(role),
                "count": n,
                "width": _width(n, most),
                "percent": _percent(100 * n / total if total else 0),
            }
            for role, n in approvals
        ],
        "reasons": [
            {
                "policy": printable(r.policy),
                "rule": printable(r.rule),
                "description": printable(r.description),
                "count": r.deals,
                "width": _width(r.deals, most_reasons),
            }
            for r in reasons
        ],
        "errors": [
            {"kind": printable(kind), "count": n, "width": _width(n, most_errors)}
            for kind, n in errors
        ],
        "throughput": _throughput(total, elapsed),
        "rulesets": [(printable(k), printable(v)) for k, v in rulesets.items()],
        "digest": printable(provenance.get("digest") or ""),
        "version": printable(provenance.get("dealdesk") or ""),
        "rows": rows,
        "truncated": total > len(rows),
        "table_rows": len(rows),
        "order": {s["status"]: i for i, s in enumerate(statuses)},
        "labels": _LABELS,
        "css": _css,
    }


def _throughput(deals: int, elapsed: float | None) -> str | None:
    """``in 0.42 s · 69 deals/s`` (the deals are counted beside it)."""
    if elapsed is None:
        return None
    rate = f"{deals / elapsed:,.0f}" if elapsed > 0 else "-"
    return f"in {elapsed:,.2f} s · {rate} deals/s"


def _css(status: str) -> str:
    """The class suffix of a status (``needs-approval``); another status looks like invalid."""
    return status.replace("_", "-") if status in _LABELS else "other"


def _width(count: int, most: int) -> float:
    """A bar's width in percent of the longest one (at least a sliver when it counts)."""
    return round(max(100 * count / most, 0.5), 2) if most and count else 0.0


def _percent(share: float) -> str:
    """``21%``; ``<1%`` for a share that would round to nothing."""
    if 0 < share < 1:
        return "<1%"
    return f"{share:.0f}%"
