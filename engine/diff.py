"""``dealdesk diff``: what a change to the rulesets does to a book of deals (SPEC §6).

Every deal is decided twice, under the *base* rulesets and under the *head* rulesets, and the
two records of each deal (paired by position: ids may repeat) are compared:

- :func:`compare` gives a :class:`DealChange` when the deal's *decision* changed — its status,
  its approvals (roles or order), any policy output, or the policies that decided it — and
  ``None`` otherwise;
- :class:`DiffReport` counts what changed, one pair at a time, in bounded memory: the status
  from→to matrix, approvals gained, lost and reordered per role (naming changed approver
  ranks), policies on one side only, the outputs that change (with the median change of
  numbers), the rules responsible, and the error messages of deals invalid under head;
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
    "ApproverRanks",
    "Comparison",
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
    "moved",
    "ranks_file",
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
    def of(cls, record: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> Side:
        """``record``'s side; ``labels`` renames temporary ruleset paths in errors
        (:func:`resolve_rulesets`)."""
        return cls(
            str(record.get("status") or ""),
            tuple(str(r) for r in record.get("approvals") or ()),
            tuple(_relabel(format_message(e), labels or {}) for e in record.get("errors") or ()),
        )

    def json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "approvals": list(self.approvals),
            "errors": list(self.errors),
        }


@dataclass(frozen=True)
class Comparison:
    """What comparing a deal's two records needs to know of the two policy sets.

    :ivar edits: from :func:`edited_rules`: a rule that fired on both sides while its YAML was
        edited is named among the rules that changed the deal.
    :ivar base_policies, head_policies: the policies each side has (``None``: not known, then
        a policy is taken to exist on both sides); the outputs of a policy only one side has
        show as that policy added or removed, not as values turned ``null``.
    :ivar labels: temporary ruleset path → the ``REV:PATH`` it stands for, for error messages.
    """

    edits: Mapping[tuple[str, str], str] = field(default_factory=dict)
    base_policies: frozenset[str] | None = None
    head_policies: frozenset[str] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, base: PolicySet, head: PolicySet, labels: Mapping[str, str] | None = None
    ) -> Comparison:
        return cls(
            edited_rules(base, head),
            frozenset(base.policies),
            frozenset(head.policies),
            dict(labels or {}),
        )

    def only_base(self, name: str) -> bool:
        """Whether policy ``name`` has rulesets under base and none under head."""
        if self.base_policies is None or self.head_policies is None:
            return False
        return name in self.base_policies and name not in self.head_policies

    def only_head(self, name: str) -> bool:
        """Whether policy ``name`` has rulesets under head and none under base."""
        if self.base_policies is None or self.head_policies is None:
            return False
        return name in self.head_policies and name not in self.base_policies


@dataclass(frozen=True)
class DealChange:
    """A deal whose decision differs between base and head.

    :ivar position: the deal's place in the input, from 1 (ids may repeat).
    :ivar changed_outputs: ``policy.output`` → ``(base value, head value)``; ``None`` for a side
        without that output. Outputs of a policy only one side has are not listed: that policy
        is in ``policies_added`` or ``policies_removed``.
    :ivar policies_added, policies_removed: policies that decided the deal under head only
        (their ruleset added) or under base only (removed).
    :ivar fired_added: policy → rule and table ids that fired under head only.
    :ivar fired_removed: policy → rule and table ids that fired under base only.
    :ivar fired_edited: policy → rule and table ids that fired under both while their YAML was
        edited (:attr:`Comparison.edits`).
    """

    position: int
    deal_id: str | None
    base: Side
    head: Side
    changed_outputs: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    fired_added: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fired_removed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fired_edited: dict[str, tuple[str, ...]] = field(default_factory=dict)
    policies_added: tuple[str, ...] = ()
    policies_removed: tuple[str, ...] = ()

    @property
    def approvals_gained(self) -> list[str]:
        return [r for r in self.head.approvals if r not in self.base.approvals]

    @property
    def approvals_lost(self) -> list[str]:
        return [r for r in self.base.approvals if r not in self.head.approvals]

    @property
    def approvals_reordered(self) -> list[str]:
        """Roles both sides need whose place in the order moved (in head's order): the fewest
        roles that, taken out, leave the rest in the same order on both sides."""
        before = [r for r in self.base.approvals if r in self.head.approvals]
        after = [r for r in self.head.approvals if r in self.base.approvals]
        return moved(before, after)

    def json(self) -> dict[str, Any]:
        """The JSON Lines object of this change (docs/diff.md describes every key)."""
        return {
            "deal_id": self.deal_id,
            "position": self.position,
            "base": self.base.json(),
            "head": self.head.json(),
            "approvals_gained": self.approvals_gained,
            "approvals_lost": self.approvals_lost,
            "approvals_reordered": self.approvals_reordered,
            "policies_added": list(self.policies_added),
            "policies_removed": list(self.policies_removed),
            "changed_outputs": {k: [b, h] for k, (b, h) in self.changed_outputs.items()},
            "fired_added": {p: list(ids) for p, ids in self.fired_added.items()},
            "fired_removed": {p: list(ids) for p, ids in self.fired_removed.items()},
            "fired_edited": {p: list(ids) for p, ids in self.fired_edited.items()},
        }


def moved(before: Sequence[str], after: Sequence[str]) -> list[str]:
    """The items of ``after`` outside a longest common subsequence of the two orders of the
    same items: those that moved. ``[a, b, c] → [b, c, a]`` moved ``a``."""
    if list(before) == list(after):
        return []
    # lengths[i][j]: the longest common subsequence of before[i:] and after[j:]
    lengths = [[0] * (len(after) + 1) for _ in range(len(before) + 1)]
    for i in range(len(before) - 1, -1, -1):
        for j in range(len(after) - 1, -1, -1):
            lengths[i][j] = (
                lengths[i + 1][j + 1] + 1
                if before[i] == after[j]
                else max(lengths[i + 1][j], lengths[i][j + 1])
            )
    kept: set[str] = set()
    i = j = 0
    while i < len(before) and j < len(after):
        if before[i] == after[j]:
            kept.add(before[i])
            i, j = i + 1, j + 1
        elif lengths[i + 1][j] >= lengths[i][j + 1]:
            i += 1
        else:
            j += 1
    return [r for r in after if r not in kept]


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


def compare(
    position: int,
    base: Mapping[str, Any],
    head: Mapping[str, Any],
    comparison: Comparison | None = None,
) -> DealChange | None:
    """The change in a deal's decision from its ``base`` record to its ``head`` record, or
    ``None`` when status, approvals, every output and the policies that decided it are the
    same (fired rules may differ)."""
    comparison = comparison or Comparison()
    before = Side.of(base, comparison.labels)
    after = Side.of(head, comparison.labels)
    base_policies, head_policies = _policies(base), _policies(head)
    names = list(head_policies) + [p for p in base_policies if p not in head_policies]
    removed_policies = tuple(p for p in base_policies if comparison.only_base(p))
    added_policies = tuple(p for p in head_policies if comparison.only_head(p))
    outputs: dict[str, tuple[Any, Any]] = {}
    for name in names:
        if name in removed_policies or name in added_policies:
            continue
        b_out = (base_policies.get(name) or {}).get("outputs") or {}
        h_out = (head_policies.get(name) or {}).get("outputs") or {}
        for key in list(h_out) + [k for k in b_out if k not in h_out]:
            b, h = b_out.get(key, _MISSING), h_out.get(key, _MISSING)
            if not _same(b, h):
                outputs[f"{name}.{key}"] = (
                    None if b is _MISSING else b,
                    None if h is _MISSING else h,
                )
    if (
        before.status == after.status
        and before.approvals == after.approvals
        and not outputs
        and not removed_policies
        and not added_policies
    ):
        return None
    added: dict[str, tuple[str, ...]] = {}
    removed: dict[str, tuple[str, ...]] = {}
    edited: dict[str, tuple[str, ...]] = {}
    for name in names:
        b_fired = list((base_policies.get(name) or {}).get("fired") or ())
        h_fired = list((head_policies.get(name) or {}).get("fired") or ())
        if plus := tuple(r for r in h_fired if r not in b_fired):
            added[name] = plus
        if minus := tuple(r for r in b_fired if r not in h_fired):
            removed[name] = minus
        if same := tuple(r for r in h_fired if r in b_fired and (name, r) in comparison.edits):
            edited[name] = same
    deal_id = head.get("deal_id", base.get("deal_id"))
    return DealChange(
        position,
        None if deal_id is None else str(deal_id),
        before,
        after,
        outputs,
        added,
        removed,
        edited,
        added_policies,
        removed_policies,
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


@dataclass(frozen=True)
class ApproverRanks:
    """The approver ranks of each side (lowest first) and the file each came from."""

    base: tuple[str, ...]
    head: tuple[str, ...]
    base_file: str = ""
    head_file: str = ""

    @property
    def changed(self) -> bool:
        return self.base != self.head

    def describe(self) -> str:
        """``rulesets/approvers.yaml → h4/approvers.yaml (deal_desk moved; legal added)``."""
        common_before = [r for r in self.base if r in self.head]
        common_after = [r for r in self.head if r in self.base]
        parts = []
        if roles := moved(common_before, common_after):
            parts.append(f"{', '.join(roles)} moved")
        if roles := [r for r in self.head if r not in self.base]:
            parts.append(f"{', '.join(roles)} added")
        if roles := [r for r in self.base if r not in self.head]:
            parts.append(f"{', '.join(roles)} removed")
        return f"{self.base_file} → {self.head_file} ({'; '.join(parts)})"


def ranks_file(files: Iterable[Path | str], labels: Mapping[str, str]) -> str:
    """The approvers file among a side's ruleset files (named as the user gave it), or the
    house ranks' name when there is none."""
    from dealdesk.rules.policyset import HOUSE_APPROVERS, is_approvers_file

    found = [str(f) for f in files if is_approvers_file(Path(f))]
    return _relabel(found[0], labels) if found else HOUSE_APPROVERS


class DiffReport:
    """The counts of a diff, built one pair of records at a time (:meth:`take`).

    Memory is bounded: counters per status pair, role, policy, output, rule and error message
    (at most :data:`MAX_TRANSITIONS` distinct messages), and a bounded sample per numeric
    output. ``comparison`` (:class:`Comparison`) says which rules were edited and which
    policies only one side has; ``ranks`` the approver ranks of both sides, named as the cause
    when they differ.
    """

    #: error messages listed in the text and on the page
    TOP_ERRORS = 10

    def __init__(
        self,
        context: WriteContext | None = None,
        comparison: Comparison | None = None,
        *,
        base_label: str = "base",
        head_label: str = "head",
        ranks: ApproverRanks | None = None,
    ):
        self.context = context or WriteContext()
        self.comparison = comparison or Comparison()
        self.edits = dict(self.comparison.edits)
        self.ranks = ranks
        self.base_label = base_label
        self.head_label = head_label
        self.deals = 0
        self.changed = 0
        self.fired_only = 0  # same decision, other rules fired
        self.matrix: Counter[tuple[str, str]] = Counter()
        self.gained: Counter[str] = Counter()
        self.lost: Counter[str] = Counter()
        self.reordered: Counter[str] = Counter()
        self.reordered_deals = 0
        self.policies_added: Counter[str] = Counter()
        self.policies_removed: Counter[str] = Counter()
        self.outputs: dict[str, OutputChange] = {}
        self.added: Counter[tuple[str, str]] = Counter()
        self.removed: Counter[tuple[str, str]] = Counter()
        self.edited_fired: Counter[tuple[str, str]] = Counter()
        # error message of a deal invalid under head → [deals that became invalid, that stayed]
        self.errors: dict[str, list[int]] = {}
        self.became_invalid = 0
        self.stayed_invalid = 0

    @property
    def unchanged(self) -> int:
        return self.deals - self.changed

    def take(
        self, position: int, base: Mapping[str, Any], head: Mapping[str, Any]
    ) -> DealChange | None:
        """Compare one deal's records (:func:`compare`), count them, and return the change."""
        change = compare(position, base, head, self.comparison)
        self.add(base, head, change)
        return change

    def add(
        self, base: Mapping[str, Any], head: Mapping[str, Any], change: DealChange | None
    ) -> None:
        """Count one deal: its records under base and head and :func:`compare`'s answer."""
        self.deals += 1
        before, after = str(base.get("status") or ""), str(head.get("status") or "")
        self.matrix[(before, after)] += 1
        if after == "invalid":
            self._count_errors(head, stayed=before == "invalid")
        if change is None:
            self.fired_only += fired_differs(base, head)
            return
        self.changed += 1
        self.gained.update(change.approvals_gained)
        self.lost.update(change.approvals_lost)
        if reordered := change.approvals_reordered:
            self.reordered_deals += 1
            self.reordered.update(reordered)
        self.policies_added.update(change.policies_added)
        self.policies_removed.update(change.policies_removed)
        for name, (old, new) in change.changed_outputs.items():
            self.outputs.setdefault(name, OutputChange(name)).add(old, new)
        for policy, ids in change.fired_added.items():
            self.added.update((policy, r) for r in ids)
        for policy, ids in change.fired_removed.items():
            self.removed.update((policy, r) for r in ids)
        for policy, ids in change.fired_edited.items():
            self.edited_fired.update((policy, r) for r in ids)

    def _count_errors(self, head: Mapping[str, Any], stayed: bool) -> None:
        if stayed:
            self.stayed_invalid += 1
        else:
            self.became_invalid += 1
        messages = dict.fromkeys(Side.of(head, self.comparison.labels).errors or ("(no error)",))
        for message in messages:
            if message not in self.errors and len(self.errors) >= MAX_TRANSITIONS:
                message = "(other messages)"
            self.errors.setdefault(message, [0, 0])[stayed] += 1

    def top_errors(self) -> list[tuple[str, int, int]]:
        """``(message, became invalid, stayed invalid)`` for the most frequent error messages
        of the deals invalid under head."""
        ranked = sorted(self.errors.items(), key=lambda item: (-sum(item[1]), item[0]))
        return [(message, new, old) for message, (new, old) in ranked[: self.TOP_ERRORS]]

    def policy_changes(self) -> list[tuple[str, str, int]]:
        """``(policy, "added" or "removed", deals)`` for the policies only one side has."""
        return [
            *((p, "added", n) for p, n in sorted(self.policies_added.items())),
            *((p, "removed", n) for p, n in sorted(self.policies_removed.items())),
        ]

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
        if self.ranks is not None and self.ranks.changed:
            out.append(f"approver ranks changed: {printable(self.ranks.describe())}\n")
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
            (self.reordered_title(), self.reordered),
        ):
            rows = self.roles(counter)
            if rows:
                out.append(f"\n{title}\n")
                out.extend(_lines([(n, printable(role)) for role, n in rows]))
        policies = self.policy_changes()
        if policies:
            out.append("\nPolicies on one side only (deals):\n")
            out.extend(_lines([(n, printable(f"{p}  policy {how}")) for p, how, n in policies]))
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
        errors = self.top_errors()
        if errors:
            out.append(f"\n{self.errors_title()}\n")
            out.extend(
                _lines(
                    [
                        (new + old, printable(f"{_shorten(message, 160)}  ({_invalid(new, old)})"))
                        for message, new, old in errors
                    ]
                )
            )
            if len(self.errors) > len(errors):
                out.append(f"  … {len(self.errors) - len(errors):,} other messages\n")
        return "".join(out)

    def reordered_title(self) -> str:
        """The title of the approvals reordered, naming its cause when the ranks changed."""
        title = f"Approvals reordered ({self.reordered_deals:,} deals; roles that moved"
        if self.ranks is not None and self.ranks.changed:
            title += ", as the approver ranks changed"
        return title + "):"

    def errors_title(self) -> str:
        deals = self.became_invalid + self.stayed_invalid
        return (
            f"Errors under head ({deals:,} invalid deal{'' if deals == 1 else 's'}: "
            f"{self.became_invalid:,} became invalid, {self.stayed_invalid:,} stayed invalid):"
        )


def _invalid(new: int, old: int) -> str:
    parts = [f"became invalid {new:,}"] if new else []
    if old:
        parts.append(f"stayed invalid {old:,}")
    return ", ".join(parts)


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
        "reordered": report.roles(report.reordered),
        "reordered_deals": report.reordered_deals,
        "ranks": (
            printable(report.ranks.describe())
            if report.ranks is not None and report.ranks.changed
            else None
        ),
        "policies": report.policy_changes(),
        "errors": [(printable(m), new, old) for m, new, old in report.top_errors()],
        "more_errors": len(report.errors) - len(report.top_errors()),
        "became_invalid": report.became_invalid,
        "stayed_invalid": report.stayed_invalid,
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
                "reordered": c.approvals_reordered,
                "policies_added": c.policies_added,
                "policies_removed": c.policies_removed,
                "added": [(p, r) for p, ids in c.fired_added.items() for r in ids],
                "removed": [(p, r) for p, ids in c.fired_removed.items() for r in ids],
                "edited": [(p, r) for p, ids in c.fired_edited.items() for r in ids],
            }
            for c in rows
        ],
        "truncated": report.changed > len(rows),
    }
    return env.get_template("diff.html.j2").render(page)
