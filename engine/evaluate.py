"""Evaluation of one deal: validate → derive → per policy, per stratum, match on durable_rules →
apply actions in priority order → combine into the decision record.

An :class:`Evaluator` is built once per process from a validated :class:`PolicySet` and the
collected plugins; :meth:`Evaluator.evaluate` never raises for a bad deal or a failing plugin —
the deal's record says ``invalid`` and names the field or the plugin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from dealdesk import combine
from dealdesk.actions import ActionContext, Effects
from dealdesk.deal.validate import check_fact_types, deal_id_of, derive_facts, validate_deal
from dealdesk.errors import DealdeskError, DealError, PluginError
from dealdesk.jsoncodec import check_finite
from dealdesk.manager import Plugins
from dealdesk.rules.expressions import Expr, evaluate, lookup, to_decimal
from dealdesk.rules.policyset import CompiledRule, Policy, PolicySet
from dealdesk.templating import Renderer, template_context

if TYPE_CHECKING:
    from dealdesk.engines.durable.driver import DurableDriver


class RulesetMessage(str):
    """A message written in a ruleset (rendered with Jinja), as opposed to an action's text."""


@dataclass
class Firing:
    """One fired rule (or selected table row) and what it asked for."""

    rule: CompiledRule
    effects: Effects = field(default_factory=Effects)


@dataclass
class PolicyRun:
    """A policy's evaluation of one deal, before formatting."""

    policy: Policy
    firings: list[Firing] = field(default_factory=list)
    contributions: dict[str, list[tuple[tuple[Any, ...], Any]]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def outputs(self) -> dict[str, Any]:
        """Each declared output combined over the values set so far (None when unset)."""
        result: dict[str, Any] = {}
        for name, spec in self.policy.outputs.items():
            # an unknown value (a `set` expression with a missing operand) sets nothing
            values = [
                v
                for _, v in sorted(self.contributions.get(name, []), key=lambda c: c[0])
                if v is not None
            ]
            combined = combine.combine_values(spec.combine, values)
            result[name] = spec.default if combined is None else combined
        return result

    def fired_ids(self) -> list[str]:
        seen: list[str] = []
        for firing in self.firings:
            if firing.rule.id not in seen:
                seen.append(firing.rule.id)
        return seen


class Evaluator:
    """Evaluates deals against one policy set with one set of plugins.

    :param policy_set: a validated set from :func:`dealdesk.rules.policyset.load_policy_set`.
    :param plugins: the collected plugins (actions, enrichers, sinks, combine).
    :param renderer: renders messages and, with ``clauses=True``, the clauses rules ask for.
    :param clauses: render clause texts into the record (the slow part).
    """

    def __init__(
        self,
        policy_set: PolicySet,
        plugins: Plugins,
        renderer: Renderer,
        *,
        clauses: bool = False,
        driver: DurableDriver | None = None,
        max_actions: int = 10_000,
    ):
        self.policy_set = policy_set
        self.plugins = plugins
        self.renderer = renderer
        self.clauses = clauses
        from dealdesk.engines.durable.driver import get_driver  # the C engine, when it is used

        self.driver = driver or get_driver()
        self.max_actions = max_actions
        self.provenance = combine.provenance(policy_set.versions, policy_set.digest)
        self.fact_types = plugins.fact_types
        for policy in policy_set.policies.values():
            for stratum in policy.strata:
                for name, definition in stratum.chunks:
                    self.driver.register(name, definition)

    # -- the whole deal

    def evaluate(self, raw: Any) -> dict[str, Any]:
        """The decision record for one raw deal; never raises for bad input or plugins."""
        record, _ = self.evaluate_with_runs(raw)
        return record

    def evaluate_with_runs(self, raw: Any) -> tuple[dict[str, Any], dict[str, PolicyRun]]:
        """The record and, for ``explain`` and tests, each policy's run."""
        deal_id = deal_id_of(raw)
        deal, problems = validate_deal(raw, self.fact_types)
        if problems or deal is None:
            errors = [{"path": p.path, "message": p.message} for p in problems]
            return self.finish(combine.invalid_record(deal_id, errors, self.provenance)), {}
        try:
            data = self.prepare(deal)
            runs = {
                name: self.run_policy(policy, data)
                for name, policy in self.policy_set.policies.items()
            }
            record = self.assemble(deal.get("id"), data, runs)
            check_finite(record)  # strict JSON (SPEC §9): a NaN output makes the deal invalid
        except PluginError as exc:
            error = {"path": "", "message": str(exc), "plugin": exc.plugin}
            return self._invalid(deal, error), {}
        except DealError as exc:
            return self._invalid(deal, {"path": exc.path, "message": exc.message}), {}
        except DealdeskError as exc:
            return self._invalid(deal, {"path": "", "message": str(exc)}), {}
        except Exception as exc:  # a bug must cost this deal only, never the rest of the batch
            message = f"internal error: {type(exc).__name__}: {exc}"
            return self._invalid(deal, {"path": "", "message": message}), {}
        return self.finish(record), runs

    def _invalid(self, deal: Mapping[str, Any], error: dict[str, Any]) -> dict[str, Any]:
        return self.finish(combine.invalid_record(deal.get("id"), [error], self.provenance))

    def finish(self, record: dict[str, Any]) -> dict[str, Any]:
        """Hand ``record`` to the decision sinks; a failing sink makes it invalid, naming it."""
        try:
            self.plugins.decision(record)
        except PluginError as exc:
            record["errors"].append({"path": "", "message": str(exc), "plugin": exc.plugin})
            record["status"] = "invalid"
        return record

    def prepare(self, deal: dict[str, Any]) -> dict[str, Any]:
        """The deal with the engine's derived facts and every plugin's, type-checked."""
        data = {**deal, **derive_facts(deal)}
        extra = self.plugins.enrich(data)
        problems = check_fact_types(extra, self.fact_types)
        if problems:
            # the plugin that declares the fact answers for its value
            head = problems[0].path.split(".")[0].split("[")[0]
            owner = next(
                (
                    p.plugin
                    for p in self.plugins.policies.values()
                    if any(f.split(".")[0] == head for f in p.facts)
                ),
                "?",
            )
            raise PluginError(owner, "dealdesk_enrich", f"returned {problems[0]}")
        data.update(extra)
        return data

    # -- one policy

    def run_policy(self, policy: Policy, data: Mapping[str, Any]) -> PolicyRun:
        """Evaluate every stratum of ``policy`` on ``data``, applying actions as rules fire."""
        run = PolicyRun(policy)
        close = lookup(data, "dates.close")
        applicable = policy.applicable(close)
        for stratum in policy.strata:
            view = {**data, "outputs": run.outputs()}
            fact = stratum.plan.build(view)
            names = [
                rule
                for name, _ in stratum.chunks
                for rule in self.driver.match(name, fact, max_actions=self.max_actions)
            ]
            matched = sorted(
                {stratum.rules[n].key: stratum.rules[n] for n in names}.values(),
                key=lambda r: (-r.priority, r.order),
            )
            matched = [r for r in matched if r.ruleset.name in applicable]
            for rule, extra in self.select_rows(matched, view, run):
                firing = Firing(rule)
                self.apply(rule, firing, view, run, extra)
                run.firings.append(firing)  # rules of one stratum never read each other's outputs
        return run

    def select_rows(
        self, matched: list[CompiledRule], data: Mapping[str, Any], run: PolicyRun
    ) -> list[tuple[CompiledRule, dict[str, Any]]]:
        """Apply each decision table's hit policy to its matched rows (DMN semantics)."""
        chosen: list[tuple[CompiledRule, dict[str, Any]]] = []
        tables: dict[str, list[CompiledRule]] = {}
        for rule in matched:
            if rule.table is None:
                chosen.append((rule, {}))
            else:
                tables.setdefault(rule.key.split("#")[0], []).append(rule)
        for rows in tables.values():
            rows.sort(key=lambda r: r.row or 0)
            table = rows[0].table
            assert table is not None
            hit = table.hit
            if hit == "first":
                chosen.append((rows[0], {}))
            elif hit == "unique":
                if len(rows) > 1:
                    run.errors.append(
                        self._table_error(rows, "hit policy unique, but rows {} all match")
                    )
                else:
                    chosen.append((rows[0], {}))
            elif hit == "any":
                values = {repr(self.set_values(r, data)) for r in rows}
                if len(values) > 1:
                    run.errors.append(
                        self._table_error(
                            rows, "hit policy any, but rows {} match with different outputs"
                        )
                    )
                else:
                    chosen.append((rows[0], {}))
            elif hit in ("priority", "output order"):
                ordered = sorted(rows, key=lambda r: (self._rank(r, data), r.row))
                chosen.extend((r, {}) for r in (ordered[:1] if hit == "priority" else ordered))
            elif hit == "collect" and table.aggregation:
                chosen.append(self._aggregate(rows, table.aggregation, data))
            else:  # rule order, collect
                chosen.extend((r, {}) for r in rows)
        # rules by priority then file order; a table's rows keep the order its hit policy chose
        return sorted(chosen, key=lambda c: (-c[0].priority, c[0].order[:2]))

    def _rank(self, rule: CompiledRule, data: Mapping[str, Any]) -> int:
        table = rule.table
        assert table is not None
        values = self.set_values(rule, data)
        for output, order in table.value_order.items():
            if output in values:
                value = values[output]
                number = to_decimal(value)  # 0.4 in the order matches a Decimal("0.40") value
                matches = [
                    i
                    for i, v in enumerate(order)
                    if v == value or (number is not None and to_decimal(v) == number)
                ]
                return matches[0] if matches else len(order)
        return 1 << 30

    def _aggregate(
        self, rows: list[CompiledRule], aggregation: str, data: Mapping[str, Any]
    ) -> tuple[CompiledRule, dict[str, Any]]:
        # validation made every row set the same single output
        (name,) = rows[0].sets
        if aggregation == "count":
            total: Any = Decimal(len(rows))
        else:  # sum, min and max are combine modes too
            total = combine.combine_values(
                aggregation, [self.set_values(r, data)[name] for r in rows]
            )
        return rows[0], {name: total}

    @staticmethod
    def _table_error(rows: list[CompiledRule], message: str) -> dict[str, Any]:
        numbers = ", ".join(str((r.row or 0) + 1) for r in rows)
        rule = rows[0]
        return {
            "path": "",
            "message": f"{rule.location}: table {rule.id!r}: " + message.format(numbers),
            "rule": rule.id,
        }

    def set_values(self, rule: CompiledRule, data: Mapping[str, Any]) -> dict[str, Any]:
        return {name: self.value(v, data) for name, v in rule.sets.items()}

    @staticmethod
    def value(value: Any, data: Mapping[str, Any]) -> Any:
        if isinstance(value, Expr):
            return evaluate(value, data)
        if isinstance(value, list):
            return [Evaluator.value(v, data) for v in value]
        if isinstance(value, dict):
            return {k: Evaluator.value(v, data) for k, v in value.items()}
        return value

    def apply(
        self,
        rule: CompiledRule,
        firing: Firing,
        data: Mapping[str, Any],
        run: PolicyRun,
        overrides: Mapping[str, Any],
    ) -> None:
        """Carry out the rule's ``then`` (and its plugin action), recording the effects."""
        effects = firing.effects
        then = rule.then
        values = {**self.set_values(rule, data), **overrides}
        effects.sets.extend(values.items())
        effects.requires.extend(then.require)
        effects.clauses.extend(then.clauses)
        for text, bucket in (
            (then.reject, effects.rejects),
            (then.flag, effects.flags),
            (then.reason, effects.reasons),
        ):
            if text is not None:
                bucket.append(RulesetMessage(text.value))
        if then.action is not None:
            registered = self.plugins.actions[then.action]
            ctx = ActionContext(
                data, self.value(rule.args, data), rule.id, run.policy.name, data.get("outputs")
            )
            where = f"action {then.action!r} (rule {rule.id})"
            try:
                registered.func(ctx)
            except Exception as exc:
                raise PluginError(registered.plugin, where, exc) from exc
            self._check_action_effects(ctx, run.policy, registered.plugin, where)
            for attr in ("sets", "requires", "rejects", "flags", "clauses", "reasons"):
                getattr(effects, attr).extend(getattr(ctx.effects, attr))
        for name, value in effects.sets:
            run.contributions.setdefault(name, []).append(
                ((-rule.priority, rule.order[:2], len(run.firings)), value)
            )

    def _check_action_effects(
        self, ctx: ActionContext, policy: Policy, plugin: str, where: str
    ) -> None:
        for name, _ in ctx.effects.sets:
            if name not in policy.outputs:
                declared = ", ".join(policy.outputs) or "none"
                message = f"set {name!r}, which policy {policy.name!r} does not declare (outputs: {declared})"
                raise PluginError(plugin, where, message)
        ranks = self.policy_set.approvers
        for role in ctx.effects.requires:
            if ranks and role not in ranks:
                raise PluginError(plugin, where, f"required the unknown approver role {role!r}")

    def _message(self, message: str, context: Mapping[str, Any], origin: str) -> str:
        """A ruleset's message is a Jinja template; a plugin action's is plain text."""
        if isinstance(message, RulesetMessage) and ("{" in message):  # most are plain text
            return self.renderer.render_message(message, context, origin)
        return str(message)

    # -- the record

    def assemble(
        self, deal_id: Any, data: Mapping[str, Any], runs: Mapping[str, PolicyRun]
    ) -> dict[str, Any]:
        currency = str(data.get("currency") or "USD")
        policies: dict[str, dict[str, Any]] = {}
        roles: list[str] = []
        reasons: list[dict[str, Any]] = []
        flags: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        formatted: dict[str, dict[str, Any]] = {}
        for name, run in runs.items():
            outputs = {
                k: combine.format_output(v, run.policy.outputs[k].type, currency)
                for k, v in run.outputs().items()
            }
            formatted[name] = outputs
            rejects = sum(len(f.effects.rejects) for f in run.firings)
            requires = [role for f in run.firings for role in f.effects.requires]
            status = "invalid" if run.errors else combine.policy_status(rejects, len(requires))
            policies[name] = {"status": status, "fired": run.fired_ids(), "outputs": outputs}
            roles.extend(requires)
            errors.extend(run.errors)
            decision = {
                "status": status,
                "approvals": combine.order_roles(requires, self.policy_set.approvers),
                "reasons": list(reasons),
            }
            for firing in run.firings:
                rule = firing.rule
                context = template_context(data, outputs=outputs, rule=rule.id, decision=decision)
                origin = f"{rule.location} rule {rule.id}"
                for message in [*firing.effects.rejects, *firing.effects.reasons]:
                    reasons.append(
                        {
                            "policy": name,
                            "rule": rule.id,
                            "message": self._message(message, context, origin),
                        }
                    )
                for message in firing.effects.flags:
                    flags.append(
                        {
                            "policy": name,
                            "rule": rule.id,
                            "message": self._message(message, context, origin),
                        }
                    )
        approvals = combine.order_roles(roles, self.policy_set.approvers)
        record = combine.decision_record(
            deal_id,
            policies,
            approvals=approvals,
            reasons=reasons,
            flags=flags,
            errors=errors,
            provenance=self.provenance,
        )
        override = self.plugins.combine(record)
        if override is not None:
            record = combine.decision_record(
                deal_id,
                policies,
                approvals=override.get("approvals", record["approvals"]),
                reasons=override.get("reasons", reasons),
                flags=flags,
                errors=errors,
                provenance=self.provenance,
                status=override.get("status", record["status"]),
            )
        if self.clauses:
            decision = {
                "status": record["status"],
                "approvals": record["approvals"],
                "reasons": record["reasons"],
            }
            for name, run in runs.items():
                for firing in run.firings:
                    for clause_id in firing.effects.clauses:
                        context = template_context(
                            data, outputs=formatted[name], rule=firing.rule.id, decision=decision
                        )
                        rendered = self.renderer.render_clause(clause_id, context)
                        record["clauses"].append(
                            {"id": clause_id, "policy": name, "rule": firing.rule.id, **rendered}
                        )
        return record


def requested_clauses(runs: Mapping[str, PolicyRun]) -> list[dict[str, str]]:
    """The clause ids the fired rules asked for, without rendering them."""
    return [
        {"id": c, "policy": name, "rule": f.rule.id}
        for name, run in runs.items()
        for f in run.firings
        for c in f.effects.clauses
    ]
