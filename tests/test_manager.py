"""The plugin manager: loading, disabling, collecting, attributing failures (SPEC §7)."""

from __future__ import annotations

import importlib.metadata
import io
import itertools
import os
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

import click
import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dealdesk
from dealdesk import hookimpl, manager
from dealdesk.errors import DealdeskError, PluginError
from dealdesk.manager import (
    DEFAULT_PLUGINS,
    PluginImportError,
    Plugins,
    collect_plugins,
    get_plugin_manager,
)
from dealdesk.testing import CliRunner

BUILTINS = ["billing_milestone", "onsite_support", "partner_margin"]
BUILTIN_POLICIES = ["billing-milestone", "onsite-support", "partner-margin"]


def _example_installed() -> bool:
    try:
        importlib.metadata.distribution("dealdesk-example-plugin")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


# tox installs the example plugin and sets DEALDESK_REQUIRE_EXAMPLE_PLUGIN, so there these
# tests run or fail, never skip; a bare checkout without the plugin skips them
needs_example = pytest.mark.skipif(
    not _example_installed() and not os.environ.get("DEALDESK_REQUIRE_EXAMPLE_PLUGIN"),
    reason="dealdesk-example-plugin is not installed "
    "(tox installs it; locally: pip install -e examples/dealdesk-example-plugin)",
)


def names(pm: pluggy.PluginManager) -> list[str]:
    """Registered (not blocked) plugin names, in registration order."""
    return [name for name, plugin in pm.list_name_plugin() if plugin is not None]


# --- fake installed distributions: the entry-point path, without installing anything --------

_unique = itertools.count()


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """``install(ep_name, source, dist=...) -> module``: a distribution with a dealdesk entry point.

    Writes a module and a ``.dist-info`` (METADATA, entry_points.txt) to a directory put on
    ``sys.path``, which is all ``importlib.metadata`` needs to see an installed plugin.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    modules: list[str] = []

    def make(ep_name: str, source: str, dist: str | None = None, version: str = "1.2.3") -> str:
        module = f"fake_dealdesk_plugin_{next(_unique)}"
        dist = dist or module.replace("_", "-")
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[dealdesk]\n{ep_name} = {module}\n")
        modules.append(module)
        return module

    yield make
    for module in modules:
        sys.modules.pop(module, None)


PLUGIN_SOURCE = """
    from dealdesk import hookimpl

    @hookimpl
    def dealdesk_policies(register):
        register("fake-policy", description="from an entry point")
"""


# --- the look for entry points before importlib.metadata ----------------------------------

SECTIONS = st.sampled_from(
    ["[dealdesk]", " [dealdesk] ", "[[dealdesk]]", "[DealDesk]", "[ dealdesk ]", "[dealdesk.x]"]
)
OTHER_LINES = st.sampled_from(
    ["[console_scripts]", "dealdesk = dealdesk.cli:main", "# [dealdesk]", "fake = fake_module", ""]
)
# each section followed by an entry point, among other lines
ENTRY_POINT_LINES = st.lists(
    st.one_of(SECTIONS.map(lambda s: [s, "fake = fake_module"]), OTHER_LINES.map(lambda x: [x])),
    max_size=4,
).map(lambda groups: [line for group in groups for line in group])


def only_the_standard_finder(patch: pytest.MonkeyPatch) -> None:
    """Leave out other finders of distributions: importing importlib_metadata (distributed
    does) adds one, which makes every look a "maybe" for the rest of the test session."""
    import importlib.machinery

    standard = importlib.machinery.PathFinder
    kept = [f for f in sys.meta_path if f is standard or not hasattr(f, "find_distributions")]
    patch.setattr(sys, "meta_path", kept)


@settings(max_examples=80, deadline=None)
@given(ENTRY_POINT_LINES, st.sampled_from(["\n", "\r\n"]), st.sampled_from(["dist", "egg"]))
def test_the_look_for_entry_points_misses_none_importlib_metadata_finds(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], newline: str, kind: str
) -> None:
    site = tmp_path_factory.mktemp("site")
    info = site / f"fake_dist-1.0.{kind}-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-dist\nVersion: 1.0\n")
    (info / "entry_points.txt").write_bytes(newline.join(lines).encode())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "path", [str(site)])
        only_the_standard_finder(patch)
        found = list(importlib.metadata.entry_points(group="dealdesk"))
        may = manager._may_declare_entry_points()
    assert may or not found
    assert not may or any(manager._names_group(line) for line in lines)


def test_no_entry_point_means_importlib_metadata_is_not_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "other-1.0.dist-info").mkdir()
    (tmp_path / "other-1.0.dist-info" / "entry_points.txt").write_text(
        "[console_scripts]\ndealdesk = dealdesk.cli:main\n"
    )
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    only_the_standard_finder(monkeypatch)
    if manager._may_declare_entry_points():
        pytest.skip("a dealdesk plugin is installed here")

    def no_scan(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("entry points read")

    monkeypatch.setattr(manager, "_load_entry_points", no_scan)
    assert names(get_plugin_manager(autoload=True)) == BUILTINS


def test_a_zip_on_the_path_or_another_finder_is_a_maybe(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "plugins.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    monkeypatch.setattr(sys, "path", [str(tmp_path / "plugins.zip")])
    assert manager._may_declare_entry_points()
    monkeypatch.setattr(sys, "path", [str(tmp_path / "site.egg")])
    (tmp_path / "site.egg").mkdir()
    assert manager._may_declare_entry_points()

    class Finder:
        @staticmethod
        def find_distributions(context: Any = None) -> list[Any]:
            return []

    monkeypatch.setattr(sys, "path", [])
    only_the_standard_finder(monkeypatch)
    assert not manager._may_declare_entry_points()
    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Finder])
    assert manager._may_declare_entry_points()


# --- building the manager ---------------------------------------------------------------


def test_builtins_are_registered_first_under_their_short_names(
    plugin_manager: pluggy.PluginManager,
) -> None:
    assert names(plugin_manager) == BUILTINS
    for name, module_name in zip(BUILTINS, DEFAULT_PLUGINS, strict=True):
        assert plugin_manager.get_plugin(name) is sys.modules[module_name]


def test_each_call_returns_a_fresh_manager() -> None:
    first = get_plugin_manager(autoload=False)
    first.set_blocked("onsite_support")
    assert names(get_plugin_manager(autoload=False)) == BUILTINS


def test_builtins_load_through_the_import_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        manager, "DEFAULT_PLUGINS", (*DEFAULT_PLUGINS, "dealdesk.plugins.no_such_plugin")
    )
    with pytest.raises(PluginImportError) as excinfo:
        get_plugin_manager(autoload=False)
    assert str(excinfo.value).startswith(
        'Error importing plugin "no_such_plugin": ModuleNotFoundError'
    )
    assert excinfo.value.plugin == "no_such_plugin"
    assert isinstance(excinfo.value, PluginError) and excinfo.value.exit_code == 2


def test_entry_points_load_after_the_builtins(install: Callable[..., str]) -> None:
    module = install("fake", PLUGIN_SOURCE, version="4.5.6")
    pm = get_plugin_manager(autoload=True)
    assert names(pm)[: len(BUILTINS)] == BUILTINS
    assert pm.get_plugin("fake") is sys.modules[module]
    info = {entry["name"]: entry for entry in collect_plugins(pm).plugin_info()}
    assert info["fake"] == {
        "name": "fake",
        "version": "4.5.6",
        "builtin": False,
        "policies": [
            {"name": "fake-policy", "description": "from an entry point", "overridden_by": None}
        ],
        "hooks": ["dealdesk_policies"],
    }


def test_entry_points_load_sorted_by_name(install: Callable[..., str]) -> None:
    install("zeta", PLUGIN_SOURCE)
    install("alpha", PLUGIN_SOURCE)
    pm = get_plugin_manager(autoload=True)
    fakes = [name for name in names(pm) if name in ("zeta", "alpha")]
    assert fakes == ["alpha", "zeta"]


@pytest.mark.parametrize(
    ("autoload", "env", "loaded"),
    [
        (None, None, True),
        (None, "1", False),
        (None, "true", False),
        (None, "0", True),
        (False, None, False),
        (True, "1", True),  # an explicit argument wins over the environment
    ],
)
def test_autoload_follows_the_argument_then_the_environment(
    install: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    autoload: bool | None,
    env: str | None,
    loaded: bool,
) -> None:
    install("fake", PLUGIN_SOURCE)
    if env is None:
        monkeypatch.delenv("DEALDESK_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    else:
        monkeypatch.setenv("DEALDESK_DISABLE_PLUGIN_AUTOLOAD", env)
    pm = get_plugin_manager(autoload=autoload)
    assert pm.has_plugin("fake") is loaded
    assert names(pm)[:3] == BUILTINS  # built-ins load whatever autoload says


def test_enabled_loads_an_entry_point_with_autoload_off(install: Callable[..., str]) -> None:
    install("fake", PLUGIN_SOURCE)
    assert get_plugin_manager(autoload=False, enabled=["fake"]).has_plugin("fake")


def test_enabled_loads_a_module_by_name(install: Callable[..., str]) -> None:
    module = install("unused", PLUGIN_SOURCE)
    pm = get_plugin_manager(autoload=False, enabled=[module])
    assert pm.get_plugin(module) is sys.modules[module]


def test_enabling_a_module_its_entry_point_already_loaded_is_a_no_op(
    install: Callable[..., str],
) -> None:
    module = install("fake", PLUGIN_SOURCE)
    pm = get_plugin_manager(autoload=True, enabled=[module])
    assert pm.get_plugin("fake") is sys.modules[module]
    assert not pm.has_plugin(module)


@pytest.mark.parametrize(
    "name",
    [
        "billing_milestone",
        "billing-milestone",
        "dealdesk.plugins.billing_milestone",
        "no:billing_milestone",
    ],
)
def test_disabling_a_builtin_by_any_of_its_names(name: str) -> None:
    pm = get_plugin_manager(autoload=False, disabled=[name])
    assert names(pm) == ["onsite_support", "partner_margin"]
    assert list(collect_plugins(pm).policies) == ["onsite-support", "partner-margin"]


@pytest.mark.parametrize("name", ["fake_plugin", "fake-plugin"])
def test_disabling_an_entry_point(install: Callable[..., str], name: str) -> None:
    install("fake_plugin", PLUGIN_SOURCE)
    pm = get_plugin_manager(autoload=True, disabled=[name])
    assert not pm.has_plugin("fake_plugin")
    assert pm.is_blocked("fake_plugin")


def test_disabling_an_unknown_name_is_not_an_error() -> None:
    assert names(get_plugin_manager(autoload=False, disabled=["nothing_like_this"])) == BUILTINS


def test_an_entry_point_that_fails_to_import_is_named(install: Callable[..., str]) -> None:
    install("broken", "raise RuntimeError('the licence server is down')\n")
    with pytest.raises(PluginImportError) as excinfo:
        get_plugin_manager(autoload=True)
    assert (
        str(excinfo.value)
        == 'Error importing plugin "broken": RuntimeError: the licence server is down'
    )
    assert isinstance(excinfo.value, DealdeskError)


def test_an_entry_point_with_a_missing_module_is_named(
    install: Callable[..., str], tmp_path: Path
) -> None:
    module = install("ghost", PLUGIN_SOURCE)
    (tmp_path / "site" / f"{module}.py").unlink()
    with pytest.raises(
        PluginImportError, match=r'^Error importing plugin "ghost": ModuleNotFoundError'
    ):
        get_plugin_manager(autoload=True)


def test_an_entry_point_may_not_take_a_builtin_name(install: Callable[..., str]) -> None:
    install("billing_milestone", PLUGIN_SOURCE)
    with pytest.raises(PluginError, match="has the name of the built-in plugin"):
        get_plugin_manager(autoload=True)


def test_two_distributions_with_one_entry_point_name(install: Callable[..., str]) -> None:
    install("twin", PLUGIN_SOURCE, dist="first-dist")
    install("twin", PLUGIN_SOURCE, dist="second-dist")
    with pytest.raises(PluginError, match="two distributions provide the entry point"):
        get_plugin_manager(autoload=True)


def test_an_unknown_hook_is_an_error_with_a_suggestion(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    class Typo:
        @hookimpl
        def dealdesk_polices(self, register: Any) -> None:
            """Misspelled on purpose."""

    with pytest.raises(PluginError) as excinfo:
        register_plugin(Typo(), name="typo")
    assert excinfo.value.plugin == "typo"
    assert not plugin_manager.has_plugin("typo")  # not left half-registered
    assert "unknown hook 'dealdesk_polices' (did you mean 'dealdesk_policies'?)" in str(
        excinfo.value
    )


def test_an_argument_the_hook_does_not_have_is_an_error(
    register_plugin: Callable[..., str],
) -> None:
    class WrongArgument:
        @hookimpl
        def dealdesk_enrich(self, context: Any) -> None:
            """``context`` is not an argument of dealdesk_enrich."""

    with pytest.raises(
        PluginError, match=r"plugin 'wrong' failed in registration: .*\{'context'\}"
    ) as excinfo:
        register_plugin(WrongArgument(), name="wrong")
    assert "\n" not in str(excinfo.value)


def test_wrapper_implementations_are_rejected(register_plugin: Callable[..., str]) -> None:
    class Wrapper:
        @hookimpl(wrapper=True)
        def dealdesk_enrich(self, deal: Any) -> Any:
            """Would only ever wrap its own plugin's implementation."""
            return (yield)

    with pytest.raises(PluginError, match="wrapper implementations are not supported"):
        register_plugin(Wrapper(), name="wrapper")


def test_a_plugin_name_is_registered_once(register_plugin: Callable[..., str]) -> None:
    with pytest.raises(PluginError, match="already registered"):
        register_plugin(object(), name="billing_milestone")


# --- collecting registrations ---------------------------------------------------------------


def test_builtin_policy_families(plugin_manager: pluggy.PluginManager) -> None:
    plugins = collect_plugins(plugin_manager)
    assert list(plugins.policies) == BUILTIN_POLICIES
    for policy, plugin in zip(BUILTIN_POLICIES, BUILTINS, strict=True):
        family = plugins.policies[policy]
        assert family.plugin == plugin
        assert family.builtin
        assert family.description
        assert family.rulesets == Path(str(files("dealdesk.rulesets") / f"{policy}.yaml"))
        assert family.templates == Path(str(files(f"dealdesk.plugins.{plugin}") / "templates"))
    # billing-milestone brings the requested_split facts its BM-6 rules read
    assert set(plugins.policies["billing-milestone"].facts) == {
        "requested_split",
        "requested_split.total",
        "requested_split.min",
        "requested_split.key",
    }
    assert plugins.policies["partner-margin"].facts == {}


def test_builtin_actions_are_attributed(plugin_manager: pluggy.PluginManager) -> None:
    actions = collect_plugins(plugin_manager).actions
    assert {name: action.plugin for name, action in actions.items()} == {
        "milestones": "billing_milestone",
        "invoice_models": "billing_milestone",
        "resident_engineer": "onsite_support",
    }


# any folder that exists: registering a rulesets path that does not is an error
OURS = Path(__file__).resolve().parent


class Override:
    """Replaces a built-in policy family and a built-in action."""

    @hookimpl
    def dealdesk_policies(self, register: Any) -> None:
        """Our own billing-milestone rules."""
        register(
            "billing-milestone",
            description="ours",
            rulesets=OURS,
            facts={"po.number": "string"},
        )

    @hookimpl
    def dealdesk_actions(self, register: Any) -> None:
        """Our own milestones action."""
        register("milestones", lambda ctx: None)


def test_a_later_plugin_overrides_a_builtin(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    register_plugin(Override(), name="override")
    plugins = collect_plugins(plugin_manager)
    family = plugins.policies["billing-milestone"]
    assert (family.plugin, family.description, family.rulesets, family.builtin) == (
        "override",
        "ours",
        OURS,
        False,
    )
    assert plugins.fact_types == {"po.number": "string"}
    assert plugins.actions["milestones"].plugin == "override"
    # the overriding entry moves last: registry order is precedence order
    assert list(plugins.policies) == ["onsite-support", "partner-margin", "billing-milestone"]
    assert plugins.template_dirs[-1] == plugins.policies["onsite-support"].templates


def test_one_plugin_registering_a_name_twice_is_an_error(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    class Twice:
        @hookimpl
        def dealdesk_template_filters(self, register: Any) -> None:
            """Registers ``shout`` twice."""
            register("shout", str.upper)
            register("shout", str.upper)

    register_plugin(Twice(), name="twice")
    with pytest.raises(
        PluginError,
        match="^plugin 'twice' failed in dealdesk_template_filters: .*registers filter 'shout' twice",
    ):
        collect_plugins(plugin_manager)


def _plugin(hook: str, body: Callable[..., Any]) -> object:
    """A plugin object implementing ``hook`` with ``body``."""
    plugin = type("Plugin", (), {})()
    impl = hookimpl(specname=hook)(body)
    setattr(plugin, f"impl_{hook}", impl)
    return plugin


@pytest.mark.parametrize(
    ("hook", "call", "message"),
    [
        (
            "dealdesk_policies",
            lambda register: register("x", descriptin="typo"),
            "TypeError: .*unexpected keyword argument 'descriptin'",
        ),
        (
            "dealdesk_policies",
            lambda register: register("x", facts={"a.b": "float"}),
            "fact 'a.b' has type 'float'; expected one of array, boolean, number, object, string",
        ),
        (
            "dealdesk_policies",
            lambda register: register("x", rulesets=42),
            "rulesets must be a path, not int",
        ),
        (
            "dealdesk_policies",
            lambda register: register(""),
            "policy name must be a non-empty string",
        ),
        (
            "dealdesk_actions",
            lambda register: register("two", lambda ctx, extra: None),
            r"action 'two' must take exactly one parameter \(ctx\)",
        ),
        (
            "dealdesk_actions",
            lambda register: register("none", lambda: None),
            r"action 'none' must take exactly one parameter \(ctx\)",
        ),
        (
            "dealdesk_writers",
            lambda register: register("csv", "not callable"),
            "writer 'csv': 'not callable' is not callable",
        ),
        ("dealdesk_readers", lambda register: 1 / 0, "ZeroDivisionError: division by zero"),
    ],
)
def test_bad_registrations_name_the_plugin_and_hook(
    plugin_manager: pluggy.PluginManager,
    register_plugin: Callable[..., str],
    hook: str,
    call: Callable[[Any], None],
    message: str,
) -> None:
    register_plugin(_plugin(hook, lambda register: call(register)), name="culprit")
    with pytest.raises(
        PluginError, match=f"^plugin 'culprit' failed in {hook}: .*{message}"
    ) as excinfo:
        collect_plugins(plugin_manager)
    assert (excinfo.value.plugin, excinfo.value.hook) == ("culprit", hook)


def test_a_failure_is_attributed_to_the_right_plugin_among_several(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    register_plugin(
        _plugin("dealdesk_actions", lambda register: register("fine", lambda ctx: None)),
        name="good",
    )
    register_plugin(
        _plugin("dealdesk_actions", lambda register: register("bad", print)), name="bad"
    )
    register_plugin(
        _plugin("dealdesk_actions", lambda register: register("fine2", lambda ctx: None)),
        name="also_good",
    )
    with pytest.raises(PluginError) as excinfo:
        collect_plugins(plugin_manager)
    assert excinfo.value.plugin == "bad"


def test_action_signatures_that_take_one_parameter_are_accepted(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    class Actions:
        def method(self, ctx: Any) -> None:
            """A bound method: ``self`` is already bound."""

    def register_all(register: Any) -> None:
        register("function", lambda ctx: None)
        register("method", Actions().method)
        register("positional_only", lambda ctx, /: None)

    register_plugin(_plugin("dealdesk_actions", register_all), name="actions")
    assert {"function", "method", "positional_only"} <= set(collect_plugins(plugin_manager).actions)


def test_reader_and_writer_keys_are_normalised(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    register_plugin(_plugin("dealdesk_readers", lambda register: register(".XLSX", list)), name="a")
    register_plugin(_plugin("dealdesk_readers", lambda register: register("xlsx", tuple)), name="b")
    register_plugin(
        _plugin("dealdesk_writers", lambda register: register("Parquet", list)), name="c"
    )
    plugins = collect_plugins(plugin_manager)
    # one suffix however written; the later wins (wrapped so that a failure names the plugin)
    assert list(plugins.readers) == [".xlsx"]
    assert plugins.readers[".xlsx"].__wrapped__ is tuple
    assert list(plugins.writers) == ["parquet"]
    assert plugins.writers["parquet"].__wrapped__ is list


def test_a_plugin_reader_feeds_the_batch_reader(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str], tmp_path: Path
) -> None:
    from dealdesk.io import readers as batch

    def read_ids(path: Path) -> Iterator[dict[str, Any]]:
        for line in path.read_text().split():
            yield {"id": line}

    register_plugin(
        _plugin("dealdesk_readers", lambda register: register("ids", read_ids)), name="ids"
    )
    (tmp_path / "book.ids").write_text("D-1 D-2\n")
    readers = {**batch.READERS, **collect_plugins(plugin_manager).readers}
    deals = list(batch.read_deals([str(tmp_path)], readers))
    assert [deal.deal for deal in deals] == [{"id": "D-1"}, {"id": "D-2"}]


def _collect_one(
    plugin_manager: pluggy.PluginManager,
    register_plugin: Callable[..., str],
    hook: str,
    name: str,
    func: Callable[..., Any],
) -> Plugins:
    """Collect the plugins after registering ``func`` as ``name`` through ``hook`` of plugin 'x'."""
    register_plugin(_plugin(hook, lambda register: register(name, func)), name="x")
    return collect_plugins(plugin_manager)


def test_a_failing_filter_names_the_plugin(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    def f(value: Any) -> str:
        raise ValueError("nope")

    plugins = _collect_one(plugin_manager, register_plugin, "dealdesk_template_filters", "f", f)
    with pytest.raises(PluginError) as excinfo:
        plugins.filters["f"]("v")
    assert str(excinfo.value) == "plugin 'x' failed in template filter 'f': ValueError: nope"
    assert (excinfo.value.plugin, excinfo.value.hook) == ("x", "template filter 'f'")


def test_a_wrapped_filter_keeps_its_jinja_attributes_and_behaviour(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    import jinja2

    from dealdesk.templating import Renderer

    @jinja2.pass_context
    def deal_id(context: Any, value: Any, suffix: str = "") -> str:
        """Reads the context: only works when Jinja passes it."""
        return f"{context['id']}:{value}{suffix}"

    plugins = _collect_one(
        plugin_manager, register_plugin, "dealdesk_template_filters", "deal_id", deal_id
    )
    wrapped = plugins.filters["deal_id"]
    assert wrapped.jinja_pass_arg is deal_id.jinja_pass_arg  # type: ignore[attr-defined]
    assert wrapped.__doc__ == deal_id.__doc__ and wrapped.__name__ == "deal_id"
    renderer = Renderer([], plugins.filters)
    text = renderer.render_message("{{ 5|deal_id('!') }}", {"id": "D-1"}, "here")
    assert text == "D-1:5!"


def test_a_filter_given_an_undefined_value_is_the_templates_error(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    from dealdesk.errors import TemplateError
    from dealdesk.templating import Renderer

    plugins = _collect_one(
        plugin_manager, register_plugin, "dealdesk_template_filters", "shout", lambda v: f"{v}!"
    )
    with pytest.raises(TemplateError) as excinfo:
        Renderer([], plugins.filters).render_message("{{ nope|shout }}", {}, "here")
    assert "'nope' is undefined" in str(excinfo.value)
    assert "plugin" not in str(excinfo.value)


def test_a_failing_reader_names_the_plugin_opening_or_iterating(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str], tmp_path: Path
) -> None:
    def read(path: Path) -> Iterator[dict[str, Any]]:
        yield {"id": "X"}
        raise KeyError("bad cell")

    plugins = _collect_one(plugin_manager, register_plugin, "dealdesk_readers", "XDEAL", read)
    reader = plugins.readers[".xdeal"]
    iterator = iter(reader(tmp_path / "a.xdeal"))
    assert next(iterator) == {"id": "X"}  # deals before the failure are kept
    with pytest.raises(PluginError) as excinfo:
        next(iterator)
    assert str(excinfo.value) == "plugin 'x' failed in reader '.xdeal': KeyError: 'bad cell'"


def test_a_reader_that_cannot_open_its_file_is_not_a_plugin_failure(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str], tmp_path: Path
) -> None:
    def read(path: Path) -> list[Any]:
        return [path.read_text()]  # the file is not there: an OSError, as for built-in readers

    plugins = _collect_one(plugin_manager, register_plugin, "dealdesk_readers", ".xdeal", read)
    with pytest.raises(FileNotFoundError):
        list(plugins.readers[".xdeal"](tmp_path / "missing.xdeal"))


def test_a_failing_writer_names_the_plugin(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    def write(records: Any, out: Any) -> None:
        for _record in records:
            raise RuntimeError("disk full")

    plugins = _collect_one(plugin_manager, register_plugin, "dealdesk_writers", "Boom", write)
    with pytest.raises(PluginError) as excinfo:
        plugins.writers["boom"]([{"deal_id": "D-1"}], io.StringIO())
    assert str(excinfo.value) == "plugin 'x' failed in writer 'boom': RuntimeError: disk full"


def test_a_wrapped_writer_writes_and_does_not_own_the_records_errors(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    def write(records: Any, out: Any) -> None:
        for record in records:
            out.write(f"{record['deal_id']}\n")

    plugins = _collect_one(plugin_manager, register_plugin, "dealdesk_writers", "ids", write)
    out = io.StringIO()
    plugins.writers["ids"]([{"deal_id": "D-1"}, {"deal_id": "D-2"}], out)
    assert out.getvalue() == "D-1\nD-2\n"

    def records() -> Iterator[dict[str, Any]]:
        yield {"deal_id": "D-1"}
        raise LookupError("the input went away")  # dealdesk's side, not the writer's

    with pytest.raises(LookupError, match="the input went away"):
        plugins.writers["ids"](records(), io.StringIO())


# --- per-deal hooks ---------------------------------------------------------------------------


def test_enrich_merges_in_registration_order(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    register_plugin(_plugin("dealdesk_enrich", lambda deal: {"a": deal["id"] + "-a"}), name="first")
    register_plugin(_plugin("dealdesk_enrich", lambda deal: None), name="nothing")
    register_plugin(_plugin("dealdesk_enrich", lambda deal: {"b": deal["a"] + "-b"}), name="second")
    deal = {"id": "D-1"}
    assert collect_plugins(plugin_manager).enrich(deal) == {"a": "D-1-a", "b": "D-1-a-b"}
    assert deal == {"id": "D-1"}


def test_enrich_rejects_overwriting_an_input_field(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    register_plugin(_plugin("dealdesk_enrich", lambda deal: {"currency": "EUR"}), name="sneaky")
    with pytest.raises(PluginError) as excinfo:
        collect_plugins(plugin_manager).enrich({"id": "D-1", "currency": "USD"})
    assert (
        str(excinfo.value)
        == "plugin 'sneaky' failed in dealdesk_enrich: overwrites the input field 'currency'"
    )


def test_enrich_rejects_another_plugins_key_naming_both(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    register_plugin(_plugin("dealdesk_enrich", lambda deal: {"x": 1}), name="a")
    register_plugin(_plugin("dealdesk_enrich", lambda deal: {"x": 2}), name="b")
    with pytest.raises(PluginError) as excinfo:
        collect_plugins(plugin_manager).enrich({"id": "D-1"})
    assert (
        str(excinfo.value)
        == "plugin 'b' failed in dealdesk_enrich: sets 'x' already set by plugin 'a'"
    )


@pytest.mark.parametrize("key", ["margin", "totals", "labor_margin"])
@pytest.mark.parametrize("present", [True, False], ids=["derived", "left-out"])
def test_enrich_rejects_a_derived_fact_naming_plugin_and_dealdesk(
    plugin_manager: pluggy.PluginManager,
    register_plugin: Callable[..., str],
    key: str,
    present: bool,
) -> None:
    register_plugin(_plugin("dealdesk_enrich", lambda deal: {key: 5}), name="shadow")
    deal = {"id": "D-1", key: 1} if present else {"id": "D-1"}
    with pytest.raises(PluginError) as excinfo:
        collect_plugins(plugin_manager).enrich(deal)
    assert str(excinfo.value) == (
        f"plugin 'shadow' failed in dealdesk_enrich: sets {key!r}, a fact dealdesk derives "
        "from the deal; a plugin may add new keys only"
    )


class Missing:
    """Registers a family whose rulesets or templates folder is not there."""

    def __init__(self, **paths: Any) -> None:
        self.paths = paths

    @hookimpl
    def dealdesk_policies(self, register: Any) -> None:
        """A family with a path that does not exist."""
        register("ghost", **self.paths)


@pytest.mark.parametrize(
    ("paths", "detail"),
    [
        ({"rulesets": "/nonexistent/r"}, "rulesets '/nonexistent/r' does not exist"),
        ({"templates": "/nonexistent/t"}, "templates '/nonexistent/t' does not exist"),
        ({"templates": __file__}, f"templates {__file__!r} is not a directory"),
    ],
)
def test_a_rulesets_or_templates_path_that_is_not_there_names_the_plugin(
    plugin_manager: pluggy.PluginManager,
    register_plugin: Callable[..., str],
    paths: dict[str, str],
    detail: str,
) -> None:
    register_plugin(Missing(**paths), name="ghostly")
    with pytest.raises(PluginError) as excinfo:
        collect_plugins(plugin_manager)
    assert str(excinfo.value).startswith(
        "plugin 'ghostly' failed in dealdesk_policies: "
    ) and f"policy 'ghost': {detail}" in str(excinfo.value)


def test_collecting_with_failures_goes_on_past_a_broken_plugin(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    def boom(register: Any) -> None:
        raise RuntimeError("boom")

    register_plugin(_plugin("dealdesk_policies", boom), name="broken")
    register_plugin(Override(), name="override")
    failures: list[PluginError] = []
    plugins = collect_plugins(plugin_manager, failures=failures)
    assert [str(f) for f in failures] == [
        "plugin 'broken' failed in dealdesk_policies: RuntimeError: boom"
    ]
    assert plugins.policies["billing-milestone"].plugin == "override"  # a later plugin too
    assert [e["name"] for e in plugins.plugin_info()][-2:] == ["broken", "override"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (lambda deal: [("x", 1)], "returned list, expected a dict or None"),
        (lambda deal: {1: "x"}, "returned the key 1; keys must be non-empty strings"),
        (lambda deal: deal["missing"], "KeyError: 'missing'"),
        (lambda deal: deal.update(x=1), "AttributeError"),  # the deal is read-only
    ],
)
def test_enrich_failures_name_the_plugin(
    plugin_manager: pluggy.PluginManager,
    register_plugin: Callable[..., str],
    body: Callable[[Any], Any],
    message: str,
) -> None:
    register_plugin(_plugin("dealdesk_enrich", body), name="enricher")
    with pytest.raises(
        PluginError, match="^plugin 'enricher' failed in dealdesk_enrich: "
    ) as excinfo:
        collect_plugins(plugin_manager).enrich({"id": "D-1"})
    assert message in str(excinfo.value)


def _exit(*args: Any, **kwargs: Any) -> None:
    sys.exit(3)


@pytest.mark.parametrize(
    ("hook", "call"),
    [
        ("dealdesk_enrich", lambda plugins: plugins.enrich({"id": "D-1"})),
        ("dealdesk_decision", lambda plugins: plugins.decision({"deal_id": "D-1"})),
        ("dealdesk_combine", lambda plugins: plugins.combine({})),
    ],
)
def test_a_plugin_calling_sys_exit_in_a_hook_is_named(
    plugin_manager: pluggy.PluginManager,
    register_plugin: Callable[..., str],
    hook: str,
    call: Callable[[Any], Any],
) -> None:
    # like an exception: a PluginError naming it, never the end of the run (SPEC §9)
    register_plugin(_plugin(hook, lambda **kwargs: _exit()), name="quitter")
    with pytest.raises(PluginError) as excinfo:
        call(collect_plugins(plugin_manager))
    assert str(excinfo.value) == f"plugin 'quitter' failed in {hook}: sys.exit(3) was called"
    assert excinfo.value.plugin == "quitter"


def test_a_plugin_calling_sys_exit_while_registering_is_named(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    register_plugin(_plugin("dealdesk_actions", lambda register: _exit()), name="quitter")
    failures: list[PluginError] = []
    collect_plugins(plugin_manager, failures=failures)
    assert [str(f) for f in failures] == [
        "plugin 'quitter' failed in dealdesk_actions: sys.exit(3) was called"
    ]


def test_decision_calls_every_sink_in_order(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    seen: list[tuple[str, str]] = []
    register_plugin(
        _plugin("dealdesk_decision", lambda record: seen.append(("one", record["deal_id"]))),
        name="one",
    )
    register_plugin(
        _plugin("dealdesk_decision", lambda record: seen.append(("two", record["deal_id"]))),
        name="two",
    )
    collect_plugins(plugin_manager).decision({"deal_id": "D-1"})
    assert seen == [("one", "D-1"), ("two", "D-1")]


def test_a_failing_sink_is_named(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    register_plugin(_plugin("dealdesk_decision", lambda record: record["nope"]), name="audit")
    with pytest.raises(PluginError, match="^plugin 'audit' failed in dealdesk_decision: KeyError"):
        collect_plugins(plugin_manager).decision({"deal_id": "D-1"})


def test_combine_asks_the_latest_plugin_first(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    plugins = collect_plugins(plugin_manager)
    assert plugins.combine({"p": {"status": "approved"}}) is None  # no plugin: the default applies
    register_plugin(
        _plugin("dealdesk_combine", lambda records: {"status": "approved"}), name="early"
    )
    register_plugin(
        _plugin("dealdesk_combine", lambda records: {"status": "rejected"}), name="late"
    )
    register_plugin(_plugin("dealdesk_combine", lambda records: None), name="defers")
    assert collect_plugins(plugin_manager).combine({}) == {"status": "rejected"}


def test_combine_accepts_a_full_or_partial_decision(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    decision = {
        "status": "needs_approval",
        "approvals": ["deal_desk", "cfo"],
        "reasons": [{"policy": "p", "rule": "R-1", "message": "why"}],
    }
    register_plugin(_plugin("dealdesk_combine", lambda records: decision), name="full")
    assert collect_plugins(plugin_manager).combine({}) == decision
    register_plugin(_plugin("dealdesk_combine", lambda records: {"approvals": []}), name="part")
    assert collect_plugins(plugin_manager).combine({}) == {"approvals": []}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (lambda records: 1 / 0, "ZeroDivisionError"),
        (lambda records: "rejected", "returned str, expected a dict or None"),
        (
            lambda records: {"status": "ok"},
            "returned status 'ok'; expected one of approved, needs_approval, rejected, invalid",
        ),
        (lambda records: {"status": None}, "returned status None"),
        (
            lambda records: {"approvals": "cfo"},
            "returned approvals 'cfo'; expected a list of role names",
        ),
        (lambda records: {"approvals": ["cfo", 3]}, "returned approvals .*expected a list"),
        (lambda records: {"reasons": "because"}, "returned reasons 'because'; expected a list"),
        (
            lambda records: {"reasons": [{"policy": "p", "message": "m"}]},
            "returned reasons\\[0\\] .*expected a mapping of policy, rule and message",
        ),
        (lambda records: {"reasons": ["why"]}, "returned reasons\\[0\\] 'why'"),
        (
            lambda records: {"status": "approved", "flags": []},
            "returned the key 'flags'; a decision has only status, approvals, reasons",
        ),
    ],
)
def test_combine_failures_name_the_plugin(
    plugin_manager: pluggy.PluginManager,
    register_plugin: Callable[..., str],
    body: Callable[[Any], Any],
    message: str,
) -> None:
    register_plugin(_plugin("dealdesk_combine", body), name="combiner")
    with pytest.raises(
        PluginError, match=f"^plugin 'combiner' failed in dealdesk_combine: .*{message}"
    ):
        collect_plugins(plugin_manager).combine({})


def test_plugins_can_be_built_by_hand() -> None:
    plugins = Plugins()
    assert plugins.enrich({"id": "D-1"}) == {}
    assert plugins.combine({}) is None
    plugins.decision({})
    assert plugins.plugin_info() == []


# --- dealdesk plugins -------------------------------------------------------------------------


def test_plugin_info_of_the_builtins(plugin_manager: pluggy.PluginManager) -> None:
    info = collect_plugins(plugin_manager).plugin_info()
    assert [(e["name"], e["version"], e["builtin"], e["hooks"]) for e in info] == [
        (
            "billing_milestone",
            dealdesk.__version__,
            True,
            ["dealdesk_actions", "dealdesk_enrich", "dealdesk_policies"],
        ),
        ("onsite_support", dealdesk.__version__, True, ["dealdesk_actions", "dealdesk_policies"]),
        ("partner_margin", dealdesk.__version__, True, ["dealdesk_policies"]),
    ]
    assert [[p["name"] for p in e["policies"]] for e in info] == [
        ["billing-milestone"],
        ["onsite-support"],
        ["partner-margin"],
    ]
    assert info[2]["policies"][0]["description"] == (
        "Margin floors, partner gates and discount authority."
    )


def test_plugin_info_of_a_plugin_outside_any_distribution(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str]
) -> None:
    register_plugin(_plugin("dealdesk_decision", lambda record: None), name="local")
    assert collect_plugins(plugin_manager).plugin_info()[-1] == {
        "name": "local",
        "version": None,
        "builtin": False,
        "policies": [],
        "hooks": ["dealdesk_decision"],
    }


def test_plugin_info_omits_disabled_plugins() -> None:
    info = collect_plugins(
        get_plugin_manager(autoload=False, disabled=["partner-margin"])
    ).plugin_info()
    assert [entry["name"] for entry in info] == ["billing_milestone", "onsite_support"]


# --- the dealdesk.testing fixtures ------------------------------------------------------------


def test_hook_recorder_sees_collection_and_per_deal_calls(
    plugin_manager: pluggy.PluginManager,
    register_plugin: Callable[..., str],
    hook_recorder: Any,
) -> None:
    register_plugin(_plugin("dealdesk_enrich", lambda deal: {"seen": True}), name="enricher")
    plugins = collect_plugins(plugin_manager)
    assert [call.plugins for call in hook_recorder.getcalls("dealdesk_policies")] == [
        (name,) for name in BUILTINS
    ]
    plugins.enrich({"id": "D-1"})
    billing, call = hook_recorder.getcalls("dealdesk_enrich")  # the built-in's first
    assert billing.plugins == ("billing_milestone",)
    assert billing.result == []  # no requested split, nothing derived
    assert call.plugins == ("enricher",)
    assert call.kwargs["deal"]["id"] == "D-1"
    assert call.result == [{"seen": True}]
    assert hook_recorder.names[-1] == "dealdesk_enrich"


def test_hook_recorder_records_exceptions(
    plugin_manager: pluggy.PluginManager, register_plugin: Callable[..., str], hook_recorder: Any
) -> None:
    register_plugin(_plugin("dealdesk_decision", lambda record: 1 / 0), name="boom")
    with pytest.raises(PluginError):
        collect_plugins(plugin_manager).decision({})
    (call,) = hook_recorder.getcalls("dealdesk_decision")
    assert isinstance(call.exception, ZeroDivisionError)


def test_register_plugin_unregisters_after_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from dealdesk import hookimpl

        pytest_plugins = ["dealdesk.testing"]
        after_teardown = {}


        class Sink:
            @hookimpl
            def dealdesk_decision(self, record):
                pass


        @pytest.fixture
        def probe(plugin_manager):
            yield plugin_manager
            after_teardown["registered"] = plugin_manager.has_plugin("sink")


        def test_register(probe, register_plugin):
            assert register_plugin(Sink(), name="sink") == "sink"
            assert probe.has_plugin("sink")


        def test_it_was_unregistered():
            assert after_teardown == {"registered": False}


        def test_plugin_manager_does_not_autoload(plugin_manager, monkeypatch):
            assert [n for n, p in plugin_manager.list_name_plugin() if p] == [
                "billing_milestone", "onsite_support", "partner_margin"
            ]
        """
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=3)


@needs_example
def test_plugin_manager_fixture_keeps_installed_plugins_out(
    plugin_manager: pluggy.PluginManager,
) -> None:
    assert not plugin_manager.has_plugin("export_control")


@click.command()
@click.argument("name")
@click.option("--fail", is_flag=True)
def hello(name: str, fail: bool) -> None:
    """A stand-in command for testing the runner without the real CLI."""
    click.echo(f"hello {name}")
    click.echo(f"typed {sys.stdin.read()!r}", err=True)
    if fail:
        raise click.UsageError("bad flag")


def test_cli_runner_separates_stdout_stderr_and_exit_code() -> None:
    runner = CliRunner(hello)
    ok = runner.run("world", input="yes")
    assert (ok.exit_code, ok.stdout, ok.stderr, ok.exception) == (
        0,
        "hello world\n",
        "typed 'yes'\n",
        None,
    )
    failed = runner.run("world", "--fail")
    assert failed.exit_code == 2
    assert "bad flag" in failed.stderr


def test_cli_runner_fixture_runs_dealdesk_plugins(cli_runner: CliRunner) -> None:
    result = cli_runner.run("plugins", env={"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert result.exit_code == 0, result.stderr
    for name in BUILTINS:
        assert name in result.stdout


# --- the example external plugin, loaded through its entry point --------------------------------


@pytest.fixture
def example() -> Iterator[Any]:
    """The installed example plugin's module, its audit list emptied around the test."""
    module = pytest.importorskip("dealdesk_example_plugin")
    module.RECORDS.clear()
    yield module
    module.RECORDS.clear()


@needs_example
def test_example_plugin_loads_through_its_entry_point(example: Any) -> None:
    pm = get_plugin_manager(autoload=True)
    assert pm.get_plugin("export_control") is example
    distributions = {
        dist.metadata["Name"]
        for plugin, dist in pm.list_plugin_distributions()
        if plugin is example
    }
    assert distributions == {"dealdesk-example-plugin"}
    info = {entry["name"]: entry for entry in collect_plugins(pm).plugin_info()}
    assert info["export_control"] == {
        "name": "export_control",
        "version": importlib.metadata.version("dealdesk-example-plugin"),
        "builtin": False,
        "policies": [
            {
                "name": "export-control",
                "description": "Export screening for deals shipping to embargoed destinations.",
                "overridden_by": None,
            }
        ],
        "hooks": [
            "dealdesk_decision",
            "dealdesk_enrich",
            "dealdesk_policies",
            "dealdesk_template_filters",
        ],
    }


@needs_example
def test_example_plugin_registrations(example: Any) -> None:
    plugins = collect_plugins(get_plugin_manager(autoload=True))
    family = plugins.policies["export-control"]
    assert (family.plugin, family.builtin) == ("export_control", False)
    assert family.facts == {
        "export.destination": "string",
        "export.embargoed": "boolean",
        "export_risk": "boolean",
    }
    assert family.rulesets is not None and (family.rulesets / "export-control.yaml").is_file()
    assert family.templates is not None
    for fmt in ("md", "html"):
        assert (family.templates / "export" / f"screening.{fmt}.j2").is_file()
    assert plugins.template_dirs[0] == family.templates  # the latest plugin's templates win
    assert plugins.filters["upper_snake"]("Acme Robotics-emea v2") == "ACME_ROBOTICS_EMEA_V2"


@needs_example
@pytest.mark.parametrize(
    ("export", "risk"),
    [
        ({"destination": "KP"}, True),
        ({"destination": "kp"}, True),
        ({"destination": "DE"}, False),
        (None, False),
    ],
)
def test_example_plugin_derives_export_risk(
    example: Any, export: Mapping[str, Any] | None, risk: bool
) -> None:
    deal: dict[str, Any] = {"id": "D-1", "totals": {"product": Decimal("1")}}
    if export is not None:
        deal["export"] = export
    assert collect_plugins(get_plugin_manager(autoload=True)).enrich(deal) == {"export_risk": risk}


@needs_example
def test_example_plugin_sink_and_disabling(example: Any) -> None:
    collect_plugins(get_plugin_manager(autoload=True)).decision(
        {"deal_id": "D-1", "status": "approved"}
    )
    assert example.RECORDS == [{"deal_id": "D-1", "status": "approved"}]
    disabled = collect_plugins(get_plugin_manager(autoload=True, disabled=["export_control"]))
    assert "export-control" not in disabled.policies
    disabled.decision({"deal_id": "D-2"})
    assert len(example.RECORDS) == 1


@needs_example
def test_example_plugin_ruleset_uses_the_spec_language(example: Any) -> None:
    import yaml

    family = collect_plugins(get_plugin_manager(autoload=True)).policies["export-control"]
    assert family.rulesets is not None
    ruleset = yaml.safe_load((family.rulesets / "export-control.yaml").read_text())
    assert (ruleset["ruleset"], ruleset["policy"]) == ("export-control", "export-control")
    (rule,) = ruleset["rules"]
    assert rule["id"] == "EC-1" and rule["when"] == "export_risk"
    assert rule["then"]["require"] == ["legal"] and rule["then"]["clause"] == "export/screening"
    assert "flag" in rule["then"]


@needs_example
@pytest.mark.parametrize("fmt", ["md", "html"])
def test_example_plugin_clause_renders_in_the_engine_sandbox(example: Any, fmt: str) -> None:
    from dealdesk import templating

    plugins = collect_plugins(get_plugin_manager(autoload=True))
    renderer = templating.Renderer(plugins.template_dirs, plugins.filters)
    deal = {"id": "D-EC-1", "export": {"destination": "KP"}, "export_risk": True}
    clause = renderer.render_clause("export/screening", templating.template_context(deal), fmt)
    assert clause["title"] == "Export Screening"
    assert "KP" in clause["text"] and "EXPORT_D_EC_1" in clause["text"]


@needs_example
def test_example_plugin_end_to_end_through_the_engine(example: Any) -> None:
    import yaml

    from dealdesk import app as app_module
    from dealdesk import ruletests

    rulesets = files("dealdesk_example_plugin") / "rulesets"
    # -r with the plugin's own directory: the example does not depend on the house policy
    app = app_module.build(rulesets=[str(rulesets)], autoload=True, clauses=True)
    report = ruletests.run_tests(app)
    assert len(report.results) == 3
    assert [result.failures for result in report.results] == [[], [], []]
    deal = yaml.safe_load(
        (files("dealdesk_example_plugin") / "deals" / "embargoed.yaml").read_text()
    )
    example.RECORDS.clear()
    record = app.pipeline.finish(app.pipeline.evaluate(deal))
    assert (record["status"], record["approvals"]) == ("needs_approval", ["legal"])
    assert record["policies"]["export-control"]["fired"] == ["EC-1"]
    (clause,) = record["clauses"]
    assert clause["id"] == "export/screening" and "EXPORT_D_EC_1" in clause["text"]
    assert [r["deal_id"] for r in example.RECORDS] == ["D-EC-1"]  # the sink saw the final record


def test_an_unknown_plugin_name_gets_a_did_you_mean() -> None:
    with pytest.raises(manager.PluginImportError) as caught:
        manager.get_plugin_manager(autoload=False, enabled=["partner_margn"])
    assert str(caught.value) == (
        'Error importing plugin "partner_margn": ModuleNotFoundError: '
        "No module named 'partner_margn' (did you mean 'partner_margin'?)"
    )
    with pytest.raises(manager.PluginImportError) as caught:
        manager.get_plugin_manager(autoload=False, enabled=["zzqqxx"])
    assert "did you mean" not in str(caught.value)


def test_a_manager_built_with_failures_leaves_out_only_the_broken_plugins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "broken_import_mod.py").write_text("raise RuntimeError('at import')\n")
    (tmp_path / "misspelt_hook_mod.py").write_text(
        "from dealdesk import hookimpl\n@hookimpl\ndef dealdesk_enrih(deal):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    names = ["broken_import_mod", "misspelt_hook_mod"]
    for name in names:
        monkeypatch.delitem(sys.modules, name, raising=False)
    failures: list[PluginError] = []
    pm = manager.get_plugin_manager(autoload=False, enabled=names, failures=failures)
    assert [(f.plugin, f.hook) for f in failures] == [
        ("broken_import_mod", "import"),
        ("misspelt_hook_mod", "registration"),
    ]
    assert [name for name, _ in pm.list_name_plugin()] == [
        "billing_milestone",
        "onsite_support",
        "partner_margin",
    ]
    with pytest.raises(PluginError):  # without a list, the first failure stops the load
        manager.get_plugin_manager(autoload=False, enabled=names)
