"""One exception hierarchy for dealdesk.

Every error a user can meet derives from :class:`DealdeskError`; the CLI prints ``str(error)``
as one line (or one line per problem) and exits with ``error.exit_code``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


def closest(word: str, words: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The known name most like ``word``, for a "did you mean" (None when none is close)."""
    import difflib  # only when there is a problem to explain; the CLI starts without it

    found = difflib.get_close_matches(word, list(words), n=1, cutoff=cutoff)
    return found[0] if found else None


class DealdeskError(Exception):
    """Base class of every error dealdesk raises on purpose."""

    exit_code = 1


class UsageError(DealdeskError):
    """Bad flags, unreadable files, unknown formats: the user asked for something impossible."""

    exit_code = 2


@dataclass(frozen=True, order=True)
class Location:
    """A position in a source file; line and column are 1-based (0 when unknown)."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class RulesetError(DealdeskError):
    """One problem in a ruleset, located at ``file:line:col`` with an optional suggestion."""

    def __init__(
        self, message: str, location: Location | None = None, suggestion: str | None = None
    ):
        self.message = message
        self.location = location or Location("<unknown>")
        self.suggestion = suggestion
        super().__init__(str(self))

    def __str__(self) -> str:
        hint = f" (did you mean {self.suggestion!r}?)" if self.suggestion else ""
        return f"{self.location}: {self.message}{hint}"

    def at(self, location: Location) -> RulesetError:
        """The same problem, moved to ``location`` (used when a fragment is embedded in a file)."""
        return RulesetError(self.message, location, self.suggestion)


class RulesetWarning(RulesetError):
    """A ruleset problem that does not stop loading (``dealdesk validate`` shows it)."""

    def __str__(self) -> str:
        hint = f" (did you mean {self.suggestion!r}?)" if self.suggestion else ""
        return f"{self.location}: warning: {self.message}{hint}"


class ValidationFailed(DealdeskError):
    """A ruleset set has problems; nothing from it is loaded. Holds every problem, sorted,
    and the warnings found with them (``dealdesk validate`` shows both)."""

    def __init__(self, errors: Iterable[RulesetError], warnings: Iterable[RulesetError] = ()):
        self.errors = sorted(errors, key=lambda e: (e.location, e.message))
        self.warnings = sorted(warnings, key=lambda e: (e.location, e.message))
        super().__init__("\n".join(str(e) for e in self.errors))


class DealError(DealdeskError):
    """A deal that cannot be evaluated; ``path`` names the field (``lines[2].unit_cost``)."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class PluginError(DealdeskError):
    """A plugin failed inside a hook; the message always names the plugin and the hook."""

    def __init__(self, plugin: str, hook: str, cause: BaseException | str):
        self.plugin = plugin
        self.hook = hook
        self.cause = cause
        detail = cause if isinstance(cause, str) else describe(cause)
        super().__init__(f"plugin {plugin!r} failed in {hook}: {detail}")


class NonFiniteNumber(DealdeskError):
    """A record holds a float NaN or infinity, which strict JSON cannot carry (SPEC §9).

    :ivar path: where in the record (``policies.partner-margin.outputs.margin``).
    :ivar value: the number.
    :param context: what was being done, put before the message (``cannot write ...``).
    """

    def __init__(self, path: str, value: float, context: str = ""):
        self.path = path
        self.value = value
        text = "NaN" if value != value else ("-Infinity" if value < 0 else "Infinity")
        message = f"{path or 'the value'} is {text}; records are strict JSON (no NaN or Infinity)"
        super().__init__(f"{context}: {message}" if context else message)


class DuplicateKey(DealdeskError):
    """A JSON object names one key twice: the deal is ambiguous, so it is not read (SPEC §9).

    :ivar key: the repeated key.
    :ivar path: where the object is in the parsed value: keys and list indexes, ``()`` at the
        top; the message names it ``lines[1]``.
    """

    def __init__(self, key: str, path: tuple[str | int, ...] = ()):
        import json  # only when there is a problem to explain

        self.key = key
        self.path = path
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        super().__init__(
            f"duplicate key {json.dumps(key, ensure_ascii=False)}"
            + (f" in {where}" if where else "")
        )


class TemplateError(DealdeskError):
    """A template or message failed to render; names the template and the line."""


class EngineError(DealdeskError):
    """durable_rules refused or failed on something dealdesk handed it."""


def record_error(exc: BaseException) -> dict[str, Any]:
    """The ``errors`` entry of a record for what went wrong with one deal (SPEC §4)."""
    if isinstance(exc, PluginError):
        return {"path": "", "message": str(exc), "plugin": exc.plugin}
    if isinstance(exc, DealError):
        return {"path": exc.path, "message": exc.message}
    if isinstance(exc, DealdeskError):
        return {"path": "", "message": str(exc)}
    if isinstance(exc, MemoryError):
        return {"path": "", "message": describe(exc)}
    # a bug costs the deal it hit, never the rest of the batch
    return {"path": "", "message": f"internal error: {describe(exc)}"}


def describe(exc: BaseException) -> str:
    """An exception in one line: ``KeyError: 'x'``; running out of memory and ``sys.exit``
    said in words."""
    if isinstance(exc, MemoryError):
        # a worker's memory budget (--worker-memory), or the machine's
        return "out of memory: deciding this deal needed more memory than the process may use"
    if isinstance(exc, SystemExit):
        return f"sys.exit({exc.code!r}) was called"
    return f"{type(exc).__name__}: {exc}"


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to one readable line: a hostile 4,000-character cell stays short."""
    import reprlib  # only when there is a problem to explain

    short = reprlib.Repr()
    short.maxstring = 60
    return short.repr(value)
