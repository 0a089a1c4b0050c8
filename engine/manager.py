"""The plugin manager factory and the registry of what plugins contribute (SPEC §7).

:func:`get_plugin_manager` builds a fresh :class:`pluggy.PluginManager`: the built-in plugins of
:data:`DEFAULT_PLUGINS` first, then (unless autoload is off) every ``dealdesk`` entry point, so
an external plugin can override a built-in one. :func:`collect_plugins` then calls the
register-style hooks one plugin at a time and returns :class:`Plugins`, the registry the rest of
the engine reads: policy families, actions, template filters, readers, writers, and the
per-deal hooks (``enrich``, ``decision``, ``combine``) with every failure attributed to its
plugin as a :class:`~dealdesk.errors.PluginError`.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

from dealdesk import NAME, __version__, hookspecs
from dealdesk.deal.schema import JSON_TYPES
from dealdesk.errors import DealdeskError, PluginError, closest
from dealdesk.io import suffix_key
from dealdesk.record import STATUS_ORDER

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from dealdesk.actions import ActionContext

    # ``importlib.resources.files(...) / "x"`` is typed Traversable; on disk it is a Path.
    PathArgument = str | os.PathLike[str] | Traversable

__all__ = [
    "DEFAULT_PLUGINS",
    "DISABLE_AUTOLOAD_ENV",
    "FACT_TYPES",
    "Plugins",
    "PluginImportError",
    "PolicyFamily",
    "RegisterFunction",
    "RegisterPolicy",
    "RegisteredAction",
    "add_plugin",
    "collect_plugins",
    "get_plugin_manager",
    "load_plugin",
    "load_plugins",
]

#: Built-in plugins, registered first and through the same path as entry points.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "dealdesk.plugins.billing_milestone",
    "dealdesk.plugins.onsite_support",
    "dealdesk.plugins.partner_margin",
)

#: Set to ``1`` (or ``true``/``yes``/``on``) to skip loading ``dealdesk`` entry points.
DISABLE_AUTOLOAD_ENV = "DEALDESK_DISABLE_PLUGIN_AUTOLOAD"

#: The JSON Schema types a plugin may give a fact in ``dealdesk_policies`` (``deals`` owns them).
FACT_TYPES = frozenset(JSON_TYPES)

_TRUE = frozenset({"1", "true", "yes", "on"})


class PluginImportError(PluginError):
    """A plugin module could not be imported: ``Error importing plugin "name": ...``.

    A broken installation is not something the user's rulesets or deals did, so it exits like
    a usage error (2), as pytest treats a plugin that fails to import.
    """

    exit_code = 2

    def __init__(self, plugin: str, cause: BaseException):
        super().__init__(plugin, "import", cause)
        detail = f"{type(cause).__name__}: {cause}"
        self.args = (f'Error importing plugin "{plugin}": {detail}',)


class RegisterPolicy(Protocol):
    """The ``register`` callback handed to ``dealdesk_policies``."""

    def __call__(
        self,
        name: str,
        *,
        description: str = "",
        rulesets: PathArgument | None = None,
        templates: PathArgument | None = None,
        facts: Mapping[str, str] | None = None,
    ) -> None: ...


class RegisterFunction(Protocol):
    """The ``register(name, func)`` callback of the actions, filters, readers and writers hooks."""

    def __call__(self, name: str, func: Callable[..., Any]) -> None: ...


@dataclass(frozen=True)
class PolicyFamily:
    """One policy family declared with ``dealdesk_policies``.

    ``rulesets`` is a directory of ruleset files or a single YAML file (it must exist when
    registered); ``templates`` a directory of Jinja templates; ``facts`` maps deal paths to JSON
    Schema types; ``plugin`` names the plugin that registered it and ``builtin`` tells whether
    that plugin ships with dealdesk (an explicit ``-r`` replaces the built-in rulesets only).
    """

    name: str
    description: str = ""
    rulesets: Path | None = None
    templates: Path | None = None
    facts: dict[str, str] = field(default_factory=dict)
    plugin: str = ""
    builtin: bool = False


@dataclass(frozen=True)
class RegisteredAction:
    """An action registered with ``dealdesk_actions``: ``func(ctx)`` and the plugin it came from."""

    func: Callable[[ActionContext], None]
    plugin: str


# One per-plugin hook caller: the plugin's name and a caller that runs only its implementation.
_Caller = tuple[str, pluggy.HookCaller]


@dataclass
class Plugins:
    """Everything the registered plugins contribute, collected once by :func:`collect_plugins`.

    Each registry maps a name to what was registered under it; when two plugins register the
    same name, the later-registered plugin wins (external plugins load after the built-ins, so
    they override them) and the entry moves to the end, so iteration follows precedence from
    lowest to highest. Every field defaults to empty, so tests can build a ``Plugins`` by hand.

    Not picklable: worker processes build their own with :func:`load_plugins`.
    """

    policies: dict[str, PolicyFamily] = field(default_factory=dict)
    actions: dict[str, RegisteredAction] = field(default_factory=dict)
    filters: dict[str, Callable[..., Any]] = field(default_factory=dict)
    readers: dict[str, Callable[..., Any]] = field(default_factory=dict)
    writers: dict[str, Callable[..., Any]] = field(default_factory=dict)
    _enrichers: list[_Caller] = field(default_factory=list, repr=False)
    _sinks: list[_Caller] = field(default_factory=list, repr=False)
    _combiners: list[_Caller] = field(default_factory=list, repr=False)
    _info: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _families: list[PolicyFamily] = field(default_factory=list, repr=False)  # every registration

    @property
    def template_dirs(self) -> list[Path]:
        """Template directories of every policy family, highest precedence (latest) first."""
        return [p.templates for p in reversed(self.policies.values()) if p.templates is not None]

    @property
    def fact_types(self) -> dict[str, str]:
        """Every path a plugin declared in ``facts``, with its JSON Schema type."""
        merged: dict[str, str] = {}
        for policy in self.policies.values():
            merged.update(policy.facts)
        return merged

    def enrich(self, deal: Mapping[str, Any]) -> dict[str, Any]:
        """Run every ``dealdesk_enrich`` implementation, in registration order, on ``deal``.

        Each plugin sees the deal plus the keys derived before it, read-only.

        :returns: The derived top-level keys of all plugins, merged.
        :raises PluginError: naming the plugin, when one raises, returns something other than a
            dict or ``None``, or returns a key that is an input field or another plugin's key.
        """
        hook = "dealdesk_enrich"
        derived: dict[str, Any] = {}
        owner: dict[str, str] = {}
        for plugin, call in self._enrichers:
            view = MappingProxyType({**deal, **derived}) if derived else MappingProxyType(deal)
            try:
                # a per-plugin caller of a collecting hook returns [] (None) or [its result]
                results = call(deal=view)
            except (Exception, SystemExit) as exc:  # sys.exit too: the plugin's failure
                raise PluginError(plugin, hook, exc) from exc
            for result in results:
                if not isinstance(result, Mapping):
                    raise PluginError(
                        plugin, hook, f"returned {type(result).__name__}, expected a dict or None"
                    )
                _merge(plugin, result, deal, derived, owner)
        return derived

    @property
    def has_sinks(self) -> bool:
        """Whether any plugin implements ``dealdesk_decision``."""
        return bool(self._sinks)

    @property
    def has_combiners(self) -> bool:
        """Whether any plugin implements ``dealdesk_combine``."""
        return bool(self._combiners)

    def decision(self, record: dict[str, Any]) -> None:
        """Hand the final ``record`` to every ``dealdesk_decision`` sink, in registration order.

        :raises PluginError: naming the first sink that raised.
        """
        for plugin, call in self._sinks:
            try:
                call(record=record)
            except (Exception, SystemExit) as exc:  # sys.exit too: the plugin's failure
                raise PluginError(plugin, "dealdesk_decision", exc) from exc

    def combine(self, records: dict[str, Any]) -> dict[str, Any] | None:
        """Ask the ``dealdesk_combine`` implementations, latest-registered first, for a decision.

        :returns: The first dict returned, or ``None`` when every plugin defers to the default.
        :raises PluginError: naming the plugin that raised, returned something other than a dict
            or ``None``, or returned a dict that is not a decision: a key other than ``status``,
            ``approvals`` and ``reasons``, a status other than SPEC §4's four, approvals that are
            not a list of strings, reasons that are not a list of ``{policy, rule, message}``.
        """
        hook = "dealdesk_combine"
        for plugin, call in reversed(self._combiners):
            try:
                result = call(records=records)
            except (Exception, SystemExit) as exc:  # sys.exit too: the plugin's failure
                raise PluginError(plugin, hook, exc) from exc
            if result is None:
                continue
            if not isinstance(result, Mapping):
                raise PluginError(
                    plugin, hook, f"returned {type(result).__name__}, expected a dict or None"
                )
            problem = _combine_problem(result)
            if problem:
                raise PluginError(plugin, hook, f"returned {problem}")
            return dict(result)
        return None

    def plugin_info(self) -> list[dict[str, Any]]:
        """One ``{"name", "version", "builtin", "policies", "hooks"}`` per registered plugin, in
        registration order (what ``dealdesk plugins`` shows).

        ``version`` is the distribution's for a plugin installed with an entry point (or a
        module that belongs to an installed distribution), dealdesk's own for a built-in, and
        ``None`` when unknown; ``builtin`` tells the plugins of ``DEFAULT_PLUGINS`` from external
        ones; ``policies`` lists the policy families the plugin registered, each
        ``{"name", "description", "overridden_by"}`` (the plugin whose family of the same name
        replaced it, else ``None``); ``hooks`` is the sorted list of hooks it implements.
        """
        info: list[dict[str, Any]] = []
        for entry in self._info:
            policies = [
                {
                    "name": family.name,
                    "description": family.description,
                    "overridden_by": _overrider(self.policies.get(family.name), family),
                }
                for family in self._families
                if family.plugin == entry["name"]
            ]
            info.append(
                {
                    "name": entry["name"],
                    "version": entry["version"],
                    "builtin": entry["builtin"],
                    "policies": policies,
                    "hooks": list(entry["hooks"]),
                }
            )
        return info


def _overrider(active: PolicyFamily | None, family: PolicyFamily) -> str | None:
    """The plugin whose family replaced ``family`` (``None`` while ``family`` is in force)."""
    if active is None or active is family:
        return None
    return active.plugin


_COMBINE_KEYS = ("status", "approvals", "reasons")
_REASON_KEYS = ("policy", "rule", "message")


def _combine_problem(result: Mapping[Any, Any]) -> str | None:
    """What is wrong with a ``dealdesk_combine`` result, or ``None`` when it is a decision."""
    unknown = [key for key in result if key not in _COMBINE_KEYS]
    if unknown:
        return f"the key {unknown[0]!r}; a decision has only {', '.join(_COMBINE_KEYS)}"
    if "status" in result and result["status"] not in STATUS_ORDER:
        return f"status {result['status']!r}; expected one of {', '.join(STATUS_ORDER)}"
    approvals = result.get("approvals", [])
    if not isinstance(approvals, list) or not all(isinstance(a, str) for a in approvals):
        return f"approvals {approvals!r}; expected a list of role names (strings)"
    reasons = result.get("reasons", [])
    if not isinstance(reasons, list):
        return f"reasons {reasons!r}; expected a list of {{policy, rule, message}}"
    for index, reason in enumerate(reasons):
        if not (
            isinstance(reason, Mapping)
            and all(isinstance(reason.get(key), str) for key in _REASON_KEYS)
        ):
            return (
                f"reasons[{index}] {reason!r}; expected a mapping of policy, rule and message "
                "(strings)"
            )
    return None


def _merge(
    plugin: str,
    result: Mapping[Any, Any],
    deal: Mapping[str, Any],
    derived: dict[str, Any],
    owner: dict[str, str],
) -> None:
    """Add one plugin's derived keys; new top-level keys only, never someone else's."""
    hook = "dealdesk_enrich"
    for key, value in result.items():
        if not isinstance(key, str) or not key:
            raise PluginError(
                plugin, hook, f"returned the key {key!r}; keys must be non-empty strings"
            )
        if key in owner:
            raise PluginError(plugin, hook, f"sets {key!r} already set by plugin {owner[key]!r}")
        if key in _derived_keys():
            # reserved even where dealdesk left it out (no margin without costs): a rule
            # reading it must get dealdesk's value or none, never a plugin's stand-in
            raise PluginError(
                plugin,
                hook,
                f"sets {key!r}, a fact dealdesk derives from the deal; "
                "a plugin may add new keys only",
            )
        if key in deal:
            raise PluginError(plugin, hook, f"overwrites the input field {key!r}")
        derived[key] = value
        owner[key] = plugin


@functools.cache
def _derived_keys() -> frozenset[str]:
    """Top-level keys dealdesk itself derives (``margin``, ``totals``...), not input fields."""
    from dealdesk.deal.schema import DERIVED_PATHS, INPUT_FIELDS

    def top(path: str) -> str:
        return path.split(".")[0].split("[")[0]

    return frozenset(top(p) for p in DERIVED_PATHS) - {top(p) for p in INPUT_FIELDS}


# --- building the manager ------------------------------------------------------------------


def get_plugin_manager(
    *,
    autoload: bool | None = None,
    disabled: Iterable[str] = (),
    enabled: Iterable[str] = (),
    failures: list[PluginError] | None = None,
) -> pluggy.PluginManager:
    """Return a new plugin manager with the built-in and installed plugins registered.

    :param autoload: Load the ``dealdesk`` entry points; ``None`` follows the environment
        (on unless ``DEALDESK_DISABLE_PLUGIN_AUTOLOAD=1``), ``False`` is what tests want.
    :param disabled: Plugin names to block, as given to ``-p no:NAME``: an entry-point name,
        or a built-in's short name (``billing_milestone``), module name or policy name
        (``billing-milestone``). Dashes and underscores are interchangeable; a leading
        ``no:`` is accepted; unknown names are ignored (as in pytest).
    :param enabled: Plugins to load even when autoload is off, as given to ``-p NAME``: an
        entry-point name or an importable module name.
    :param failures: when given, a plugin that fails to import or to validate is appended to
        it (and left out of the manager) and loading goes on with the next plugin: what
        ``dealdesk plugins`` needs to list every plugin when one is broken.
    :raises PluginImportError: when a plugin module cannot be imported.
    :raises PluginError: when a plugin fails validation (an unknown hook, an argument the hook
        does not have, a wrapper implementation, a name clash).
    """
    pm = pluggy.PluginManager(NAME)
    pm.add_hookspecs(hookspecs)

    def note(exc: PluginError) -> None:
        if failures is None:
            raise exc
        if all(str(exc) != str(seen) for seen in failures):  # -p NAME is checked twice
            failures.append(exc)

    def attempt(load: Callable[[], object]) -> None:
        try:
            load()
        except PluginError as exc:
            note(exc)

    for name in disabled:
        _block(pm, name)
    for module_name in DEFAULT_PLUGINS:
        attempt(functools.partial(_import_plugin, pm, module_name, _short_name(module_name)))
    if autoload is None:
        autoload = os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() not in _TRUE
    if autoload and _may_declare_entry_points():
        _load_entry_points(pm, attempt)
    for name in enabled:
        attempt(functools.partial(load_plugin, pm, name))
    while True:
        try:
            _check_pending(pm)
            break
        except PluginError as exc:
            note(exc)
            plugin = pm.get_plugin(exc.plugin)
            if plugin is None:
                break
            # registered, then failed validation: left out, and the others checked again
            pm.unregister(plugin)
    return pm


def load_plugin(pm: pluggy.PluginManager, name: str) -> str | None:
    """Load one plugin by entry-point name or module name (``-p NAME``) into ``pm``.

    :returns: The name it is registered under, or ``None`` when that name is blocked.
    :raises PluginImportError: when it is neither an entry point nor an importable module.
    """
    if pm.is_blocked(name):
        return None
    if pm.has_plugin(name):
        return name
    import importlib.metadata  # only where entry points are read: it costs start-up time

    entry_points = [ep.name for ep in importlib.metadata.entry_points(group=NAME)]
    if name in entry_points:
        _load_entry_point(pm, name)
        registered: str | None = name
    else:
        try:
            registered = _import_plugin(pm, name, name)
        except PluginImportError as exc:
            cause = exc.__cause__
            if isinstance(cause, ModuleNotFoundError) and cause.name == name:
                # `-p export_contrl`: no such module; name the plugin most likely meant
                known = [*entry_points, *(n for n, _ in pm.list_name_plugin() if n)]
                known += [_short_name(m) for m in DEFAULT_PLUGINS]
                guess = closest(name, known)
                if guess:
                    exc.args = (f"{exc.args[0]} (did you mean {guess!r}?)",)
            raise
    _check_pending(pm)
    return registered


def add_plugin(pm: pluggy.PluginManager, plugin: object, name: str | None = None) -> str:
    """Register a plugin object or module on ``pm`` (what ``register_plugin`` in tests uses).

    :param name: The plugin's name in errors and in ``dealdesk plugins``; defaults to the
        object's ``__name__`` (a module's dotted name) or its class name.
    :returns: The name it was registered under.
    :raises PluginError: when the name is taken or the plugin fails validation.
    """
    name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
    _register(pm, plugin, name)
    try:
        _check_pending(pm)
    except PluginError:
        pm.unregister(plugin)  # a plugin that failed validation must not stay half-registered
        raise
    return name


def load_plugins(
    *,
    autoload: bool | None = None,
    disabled: Iterable[str] = (),
    enabled: Iterable[str] = (),
) -> Plugins:
    """Build a manager and collect it: the one call a command or a worker process needs.

    The arguments are those of :func:`get_plugin_manager`; they are plain values, so a parent
    process can hand them to its workers, which build their own :class:`Plugins`.
    """
    return collect_plugins(
        get_plugin_manager(autoload=autoload, disabled=disabled, enabled=enabled)
    )


def _short_name(module_name: str) -> str:
    """``dealdesk.plugins.billing_milestone`` → ``billing_milestone``."""
    return module_name.rpartition(".")[2]


def _block(pm: pluggy.PluginManager, name: str) -> None:
    """Block ``name`` and every alias a user may mean by it (see ``get_plugin_manager``)."""
    name = name.strip().removeprefix("no:")
    if not name:
        return
    aliases = {name, name.replace("-", "_")}
    for module_name in DEFAULT_PLUGINS:
        short = _short_name(module_name)
        if name in (module_name, short, short.replace("_", "-")):
            aliases.add(short)
    for alias in sorted(aliases):
        pm.set_blocked(alias)


def _import_plugin(pm: pluggy.PluginManager, module_name: str, name: str) -> str | None:
    """Import ``module_name`` and register it as ``name`` unless blocked or already there.

    :returns: The name the module is registered under, or ``None`` when ``name`` is blocked.
    """
    if pm.is_blocked(name):
        return None
    if pm.has_plugin(name):
        return name
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # a plugin may fail at import time with anything, not just ImportError
        raise PluginImportError(name, exc) from exc
    if pm.is_registered(module):  # ``-p MODULE`` for a plugin its entry point already loaded
        return pm.get_name(module)
    _register(pm, module, name)
    return name


def _may_declare_entry_points() -> bool:
    """False only when no distribution can declare a ``dealdesk`` entry point: no
    ``entry_points.txt`` that importlib.metadata would read mentions the group.

    Importing importlib.metadata and reading every distribution costs about 20 ms of each
    run, most often to find no plugin at all; this looks at the same files, as it would find
    them, and answers "maybe" for anything it does not read the same way (a zip or egg on
    ``sys.path``, another finder of distributions).
    """
    import importlib.machinery
    import sys

    for finder in sys.meta_path:
        if hasattr(finder, "find_distributions") and finder is not importlib.machinery.PathFinder:
            return True
    for entry in sys.path:
        root = entry or "."
        try:
            children = os.listdir(root)
        except OSError:
            if os.path.isfile(root):
                return True  # a zip: importlib.metadata reads inside it
            continue
        if os.path.basename(root).lower().endswith(".egg"):
            return True
        for child in children:
            if not child.lower().endswith((".dist-info", ".egg-info")):
                continue
            try:
                with open(os.path.join(root, child, "entry_points.txt"), "rb") as file:
                    text = file.read().decode("utf-8")
            except OSError:  # none, or an .egg-info file: no entry points
                continue
            except UnicodeDecodeError:
                return True
            if any(_names_group(line) for line in text.splitlines()):
                return True
    return False


def _names_group(line: str) -> bool:
    """Whether ``line`` of an ``entry_points.txt`` may open the ``dealdesk`` section (as
    importlib.metadata reads sections, and looser)."""
    line = line.strip()
    return line.startswith("[") and line.endswith("]") and line.strip("[] \t").lower() == NAME


def _load_entry_points(
    pm: pluggy.PluginManager, attempt: Callable[[Callable[[], object]], None] | None = None
) -> None:
    """Load every ``dealdesk`` entry point, sorted by name so precedence never depends on disk order.

    :param attempt: calls each entry point's loading (``get_plugin_manager``'s, which may note
        a failure and go on); by default a failure is raised.
    """
    import importlib.metadata

    seen: dict[str, str] = {}
    for ep in sorted(importlib.metadata.entry_points(group=NAME), key=lambda ep: ep.name):
        dist = ep.dist.name if ep.dist is not None else "?"
        if ep.name in seen:
            raise PluginError(
                ep.name,
                "registration",
                f"two distributions provide the entry point: {seen[ep.name]} and {dist}",
            )
        seen[ep.name] = dist
        if pm.is_blocked(ep.name):
            continue
        if pm.has_plugin(ep.name):
            # pluggy would skip it silently; a plugin that never loads is worse than an error
            raise PluginError(
                ep.name,
                "registration",
                f"the entry point of {dist} has the name of the built-in plugin; rename it",
            )
        if attempt is None:
            _load_entry_point(pm, ep.name)
        else:
            attempt(functools.partial(_load_entry_point, pm, ep.name))


def _load_entry_point(pm: pluggy.PluginManager, name: str) -> None:
    """Load the entry point ``name`` through pluggy, which records its distribution."""
    try:
        pm.load_setuptools_entrypoints(NAME, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(name, "registration", _one_line(exc)) from exc
    except Exception as exc:
        raise PluginImportError(name, exc) from exc


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    """``pm.register`` with its errors turned into one-line ``PluginError``s naming the plugin."""
    if pm.has_plugin(name):
        raise PluginError(name, "registration", f"a plugin named {name!r} is already registered")
    if pm.is_registered(plugin):
        raise PluginError(name, "registration", f"already registered as {pm.get_name(plugin)!r}")
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(name, "registration", _one_line(exc)) from exc


def _check_pending(pm: pluggy.PluginManager) -> None:
    """Reject implementations of unknown hooks (with a "did you mean") and wrapper implementations."""
    known = sorted(name for name in vars(hookspecs) if name.startswith(f"{NAME}_"))
    for hook_name, caller in vars(pm.hook).items():
        if hook_name.startswith("_"):
            continue
        for impl in caller.get_hookimpls():
            if not caller.has_spec() and not impl.optionalhook:
                import difflib

                close = difflib.get_close_matches(hook_name, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise PluginError(
                    impl.plugin_name, "registration", f"unknown hook {hook_name!r}{hint}"
                )
            if impl.wrapper or impl.hookwrapper:
                # dealdesk calls each plugin on its own, so a wrapper would only wrap itself
                raise PluginError(
                    impl.plugin_name,
                    "registration",
                    f"{hook_name}: wrapper implementations are not supported by dealdesk hooks",
                )
    pm.check_pending()


def _one_line(exc: BaseException) -> str:
    """pluggy's validation messages span lines; the CLI prints one line per error."""
    return " ".join(str(exc).split())


# --- collecting what plugins register ------------------------------------------------------


def collect_plugins(
    pm: pluggy.PluginManager, *, failures: list[PluginError] | None = None
) -> Plugins:
    """Call the register-style hooks of ``pm`` one plugin at a time and build :class:`Plugins`.

    :param failures: when given, a plugin's failure is appended to it and collecting goes on
        with the next plugin (what ``dealdesk plugins`` needs to list every plugin when one is
        broken); the failing plugin keeps what it registered before it failed.
    :raises PluginError: naming the plugin and hook, when an implementation raises or calls
        ``register`` with bad arguments (an action that does not take exactly one parameter, a
        fact type that is not a JSON Schema type, a name registered twice by one plugin, a
        ``rulesets`` or ``templates`` path that does not exist) — unless ``failures`` is given.
    """
    builtins = {_short_name(m) for m in DEFAULT_PLUGINS}
    plugins = Plugins()

    def call_register(
        plugin: str, hook: str, call: pluggy.HookCaller, register: Callable[..., None]
    ) -> None:
        try:
            _call_register(plugin, hook, call, register)
        except PluginError as exc:
            if failures is None:
                raise
            failures.append(exc)

    for plugin, call in _callers(pm, "dealdesk_policies"):
        call_register(
            plugin,
            "dealdesk_policies",
            call,
            _policy_register(plugins.policies, plugin, builtins, plugins._families),
        )
    for plugin, call in _callers(pm, "dealdesk_actions"):
        call_register(
            plugin, "dealdesk_actions", call, _function_register(plugins.actions, plugin, "action")
        )
    for hook, registry, kind in (
        ("dealdesk_template_filters", plugins.filters, "filter"),
        ("dealdesk_readers", plugins.readers, "reader"),
        ("dealdesk_writers", plugins.writers, "writer"),
    ):
        for plugin, call in _callers(pm, hook):
            call_register(plugin, hook, call, _function_register(registry, plugin, kind))
    plugins._enrichers = _callers(pm, "dealdesk_enrich")
    plugins._sinks = _callers(pm, "dealdesk_decision")
    plugins._combiners = _callers(pm, "dealdesk_combine")
    plugins._info = _plugin_info(pm, builtins)
    return plugins


def _callers(pm: pluggy.PluginManager, hook: str) -> list[_Caller]:
    """One caller per plugin implementing ``hook``, in registration order.

    Each is a pluggy subset caller, so calls still go through the manager (tracing and
    ``add_hookcall_monitoring`` see them) but a failure belongs to exactly one plugin.
    """
    impls = getattr(pm.hook, hook).get_hookimpls()
    others = [impl.plugin for impl in impls]
    callers: list[_Caller] = []
    for impl in impls:
        try:
            caller = pm.subset_hook_caller(hook, [p for p in others if p is not impl.plugin])
        except TypeError as exc:  # subset callers keep plugins in a set
            raise PluginError(
                impl.plugin_name, "registration", f"plugin objects must be hashable ({exc})"
            ) from exc
        callers.append((impl.plugin_name, caller))
    return callers


def _call_register(
    plugin: str, hook: str, call: pluggy.HookCaller, register: Callable[..., None]
) -> None:
    """Call one plugin's register-style hook; anything it raises is that plugin's error."""
    try:
        call(register=register)
    except (Exception, SystemExit) as exc:  # sys.exit too: the plugin's failure
        raise PluginError(plugin, hook, exc) from exc


def _replace(registry: dict[str, Any], key: str, value: Any) -> None:
    """Insert ``value`` last, so registry order is precedence order even after an override."""
    registry.pop(key, None)
    registry[key] = value


def _policy_register(
    registry: dict[str, PolicyFamily],
    plugin: str,
    builtins: set[str],
    history: list[PolicyFamily] | None = None,
) -> RegisterPolicy:
    """The ``register`` callback ``plugin`` gets in ``dealdesk_policies``; every family it
    registers is also appended to ``history`` (overridden ones stay there)."""
    mine: set[str] = set()

    def register(
        name: str,
        *,
        description: str = "",
        rulesets: PathArgument | None = None,
        templates: PathArgument | None = None,
        facts: Mapping[str, str] | None = None,
    ) -> None:
        _check_name(name, "policy", mine)
        if not isinstance(description, str):
            raise TypeError(
                f"policy {name!r}: description must be a string, not {type(description).__name__}"
            )
        family = PolicyFamily(
            name=name,
            description=description,
            rulesets=_existing(_as_path(rulesets, f"policy {name!r}: rulesets"), name, "rulesets"),
            templates=_existing(
                _as_path(templates, f"policy {name!r}: templates"), name, "templates"
            ),
            facts=_check_facts(facts, name),
            plugin=plugin,
            builtin=plugin in builtins,
        )
        _replace(registry, name, family)
        if history is not None:
            history.append(family)

    return register


def _function_register(registry: dict[str, Any], plugin: str, kind: str) -> RegisterFunction:
    """The ``register(name, func)`` callback ``plugin`` gets for actions, filters, readers, writers."""
    mine: set[str] = set()

    def register(name: str, func: Callable[..., Any]) -> None:
        if kind == "reader" and isinstance(name, str) and name.strip():
            # ".CSV", "csv" and ".csv" are one reader, keyed like the built-in ones
            name = suffix_key(name)
        elif kind == "writer" and isinstance(name, str):
            name = name.lower()
        _check_name(name, kind, mine)
        if not callable(func):
            raise TypeError(f"{kind} {name!r}: {func!r} is not callable")
        if kind == "action":
            # the runtime attributes an action's failure itself, naming the rule as well
            _check_action(name, func)
            _replace(registry, name, RegisteredAction(func, plugin))
        else:
            _replace(registry, name, _ATTRIBUTED[kind](func, plugin, name))

    return register


def _wraps(func: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``functools.wraps``, keeping the attributes Jinja reads (``jinja_pass_arg`` of
    ``pass_context``, the sandbox's ``unsafe_callable``); a class's ``__dict__`` is its methods,
    not such attributes, so it is not copied."""
    updated = () if isinstance(func, type) else functools.WRAPPER_UPDATES
    return functools.wraps(func, updated=updated)


def _attributed_filter(func: Callable[..., Any], plugin: str, name: str) -> Callable[..., Any]:
    """A template filter whose failure names the plugin (``... in template filter 'f': ...``).

    Jinja's own errors pass through: a filter handed an undefined name fails because of the
    template, and the renderer names the template and line either way.
    """

    @_wraps(func)
    def template_filter(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DealdeskError:
            raise
        except (Exception, SystemExit) as exc:  # sys.exit too: the plugin's failure
            # a filter runs inside Jinja, so jinja2 is loaded by now; the manager never loads it
            from jinja2 import TemplateError as JinjaTemplateError

            if isinstance(exc, JinjaTemplateError):
                raise
            raise PluginError(plugin, f"template filter {name!r}", exc) from exc

    return template_filter


def _attributed_reader(func: Callable[..., Any], plugin: str, name: str) -> Callable[..., Any]:
    """A reader whose failure, while opening or while iterating, names the plugin.

    ``OSError`` (an unreadable file) and dealdesk's own errors pass through, so they mean what
    they mean for the built-in readers; batch turns a ``PluginError`` into an error for the rest
    of that file, not the batch.
    """

    @_wraps(func)
    def reader(path: Path) -> Iterator[Any]:
        try:
            yield from func(path)
        except (OSError, DealdeskError):
            raise
        except (Exception, SystemExit) as exc:  # sys.exit too: the plugin's failure
            raise PluginError(plugin, f"reader {name!r}", exc) from exc

    return reader


def _attributed_writer(func: Callable[..., Any], plugin: str, name: str) -> Callable[..., Any]:
    """A writer whose failure names the plugin; what the records themselves raise is not its.

    ``BrokenPipeError`` passes through (``dealdesk evaluate ... | head`` stops quietly), and so
    does any error raised while producing the records it consumes (reading the input files).
    """

    @_wraps(func)
    def writer(records: Iterable[Any], out: Any) -> Any:
        upstream: list[BaseException] = []

        def feed() -> Iterator[Any]:
            try:
                yield from records
            except BaseException as exc:
                upstream.append(exc)
                raise

        try:
            return func(feed(), out)
        except (BrokenPipeError, DealdeskError):
            raise
        except (Exception, SystemExit) as exc:
            if any(exc is seen for seen in upstream):
                raise
            raise PluginError(plugin, f"writer {name!r}", exc) from exc

    return writer


_ATTRIBUTED: dict[str, Callable[[Callable[..., Any], str, str], Callable[..., Any]]] = {
    "filter": _attributed_filter,
    "reader": _attributed_reader,
    "writer": _attributed_writer,
}


def _check_name(name: object, kind: str, mine: set[str]) -> None:
    """A registered name is a non-empty string, and one plugin registers it once."""
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"{kind} name must be a non-empty string, not {name!r}")
    if name in mine:
        raise ValueError(f"registers {kind} {name!r} twice")
    mine.add(name)


def _check_action(name: str, func: Callable[..., Any]) -> None:
    """Actions are called as ``func(ctx)``: exactly one positional parameter."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # some builtins have no signature; trust them
        return
    params = list(signature.parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if len(params) != 1 or params[0].kind not in positional:
        label = getattr(func, "__qualname__", repr(func))
        raise TypeError(
            f"action {name!r} must take exactly one parameter (ctx); {label}{signature} does not"
        )


def _as_path(value: object, what: str) -> Path | None:
    """Accept ``str``/``os.PathLike`` (``importlib.resources.files()`` on disk is a ``Path``)."""
    if value is None:
        return None
    if isinstance(value, str | os.PathLike):
        return Path(value)
    raise TypeError(
        f"{what} must be a path, not {type(value).__name__} (use importlib.resources.as_file)"
    )


def _existing(path: Path | None, policy: str, what: str) -> Path | None:
    """A ``rulesets`` or ``templates`` path that exists (templates: a directory).

    A path that is not there is a packaging slip (a folder left out of the wheel, a typo), and
    ignoring it would load a family without its rules or clauses without a word.
    """
    if path is None:
        return None
    if not path.exists():
        raise FileNotFoundError(
            f"policy {policy!r}: {what} {str(path)!r} does not exist (pass {what}=None for none)"
        )
    if what == "templates" and not path.is_dir():
        raise NotADirectoryError(f"policy {policy!r}: templates {str(path)!r} is not a directory")
    return path


def _check_facts(facts: Mapping[str, str] | None, policy: str) -> dict[str, str]:
    """Facts map non-empty paths to one of :data:`FACT_TYPES`."""
    if facts is None:
        return {}
    if not isinstance(facts, Mapping):
        raise TypeError(
            f"policy {policy!r}: facts must be a mapping of path to type, not {type(facts).__name__}"
        )
    checked: dict[str, str] = {}
    for path, kind in facts.items():
        if not isinstance(path, str) or not path:
            raise TypeError(
                f"policy {policy!r}: fact path must be a non-empty string, not {path!r}"
            )
        if kind not in FACT_TYPES:
            allowed = ", ".join(sorted(FACT_TYPES))
            raise ValueError(
                f"policy {policy!r}: fact {path!r} has type {kind!r}; expected one of {allowed}"
            )
        checked[path] = kind
    return checked


def _plugin_info(pm: pluggy.PluginManager, builtins: set[str]) -> list[dict[str, Any]]:
    """Name, version and hooks of every registered (not blocked) plugin, in registration order."""
    dist_version = {id(plugin): dist.version for plugin, dist in pm.list_plugin_distributions()}
    info: list[dict[str, Any]] = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # a blocked name
            continue
        builtin = name in builtins and getattr(plugin, "__name__", "") in DEFAULT_PLUGINS
        if builtin:
            version: str | None = __version__
        else:
            version = dist_version.get(id(plugin)) or _module_version(plugin)
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        info.append({"name": name, "version": version, "builtin": builtin, "hooks": hooks})
    return info


def _module_version(plugin: object) -> str | None:
    """The version of the installed distribution that a plugin registered by hand belongs to."""
    if inspect.ismodule(plugin):
        module = plugin.__name__
    elif isinstance(plugin, type):
        module = plugin.__module__
    else:
        module = type(plugin).__module__
    import importlib.metadata

    for dist in importlib.metadata.packages_distributions().get(module.partition(".")[0], []):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None
