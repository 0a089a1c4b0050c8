"""Load, validate and compile a whole set of rulesets into policies, or load nothing.

``load_policy_set`` reads every file, checks the set as SPEC §3 lists (YAML, schema, expression
syntax, unknown paths, duplicate ids, unknown templates, actions and roles, unreachable table
rows, output dependency cycles) and raises one :class:`ValidationFailed` holding every problem.
Only a clean set is compiled: each policy becomes strata of durable_rules rulesets, ordered so a
rule reading ``outputs.X`` runs after every rule that can set ``X``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dealdesk.deal import schema as deals
from dealdesk.errors import (
    Location,
    RulesetError,
    RulesetWarning,
    UsageError,
    ValidationFailed,
    closest,
    short_repr,
)
from dealdesk.rules.expressions import (
    And,
    Compare,
    Const,
    Exists,
    Expr,
    ExpressionError,
    Field,
    FieldType,
    InList,
    Matches,
    Not,
    Or,
    Quantifier,
    Scope,
    check_test,
    output_reads,
    parse_expression,
)
from dealdesk.rules.loader import load_yaml_cached, lookup_path
from dealdesk.rules.meaning import to_decimal
from dealdesk.rules.model import (
    Actions,
    OutputSpec,
    Ruleset,
    Table,
    Text,
    read_ruleset,
    readable,
    schema_errors,
)
from dealdesk.rules.tables import CellError, cell_interval, covers, parse_cell

if TYPE_CHECKING:
    from dealdesk.manager import Plugins
    from dealdesk.templating import Renderer

RULESET_SUFFIXES = (".yaml", ".yml")
#: A file of one of these names among the rulesets holds the approver ranks, never a ruleset.
APPROVERS_FILES = frozenset({"approvers.yaml", "approvers.yml"})
#: How messages name the house ranks (the file inside the installed package is a long path).
HOUSE_APPROVERS = "rulesets/approvers.yaml"


@dataclass
class CompiledRule:
    """One rule, or one row of a decision table, ready to evaluate."""

    key: str  # the durable rule name, unique in the set
    id: str  # the rule id, or the table id for a row
    ruleset: Ruleset
    priority: int
    order: tuple[int, int, int]  # (ruleset index, position in file, table row)
    condition: Expr
    then: Actions
    sets: dict[str, Any]  # output -> literal or Expr
    args: dict[str, Any]  # action argument -> literal or Expr (nested literals kept)
    location: Location
    table: Table | None = None
    row: int | None = None
    stratum: int = 0
    description: str = ""  # the rule's, or the table's for a row
    unit: str = field(init=False)  # the rule, or the whole table for a row: strata keep it whole
    messages: tuple[tuple[str, str], ...] = field(init=False)  # (effects bucket, message text)

    rank: tuple[int, tuple[int, int]] = field(init=False)  # priority, then file order

    def __post_init__(self) -> None:
        self.unit = self.key.split("#")[0]
        self.rank = (-self.priority, self.order[:2])
        self.messages = tuple(
            (bucket, text.value)
            for bucket, text in (
                ("rejects", self.then.reject),
                ("flags", self.then.flag),
                ("reasons", self.then.reason),
            )
            if text is not None
        )

    @property
    def label(self) -> str:
        """``PM-5`` for a rule, ``PM-5 row 3`` for a table row (rows counted from 1)."""
        return self.id if self.row is None else f"{self.id} row {self.row + 1}"

    def reads(self) -> set[str]:
        names = output_reads(self.condition)
        for value in [*self.sets.values(), *self.args.values()]:
            if isinstance(value, Expr):
                names |= output_reads(value)
        return names


@dataclass
class Stratum:
    """Rules that read only outputs of earlier strata (SPEC §3), in file order; an engine
    matches them all against one view of the deal and its outputs so far."""

    rules: list[CompiledRule]


@dataclass
class Policy:
    name: str
    rulesets: list[Ruleset]
    outputs: dict[str, OutputSpec]
    strata: list[Stratum]
    rules: list[CompiledRule]
    templates: Path | None = None
    plugin: str = ""
    defaults: dict[str, Any] = field(init=False)  # each declared output's value when unset

    def __post_init__(self) -> None:
        self.defaults = {name: spec.default for name, spec in self.outputs.items()}

    def applicable(self, close: str | None) -> set[str]:
        """Names of the rulesets whose effective window holds the deal's close date."""
        return {r.name for r in self.rulesets if r.applies_on(close)}


@dataclass
class PolicySet:
    policies: dict[str, Policy]
    rulesets: list[Ruleset]
    approvers: list[str]
    digest: str = ""
    warnings: list[RulesetError] = field(default_factory=list)  # shown by `dealdesk validate`

    @property
    def versions(self) -> dict[str, str]:
        return {r.name: r.version for r in sorted(self.rulesets, key=lambda r: r.name)}


@dataclass
class Environment:
    """What validation checks names against: plugin facts, policy families, actions, clauses."""

    families: Mapping[str, Any]  # policy name -> PolicyFamily (has .facts, .templates, .plugin)
    actions: Iterable[str] = ()
    has_clause: Callable[[str], bool] = lambda _: True
    approvers: Sequence[str] = ()
    extra_facts: Mapping[str, str] = field(default_factory=dict)
    # the problem with a message template, or None (Renderer.message_problem)
    check_message: Callable[[str], str | None] = lambda _: None
    # known clause ids, for "did you mean"; listed only then (listing loads the template engine)
    clause_ids: Callable[[], Sequence[str]] = tuple
    # the load-time problem with a clause's templates, or None (Renderer.clause_problem)
    check_clause: Callable[[str], str | None] = lambda _: None
    # the names a message template reads, with their lines (Renderer.message_reads)
    message_reads: Callable[[str], Sequence[tuple[str, int]]] = lambda _: ()

    @classmethod
    def of(cls, plugins: Plugins, renderer: Renderer) -> Environment:
        """Everything the collected plugins and their templates make known."""
        return cls(
            plugins.policies,
            plugins.actions,
            renderer.has_clause,
            house_approvers(),
            plugins.fact_types,
            renderer.message_problem,
            renderer.clause_ids,
            renderer.clause_problem,
            renderer.message_reads,
        )


def house_rulesets() -> Path:
    """The folder of the house rulesets (package ``dealdesk.rulesets``), as
    ``importlib.resources.files`` finds it on disk."""
    import dealdesk.rulesets

    return Path(dealdesk.rulesets.__file__).parent


def house_approvers() -> list[str]:
    """Approver roles in rank order, from ``rulesets/approvers.yaml``."""
    return read_approvers(house_rulesets() / "approvers.yaml")


def is_approvers_file(path: Path) -> bool:
    """Whether ``path`` holds approver ranks (``approvers.yaml``) rather than a ruleset."""
    return path.name in APPROVERS_FILES


def read_approvers(path: Path) -> list[str]:
    """The approver roles of an ``approvers.yaml``, lowest rank first.

    The file holds one key, ``approvers``: a list of distinct role names.

    :raises RulesetError: the file's first problem, located.
    :raises UsageError: the file cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    doc = load_yaml_cached(text, str(path))
    data = doc.data
    if not isinstance(data, dict) or "approvers" not in data:
        raise RulesetError(
            "an approvers file holds the approver ranks: `approvers: [lowest, ..., highest]`",
            doc.location(()),
        )
    for key in data:
        if key != "approvers":
            raise RulesetError(
                f"unknown key {key!r} (an approvers file holds only `approvers`)",
                doc.key_location((key,)),
                closest(key, ["approvers"]),
            )
    roles = data["approvers"]
    if not isinstance(roles, list) or not roles:
        raise RulesetError(
            "approvers: expected a list of roles, lowest rank first", doc.location(("approvers",))
        )
    seen: set[str] = set()
    for i, role in enumerate(roles):
        if not isinstance(role, str) or not role.strip():
            raise RulesetError(
                f"approvers: a role is a name, got {short_repr(role)}",
                doc.location(("approvers", i)),
            )
        if role in seen:
            raise RulesetError(
                f"approvers: role {role!r} is listed twice", doc.location(("approvers", i))
            )
        seen.add(role)
    return list(roles)


def ruleset_files(paths: Iterable[Path | str]) -> list[Path]:
    """Every file of the set under ``paths`` (files as given, directories searched, sorted):
    the rulesets and any approver ranks (:func:`is_approvers_file`), which
    :func:`load_policy_set` tells apart."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.suffix in RULESET_SUFFIXES and p.is_file())
            )
        elif path.is_file():
            files.append(path)
            # a ruleset named by itself keeps the approver ranks of its folder, as when the
            # folder is named (the path stays as the user gave it, for messages)
            beside = [path.parent / name for name in sorted(APPROVERS_FILES)]
            files.extend(p for p in beside if p != path and p.is_file() and p not in files)
        else:
            raise UsageError(f"{path}: no such ruleset file or directory")
    return files


def load_policy_set(paths: Iterable[Path | str], env: Environment) -> PolicySet:
    """Read, validate and compile the rulesets under ``paths``.

    An ``approvers.yaml`` among them gives the approver ranks in place of ``env.approvers``
    (the house ranks); several must agree.

    :raises ValidationFailed: with every problem found; nothing is loaded then.
    :raises UsageError: when a path does not exist or cannot be read.
    """
    errors: list[RulesetError] = []
    rulesets: list[Ruleset] = []
    files = ruleset_files(paths)
    ranks = _ranks([f for f in files if is_approvers_file(f)], errors)
    for path in files:
        if is_approvers_file(path):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot read: {exc}") from None
        try:
            doc = load_yaml_cached(text, str(path), tolerant=True)
            errors.extend(doc.problems)  # a duplicate key need not hide the rest of the file
            if not isinstance(doc.data, dict):
                raise RulesetError(
                    "a ruleset file must hold a mapping (ruleset:, policy:, rules: ...)",
                    doc.location(()),
                )
            problems = schema_errors(doc, text)
            if problems:
                errors.extend(problems)
                # the rest of the file is still checked: one problem must not hide the others
                usable = readable(doc)
                if usable is None:
                    continue
                doc = usable
            ruleset = read_ruleset(doc, checked=True)  # nothing schema_errors found is left
            ruleset.source = text
            rulesets.append(ruleset)
        except RulesetError as exc:
            errors.append(exc)
    builder = _Builder(env, errors, ranks)
    policy_set = builder.build(rulesets)
    warnings = list({str(w): w for w in builder.warnings}.values())
    if errors:
        # each problem once, though two checks (or two files) may find the same one
        raise ValidationFailed({str(e): e for e in errors}.values(), warnings)
    policy_set.warnings = warnings
    return policy_set


def _ranks(files: list[Path], errors: list[RulesetError]) -> tuple[list[str], str] | None:
    """The approver ranks of the set's ``approvers.yaml`` files and the one that gave them, or
    None when there is none (or none readable: its problem is in ``errors``)."""
    found: tuple[list[str], str] | None = None
    for path in files:
        try:
            roles = read_approvers(path)
        except RulesetError as exc:
            errors.append(exc)
            continue
        name = _approvers_name(path)
        if found is None:
            found = (roles, name)
        elif roles != found[0]:
            errors.append(
                RulesetError(
                    f"approver ranks differ from those in {found[1]}; "
                    "a set has one approvers.yaml (or copies of it)",
                    Location(str(path), 1, 1),
                )
            )
    return found


def _approvers_name(path: Path) -> str:
    house = house_rulesets() / "approvers.yaml"
    try:
        return HOUSE_APPROVERS if path.resolve() == house.resolve() else str(path)
    except OSError:
        return str(path)


class _Builder:
    def __init__(
        self,
        env: Environment,
        errors: list[RulesetError],
        ranks: tuple[list[str], str] | None = None,
    ):
        self.env = env
        self.errors = errors
        self.warnings: list[RulesetError] = []
        # the outputs a message of the policy being built may read, and whether a plugin
        # action may set others (see message_names)
        self.readable_outputs: set[str] = set()
        self.any_action = False
        self.clause_problems: dict[str, str | None] = {}
        self.actions = set(env.actions)
        # the set's own approvers.yaml replaces the environment's (house) ranks
        self.approvers = list(ranks[0]) if ranks else list(env.approvers)
        self.approvers_file = ranks[1] if ranks else HOUSE_APPROVERS
        self.custom_ranks = ranks is not None and ranks[0] != list(env.approvers)

    def error(
        self,
        ruleset: Ruleset,
        path: tuple[str | int, ...],
        message: str,
        suggestion: str | None = None,
    ) -> None:
        self.errors.append(RulesetError(message, ruleset.location(path), suggestion))

    def expression(
        self, ruleset: Ruleset, text: Text, scope: Scope, *, value: bool = False
    ) -> Expr | None:
        prefixed = value and text.value.startswith("=")
        source = text.value[1:] if prefixed else text.value
        try:
            return parse_expression(source, scope, value=value)
        except ExpressionError as exc:
            line, col = exc.pos
            if prefixed and line == 1:
                col += 1  # the '=' prefix
            self.errors.append(
                RulesetError(exc.message, ruleset.location(text.path, (line, col)), exc.suggestion)
            )
            return None

    def build(self, rulesets: list[Ruleset]) -> PolicySet:
        seen: dict[str, Ruleset] = {}
        by_policy: dict[str, list[Ruleset]] = {}
        for ruleset in rulesets:
            if ruleset.name in seen:
                self.error(
                    ruleset,
                    ("ruleset",),
                    f"ruleset {ruleset.name!r} is also defined in {seen[ruleset.name].file}",
                )
                continue
            seen[ruleset.name] = ruleset
            policy = ruleset.policy
            if policy not in self.env.families:
                suggestion = closest(policy, self.env.families)
                self.error(
                    ruleset,
                    ("policy",),
                    f"unknown policy family {policy!r} (no plugin registers it)",
                    suggestion,
                )
                # its rules are still checked, with the family it most likely means: the set
                # fails anyway, and the author sees every problem in one run
                policy = suggestion or policy
            by_policy.setdefault(policy, []).append(ruleset)
        policies = {name: self.policy(name, members) for name, members in sorted(by_policy.items())}
        digest = hashlib.sha256()
        for ruleset in sorted(seen.values(), key=lambda r: r.name):
            digest.update(ruleset.name.encode() + b"\0" + ruleset.source.encode() + b"\0")
        if self.custom_ranks:  # they order approvals; the house ranks go with dealdesk's version
            digest.update(b"approvers\0" + "\0".join(self.approvers).encode())
        return PolicySet(
            policies, list(seen.values()), self.approvers, f"sha256:{digest.hexdigest()}"
        )

    def scope(self, outputs: Mapping[str, OutputSpec]) -> Scope:
        known: dict[str, FieldType] = {
            path: FieldType(f.type, f.enum) for path, f in deals.FIELDS.items()
        }
        for path, kind in self.env.extra_facts.items():
            known.setdefault(path, FieldType(str(kind)))
        known["outputs"] = FieldType("object")
        for name, spec in outputs.items():
            known[f"outputs.{name}"] = FieldType(_OUTPUT_TYPES.get(spec.type, "any"))
        return Scope(known)

    def policy(self, name: str, rulesets: list[Ruleset]) -> Policy:
        outputs: dict[str, OutputSpec] = {}
        for ruleset in rulesets:
            for out_name, spec in ruleset.outputs.items():
                other = outputs.get(out_name)
                if other and (other.combine, other.type) != (spec.combine, spec.type):
                    self.error(
                        ruleset,
                        ("outputs", out_name),
                        f"output {out_name!r} is declared differently at {other.location}",
                    )
                outputs.setdefault(out_name, spec)
                if not _of_type(spec.default, spec.type):
                    self.error(
                        ruleset,
                        ("outputs", out_name, "default"),
                        f"output {out_name!r} has type {spec.type}, but its default "
                        f"{_yaml_repr(spec.default)} is not {_TYPE_NAMES[spec.type]}",
                    )
        scope = self.scope(outputs)
        thens = [
            then
            for ruleset in rulesets
            for then in [
                *(rule.then for rule in ruleset.rules),
                *(row.then for table in ruleset.tables for row in table.rows),
            ]
        ]
        self.readable_outputs = set(outputs) | {n for then in thens for n in then.sets}
        self.any_action = any(then.action is not None for then in thens)
        rules: list[CompiledRule] = []
        ids: dict[str, Location] = {}
        for index, ruleset in enumerate(rulesets):
            for rule in ruleset.rules:
                loc = ruleset.location(rule.path)
                self.unique_id(ruleset, rule.id, (*rule.path, "id"), ids)
                condition = self.expression(ruleset, rule.when, scope)
                then = self.actions_of(ruleset, rule.then, outputs, scope)
                if condition is None or then is None:
                    continue
                rules.append(
                    CompiledRule(
                        f"{ruleset.name}/{rule.id}",
                        rule.id,
                        ruleset,
                        rule.priority,
                        (index, rule.order, 0),
                        condition,
                        rule.then,
                        then[0],
                        then[1],
                        loc,
                        description=rule.description,
                    )
                )
            for table in ruleset.tables:
                self.unique_id(ruleset, table.id, (*table.path, "id"), ids)
                rules.extend(self.table(ruleset, index, table, outputs, scope))
        strata = self.stratify(rules, outputs)
        family = self.env.families.get(name)
        return Policy(
            name,
            rulesets,
            outputs,
            strata,
            rules,
            getattr(family, "templates", None),
            getattr(family, "plugin", ""),
        )

    def unique_id(
        self, ruleset: Ruleset, rule_id: str, path: tuple[str | int, ...], ids: dict[str, Location]
    ) -> None:
        if rule_id in ids:
            self.error(ruleset, path, f"duplicate rule id {rule_id!r} (first at {ids[rule_id]})")
        else:
            ids[rule_id] = ruleset.location(path)

    def actions_of(
        self, ruleset: Ruleset, then: Actions, outputs: Mapping[str, OutputSpec], scope: Scope
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        ok = True
        sets: dict[str, Any] = {}
        for name, value in then.sets.items():
            # an undeclared output is fine (combined with `first`, SPEC §3), but a near miss of
            # a declared one is more likely a typo than a new output: a warning that says both
            typo = None if name in outputs else closest(name, outputs, cutoff=0.8)
            if typo is not None:
                self.warnings.append(
                    RulesetWarning(
                        f"output {name!r} is not declared under outputs: did you mean {typo!r}? "
                        f"(or declare {name!r} under outputs:)",
                        ruleset.location((*then.path, "set", name)),
                    )
                )
            sets[name] = self.value(ruleset, value, scope)
        args = {name: self.value(ruleset, value, scope) for name, value in then.args.items()}
        if any(v is _INVALID for v in [*sets.values(), *args.values()]):
            ok = False
        for i, role in enumerate(then.require):
            if self.approvers and role not in self.approvers:
                path = (
                    (*then.path, "require")
                    if len(then.require) == 1 and isinstance(role, str)
                    else (*then.path, "require", i)
                )
                self.error(
                    ruleset,
                    path,
                    f"unknown approver role {role!r} (see {self.approvers_file})",
                    closest(role, self.approvers),
                )
                ok = False
        for i, clause in enumerate(then.clauses):
            if not self.env.has_clause(clause):
                self.error(
                    ruleset,
                    (*then.path, "clause", i) if len(then.clauses) > 1 else (*then.path, "clause"),
                    f"unknown clause template {clause!r} (no {clause}.md.j2 in any template directory)",
                    closest(clause, self.env.clause_ids(), cutoff=0.8),  # ids share prefixes
                )
                ok = False
            elif clause not in self.clause_problems:
                # a template's problem is reported once, where the first rule asks for it
                problem = self.clause_problems[clause] = self.env.check_clause(clause)
                if problem:
                    self.error(
                        ruleset,
                        (*then.path, "clause", i)
                        if len(then.clauses) > 1
                        else (*then.path, "clause"),
                        f"clause template {clause!r} cannot render: {problem}",
                    )
                    ok = False
        for key in ("reject", "flag", "reason"):
            text = getattr(then, key)
            problem = self.env.check_message(text.value) if text is not None else None
            if problem:
                self.error(ruleset, (*then.path, key), f"{key} message: {problem}")
                ok = False
            elif text is not None and not self.message_names(ruleset, key, text, scope):
                ok = False
        if then.action is not None and then.action not in self.actions:
            self.error(
                ruleset,
                (*then.path, "action"),
                f"unknown action {then.action!r} (no plugin registers it)",
                closest(then.action, self.actions),
            )
            ok = False
        return (sets, args) if ok else None

    def message_names(self, ruleset: Ruleset, key: str, text: Text, scope: Scope) -> bool:
        """Check the names message ``text`` reads against what a message sees (SPEC §8): the
        deal's fields and derived facts, plugin facts, ``outputs``, ``rule`` and ``decision``.

        A name that no deal can carry without being a typo is an error: a key inside one of
        the schema's objects that it does not declare (``customer.nmae``; a deal holding it is
        flagged as a typo), a near miss of a known top-level name (``custmer``, as the deal's
        own unknown-field check reads it), ``decision.X`` other than its three keys, and an
        output nothing in the policy sets. A top-level name nothing declares and close to
        nothing (``owner``) may be the deal's own field (SPEC §2 keeps those): a warning, since
        a deal without it cannot render the message. Returns False when there was an error.
        """
        ok = True
        known = scope.fields
        roots = {path.split(".")[0].removesuffix("[]") for path in known}
        for dotted, line in self.env.message_reads(text.value):
            parts = dotted.split(".")
            root = parts[0]
            problem: tuple[str, str | None, bool] | None = None  # message, suggestion, error?
            if root == "decision":
                if len(parts) > 1 and parts[1] not in _DECISION_KEYS:
                    guess = closest(parts[1], _DECISION_KEYS)
                    problem = (
                        f"the decision so far has no {parts[1]!r} "
                        f"(it has {', '.join(_DECISION_KEYS)})",
                        f"decision.{guess}" if guess else None,
                        True,
                    )
            elif root == "outputs":
                if len(parts) > 1 and parts[1] not in self.readable_outputs:
                    guess = closest(parts[1], self.readable_outputs)
                    problem = (
                        f"no rule of policy {ruleset.policy!r} sets output {parts[1]!r}"
                        + (" (unless an action does)" if self.any_action else ""),
                        f"outputs.{guess}" if guess else None,
                        not self.any_action,
                    )
            elif root == "rule" or root in _MESSAGE_ONLY:
                pass
            elif root in roots:
                problem = self.unknown_member(parts, known)
            else:
                names = sorted(roots | {"outputs", "rule", "decision"})
                guess = closest(root, names, cutoff=0.8)
                if guess is not None:
                    fixed = ".".join([guess, *parts[1:]])
                    problem = (f"unknown name {root!r}", fixed if fixed in known else guess, True)
                else:
                    problem = (
                        f"{root!r} is not a field of the deal schema, a derived fact or a plugin"
                        " fact: a deal without it cannot render this message",
                        None,
                        False,
                    )
            if problem is None:
                continue
            message, suggestion, is_error = problem
            offset = _name_offset(text.value, line, dotted) or _name_offset(text.value, line, root)
            where = ruleset.location(text.path, offset)
            kind = RulesetError if is_error else RulesetWarning
            found = kind(f"{key} message: {message}", where, suggestion)
            (self.errors if is_error else self.warnings).append(found)
            ok = ok and not is_error
        return ok

    @staticmethod
    def unknown_member(
        parts: list[str], known: Mapping[str, FieldType]
    ) -> tuple[str, str | None, bool] | None:
        """The problem with ``parts`` under a known top-level name: a key one of the deal
        schema's objects does not declare (a plugin may declare more of them). Inside a list, a
        plugin's own object or past a value: not checked (as the deal's unknown-field check)."""
        for depth in range(1, len(parts)):
            parent = ".".join(parts[:depth])
            children = [p for p in known if p.startswith(f"{parent}.")]
            if parent not in deals.FIELDS or known[parent].type != "object" or not children:
                return None  # a value (its methods), a list, or an object only a plugin knows
            path = ".".join(parts[: depth + 1])
            if path not in known:
                return (
                    f"unknown name {path!r}",
                    closest(path, [c for c in children if c.count(".") == depth]),
                    True,
                )
        return None

    def value(self, ruleset: Ruleset, value: Any, scope: Scope) -> Any:
        if isinstance(value, Text):
            parsed = self.expression(ruleset, value, scope, value=True)
            return _INVALID if parsed is None else parsed
        return value

    def table(
        self,
        ruleset: Ruleset,
        index: int,
        table: Table,
        outputs: Mapping[str, OutputSpec],
        scope: Scope,
    ) -> list[CompiledRule]:
        parsed = [self.expression(ruleset, text, scope, value=True) for text in table.inputs]
        inputs = [i for i in parsed if i is not None]
        if len(inputs) < len(parsed):
            return []
        rows: list[CompiledRule] = []
        intervals: list[list[Any]] = []
        for row in table.rows:
            if len(row.cells) != len(inputs):
                self.error(
                    ruleset,
                    (*row.path, "when"),
                    f"row {row.index + 1} has {len(row.cells)} cells for {len(inputs)} inputs",
                )
                continue
            tests: list[Expr] = []
            for col, (cell, subject) in enumerate(zip(row.cells, inputs, strict=True)):
                try:
                    test = parse_cell(cell, subject)
                except CellError as exc:
                    where = (*row.path, "when", col)
                    self.error(ruleset, where, f"cell {short_repr(cell)}: {exc}", exc.suggestion)
                    continue
                problem = check_test(test) if test is not None else None
                if problem:
                    where = (*row.path, "when", col)
                    self.error(ruleset, where, f"cell {short_repr(cell)}: {problem[0]}", problem[1])
                elif test is not None:
                    tests.append(test)
            intervals.append([cell_interval(c) for c in row.cells])
            if table.hit == "first":
                for earlier, covered in enumerate(intervals[:-1]):
                    if all(covers(o, i) for o, i in zip(covered, intervals[-1], strict=True)):
                        self.error(
                            ruleset,
                            row.path,
                            f"row {row.index + 1} of table {table.id!r} is unreachable: row {earlier + 1} matches everything it matches first",
                        )
                        break
            then = self.actions_of(ruleset, row.then, outputs, scope)
            if then is None:
                continue
            condition: Expr = And((1, 0), tuple(tests)) if tests else Const((1, 0), True, "boolean")
            rows.append(
                CompiledRule(
                    f"{ruleset.name}/{table.id}#{row.index + 1}",
                    table.id,
                    ruleset,
                    table.priority,
                    (index, table.order, row.index),
                    condition,
                    row.then,
                    then[0],
                    then[1],
                    ruleset.location(row.path),
                    table,
                    row.index,
                    description=table.description,
                )
            )
        if table.hit in ("priority", "output order"):
            if not table.value_order:
                self.error(
                    ruleset,
                    table.path,
                    f"hit policy {table.hit!r} needs priority: {{OUTPUT: [highest, ..., lowest]}}",
                )
            self.value_order(ruleset, table)
        if table.aggregation and table.hit != "collect":
            self.error(
                ruleset,
                (*table.path, "aggregation"),
                "aggregation applies to hit policy collect only",
            )
        elif table.aggregation:
            outputs_set = {tuple(sorted(row.then.sets)) for row in table.rows}
            if len(outputs_set) != 1 or len(next(iter(outputs_set))) != 1:
                self.error(
                    ruleset,
                    (*table.path, "aggregation"),
                    f"aggregation {table.aggregation} needs every row to set the same one output",
                )
            elif table.aggregation != "count":
                self.aggregated_numbers(ruleset, table, rows)
        return rows

    def value_order(self, ruleset: Ruleset, table: Table) -> None:
        """Each output a priority / output order table orders is one its rows set, and each
        value they set it to is in its order (else the row would rank below every other)."""
        raw = lookup_path(ruleset.document.data, table.path)
        key = (
            "output_priority" if isinstance(raw, dict) and "output_priority" in raw else "priority"
        )
        set_by_rows = list(dict.fromkeys(name for row in table.rows for name in row.then.sets))
        for name, order in table.value_order.items():
            if name not in set_by_rows:
                typo = closest(name, set_by_rows)
                self.errors.append(
                    RulesetError(
                        f"{key}: output {name!r} is set by no row of table {table.id!r}"
                        + (
                            ""
                            if typo or not set_by_rows
                            else f" (rows set: {', '.join(set_by_rows)})"
                        ),
                        ruleset.document.key_location((*table.path, key, name)),
                        typo,
                    )
                )
                continue
            for row in table.rows:
                value = row.then.sets.get(name)
                if name not in row.then.sets or isinstance(value, Text) or _in_order(value, order):
                    continue  # an expression's value is known per deal only
                shown = ", ".join(_yaml_repr(v) for v in order)
                self.error(
                    ruleset,
                    (*row.then.path, "set", name),
                    f"{_yaml_repr(value)} is not in the {key} order of {name!r} ({shown})",
                    closest(str(value), [str(v) for v in order]),
                )

    def aggregated_numbers(
        self, ruleset: Ruleset, table: Table, compiled: Sequence[CompiledRule]
    ) -> None:
        """An aggregation sum, min or max adds up or compares numbers: a row setting anything
        else would be dropped (or be the result) silently."""
        parsed = {rule.row: rule.sets for rule in compiled}
        for row in table.rows:
            for name, value in row.then.sets.items():
                if isinstance(value, Text):
                    # an expression: its type, when the row compiled (else its error is out)
                    kind = getattr(parsed.get(row.index, {}).get(name), "type", "any")
                    if kind in ("number", "any"):
                        continue
                    shown = (
                        f"{value.value!r}, which is {'an' if kind[0] in 'aeiou' else 'a'} {kind}"
                    )
                elif not isinstance(value, bool) and to_decimal(value) is not None:
                    continue
                else:
                    shown = _yaml_repr(value)
                self.error(
                    ruleset,
                    (*row.then.path, "set", name),
                    f"aggregation {table.aggregation} needs numbers, but row {row.index + 1} "
                    f"sets {name!r} to {shown}",
                )

    def stratify(
        self, rules: list[CompiledRule], outputs: Mapping[str, OutputSpec]
    ) -> list[Stratum]:
        # a decision table is one unit: its rows share a stratum so its hit policy sees them all
        units: dict[str, list[CompiledRule]] = {}
        for rule in rules:
            units.setdefault(rule.unit, []).append(rule)
        set_by_set = {name for r in rules for name in r.sets}
        setters: dict[str, set[str]] = {}
        reads: dict[str, set[str]] = {}
        for unit, members in units.items():
            reads[unit] = set().union(*(r.reads() for r in members))
            for rule in members:
                names = set(rule.sets)
                if rule.then.action is not None:
                    # An action may set any output; assume it sets those no `set` sets.
                    names |= set(outputs) - set_by_set
                for name in names:
                    setters.setdefault(name, set()).add(unit)
        level: dict[str, int] = {}
        visiting: list[str] = []

        def depth(unit: str) -> int:
            if unit in level:
                return level[unit]
            if unit in visiting:
                cycle = " -> ".join([*visiting[visiting.index(unit) :], unit])
                raise RulesetError(
                    f"outputs depend on each other in a cycle: {cycle}", units[unit][0].location
                )
            visiting.append(unit)
            deps = sorted({s for name in reads[unit] for s in setters.get(name, ()) if s != unit})
            level[unit] = max((depth(d) + 1 for d in deps), default=0)
            visiting.pop()
            return level[unit]

        for unit, members in units.items():
            try:
                stratum = depth(unit)
            except RulesetError as exc:
                self.errors.append(exc)
                return []
            for rule in members:
                rule.stratum = stratum
        for rule in rules:
            if self.never_true(rule):
                self.errors.append(
                    RulesetError(f"the condition of {rule.id!r} can never be true", rule.location)
                )
        return [
            Stratum([r for r in rules if r.stratum == k])
            for k in range(max((r.stratum for r in rules), default=-1) + 1)
        ]

    @staticmethod
    def never_true(rule: CompiledRule) -> bool:
        return never_true(rule.condition)


def never_true(condition: Expr) -> bool:
    """Whether ``condition`` can never be true: its disjunctive normal form (the durable
    lowering's) has no alternative, e.g. ``exists(x) and not exists(x)``."""
    if _alternatives(condition, True):
        return False
    # a condition with no alternative found here (rare: a constant, a contradiction): the
    # lowering decides, as it always did
    from dealdesk.engines.durable.lowering import ConditionCompiler

    return not ConditionCompiler().compile(condition)


#: An alternative of a condition's normal form, as its presence tests: (path, present) pairs.
_Alternative = frozenset[tuple[str, bool]]
#: Alternatives kept per sub-expression; one is enough to show that a condition can hold.
_KEPT = 16


def _alternatives(expr: Expr, positive: bool) -> list[_Alternative]:
    """Some alternatives of the durable lowering's normal form of ``expr`` (of ``not expr`` when
    not ``positive``), each given by the presence tests it holds or more, none contradictory.

    An alternative drops out of the lowering's normal form only by being constant false or by
    testing one path both present and missing; comparisons test their fields present, arithmetic
    and ``matches()`` become fields of their own, and a quantifier is one test of its list.
    Returning fewer alternatives than there are is always safe: none found means "ask the
    lowering", so this needs to be exact only in what it returns.
    """
    match expr:
        case Not(operand=operand):
            return _alternatives(operand, not positive)
        case And(operands=operands) | Or(operands=operands):
            parts = [_alternatives(o, positive) for o in operands]
            if isinstance(expr, And) == positive:  # all of them
                found: list[_Alternative] = [frozenset()]
                for part in parts:
                    found = [a | b for a in found for b in part if _consistent(a | b)][:_KEPT]
                return found
            return list(dict.fromkeys(a for part in parts for a in part))[:_KEPT]
        case Exists(target=target):
            return [frozenset({(_name(target), positive)})]
        case Compare(left=left, right=right):
            if isinstance(left, Const) and isinstance(right, Const):
                return []  # computed while lowering: true or false
            if _null(left) or _null(right):
                return []
            return [frozenset((_name(f), True) for f in (left, right) if isinstance(f, Field))]
        case InList(operand=operand, values=values):
            if not values or isinstance(operand, Const) or any(_null(v) for v in values):
                return []
            return [frozenset({(_name(operand), True)} if isinstance(operand, Field) else ())]
        case Matches():
            return [frozenset()]
        case Quantifier(kind=kind, body=body) if kind in ("any", "all"):
            # `not any(...)` holds on an empty list, which is tested by its length alone
            return [frozenset()] if not positive or _alternatives(body, True) else []
        case Const(value=value):
            return [frozenset()] if value is not None and bool(value) == positive else []
    return []


def _name(field: Field) -> str:
    return f"$i.{field.path}" if field.item else field.path


def _null(expr: Expr) -> bool:
    return isinstance(expr, Const) and expr.value is None


def _consistent(alternative: _Alternative) -> bool:
    return not any((name, not present) in alternative for name, present in alternative)


_INVALID = object()

#: What ``decision`` holds in a message (SPEC §8): the record so far.
_DECISION_KEYS = ("status", "approvals", "reasons")
#: Names every message has besides the deal's (``outputs``, ``rule``, ``decision`` aside).
_MESSAGE_ONLY = frozenset({"loop", "self", "super", "varargs", "kwargs", "caller"})


def _name_offset(message: str, line: int, name: str) -> tuple[int, int] | None:
    """(line, column) of the first read of ``name`` inside a ``{{``/``{%`` of ``message``'s
    line ``line``, for a location that points at it; None when it cannot be found."""
    import re

    lines = message.split("\n")
    if not 0 < line <= len(lines):
        return None
    text = lines[line - 1]
    opened = text.find("{")
    for found in re.finditer(rf"(?<![\w.]){re.escape(name)}(?!\w)", text):
        if opened >= 0 and found.start() > opened:
            return (line, found.start())
    return None


#: Each declared output type in words, for the message of a default of another type.
_TYPE_NAMES = {
    "money": "an amount",
    "fraction": "a number",
    "number": "a number",
    "integer": "a whole number",
    "string": "a string",
    "boolean": "true or false",
    "list": "a list",
    "object": "a mapping",
}


def _of_type(value: Any, kind: str) -> bool:
    """Whether a declared output's ``default`` fits its declared type (null fits every type:
    it is the value of an output nobody set)."""
    if value is None or kind == "any":
        return True
    if kind in ("money", "fraction", "number", "integer"):
        number = None if isinstance(value, bool) else to_decimal(value)
        if number is None or not number.is_finite():
            return False
        return kind != "integer" or number == number.to_integral_value()
    expected = {"string": str, "boolean": bool, "list": list, "object": dict}.get(kind)
    return expected is None or isinstance(value, expected)


def _yaml_repr(value: Any) -> str:
    """A value as the ruleset's YAML writes it (true, not True), cut short."""
    return ("true" if value else "false") if isinstance(value, bool) else short_repr(value)


def _in_order(value: Any, order: Sequence[Any]) -> bool:
    """Whether ``value`` is one of ``order``, as evaluation ranks it (0.4 is 0.40)."""
    number = None if isinstance(value, bool) else to_decimal(value)
    return any(
        v == value
        and isinstance(v, bool) == isinstance(value, bool)
        or (number is not None and not isinstance(v, bool) and to_decimal(v) == number)
        for v in order
    )


_OUTPUT_TYPES = {
    "money": "number",
    "fraction": "number",
    "number": "number",
    "integer": "number",
    "string": "string",
    "boolean": "boolean",
    "list": "array",
    "object": "object",
}
