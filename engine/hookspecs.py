"""Every hook a dealdesk plugin can implement (SPEC §7), typed and documented.

This module is the contract between dealdesk and its plugins. Implement a hook with
``from dealdesk import hookimpl`` and a function of the same name; an implementation may take
any subset of the hook's arguments. dealdesk calls each plugin's implementation on its own, so
a failure is reported with the plugin's name (``plugin 'x' failed in dealdesk_enrich: ...``).
``docs/plugins.md`` has a worked example for each hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

from dealdesk import NAME

if TYPE_CHECKING:
    from collections.abc import Mapping

    from dealdesk.manager import RegisterFunction, RegisterPolicy

# Private on purpose (tox does the same): plugins only ever need ``hookimpl``.
hookspec = pluggy.HookspecMarker(NAME)


@hookspec
def dealdesk_policies(register: RegisterPolicy) -> None:
    """Declare the policy families (rulesets, templates and facts) this plugin brings.

    Call ``register(name, *, description="", rulesets=None, templates=None, facts=None)`` once
    per family. ``rulesets`` is a directory of ruleset YAML files (or one file) loaded with the
    house policy; ``templates`` a directory of Jinja templates (clause ``x/y`` is
    ``x/y.md.j2`` or ``x/y.html.j2``); ``facts`` maps each deal path the family reads or
    derives to a JSON Schema type (``"number"``, ``"string"``, ``"boolean"``, ``"object"``,
    ``"array"``) so rulesets may use it and validation knows it. Both paths must exist (an
    error naming the plugin otherwise); pass ``None`` for none. A family registered again
    by a later plugin replaces the earlier one (that is how an external plugin overrides a
    built-in family).

    Called once, when dealdesk collects its plugins, before any ruleset is loaded.

    :param register: The callback that declares one policy family.
    :returns: Nothing; results go through ``register``.
    """


@hookspec
def dealdesk_enrich(deal: Mapping[str, Any]) -> dict[str, Any] | None:
    """Derive facts from a deal before its rules run.

    The returned keys become new top-level fields of the deal, usable in conditions, messages
    and templates like any input field (declare them in ``facts`` of ``dealdesk_policies``).
    A key that overwrites an input field or a key another plugin derived is an error naming
    both plugins. Do not mutate ``deal``.

    Called once per deal, after validation and the built-in derived facts (``totals``,
    ``margin``, ...), in plugin registration order; each plugin sees the keys derived by the
    plugins before it.

    :param deal: The validated deal with the derived facts so far (money as ``Decimal``),
        read-only.
    :returns: A dict of new top-level keys, or ``None`` when there is nothing to add.
    """


@hookspec
def dealdesk_actions(register: RegisterFunction) -> None:
    """Provide named actions that rules run with ``then: {action: NAME, with: {...}}``.

    Call ``register(name, func)`` for each action. ``func(ctx)`` takes exactly one argument,
    a :class:`dealdesk.actions.ActionContext` (``ctx.deal``, ``ctx.args``, ``ctx.rule``,
    ``ctx.policy``, ``ctx.outputs``, ``ctx.set()``, ``ctx.require()``, ``ctx.reject()``,
    ``ctx.flag()``, ``ctx.clause()``, ``ctx.reason()``). A later plugin registering the same
    name replaces the action.

    Called once, when dealdesk collects its plugins; ``func`` is called each time a rule that
    names the action fires.

    :param register: The callback ``register(name: str, func: Callable[[ActionContext], None])``.
    :returns: Nothing; results go through ``register``.
    """


@hookspec
def dealdesk_template_filters(register: RegisterFunction) -> None:
    """Add Jinja filters for messages, clause templates and the decision memo.

    Call ``register(name, func)`` for each filter; ``func(value, *args)`` returns the filtered
    value. ``money``, ``percent`` and ``date`` ship built in; a plugin registering one of those
    names replaces it.

    Called once, when dealdesk collects its plugins, before the template environment is built.

    :param register: The callback ``register(name: str, func: Callable[..., Any])``.
    :returns: Nothing; results go through ``register``.
    """


@hookspec
def dealdesk_readers(register: RegisterFunction) -> None:
    """Teach dealdesk to read deals from another file type.

    Call ``register(suffix, func)`` for each type (``".xlsx"`` or ``"xlsx"``: keys are stored
    lower-case with a leading dot, as the built-in readers' are). ``func(path: Path)`` yields
    the deals in the file, in file order: plain deal dicts, or
    :class:`dealdesk.io.readers.SourceDeal` objects to give each deal a location for error messages.
    dealdesk validates every deal; a later plugin registering the same suffix replaces the
    reader.

    Called once, when dealdesk collects its plugins; ``func`` is called for each input file
    whose suffix matches.

    :param register: The callback ``register(suffix: str, func: Callable[[Path], Iterable])``.
    :returns: Nothing; results go through ``register``.
    """


@hookspec
def dealdesk_writers(register: RegisterFunction) -> None:
    """Add an output format for ``dealdesk evaluate --format NAME``.

    Call ``register(format, func)`` for each format (stored lower-case).
    ``func(records: Iterable[dict], out: TextIO) -> None`` consumes the decision records in
    input order, as they complete, and writes them to ``out`` (standard output or the ``-o``
    file). Write each record as it arrives: batches are streamed and must not be held in
    memory. A later plugin registering the same format replaces the writer.

    Called once, when dealdesk collects its plugins; ``func`` is called once per run.

    :param register: The callback ``register(format: str, func: Callable[[Iterable[dict], TextIO], None])``.
    :returns: Nothing; results go through ``register``.
    """


@hookspec
def dealdesk_decision(record: dict[str, Any]) -> None:
    """Receive each final decision record (audit logs, queues, dashboards).

    Called once per deal, in input order, after the record is complete (SPEC §4) and before it
    is written; every plugin that implements the hook is called, in registration order. A
    sink that raises makes that deal's record ``invalid`` and names the plugin.

    :param record: The decision record; treat it as read-only.
    :returns: Nothing.
    """


@hookspec(firstresult=True)
def dealdesk_combine(records: dict[str, Any]) -> dict[str, Any] | None:
    """Override how the per-policy results combine into the deal's status and approvals.

    The first plugin that returns a dict wins; the latest-registered plugin is asked first,
    so an external plugin overrides the built-in combination. Return ``None`` to leave the
    decision to the next plugin and finally to dealdesk's default (SPEC §4 precedence).

    Called once per deal, after every policy has been evaluated and before templates render.

    :param records: The decision record as the default combination built it: ``policies``
        maps each policy family to its result (``{"status", "fired", "outputs"}``), and
        ``status``, ``approvals`` and ``reasons`` hold the default answer. Read-only.
    :returns: A dict with the keys it decides (``status``, ``approvals``, ``reasons``), which
        replace the default's, or ``None``.
    """
