"""``dealdesk diff``: what a change to the rulesets does to a book of deals (SPEC §6).

Every deal is decided twice, under the *base* rulesets and under the *head* rulesets, and the
two records of each deal (paired by position: ids may repeat) are compared:

- :func:`compare` gives a :class:`DealChange` when the deal's *decision* changed — its status,
  its approvals or any policy output — and ``None`` otherwise;
- :class:`DiffReport` counts what changed, one pair at a time, in bounded memory: the status
  from→to matrix, approvals gained and lost per role, the outputs that change (with the median
  change of numbers), and the rules responsible;
- :class:`JsonlDiffWriter`, :class:`TableDiffWriter` and :class:`HtmlDiffWriter` write the result;
- :func:`materialise` reads ``REV:PATH`` rulesets out of the current git repository into a
  temporary folder, and :func:`relabelled` makes ruleset errors name them ``REV:PATH/...``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import re
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from dealdesk.errors import DealdeskError, Location, RulesetError, UsageError, ValidationFailed
from dealdesk.io.summary import WriteContext, format_message, printable
from dealdesk.record import STATUS_ORDER

if TYPE_CHECKING:
    from dealdesk.io.batch import Executor
    from dealdesk.io.readers import SourceDeal
    from dealdesk.rules.policyset import PolicySet

__all__ = [
    "DealChange",
    "DiffReport",
    "HtmlDiffWriter",
    "JsonlDiffWriter",
    "OutputChange",
    "Side",
    "TableDiffWriter",
    "compare",
    "decide_pairs",
    "edited_rules",
    "is_git_spec",
    "materialise",
    "relabelled",
    "resolve_rulesets",
]

#: Changed deals the HTML page lists; every count covers every deal.
TABLE_ROWS = 5000
#: Numeric changes kept per output for its median: exact up to this many, a sample beyond.
SAMPLE = 10_000
#: Distinct before → after values kept per non-numeric output (the rest count as other).
MAX_TRANSITIONS = 1000


# ---------------------------------------------------------------------------------------------
# REV:PATH: rulesets as a git revision has them


def is_git_spec(spec: str) -> bool:
    """Whether ``spec`` names rulesets in git (``HEAD:rulesets``) rather than on disk: it
    holds a colon and is not an existing file or directory."""
    return ":" in spec and not os.path.exists(spec)


def _git(args: Sequence[str], spec: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, check=False, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise UsageError(f"{spec}: git is not installed (needed to read REV:PATH)") from None


def materialise(spec: str, into: Path) -> Path:
    """Write the ruleset files that ``REV:PATH`` names into the folder ``into``.

    PATH is relative to the current directory, as a path in the working folder would be, and
    is read from the git repository the current directory belongs to. A directory gives its
    ``.yaml``/``.yml`` files (symbolic links and submodules left out); a file is taken as is.

    :returns: the file or directory written (``into/NAME``, NAME the last part of PATH).
    :raises UsageError: not in a git repository, git missing, an unknown revision, a PATH the
        revision does not have — each one line naming ``spec``.
    """
    from dealdesk.rules.policyset import RULESET_SUFFIXES

    rev, _, path = spec.partition(":")
    if not rev:
        raise UsageError(f"{spec}: give a revision before the colon (HEAD:{path})")
    if rev.startswith("-"):
        raise UsageError(f"{spec}: {rev!r} is not a revision")
    if os.path.isabs(path):
        raise UsageError(f"{spec}: PATH must be relative to the current directory")
    inside = _git(["rev-parse", "--is-inside-work-tree"], spec)
    if inside.returncode != 0 or inside.stdout.strip() != b"true":
        raise UsageError(f"{spec}: {os.getcwd()} is not in a git working tree")
    if _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], spec).returncode != 0:
        raise UsageError(f"{spec}: unknown revision {rev!r}")
    # PATH is relative to the current directory; git's `REV:./PATH` would do that for files,
    # but `ls-tree` of such a tree from a sub-folder lists nothing, so name it from the top
    shown = _git(["rev-parse", "--show-prefix"], spec).stdout
    prefix = shown.decode("utf-8", "surrogateescape").rstrip("\n")
    inside_repo = os.path.normpath(os.path.join(prefix, path or "."))
    if inside_repo == ".." or inside_repo.startswith("../"):
        raise UsageError(f"{spec}: {path} is outside the git repository")
    obj = f"{rev}:" if inside_repo == "." else f"{rev}:{inside_repo}"
    kind = _git(["cat-file", "-t", obj], spec)
    if kind.returncode != 0:
        raise UsageError(f"{spec}: no such file or directory in {rev}")
    name = Path(os.path.normpath(os.path.join(os.getcwd(), path))).name or "root"
    target = into / name
    if kind.stdout.strip() == b"blob":
        target.write_bytes(_git(["cat-file", "blob", obj], spec).stdout)
        return target
    if kind.stdout.strip() != b"tree":
        raise UsageError(f"{spec}: not a file or directory in {rev}")
    listing = _git(["ls-tree", "--full-tree", "-r", "-z", obj], spec)
    if listing.returncode != 0:
        raise UsageError(f"{spec}: cannot list it in {rev}")
    blobs: list[tuple[str, str]] = []  # (object id, path in the tree)
    for entry in listing.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if not entry:
            continue
        meta, _, relative = entry.partition("\t")
        mode, kind_name, sha = meta.split()
        if kind_name != "blob" or mode == "120000" or Path(relative).suffix not in RULESET_SUFFIXES:
            continue
        if ".." in Path(relative).parts:
            raise UsageError(f"{spec}: {relative}: a path leaving the folder")
        blobs.append((sha, relative))
    target.mkdir()
    contents = _cat_batch(spec, [sha for sha, _ in blobs])
    for (_, relative), content in zip(blobs, contents, strict=True):
        file = target / relative
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(content)
    return target


def _cat_batch(spec: str, shas: Sequence[str]) -> list[bytes]:
    """The contents of the blobs ``shas``, in order, from one ``git cat-file --batch``."""
    if not shas:
        return []
    try:
        done = subprocess.run(
            ["git", "cat-file", "--batch"],
            input="".join(f"{sha}\n" for sha in shas).encode(),
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        raise UsageError(f"{spec}: git is not installed (needed to read REV:PATH)") from None
    out, position, contents = done.stdout, 0, []
    for _ in shas:
        end = out.index(b"\n", position)
        size = int(out[position:end].split()[2])
        contents.append(out[end + 1 : end + 1 + size])
        position = end + 1 + size + 1  # the content, then a newline
    return contents


def resolve_rulesets(specs: Sequence[str], stack: contextlib.ExitStack) -> tuple[list[str], dict]:
    """The paths to load for ``specs`` (paths, or ``REV:PATH`` written to temporary folders
    that ``stack`` removes), and each temporary path → the ``REV:PATH`` it stands for."""
    paths: list[str] = []
    labels: dict[str, str] = {}
    for spec in specs:
        if not is_git_spec(spec):
            paths.append(spec)
            continue
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dealdesk-diff-")))
        written = materialise(spec, folder)
        paths.append(str(written))
        labels[str(written)] = spec.rstrip("/")
    return paths, labels


class _Relabelled(DealdeskError):
    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def _relabel(text: str, labels: Mapping[str, str]) -> str:
    for temporary, label in labels.items():
        text = text.replace(temporary, label)
    return text


@contextlib.contextmanager
def relabelled(labels: Mapping[str, str], side: str) -> Iterator[None]:
    """Errors raised inside name ``REV:PATH/file.yaml:line:col``, not the temporary copy; a
    usage error also says which side (``--base``, ``--head``) it came from."""
    try:
        yield
    except ValidationFailed as exc:
        if not labels:
            raise
        raise ValidationFailed(
            RulesetError(
                _relabel(e.message, labels),
                Location(_relabel(e.location.file, labels), e.location.line, e.location.column),
                e.suggestion,
            )
            for e in exc.errors
        ) from None
    except DealdeskError as exc:
        raise _Relabelled(f"{side}: {_relabel(str(exc), labels)}", exc.exit_code) from None


# ---------------------------------------------------------------------------------------------
# one deal: two records compared


@dataclass(frozen=True)
class Side:
    """One side's decision of a deal: status, approvals, and the errors of an invalid deal."""

    status: str
    approvals: tuple[str, ...]
    errors: tuple[str, ...] = ()

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> Side:
        return cls(
            str(record.get("status") or ""),
            tuple(str(r) for r in record.get("approvals") or ()),
            tuple(format_message(e) for e in record.get("errors") or ()),
        )

    def json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "approvals": list(self.approvals),
            "errors": list(self.errors),
        }


@dataclass(frozen=True)
class DealChange:
    """A deal whose decision differs between base and head.

    :ivar position: the deal's place in the input, from 1 (ids may repeat).
    :ivar changed_outputs: ``policy.output`` → ``(base value, head value)``; ``None`` for a side
        without that output.
    :ivar fired_added: policy → rule and table ids that fired under head only.
    :ivar fired_removed: policy → rule and table ids that fired under base only.
    :ivar fired_both: ``(policy, id)`` of every rule that fired under both.
    """

    position: int
    deal_id: str | None
    base: Side
    head: Side
    changed_outputs: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    fired_added: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fired_removed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fired_both: frozenset[tuple[str, str]] = frozenset()

    @property
    def approvals_gained(self) -> list[str]:
        return [r for r in self.head.approvals if r not in self.base.approvals]

    @property
    def approvals_lost(self) -> list[str]:
        return [r for r in self.base.approvals if r not in self.head.approvals]

    def json(self) -> dict[str, Any]:
        """The JSON Lines object of this change (docs/diff.md describes every key)."""
        return {
            "deal_id": self.deal_id,
            "position": self.position,
            "base": self.base.json(),
            "head": self.head.json(),
            "approvals_gained": self.approvals_gained,
            "approvals_lost": self.approvals_lost,
            "changed_outputs": {k: [b, h] for k, (b, h) in self.changed_outputs.items()},
            "fired_added": {p: list(ids) for p, ids in self.fired_added.items()},
            "fired_removed": {p: list(ids) for p, ids in self.fired_removed.items()},
        }


_MISSING = object()


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON: ``1`` and ``True`` differ, ``[1]`` and ``[1.0]`` differ."""
    if type(a) is not type(b) or a != b:
        return False
    if isinstance(a, (list, dict)):
        from dealdesk import jsoncodec

        return bool(jsoncodec.dumps(a) == jsoncodec.dumps(b))
    return True


def _policies(record: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    policies = record.get("policies")
    return policies if isinstance(policies, Mapping) else {}


def compare(position: int, base: Mapping[str, Any], head: Mapping[str, Any]) -> DealChange | None:
    """The change in a deal's decision from its ``base`` record to its ``head`` record, or
    ``None`` when status, approvals and every output are the same (fired rules may differ)."""
    before, after = Side.of(base), Side.of(head)
    base_policies, head_policies = _policies(base), _policies(head)
    outputs: dict[str, tuple[Any, Any]] = {}
    names = list(head_policies) + [p for p in base_policies if p not in head_policies]
    for name in names:
        b_out = (base_policies.get(name) or {}).get("outputs") or {}
        h_out = (head_policies.get(name) or {}).get("outputs") or {}
        for key in list(h_out) + [k for k in b_out if k not in h_out]:
            b, h = b_out.get(key, _MISSING), h_out.get(key, _MISSING)
            if not _same(b, h):
                outputs[f"{name}.{key}"] = (
                    None if b is _MISSING else b,
                    None if h is _MISSING else h,
                )
    if before.status == after.status and before.approvals == after.approvals and not outputs:
        return None
    added: dict[str, tuple[str, ...]] = {}
    removed: dict[str, tuple[str, ...]] = {}
    both: set[tuple[str, str]] = set()
    for name in names:
        b_fired = list((base_policies.get(name) or {}).get("fired") or ())
        h_fired = list((head_policies.get(name) or {}).get("fired") or ())
        if plus := tuple(r for r in h_fired if r not in b_fired):
            added[name] = plus
        if minus := tuple(r for r in b_fired if r not in h_fired):
            removed[name] = minus
        both.update((name, r) for r in h_fired if r in b_fired)
    deal_id = head.get("deal_id", base.get("deal_id"))
    return DealChange(
        position,
        None if deal_id is None else str(deal_id),
        before,
        after,
        outputs,
        added,
        removed,
        frozenset(both),
    )


def fired_differs(base: Mapping[str, Any], head: Mapping[str, Any]) -> bool:
    """Whether any policy fired other rules under head than under base."""
    b, h = _policies(base), _policies(head)
    return any(
        set((b.get(n) or {}).get("fired") or ()) != set((h.get(n) or {}).get("fired") or ())
        for n in {*b, *h}
    )


def edited_rules(base: PolicySet, head: PolicySet) -> dict[tuple[str, str], str]:
    """``(policy, rule or table id)`` → ``added``, ``removed`` or ``edited`` for every rule whose
    YAML differs between the two policy sets (comments and layout do not count)."""
    from dealdesk.rules.loader import lookup_path

    def units(policy_set: PolicySet) -> dict[tuple[str, str], Any]:
        found = {}
        for ruleset in policy_set.rulesets:
            for unit in ruleset.units():
                found[(ruleset.policy, unit.id)] = lookup_path(ruleset.document.data, unit.path)
        return found

    before, after = units(base), units(head)
    edits: dict[tuple[str, str], str] = {}
    for key in after.keys() - before.keys():
        edits[key] = "added"
    for key in before.keys() - after.keys():
        edits[key] = "removed"
    for key in after.keys() & before.keys():
        if not _same(_plain(before[key]), _plain(after[key])):
            edits[key] = "edited"
    return edits


def _plain(value: Any) -> Any:
    """A YAML value as JSON would hold it (dates as text), for comparing."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


# ---------------------------------------------------------------------------------------------
# running both sides


def decide_pairs(
    sources: Iterable[SourceDeal], base: Executor, head: Executor
) -> Iterator[tuple[int, dict[str, Any], dict[str, Any]]]:
    """``(position, base record, head record)`` for every deal, in input order.

    The deals are read once; each executor gets every one. Memory stays bounded: each executor
    reads a bounded number of chunks ahead, and the two are consumed in step.
    """
    mine, theirs = itertools.tee(sources)
    try:
        pairs = zip(base.run(mine), head.run(theirs), strict=True)
        for position, (b, h) in enumerate(pairs, start=1):
            yield position, b.record, h.record
    finally:
        base.close()
        head.close()


# ---------------------------------------------------------------------------------------------
# the counts


_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def _number(value: Any) -> Decimal | None:
    """A number or a decimal string (money) as a Decimal; ``None`` for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if value == value and abs(value) != float("inf") else None
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        try:
            return Decimal(value)
        except InvalidOperation:
            return None
    return None


@dataclass
class OutputChange:
    """How one output (``policy.output``) changed over the deals where it changed.

    :ivar deals: deals whose value changed.
    :ivar numeric: of those, deals whose value is a number on both sides.
    :ivar up, down: numeric changes up and down.
    :ivar transitions: ``(base, head)`` as text → deals, for values that are not numbers.
    """

    name: str
    deals: int = 0
    numeric: int = 0
    up: int = 0
    down: int = 0
    smallest: Decimal | None = None
    largest: Decimal | None = None
    sample: list[Decimal] = field(default_factory=list)
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    _random: random.Random = field(default_factory=lambda: random.Random(0), repr=False)

    def add(self, before: Any, after: Any) -> None:
        self.deals += 1
        b, h = _number(before), _number(after)
        if b is None or h is None:
            key = (_short(before), _short(after))
            if key in self.transitions or len(self.transitions) < MAX_TRANSITIONS:
                self.transitions[key] += 1
            else:
                self.transitions[("…", "…")] += 1
            return
        delta = h - b
        self.numeric += 1
        self.up += delta > 0
        self.down += delta < 0
        self.smallest = delta if self.smallest is None else min(self.smallest, delta)
        self.largest = delta if self.largest is None else max(self.largest, delta)
        # reservoir sampling (seeded): the same input gives the same report
        if len(self.sample) < SAMPLE:
            self.sample.append(delta)
        else:
            slot = self._random.randrange(self.numeric)
            if slot < SAMPLE:
                self.sample[slot] = delta

    @property
    def median(self) -> Decimal | None:
        """The median change head − base of the numeric changes (of a sample past
        :data:`SAMPLE`)."""
        if not self.sample:
            return None
        ordered = sorted(self.sample)
        middle = len(ordered) // 2
        if len(ordered) % 2:
            return ordered[middle]
        return (ordered[middle - 1] + ordered[middle]) / 2

    @property
    def sampled(self) -> bool:
        return self.numeric > len(self.sample)

    def typical(self) -> str:
        """``median +0.02 (+0.02 to +0.05; 3 up, 0 down)`` or ``break_fix → proactive (2)``."""
        parts = []
        median = self.median
        if median is not None:
            about = "≈" if self.sampled else ""
            text = f"median {about}{_signed(median)}"
            if self.smallest != self.largest:
                text += f" ({_signed(self.smallest)} to {_signed(self.largest)})"
            text += f"; {self.up:,} up, {self.down:,} down"
            parts.append(text)
        for (before, after), n in self.transitions.most_common(3):
            parts.append(f"{before} → {after} ({n:,})")
        if len(self.transitions) > 3:
            parts.append("…")
        return "; ".join(parts)


def _signed(value: Decimal | None) -> str:
    if value is None:
        return "-"
    text = format(value.normalize(), "f")
    return text if text.startswith("-") else f"+{text}"


def _short(value: Any, width: int = 40) -> str:
    if value is None:
        return "null"
    from dealdesk import jsoncodec

    text = value if isinstance(value, str) else jsoncodec.dumps(value)
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True)
class RuleImpact:
    """One rule among the rules responsible: the changed deals where it fired under head only,
    under base only, or under both while its YAML was edited."""

    policy: str
    rule: str
    description: str
    added: int
    removed: int
    edited_fired: int
    edit: str | None  # added | removed | edited, or None when the rule's YAML is the same

    @property
    def deals(self) -> int:
        return self.added + self.removed + self.edited_fired


class DiffReport:
    """The counts of a diff, built one pair of records at a time (:meth:`add`).

    Memory is bounded: counters per status pair, role, output and rule, and a bounded sample
    per numeric output. ``edits`` (from :func:`edited_rules`) lets a rule that fired under both
    but was edited count as responsible.
    """

    def __init__(
        self,
        context: WriteContext | None = None,
        edits: Mapping[tuple[str, str], str] | None = None,
        *,
        base_label: str = "base",
        head_label: str = "head",
    ):
        self.context = context or WriteContext()
        self.edits = dict(edits or {})
        self.base_label = base_label
        self.head_label = head_label
        self.deals = 0
        self.changed = 0
        self.fired_only = 0  # same decision, other rules fired
        self.matrix: Counter[tuple[str, str]] = Counter()
        self.gained: Counter[str] = Counter()
        self.lost: Counter[str] = Counter()
        self.outputs: dict[str, OutputChange] = {}
        self.added: Counter[tuple[str, str]] = Counter()
        self.removed: Counter[tuple[str, str]] = Counter()
        self.edited_fired: Counter[tuple[str, str]] = Counter()

    @property
    def unchanged(self) -> int:
        return self.deals - self.changed

    def add(
        self, base: Mapping[str, Any], head: Mapping[str, Any], change: DealChange | None
    ) -> None:
        """Count one deal: its records under base and head and :func:`compare`'s answer."""
        self.deals += 1
        self.matrix[(str(base.get("status") or ""), str(head.get("status") or ""))] += 1
        if change is None:
            self.fired_only += fired_differs(base, head)
            return
        self.changed += 1
        self.gained.update(change.approvals_gained)
        self.lost.update(change.approvals_lost)
        for name, (before, after) in change.changed_outputs.items():
            self.outputs.setdefault(name, OutputChange(name)).add(before, after)
        for policy, ids in change.fired_added.items():
            self.added.update((policy, r) for r in ids)
        for policy, ids in change.fired_removed.items():
            self.removed.update((policy, r) for r in ids)
        self.edited_fired.update(key for key in change.fired_both if key in self.edits)

    # -- what the writers show

    def statuses(self) -> list[str]:
        """SPEC's four statuses, then any other a plugin produced."""
        seen = {s for pair in self.matrix for s in pair}
        return [*STATUS_ORDER, *sorted(seen - set(STATUS_ORDER))]

    def roles(self, counter: Counter[str]) -> list[tuple[str, int]]:
        """``(role, deals)`` in the approvers' rank order."""
        rank = {role: i for i, role in enumerate(self.context.approvers)}
        return [(r, counter[r]) for r in sorted(counter, key=lambda r: (rank.get(r, len(rank)), r))]

    def output_changes(self) -> list[OutputChange]:
        """The outputs that changed, most deals first."""
        return sorted(self.outputs.values(), key=lambda o: (-o.deals, o.name))

    def rules(self) -> list[RuleImpact]:
        """The rules responsible, most deals first."""
        keys = {*self.added, *self.removed, *self.edited_fired}
        impacts = [
            RuleImpact(
                policy,
                rule,
                self.context.describe(policy, rule),
                self.added[(policy, rule)],
                self.removed[(policy, rule)],
                self.edited_fired[(policy, rule)],
                self.edits.get((policy, rule)),
            )
            for policy, rule in keys
        ]
        return sorted(impacts, key=lambda i: (-i.deals, i.policy, i.rule))

    def headline(self) -> str:
        """``29 deals: 3 decisions changed, 26 unchanged`` or ``... no decision changed``."""
        deals = f"{self.deals:,} deal{'' if self.deals == 1 else 's'}"
        if not self.changed:
            return f"{deals}: no decision changed"
        return (
            f"{deals}: {self.changed:,} decision{'' if self.changed == 1 else 's'} changed, "
            f"{self.unchanged:,} unchanged"
        )

    def text(self) -> str:
        """The report as plain text for a terminal, every value :func:`printable`."""
        out = [
            f"base: {printable(self.base_label)}\n",
            f"head: {printable(self.head_label)}\n",
            f"{self.headline()}\n",
        ]
        if self.fired_only:
            out.append(f"({self.fired_only:,} more fired other rules with the same decision)\n")
        if not self.deals:
            return "".join(out)
        statuses = self.statuses()
        width = max(len(s) for s in statuses)
        cells = [max(len(s), *(len(f"{n:,}") for n in self.matrix.values())) for s in statuses]
        out.append("\nStatus (rows: base, columns: head):\n")
        out.append(
            f"  {'':<{width}}  "
            + "  ".join(f"{s:>{c}}" for s, c in zip(statuses, cells, strict=True))
            + "\n"
        )
        for row in statuses:
            counts = [self.matrix[(row, col)] for col in statuses]
            out.append(
                f"  {printable(row):<{width}}  "
                + "  ".join(f"{n:>{c},}" for n, c in zip(counts, cells, strict=True))
                + "\n"
            )
        for title, counter in (
            ("Approvals gained (deals):", self.gained),
            ("Approvals lost (deals):", self.lost),
        ):
            rows = self.roles(counter)
            if rows:
                out.append(f"\n{title}\n")
                out.extend(_lines([(n, printable(role)) for role, n in rows]))
        changes = self.output_changes()
        if changes:
            out.append("\nOutputs that change (deals; head − base):\n")
            name_width = max(len(printable(o.name)) for o in changes)
            out.extend(
                _lines(
                    [
                        (o.deals, f"{printable(o.name):<{name_width}}  {printable(o.typical())}")
                        for o in changes
                    ]
                )
            )
        rules = self.rules()
        if rules:
            out.append("\nRules responsible (changed deals where it fired):\n")
            out.extend(_lines([(r.deals, _rule_label(r)) for r in rules]))
        return "".join(out)


def _rule_label(rule: RuleImpact) -> str:
    parts = []
    if rule.added:
        parts.append(f"head only {rule.added:,}")
    if rule.removed:
        parts.append(f"base only {rule.removed:,}")
    if rule.edited_fired:
        parts.append(f"both, edited {rule.edited_fired:,}")
    edit = f" [{rule.edit}]" if rule.edit else ""
    description = "" if rule.description == rule.rule else f"  {_shorten(rule.description)}"
    return printable(f"{rule.policy} {rule.rule}{edit}  ({', '.join(parts)}){description}")


def _shorten(text: str, width: int = 100) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _lines(rows: list[tuple[int, str]]) -> list[str]:
    width = max(len(f"{n:,}") for n, _ in rows)
    return [f"  {n:>{width},}  {label}\n" for n, label in rows]


# ---------------------------------------------------------------------------------------------
# writers: ``write(change)`` for each changed deal as it comes, ``close()`` at the end


class DiffWriter(Protocol):
    """Consumes the changed deals as they come; ``close`` writes what needs the whole run."""

    def __init__(self, stream: TextIO, report: DiffReport): ...

    def write(self, change: DealChange) -> None: ...

    def close(self) -> None: ...


class JsonlDiffWriter:
    """One JSON object per line for each deal whose decision changed, written as it comes."""

    def __init__(self, stream: TextIO, report: DiffReport):
        self.stream = stream
        self.report = report

    def write(self, change: DealChange) -> None:
        from dealdesk import jsoncodec

        self.stream.write(jsoncodec.dumps(change.json()) + "\n")

    def close(self) -> None:
        """Nothing more: the counts go to standard error."""


class TableDiffWriter:
    """The report as text (:meth:`DiffReport.text`), written at the end."""

    def __init__(self, stream: TextIO, report: DiffReport):
        self.stream = stream
        self.report = report

    def write(self, change: DealChange) -> None:
        """Counted by the report already."""

    def close(self) -> None:
        self.stream.write(self.report.text())


class HtmlDiffWriter:
    """A self-contained page: the matrix, approvals, outputs, rules responsible and a table of
    the first :data:`TABLE_ROWS` changed deals (the counts cover every deal)."""

    def __init__(self, stream: TextIO, report: DiffReport, table_rows: int = TABLE_ROWS):
        self.stream = stream
        self.report = report
        self.table_rows = table_rows
        self.rows: list[DealChange] = []

    def write(self, change: DealChange) -> None:
        if len(self.rows) < self.table_rows:
            self.rows.append(change)

    def close(self) -> None:
        self.stream.write(render_html(self.report, self.rows))


WRITERS: dict[str, type[DiffWriter]] = {
    "table": TableDiffWriter,
    "jsonl": JsonlDiffWriter,
    "html": HtmlDiffWriter,
}


def render_html(report: DiffReport, rows: Sequence[DealChange]) -> str:
    """The diff page (``io/templates/diff.html.j2``); every value autoescaped."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from dealdesk import __version__

    folder = Path(__file__).parent / "io" / "templates"
    env = Environment(
        loader=FileSystemLoader(folder),
        autoescape=True,  # deal ids, rule descriptions and values are text, never markup
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["count"] = lambda n: f"{n:,}"
    statuses = report.statuses()
    page = {
        "version": __version__,
        "base": printable(report.base_label),
        "head": printable(report.head_label),
        "headline": report.headline(),
        "deals": report.deals,
        "changed": report.changed,
        "fired_only": report.fired_only,
        "statuses": statuses,
        "matrix": [
            (row, [(col, report.matrix[(row, col)], row != col) for col in statuses])
            for row in statuses
        ],
        "gained": report.roles(report.gained),
        "lost": report.roles(report.lost),
        "outputs": [
            (printable(o.name), o.deals, printable(o.typical())) for o in report.output_changes()
        ],
        "rules": report.rules(),
        "rows": [
            {
                "deal_id": None if c.deal_id is None else printable(c.deal_id),
                "position": c.position,
                "base": c.base,
                "head": c.head,
                "gained": c.approvals_gained,
                "lost": c.approvals_lost,
                "outputs": [
                    (printable(k), printable(_short(b)), printable(_short(h)))
                    for k, (b, h) in c.changed_outputs.items()
                ],
                "added": [(p, r) for p, ids in c.fired_added.items() for r in ids],
                "removed": [(p, r) for p, ids in c.fired_removed.items() for r in ids],
            }
            for c in rows
        ],
        "truncated": report.changed > len(rows),
    }
    return env.get_template("diff.html.j2").render(page)
