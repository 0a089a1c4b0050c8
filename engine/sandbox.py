"""The Jinja sandbox that messages, clauses and the decision memo render in (SPEC §8, §9).

Jinja's :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` keeps templates away from Python
internals and from mutating the deal. :class:`Sandbox` also bounds what one render may cost, so a
ruleset's message or a clause template cannot hang or exhaust the process that renders it:

- **work**: :data:`MAX_STEPS` loop iterations and calls per render, ``range()`` of at most
  :data:`MAX_RANGE` items, and :data:`MAX_SECONDS` of wall-clock time for work no counter sees
  (comparing huge strings in a loop);
- **output**: :data:`MAX_OUTPUT` characters per render, counting every ``{{ ... }}`` and every
  piece of template text, whether it goes to the result or into a macro, ``{% set %}`` block or
  ``{% filter %}`` buffer;
- **single operations** that could allocate a gigabyte in one step are checked before they run:
  padding (``center``, ``ljust``, ``zfill``, format widths), ``replace``, ``join``, ``indent``,
  ``wordwrap``, ``urlize``, ``%`` and ``str.format``, ``*`` and ``+`` on strings and lists, big
  integers from ``*`` and ``**``.

Past a bound, rendering stops with a :class:`~jinja2.exceptions.SecurityError`, which the
renderer reports as a TemplateError naming the template or rule; the deal gets an ``invalid``
record and the batch goes on. The bounds are far above what a real clause needs (a clause is a
few kilobytes, loops over a deal's lines).

Every render must run inside :func:`render_bounded`, which holds the per-render budget.
"""

from __future__ import annotations

import re
import time
import types
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from functools import update_wrapper
from string import Formatter
from typing import Any

from jinja2 import filters as jinja_filters
from jinja2 import nodes, pass_context, pass_environment, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from jinja2.utils import generate_lorem_ipsum
from markupsafe import Markup

__all__ = [
    "MAX_OUTPUT",
    "MAX_RANGE",
    "MAX_SECONDS",
    "MAX_STEPS",
    "Sandbox",
    "render_bounded",
]

#: Characters one render may produce, buffered output (macros, ``{% set %}`` blocks) included.
MAX_OUTPUT = 1_000_000
#: Loop iterations and calls (macros, methods, functions) in one render.
MAX_STEPS = 100_000
#: Items in one ``range()`` (Jinja's own sandbox allows 100,000).
MAX_RANGE = 10_000
#: Wall-clock seconds for one render: the last resort, for work between the counted steps.
MAX_SECONDS = 5.0
#: Items a ``*`` repetition may make, and a list or tuple ``+`` may join.
MAX_ITEMS = 100_000
#: Largest exponent of ``**``.
MAX_EXPONENT = 100
#: Bits of an integer that ``*`` or ``**`` may compute (about 30,000 digits).
MAX_INT_BITS = 100_000


# --- the per-render budget -----------------------------------------------------------------


class _Budget:
    """What is left of one render's steps, output and time."""

    __slots__ = ("deadline", "output", "steps")

    def __init__(self) -> None:
        self.steps = MAX_STEPS
        self.output = MAX_OUTPUT
        self.deadline = time.monotonic() + MAX_SECONDS

    def step(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise SecurityError(
                f"rendering stopped after {MAX_STEPS:,} loop iterations and calls "
                "(the limit per render)"
            )
        if not self.steps % 64 and time.monotonic() > self.deadline:  # the clock, now and then
            raise SecurityError(f"rendering stopped after {MAX_SECONDS:g} s (the limit per render)")


_BUDGET: ContextVar[_Budget | None] = ContextVar("dealdesk_render_budget", default=None)


def render_bounded(render: Callable[[Context], Iterator[str]], context: Context) -> str:
    """Drain a template's render function (``root_render_func`` or a block) within one budget.

    :raises SecurityError: past a bound; any other failure of the template propagates as is.
    """
    token = _BUDGET.set(_Budget())
    try:
        return "".join(render(context))
    finally:
        _BUDGET.reset(token)


def _step() -> None:
    budget = _BUDGET.get()
    if budget is not None:  # None while Jinja folds constants at compile time
        budget.step()


# --- size checks before an operation runs ----------------------------------------------------


def _check_length(what: str, length: int) -> None:
    if length > MAX_OUTPUT:
        raise SecurityError(
            f"{what} would make {length:,} characters, more than the sandbox allows ({MAX_OUTPUT:,})"
        )


def _text_length(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes) else len(str(value))


def _number(value: Any) -> int:
    """A width or count argument as an int (0 when it is not one; the operation then fails)."""
    return abs(value) if isinstance(value, int) else 0


def _replace_length(text: str | bytes, old: Any, new: Any, count: Any = -1) -> int:
    if not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return len(text)
    growth = len(new) - len(old)
    if growth <= 0:
        return len(text)
    hits = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * growth


_PRINTF = re.compile(r"%(?:\(([^)]*)\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.DOTALL)


def _printf_length(template: str | bytes, values: Any) -> int:
    """An upper bound on the length of ``template % values``, without computing it."""
    text = template.decode("latin-1") if isinstance(template, bytes) else template
    positional = list(values) if isinstance(values, tuple) else [values]
    mapping = values if isinstance(values, Mapping) else None
    length, used = len(text), 0
    for match in _PRINTF.finditer(text):
        name, width, precision, conversion = match.groups()
        if conversion == "%":
            continue
        for part in (width, precision):
            if part == "*":  # the width comes from the values
                length += _number(positional[used]) if used < len(positional) else 0
                used += 1
            elif part:
                length += int(part)
        if name is not None and mapping is not None:
            value = mapping.get(name, "")
        elif used < len(positional):
            value, used = positional[used], used + 1
        else:
            value = ""
        length += 400 + (len(repr(value)) if conversion in "ra" else _text_length(value))
    return length


def _method_length(owner: str | bytes, name: str, args: tuple[Any, ...], kw: dict[str, Any]) -> int:
    """The length a ``str``/``bytes`` method call would give, for the methods that can grow."""
    if name in ("center", "ljust", "rjust", "zfill"):
        width = args[0] if args else kw.get("width", 0)
        return max(len(owner), _number(width))
    if name == "expandtabs":
        size = args[0] if args else kw.get("tabsize", 8)
        return len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * _number(size)  # type: ignore[arg-type]
    if name == "replace":
        return _replace_length(owner, *args[:3], **kw)
    if name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((_text_length(v) for v in args[0].values() if v is not None), default=1)
        return len(owner) * max(longest, 1)
    return 0


# --- filters that could make a gigabyte from a few characters ---------------------------------


def _center(value: Any, width: int = 80) -> str:
    _check_length("center", max(_text_length(value), _number(width)))
    return jinja_filters.do_center(value, width)


def _indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    text = str(s)
    pad = len(width) if isinstance(width, str) else _number(width)
    _check_length("indent", len(text) + (text.count("\n") + 1) * pad)
    return jinja_filters.do_indent(s, width, first, blank)


@pass_eval_context
def _join(eval_ctx: EvalContext, value: Any, d: str = "", attribute: Any = None) -> str:
    items = list(value)  # once: it may be a generator
    parts = items
    if attribute is not None:
        parts = list(map(jinja_filters.make_attrgetter(eval_ctx.environment, attribute), items))
    separators = _text_length(d) * max(len(parts) - 1, 0)
    _check_length("join", separators + sum(_text_length(p) for p in parts))
    return jinja_filters.sync_do_join(eval_ctx, items, d, attribute)


@pass_eval_context
def _replace(eval_ctx: EvalContext, s: Any, old: Any, new: Any, count: int | None = None) -> str:
    text = s if isinstance(s, str) else str(s)
    _check_length(
        "replace", _replace_length(text, str(old), str(new), -1 if count is None else count)
    )
    return jinja_filters.do_replace(eval_ctx, s, old, new, count)


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    _check_length("format", _printf_length(str(value), kwargs or args))
    return jinja_filters.do_format(value, *args, **kwargs)


@pass_environment
def _wordwrap(environment: Any, s: str, width: int = 79, break_long_words: bool = True, wrapstring: str | None = None, break_on_hyphens: bool = True) -> str:  # fmt: skip
    text = str(s)
    joint = len(wrapstring if wrapstring is not None else environment.newline_sequence)
    # every two lines hold more than `width` characters, or they would have been one
    lines = 2 * len(text) // max(_number(width), 1) + text.count("\n") + 1
    _check_length("wordwrap", len(text) + lines * joint)
    return jinja_filters.do_wordwrap(environment, s, width, break_long_words, wrapstring, break_on_hyphens)  # fmt: skip


@pass_eval_context
def _urlize(eval_ctx: EvalContext, value: str, trim_url_limit: int | None = None, nofollow: bool = False, target: str | None = None, rel: str | None = None, extra_schemes: Any = None) -> str:  # fmt: skip
    text = str(value)
    links = len(text) // 4 + 1  # a link is at least "a.io"
    extra = 60 + _text_length(target or "") + _text_length(rel or "")
    _check_length("urlize", 10 * len(text) + links * extra)
    return jinja_filters.do_urlize(eval_ctx, value, trim_url_limit, nofollow, target, rel, extra_schemes)  # fmt: skip


@pass_eval_context
def _tojson(eval_ctx: EvalContext, value: Any, indent: int | str | None = None) -> Markup:
    width = len(indent) if isinstance(indent, str) else _number(indent)
    if width > 16:
        raise SecurityError("tojson: an indent of more than 16 is more than the sandbox allows")
    return jinja_filters.do_tojson(eval_ctx, value, indent)  # type: ignore[arg-type]


def _check_parts(what: str, parts: Any) -> None:
    if _number(parts) > MAX_RANGE:
        raise SecurityError(
            f"{what} into {parts:,} parts is more than the sandbox allows ({MAX_RANGE:,})"
        )


def _batch(value: Any, linecount: int, fill_with: Any = None) -> Iterator[list[Any]]:
    if fill_with is not None:  # the last batch is padded to `linecount` items
        _check_parts("batch", linecount)
    return jinja_filters.do_batch(value, linecount, fill_with)


def _slice(value: Any, slices: int, fill_with: Any = None) -> Iterator[list[Any]]:
    _check_parts("slice", slices)
    return jinja_filters.sync_do_slice(value, slices, fill_with)


GUARDED_FILTERS: dict[str, Callable[..., Any]] = {
    "center": _center,
    "indent": _indent,
    "join": _join,
    "replace": _replace,
    "format": _format,
    "wordwrap": _wordwrap,
    "urlize": _urlize,
    "tojson": _tojson,
    "batch": _batch,
    "slice": _slice,
}


_STEPS_FILTER = "dealdesk_steps"


@pass_context  # never folded into a constant while compiling
def _steps(context: Context, items: Any) -> Iterator[Any]:
    """The loop filter :meth:`Sandbox._generate` adds: ``items``, a step per element."""
    for item in items:
        _step()
        yield item


def _range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise SecurityError(
            f"range() of {len(numbers):,} items is more than the sandbox allows ({MAX_RANGE:,})"
        )
    return numbers


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    _check_length("lipsum", _number(n) * _number(max) * 12)  # words of up to 11 letters
    return generate_lorem_ipsum(n, html, min, max)


# --- str.format with bounded fields ------------------------------------------------------------


class _BoundedFields(Formatter):
    """Checks each field's width before formatting it, and the running length after."""

    _length = 0

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self._length = len(format_string)
        return super().vformat(format_string, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> Any:
        widest = max((int(n) for n in re.findall(r"\d+", format_spec)), default=0)
        _check_length("a format width", widest)
        text = super().format_field(value, format_spec)
        self._length += len(text)
        _check_length("format", self._length)
        return text


class _Formatter(_BoundedFields, SandboxedFormatter):
    pass


class _EscapeFormatter(_BoundedFields, SandboxedEscapeFormatter):
    pass


# --- code generation: count output ---------------------------------------


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles templates so that every output is counted: each ``{{ ... }}`` and each piece of
    template text passes through ``environment.emitted``, and ``a ~ b`` through
    ``environment.bounded_text``. (Loops are bounded before this, in :meth:`Sandbox._generate`.)
    """

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_text(")
        super().visit_Concat(node, frame)
        self.write(")")

    def _output_const_repr(self, group: Any) -> str:
        return f"environment.emitted({super()._output_const_repr(group)})"

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        self.write("environment.emitted(")
        super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        super()._output_child_post(node, frame, finalize)
        self.write(")")


# --- the environment ----------------------------------------------------------------------------


class Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox: no Python internals, no mutation of the deal, bounded work and output.

    Immutable because the deal and outputs are shared by every policy of one evaluation.
    """

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _range
        self.globals["lipsum"] = _lipsum
        self.filters.update(GUARDED_FILTERS)
        self.filters[_STEPS_FILTER] = _steps

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        """Every ``{% for x in xs %}`` iterates ``xs|dealdesk_steps``: one step per element.

        Done on the tree, before code generation, so that Jinja binds the filter like any other.
        """
        for loop in list(source.find_all(nodes.For)):
            loop.iter = nodes.Filter(
                loop.iter, _STEPS_FILTER, [], [], None, None, lineno=loop.iter.lineno
            )
            loop.iter.set_environment(self)
        return super()._generate(source, name, filename, defer_init)

    # -- called by compiled templates

    @staticmethod
    def emitted(text: Any) -> Any:
        """``text``, charged to the render's output."""
        budget = _BUDGET.get()
        if budget is not None:
            budget.output -= len(text)
            if budget.output < 0:
                raise SecurityError(
                    f"rendering stopped past {MAX_OUTPUT:,} characters of output "
                    "(the limit per render)"
                )
        return text

    @staticmethod
    def bounded_text(text: Any) -> Any:
        """The result of ``~``: it may double a string at each step of a loop."""
        _check_length("~", len(text))
        return text

    # -- the sandbox's own hooks

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """One step per call, and no str/bytes/int method that would make a gigabyte."""
        _step()
        method = getattr(obj, "__wrapped__", obj)
        owner = getattr(method, "__self__", None)
        name = getattr(method, "__name__", "")
        if isinstance(owner, str | bytes):
            if name == "join" and args:
                args = (list(args[0]), *args[1:])  # once: it may be a generator
                joint = len(owner) * max(len(args[0]) - 1, 0)
                _check_length("join", joint + sum(_text_length(p) for p in args[0]))
            else:
                _check_length(name, _method_length(owner, name, args, kwargs))
        elif isinstance(owner, int) and name == "to_bytes":
            _check_length(name, _number(args[0] if args else kwargs.get("length", 1)))
        return super().call(context, obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Refuse huge powers, products, repetitions, concatenations and %-formats before
        Python computes them."""
        if operator == "**" and isinstance(right, int | float):
            if abs(right) > MAX_EXPONENT:
                raise SecurityError(
                    f"exponent {right} is larger than the sandbox allows ({MAX_EXPONENT})"
                )
            if isinstance(left, int) and left.bit_length() * abs(right) > MAX_INT_BITS:
                raise SecurityError("the power is a larger number than the sandbox allows")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | bytes | list | tuple) and isinstance(times, int):
                    if len(seq) * times > MAX_ITEMS:
                        raise SecurityError(f"repeating a sequence to more than {MAX_ITEMS} items")
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                    raise SecurityError("the product is a larger number than the sandbox allows")
        if operator == "+":
            if isinstance(left, str | bytes) and isinstance(right, str | bytes):
                _check_length("+", len(left) + len(right))
            elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
                if len(left) + len(right) > MAX_ITEMS:
                    raise SecurityError(f"joining lists to more than {MAX_ITEMS} items")
        if operator == "%" and isinstance(left, str | bytes):
            _check_length("%", _printf_length(left, right))
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Jinja's sandboxed ``str.format``/``format_map``, with each field's width and the
        running length checked (same shape as Jinja 3.1.6's own)."""
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or value.__name__ not in ("format", "format_map"):  # fmt: skip
            return None
        text = value.__self__
        if not isinstance(text, str):
            return None
        kind = type(text)
        is_format_map = value.__name__ == "format_map"
        formatter: SandboxedFormatter = (
            _EscapeFormatter(self, escape=text.escape)
            if isinstance(text, Markup)
            else _Formatter(self)
        )

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
                kwargs, args = args[0], ()
            return kind(formatter.vformat(text, args, kwargs))

        return update_wrapper(wrapper, value)
