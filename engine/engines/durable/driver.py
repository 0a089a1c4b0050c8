"""The lean durable_rules driver: one fact in, the names of the rules that fired out.

For the runtime (``dealdesk.evaluate``), the test helpers and the benchmarks. It drives the C
extension ``durable_rules_engine`` directly instead of durable's ``Host``: ``Host`` starts two
timer threads that made batches flaky, and its Python layer (a JSON state round trip and wrapper
objects for every action) is most of the cost (SPEC §9). Each :meth:`DurableDriver.match` asserts
one fact in the ruleset's one live session, drains its actions synchronously and retracts the
fact, so the session holds nothing of it for the next one; a session whose fact failed in any way
is deleted (or, half-built, left alone) and the next fact gets a fresh one.

It keeps every definition inside durable's limits (``dealdesk.engines.durable.limits``): a
definition is split into C rulesets of at most :data:`~dealdesk.engines.durable.limits.MAX_RULES`
rules each (more rules matching one fact overflow durable's stack and corrupt the heap) whose
facts stay below durable's property limit, and a fact too wide for durable is narrowed, for each
part, to what that part reads. Numbers are written so that durable's JSON reader takes them.

What the C extension does, checked against durable_rules 2.0.28 (see
``tests/engines/test_durable_driver.py``):

- ``create_ruleset(name, json)`` returns a handle; a bad definition raises
  ``durable_rules_engine.error("Could not create ruleset, error code: N")``. Names are *not*
  unique there (a second ``create_ruleset`` of a name gives a new handle): the driver keeps them
  unique.
- ``assert_fact(handle, json)`` returns ``(code, state_offset)``: 0 a rule matched the fact,
  1 none did (the session exists all the same), 2 an identical fact was already in the session,
  3 deferred. Other failures raise ``error`` (302: too many properties) or ``MemoryError``
  (more than 1,024 live sessions, after which the ruleset may crash the process).
- ``start_action_for_state`` returns ``None`` or ``(state_json, message_json)``, and
  ``complete_and_start_action`` the next ``message_json`` or ``None``; a message is
  ``{"<rule name as written in the definition JSON>": {"m": <matched fact>}}``.
- ``retract_fact(handle, json)`` removes the fact of that text from its session, with what it
  left in the rule network: a session of single-fact rules then answers the next fact exactly
  as a fresh one would, without the cost of creating one (durable sets up state for every rule
  of the ruleset in each new session).
- Every session holds a *state fact* ``{"sid": S, "id": "sid-S", "$s": 1}`` that rules match like
  any other fact: a negation-only rule (``$nex`` alone) fires on it for every deal. The driver
  drops actions on the state fact. It never calls ``update_state``, which re-asserts that fact
  and makes such a rule fire forever.
- ``delete_state`` on a session in which no action ever started frees two pointers the C core
  never initialised (``createStateNode`` leaves ``context.messages``/``context.stateFact``
  unset): a segfault or ``free(): invalid pointer`` that depends on the heap's history. Hence
  :data:`SESSION_RULE`, added to every ruleset: it matches the state fact, so every session
  starts at least one action, and draining them all leaves both pointers freed and NULL.
- Strings are compared as escaped JSON text, so definitions and facts must be encoded the same
  way: both are ASCII with ``\\u`` escapes here (text with a lone surrogate, which YAML and JSON
  both allow, cannot be handed to the extension as UTF-8).
- A fact that fails in ``assert_fact`` after durable created its session (error 303, max stack
  size) leaves a session that crashes the process when deleted or read: the driver leaves it
  alone and carries on with a fresh C ruleset of the same definition.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import os
import re
from collections.abc import Mapping
from typing import Any

import durable_rules_engine as _engine
import orjson

from dealdesk.engines.durable.limits import (
    MAX_ELEMENT_PROPERTIES,
    MAX_FACT_PROPERTIES,
    MAX_PROPERTIES,
    MAX_RULES,
    ReadTree,
    fits,
    merge,
    project,
    rule_reads,
)
from dealdesk.errors import EngineError

__all__ = ["DurableDriver", "encode_fact", "get_driver", "tune_malloc"]

# Names of durable_rules' error codes (src/rules/rules.h), so a refusal says more than a number.
DURABLE_ERROR_NAMES: dict[int, str] = {
    101: "out of memory",
    102: "unexpected type",
    103: "identifier too long",
    104: "unexpected value",
    105: "unexpected name",
    106: "rule limit exceeded",
    107: "rule exists limit exceeded",
    108: "rule beta limit exceeded",
    109: "rule without qualifier",
    111: "invalid handle",
    112: "handle limit exceeded",
    113: "expression limit exceeded",
    201: "cannot parse value",
    202: "cannot parse: unknown operator or malformed JSON",
    203: "cannot parse number",
    204: "cannot parse object",
    205: "cannot parse array",
    302: "too many properties in one message",
    303: "max stack size",
    304: "too many messages in frame",
    307: "node deleted",
    308: "node dispatching",
    309: "session id not found",
    501: "cannot parse regex",
}

ERR_SID_NOT_FOUND = 309
# assert_fact failures that come before durable creates a session (reading the message), and a
# refusal of the arguments themselves (no code): there is no half-built session to stay clear of.
_REFUSED_BEFORE_SESSION = frozenset({None, 201, 202, 203, 204, 205, 302, 313, 314})

# Added to every ruleset so that every session starts an action (see the module docstring).
SESSION_RULE = "$dealdesk_session"
_SESSION_CONDITION: dict[str, Any] = {"all": [{"m": {"$s": 1}}]}
_SESSION_PREFIX = '{"' + SESSION_RULE + '":'

_CODE_RE = re.compile(r"error code: (\d+)")
# Compact ASCII: durable_rules compares the escaped text, so one encoding for all (see above).
_dumps = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
# A whole string (left as it is) or a number with a bare exponent (given a fraction).
_STRING_OR_BARE_EXPONENT = re.compile(r'"(?:[^"\\]|\\.)*"|(?<=[:,\[])(-?\d+)(e[-+]\d+)')

_assert_fact = _engine.assert_fact
_start_action_for_state = _engine.start_action_for_state
_complete_and_start_action = _engine.complete_and_start_action
_delete_state = _engine.delete_state
_retract_fact = _engine.retract_fact

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
# Keep up to 128 MiB of freed heap instead of giving it back to the OS after every deal.
TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024
# Grow and trim the heap with 16 MiB to spare, so each session's allocations hit resident pages.
TOP_PAD_BYTES = 16 * 1024 * 1024


def _with_fraction(found: re.Match[str]) -> str:
    number = found.group(1)
    return found.group(0) if number is None else f"{number}.0{found.group(2)}"


def _encode(value: Any) -> str:
    """JSON text durable_rules reads as Python meant it (ASCII, ``1.0e-05`` for ``1e-05``).

    :raises TypeError, ValueError: for what is not JSON (NaN and infinities included).
    """
    text = _dumps(value)
    # How Python writes 1e-05 and 1e+16; durable's reader wants a fraction before an exponent.
    if "e-" in text or "e+" in text:
        text = _STRING_OR_BARE_EXPONENT.sub(_with_fraction, text)
    return text


# Where orjson's text may differ from _encode's in numbers: an exponent (Python writes 1e-05 and
# 1e+16, which durable needs as 1.0e-05), a number below 1e-4 (orjson writes 0.00001 for Python's
# 1e-05), and null (orjson's text for NaN and infinities, which _encode refuses). Strings may
# match too; they only send the fact the slow way.
_ORJSON_EXPONENT = re.compile(r"[0-9]e[-+]")
# Types orjson would write that json refuses or writes otherwise go the slow way too.
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def encode_fact(fact: dict[str, Any], plain_numbers: bool = False) -> str:
    """``_encode(fact)`` for a fact of :meth:`FactPlan.build` (dicts, lists, text, numbers,
    booleans), written by orjson where its text is the same, else by ``_encode``.

    ``plain_numbers`` says that the caller knows every number in ``fact`` to be
    :func:`~dealdesk.engines.durable.lowering.plain_number`, where orjson writes what Python
    does; otherwise the text is searched for the numbers where they differ.

    :raises TypeError, ValueError: for what is not JSON, as ``_encode``.
    """
    try:
        raw = orjson.dumps(fact, option=_ORJSON_OPTIONS)
    except TypeError:
        return _encode(fact)
    # json escapes what is not ASCII, and DEL; orjson writes both as they are
    if raw.isascii():
        text = raw.decode("ascii")
        if "\x7f" not in text and (plain_numbers or _plain_numbers(text)):
            return text
    return _encode(fact)


def _plain_numbers(text: str) -> bool:
    """Whether orjson's ``text`` holds no number that json would write otherwise."""
    return (
        "null" not in text
        and "0.0000" not in text
        and not (("e-" in text or "e+" in text) and _ORJSON_EXPONENT.search(text))
    )


def _too_wide(fact: Mapping[str, Any], limit: int = MAX_FACT_PROPERTIES) -> bool:
    """Whether durable_rules would refuse ``fact`` for its number of properties (nested keys
    count, a list once; each element of a list is a message of its own)."""
    count = 0
    pending = [fact]
    while pending:
        current = pending.pop()
        count += len(current)
        for value in current.values():
            if isinstance(value, Mapping):
                pending.append(value)
            elif isinstance(value, list) and any(
                isinstance(element, Mapping) and _too_wide(element, MAX_ELEMENT_PROPERTIES)
                for element in value
            ):
                return True
    return count > limit


def _error_code(error: BaseException) -> int | None:
    """The numeric code in a ``durable_rules_engine.error`` message, if it carries one."""
    found = _CODE_RE.search(str(error))
    return int(found.group(1)) if found else None


def _describe(error: BaseException) -> str:
    """``error code 202 (cannot parse ...)`` for a durable error, its text for anything else."""
    code = _error_code(error)
    if code is None:
        return str(error) or type(error).__name__
    name = DURABLE_ERROR_NAMES.get(code)
    return f"error code {code} ({name})" if name else f"error code {code}"


class _Part:
    """One C ruleset holding a part of a registered definition, small enough for durable."""

    __slots__ = ("handle", "text", "names", "reads", "sid")

    def __init__(self, handle: int, text: str, names: dict[str, str], reads: ReadTree):
        self.handle = handle
        self.text = text  # the definition handed to create_ruleset, to make another one
        # Message key as the C core echoes it (escaped JSON, no quotes) -> rule name.
        self.names = names
        self.reads = reads  # what its rules read of a fact
        self.sid: str | None = None  # its live session, holding no fact between matches


class _Ruleset:
    """A registered ruleset: its definition text and the C rulesets it is split into."""

    __slots__ = ("text", "parts")

    def __init__(self, text: str, parts: list[_Part]):
        self.text = text
        self.parts = parts

    @property
    def handle(self) -> int:
        """The C handle of its first part (the only one, unless it has more than MAX_RULES
        rules or reads more than a fact may hold)."""
        return self.parts[0].handle


class DurableDriver:
    """Registers durable_rules rulesets and matches single facts against them.

    One per process (see :func:`get_driver`); not thread-safe, like the C core it drives.
    """

    def __init__(self) -> None:
        tune_malloc()
        self._rulesets: dict[str, _Ruleset] = {}
        self._sids = itertools.count(1)
        self._ids = itertools.count(1)

    def register(self, name: str, definition: dict[str, Any]) -> None:
        """Create ruleset ``name`` from ``{rule_name: {"all": [{"m": condition}]}}``.

        Each rule's name is what :meth:`match` reports when it fires; there is no ``run`` key.
        Registering a name again with the identical definition (same rules in the same order) is
        a no-op; with a different one it raises :class:`EngineError`, as does a definition that
        durable_rules refuses.
        """
        if SESSION_RULE in definition:
            raise EngineError(
                f"ruleset {name!r}: the rule name {SESSION_RULE!r} is the driver's own"
            )
        if not all(isinstance(rule, str) for rule in definition):
            raise EngineError(f"ruleset {name!r}: rule names must be strings")
        try:
            text = _encode(definition)
        except (TypeError, ValueError) as error:
            raise EngineError(f"ruleset {name!r} is not JSON: {error}") from error
        known = self._rulesets.get(name)
        if known is not None:
            if known.text != text:
                raise EngineError(
                    f"ruleset {name!r} is already registered with a different definition"
                )
            return
        parts = [self._create(name, rules, reads) for rules, reads in _split(definition)]
        self._rulesets[name] = _Ruleset(text, parts)

    @staticmethod
    def _create(name: str, rules: dict[str, Any], reads: ReadTree) -> _Part:
        """A C ruleset of ``rules`` (with the session rule) as a part of ruleset ``name``."""
        text = _encode({**rules, SESSION_RULE: _SESSION_CONDITION})
        try:
            handle = _engine.create_ruleset(name, text)
        except (_engine.error, MemoryError) as error:
            raise EngineError(
                f"durable_rules refused ruleset {name!r}: {_describe(error)}"
            ) from error
        return _Part(handle, text, {_encode(rule)[1:-1]: rule for rule in rules}, reads)

    def is_registered(self, name: str) -> bool:
        """Whether :meth:`register` has created ruleset ``name`` in this driver."""
        return name in self._rulesets

    def match(
        self,
        name: str,
        fact: dict[str, Any],
        *,
        max_actions: int = 10_000,
        text: str | None = None,
    ) -> list[str]:
        """Assert ``fact`` in a session of ruleset ``name``; the rules that fired, in order.

        The driver adds the ``sid`` and ``id`` keys; ``fact`` must not carry them. ``text`` is
        ``fact`` already encoded by :func:`encode_fact`, if the caller has it. A rule appears
        once per firing (callers dedupe). No match gives ``[]``. More than ``max_actions``
        actions, a fact durable_rules refuses (such as one whose properties that the rules read
        are too many) or any other durable error raises :class:`EngineError`; the driver stays
        usable either way.
        """
        ruleset = self._rulesets.get(name)
        if ruleset is None:
            raise EngineError(f"ruleset {name!r} is not registered")
        if "sid" in fact or "id" in fact:
            raise EngineError(
                f"ruleset {name!r}: the fact carries 'sid' or 'id'; the driver sets those keys"
            )
        try:
            body = _encode(fact) if text is None else text
        except (TypeError, ValueError) as error:
            raise EngineError(f"ruleset {name!r}: the fact is not JSON: {error}") from error
        # Splice the fact's own id into the encoded fact rather than copying the dict.
        head = '","id":"' + str(next(self._ids)) + '"'
        tail = "}" if body == "{}" else "," + body[1:]
        # Counting '":' bounds the keys from above, cheaply; only then count them exactly.
        narrow = body.count('":') >= MAX_FACT_PROPERTIES and _too_wide(fact)
        fired: list[str] = []
        actions = 0
        for part in ruleset.parts:
            if narrow:
                projected = _encode(project(fact, part.reads))
                tail = "}" if projected == "{}" else "," + projected[1:]
            actions = self._match_part(name, part, head + tail, fired, actions, max_actions)
        return fired

    def _match_part(
        self,
        name: str,
        part: _Part,
        text: str,
        fired: list[str],
        count: int,
        max_actions: int,
    ) -> int:
        """Add the rules of ``part`` that fire on the encoded fact (``text`` without its opening
        ``{"sid":"S``) to ``fired``; the number of actions for the fact so far (``count`` before).

        The fact goes into the part's live session, or a fresh one when it has none; once its
        actions are drained it is retracted, so the session holds only its state fact again and
        serves the next fact (creating a session costs durable more than matching the fact).
        Whatever fails, the session is deleted (or, half-built, left alone) and never reused.
        """
        handle = part.handle
        sid = part.sid
        fresh = sid is None
        if sid is None:
            sid = str(next(self._sids))
        text = '{"sid":"' + sid + text
        part.sid = None  # until the fact is matched and retracted
        delete = True
        try:
            try:
                code, state = _assert_fact(handle, text)
            except _engine.error as error:
                if _error_code(error) not in _REFUSED_BEFORE_SESSION:
                    # The session is half-built: deleting or even reading it corrupts the heap.
                    delete = False
                    self._replace(name, part)
                raise
            if code > 1:
                raise EngineError(
                    f"ruleset {name!r}: durable_rules answered code {code} for a fresh fact"
                )
            # Drain even when no rule matched (code 1): in a fresh session SESSION_RULE's action
            # makes deletion safe; a live session has started it already.
            started = _start_action_for_state(handle, state)
            if started is None and fresh:
                delete = False  # deleting a session that started no action frees garbage: leak it
                raise EngineError(
                    f"ruleset {name!r}: durable_rules started no action for a session"
                )
            message: str | None = None if started is None else started[1]
            names = part.names
            while message:
                if not message.startswith(_SESSION_PREFIX):
                    count += 1
                    if count > max_actions:
                        raise EngineError(
                            f"ruleset {name!r}: more than {max_actions} actions for one fact;"
                            " a rule may be looping"
                        )
                    # only a fresh session's first fact comes with its state fact to drop
                    rule = None if fresh else names.get(message[2 : message.find('":', 2)])
                    if rule is None:
                        rule = self._rule_name(part, message, sid)
                    if rule is not None:
                        fired.append(rule)
                message = _complete_and_start_action(handle, state)
            _retract_fact(handle, text)
            part.sid = sid
            return count
        except _engine.error as error:
            raise EngineError(self._fact_failure(name, error)) from error
        except MemoryError as error:
            raise EngineError(
                f"ruleset {name!r}: durable_rules ran out of memory or of live sessions (1,024)"
            ) from error
        finally:
            if delete and part.sid is None:
                _delete_session(name, handle, sid)

    @staticmethod
    def _replace(name: str, part: _Part) -> None:
        """Give ``part`` a fresh C ruleset of the same definition, leaving the old one as it is."""
        try:
            part.handle = _engine.create_ruleset(name, part.text)
        except (_engine.error, MemoryError) as error:
            raise EngineError(
                f"durable_rules could not recreate ruleset {name!r}: {_describe(error)}"
            ) from error

    @staticmethod
    def _rule_name(part: _Part, message: str, sid: str) -> str | None:
        """The rule that fired in ``message``, or None when it fired on the session's state fact."""
        rule = part.names.get(message[2 : message.find('":', 2)])
        if '"$s":1' in message:
            # Maybe the state fact, maybe a value that merely contains the text: decide exactly.
            ((key, matched),) = json.loads(message).items()
            if any(isinstance(f, dict) and f.get("id") == "sid-" + sid for f in matched.values()):
                return None
            return part.names.get(_encode(key)[1:-1], key)
        if rule is None:
            # A rule name with escapes that defeated the quick slice: parse it properly.
            key = next(iter(json.loads(message)))
            rule = part.names.get(_encode(key)[1:-1], key)
        return rule

    @staticmethod
    def _fact_failure(name: str, error: BaseException) -> str:
        """A one-line explanation of why durable_rules failed on a fact of ruleset ``name``."""
        if _error_code(error) == 302:
            return (
                f"ruleset {name!r}: the fact has too many properties for durable_rules (fewer than"
                f" {MAX_PROPERTIES} allowed, counting nested keys and the driver's sid and id)"
            )
        return f"ruleset {name!r}: durable_rules failed on a fact: {_describe(error)}"


def _split(definition: Mapping[str, Any]) -> list[tuple[dict[str, Any], ReadTree]]:
    """``definition`` in order, cut into parts of at most MAX_RULES rules whose facts, narrowed
    to what the part reads, fit in a durable message; and what each part reads. A rule that
    alone reads too much is a part of its own (durable refuses its facts: error 302)."""
    parts: list[tuple[dict[str, Any], ReadTree]] = []
    rules: dict[str, Any] = {}
    reads: ReadTree = {}
    for rule, body in definition.items():
        mine = rule_reads(body) if isinstance(body, Mapping) else {}
        joined = merge(reads, mine)
        if rules and (len(rules) == MAX_RULES or not fits(joined)):
            parts.append((rules, reads))
            rules, joined = {}, mine
        rules[rule] = body
        reads = joined
    parts.append((rules, reads))
    return parts


def _delete_session(name: str, handle: int, sid: str) -> None:
    """Delete session ``sid``; a session that was never created (refused fact) is fine."""
    try:
        _delete_state(handle, sid)
    except _engine.error as error:
        if _error_code(error) != ERR_SID_NOT_FOUND:
            raise EngineError(
                f"ruleset {name!r}: could not delete session {sid}: {_describe(error)}"
            ) from error


_driver: tuple[int, DurableDriver] | None = None


def get_driver() -> DurableDriver:
    """The process's driver, created on first use; a forked child gets its own."""
    global _driver
    pid = os.getpid()
    if _driver is None or _driver[0] != pid:
        _driver = (pid, DurableDriver())
    return _driver[1]


_malloc_tuned = False


def tune_malloc() -> None:
    """Keep glibc from shrinking and regrowing the heap on every deal (it slows the C core, §9).

    Sets ``M_TRIM_THRESHOLD`` and ``M_TOP_PAD`` with ``mallopt`` once per process, unless the
    user set ``MALLOC_TRIM_THRESHOLD_``/``MALLOC_TOP_PAD_`` themselves; a no-op off glibc.
    """
    global _malloc_tuned
    if _malloc_tuned:
        return
    _malloc_tuned = True
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, ValueError):
        return  # not glibc (musl, macOS, Windows): nothing to tune
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    if "MALLOC_TOP_PAD_" not in os.environ:
        mallopt(M_TOP_PAD, TOP_PAD_BYTES)
