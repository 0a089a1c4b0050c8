"""The ``dealdesk`` command (SPEC §6).

Exit status: 0 done; 1 the command found problems (ruleset validation errors, failing ruleset
tests, ``--fail-on`` matched) or dealdesk itself failed unexpectedly (``error: ...``; run with
``--debug`` for the traceback); 2 usage errors (bad flags, unreadable or missing files, a plugin
that cannot be imported).

Errors go to standard error, one line per problem, never with a traceback unless ``--debug``.
"""

from __future__ import annotations

import gc
import itertools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from dealdesk import __version__
from dealdesk.errors import DealdeskError, RulesetError, UsageError, ValidationFailed
from dealdesk.io import DEFAULT_DEAL_TIMEOUT, DEFAULT_WORKER_MEMORY

# `dealdesk --help` must start fast: everything else is imported by the command that uses it.
if TYPE_CHECKING:
    from dealdesk import app
    from dealdesk.evaluate import PolicyRun
    from dealdesk.explain import DealExplanation, RuleExplanation
    from dealdesk.io.batch import Executor
    from dealdesk.io.executor import WorkSpec
    from dealdesk.io.readers import SourceDeal

__all__ = ["main"]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

#: ``dealdesk test``'s status when no case ran, pytest's ``ExitCode.NO_TESTS_COLLECTED``.
NO_TESTS_RAN = 5


@dataclass
class Settings:
    """The group's options, handed to every command through ``ctx.obj``."""

    debug: bool = False
    disabled: list[str] = field(default_factory=list)
    enabled: list[str] = field(default_factory=list)

    def spec(self, rulesets: Sequence[str] | None = None, **options: Any) -> WorkSpec:
        """What builds the app, here and in worker processes."""
        from dealdesk.io.executor import WorkSpec

        return WorkSpec(tuple(rulesets or ()), tuple(self.disabled), tuple(self.enabled), **options)

    def build(self, rulesets: Sequence[str] | None = None, **options: Any) -> app.App:
        """The app, its rulesets validated and its engine built."""
        built = self.spec(rulesets, **options).build()
        _resume_collector()
        return built


# Run as the program, dealdesk starts with the garbage collector paused: start-up makes objects
# that live until exit (modules, classes, the compiled rulesets) and next to no garbage, and
# collecting on the way is about a tenth of a one-deal run. Once the app is built, those objects
# are frozen out of every later collection and the collector runs for the deals, with a first
# generation of _YOUNG objects instead of 700: deciding deals makes many short-lived objects,
# few in cycles (freed by their counts), and a chunk of deals held at once (the columnar engine,
# the workers' tasks) would otherwise survive collection after collection. House policy, 10,000
# deals in one process: -8% CPU on the native engine, -26% on the columnar one (one run).
_collector_paused = False
_YOUNG = 50_000


def _pause_collector() -> None:
    global _collector_paused
    if gc.isenabled():
        gc.disable()
        _collector_paused = True


def _resume_collector() -> None:
    global _collector_paused
    if _collector_paused:
        _collector_paused = False
        gc.freeze()
        gc.set_threshold(_YOUNG, *gc.get_threshold()[1:])
        gc.enable()


def _error(message: str) -> None:
    for line in str(message).splitlines() or [""]:
        click.echo(f"error: {line}", err=True)


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """``--debug`` given after the subcommand: the same flag as before it."""
    settings = ctx.find_object(Settings)
    if value and settings is not None:
        settings.debug = True


class DealdeskGroup(click.Group):
    """Turns dealdesk's errors into one line each and an exit status (tracebacks with --debug).

    Every command it holds also takes ``--debug``, so the flag works anywhere on the line
    (``dealdesk evaluate x.yaml --debug``), commands added later included.
    """

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not any(param.name == "debug" for param in cmd.params):
            cmd.params.append(
                click.Option(
                    ["--debug"],
                    is_flag=True,
                    expose_value=False,
                    callback=_set_debug,
                    help="Show the traceback of any error (also accepted before the command).",
                )
            )
        super().add_command(cmd, name)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        # arguments from the command line: the `dealdesk` program, whose process ends with the
        # command (callers that pass arguments, tests and embedders, keep their collector)
        if not args and kwargs.get("args") is None:
            _pause_collector()
        try:
            return super().main(*args, **kwargs)
        finally:
            _resume_collector()  # whatever the command did (most resume once they are built)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except ValidationFailed as exc:
            debug = _debugging(ctx)
            if debug:
                import traceback

                traceback.print_exc()
            for error in exc.errors:
                click.echo(str(error), err=True)
            ctx.exit(exc.exit_code)
        except DealdeskError as exc:
            debug = _debugging(ctx)
            if debug:
                import traceback

                traceback.print_exc()
            _error(str(exc))
            ctx.exit(exc.exit_code)
        except BrokenPipeError:
            # The reader went away (`dealdesk evaluate ... | head`): stop quietly, as cat does.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(1)
        except Exception as exc:
            debug = _debugging(ctx)
            if debug:
                import traceback

                traceback.print_exc()
            _error(f"internal error: {type(exc).__name__}: {exc}")
            if not debug:
                click.echo("(run `dealdesk --debug ...` to see the traceback)", err=True)
            ctx.exit(1)


def _debugging(ctx: click.Context) -> bool:
    """Whether ``--debug`` was given, before the command or after it."""
    settings = ctx.obj
    return bool(ctx.params.get("debug")) or (isinstance(settings, Settings) and settings.debug)


@click.group(cls=DealdeskGroup, context_settings=CONTEXT_SETTINGS)
@click.option("--debug", is_flag=True, help="Show the traceback of any error.")
@click.option(
    "-p",
    "plugin_names",
    multiple=True,
    metavar="NAME",
    help="Load plugin NAME (entry point or module), even with autoload off; "
    "-p no:NAME disables plugin NAME (built-ins too, e.g. -p no:partner_margin). Repeatable.",
)
@click.version_option(__version__, prog_name="dealdesk")
@click.pass_context
def main(ctx: click.Context, debug: bool, plugin_names: tuple[str, ...]) -> None:
    """dealdesk: deal-desk policies as YAML rulesets, evaluated by a rules engine.

    Exit status: 0 done; 1 problems found (validation errors, failing ruleset tests,
    --fail-on matched) or an internal error; 2 usage errors (bad flags, missing or
    unreadable files). Set DEALDESK_DISABLE_PLUGIN_AUTOLOAD=1 to skip installed plugins.
    """
    settings = Settings(debug=debug)
    for name in plugin_names:
        if name.startswith("no:"):
            settings.disabled.append(name[3:])
        else:
            settings.enabled.append(name)
    ctx.obj = settings


def engine_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--engine NAME``: the engine that evaluates (records are identical on every engine)."""
    return click.option(
        "--engine",
        metavar="NAME",
        help="The engine that evaluates: native (default, fastest), durable (durable_rules, "
        "Python 3.11/3.12) or columnar (chunks as numpy columns, dealdesk[columnar]). "
        "Default: $DEALDESK_ENGINE, else native.",
    )(func)


def rulesets_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``-r RULESETS`` (repeatable) and ``--no-plugin-rulesets``."""
    func = click.option(
        "--no-plugin-rulesets",
        is_flag=True,
        help="Leave out the rulesets that external plugins ship.",
    )(func)
    return click.option(
        "-r",
        "--rulesets",
        multiple=True,
        metavar="PATH",
        help="A ruleset file or directory; repeatable. Default: the house policy and every "
        "plugin's rulesets. Explicit paths replace the house policy (plugins' rulesets stay).",
    )(func)


# ---------------------------------------------------------------------------------------------
# evaluate


@main.command()
@click.argument("deals", nargs=-1, required=True, metavar="DEALS...")
@rulesets_option
@click.option(
    "-o",
    "--output",
    default="-",
    metavar="OUT",
    help="Write the records to OUT (default: standard output); the format follows its suffix "
    "(.jsonl, .json, .csv, .html, .txt for the table) unless --format is given. OUT is "
    "replaced only when the run ends.",
)
@click.option(
    "-f",
    "--format",
    "fmt",
    default=None,
    metavar="FORMAT",
    help="jsonl (default), json, csv, table (a summary), html (a report), or a format a "
    "plugin adds.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Worker processes (default: one per CPU, started as the work needs them); 0 "
    "decides in this process, without fault isolation (for debugging).",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="Where the workers run: local processes, or a Dask cluster.",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="The Dask scheduler (tcp://host:8786) for --executor dask; default: a local cluster.",
)
@click.option(
    "--deal-timeout",
    type=click.FloatRange(min=0),
    default=DEFAULT_DEAL_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="A deal that takes longer is stopped and invalid (0: no limit; needs workers).",
)
@click.option(
    "--worker-memory",
    type=click.IntRange(min=0),
    default=DEFAULT_WORKER_MEMORY,
    show_default=True,
    metavar="MIB",
    help="Memory each worker may use beyond what it starts with; a deal that needs more is "
    "invalid (0: no limit).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted run: keep OUT's whole records (JSONL), check them against "
    "the input's first deals, and decide the rest.",
)
@click.option("--clauses", is_flag=True, help="Render the clause texts into the records (slower).")
@click.option(
    "--fail-on",
    type=click.Choice(["needs_approval", "rejected", "invalid"]),
    help="Exit with status 1 when any record's status is this one or more severe "
    "(invalid > rejected > needs_approval).",
)
@click.option("-q", "--quiet", is_flag=True, help="No summary on standard error at the end.")
@engine_option
@click.pass_obj
def evaluate(
    settings: Settings,
    deals: tuple[str, ...],
    rulesets: tuple[str, ...],
    no_plugin_rulesets: bool,
    output: str,
    fmt: str | None,
    workers: int | None,
    executor: str,
    scheduler: str | None,
    deal_timeout: float,
    worker_memory: int,
    resume: bool,
    clauses: bool,
    fail_on: str | None,
    quiet: bool,
    engine: str | None,
) -> None:
    """Evaluate DEALS (files, directories or - for JSONL on standard input).

    One decision record per input deal, in input order, whatever happens to the deal: a deal
    that cannot be read, is invalid, crashes its worker or passes its time budget gives a record
    with status invalid and its errors. Interrupted (Ctrl-C), the records written so far are
    kept whole and the exit status is 130.
    """
    import dataclasses

    from dealdesk.engines import ENV_VAR as ENGINE_VAR
    from dealdesk.io import output as outputs
    from dealdesk.io.batch import Batch, Progress, write_texts
    from dealdesk.io.summary import Summary, WriteContext

    if scheduler is not None and executor != "dask":
        raise click.UsageError("--scheduler needs --executor dask")
    if executor == "dask" and workers == 0:
        raise click.UsageError("--workers 0 decides in this process; it cannot use --executor dask")
    given = click.get_current_context().get_parameter_source
    if workers == 0 and given("deal_timeout") == click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError(
            "--deal-timeout needs worker processes; --workers 0 decides in this process"
        )
    _check_paths(deals, output)
    if resume and output == "-":
        raise click.UsageError("--resume continues an output file: give it with -o OUT")
    spec = settings.spec(
        rulesets, no_plugin_rulesets=no_plugin_rulesets, clauses=clauses, engine=engine
    )
    application = settings.build(
        rulesets, no_plugin_rulesets=no_plugin_rulesets, clauses=clauses, engine=engine
    )
    fmt = outputs.format_for(output, fmt, application.writers)
    if fmt not in application.writers:
        known = ", ".join(sorted(application.writers))
        raise click.UsageError(f"unknown --format {fmt!r}; known formats: {known}")
    if (
        engine is None
        and not os.environ.get(ENGINE_VAR)
        and _columnar_pays(application, deals, fmt, executor)
    ):
        # the faster engine for a big book, by measurement (bench/README.md "Columnar")
        application = dataclasses.replace(application, engine="columnar")
        spec = dataclasses.replace(spec, engine="columnar")
    # lines stay unparsed for the workers, and for an engine that reads whole chunks of them
    lazy = workers != 0 or application.pipeline.engine.chunked
    reader = application.read(deals, lazy=lazy)
    sources: Iterator[SourceDeal] = iter(reader)
    keep, kept = 0, 0
    if resume:
        if fmt != "jsonl":
            raise click.UsageError(f"--resume continues a JSONL output, not {fmt}")
        state = outputs.resume_records(output)
        keep, kept = state.length, state.count
        outputs.verify_resume(state, (_deal_id(s) for s in itertools.islice(sources, state.count)))
        if state.count and not quiet:
            click.echo(f"resuming after the {state.count:,} deals {output} holds", err=True)
    # workers encode JSON Lines themselves when nothing in this process needs the whole record
    from dealdesk import jsoncodec

    encode = (
        jsoncodec.dumps
        if fmt == "jsonl"
        and "jsonl" not in application.plugins.writers
        and not application.plugins.has_sinks
        else None
    )
    runner = _executor(
        application,
        spec,
        executor,
        scheduler,
        workers,
        deal_timeout,
        worker_memory,
        encode,
        settings.debug,
    )
    shown = sys.stderr.isatty() and not (output == "-" and sys.stdout.isatty())
    summary = Summary(WriteContext.of(application.policy_set))
    batch = Batch(
        application.pipeline,
        runner,
        fail_on=fail_on,
        on_record=summary.add,
        progress=Progress(lambda: (reader.bytes_read, reader.bytes_total)) if shown else None,
    )
    for record in _kept(output, kept):
        if record.get("provenance") != application.pipeline.provenance:
            raise UsageError(
                f"{output}: its records were decided by other rulesets or another dealdesk "
                "than this run's; start again without --resume"
            )
        batch.count(record)
    # an interrupted run never replaces a whole earlier output it cannot resume
    replaced = output != "-" and fmt != "jsonl" and os.path.isfile(output)
    target = outputs.AtomicOutput(output, keep=keep)
    stream = target.open()
    try:
        if encode is not None:
            write_texts(batch.texts(sources), stream)
        else:
            application.writers[fmt](batch.records(sources), stream)
    except BaseException:
        target.abort()
        raise
    result = batch.result
    partial = _partial_name(output) if result.interrupted and replaced else None
    target.commit(to=partial)
    if result.interrupted:
        where = "" if output == "-" else f"; their records are in {partial or output}"
        if partial:
            where += f" ({output} is left as it was)"
        again = " (run again with --resume to go on)" if fmt == "jsonl" and output != "-" else ""
        click.echo(f"interrupted: {result.deals:,} deals decided{where}{again}", err=True)
        sys.exit(130)
    if not quiet and fmt != "table":
        click.echo(summary.text(elapsed=result.elapsed), err=True, nl=False)
    if result.matched:
        worse = "" if fail_on == "invalid" else " or worse"
        click.echo(
            f"{result.matched} of {result.deals} deals are {fail_on}{worse} (--fail-on {fail_on})",
            err=True,
        )
        sys.exit(1)


def _check_paths(deals: Sequence[str], output: str) -> None:
    """Usage errors before anything is read: closed standard input, OUT over an input."""
    from dealdesk.io.output import check_output

    if "-" in deals and (sys.stdin is None or sys.stdin.closed):
        raise UsageError("-: standard input is closed")
    check_output(output, deals)


def _kept(output: str, count: int) -> Iterator[dict[str, Any]]:
    """The first ``count`` records of a JSONL ``output`` (what ``--resume`` keeps)."""
    if not count:
        return
    from dealdesk import jsoncodec

    with open(output, "rb") as stream:
        for line in itertools.islice(stream, count):
            yield jsoncodec.loads(line.decode())


def _partial_name(output: str) -> str:
    """``report.partial.html`` for ``report.html``: where an interrupted run's records go when
    they would replace a whole earlier output."""
    stem, suffix = os.path.splitext(output)
    return f"{stem}.partial{suffix}"


#: Bytes of deals from which the columnar engine decides a book faster than the native one
#: when --engine is not given: its imports (numpy, pyarrow) cost ~0.2 CPU-s, and it saves
#: tens of µs a deal on a policy set that allows record templates (bench/README.md).
COLUMNAR_FROM_BYTES = 2 * 1024 * 1024


def _columnar_pays(
    application: app.App, deals: Sequence[str], fmt: str, executor: str = "local"
) -> bool:
    """Whether the columnar engine is the faster one for this run (--engine not given): local
    workers (a Dask cluster's workers may not have numpy and pyarrow), a JSONL output made of
    record templates (no clauses, sinks or combine plugins), a big input (or standard input,
    which streams books), and every policy allowing templates."""
    from importlib.util import find_spec

    from dealdesk.engines import available_engines

    plugins = application.plugins
    if executor != "local" or fmt != "jsonl" or application.clauses:
        return False
    if plugins.has_combiners or plugins.has_sinks:
        return False
    if find_spec("pyarrow") is None or "columnar" not in available_engines():
        return False
    size = 0
    for name in deals:
        if name == "-":
            return _templated(application)
        path = Path(name)
        files = path.rglob("*") if path.is_dir() else [path]
        size += sum(f.stat().st_size for f in files if f.is_file())
    return size >= COLUMNAR_FROM_BYTES and _templated(application)


def _templated(application: app.App) -> bool:
    from dealdesk.engines.columnar.records import templated_set

    return templated_set(application.policy_set)


def _deal_id(source: SourceDeal) -> str | None:
    from dealdesk.deal.validate import deal_id_of

    return deal_id_of(source.parsed().deal)


def _executor(
    application: app.App,
    spec: WorkSpec,
    kind: str,
    scheduler: str | None,
    workers: int | None,
    deal_timeout: float,
    worker_memory: int,
    encode: Any,
    debug: bool,
) -> Executor:
    """The executor the options ask for."""
    from dealdesk.io import executor as executors

    timeout = deal_timeout or None
    if kind == "dask":
        from dealdesk.io.dask import DaskExecutor

        return DaskExecutor(
            application,
            spec,
            scheduler=scheduler,
            workers=workers,
            deal_timeout=timeout,
            encode=encode,
            debug=debug,
        )
    if workers == 0:
        return executors.InProcess(application, encode)
    return executors.LocalWorkers(
        application,
        spec,
        workers=workers or executors.default_workers(),
        deal_timeout=timeout,
        memory_mb=worker_memory or None,
        encode=encode,
    )


# ---------------------------------------------------------------------------------------------
# explain and render: one deal


def _one_deal(application: app.App, path: str, deal_id: str | None) -> SourceDeal:
    from dealdesk.deal.validate import deal_id_of

    sources = list(application.read([path]))
    if deal_id is not None:
        # ids as the records show them: `--id 1001` finds `id: 1001`
        chosen = [s for s in sources if deal_id_of(s.deal) == deal_id]
        if not chosen:
            raise UsageError(f"{path}: no deal with id {deal_id!r}")
        return chosen[0]
    if not sources:
        raise UsageError(f"{path}: holds no deal")
    if len(sources) != 1:
        broken = [s for s in sources if s.error is not None]
        if broken and not any(isinstance(s.deal, dict) for s in sources):
            # nothing read as a deal (pretty-printed JSON on stdin): say why, not how many
            stdin = " (standard input is read as JSONL: one deal per line)" if path == "-" else ""
            raise UsageError(f"{broken[0].error}{stdin}")
        ids = [str(deal_id_of(s.deal)) for s in sources if isinstance(s.deal, dict)][:5]
        ids = [i for i in ids if i != "None"]
        listed = f" ({', '.join(ids)}{', ...' if len(sources) > 5 else ''})" if ids else ""
        choose = "choose one with --id ID" if ids else "none has an id to choose it by"
        raise UsageError(f"{path}: holds {len(sources)} deals{listed}; {choose}")
    return sources[0]


@main.command()
@click.argument("deal", metavar="DEAL")
@rulesets_option
@click.option("--rule", "rule_id", metavar="ID", help="Explain only this rule (or decision table).")
@click.option("--id", "deal_id", metavar="ID", help="The deal to explain when DEAL holds several.")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@engine_option
@click.pass_obj
def explain(
    settings: Settings,
    deal: str,
    rulesets: tuple[str, ...],
    no_plugin_rulesets: bool,
    rule_id: str | None,
    deal_id: str | None,
    as_json: bool,
    engine: str | None,
) -> None:
    """Why each rule fired or did not for DEAL: every policy's rules and table rows in priority
    order, each condition's parts with their three-valued value and the values they read."""
    from dealdesk.explain import explain_deal

    application = settings.build(rulesets, no_plugin_rulesets=no_plugin_rulesets, engine=engine)
    if rule_id is not None:
        known = sorted({r.id for p in application.policy_set.policies.values() for r in p.rules})
        if rule_id not in known:
            import difflib

            close = difflib.get_close_matches(rule_id, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"--rule {rule_id}: no such rule in the loaded rulesets{hint}")
    source = _one_deal(application, deal, deal_id)
    if source.error is not None:
        record, data = application.source_error_record(source), None
        runs: dict[str, PolicyRun] = {}
    else:
        decision = application.decide(source.deal)  # enriched once: runs and data agree
        record, runs, data = decision.record, decision.runs, decision.data
    explanation = explain_deal(record, runs, data, rule_id=rule_id)
    if as_json:
        import json

        click.echo(json.dumps(_explanation_json(explanation), indent=2, ensure_ascii=False))
    else:
        click.echo(format_explanation(explanation), nl=False)


def format_explanation(explanation: DealExplanation) -> str:
    """The explanation as text, for people."""
    import json

    from dealdesk.io.writers import format_message

    lines = [
        f"{explanation.deal_id or '(no id)'}: {explanation.status}"
        + (f"  (approvals: {', '.join(explanation.approvals)})" if explanation.approvals else "")
    ]
    for error in explanation.errors:
        lines.append(f"  error: {format_message(error)}")
    for policy in explanation.policies:
        lines.append("")
        lines.append(f"{policy.name}: {policy.status}")
        for rule in policy.rules:
            lines.extend(_rule_lines(rule))
        if policy.outputs:
            lines.append(f"  outputs: {json.dumps(policy.outputs, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"


def _rule_lines(rule: RuleExplanation) -> list[str]:
    mark = "FIRED    " if rule.fired else "not fired"
    lines = [f"  {mark}  {rule.label}: {rule.why}"]
    pad = " " * 13
    lines.append(f"{pad}when: {rule.when or '-'}")
    for part in rule.conjuncts:
        value = "true" if part.value else ("unknown" if part.value is None else "false")
        lines.append(f"{pad}{value:<8}{part.detail}")
    if rule.effects:
        lines.append(f"{pad}did: {', '.join(rule.effects)}")
    return lines


def _explanation_json(explanation: DealExplanation) -> dict[str, Any]:
    from dealdesk.explain import format_value

    def rule_json(rule: RuleExplanation) -> dict[str, Any]:
        return {
            "id": rule.id,
            "row": rule.row,
            "ruleset": rule.ruleset,
            "location": rule.location,
            "priority": rule.priority,
            "when": rule.when,
            "value": rule.value,
            "fired": rule.fired,
            "why": rule.why,
            "conjuncts": [
                {
                    "text": c.text,
                    "value": c.value,
                    "detail": c.detail,
                    "reads": {r.path: format_value(r.value) for r in c.reads},
                }
                for c in rule.conjuncts
            ],
            "effects": rule.effects,
        }

    return {
        "deal_id": explanation.deal_id,
        "status": explanation.status,
        "approvals": explanation.approvals,
        "errors": explanation.errors,
        "policies": {
            p.name: {
                "status": p.status,
                "rules": [rule_json(r) for r in p.rules],
                "outputs": p.outputs,
            }
            for p in explanation.policies
        },
    }


@main.command()
@click.argument("deal", metavar="DEAL")
@rulesets_option
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["md", "html"]),
    default=None,
    help="md (Markdown, the default) or html (a self-contained page).",
)
@click.option(
    "-o",
    "--output",
    default="-",
    metavar="OUT",
    help="Write the memo to OUT (default: standard output); the format follows its suffix "
    "(.md or .markdown, .html or .htm) unless --format is given.",
)
@click.option("--id", "deal_id", metavar="ID", help="The deal to render when DEAL holds several.")
@engine_option
@click.pass_obj
def render(
    settings: Settings,
    deal: str,
    rulesets: tuple[str, ...],
    no_plugin_rulesets: bool,
    fmt: str | None,
    output: str,
    deal_id: str | None,
    engine: str | None,
) -> None:
    """The decision memo for DEAL, with the clauses its rules ask for."""
    fmt = _memo_format(output, fmt)
    application = settings.build(
        rulesets, no_plugin_rulesets=no_plugin_rulesets, clauses=True, engine=engine
    )
    source = _one_deal(application, deal, deal_id)
    if source.error is not None:
        record, data = application.source_error_record(source), None
    else:
        decision = application.decide(source.deal)
        record, data = decision.record, decision.data
    if data is None:
        data = dict(source.deal) if isinstance(source.deal, dict) else {}
    # The memo names a deal without an id by where it was read (`deals.yaml:12`); `source` is
    # for the memo only, not part of the decision record.
    memo = application.renderer.render_memo({**record, "source": source.source}, data, fmt)
    from dealdesk.io.output import AtomicOutput, check_output

    check_output(output, [deal])
    with AtomicOutput(output) as out:
        out.write(memo)


def _memo_format(output: str, fmt: str | None) -> str:
    """The memo's format: ``--format`` when given, else OUT's suffix, else ``md`` (SPEC §6).

    :raises UsageError: OUT's suffix names no memo format (``memo.pdf``, ``memo.json``).
    """
    from dealdesk.io.output import format_for
    from dealdesk.templating import FORMATS

    try:
        # the suffix rules evaluate's -o follows; .markdown is Markdown too
        chosen = format_for(output, fmt, (*FORMATS, "markdown"), default="md")
    except UsageError:
        chosen = ""  # its message would offer evaluate's suffixes, not the memo's
    chosen = "md" if chosen == "markdown" else chosen
    if chosen not in FORMATS:
        raise UsageError(
            f"{output}: cannot tell the memo format from its suffix; give --format md or html, "
            "or name OUT with .md, .markdown, .html or .htm"
        )
    return chosen


@main.command()
@click.argument("deal", metavar="DEAL")
@rulesets_option
@click.option(
    "--goal",
    "goals",
    multiple=True,
    metavar="GOAL",
    help="What the change must achieve: 'approved', 'not rejected' or 'no ROLE' (e.g. "
    "'no cfo'); repeatable, all must hold. Default: each rejection and approver on its own.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    metavar="N",
    help="The most changes listed for each obstacle.",
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for programs.",
)
@click.option("--id", "deal_id", metavar="ID", help="The deal to change when DEAL holds several.")
@engine_option
@click.pass_obj
def whatif(
    settings: Settings,
    deal: str,
    rulesets: tuple[str, ...],
    no_plugin_rulesets: bool,
    goals: tuple[str, ...],
    limit: int,
    fmt: str,
    deal_id: str | None,
    engine: str | None,
) -> None:
    """The smallest changes to DEAL that remove each rejection and each approver it needs (or
    that reach --goal), each verified by evaluating the changed deal. Exit status 1 when the
    deal is invalid or a goal cannot be reached."""
    from dealdesk import whatif as answers

    application = settings.build(rulesets, no_plugin_rulesets=no_plugin_rulesets, engine=engine)
    wanted = [answers.parse_goal(g, application.policy_set.approvers) for g in goals]
    source = _one_deal(application, deal, deal_id)
    if source.error is not None:
        raise UsageError(source.error)
    result = answers.what_if(
        source.deal,
        application.decide,
        application.plugins.fact_types,
        ranks=application.policy_set.approvers,
        goals=wanted,
        limit=limit,
    )
    if fmt == "json":
        import json

        click.echo(json.dumps(answers.as_json(result), indent=2, ensure_ascii=False))
    else:
        click.echo(answers.format_text(result), nl=False)
    if result.status == "invalid" or any(a.goal is not None and not a.met for a in result.answers):
        raise SystemExit(1)


# ---------------------------------------------------------------------------------------------
# validate and test: the policy author's loop


@main.command()
@click.argument("rulesets", nargs=-1, metavar="[RULESETS]...")
@click.option(
    "--no-plugin-rulesets", is_flag=True, help="Leave out the rulesets that external plugins ship."
)
@click.option("--strict", is_flag=True, help="Count warnings as errors (exit status 1).")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Also say how the engine runs each policy and rule (columns or per deal).",
)
@engine_option
@click.pass_obj
def validate(
    settings: Settings,
    rulesets: tuple[str, ...],
    no_plugin_rulesets: bool,
    strict: bool,
    verbose: bool,
    engine: str | None,
) -> None:
    """Check RULESETS (files or directories; default: the house policy and plugins' rulesets).

    Prints each problem as file:line:col: message on standard output (the problems are this
    command's result, so they can be piped), the count on standard error, and exits with status
    1 when there is any. The other commands print ruleset problems on standard error.

    A set without errors is then analysed: decision-table overlaps, gaps and rows never reached,
    and conflicting writers of an output, each as file:line:col: warning: message. Warnings
    leave the exit status 0, unless --strict. With --verbose, how the engine runs the set:
    for the columnar engine, which rules are matched as columns and which per deal, and which
    policies' records come from group templates.
    """
    from dealdesk.ruletests import expectation_problems

    try:
        application = settings.build(rulesets, no_plugin_rulesets=no_plugin_rulesets, engine=engine)
    except ValidationFailed as exc:
        _fail_validation(exc.errors, exc.warnings)
    # the names in the tests' expect: are the ruleset's names too
    problems = expectation_problems(application)
    if problems:
        _fail_validation(problems)
    # lowering to the engine reports what this engine cannot run
    described = application.pipeline.engine.describe()
    from dealdesk.rules.analysis import analyse_policy_set

    warnings: list[Any] = sorted(
        [
            *application.policy_set.warnings,
            *analyse_policy_set(application.policy_set, application.plugins.fact_types),
        ],
        key=lambda w: (w.location, w.message),
    )
    for warning in warnings:
        click.echo(str(warning))
    if verbose:
        click.echo("\n".join(described))
    count = len(application.policy_set.rulesets)
    summary = f"{count} ruleset{'s' if count != 1 else ''} OK"
    if warnings:
        files = len({w.location.file for w in warnings})
        summary = (
            f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''} in {files} "
            f"file{'s' if files != 1 else ''}"
        )
        if strict:
            click.echo(f"{summary} (errors under --strict)", err=True)
            sys.exit(1)
        summary = f"{count} ruleset{'s' if count != 1 else ''} OK, {summary}"
    click.echo(summary)


def _fail_validation(
    errors: Sequence[RulesetError], warnings: Sequence[RulesetError] = ()
) -> NoReturn:
    """Print each problem on standard output (the warnings found with them too, in file
    order), the count of errors on standard error, and exit 1."""
    for problem in sorted([*errors, *warnings], key=lambda e: e.location):
        click.echo(str(problem))
    files = len({error.location.file for error in errors})
    count = len(errors)
    click.echo(
        f"{count} error{'s' if count != 1 else ''} in {files} file{'s' if files != 1 else ''}",
        err=True,
    )
    sys.exit(1)


@main.command("test")
@click.argument("rulesets", nargs=-1, metavar="[RULESETS]...")
@click.option("-v", "--verbose", is_flag=True, help="One line per case, PASS or FAIL file::name.")
@click.option(
    "-k",
    "expression",
    metavar="EXPR",
    help="Run only the cases whose file::name contains EXPR, ignoring case; words combine "
    "with and, or, not and parentheses, as in pytest ('risk and not gold').",
)
@click.option("--coverage", is_flag=True, help="Show which rules and table rows no case fired.")
@click.option(
    "--fail-under",
    type=click.FloatRange(0, 100),
    metavar="PCT",
    help="Exit 1 when the total coverage of rules and table rows is below PCT (implies --coverage).",
)
@click.option(
    "--no-plugin-rulesets", is_flag=True, help="Leave out the rulesets that external plugins ship."
)
@engine_option
@click.pass_obj
def test_command(
    settings: Settings,
    rulesets: tuple[str, ...],
    verbose: bool,
    expression: str | None,
    coverage: bool,
    fail_under: float | None,
    no_plugin_rulesets: bool,
    engine: str | None,
) -> None:
    """Run the tests: cases of RULESETS (default: every loaded ruleset's).

    Like pytest: a line per ruleset file with a . per passing case and F per failing one (-v: a
    line per case), then each failure with the expected fields against the actual ones as a
    diff, then the counts; exit status 1 when any case fails, 5 when no case ran (none
    written, or -k selected none).

    -k EXPR, as pytest's: words joined with and, or, not and parentheses, each matching the
    cases whose file::name holds it, ignoring case ("risk and not gold").
    """
    import time

    from dealdesk.rules.policyset import ruleset_files
    from dealdesk.ruletests import (
        expectation_problems,
        format_coverage,
        format_report,
        run_tests,
        selector,
        shown_path,
        summary_line,
    )

    started = time.perf_counter()
    application = settings.build(rulesets, no_plugin_rulesets=no_plugin_rulesets, engine=engine)
    chosen = application.policy_set.rulesets
    if rulesets:
        wanted = {file.resolve() for file in ruleset_files(rulesets)}
        chosen = [r for r in chosen if Path(r.file).resolve() in wanted]
    select = selector(expression, lambda r: shown_path(r.file)) if expression else None
    # names in expect: that nothing knows fail every case before one runs, as validation does
    problems = expectation_problems(application, chosen)
    if problems:
        raise ValidationFailed(problems)
    report = run_tests(application, chosen, select)
    color = sys.stdout.isatty()  # styles on a terminal only, never in a pipe or a file
    for line in format_report(report, verbose=verbose):
        click.echo(line, color=color)
    if coverage or fail_under is not None:
        for line in format_coverage(report):
            click.echo(line)
    if not report.results:
        count = len(chosen)
        text = f"no tests ran: no test cases in {count} ruleset{'s' if count != 1 else ''}"
        if report.deselected:
            cases = report.deselected
            text = f"no tests ran: -k selected none of {cases} case{'s' if cases != 1 else ''}"
        click.echo(text)
        # pytest's "no tests ran" status, so a CI job whose -k matches nothing does not pass
        sys.exit(NO_TESTS_RAN)
    else:
        click.echo(summary_line(report, time.perf_counter() - started), color=color)
    below = fail_under is not None and report.total_percent < fail_under
    if below:
        click.echo(
            f"coverage {report.total_percent:.1f}% is below --fail-under {fail_under:g}%", err=True
        )
    if report.failed or below:
        sys.exit(1)


@main.command()
@click.argument("deals", nargs=-1, required=True, metavar="DEALS...")
@click.option(
    "--base",
    multiple=True,
    required=True,
    metavar="RULESETS",
    help="The rulesets before the change: a file or directory, or REV:PATH read from the git "
    "repository of the current directory (HEAD:rulesets); repeatable. They replace the house "
    "policy, as -r does.",
)
@click.option(
    "--head",
    multiple=True,
    required=True,
    metavar="RULESETS",
    help="The rulesets after the change, given as --base is; repeatable.",
)
@click.option(
    "--no-plugin-rulesets", is_flag=True, help="Leave out the rulesets that external plugins ship."
)
@click.option(
    "-o",
    "--output",
    default="-",
    metavar="OUT",
    help="Write the report to OUT (default: standard output); the format follows its suffix "
    "(.txt, .jsonl, .html) unless --format is given.",
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["table", "jsonl", "html"], case_sensitive=False),
    default=None,
    help="table (default: the report as text), jsonl (one line per deal whose decision "
    "changed) or html (a self-contained page).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Worker processes for each side (default: half the CPUs each, at least one); 0 "
    "decides in this process.",
)
@click.option(
    "--fail-on-change", is_flag=True, help="Exit with status 1 when any decision changed."
)
@click.option("-q", "--quiet", is_flag=True, help="No count of changes on standard error.")
@engine_option
@click.pass_obj
def diff(
    settings: Settings,
    deals: tuple[str, ...],
    base: tuple[str, ...],
    head: tuple[str, ...],
    no_plugin_rulesets: bool,
    output: str,
    fmt: str | None,
    workers: int | None,
    fail_on_change: bool,
    quiet: bool,
    engine: str | None,
) -> None:
    """Which decisions a change to the rulesets alters: DEALS decided under --base and --head.

    Reports the status from→to matrix, approvals gained, lost and reordered, policies on one
    side only, the outputs that change, the rules responsible and the errors of deals invalid
    under head (docs/diff.md). A decision changed when its status, approvals or any output
    differs, or a policy decided it on one side only.
    """
    import contextlib

    from dealdesk import diff as diffs
    from dealdesk.engines import engine_name
    from dealdesk.io import executor as executors
    from dealdesk.io import output as outputs
    from dealdesk.io.batch import Progress
    from dealdesk.io.summary import WriteContext
    from dealdesk.manager import load_plugins

    _check_paths(deals, output)
    fmt = outputs.format_for(output, fmt, diffs.WRITERS, default="table")
    if fmt not in diffs.WRITERS:
        raise click.UsageError(f"{output}: diff writes table, jsonl or html; give --format")
    per_side = workers if workers is not None else max(1, executors.default_workers() // 2)
    # the engine and the plugins are the same on both sides: their errors name no side
    engine_name(engine)
    load_plugins(disabled=settings.disabled, enabled=settings.enabled)
    with contextlib.ExitStack() as stack:
        sides = []
        labels: dict[str, str] = {}  # temporary folder → the REV:PATH it holds, both sides
        for flag, specs in (("--base", base), ("--head", head)):
            with diffs.relabelled({}, flag):
                paths, side_labels = diffs.resolve_rulesets(specs, stack)
            labels.update(side_labels)
            options = {"no_plugin_rulesets": no_plugin_rulesets, "engine": engine}
            with diffs.relabelled(side_labels, flag):
                spec = settings.spec(paths, **options)
                application = settings.build(paths, **options)
            sides.append((application, spec))
        (base_app, _), (head_app, _) = sides
        report = diffs.DiffReport(
            WriteContext.of(head_app.policy_set),
            diffs.Comparison.of(base_app.policy_set, head_app.policy_set, labels),
            base_label=" ".join(base),
            head_label=" ".join(head),
            ranks=diffs.ApproverRanks(
                tuple(base_app.policy_set.approvers),
                tuple(head_app.policy_set.approvers),
                diffs.ranks_file(base_app.ruleset_files, labels),
                diffs.ranks_file(head_app.ruleset_files, labels),
            ),
        )
        reader = base_app.read(deals, lazy=per_side != 0)
        runners = [
            _executor(
                app_,
                spec_,
                "local",
                None,
                per_side,
                DEFAULT_DEAL_TIMEOUT,
                DEFAULT_WORKER_MEMORY,
                None,
                settings.debug,
            )
            for app_, spec_ in sides
        ]
        shown = sys.stderr.isatty() and not (output == "-" and sys.stdout.isatty())
        progress = Progress(lambda: (reader.bytes_read, reader.bytes_total)) if shown else None
        target = outputs.AtomicOutput(output)
        writer = diffs.WRITERS[fmt](target.open(), report)
        try:
            for position, before, after in diffs.decide_pairs(reader, *runners):
                change = report.take(position, before, after)
                if change is not None:
                    writer.write(change)
                if progress is not None:
                    progress.advance(position, position)
            writer.close()
        except KeyboardInterrupt:
            target.abort()
            kept = "" if output == "-" else f"; {output} is left as it was"
            click.echo(f"interrupted after {report.deals:,} deals{kept}", err=True)
            sys.exit(130)
        except BaseException:
            target.abort()
            raise
        finally:
            if progress is not None:
                progress.close()
        target.commit()
    if not quiet and (fmt != "table" or output != "-"):
        click.echo(report.headline(), err=True)
        if report.ranks is not None and report.ranks.changed:
            click.echo(f"approver ranks changed: {report.ranks.describe()}", err=True)
    if fail_on_change and report.changed:
        sys.exit(1)


# ---------------------------------------------------------------------------------------------
# schema and plugins


@main.command()
@click.argument("kind", type=click.Choice(["ruleset", "deal", "decision"]))
def schema(kind: str) -> None:
    """Print the JSON Schema of a ruleset file, a deal or a decision record."""
    import json

    if kind == "ruleset":
        from dealdesk.rules.model import RULESET_SCHEMA

        document = RULESET_SCHEMA
    elif kind == "deal":
        from dealdesk.deal.schema import deal_json_schema

        document = deal_json_schema()
    else:
        from dealdesk.record import DecisionRecord

        document = DecisionRecord.json_schema()
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the plugins as JSON.")
@click.pass_obj
def plugins(settings: Settings, as_json: bool) -> None:
    """List the plugins: name, version, built-in or external, policy families and hooks.

    A plugin that fails to import or while registering (its dealdesk_policies raises, say) is
    listed all the same, its failure printed as an error line; the exit status is then 1 (2
    when a plugin does not import, as for every command).
    """
    from dealdesk.errors import PluginError
    from dealdesk.manager import collect_plugins, get_plugin_manager
    from dealdesk.pluginlist import plugins_json, plugins_table

    # a diagnostic command: one broken plugin must not hide the others, nor its own entry
    failures: list[PluginError] = []
    pm = get_plugin_manager(disabled=settings.disabled, enabled=settings.enabled, failures=failures)
    info = collect_plugins(pm, failures=failures).plugin_info()
    click.echo(
        plugins_json(info, failures) if as_json else plugins_table(info, failures), nl=as_json
    )
    debug = _debugging(click.get_current_context())
    for failure in failures:
        if debug:
            import traceback

            traceback.print_exception(failure, file=sys.stderr)
        _error(str(failure))
    if failures:
        # as any command would for the worst of them: 2 for a plugin that does not import
        sys.exit(max(failure.exit_code for failure in failures))
