"""The end-of-run summary of a batch: counts per status, approval load, top reasons, flags and
errors.

:class:`Summary` takes decision records one at a time and keeps only counters, so a book of
millions of deals costs the same memory as ten. ``--format table`` writes its text, the CLI
prints it on standard error after every ``evaluate`` run, and the HTML report draws it.

:class:`WriteContext` is what the outputs know of the policy set: each rule's and table's
description (a reason is summarised by its rule, not by one deal's message), the approvers'
rank order and each policy's declared outputs (the CSV columns). Everything works without one:
descriptions then fall back to rule ids.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from dealdesk.record import STATUS_ORDER

if TYPE_CHECKING:
    from dealdesk.rules.policyset import PolicySet

__all__ = [
    "RuleCount",
    "Summary",
    "WriteContext",
    "error_kind",
    "format_message",
    "printable",
]


@dataclass(frozen=True)
class WriteContext:
    """What writers and the summary know of the policy set the records came from.

    :ivar descriptions: ``(policy, rule or table id)`` → the ruleset's description of it.
    :ivar approvers: approver roles in rank order (``rulesets/approvers.yaml``).
    :ivar outputs: policy → its declared output names, in declaration order; policies in the
        order of the policy set (by name).
    """

    descriptions: Mapping[tuple[str, str], str] = field(default_factory=dict)
    approvers: tuple[str, ...] = ()
    outputs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, policy_set: PolicySet) -> WriteContext:
        """The context of a loaded policy set."""
        descriptions: dict[tuple[str, str], str] = {}
        for name, policy in policy_set.policies.items():
            for ruleset in policy.rulesets:
                for unit in ruleset.units():
                    if unit.description.strip():
                        # folded YAML (`>-`) and long lines read as one line in a summary
                        descriptions[(name, unit.id)] = " ".join(unit.description.split())
        return cls(
            descriptions,
            tuple(policy_set.approvers),
            {name: tuple(policy.outputs) for name, policy in policy_set.policies.items()},
        )

    def describe(self, policy: str, rule: str) -> str:
        """The rule's (or table's) description, or its id when the ruleset gives none."""
        return self.descriptions.get((policy, rule)) or rule


# C0 and C1 controls, DEL, and the invisible characters that reorder or hide text on screen
# (bidi embeddings, overrides and isolates, marks, line and paragraph separators)
_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object) -> str:
    """``value`` as text safe for a terminal: every control character written as an escape.

    ``"D-1\\x1b[31m"`` (an ANSI colour code) becomes the literal text ``D-1\\x1b[31m``; a
    bidi override, a newline or a tab likewise, so a value can neither restyle the terminal,
    move the cursor, reorder what follows nor break a line.
    """
    text = value if isinstance(value, str) else str(value)
    return _CONTROL.sub(_escape, text)


# "deals.jsonl:5: " / "deals.csv:12:3: " before a reader's message: where, not what
_LOCATION = re.compile(r"^[^\s:]+(?::\d+){1,2}: ")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def error_kind(message: str) -> str:
    """What kind of error ``message`` is: its text with locations, quoted values and numbers
    masked, so ``lines[0].quantity: must not be negative, got -2`` and the same for line 3
    count as one kind (``lines[#].quantity: must not be negative, got -#``)."""
    text = _LOCATION.sub("", message)
    text = _QUOTED.sub("'…'", text)
    return _NUMBER.sub("#", text)


class RuleCount(NamedTuple):
    """One line of the top reasons: how many deals a rule gave a reason to."""

    policy: str
    rule: str
    description: str
    deals: int


class Summary:
    """Counts of a batch's records, built one record at a time (:meth:`add`).

    Memory is bounded: counters per status, role, rule and error kind, at most
    :data:`MAX_KINDS` reason groups and error kinds each (the rest count as "other").

    Typical use: ``summary = Summary(WriteContext.of(app.policy_set))``, pass the records
    through :meth:`watch` to the writer, then print :meth:`text` with the elapsed time.
    """

    TOP = 10
    #: distinct reason groups and error kinds kept; rulesets have far fewer rules than this
    MAX_KINDS = 1000
    OTHER = "(other kinds)"

    def __init__(self, context: WriteContext | None = None):
        self.context = context or WriteContext()
        self.deals = 0
        self.statuses: Counter[str] = Counter()
        self.roles: Counter[str] = Counter()
        self.rules: Counter[tuple[str, str]] = Counter()
        self.flags: Counter[tuple[str, str]] = Counter()
        self.errors: Counter[str] = Counter()

    def add(self, record: Mapping[str, Any]) -> None:
        """Count one record: its status, each approver it needs, each rule that gave a reason
        and each that raised a flag (once per deal), and each kind of error of an invalid deal
        (once per deal)."""
        self.deals += 1
        status = str(record.get("status") or "")
        self.statuses[status] += 1
        # most records of a book need no approval and give no reason nor flag
        approvals, reasons, flags = (
            record.get("approvals"),
            record.get("reasons"),
            record.get("flags"),
        )
        if approvals:
            self.roles.update({str(role) for role in approvals})
        if reasons:
            _count(self.rules, _by_rule(reasons), self.MAX_KINDS, ("", self.OTHER))
        if flags:
            _count(self.flags, _by_rule(flags), self.MAX_KINDS, ("", self.OTHER))
        if status == "invalid":
            kinds = {error_kind(format_message(error)) for error in record.get("errors") or ()}
            _count(self.errors, kinds, self.MAX_KINDS, self.OTHER)

    def watch(self, records: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        """``records`` unchanged, each counted as it passes (wrap what goes to the writer)."""
        for record in records:
            self.add(record)
            yield record

    # -- what the text and the HTML report show

    def status_counts(self) -> list[tuple[str, int]]:
        """``(status, deals)`` for the four statuses in SPEC order, zeros included, then any
        other status a plugin produced."""
        others = sorted(s for s in self.statuses if s not in STATUS_ORDER)
        return [(s, self.statuses[s]) for s in [*STATUS_ORDER, *others]]

    def approval_counts(self) -> list[tuple[str, int]]:
        """``(role, deals needing it)`` in the approvers' rank order; unranked roles after."""
        rank = {role: i for i, role in enumerate(self.context.approvers)}
        roles = sorted(self.roles, key=lambda r: (rank.get(r, len(rank)), r))
        return [(role, self.roles[role]) for role in roles]

    def top_reasons(self, top: int | None = None) -> list[RuleCount]:
        """The rules that gave reasons to the most deals, with their descriptions."""
        return self._top(self.rules, top)

    def top_flags(self, top: int | None = None) -> list[RuleCount]:
        """The rules (and kinds of rule-less flag, such as unknown deal keys) that flagged the
        most deals."""
        return self._top(self.flags, top)

    def _top(self, counter: Counter[tuple[str, str]], top: int | None) -> list[RuleCount]:
        ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
        return [
            RuleCount(policy, rule, self.context.describe(policy, rule) if policy else rule, n)
            for (policy, rule), n in ranked[: top or self.TOP]
        ]

    def top_errors(self, top: int | None = None) -> list[tuple[str, int]]:
        """``(kind, invalid deals)`` for the most frequent kinds of error."""
        ranked = sorted(self.errors.items(), key=lambda item: (-item[1], item[0]))
        return ranked[: top or self.TOP]

    def throughput(self, elapsed: float) -> str:
        """``29 deals in 0.42 s (69 deals/s)``."""
        rate = f"{self.deals / elapsed:,.0f}" if elapsed > 0 else "-"
        return f"{_deals(self.deals)} in {elapsed:,.2f} s ({rate} deals/s)"

    def text(self, elapsed: float | None = None) -> str:
        """The summary as plain text, every value made :func:`printable`; ends with a newline.

        :param elapsed: seconds the run took; adds the throughput line when given.
        """
        counts = ", ".join(f"{n:,} {printable(s)}" for s, n in self.status_counts())
        out = [f"{_deals(self.deals)}: {counts}\n"]
        if elapsed is not None:
            out.append(f"Throughput: {self.throughput(elapsed)}\n")
        approvals = self.approval_counts()
        if approvals:
            out.append("\nApprovals (deals needing each role):\n")
            out.extend(_lines([(n, printable(role)) for role, n in approvals]))
        reasons = self.top_reasons()
        if reasons:
            out.append("\nTop reasons (deals per rule):\n")
            out.extend(_lines([(r.deals, _reason_label(r)) for r in reasons]))
        flags = self.top_flags()
        if flags:
            out.append("\nTop flags (deals per rule or kind):\n")
            out.extend(_lines([(r.deals, _reason_label(r)) for r in flags]))
        errors = self.top_errors()
        if errors:
            out.append("\nTop errors (invalid deals per kind):\n")
            out.extend(_lines([(n, printable(_shorten(kind))) for kind, n in errors]))
        return "".join(out)


def _by_rule(items: Any) -> set[tuple[str, str]]:
    """``(policy, rule)`` of each reason or flag of a record; one without a rule (a plugin's,
    an unknown deal key's) by the shape of its message (``partner.teir: unknown key ...``)."""
    found: set[tuple[str, str]] = set()
    for item in items or ():
        if isinstance(item, Mapping) and item.get("rule"):
            found.add((str(item.get("policy") or ""), str(item["rule"])))
        else:
            found.add(("", error_kind(format_message(item))))
    return found


def _count(counter: Counter[Any], keys: set[Any], limit: int, other: Any) -> None:
    for key in keys:
        counter[key if key in counter or len(counter) < limit else other] += 1


def format_message(item: object) -> str:
    """One line for a reason, flag or error: ``path: message`` (``message`` without a path).

    The one formatting of a record's errors used by writers, the summary, ``dealdesk explain``
    and ``dealdesk test``; accepts a mapping (``{"path", "message"}``) or a plain string.
    """
    if isinstance(item, Mapping):
        message = str(item.get("message", ""))
        path = item.get("path")
        return f"{path}: {message}" if path else message
    return str(item)


def _reason_label(reason: RuleCount) -> str:
    """``policy RULE  description``; a reason without a rule shows its message's shape."""
    if not reason.policy:
        return printable(_shorten(reason.rule))
    description = printable(_shorten(reason.description))
    return f"{printable(reason.policy)} {printable(reason.rule)}  {description}"


def _deals(count: int) -> str:
    return f"{count:,} deal{'' if count == 1 else 's'}"


def _shorten(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _lines(rows: list[tuple[int, str]]) -> list[str]:
    width = max(len(f"{n:,}") for n, _ in rows)
    return [f"  {n:>{width},}  {label}\n" for n, label in rows]
