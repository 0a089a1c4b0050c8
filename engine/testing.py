"""pytest fixtures for dealdesk's own tests and for plugin authors.

Enable them with ``pytest_plugins = ["dealdesk.testing"]`` in a ``conftest.py`` (or
``pytest -p dealdesk.testing``):

- ``plugin_manager``: a fresh plugin manager with the built-in plugins and autoload off.
- ``register_plugin``: ``register_plugin(obj, name=None)`` registers a plugin object or module
  on that manager for one test and unregisters it afterwards.
- ``hook_recorder``: records every hook call made through that manager.
- ``cli_runner``: ``cli_runner.run(*args, input=None)`` runs the ``dealdesk`` command in-process
  and returns ``Result(exit_code, stdout, stderr)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy
import pytest

from dealdesk.manager import add_plugin, get_plugin_manager

if TYPE_CHECKING:
    import click

__all__ = ["CliRunner", "HookCall", "HookRecorder", "Result"]


@dataclass(frozen=True)
class HookCall:
    """One hook call seen by :class:`HookRecorder`.

    ``plugins`` are the names of the implementations called (dealdesk calls one plugin at a
    time, so usually one); ``result`` is what the call returned and ``exception`` what it
    raised, if anything.
    """

    name: str
    kwargs: Mapping[str, Any]
    plugins: tuple[str, ...]
    result: Any = None
    exception: BaseException | None = None


@dataclass
class HookRecorder:
    """Collects :class:`HookCall` objects through ``pm.add_hookcall_monitoring``."""

    calls: list[HookCall] = field(default_factory=list)

    def before(
        self, hook_name: str, hook_impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]
    ) -> None:
        """Nothing to do before a call: the outcome is recorded afterwards."""

    def after(
        self,
        outcome: pluggy.Result[Any],
        hook_name: str,
        hook_impls: Sequence[pluggy.HookImpl],
        kwargs: Mapping[str, Any],
    ) -> None:
        """Record the finished call with its result or exception."""
        plugins = tuple(impl.plugin_name for impl in hook_impls)
        if outcome.exception is not None:
            call = HookCall(hook_name, dict(kwargs), plugins, exception=outcome.exception)
        else:
            call = HookCall(hook_name, dict(kwargs), plugins, result=outcome.get_result())
        self.calls.append(call)

    def getcalls(self, name: str) -> list[HookCall]:
        """The recorded calls of hook ``name``, in call order."""
        return [call for call in self.calls if call.name == name]

    @property
    def names(self) -> list[str]:
        """The names of the hooks called, in call order."""
        return [call.name for call in self.calls]


@dataclass(frozen=True)
class Result:
    """What one CLI run produced."""

    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None = None


class CliRunner:
    """Runs a click command in-process with separate stdout and stderr.

    :param command: The click command; ``None`` means ``dealdesk.cli:main``, imported on first use
        so that a test that does not run the CLI never imports it.
    :param env: Environment variables set for every run (``None`` values unset a variable).
    """

    def __init__(
        self, command: click.Command | None = None, env: Mapping[str, str | None] | None = None
    ):
        self._command = command
        self.env = dict(env or {})

    @property
    def command(self) -> click.Command:
        """The command under test."""
        if self._command is None:
            from dealdesk.cli import main  # the CLI is heavy and optional for plugin unit tests

            self._command = main
        return self._command

    def run(
        self,
        *args: str,
        input: str | bytes | None = None,
        env: Mapping[str, str | None] | None = None,
    ) -> Result:
        """Run ``dealdesk ARGS...`` and return its exit code, stdout and stderr.

        An exception the command did not turn into an exit status is in ``result.exception``
        (exit code 1), as with :meth:`click.testing.CliRunner.invoke`.
        """
        from click.testing import CliRunner as ClickRunner

        runner = ClickRunner()
        outcome = runner.invoke(
            self.command,
            list(args),
            input=input,
            env={**self.env, **(env or {})},
            prog_name="dealdesk",
        )
        exception = outcome.exception if not isinstance(outcome.exception, SystemExit) else None
        return Result(outcome.exit_code, outcome.stdout, outcome.stderr, exception)


@pytest.fixture
def plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager: built-in plugins registered, entry points not loaded."""
    return get_plugin_manager(autoload=False)


@pytest.fixture
def register_plugin(plugin_manager: pluggy.PluginManager) -> Iterator[Callable[..., str]]:
    """``register_plugin(obj, name=None) -> name``: register on ``plugin_manager`` for one test.

    Validated like any plugin (an unknown hook raises ``PluginError``); unregistered at teardown.
    """
    registered: list[object] = []

    def register(plugin: object, name: str | None = None) -> str:
        registered_name = add_plugin(plugin_manager, plugin, name)
        registered.append(plugin)
        return registered_name

    yield register
    for plugin in reversed(registered):
        if plugin_manager.is_registered(plugin):
            plugin_manager.unregister(plugin)


@pytest.fixture
def hook_recorder(plugin_manager: pluggy.PluginManager) -> Iterator[HookRecorder]:
    """Records every hook call made through ``plugin_manager`` (and the ``Plugins`` built from it)."""
    recorder = HookRecorder()
    undo = plugin_manager.add_hookcall_monitoring(recorder.before, recorder.after)
    yield recorder
    undo()


@pytest.fixture
def cli_runner() -> CliRunner:
    """Runs the ``dealdesk`` command in-process: ``cli_runner.run("plugins")``.

    Plugin autoload follows the environment; pass ``env={"DEALDESK_DISABLE_PLUGIN_AUTOLOAD":
    "1"}`` to ``run`` to keep installed plugins out.
    """
    return CliRunner()
