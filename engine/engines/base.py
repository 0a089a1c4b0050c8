"""The engine interface: a chunk of prepared deals in, each deal's policy runs out (SPEC §9).

An engine is built once per process from a validated policy set and the plugin actions. The
per-deal engines (``native``, ``durable``) differ only in how they match a stratum's rules
against one view of a deal, so they implement :meth:`Engine.match` and share
:class:`~dealdesk.evaluate.PolicyRunner` for everything after; a columnar engine overrides
:meth:`Engine.evaluate` to work on the whole chunk at once. Whatever the engine, the records
are byte-identical: the record never says which engine made it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from dealdesk.errors import record_error
from dealdesk.evaluate import PolicyRun, PolicyRunner

if TYPE_CHECKING:
    from dealdesk.combine import Combiner
    from dealdesk.manager import RegisteredAction
    from dealdesk.rules.policyset import CompiledRule, Policy, PolicySet


@dataclass
class Evaluation:
    """One deal's outcome: its policy runs, or the error that made it invalid."""

    runs: dict[str, PolicyRun] = field(default_factory=dict)
    error: dict[str, Any] | None = None


class Groups(Protocol):
    """A chunk's deals by group (:meth:`Engine.grouped`); ``index`` counts the chunk's deals."""

    def key(self, index: int) -> Hashable | None:
        """The deal's group, or None: its record is made in full."""

    def fill(
        self, key: Hashable, index: int, deal_id: Any, data: Mapping[str, Any]
    ) -> tuple[dict[str, Any], str] | None:
        """The summary's keys and the encoded record of a deal of group ``key``, or None when
        the group has no template yet or this deal differs from it."""

    def evaluate(self, index: int) -> Evaluation:
        """The deal's evaluation, for a record made in full."""

    def prepared(self, index: int) -> tuple[Any, Mapping[str, Any]] | None:
        """A line's deal id and deal as prepared by the engine's reader
        (``Engine.read_lines``), or None when it is to be decided deal by deal."""

    def learn(self, key: Hashable, data: Mapping[str, Any], runs: Mapping[str, PolicyRun]) -> None:
        """Learn what group ``key``'s records share from a deal of it decided in full."""

    def filled(
        self, absent: frozenset[str], rows: Sequence[int] | None = None
    ) -> list[tuple[dict[str, Any], str] | None]:
        """Per deal, the summary's keys and encoded record when its group's template gives it
        without the deal's own data — a line the reader found valid lacking every key of
        ``absent`` (the plugins' enrich hooks add nothing to it) —, else None.

        :param rows: only these deals (the others are None).
        """


class Engine(ABC):
    """Evaluates chunks of prepared deals (deals with their derived facts) into policy runs.

    :param policy_set: a validated policy set.
    :param actions: plugin actions by name (``Plugins.actions``).
    """

    name: ClassVar[str]
    #: Whether :meth:`evaluate` gains from whole chunks (a columnar engine): the executors
    #: then hand it a chunk (in-process) or a worker's whole task at once, not deal by deal.
    chunked: ClassVar[bool] = False
    #: Whether chunks of thousands of deals pay (records made per group, not per deal); else
    #: the executors' chunks stay small: a chunk of deals decided one by one only holds memory.
    large_chunks: bool = False

    def __init__(self, policy_set: PolicySet, actions: Mapping[str, RegisteredAction]):
        self.policy_set = policy_set
        self.runner = PolicyRunner(policy_set, actions)

    def describe(self) -> list[str]:
        """How this engine runs the policy set, for ``validate --verbose``."""
        return [f"{self.name} engine: every rule matched deal by deal"]

    def read_lines(self, lines: Sequence[bytes], combiner: Combiner) -> Groups | None:
        """A chunk of JSONL lines read as columns by the engine itself, in groups; or None:
        the engine takes prepared deals only."""
        return None

    def grouped(self, deals: Sequence[Mapping[str, Any]], combiner: Combiner) -> Groups | None:
        """The chunk's deals in groups whose records (made by ``combiner``, encoded as JSON)
        differ only in a few known places (the columnar engine's record templates), or None:
        every record is made in full."""
        return None

    def evaluate(self, deals: Sequence[Mapping[str, Any]]) -> list[Evaluation]:
        """One :class:`Evaluation` per deal, in order; never raises for a deal's fault."""
        return [self.evaluate_one(deal) for deal in deals]

    def evaluate_one(self, deal: Mapping[str, Any]) -> Evaluation:
        try:
            return Evaluation(self.runner.run(deal, self.match))
        except Exception as exc:  # a failing plugin action, or a bug: it costs this deal only
            return Evaluation(error=record_error(exc))

    @abstractmethod
    def match(
        self, policy: Policy, stratum: int, view: Mapping[str, Any]
    ) -> Iterable[CompiledRule]:
        """The rules of ``policy.strata[stratum]`` whose condition is true on ``view`` (the deal
        with ``outputs`` combined so far), each once, in
        :func:`~dealdesk.evaluate.evaluation_order`."""
