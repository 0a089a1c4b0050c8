"""The integrator's contract as SPEC §3/§7/§8 state it, through the real CLI on every engine:
undeclared outputs, clause templates without blocks, template problems at load time, the
reasons of approvals, ``dealdesk plugins`` and ``--debug`` anywhere on the command line."""

from __future__ import annotations

import itertools
import json
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from dealdesk.cli import main
from dealdesk.engines import available_engines
from dealdesk.templating import Renderer, clause_title
from dealdesk.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parents[1]
ACME = ROOT / "examples" / "deals" / "acme-risk.yaml"
NO_AUTOLOAD = {"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1", "DEALDESK_ENGINE": None}
_names = itertools.count()

DEAL = """\
id: C-1
currency: USD
customer: {name: Acme, segment: elephant, region: emea}
offer: {type: standard, pricing: fixed}
lines:
  - {sku: HW, category: hardware, quantity: 2, unit_price: 100, list_price: 125, unit_cost: 60}
dates: {close: 2026-12-15}
"""


@pytest.fixture
def run(cli_runner: CliRunner) -> Callable[..., Result]:
    def invoke(*args: str | Path) -> Result:
        return cli_runner.run(*map(str, args), env=NO_AUTOLOAD)

    return invoke


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """``plugin(source, rulesets={}, templates={})``: a plugin package in ``tmp_path`` on
    ``sys.path``; ``{RULESETS}``/``{TEMPLATES}`` in ``source`` are its folders. Returns the
    module name, for ``-p``."""

    def make(
        source: str, rulesets: dict[str, str] | None = None, templates: dict[str, str] | None = None
    ) -> str:
        name = f"contract_plugin_{next(_names)}"
        package = tmp_path / "site" / name
        for folder, files in (("rulesets", rulesets or {}), ("templates", templates or {})):
            for relative, text in files.items():
                path = package / folder / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(textwrap.dedent(text))
        (package / "rulesets").mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text(
            "from pathlib import Path\nfrom dealdesk import hookimpl\n"
            "HERE = Path(__file__).parent\n" + textwrap.dedent(source)
        )
        monkeypatch.syspath_prepend(str(tmp_path / "site"))
        monkeypatch.delitem(sys.modules, name, raising=False)
        return name

    return make


def deal_file(tmp_path: Path) -> Path:
    path = tmp_path / "deal.yaml"
    path.write_text(DEAL)
    return path


def only(tmp_path: Path, name: str) -> list[str]:
    """The options that load the rulesets of plugin ``name`` alone (no house policy)."""
    return ["-r", str(tmp_path / "site" / name / "rulesets"), "--no-plugin-rulesets"]


def evaluate_everywhere(run: Callable[..., Result], *args: str | Path) -> dict:
    """The one record ``evaluate`` writes, checked to be the same bytes on every engine."""
    outputs = {}
    for engine in available_engines():
        result = run(*args[:2], "evaluate", *args[2:], "--engine", engine)
        assert result.exit_code == 0, result.stderr
        outputs[engine] = result.stdout
    assert len(set(outputs.values())) == 1, outputs
    assert len(outputs) >= 1
    (line,) = next(iter(outputs.values())).splitlines()
    return json.loads(line)


# --- 1. undeclared outputs combine with `first` (SPEC §3) ------------------------------------

UNDECLARED_SOURCE = """
@hookimpl
def dealdesk_policies(register):
    register("contract", description="contract probe", rulesets=HERE / "rulesets")

@hookimpl
def dealdesk_actions(register):
    register("ticket", ticket)

def ticket(ctx):
    ctx.set("ticket", "T-" + ctx.deal["id"])
    ctx.set("ticket", "ignored: a later value of the same firing")
"""

UNDECLARED_RULES = """\
ruleset: contract
policy: contract
version: "1"
rules:
  - id: LOW
    priority: 1
    when: totals.contract > 0
    then: {set: {score: 1, note: "= totals.contract * 2"}}
  - id: HIGH
    priority: 5
    when: totals.contract > 0
    then: {set: {score: 5}, action: ticket}
tables:
  - id: TAB
    hit: first
    inputs: [totals.contract]
    rows:
      - when: ["> 1000"]
        then: {set: {band: large}}
      - when: ["-"]
        then: {set: {band: small}}
"""


def test_undeclared_outputs_from_rules_tables_and_actions_combine_with_first(
    run: Callable[..., Result], plugin: Callable[..., str], tmp_path: Path
) -> None:
    name = plugin(UNDECLARED_SOURCE, rulesets={"contract.yaml": UNDECLARED_RULES})
    record = evaluate_everywhere(run, "-p", name, deal_file(tmp_path), *only(tmp_path, name))
    assert record["status"] == "approved", record
    # HIGH has the higher priority, so its score wins; the action's first `set` is first
    assert record["policies"]["contract"]["outputs"] == {
        "score": 5,
        "ticket": "T-C-1",
        "note": 400,
        "band": "small",
    }


def test_a_near_miss_of_a_declared_output_is_a_warning_that_says_both_ways_out(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    # SPEC §3 allows an undeclared output (combined with `first`); a near miss of a declared
    # one is more likely a typo, so validate says so, and how to keep it as a new output
    (tmp_path / "rs").mkdir()
    path = tmp_path / "rs" / "typo.yaml"
    path.write_text(
        "ruleset: typo\npolicy: partner-margin\nversion: '1'\n"
        "outputs:\n  margin_floor: {combine: max}\n"
        "rules:\n  - id: T-1\n    when: margin < 0.3\n    then: {set: {margin_flor: 0.4}}\n"
    )
    result = run("validate", tmp_path / "rs")
    assert result.exit_code == 0
    assert result.stdout == (
        f"{path}:9:31: warning: output 'margin_flor' is not declared under outputs: did you mean "
        "'margin_floor'? (or declare 'margin_flor' under outputs:)\n"
        "1 ruleset OK, 1 warning in 1 file\n"
    )
    assert run("validate", "--strict", tmp_path / "rs").exit_code == 1


# --- 2. clause templates without blocks; template problems at load time (SPEC §8) ----------


@pytest.mark.parametrize(
    ("clause_id", "title"),
    [
        ("saas/ltv", "Ltv"),
        ("support/personnel-security", "Personnel security"),
        ("billing/gain_share", "Gain share"),
        ("export/EAR-screening", "EAR screening"),
        ("a/b/deep--id_", "Deep id"),
    ],
)
def test_the_title_of_a_clause_comes_from_the_last_segment_of_its_id(
    clause_id: str, title: str
) -> None:
    assert clause_title(clause_id) == title


def test_templates_with_and_without_blocks(tmp_path: Path) -> None:
    saas = tmp_path / "saas"
    saas.mkdir()
    (saas / "ltv.md.j2").write_text(
        "{% set n = 3 %}Lifetime value over {{ n }} years for {{ id }}.\n"
    )
    (saas / "titled.md.j2").write_text(
        "{% block title %}Custom {{ id }}{% endblock %}\nThe rest is text for {{ id }}.\n"
    )
    (saas / "text-only.md.j2").write_text("ignored\n{% block text %}Only {{ id }}{% endblock %}\n")
    renderer = Renderer([tmp_path])
    assert renderer.render_clause("saas/ltv", {"id": "D-1"}) == {
        "title": "Ltv",
        "text": "Lifetime value over 3 years for D-1.",
    }
    assert renderer.render_clause("saas/titled", {"id": "D-1"}) == {
        "title": "Custom D-1",
        "text": "The rest is text for D-1.",
    }
    assert renderer.render_clause("saas/text-only", {"id": "D-1"}) == {
        "title": "Text only",
        "text": "Only D-1",
    }


CLAUSE_SOURCE = """
@hookimpl
def dealdesk_policies(register):
    register("contract", rulesets=HERE / "rulesets", templates=HERE / "templates")
"""


def clause_rules(*clauses: str) -> dict[str, str]:
    rules = "".join(
        f"  - id: C-{i}\n    when: totals.contract > 0\n    then: {{clause: {clause}}}\n"
        for i, clause in enumerate(clauses)
    )
    return {"contract.yaml": f"ruleset: contract\npolicy: contract\nversion: '1'\nrules:\n{rules}"}


def test_a_clause_without_blocks_renders_on_every_engine(
    run: Callable[..., Result], plugin: Callable[..., str], tmp_path: Path
) -> None:
    name = plugin(
        CLAUSE_SOURCE,
        rulesets=clause_rules("saas/ltv"),
        templates={
            "saas/ltv.md.j2": "Lifetime value for {{ customer.name }}: {{ totals.contract|money }}.\n"
        },
    )
    record = evaluate_everywhere(
        run, "-p", name, deal_file(tmp_path), *only(tmp_path, name), "--clauses"
    )
    assert record["status"] == "approved", record
    assert record["clauses"] == [
        {
            "id": "saas/ltv",
            "policy": "contract",
            "rule": "C-0",
            "title": "Ltv",
            "text": "Lifetime value for Acme: 200.00 USD.",
        }
    ]
    memo = run("-p", name, "render", deal_file(tmp_path), *only(tmp_path, name))
    assert memo.exit_code == 0, memo.stderr
    assert "### Ltv\n" in memo.stdout


def test_template_problems_are_validation_errors_at_the_rule_that_asks(
    run: Callable[..., Result], plugin: Callable[..., str], tmp_path: Path
) -> None:
    name = plugin(
        CLAUSE_SOURCE,
        rulesets=clause_rules("x/syntax", "x/filter", "x/include", "x/fine", "x/filter"),
        templates={
            "x/syntax.md.j2": "line one\n{% if id %}never closed\n",
            "x/filter.md.j2": "{{ id }}\n{{ id|no_such_filter }}\n",
            "x/include.md.j2": "{% block text %}\n{% include 'x/missing.md.j2' %}{% endblock %}\n",
            "x/fine.md.j2": "{% include 'x/part.md.j2' %}\n{% include 'x/gone.md.j2' ignore missing %}",
            "x/part.md.j2": "{{ id }}",
            "x/filter.html.j2": "{{ id }}",
        },
    )
    result = run("-p", name, "validate", *only(tmp_path, name)[1:])
    assert result.exit_code == 1
    path = tmp_path / "site" / name / "rulesets" / "contract.yaml"
    prefix = "clause template"
    assert result.stdout.splitlines() == [
        f"{path}:7:20: {prefix} 'x/syntax' cannot render: template x/syntax.md.j2 line 2: "
        "Unexpected end of template. Jinja was looking for the following tags: 'elif' or 'else' "
        "or 'endif'. The innermost block that needs to be closed is 'if'.",
        f"{path}:10:20: {prefix} 'x/filter' cannot render: template x/filter.md.j2 line 2: "
        "No filter named 'no_such_filter'.",
        f"{path}:13:20: {prefix} 'x/include' cannot render: template x/include.md.j2 line 2: "
        "include of 'x/missing.md.j2', which is in none of the template directories",
    ]


# --- 5. every approval has a reason -------------------------------------------------------

REASONLESS_RULES = """\
ruleset: contract
policy: contract
version: "1"
rules:
  - id: DESCRIBED
    description: >-
      Hardware deals need
      the deal desk.
    when: totals.product > 0
    then: {require: deal_desk}
  - id: BARE
    when: totals.product > 0
    then: {require: [legal, cfo]}
  - id: EXPLAINED
    when: totals.product > 0
    then: {require: vp_sales, reason: "Explained in the rule's own words."}
tables:
  - id: TAB
    description: Discount authority.
    hit: first
    inputs: [max_line_discount]
    rows:
      - when: ["> 0.1"]
        then: {require: sales_manager}
"""

REASONLESS_SOURCE = """
@hookimpl
def dealdesk_policies(register):
    register("contract", rulesets=HERE / "rulesets")
"""


def test_a_require_without_a_reason_gets_one_from_its_rule(
    run: Callable[..., Result], plugin: Callable[..., str], tmp_path: Path
) -> None:
    name = plugin(REASONLESS_SOURCE, rulesets={"contract.yaml": REASONLESS_RULES})
    record = evaluate_everywhere(run, "-p", name, deal_file(tmp_path), *only(tmp_path, name))
    assert [(r["rule"], r["message"]) for r in record["reasons"]] == [
        ("DESCRIBED", "Hardware deals need the deal desk."),
        ("BARE", "BARE requires legal and cfo"),
        ("EXPLAINED", "Explained in the rule's own words."),
        ("TAB", "Discount authority."),
    ]
    memo = run("-p", name, "render", deal_file(tmp_path), *only(tmp_path, name))
    assert memo.exit_code == 0, memo.stderr
    assert "No rule gave a reason" not in memo.stdout
    assert "- **BARE** (contract): BARE requires legal and cfo" in memo.stdout


# --- 3. dealdesk plugins ------------------------------------------------------------------

OVERRIDING_SOURCE = """
@hookimpl
def dealdesk_policies(register):
    register("partner-margin", description="Our own margins.\\x1b[31m", rulesets=HERE / "rulesets")
    register("contract", description="contract probe")

@hookimpl
def dealdesk_decision(record):
    pass
"""


def test_plugins_lists_kind_families_descriptions_and_hooks(
    run: Callable[..., Result], plugin: Callable[..., str]
) -> None:
    name = plugin(OVERRIDING_SOURCE)
    result = run("-p", name, "plugins")
    assert result.exit_code == 0, result.stderr
    plugins, families = result.stdout.split("\n\n")
    rows = [line.split() for line in plugins.splitlines()]
    assert rows[0] == ["NAME", "VERSION", "KIND", "POLICY", "FAMILIES", "HOOKS"]
    assert rows[3] == [
        "partner_margin", "0.1.0", "built-in", "partner-margin", "dealdesk_policies"
    ]  # fmt: skip
    assert rows[4] == [
        name, "-", "external", "partner-margin,", "contract", "dealdesk_decision,",
        "dealdesk_policies",
    ]  # fmt: skip
    lines = families.splitlines()
    assert lines[0].split() == ["POLICY", "FAMILY", "PLUGIN", "DESCRIPTION"]
    assert lines[3].split(None, 2) == [
        "partner-margin",
        "partner_margin",
        f"(overridden by {name}) Margin floors, partner gates and discount authority.",
    ]
    # a description cannot send escape sequences to the terminal
    assert lines[4].split(None, 2) == ["partner-margin", name, "Our own margins.?[31m"]
    assert lines[5].split(None, 2) == ["contract", name, "contract probe"]

    listed = json.loads(run("-p", name, "plugins", "--json").stdout)
    assert [entry["name"] for entry in listed][-1] == name
    assert listed[-1] == {
        "name": name,
        "version": None,
        "builtin": False,
        "policies": [
            {
                "name": "partner-margin",
                "description": "Our own margins.\x1b[31m",
                "overridden_by": None,
            },
            {"name": "contract", "description": "contract probe", "overridden_by": None},
        ],
        "hooks": ["dealdesk_decision", "dealdesk_policies"],
        "errors": [],
    }
    assert listed[2]["builtin"] is True
    assert listed[2]["policies"][0]["overridden_by"] == name


# --- 4. --debug anywhere on the command line ------------------------------------------------

#: Arguments that reach each command's work (the broken plugin fails it there).
COMMAND_ARGS: dict[str, list[str]] = {
    "evaluate": [str(ACME)],
    "explain": [str(ACME)],
    "render": [str(ACME)],
    "validate": [],
    "test": [],
    "plugins": [],
}


def test_every_command_takes_debug() -> None:
    for name, command in main.commands.items():
        assert any(param.opts == ["--debug"] for param in command.params), name


@pytest.mark.parametrize("command", sorted(COMMAND_ARGS))
def test_debug_after_the_command_shows_the_traceback(
    run: Callable[..., Result], command: str
) -> None:
    broken = ("-p", "no_such_plugin_module_for_debug")
    quiet = run(*broken, command, *COMMAND_ARGS[command])
    assert quiet.exit_code == 2
    assert "Traceback" not in quiet.stderr
    for args in (
        [*broken, command, *COMMAND_ARGS[command], "--debug"],
        [*broken, command, "--debug", *COMMAND_ARGS[command]],
        [*broken, "--debug", command, *COMMAND_ARGS[command]],
    ):
        loud = run(*args)
        assert loud.exit_code == 2, args
        assert "Traceback (most recent call last)" in loud.stderr, args
        assert loud.stderr.endswith(
            'error: Error importing plugin "no_such_plugin_module_for_debug": '
            "ModuleNotFoundError: No module named 'no_such_plugin_module_for_debug'\n"
        )


def test_schema_accepts_debug_after_the_command(run: Callable[..., Result]) -> None:
    result = run("schema", "deal", "--debug")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["type"] == "object"


BROKEN_SOURCE = """\
from dealdesk import hookimpl

@hookimpl
def dealdesk_policies(register):
    raise RuntimeError("boom")
"""


def test_plugins_still_lists_every_plugin_when_one_fails_and_exits_1(
    run: Callable[..., Result], plugin: Callable[..., str]
) -> None:
    broken = plugin(BROKEN_SOURCE)
    working = plugin(OVERRIDING_SOURCE)
    result = run("-p", broken, "-p", working, "plugins")
    assert result.exit_code == 1
    rows = [line.split() for line in result.stdout.split("\n\n")[0].splitlines()]
    assert [row[0] for row in rows[1:]] == [
        "billing_milestone", "onsite_support", "partner_margin", broken, working
    ]  # fmt: skip
    assert rows[4][:5] == [broken, "-", "external", "(failed", "in"]
    assert result.stderr == (
        f"error: plugin '{broken}' failed in dealdesk_policies: RuntimeError: boom\n"
    )
    listed = json.loads(run("-p", broken, "-p", working, "plugins", "--json").stdout)
    assert [entry["errors"] for entry in listed][-2:] == [
        [f"plugin '{broken}' failed in dealdesk_policies: RuntimeError: boom"],
        [],
    ]


ACTION_CLAUSE_SOURCE = """
@hookimpl
def dealdesk_policies(register):
    register("contract", rulesets=HERE / "rulesets", templates=HERE / "templates")

@hookimpl
def dealdesk_actions(register):
    register("paper", lambda ctx: ctx.clause(ctx.args["clause"]))
"""


def action_rules(clause: str) -> dict[str, str]:
    return {
        "contract.yaml": "ruleset: contract\npolicy: contract\nversion: '1'\nrules:\n"
        "  - id: A-1\n    when: totals.contract > 0\n"
        f"    then: {{action: paper, with: {{clause: {clause}}}}}\n"
    }


def test_a_template_no_rule_asks_for_is_still_compiled_at_load(
    run: Callable[..., Result], plugin: Callable[..., str], tmp_path: Path
) -> None:
    name = plugin(
        ACTION_CLAUSE_SOURCE,
        rulesets=action_rules("x/asked"),
        templates={"x/asked.md.j2": "{{ id|no_such_filter }}\n", "x/unused.md.j2": "{% if %}\n"},
    )
    for command in ("validate", "evaluate"):
        extra = [deal_file(tmp_path)] if command == "evaluate" else []
        result = run("-p", name, command, *extra, *only(tmp_path, name)[1:])
        assert result.exit_code == 1
        folder = tmp_path / "site" / name / "templates" / "x"
        assert (result.stdout if command == "validate" else result.stderr).splitlines() == [
            f"{folder}/asked.md.j2:1:1: template x/asked.md.j2: No filter named 'no_such_filter'.",
            f"{folder}/unused.md.j2:1:1: template x/unused.md.j2: Expected an expression, got "
            "'end of statement block'",
        ]


@pytest.mark.parametrize("clause", ["x/nonexist", "not-a-clause-id"])
def test_a_clause_an_action_asks_for_without_a_template_is_the_same_error_with_or_without_clauses(
    run: Callable[..., Result], plugin: Callable[..., str], tmp_path: Path, clause: str
) -> None:
    name = plugin(
        ACTION_CLAUSE_SOURCE,
        rulesets=action_rules(clause),
        templates={"x/real.md.j2": "Real.\n"},
    )
    assert run("-p", name, "validate", *only(tmp_path, name)[1:]).exit_code == 0
    records = [
        evaluate_everywhere(run, "-p", name, deal_file(tmp_path), *only(tmp_path, name), *flags)
        for flags in ((), ("--clauses",))
    ]
    assert records[0] == records[1]
    record = records[0]
    assert record["status"] == "invalid"
    assert record["errors"] == [
        {
            "path": "",
            "message": f"plugin '{name}' failed in action 'paper' (rule A-1): asked for the "
            f"clause {clause!r}, but no template directory holds {clause}.md.j2",
            "plugin": name,
        }
    ]


def test_plugins_lists_a_plugin_that_does_not_import_or_validate_last(
    run: Callable[..., Result], plugin: Callable[..., str]
) -> None:
    unimportable = plugin("import no_such_module_anywhere\n")
    misspelt = plugin("@hookimpl\ndef dealdesk_polices(register):\n    pass\n")
    working = plugin(OVERRIDING_SOURCE)
    result = run("-p", unimportable, "-p", misspelt, "-p", working, "plugins")
    assert result.exit_code == 2  # a plugin that does not import, as for every command
    rows = [line.split() for line in result.stdout.split("\n\n")[0].splitlines()]
    assert [row[:5] for row in rows[4:]] == [
        [working, "-", "external", "partner-margin,", "contract"],
        [unimportable, "-", "external", "(failed", "in"],
        [misspelt, "-", "external", "(failed", "in"],
    ]
    assert result.stderr.splitlines() == [
        f'error: Error importing plugin "{unimportable}": ModuleNotFoundError: No module named '
        "'no_such_module_anywhere'",
        f"error: plugin '{misspelt}' failed in registration: unknown hook 'dealdesk_polices' "
        "(did you mean 'dealdesk_policies'?)",
    ]
    # every other command still stops at the first broken plugin
    assert run("-p", unimportable, "validate").exit_code == 2
