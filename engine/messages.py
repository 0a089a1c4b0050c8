"""What a message sees (:func:`template_context`), and the messages that only print values,
rendered without Jinja exactly as Jinja would.

Most messages with Jinja in them are text with a few ``{{ path }}``, ``{{ path | money }}``,
``{{ path | percent }}`` or ``{{ path | default('text') }}``; through Jinja each costs a context
and a render in the sandbox, once per firing. :func:`compile_message` recognises that shape and
returns a :class:`QuickMessage` that gives the same text from the same context, or ``None``
whenever it cannot be sure to — a name that is missing, a value that is not a plain ``dict`` on
the way down a path, a filter that refuses its value, a filter a plugin replaced — so that the
caller renders with Jinja, which then says what went wrong in its own words.

Why the texts are Jinja's: literal text is passed through as Jinja's lexer passes it (no tag
openers in it, no carriage return, no trailing newline, which Jinja would drop); a name is looked
up as the sandbox does for a ``dict`` whose keys are not ``dict`` attributes (``getattr`` fails,
then the item); a value prints as ``str(value)`` (no autoescape); ``default`` returns a defined
value unchanged; ``money`` and ``percent`` are called as Jinja calls them.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["QuickMessage", "compile_message", "template_context"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_TAG = re.compile(
    rf"\{{\{{[ \t]*(?P<path>{_NAME}(?:\.{_NAME})*)[ \t]*"
    r"(?:\|[ \t]*(?P<filter>money|percent|default\('(?P<default>[A-Za-z0-9 _.,;:!?()-]*)'\))[ \t]*)?"
    r"\}\}"
)
# Jinja's literals, tests and operators are no names; nor may a key be a dict attribute, which
# Jinja's getattr would find before the item
_RESERVED = frozenset(
    {"true", "false", "none", "True", "False", "None", *keyword.kwlist, *dir(dict)}
    # and the names Jinja gives a meaning of its own in a template
    | {"self", "loop", "caller", "varargs", "kwargs", "super"}
)
_MISSING = object()
#: The longest text rendered without Jinja: far below the sandbox's ``MAX_OUTPUT`` (a test
#: checks), so a longer one goes to Jinja, which applies the bound.
MAX_TEXT = 100_000

#: ``filter(context, value)``: a filter as the template calls it.
Filter = Callable[[Mapping[str, Any], Any], str]


@dataclass(frozen=True)
class QuickMessage:
    """A message as literal text and the values it prints: ``(text, path, filter)`` pieces."""

    pieces: tuple[tuple[str, tuple[str, ...], Filter | None], ...]
    tail: str

    def render(self, context: Mapping[str, Any]) -> str | None:
        """The message's text on ``context``; ``None`` when only Jinja can say."""
        if not all(type(key) is str for key in context):
            return None  # Jinja hands the names over as keywords: it refuses other keys
        out = []
        for text, path, apply in self.pieces:
            value: Any = context
            for key in path:
                if type(value) is not dict:
                    return None
                value = value.get(key, _MISSING)
                if value is _MISSING:
                    return None
            if apply is not None:
                try:
                    value = apply(context, value)
                except Exception:
                    return None
            out.append(text)
            out.append(str(value))
        out.append(self.tail)
        result = "".join(out)
        return result if len(result) <= MAX_TEXT else None


def _literal(text: str) -> bool:
    return not any(opener in text for opener in ("{{", "{%", "{#", "\r"))


def compile_message(source: str, filters: Mapping[str, Filter]) -> QuickMessage | None:
    """``source`` as a :class:`QuickMessage`, or ``None`` when it needs Jinja.

    :param filters: the filters that may be used without Jinja, by name (``money``,
        ``percent``, ``default``), each called as ``filter(context, value)`` — only those that
        are still the renderer's own (a plugin may replace one); ``default`` is one too.
    """
    if source.endswith("\n"):
        return None
    pieces = []
    start = 0
    for tag in _TAG.finditer(source):
        text = source[start : tag.start()]
        path = tuple(tag["path"].split("."))
        # "{" before "{{" would open Jinja's tag one character earlier
        if not _literal(text) or text.endswith("{") or any(p in _RESERVED for p in path):
            return None
        name = tag["filter"]
        apply = None
        if name is not None:
            name = "default" if tag["default"] is not None else name
            if name not in filters:
                return None
            apply = filters[name]
        pieces.append((text, path, apply))
        start = tag.end()
    tail = source[start:]
    if not pieces or not _literal(tail):
        return None
    return QuickMessage(tuple(pieces), tail)


def template_context(
    deal: Mapping[str, Any],
    *,
    outputs: Mapping[str, Any] | None = None,
    rule: str | None = None,
    decision: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The names a template or message sees (SPEC §8).

    The deal's fields (inputs and derived facts) become top-level names; ``outputs`` is always
    present (``{}`` when not given). ``rule`` and ``decision`` are present only when given, so a
    template that needs them fails loudly instead of printing ``None``.

    :param deal: the evaluated deal, money as ``Decimal``.
    :param outputs: the JSON-ready outputs of the policy that asked for the template.
    :param rule: the id of the rule that asked.
    :param decision: the record so far: ``status``, ``approvals``, ``reasons``.
    :returns: a new dict; the deal is not modified.
    """
    context = dict(deal)
    context["outputs"] = dict(outputs or {})
    if rule is not None:
        context["rule"] = rule
    if decision is not None:
        context["decision"] = decision
    return context
