"""The sandbox bounds the work and output of every render (SPEC §8, §9).

Every hostile template runs in one child process with a time and memory limit (tests/bounded.py):
without its bound, each would hang or take gigabytes, and the test must fail instead.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from bounded import run_python

from dealdesk.errors import TemplateError
from dealdesk.sandbox import MAX_OUTPUT, MAX_RANGE, MAX_STEPS
from dealdesk.templating import Renderer

ORIGIN = "rulesets/x.yaml:3:5 rule X-1"

HOSTILE = {
    # work
    "nested ranges": "{% for i in range(10**6) %}{% for j in range(10**6) %}x{% endfor %}{% endfor %}",
    "nested loops": "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    "a loop over a long string": "{% for c in big %}{% endfor %}",
    "recursion in two branches": "{% macro m(n) %}{{ m(n) }}{{ m(n) }}{% endmacro %}{{ m(1) }}",
    # output, also when buffered
    "a macro's buffer": "{% macro m() %}{% for i in range(5000) %}{{ big }}{% endfor %}{% endmacro %}{% set y = m() %}",
    "printed output": "{% for i in range(5000) %}{{ big }}{% endfor %}",
    # one operation
    "center filter": '{{ "x"|center(10**9) }}',
    "center method": '{{ "x".center(10**9) }}',
    "ljust method": '{{ "x".ljust(10**9) }}',
    "zfill method": '{{ "x".zfill(10**9) }}',
    "format width": '{{ "{:>1000000000}".format(1) }}',
    "computed format width": '{{ "{:{}}".format(1, 10**9) }}',
    "format fields": '{{ "{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}".format(big) }}',
    "percent width": '{{ "%1000000000d" % 1 }}',
    "percent star": '{{ "%*d" % (10**9, 1) }}',
    "format filter": '{{ "%1000000000d"|format(1) }}',
    "replace filter": '{{ big|replace("x", "y" * 1000) }}',
    "replace method": '{{ big.replace("x", "y" * 1000) }}',
    "translate method": '{{ big.translate({120: "y" * 1000}) }}',
    "join filter": '{{ range(10000)|join("y" * 1000) }}',
    "join method": '{{ ("y" * 1000).join(range(10000)|map("string")) }}',
    "indent filter": '{{ (("x" ~ nl) * 50000)|indent(1000) }}',
    "wordwrap filter": '{{ big|wordwrap(1, true, "y" * 100) }}',
    "batch filter": '{{ [1]|batch(10**9, "x")|list|length }}',
    "slice filter": "{{ [1]|slice(10**9)|list|length }}",
    "tojson indent": "{{ [[[[1]]]]|tojson(10**9) }}",
    "lipsum": "{{ lipsum(10**6) }}",
    "to_bytes": '{{ (10).to_bytes(10**9, "big") }}',
    "doubling with ~": '{% set ns = namespace(s="x") %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}',
    "doubling with +": '{% set ns = namespace(s="x") %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}',
    "squaring": "{% set ns = namespace(n=10**100) %}{% for i in range(60) %}{% set ns.n = ns.n * ns.n %}{% endfor %}",
    "powers": "{% set ns = namespace(n=10**100) %}{% for i in range(60) %}{% set ns.n = ns.n ** 100 %}{% endfor %}",
}  # fmt: skip


@pytest.fixture(scope="module")
def hostile_results() -> dict[str, str]:
    """How each hostile message ends, rendered in one bounded child: "ok" or the error."""
    out = run_python(
        f"""
        import json
        from dealdesk.errors import TemplateError
        from dealdesk.templating import Renderer

        renderer, results = Renderer([]), {{}}
        context = {{"big": "x" * 200_000, "nl": "\\n"}}
        for name, source in {HOSTILE!r}.items():
            try:
                renderer.render_message(source, context, {ORIGIN!r})
                results[name] = "ok"
            except TemplateError as exc:
                results[name] = str(exc)
        print(json.dumps(results))
        """,
        timeout=60,
    )
    return json.loads(out)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_message_is_a_template_error_naming_its_rule(
    hostile_results: dict[str, str], name: str
) -> None:
    assert hostile_results[name].startswith(f"{ORIGIN}: "), hostile_results[name]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nested ranges", f"range() of 1,000,000 items is more than the sandbox allows ({MAX_RANGE:,})"),
        ("nested loops", f"rendering stopped after {MAX_STEPS:,} loop iterations and calls (the limit per render)"),
        ("a macro's buffer", f"rendering stopped past {MAX_OUTPUT:,} characters of output (the limit per render)"),
        ("center filter", f"center would make 1,000,000,000 characters, more than the sandbox allows ({MAX_OUTPUT:,})"),
        ("doubling with ~", f"~ would make 1,048,576 characters, more than the sandbox allows ({MAX_OUTPUT:,})"),
    ],
)  # fmt: skip
def test_the_error_says_which_limit(
    hostile_results: dict[str, str], name: str, message: str
) -> None:
    assert hostile_results[name] == f"{ORIGIN}: {message}"


@pytest.fixture
def renderer() -> Renderer:
    return Renderer([])


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{% for i in range(10000) %}x{% endfor %}", "x" * 10_000),
        ("{{ range(3)|join(', ') }} {{ lines|map(attribute='sku')|join('/') }}", "0, 1, 2 A/B"),
        ('{{ "%s-%05.1f"|format("a", 3.14159) }} {{ "%(n)s" % {"n": 7} }}', "a-003.1 7"),
        ('{{ "{:>6}|{:.2f}".format("ab", 2.5) }}', "    ab|2.50"),
        ("{{ 'ab'|center(6) }}|{{ 'ab'.ljust(4) }}|{{ '7'.zfill(3) }}", "  ab  |ab  |007"),
        ("{{ 'a b'|replace(' ', '_') }} {{ ('x' ~ 'y') * 2 }} {{ 2 ** 10 * 3 }}", "a_b xyxy 3072"),
        ("{% for l in lines %}{{ loop.index }}/{{ loop.length }} {% endfor %}", "1/2 2/2 "),
        (
            "{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(1) }}{% set s %}{{ m(2) }}{% endset %}{{ s }}",
            "<1><2>",
        ),
    ],
)
def test_real_templates_render_as_before(renderer: Renderer, source: str, expected: str) -> None:
    context = {"lines": [{"sku": "A"}, {"sku": "B"}]}
    assert renderer.render_message(source, context, ORIGIN) == expected


def test_the_budget_is_per_render(renderer: Renderer) -> None:
    source = "{% for i in range(10000) %}{% for j in range(6) %}{% endfor %}{% endfor %}"
    for _ in range(3):  # 70,000 steps each: three renders would pass MAX_STEPS together
        assert renderer.render_message(source, {}, ORIGIN) == ""


def test_deep_nesting_and_endless_recursion_say_so(renderer: Renderer) -> None:
    deep = "{{ " + "(" * 300 + "1" + ")" * 300 + " }}"
    assert renderer.message_problem(deep) == (
        "nested or recursing too deeply (past Python's recursion limit)"
    )
    with pytest.raises(TemplateError) as info:
        renderer.render_message("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", {}, ORIGIN)
    assert str(info.value) == (
        f"{ORIGIN}: nested or recursing too deeply (past Python's recursion limit)"
    )


def test_a_hostile_clause_names_its_template_and_line(tmp_path: Path) -> None:
    clause = tmp_path / "x" / "loop.md.j2"
    clause.parent.mkdir()
    clause.write_text(
        "{% block title %}Loop{% endblock %}\n{% block text %}\n"
        "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}\n"
        "{% endblock %}\n",
        encoding="utf-8",
    )
    with pytest.raises(TemplateError) as info:
        Renderer([tmp_path]).render_clause("x/loop", {})
    assert str(info.value) == (
        "template x/loop.md.j2 line 3: rendering stopped after 100,000 loop iterations and "
        "calls (the limit per render)"
    )


def test_a_hostile_message_costs_its_deal_and_validation_stays_small(tmp_path: Path) -> None:
    ruleset = tmp_path / "rs" / "hostile.yaml"
    ruleset.parent.mkdir()
    ruleset.write_text(
        textwrap.dedent(
            """
            ruleset: hostile
            policy: test
            version: "1"
            rules:
              - id: H-1
                when: 'matches(customer.name, "^Loop")'
                then:
                  flag: "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}"
              - id: H-2
                when: 'matches(customer.name, "^Wide")'
                then:
                  reason: '{{ "x"|center(10**9) }}'
            """
        ),
        encoding="utf-8",
    )
    # in a child with 512 MiB: unbounded, the loop makes 10**8 pieces and center 1 GB (which
    # Jinja even tries while compiling the message, at load)
    out = run_python(
        f"""
        import json
        from helpers import deal, evaluator

        ev = evaluator(__import__("pathlib").Path({str(ruleset.parent)!r}))
        for name in ("Loop Inc", "Wide Corp", "Fine Ltd"):
            record = ev.evaluate(deal(customer={{"name": name, "segment": "deer", "region": "emea"}}))
            print(json.dumps([record["status"], [e["message"] for e in record["errors"]]]))
        """,
        timeout=60,
    )
    loop, wide, fine = (json.loads(line) for line in out.splitlines())
    where = f"{ruleset}:6:5 rule H-1"
    assert loop == ["invalid", [f"{where}: rendering stopped after 100,000 loop iterations and calls (the limit per render)"]]  # fmt: skip
    assert wide[0] == "invalid"
    assert wide[1][0].endswith("center would make 1,000,000,000 characters, more than the sandbox allows (1,000,000)")  # fmt: skip
    assert fine == ["approved", []]
