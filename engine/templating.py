"""Sandboxed Jinja for dealdesk: rule messages, contract clauses and the decision memo (SPEC §8).

A :class:`Renderer` owns two sandboxed environments over the same template directories: one
for Markdown and messages (no escaping) and one for HTML (autoescaping). Both use
``StrictUndefined``, so a missing variable is an error, never an empty string, and every
failure — syntax, undefined name, sandbox violation, a filter refusing its input — surfaces as
one :class:`~dealdesk.errors.TemplateError` naming the template (or the ruleset position of a
message) and the line.

Templates see the deal (input fields and derived facts) as top-level names plus ``outputs``,
``rule`` and ``decision`` (see :func:`template_context`). Each render is bounded in work and
output by :mod:`dealdesk.sandbox` (SPEC §9).

Clause templates (``billing/milestones.md.j2``) may define ``{% block title %}`` and
``{% block text %}``; each block is rendered on its own, so everything a block needs
(``{% set %}``, macros, imports) must live inside that block. A template without a ``text``
block is all text (the whole template, less its ``title`` block); one without a ``title`` block
gets the title :func:`clause_title` derives from the clause id (SPEC §8).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from dealdesk.errors import DealdeskError, Location, RulesetError, TemplateError, closest
from dealdesk.messages import Filter, QuickMessage, compile_message, template_context
from dealdesk.money import minor_units, parse_decimal, quantize_money
from dealdesk.rules import cache

# Jinja (and the sandbox on it) is imported on the first render or compile, not with this
# module: a run whose messages are plain text never needs it, and it is most of start-up.
if TYPE_CHECKING:
    from jinja2 import FileSystemLoader, Template
    from jinja2.runtime import Context

    from dealdesk.sandbox import Sandbox

__all__ = ["ENGINE_TEMPLATES", "FORMATS", "Renderer", "clause_title", "template_context"]

#: The engine's own templates (the decision memo); searched after every plugin directory.
ENGINE_TEMPLATES = Path(__file__).resolve().parent / "templates"

#: Output formats: the template suffix is ``.{fmt}.j2``.
FORMATS = ("md", "html")

# A clause id is a slash path with at least one slash, so "memo" can never name a clause.
_CLAUSE_ID = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)+")


def clause_title(clause_id: str) -> str:
    """The title of a clause whose template has no ``title`` block: the id's last segment,
    dashes and underscores as spaces, its first letter upper-case and the rest as written
    (``saas/ltv`` → ``"Ltv"``, ``support/personnel-security`` → ``"Personnel security"``,
    ``export/EAR_screening`` → ``"EAR screening"``)."""
    words = " ".join(re.split(r"[-_]+", clause_id.rsplit("/", 1)[-1])).strip()
    return words[:1].upper() + words[1:]


# --- built-in filters ----------------------------------------------------------------------


def _filter_error(message: str) -> Exception:
    """Jinja's ``FilterArgumentError``: how a filter refuses its input."""
    from jinja2.exceptions import FilterArgumentError

    return FilterArgumentError(message)


def _to_decimal(value: Any, filter_name: str) -> Decimal:
    """Decimal from a Decimal, int, float or numeric string; anything else is the template's bug."""
    try:
        return parse_decimal(value)
    except ValueError as exc:
        raise _filter_error(f"{filter_name}: {exc}") from None


def format_money(value: Any, currency: str) -> str:
    """``1234567.891, "USD"`` → ``"1,234,567.89 USD"``: half-up to the currency's minor units.

    One fixed, locale-free layout so memos and clauses are byte-identical on every machine.
    """
    try:
        amount = quantize_money(_to_decimal(value, "money"), currency)
        places = minor_units(currency)
    except ValueError as exc:
        raise _filter_error(f"money: {exc}") from None
    return f"{amount:,.{places}f} {currency}"


def money_filter(
    context: Context | Mapping[str, Any], value: Any, currency: str | None = None
) -> str:
    """``{{ totals.product|money }}`` in the deal's ``currency``, or ``{{ x|money("EUR") }}``
    (Jinja passes the context: see :func:`builtin_filters`)."""
    if currency is None:
        currency = context.get("currency")
        if currency is None:
            raise _filter_error("money: no currency argument and no 'currency' in the context")
    return format_money(value, currency)


def percent_filter(value: Any, digits: int = 2) -> str:
    """A fraction as a percentage: ``0.3`` → ``"30%"``, ``0.125`` → ``"12.5%"`` (half-up)."""
    scaled = _to_decimal(value, "percent") * 100
    rounded = scaled.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    text = f"{rounded:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text == "-0":
        text = "0"
    return f"{text}%"


def date_filter(value: Any) -> str:
    """An ISO date string, ``date`` or ``datetime`` → ``"15 January 2027"`` (English, no locale)."""
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, date):
        day = value
    elif isinstance(value, str):
        try:
            day = datetime.fromisoformat(value.strip()).date()
        except ValueError:
            raise _filter_error(f"date: {value!r} is not an ISO date") from None
    else:
        raise _filter_error(f"date: expected an ISO date, got {type(value).__name__} {value!r}")
    from babel.dates import format_date  # only templates that format dates need it

    return format_date(day, "d MMMM y", locale="en_US")


def builtin_filters() -> dict[str, Callable[..., Any]]:
    """The filters every template and message has: ``money``, ``percent``, ``date``."""
    from jinja2 import pass_context

    return {"money": pass_context(money_filter), "percent": percent_filter, "date": date_filter}


#: The filters a message may use and still render without Jinja (:mod:`dealdesk.messages`),
#: called as ``filter(context, value)``: ``money`` reads the currency from the context as
#: Jinja's context does, and a defined value passes Jinja's ``default`` unchanged.
QUICK_FILTERS: dict[str, Filter] = {
    "money": money_filter,
    "percent": lambda context, value: percent_filter(value),
    "default": lambda context, value: value,
}


# --- error reporting -----------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    """The failure in one line: Jinja's own message, or the exception's type and message."""
    from jinja2 import TemplateError as JinjaTemplateError

    if isinstance(exc, JinjaTemplateError):
        return exc.message or type(exc).__name__
    if isinstance(exc, DealdeskError):  # e.g. a plugin filter's PluginError names the plugin
        return str(exc)
    if isinstance(exc, RecursionError):  # deep (( )) while compiling, or a macro calling itself
        return "nested or recursing too deeply (past Python's recursion limit)"
    return f"{type(exc).__name__}: {exc}"


def _template_frame(tb: TracebackType | None) -> tuple[str | None, int]:
    """Name and source line of the innermost template frame in ``tb`` (``(None, 0)`` if none)."""
    name: str | None = None
    line = 0
    while tb is not None:
        template = tb.tb_frame.f_globals.get("__jinja_template__")
        if template is not None:
            name = template.name
            line = template.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return name, line


def _template_file_error(exc: BaseException, fallback: str) -> TemplateError:
    """``template billing/milestones.md.j2 line 7: ...`` for any failure in a template file."""
    from jinja2.exceptions import TemplateSyntaxError

    if isinstance(exc, TemplateSyntaxError):
        name, line = exc.name or fallback, exc.lineno
    else:
        found, line = _template_frame(exc.__traceback__)
        name = found or fallback
    where = f"template {name} line {line}" if line else f"template {name}"
    return TemplateError(f"{where}: {_describe(exc)}")


# --- the renderer --------------------------------------------------------------------------


class Renderer:
    """Renders messages, clauses and the decision memo for one set of template directories.

    :param template_dirs: template directories, highest priority first: when two directories
        hold the same template name, the **first** one wins (Jinja's ``FileSystemLoader`` order).
        SPEC §7 lets later-registered (external) plugins override built-in ones, so the caller
        passes plugin directories in *reverse* registration order. :data:`ENGINE_TEMPLATES`
        (the memo) is always searched last, so a plugin may ship its own ``memo.md.j2``.
    :param filters: extra Jinja filters (from the ``dealdesk_template_filters`` hook); a name
        that is also built in (``money``, ``percent``, ``date``) replaces the built-in one.

    A renderer is cheap to keep and not meant to be pickled: build one per process.
    """

    def __init__(
        self,
        template_dirs: Sequence[Path],
        filters: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        dirs: list[str] = []
        for directory in [*template_dirs, ENGINE_TEMPLATES]:
            path = str(Path(directory))
            if path not in dirs:
                dirs.append(path)
        self.template_dirs: tuple[Path, ...] = tuple(Path(d) for d in dirs)
        self._dirs = dirs
        self._filters = dict(filters or {})
        self._messages: dict[str, Template] = {}
        self._quick: dict[str, QuickMessage | None] = {}

    @cached_property
    def _loader(self) -> FileSystemLoader:
        # One loader for both environments, so Markdown and HTML resolve names the same way.
        from jinja2 import FileSystemLoader

        return FileSystemLoader(self._dirs)

    @cached_property
    def _markdown(self) -> Sandbox:
        return self._environment(autoescape=False)

    @cached_property
    def _html(self) -> Sandbox:
        return self._environment(autoescape=True)

    def _environment(self, *, autoescape: bool) -> Sandbox:
        """A sandboxed, strict environment with the filters installed."""
        from jinja2 import StrictUndefined

        from dealdesk.sandbox import Sandbox

        env = Sandbox(
            loader=self._loader,
            autoescape=autoescape,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,  # templates ship with the package; no stat() per render
        )
        env.filters.update({**builtin_filters(), **self._filters})
        return env

    def _env(self, fmt: str) -> Sandbox:
        """The environment for ``fmt``: HTML autoescapes, Markdown does not."""
        _check_format(fmt)
        return self._html if fmt == "html" else self._markdown

    # -- clauses --

    def has_clause(self, clause_id: str, fmt: str = "md") -> bool:
        """Whether ``clause_id`` (``billing/milestones``) has a ``.{fmt}.j2`` template in any directory."""
        if not _CLAUSE_ID.fullmatch(clause_id):
            return False
        _check_format(fmt)
        # What the loader's get_source does for a name the clause id pattern allows (every piece
        # a plain name), without importing Jinja: validation asks this of every clause. The text
        # and the time are not kept: reading them raises what get_source would (an unreadable
        # or undecodable file).
        pieces = f"{clause_id}.{fmt}.j2".split("/")
        for directory in self._dirs:
            filename = posixpath.join(directory, *pieces)
            if os.path.isfile(filename):
                with open(filename, encoding="utf-8") as f:
                    f.read()
                os.path.getmtime(filename)
                return True
        return False

    def clause_ids(self, fmt: str = "md") -> list[str]:
        """Every clause id available in ``fmt``, sorted (for "did you mean" in validation)."""
        suffix = f".{fmt}.j2"
        names = self._env(fmt).list_templates(filter_func=lambda n: n.endswith(suffix))
        return sorted({n[: -len(suffix)] for n in names if _CLAUSE_ID.fullmatch(n[: -len(suffix)])})

    def render_clause(
        self, clause_id: str, context: Mapping[str, Any], fmt: str = "md"
    ) -> dict[str, str]:
        """Render clause ``clause_id`` into ``{"title": ..., "text": ...}``, both stripped.

        :param clause_id: ``x/y``, naming ``x/y.{fmt}.j2``.
        :param context: usually :func:`template_context`.
        :param fmt: ``md`` or ``html`` (autoescaped).
        :raises TemplateError: unknown clause, or any failure, naming the template file and line.
        """
        env = self._env(fmt)
        name = f"{clause_id}.{fmt}.j2"
        if not _CLAUSE_ID.fullmatch(clause_id):
            raise TemplateError(
                f"invalid clause id {clause_id!r}: expected a slash path like 'billing/milestones'"
            )
        template = self._load(env, name, what=f"clause template for {clause_id!r}")
        rendered: dict[str, str] = {}
        for block in ("title", "text"):
            render_block = template.blocks.get(block)
            if render_block is not None:
                run = self._run(render_block, template.new_context(dict(context)), name)
            elif block == "title":
                run = clause_title(clause_id)
            else:  # no text block: the whole template is the text, without its title block
                whole = template.new_context(dict(context))
                whole.blocks["title"] = [_nothing]
                run = self._run(template.root_render_func, whole, name)
            rendered[block] = run.strip()
        return rendered

    def clause_problem(self, clause_id: str) -> str | None:
        """Why clause ``clause_id``'s templates cannot render, as far as that is known before
        any deal (``None`` when nothing is wrong): a syntax error, an unknown filter or test, or
        an ``include``/``import``/``extends`` of a template no directory holds — in its
        ``.md.j2`` and its ``.html.j2`` and in every template they name.

        Remembered in the cache folder under the stamps of every template file, so validating
        the same templates again needs no Jinja.
        """
        if not _CLAUSE_ID.fullmatch(clause_id):
            return None  # has_clause already said it is unknown
        key = cache.digest("clause", clause_id, *self._compile_stamps())
        if cache.is_marked("clause-ok", key):
            return None
        for fmt in FORMATS:
            if self.has_clause(clause_id, fmt):
                problem = self._template_problem(self._env(fmt), f"{clause_id}.{fmt}.j2", set())
                if problem:
                    return problem
        cache.mark("clause-ok", key)
        return None

    def _compile_stamps(self) -> tuple[str, ...]:
        """What a template compiles against: the template files, the filters, Jinja and the
        sandbox — a change to any of them is a cache miss."""
        return (
            self._templates_stamp,
            "\0".join(sorted(self._filters)),
            cache.module_stamp("jinja2"),
            cache.module_stamp("markupsafe"),
            cache.file_stamp(__file__),
            cache.file_stamp(Path(__file__).with_name("sandbox.py")),
        )

    def template_problems(self) -> list[RulesetError]:
        """Every template file (``*.j2``) in every template directory that does not compile —
        a syntax error, an unknown filter or test — each at ``file:line:1`` (SPEC §8: known at
        load time, so a template only a plugin action asks for, or none yet, fails validation
        rather than a deal). Shadowed files are compiled too: they are still shipped.

        Remembered in the cache folder under the stamps of every template file, as
        :meth:`clause_problem` is, so loading the same templates again needs no Jinja.
        """
        key = cache.digest("templates", *self._compile_stamps())
        if cache.is_marked("templates-ok", key):
            return []
        problems: list[RulesetError] = []
        for directory in self._dirs:
            for root, dirs, files in os.walk(directory):
                dirs.sort()
                for file in sorted(files):
                    if file.endswith(".j2"):
                        path = os.path.join(root, file)
                        name = os.path.relpath(path, directory).replace(os.sep, "/")
                        problem = self._compile_problem(path, name)
                        if problem is not None:
                            problems.append(problem)
        if not problems:
            cache.mark("templates-ok", key)
        return problems

    def _compile_problem(self, path: str, name: str) -> RulesetError | None:
        """Why the template file at ``path`` (``name`` to the loader) does not compile."""
        from jinja2.exceptions import TemplateSyntaxError

        env = self._html if name.endswith(".html.j2") else self._markdown
        try:
            with open(path, encoding="utf-8") as f:
                source = f.read()
            env.compile(source, name, path)
        except TemplateSyntaxError as exc:
            message = exc.message or type(exc).__name__
            unknown = re.match(r"No (filter|test) named '([^']+)'", message)
            near = None
            if unknown:
                known = env.filters if unknown.group(1) == "filter" else env.tests
                near = closest(unknown.group(2), sorted(known))
            return RulesetError(
                f"template {name}: {message}", Location(path, exc.lineno or 1, 1), near
            )
        except (OSError, UnicodeDecodeError, RecursionError) as exc:
            return RulesetError(f"template {name}: {_describe(exc)}", Location(path, 1, 1))
        return None

    @cached_property
    def _templates_stamp(self) -> str:
        """The stamps of every file in the template directories: what a clause check relies on."""
        stamps: list[str] = []
        for directory in self._dirs:
            for root, dirs, files in os.walk(directory):
                dirs.sort()
                stamps.extend(cache.file_stamp(os.path.join(root, f)) for f in sorted(files))
        return "\0".join(stamps)

    def _template_problem(self, env: Sandbox, name: str, seen: set[str]) -> str | None:
        """The first load-time problem of template ``name`` or a template it names."""
        from jinja2 import nodes

        seen.add(name)
        try:
            source = self._loader.get_source(env, name)[0]
            env.get_template(name)  # compiles: syntax, unknown filters and tests
            tree = env.parse(source, name)
        except Exception as exc:
            return _name_hint(str(_template_file_error(exc, name)), env)
        kinds = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
        for node in tree.find_all(kinds):
            target = cast(Any, node).template  # every kind found has one
            if not isinstance(target, nodes.Const):
                continue  # a name computed at render time: only rendering can tell
            names = target.value if isinstance(target.value, list | tuple) else [target.value]
            if not all(isinstance(n, str) for n in names):
                continue
            found = [n for n in names if n in seen or self._exists(n)]
            if not found:
                if isinstance(node, nodes.Include) and node.ignore_missing:
                    continue
                keyword = type(node).__name__.lower().replace("fromimport", "from import")
                return (
                    f"template {name} line {node.lineno}: {keyword} of {names[0]!r}, which is "
                    "in none of the template directories"
                )
            if found[0] not in seen:
                problem = self._template_problem(env, found[0], seen)
                if problem:
                    return problem
        return None

    def _exists(self, name: str) -> bool:
        """Whether a template directory holds ``name`` (as the loader would find it)."""
        from jinja2.exceptions import TemplateNotFound

        try:
            self._loader.get_source(self._markdown, name)
        except TemplateNotFound:
            return False
        return True

    # -- messages --

    def message_problem(self, source: str) -> str | None:
        """Why ``source`` is not a valid message template (``None`` when it is), for validation."""
        if "{" not in source:
            return None  # every Jinja tag starts with "{": plain text always compiles
        # a message that compiled once compiles again with the same filter names, Jinja and
        # sandbox: remembered (as the schema check is), so validation need not load Jinja
        key = cache.digest(
            source,
            "\0".join(sorted(self._filters)),
            cache.module_stamp("jinja2"),
            cache.module_stamp("markupsafe"),
            cache.file_stamp(__file__),
            cache.file_stamp(Path(__file__).with_name("sandbox.py")),
        )
        if cache.is_marked("message-ok", key):
            return None
        try:
            self._message_template(source)
        except Exception as exc:
            return _name_hint(_message_detail(exc), self._markdown)
        cache.mark("message-ok", key)
        return None

    def message_reads(self, source: str) -> list[tuple[str, int]]:
        """The names ``source`` reads from its context, as (dotted path, line in the message),
        in the order written: ``{{ customer.name }}`` reads ``customer.name``. Names the
        message defines itself (``{% set %}``, loop variables) and Jinja's globals are not
        reads; a path stops at a computed or numeric part (``lines[0].sku`` reads ``lines``).

        Found with Jinja's own parser (:func:`jinja2.meta.find_undeclared_variables` and the
        template's nodes), remembered in the cache folder like :meth:`message_problem`; a
        message that does not compile reads nothing (:meth:`message_problem` says why).
        """
        if "{" not in source:
            return []
        key = cache.digest(
            "reads", source, cache.module_stamp("jinja2"), cache.file_stamp(__file__)
        )
        found = cache.read("message-reads", key)
        if isinstance(found, list) and all(
            isinstance(r, list) and len(r) == 2 and isinstance(r[0], str) and type(r[1]) is int
            for r in found
        ):
            return [(path, line) for path, line in found]
        try:
            reads = _reads(self._markdown, source)
        except Exception:
            return []
        cache.write("message-reads", key, [list(r) for r in reads])
        return reads

    def _message_template(self, source: str) -> Template:
        template = self._messages.get(source)
        if template is None:
            template = self._messages[source] = self._markdown.from_string(source)
        return template

    def _quick_message(self, source: str) -> QuickMessage | None:
        """``source`` without Jinja when it only prints values (:mod:`dealdesk.messages`)."""
        try:
            return self._quick[source]
        except KeyError:
            pass
        # only the filters no plugin replaced (a plugin's filter of that name is Jinja's to call)
        own: dict[str, Filter] = {
            name: apply for name, apply in QUICK_FILTERS.items() if name not in self._filters
        }
        quick = self._quick[source] = compile_message(source, own)
        return quick

    def render_message(self, source: str, context: Mapping[str, Any], origin: str) -> str:
        """Render a ruleset message (a Jinja string) against ``context``; compiled once per source.

        :param origin: where the message was written, e.g. ``rulesets/partner-margin.yaml:12:15 rule PM-1``.
        :raises TemplateError: ``"{origin}: {detail}"`` for a syntax error, an undefined name or a
            sandbox violation.
        """
        quick = self._quick_message(source)
        if quick is not None:
            text = quick.render(context)
            if text is not None:
                return text
        try:
            template = self._message_template(source)
        except Exception as exc:
            raise TemplateError(f"{origin}: {_message_detail(exc)}") from exc
        from dealdesk.sandbox import render_bounded

        try:
            return render_bounded(template.root_render_func, template.new_context(dict(context)))
        except Exception as exc:
            raise TemplateError(f"{origin}: {_message_detail(exc)}") from exc

    # -- the memo --

    def render_memo(
        self, record: Mapping[str, Any], deal: Mapping[str, Any], fmt: str = "md"
    ) -> str:
        """The decision memo for one record: ``memo.md.j2`` (Markdown) or ``memo.html.j2`` (a page).

        Each clause of the record is rendered afresh in the memo's format from its template, with
        its policy's outputs and rule; the record's own ``title``/``text`` are used only when no
        template exists for that format.

        :param record: a decision record (SPEC §4).
        :param deal: the evaluated deal (inputs and derived facts), as for clauses.
        :raises TemplateError: naming the template and line.
        """
        env = self._env(fmt)
        name = f"memo.{fmt}.j2"
        template = self._load(env, name, what="decision memo")
        context = template_context(deal, decision=record)
        context["record"] = record
        context["memo_clauses"] = self._memo_clauses(record, deal, fmt)
        text = self._run(template.root_render_func, template.new_context(context), name)
        return text.strip() + "\n"

    def _memo_clauses(
        self, record: Mapping[str, Any], deal: Mapping[str, Any], fmt: str
    ) -> list[dict[str, Any]]:
        """The record's clauses with title and text in ``fmt`` (HTML as safe ``Markup``)."""
        decision = {key: record.get(key) for key in ("status", "approvals", "reasons")}
        policies = record.get("policies") or {}
        clauses: list[dict[str, Any]] = []
        anchors: set[str] = set()
        for clause in record.get("clauses") or ():
            clause_id = clause["id"]
            if self.has_clause(clause_id, fmt):
                outputs = (policies.get(clause.get("policy")) or {}).get("outputs") or {}
                context = template_context(
                    deal, outputs=outputs, rule=clause.get("rule"), decision=decision
                )
                rendered: dict[str, Any] = self.render_clause(clause_id, context, fmt)
                if fmt == "html":
                    from markupsafe import Markup

                    # Already escaped by the HTML environment; mark it so the memo does not escape twice.
                    rendered = {key: Markup(value) for key, value in rendered.items()}
            else:
                rendered = {
                    "title": clause.get("title") or clause_id,
                    "text": clause.get("text", ""),
                }
            clauses.append({**clause, **rendered, "anchor": _anchor(clause_id, anchors)})
        return clauses

    # -- plumbing --

    @staticmethod
    def _load(env: Sandbox, name: str, *, what: str) -> Template:
        """Load and compile ``name``; a missing file or syntax error becomes a TemplateError."""
        from jinja2.exceptions import TemplateNotFound, TemplateSyntaxError

        try:
            return env.get_template(name)
        except TemplateNotFound:
            raise TemplateError(
                f"no {what}: {name} is in none of the template directories"
            ) from None
        except TemplateSyntaxError as exc:
            raise _template_file_error(exc, name) from exc

    @staticmethod
    def _run(render: Callable[[Context], Iterator[str]], context: Context, name: str) -> str:
        """Drain a template's render generator; any failure names the template and line.

        The generators are driven directly, not through ``Template.render``, because Jinja's
        traceback rewriting drops the frames that tell which template and line failed.
        """
        from dealdesk.sandbox import render_bounded

        try:
            return render_bounded(render, context)
        except Exception as exc:
            raise _template_file_error(exc, name) from exc


def _anchor(clause_id: str, taken: set[str]) -> str:
    """An HTML id for a clause, unique in one memo (``taken``): ``clause-billing-milestones``,
    then ``clause-billing-milestones-2`` when two rules ask for one clause (or when two ids,
    ``a/b-c`` and ``a-b/c``, read alike)."""
    base = "clause-" + re.sub(r"[^A-Za-z0-9_-]", "-", clause_id)
    anchor, n = base, 1
    while anchor in taken:
        n += 1
        anchor = f"{base}-{n}"
    taken.add(anchor)
    return anchor


def _nothing(context: Context) -> Iterator[str]:
    """A block that renders nothing (the title block, when the whole template is the text)."""
    return iter(())


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown template format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _reads(env: Sandbox, source: str) -> list[tuple[str, int]]:
    """:meth:`Renderer.message_reads`, uncached."""
    from jinja2 import meta, nodes

    tree = env.parse(source)
    free = meta.find_undeclared_variables(tree) - set(env.globals)
    reads: list[tuple[str, int]] = []
    inner: set[int] = set()  # the nodes inside a path already read

    def path_of(node: nodes.Node) -> tuple[list[str], bool] | None:
        """The dotted path ``node`` reads, and whether it is whole (no ``[0]``/``[y]`` in it:
        after one, only the part before it is known)."""
        if isinstance(node, nodes.Name):
            return ([node.name], True) if node.ctx == "load" and node.name in free else None
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            base = path_of(node.node)
            if base is None or not base[1]:
                return base
            name = node.attr if isinstance(node, nodes.Getattr) else None
            if isinstance(node, nodes.Getitem):
                arg = node.arg
                if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                    name = arg.value
            return ([*base[0], name], True) if name is not None else (base[0], False)
        return None

    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        if id(node) in inner:
            continue
        found = path_of(node)
        if found is None:
            continue
        chain: nodes.Node = node
        while isinstance(chain, nodes.Getattr | nodes.Getitem):  # not a subscript's own reads
            chain = chain.node
            inner.add(id(chain))
        reads.append((".".join(found[0]), node.lineno))
    return reads


def _name_hint(detail: str, env: Sandbox) -> str:
    """``detail`` with a "did you mean" when it is Jinja's unknown filter or test
    (``No filter named 'precent'.``), from the names ``env`` has."""
    import re

    found = re.search(r"No (filter|test) named '([^']*)'\.?(?: found\.)?", detail)
    if found is None:
        return detail
    names = env.filters if found.group(1) == "filter" else env.tests
    guess = closest(found.group(2), [n for n in names if isinstance(n, str)])
    if guess is None:
        return detail
    hinted = f"No {found.group(1)} named {found.group(2)!r} (did you mean {guess!r}?)"
    return detail[: found.start()] + hinted + detail[found.end() :]


def _message_detail(exc: BaseException) -> str:
    """A message failure in one line, with the line inside the message when it has several."""
    from jinja2.exceptions import TemplateSyntaxError

    line = (
        exc.lineno
        if isinstance(exc, TemplateSyntaxError)
        else _template_frame(exc.__traceback__)[1]
    )
    detail = _describe(exc)
    return f"line {line}: {detail}" if line > 1 else detail
