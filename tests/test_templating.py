"""Tests for dealdesk.templating: sandboxed messages, clause templates and the decision memo."""

from __future__ import annotations

import copy
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import dealdesk.plugins
from dealdesk.errors import TemplateError
from dealdesk.templating import _CLAUSE_ID, ENGINE_TEMPLATES, FORMATS, Renderer, template_context

PLUGINS = Path(dealdesk.plugins.__file__).parent
TEMPLATE_DIRS = [
    PLUGINS / "billing_milestone" / "templates",
    PLUGINS / "onsite_support" / "templates",
    PLUGINS / "partner_margin" / "templates",
]
ORIGIN = "rulesets/partner-margin.yaml:12:15 rule PM-1"

CLAUSE_IDS = [
    "billing/effort",
    "billing/gain-share",
    "billing/milestones",
    "billing/standard",
    "partner/margin-exception",
    "support/integration-customer",
    "support/integration-vendor",
    "support/personnel-security",
    "support/proactive-schedule",
    "support/resident-engineer",
    "support/service-contract",
]


def make_deal(**changes: Any) -> dict[str, Any]:
    """An evaluated risk-offer deal: inputs plus derived facts, money as Decimal."""
    deal: dict[str, Any] = {
        "id": "D-1001",
        "currency": "USD",
        "customer": {
            "name": "Acme Robotics",
            "segment": "elephant",
            "region": "us-east",
            "hq_country": "US",
            "government": True,
            "platinum_club": False,
            "presales_consulting": True,
        },
        "offer": {"type": "new_market", "pricing": "fixed"},
        "partner": {
            "name": "Delta Systems Integration",
            "kind": "system_integrator",
            "tier": "select",
            "discount": Decimal("0.18"),
        },
        "support": {"model": "proactive"},
        "billing": {"payment_terms_days": 45},
        "lines": [
            {
                "sku": "EDGE-APL",
                "category": "hardware",
                "quantity": Decimal(4),
                "unit_price": Decimal(250000),
                "unit_cost": Decimal(162500),
                "amount": Decimal(1000000),
                "margin": Decimal("0.35"),
            },
            {
                "sku": "ARCH-BLOCK",
                "category": "labor",
                "resource": "architect",
                "grade": 12,
                "hours": Decimal(640),
                "quantity": Decimal(1),
                "unit_price": Decimal(89600),
                "unit_cost": Decimal(67200),
                "amount": Decimal(89600),
                "margin": Decimal("0.25"),
            },
        ],
        "totals": {
            "product": Decimal(1000000),
            "services": Decimal(89600),
            "support": Decimal(0),
            "subscription": Decimal(0),
            "contract": Decimal(1089600),
            "cost": Decimal(717200),
        },
        "margin": Decimal("0.3417767988252569750367107195"),
        "services_ratio": Decimal("0.0822"),
        "max_line_discount": Decimal(0),
        "risk_offer": True,
        "labor_margin": Decimal("0.25"),
        "dates": {"close": "2026-12-15", "start": "2027-01-15"},
    }
    deal.update(changes)
    return deal


BILLING_OUTPUTS: dict[str, Any] = {
    "milestones": [
        {"name": "signature", "percent": 30, "amount": "300000.00"},
        {"name": "delivery", "percent": 30, "amount": "300000.00"},
        {"name": "installation", "percent": 30, "amount": "300000.00"},
        {"name": "final_acceptance", "percent": 10, "amount": "100000.00"},
    ],
    "invoice_models": {"hardware": "milestone", "labor": "monthly_in_arrears"},
    "payment_terms_days": 45,
}
SUPPORT_OUTPUTS: dict[str, Any] = {
    "support_model": "proactive",
    "resident_engineer": {"fte": 1.0, "months": 12, "grade": 11, "cost_center": "project"},
    "service_contract_value": "300000.00",
    "integration_owner": "vendor",
}
MARGIN_OUTPUTS: dict[str, Any] = {
    "margin": 0.3418,
    "margin_floor": 0.4,
    "max_extra_discount": 0.0,
    "partner_discount_cap": 0.25,
    "labor_margin": 0.25,
}
OUTPUTS_BY_FAMILY = {
    "billing": BILLING_OUTPUTS,
    "support": SUPPORT_OUTPUTS,
    "partner": MARGIN_OUTPUTS,
}

# The numbers (and words) each clause must show, whatever the format.
EXPECTED: dict[str, list[str]] = {
    "billing/milestones": [
        "300,000.00 USD",
        "100,000.00 USD",
        "1,000,000.00 USD",
        "30%",
        "10%",
        "45 days",
        "thirty (30) days after go-live",
    ],
    "billing/standard": ["100%", "1,000,000.00 USD", "on delivery", "45 days"],
    "billing/effort": ["89,600.00 USD", "640", "architect", "monthly in arrears", "same period"],
    "billing/gain-share": ["Measured Financial Gain", "baseline", "audit", "1,089,600.00 USD"],
    "support/resident-engineer": [
        "1.0 FTE",
        "grade 11",
        "first 12 months after go-live",
        "project cost center",
    ],
    "support/service-contract": ["300,000.00 USD", "30%", "proactive"],
    "support/integration-vendor": ["pre-sales consulting", "existing equipment"],
    "support/integration-customer": [
        "responsible for integrating",
        "already owns",
        "separate order",
    ],
    "support/personnel-security": ["background checks", "security clearance", "grade 11"],
    "support/proactive-schedule": [
        "thirty (30) days",
        "account support plan",
        "semiannual reviews",
    ],
    "partner/margin-exception": ["Delta Systems Integration", "18%", "25%", "34.18%", "40%"],
}


@pytest.fixture
def renderer() -> Renderer:
    """A renderer over the built-in plugins' template directories."""
    return Renderer(TEMPLATE_DIRS)


def clause_context(clause_id: str, deal: dict[str, Any] | None = None) -> dict[str, Any]:
    """The context the runtime builds for ``clause_id``: deal, outputs of its policy, rule, decision."""
    outputs = OUTPUTS_BY_FAMILY[clause_id.split("/")[0]]
    decision = {"status": "needs_approval", "approvals": ["deal_desk"], "reasons": []}
    return template_context(deal or make_deal(), outputs=outputs, rule="R-1", decision=decision)


# --- clauses -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["md", "html"])
@pytest.mark.parametrize("clause_id", CLAUSE_IDS)
def test_every_clause_renders_with_its_key_numbers(
    renderer: Renderer, clause_id: str, fmt: str
) -> None:
    clause = renderer.render_clause(clause_id, clause_context(clause_id), fmt)

    assert set(clause) == {"title", "text"}
    assert clause["title"] and clause["title"] == clause["title"].strip()
    assert clause["text"] == clause["text"].strip()
    assert "Acme Robotics" in clause["text"]
    for expected in EXPECTED[clause_id]:
        assert expected in clause["text"], f"{clause_id} ({fmt}) lacks {expected!r}"
    assert "<script" not in clause["text"]
    if fmt == "html":
        assert clause["text"].startswith("<")
    else:
        assert "<p>" not in clause["text"]


def test_clause_ids_lists_every_clause_in_both_formats(renderer: Renderer) -> None:
    assert renderer.clause_ids("md") == CLAUSE_IDS
    assert renderer.clause_ids("html") == CLAUSE_IDS


def test_milestone_table_has_one_row_per_milestone(renderer: Renderer) -> None:
    two = {
        **BILLING_OUTPUTS,
        "milestones": BILLING_OUTPUTS["milestones"][:1]
        + [{"name": "final_acceptance", "percent": 50, "amount": "150000.00"}],
    }
    text = renderer.render_clause("billing/milestones", template_context(make_deal(), outputs=two))[
        "text"
    ]

    rows = [line for line in text.splitlines() if line.startswith("| ") and "USD" in line]
    assert rows == [
        "| Contract signature | 30% | 300,000.00 USD |",
        "| Final acceptance | 50% | 150,000.00 USD |",
        "| **Total** | **100%** | **1,000,000.00 USD** |",
    ]
    assert "Installation" not in text  # no installation milestone, no installation paragraph


def test_personnel_security_without_a_resident_engineer(renderer: Renderer) -> None:
    outputs = {**SUPPORT_OUTPUTS, "resident_engineer": None}
    text = renderer.render_clause(
        "support/personnel-security", template_context(make_deal(), outputs=outputs)
    )["text"]
    assert "background checks" in text
    assert "resident engineer" not in text


def test_margin_exception_for_a_direct_deal(renderer: Renderer) -> None:
    deal = make_deal()
    del deal["partner"]
    outputs = {**MARGIN_OUTPUTS, "partner_discount_cap": None}
    for fmt in ("md", "html"):
        text = renderer.render_clause(
            "partner/margin-exception", template_context(deal, outputs=outputs), fmt
        )["text"]
        assert "direct sale" in text
        assert "Partner discount cap" not in text


def minimal_deal(**changes: Any) -> dict[str, Any]:
    """A valid deal with only the fields the schema requires (id, lines) and its derived facts."""
    deal = make_deal()
    for key in ("customer", "offer", "partner", "support", "billing", "dates"):
        del deal[key]
    for line in deal["lines"]:
        for key in ("sku", "resource", "grade", "hours"):
            line.pop(key, None)
    deal.update(changes)
    return deal


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("clause_id", CLAUSE_IDS)
@pytest.mark.parametrize("extra", [{}, {"customer": {}, "partner": {}}], ids=["absent", "empty"])
def test_every_clause_renders_for_a_deal_with_only_the_required_fields(
    renderer: Renderer, clause_id: str, fmt: str, extra: dict[str, Any]
) -> None:
    # the outputs are the ones the rule asking for the clause guarantees
    clause = renderer.render_clause(
        clause_id, clause_context(clause_id, minimal_deal(**extra)), fmt
    )

    assert clause["title"] and clause["text"]
    assert "the Customer" in clause["text"] or "The Customer" in clause["text"]
    assert "Acme Robotics" not in clause["text"] and "None" not in clause["text"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_clause_without_a_customer_name_says_the_customer(renderer: Renderer, fmt: str) -> None:
    context = clause_context("support/integration-customer", minimal_deal())
    text = renderer.render_clause("support/integration-customer", context, fmt)["text"]
    assert text.startswith(f"{'<p>' if fmt == 'html' else ''}The Customer is responsible")
    context = clause_context("support/proactive-schedule", minimal_deal())
    text = renderer.render_clause("support/proactive-schedule", context, fmt)["text"]
    assert "delivers to the Customer an account support plan" in text
    effort = renderer.render_clause("billing/effort", clause_context("billing/effort"), fmt)
    bare = renderer.render_clause(
        "billing/effort", clause_context("billing/effort", minimal_deal()), fmt
    )
    assert "ARCH-BLOCK" in effort["text"] and "architect" in effort["text"]
    assert "ARCH-BLOCK" not in bare["text"] and "labor" in bare["text"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("partner", "cap", "sentence"),
    [
        (
            {"name": "Delta", "tier": "gold", "kind": "reseller", "discount": Decimal("0.1")},
            0.15,
            "sold through Delta, a gold reseller, at a partner discount of 10% against a cap of "
            "15% for its tier.",
        ),
        ({}, None, "sold through a partner with no partner discount requested."),
        (
            {"tier": "gold"},
            0.15,
            "sold through a gold partner with no partner discount requested (the cap for its "
            "tier is 15%).",
        ),
        (
            {"name": "Delta", "discount": Decimal("0.1")},
            None,
            "sold through Delta, a partner, at a partner discount of 10%.",
        ),
        (
            {"kind": "system_integrator", "discount": Decimal("0.1")},
            None,
            "sold through a system integrator at a partner discount of 10%.",
        ),
    ],
)
def test_margin_exception_for_a_partner_with_some_fields(
    renderer: Renderer, fmt: str, partner: dict[str, Any], cap: float | None, sentence: str
) -> None:
    outputs = {**MARGIN_OUTPUTS, "partner_discount_cap": cap}
    context = template_context(minimal_deal(partner=partner), outputs=outputs)
    text = renderer.render_clause("partner/margin-exception", context, fmt)["text"]
    assert f"This Order for the Customer is {sentence}" in text


def test_html_escapes_a_script_in_the_customer_name_and_markdown_does_not(
    renderer: Renderer,
) -> None:
    deal = make_deal(customer={**make_deal()["customer"], "name": "<script>alert(1)</script> & Co"})
    context = template_context(deal, outputs=SUPPORT_OUTPUTS)

    html = renderer.render_clause("support/integration-vendor", context, "html")["text"]
    markdown = renderer.render_clause("support/integration-vendor", context, "md")["text"]

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in html
    assert "<script>alert(1)</script> & Co" in markdown


def test_unknown_clause_is_a_template_error(renderer: Renderer) -> None:
    with pytest.raises(TemplateError, match=r"billing/nope\.md\.j2"):
        renderer.render_clause("billing/nope", clause_context("billing/milestones"))
    with pytest.raises(TemplateError, match="invalid clause id"):
        renderer.render_clause("../../etc/passwd", {})


def test_unknown_format_is_refused(renderer: Renderer) -> None:
    with pytest.raises(ValueError, match="unknown template format 'pdf'"):
        renderer.render_clause("billing/standard", clause_context("billing/standard"), "pdf")


def test_clause_without_a_title_block_gets_a_title_from_its_id(tmp_path: Path) -> None:
    (tmp_path / "custom").mkdir()
    (tmp_path / "custom" / "untitled.md.j2").write_text("{% block text %}hello{% endblock %}\n")
    assert Renderer([tmp_path]).render_clause("custom/untitled", {}) == {
        "title": "Untitled",
        "text": "hello",
    }


# --- strictness and error locations --------------------------------------------------------


def test_missing_variable_names_template_and_line(tmp_path: Path) -> None:
    (tmp_path / "custom").mkdir()
    (tmp_path / "custom" / "broken.md.j2").write_text(
        "{% block title %}Broken{% endblock %}\n{% block text %}\nfirst line\n{{ missing_thing }}\n{% endblock %}\n"
    )
    with pytest.raises(TemplateError) as info:
        Renderer([tmp_path]).render_clause("custom/broken", template_context(make_deal()))
    assert str(info.value) == "template custom/broken.md.j2 line 4: 'missing_thing' is undefined"


def test_missing_output_in_a_real_clause_names_its_line(renderer: Renderer) -> None:
    source = (TEMPLATE_DIRS[0] / "billing" / "milestones.md.j2").read_text().splitlines()
    line = next(number for number, text in enumerate(source, 1) if "outputs.milestones" in text)

    with pytest.raises(TemplateError) as info:
        renderer.render_clause(
            "billing/milestones", template_context(make_deal(), outputs={"payment_terms_days": 45})
        )
    assert str(info.value) == (
        f"template billing/milestones.md.j2 line {line}: 'dict object' has no attribute 'milestones'"
    )


def test_absent_partner_is_an_error_not_an_empty_string(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "p.md.j2").write_text(
        "{% block title %}T{% endblock %}\n{% block text %}{{ partner.name }}{% endblock %}\n"
    )
    deal = make_deal()
    del deal["partner"]
    with pytest.raises(TemplateError, match=r"template x/p\.md\.j2 line 2: 'partner' is undefined"):
        Renderer([tmp_path]).render_clause("x/p", template_context(deal))


def test_syntax_error_in_a_template_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "bad.html.j2").write_text(
        "{% block title %}T{% endblock %}\n\n{% block text %}{{ oops }{% endblock %}\n"
    )
    with pytest.raises(TemplateError, match=r"^template x/bad\.html\.j2 line 3: "):
        Renderer([tmp_path]).render_clause("x/bad", {}, "html")


def test_filter_failure_names_template_and_line(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "m.md.j2").write_text(
        "{% block title %}T{% endblock %}\n{% block text %}\n\n{{ customer.name|money }}\n{% endblock %}\n"
    )
    with pytest.raises(
        TemplateError,
        match=r"template x/m\.md\.j2 line 4: money: not a decimal number: 'Acme Robotics'",
    ):
        Renderer([tmp_path]).render_clause("x/m", template_context(make_deal()))


# --- the sandbox ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ ''|attr('__class__') }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ customer.__class__.__subclasses__() }}",
        "{{ self._TemplateReference__context }}",
        "{{ '{0.__class__}'.format(customer) }}",
    ],
)
def test_sandbox_blocks_python_internals(renderer: Renderer, source: str) -> None:
    with pytest.raises(TemplateError, match=rf"^{ORIGIN}: .*unsafe"):
        renderer.render_message(source, template_context(make_deal()), ORIGIN)


def test_sandbox_blocks_escapes_in_template_files(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "evil.md.j2").write_text(
        "{% block title %}T{% endblock %}\n{% block text %}{{ cycler.__init__.__globals__ }}{% endblock %}\n"
    )
    with pytest.raises(
        TemplateError, match=r"template x/evil\.md\.j2 line 2: access to attribute '__init__'"
    ):
        Renderer([tmp_path]).render_clause("x/evil", {})


def test_templates_cannot_modify_the_deal(renderer: Renderer) -> None:
    deal = make_deal()
    before = copy.deepcopy(deal)
    context = template_context(deal)
    for source in (
        "{{ customer.update({'name': 'Mallory'}) }}",
        "{{ lines.append(1) }}",
        "{{ customer.pop('name') }}",
    ):
        with pytest.raises(TemplateError, match="unsafe"):
            renderer.render_message(source, context, ORIGIN)
    assert deal == before


@pytest.mark.parametrize(
    "source", ["{{ 'a' * 10**9 }}", "{{ 10 ** 1000 }}", "{{ range(10**9)|list }}"]
)
def test_sandbox_bounds_runaway_arithmetic(renderer: Renderer, source: str) -> None:
    with pytest.raises(TemplateError, match=f"^{ORIGIN}: "):
        renderer.render_message(source, {}, ORIGIN)


# --- messages ------------------------------------------------------------------------------


def test_message_renders_deal_fields(renderer: Renderer) -> None:
    source = "Risk-model offers are sold only through SELECT system integrators; {{ partner.name }} is {{ partner.tier }}."
    deal = make_deal(partner={**make_deal()["partner"], "tier": "gold"})

    text = renderer.render_message(source, template_context(deal, rule="PM-1"), ORIGIN)

    assert (
        text
        == "Risk-model offers are sold only through SELECT system integrators; Delta Systems Integration is gold."
    )


def test_message_uses_filters_outputs_and_rule(renderer: Renderer) -> None:
    source = "{{ rule }}: margin {{ margin|percent }} is below {{ outputs.margin_floor|percent }} on {{ totals.contract|money }}."
    context = template_context(make_deal(), outputs=MARGIN_OUTPUTS, rule="PM-3")
    assert renderer.render_message(source, context, ORIGIN) == (
        "PM-3: margin 34.18% is below 40% on 1,089,600.00 USD."
    )


def test_message_compiled_once_and_rendered_per_context(renderer: Renderer) -> None:
    source = "{{ customer.name | upper }}"  # a filter only Jinja has: compiled by Jinja
    first = renderer.render_message(source, template_context(make_deal()), ORIGIN)
    other = make_deal(customer={"name": "Globex"})
    second = renderer.render_message(source, template_context(other), ORIGIN)
    assert (first, second) == ("ACME ROBOTICS", "GLOBEX")
    assert list(renderer._messages) == [source]
    # a message that only prints values is read once too, and never goes to Jinja
    renderer.render_message("{{ customer.name }}", template_context(other), ORIGIN)
    assert list(renderer._quick) == [source, "{{ customer.name }}"]
    assert list(renderer._messages) == [source]


def test_message_errors_carry_the_origin(renderer: Renderer) -> None:
    deal = make_deal()
    del deal["partner"]
    with pytest.raises(TemplateError) as info:
        renderer.render_message(
            "{{ partner.name }} is {{ partner.tier }}.", template_context(deal), ORIGIN
        )
    assert str(info.value) == f"{ORIGIN}: 'partner' is undefined"

    with pytest.raises(TemplateError, match=rf"^{ORIGIN}: unexpected '\)'"):
        renderer.render_message("{{ partner.name ) }}", {}, ORIGIN)

    with pytest.raises(TemplateError, match=rf"^{ORIGIN}: line 3: 'nope' is undefined"):
        renderer.render_message("a\nb\n{{ nope }}", {}, ORIGIN)


def test_message_with_defined_test_for_a_direct_deal(renderer: Renderer) -> None:
    deal = make_deal()
    del deal["partner"]
    source = "{% if partner is defined %}via {{ partner.name }}{% else %}direct{% endif %}"
    assert renderer.render_message(source, template_context(deal), ORIGIN) == "direct"


# --- filters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "currency", "expected"),
    [
        ("value|money", "USD", "1,234,567.89 USD"),
        ("value|money", "JPY", "1,234,568 JPY"),
        ("value|money", "BHD", "1,234,567.891 BHD"),
        ("value|money('EUR')", "USD", "1,234,567.89 EUR"),
        ("'300000.00'|money", "USD", "300,000.00 USD"),
        ("300000|money", "JPY", "300,000 JPY"),
        ("0.125|money", "USD", "0.13 USD"),
        ("-0.001|money", "USD", "0.00 USD"),
        ("-1500.5|money", "USD", "-1,500.50 USD"),
    ],
)
def test_money_filter(renderer: Renderer, expression: str, currency: str, expected: str) -> None:
    context = {"value": Decimal("1234567.8905"), "currency": currency}
    assert renderer.render_message("{{ " + expression + " }}", context, ORIGIN) == expected


def test_money_filter_refuses_what_is_not_money(renderer: Renderer) -> None:
    with pytest.raises(TemplateError, match="no currency argument"):
        renderer.render_message("{{ 5|money }}", {}, ORIGIN)
    with pytest.raises(TemplateError, match="unknown currency 'usd'"):
        renderer.render_message("{{ 5|money('usd') }}", {}, ORIGIN)
    with pytest.raises(TemplateError, match="money: expected a number, got boolean"):
        renderer.render_message("{{ true|money }}", {"currency": "USD"}, ORIGIN)
    with pytest.raises(TemplateError, match="money: expected a number, got NoneType"):
        renderer.render_message("{{ none|money }}", {"currency": "USD"}, ORIGIN)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.3, "30%"),
        (0.125, "12.5%"),
        (Decimal("0.3417767988"), "34.18%"),
        (Decimal("0.30000000000000004"), "30%"),
        (1, "100%"),
        (0, "0%"),
        (-0.05, "-5%"),
        ("0.4", "40%"),
        (0.00004, "0%"),
    ],
)
def test_percent_filter(renderer: Renderer, value: Any, expected: str) -> None:
    assert renderer.render_message("{{ value|percent }}", {"value": value}, ORIGIN) == expected


def test_percent_filter_digits(renderer: Renderer) -> None:
    assert renderer.render_message("{{ 0.123456|percent(3) }}", {}, ORIGIN) == "12.346%"
    assert renderer.render_message("{{ 0.125|percent(0) }}", {}, ORIGIN) == "13%"


@pytest.mark.parametrize(
    "value",
    ["2027-01-15", date(2027, 1, 15), datetime(2027, 1, 15, 9, 30), "2027-01-15T09:30:00"],
)
def test_date_filter(renderer: Renderer, value: Any) -> None:
    assert (
        renderer.render_message("{{ value|date }}", {"value": value}, ORIGIN) == "15 January 2027"
    )


def test_date_filter_on_the_deal_and_bad_input(renderer: Renderer) -> None:
    assert (
        renderer.render_message("{{ dates.start|date }}", template_context(make_deal()), ORIGIN)
        == "15 January 2027"
    )
    with pytest.raises(TemplateError, match="date: 'soon' is not an ISO date"):
        renderer.render_message("{{ 'soon'|date }}", {}, ORIGIN)


def test_plugin_filters_are_added_and_may_override_builtins(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f.html.j2").write_text(
        "{% block title %}{{ customer.name|shout }}{% endblock %}\n{% block text %}{{ totals.product|money }}{% endblock %}\n"
    )
    renderer = Renderer(
        [tmp_path],
        filters={"shout": lambda text: f"{text.upper()}!", "money": lambda value: f"<{value}>"},
    )

    clause = renderer.render_clause("x/f", template_context(make_deal()), "html")

    # A plugin filter's output is autoescaped in HTML like any other value.
    assert clause == {"title": "ACME ROBOTICS!", "text": "&lt;1000000&gt;"}
    assert renderer.render_message("{{ 'ok'|shout }}", {}, ORIGIN) == "OK!"


# --- template directories ------------------------------------------------------------------


def test_has_clause(renderer: Renderer) -> None:
    for clause_id in CLAUSE_IDS:
        assert renderer.has_clause(clause_id)
        assert renderer.has_clause(clause_id, "html")
    assert not renderer.has_clause("billing/nope")
    assert not renderer.has_clause("memo")  # the memo is not a clause
    assert not renderer.has_clause("../billing/milestones")
    assert not Renderer([]).has_clause("billing/milestones")


def test_has_clause_answers_as_the_jinja_loader_does(tmp_path: Path) -> None:
    from jinja2.exceptions import TemplateNotFound

    (tmp_path / "x" / "y").mkdir(parents=True)
    (tmp_path / "x" / "y" / "z.md.j2").write_text("{% block title %}{% endblock %}")
    (tmp_path / "x" / "dir.md.j2").mkdir()  # a directory named like a template is none
    renderer = Renderer([tmp_path, *TEMPLATE_DIRS])
    names = [*CLAUSE_IDS, "x/y/z", "x/y", "x/dir", "billing/nope", "memo", "../billing/standard"]
    for clause_id in names:
        for fmt in FORMATS:
            try:
                renderer._loader.get_source(renderer._env(fmt), f"{clause_id}.{fmt}.j2")
                found = True
            except TemplateNotFound:
                found = False
            expected = found and bool(_CLAUSE_ID.fullmatch(clause_id))
            assert renderer.has_clause(clause_id, fmt) == expected, (clause_id, fmt)
    with pytest.raises(ValueError, match="unknown template format"):
        renderer.has_clause("billing/standard", "pdf")


@given(st.text(alphabet=st.characters(exclude_characters="{")))
def test_a_message_without_a_brace_is_valid_as_jinja_finds_it(text: str) -> None:
    renderer = Renderer(TEMPLATE_DIRS)
    assert renderer.message_problem(text) is None
    renderer._markdown.from_string(text)  # what the check would have compiled


def test_plain_text_needs_no_jinja() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from dealdesk.templating import Renderer\n"
        "r = Renderer([])\n"
        "assert r.message_problem('Margin below the floor.') is None\n"
        "assert not r.has_clause('billing/standard')\n"
        "print('jinja2' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False"]


def test_first_directory_wins(tmp_path: Path) -> None:
    (tmp_path / "billing").mkdir()
    (tmp_path / "billing" / "standard.md.j2").write_text(
        "{% block title %}Our billing{% endblock %}\n{% block text %}Net {{ outputs.payment_terms_days }}.{% endblock %}\n"
    )
    only_md = {"payment_terms_days": 30}

    overriding = Renderer([tmp_path, *TEMPLATE_DIRS]).render_clause(
        "billing/standard", template_context(make_deal(), outputs=only_md)
    )
    overridden = Renderer([*TEMPLATE_DIRS, tmp_path]).render_clause(
        "billing/standard", template_context(make_deal(), outputs=only_md)
    )

    assert overriding == {"title": "Our billing", "text": "Net 30."}
    assert overridden["title"] == "Standard Billing"
    # The override exists only in Markdown; HTML still comes from the plugin.
    assert Renderer([tmp_path, *TEMPLATE_DIRS]).has_clause("billing/standard", "html")


def test_engine_templates_come_last() -> None:
    renderer = Renderer(TEMPLATE_DIRS)
    assert renderer.template_dirs == (*TEMPLATE_DIRS, ENGINE_TEMPLATES)


# --- template_context ----------------------------------------------------------------------


def test_template_context() -> None:
    deal = make_deal()
    before = copy.deepcopy(deal)

    plain = template_context(deal)
    full = template_context(deal, outputs={"x": 1}, rule="BM-1", decision={"status": "approved"})

    assert plain["customer"]["name"] == "Acme Robotics"
    assert plain["totals"]["product"] == Decimal(1000000)
    assert plain["outputs"] == {}
    assert "rule" not in plain and "decision" not in plain
    assert (full["outputs"], full["rule"], full["decision"]) == (
        {"x": 1},
        "BM-1",
        {"status": "approved"},
    )
    assert deal == before


# --- the memo ------------------------------------------------------------------------------


def approved_record() -> dict[str, Any]:
    """A standard deal every policy approved, with no clauses rendered."""
    return {
        "deal_id": "D-2002",
        "status": "approved",
        "approvals": [],
        "policies": {
            "billing-milestone": {
                "status": "approved",
                "fired": ["BM-3"],
                "outputs": {"payment_terms_days": 30},
            },
            "partner-margin": {
                "status": "approved",
                "fired": [],
                "outputs": {**MARGIN_OUTPUTS, "partner_discount_cap": None},
            },
        },
        "reasons": [],
        "flags": [],
        "clauses": [],
        "errors": [],
        "provenance": {
            "rulesets": {"partner-margin": "2026.11.0"},
            "digest": "sha256:0f1e",
            "dealdesk": "0.1.0",
        },
    }


def needs_approval_record() -> dict[str, Any]:
    """A risk-offer deal below the margin floor, with clauses from two policies."""
    return {
        "deal_id": "D-1001",
        "status": "needs_approval",
        "approvals": ["deal_desk", "vp_finance", "public_sector_legal"],
        "policies": {
            "billing-milestone": {
                "status": "approved",
                "fired": ["BM-1", "BM-4"],
                "outputs": BILLING_OUTPUTS,
            },
            "onsite-support": {
                "status": "needs_approval",
                "fired": ["OS-2", "OS-3", "OS-7"],
                "outputs": SUPPORT_OUTPUTS,
            },
            "partner-margin": {
                "status": "needs_approval",
                "fired": ["PM-3", "PM-13"],
                "outputs": MARGIN_OUTPUTS,
            },
        },
        "reasons": [
            {
                "policy": "partner-margin",
                "rule": "PM-3",
                "message": "Margin 34.18% is below the floor of 40%.",
            }
        ],
        "flags": [
            {
                "policy": "partner-margin",
                "rule": "PM-10",
                "message": "Hardware line EDGE-APL has a margin under 30%.",
            }
        ],
        "clauses": [
            {
                "id": "billing/milestones",
                "policy": "billing-milestone",
                "rule": "BM-1",
                "title": "Milestone Billing",
                "text": "(md text)",
            },
            {
                "id": "support/resident-engineer",
                "policy": "onsite-support",
                "rule": "OS-2",
                "title": "Resident Engineer",
                "text": "(md text)",
            },
            {
                "id": "legacy/none",
                "policy": "onsite-support",
                "rule": "OS-9",
                "title": "Legacy <clause>",
                "text": "Kept as <given>.",
            },
        ],
        "errors": [],
        "provenance": {
            "rulesets": {"billing-milestone": "2026.11.0"},
            "digest": "sha256:abcd",
            "dealdesk": "0.1.0",
        },
    }


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_memo_for_an_approved_record_without_clauses(renderer: Renderer, fmt: str) -> None:
    deal = make_deal(offer={"type": "standard", "pricing": "fixed"})
    del deal["partner"]

    memo = renderer.render_memo(approved_record(), deal, fmt)

    assert "D-2002" in memo
    assert "Approved" in memo
    assert "none required" in memo
    assert "direct deal" in memo
    assert "No rule gave a reason." in memo
    assert "Payment terms: 30 days" in memo
    assert "Partner discount cap: n/a" in memo
    assert "Clauses" not in memo
    assert "Flags" not in memo
    assert "sha256:0f1e" in memo
    assert memo.endswith("\n") and not memo.endswith("\n\n")


def test_memo_markdown_for_a_record_with_clauses(renderer: Renderer) -> None:
    memo = renderer.render_memo(needs_approval_record(), make_deal(), "md")

    assert memo.startswith("# Decision memo: D-1001\n")
    assert "| Status | **Needs approval** |" in memo
    assert "| Approvals | deal_desk, vp_finance, public_sector_legal |" in memo
    assert "- **PM-3** (partner-margin): Margin 34.18% is below the floor of 40%." in memo
    assert "- **PM-10** (partner-margin): Hardware line EDGE-APL has a margin under 30%." in memo
    assert "### billing-milestone: Approved" in memo
    assert "| Final acceptance | 10% | 100,000.00 USD |" in memo
    assert (
        "- Resident engineer: 1.0 FTE, grade 11, onsite 12 months after go-live, cost center project"
        in memo
    )
    assert "- Service contract value: 300,000.00 USD" in memo
    assert "- Margin: 34.18%" in memo and "- Margin floor: 40%" in memo
    # Clauses are rendered afresh from their templates, titles and full text.
    assert "### Milestone Billing" in memo and "### Resident Engineer" in memo
    assert "thirty (30) days after go-live" in memo
    assert "(md text)" not in memo
    # A clause without a template keeps the record's own text.
    assert "### Legacy <clause>" in memo and "Kept as <given>." in memo
    assert "\n\n\n" not in memo


def test_memo_html_is_a_self_contained_page(renderer: Renderer) -> None:
    deal = make_deal(customer={**make_deal()["customer"], "name": "<script>x()</script>Acme"})

    page = renderer.render_memo(needs_approval_record(), deal, "html")

    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    assert "<style>" in page
    assert "<script" not in page
    assert "&lt;script&gt;x()&lt;/script&gt;Acme" in page
    assert 'class="status status-needs-approval"' in page
    assert (
        '<td>Final acceptance</td><td class="num">10%</td><td class="num">100,000.00 USD</td>'
        in page
    )
    # Clause HTML is inserted as markup, not escaped twice; record text without a template is escaped.
    assert "<h3>Milestone Billing</h3>" in page
    assert "<p>For the first 12 months after go-live" in page
    assert "Legacy &lt;clause&gt;" in page and "Kept as &lt;given&gt;." in page


def test_memo_html_ids_are_unique_when_a_clause_is_asked_for_twice(renderer: Renderer) -> None:
    import re

    record = needs_approval_record()
    first = record["clauses"][0]
    record["clauses"] += [
        {**first, "rule": "BM-2"},  # the same clause, asked for by a second rule
        {**first, "id": "billing-milestones", "rule": "X-1"},  # reads like billing/milestones
    ]
    page = renderer.render_memo(record, make_deal(), "html")
    ids = re.findall(r' id="([^"]+)"', page)
    assert len(ids) == len(set(ids)), ids
    assert [i for i in ids if i.startswith("clause-billing")] == [
        "clause-billing-milestones",
        "clause-billing-milestones-2",
        "clause-billing-milestones-3",
    ]


def test_memo_for_an_invalid_record_without_deal_fields(renderer: Renderer) -> None:
    record = {
        "deal_id": "D-9",
        "status": "invalid",
        "approvals": [],
        "policies": {},
        "reasons": [],
        "flags": [],
        "clauses": [],
        "errors": [{"path": "lines[2].unit_cost", "message": "required for hardware lines"}],
        "provenance": {"rulesets": {}, "digest": "sha256:00", "dealdesk": "0.1.0"},
    }
    for fmt in ("md", "html"):
        memo = renderer.render_memo(record, {"id": "D-9"}, fmt)
        assert "Invalid" in memo
        assert "lines[2].unit_cost" in memo


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_memo_shows_the_partner_of_a_deal_without_a_customer_name(
    renderer: Renderer, fmt: str
) -> None:
    deal = make_deal()
    del deal["customer"]
    memo = renderer.render_memo(approved_record(), deal, fmt)
    assert "Customer" not in memo
    assert deal["partner"]["name"] in memo
    direct = make_deal()
    del direct["customer"], direct["partner"]
    assert "direct deal" in renderer.render_memo(approved_record(), direct, fmt)
    assert "direct deal" not in renderer.render_memo(approved_record(), {"id": "D-9"}, fmt)


# --- the message check, remembered ------------------------------------------------------------


def test_a_message_that_compiled_is_not_compiled_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEALDESK_CACHE_DIR", str(tmp_path))
    message = "Margin {{ margin | percent }} is low."
    assert Renderer(TEMPLATE_DIRS).message_problem(message) is None
    assert len(list((tmp_path / "message-ok").iterdir())) == 1

    def no_compile(self: Renderer, source: str) -> None:
        raise AssertionError("compiled again")

    monkeypatch.setattr(Renderer, "_message_template", no_compile)
    assert Renderer(TEMPLATE_DIRS).message_problem(message) is None
    # another message, or other filter names, is checked again
    again = "AssertionError: compiled again"
    assert Renderer(TEMPLATE_DIRS).message_problem(message + " ") == again
    assert Renderer(TEMPLATE_DIRS, {"shout": str.upper}).message_problem(message) == again


def test_a_message_with_a_problem_is_never_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEALDESK_CACHE_DIR", str(tmp_path))
    for _ in range(2):
        assert (
            Renderer(TEMPLATE_DIRS).message_problem("{{ x | shout }}")
            == "No filter named 'shout' (did you mean 'sort'?)"
        )
    assert not (tmp_path / "message-ok").exists()
    # the same text is fine where the filter exists, and remembered for those filters only
    assert Renderer(TEMPLATE_DIRS, {"shout": str.upper}).message_problem("{{ x | shout }}") is None
    assert Renderer(TEMPLATE_DIRS).message_problem("{{ x | shout }}") == (
        "No filter named 'shout' (did you mean 'sort'?)"
    )


def test_every_template_file_is_compiled_whether_asked_for_or_not(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for folder, files in (
        (
            ours,
            {
                "x/unused.md.j2": "fine\n{% if id %}never closed\n",
                "x/action.md.j2": "{{ id|shuot }}\n",
                "x/test.html.j2": "{{ id is nosuchtest }}\n",
                "x/fine.md.j2": "{{ id|shout }}\n",
                "x/notes.txt": "{% not a template %}",
            },
        ),
        # shadowed by ours, but shipped all the same
        (theirs, {"x/fine.md.j2": "{{ id }\n"}),
    ):
        for name, text in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
    renderer = Renderer([ours, theirs], {"shout": str.upper})
    assert [str(p) for p in renderer.template_problems()] == [
        f"{ours}/x/action.md.j2:1:1: template x/action.md.j2: No filter named 'shuot'. "
        "(did you mean 'shout'?)",
        f"{ours}/x/test.html.j2:1:1: template x/test.html.j2: No test named 'nosuchtest'.",
        f"{ours}/x/unused.md.j2:2:1: template x/unused.md.j2: Unexpected end of template. Jinja "
        "was looking for the following tags: 'elif' or 'else' or 'endif'. The innermost block "
        "that needs to be closed is 'if'.",
        f"{theirs}/x/fine.md.j2:1:1: template x/fine.md.j2: unexpected '}}'",
    ]
    (ours / "x" / "action.md.j2").write_text("{{ id|shout }}\n")
    for name in ("test.html.j2", "unused.md.j2"):
        (ours / "x" / name).unlink()
    (theirs / "x" / "fine.md.j2").write_text("{{ id }}\n")
    assert Renderer([ours, theirs], {"shout": str.upper}).template_problems() == []


def test_the_shipped_templates_all_compile() -> None:
    assert Renderer(TEMPLATE_DIRS).template_problems() == []
