"""Messages that only print values render without Jinja, and give exactly Jinja's text; whatever
the quick path cannot be sure of goes to Jinja (its errors included)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dealdesk.app import build
from dealdesk.errors import TemplateError
from dealdesk.messages import QuickMessage
from dealdesk.templating import Renderer

ORIGIN = "rulesets/partner-margin.yaml:12:15 rule PM-1"
NAMES = ["a", "b", "currency", "outputs", "items", "keys", "none", "range", "x_1"]
VALUES: list[Any] = [
    None,
    True,
    0,
    7,
    Decimal("0.30"),
    Decimal("1234567.891"),
    Decimal("-0.004"),
    Decimal("1E+3"),
    0.35,
    "",
    "text {{ not a tag }}",
    "USD",
    "JPY",
    "XXX",
    [1, 2],
]

path = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(".".join)
tag = st.builds(
    lambda p, f, pad: "{{" + pad + p + pad + f + pad + "}}",
    path,
    st.sampled_from(
        [
            "",
            "|money",
            " | percent",
            "| default('the partner')",
            "|default('(empty)')",
            "|upper",
            "|money('EUR')",
        ]
    ),
    st.sampled_from(["", " ", "  "]),
)
text = st.text(alphabet="ab {}%#\n\r-.'", max_size=8)
source = st.lists(st.tuples(text, tag), min_size=1, max_size=3).flatmap(
    lambda parts: text.map(lambda tail: "".join(t + g for t, g in parts) + tail)
)
leaf = st.sampled_from(VALUES)
context = st.recursive(
    leaf,
    lambda inner: st.dictionaries(st.sampled_from(NAMES), inner, max_size=4),
    max_leaves=10,
).filter(lambda c: isinstance(c, dict))


def jinja(renderer: Renderer, message: str, values: dict[Any, Any]) -> str:
    """What Jinja alone renders (the quick path off), or its error."""
    renderer._quick[message] = None
    try:
        return renderer.render_message(message, values, ORIGIN)
    except TemplateError as exc:
        return f"error: {exc}"
    finally:
        del renderer._quick[message]


def quick(renderer: Renderer, message: str, values: dict[Any, Any]) -> str | None:
    """The message rendered without Jinja, or None when it goes to Jinja."""
    compiled = renderer._quick_message(message)
    return None if compiled is None else compiled.render(values)


def assert_renders_as_jinja(renderer: Renderer, message: str, values: dict[Any, Any]) -> None:
    """The quick path, when it answers, and the renderer give exactly Jinja's text."""
    expected = jinja(renderer, message, values)
    fast = quick(renderer, message, values)
    assert fast is None or fast == expected, (message, values)
    try:
        rendered = renderer.render_message(message, values, ORIGIN)
    except TemplateError as exc:
        rendered = f"error: {exc}"
    assert rendered == expected, (message, values)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer([])


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source, st.lists(context, min_size=1, max_size=4))
def test_the_quick_path_gives_jinjas_text(message: str, contexts: list[dict[str, Any]]) -> None:
    renderer = Renderer([])
    for values in contexts:
        assert_renders_as_jinja(renderer, message, values)


def test_simple_messages_take_the_quick_path(renderer: Renderer) -> None:
    message = "Margin {{ margin | percent }} of {{ totals.contract|money }} for {{ partner.name | default('the partner') }}."
    quick = renderer._quick_message(message)
    assert isinstance(quick, QuickMessage)
    values = {
        "currency": "USD",
        "margin": Decimal("0.2345"),
        "totals": {"contract": Decimal("1234567.891")},
        "partner": {"name": None},
    }
    assert quick.render(values) == "Margin 23.45% of 1,234,567.89 USD for None."
    assert_renders_as_jinja(renderer, message, values)
    # a missing name: Jinja's own error, not a quick guess
    assert quick.render({"currency": "USD"}) is None
    with pytest.raises(TemplateError, match="percent: expected a number, got StrictUndefined"):
        renderer.render_message(message, {"currency": "USD"}, ORIGIN)


@pytest.mark.parametrize(
    "message",
    [
        "{{ a.items }}",  # a dict attribute: Jinja finds the method first
        "{{ a }}\n",  # Jinja drops a trailing newline
        "{{ a }}\r\n{{ b }}",  # and rewrites line endings
        "{{ a }} {% if b %}x{% endif %}",
        "{{ a | upper }}",
        "{{ a | money('EUR') }}",
        "plain text",
    ],
)
def test_what_only_jinja_can_render(renderer: Renderer, message: str) -> None:
    assert renderer._quick_message(message) is None


def test_a_plugin_filter_that_replaces_a_builtin_one_is_honoured() -> None:
    renderer = Renderer([], {"percent": lambda value: "PLUGIN"})
    assert renderer._quick_message("{{ a | percent }}") is None
    assert renderer.render_message("{{ a | percent }}", {"a": 1}, ORIGIN) == "PLUGIN"


def test_every_house_message_is_quick() -> None:
    app = build(autoload=False)
    messages = [
        text
        for policy in app.policy_set.policies.values()
        for rule in policy.rules
        for _, text in rule.messages
        if "{" in text
    ]
    assert messages
    assert [m for m in messages if app.renderer._quick_message(m) is None] == []


# --- corners, through the renderer ------------------------------------------------------------

SIMPLE_PATHS = st.sampled_from(
    [
        "margin",
        "offer.type",
        "offer.kpi_at_risk",
        "partner.tier",
        "outputs.floor",
        "outputs.items",  # a dict method's name: the sandbox's getattr finds the method
        "offer.get",
        "lines.category",  # a list: no attribute
        "currency",
        "missing",
        "offer.missing",
        "range",  # a global when the deal has no such key
        "true",
        "self",
        "nested.a.b",
    ]
)
SIMPLE_TAGS = st.builds(
    lambda path, spaces, filter_name: "{{" + spaces + path + filter_name + spaces + "}}",
    SIMPLE_PATHS,
    st.sampled_from(["", " ", "  "]),
    st.sampled_from(["", " | percent", "|money", " | money", " | date", " | upper"]),
)
SIMPLE_TEXT = st.sampled_from(
    ["", "Margin ", " is low.", " (", ") ", "100%", "{", "}", "a\nb", "{#x#}"]
)
SIMPLE_MESSAGES = st.lists(st.one_of(SIMPLE_TAGS, SIMPLE_TEXT), min_size=1, max_size=5).map("".join)
SIMPLE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, places=3, min_value=-(10**6), max_value=10**6),
    st.sampled_from(["0.25", "abc", "", "<b>&"]),
)
SIMPLE_CONTEXTS = st.fixed_dictionaries(
    {
        "margin": SIMPLE_VALUES,
        "offer": st.one_of(
            SIMPLE_VALUES,
            st.fixed_dictionaries(
                {},
                optional={
                    "type": SIMPLE_VALUES,
                    "kpi_at_risk": SIMPLE_VALUES,
                    "get": SIMPLE_VALUES,
                },
            ),
        ),
        "partner": st.fixed_dictionaries({}, optional={"tier": SIMPLE_VALUES}),
        "outputs": st.fixed_dictionaries(
            {}, optional={"floor": SIMPLE_VALUES, "items": SIMPLE_VALUES}
        ),
        "lines": st.lists(st.fixed_dictionaries({"category": st.just("support")}), max_size=2),
        "nested": st.fixed_dictionaries(
            {"a": st.one_of(SIMPLE_VALUES, st.fixed_dictionaries({"b": SIMPLE_VALUES}))}
        ),
    },
    optional={
        "currency": st.sampled_from(["USD", "JPY", "KWD", "usd", "XXX"]),
        "range": st.just(3),
    },
)


@settings(max_examples=400, deadline=None)
@given(SIMPLE_MESSAGES, SIMPLE_CONTEXTS, st.sampled_from([{}, {"percent": lambda v: "P"}]))
def test_a_simple_message_renders_as_jinja_renders_it(
    source: str, context: dict[str, Any], filters: dict[str, Any]
) -> None:
    assert_renders_as_jinja(Renderer([], filters), source, context)


def test_the_house_messages_render_without_jinja() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from decimal import Decimal\n"
        "from dealdesk.templating import Renderer\n"
        "r = Renderer([])\n"
        "context = {'labor_margin': Decimal('0.25'), 'offer': {'type': 'new_market'},"
        " 'totals': {'contract': Decimal('1234.5')}, 'currency': 'USD', 'outputs': {}}\n"
        "print(r.render_message('Labor margin {{ labor_margin | percent }} is low.', context, 'o'))\n"
        "print(r.render_message('Every risk-model deal ({{ offer.type }}) needs review.', context, 'o'))\n"
        "print(r.render_message('A contract of {{ totals.contract | money }}.', context, 'o'))\n"
        "print('jinja2' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [
        "Labor margin 25% is low.",
        "Every risk-model deal (new_market) needs review.",
        "A contract of 1,234.50 USD.",
        "False",
    ]


def test_simple_output_stays_far_below_the_sandbox_bound() -> None:
    from dealdesk.messages import MAX_TEXT
    from dealdesk.sandbox import MAX_OUTPUT

    assert MAX_TEXT < MAX_OUTPUT
    huge = {"text": "x" * (MAX_TEXT + 1)}
    assert quick(Renderer([]), "{{ text }}", huge) is None


@pytest.mark.parametrize(
    ("source", "context", "filters"),
    [
        ("{{ offer.get }}", {"offer": {"get": "x"}}, {}),  # the dict's method, not the key
        ("{{ outputs.items }}", {"outputs": {"items": 1}}, {}),
        ("{{ offer.type.upper }}", {"offer": {"type": "abc"}}, {}),  # str's method
        ("{{ range }}", {}, {}),  # a global of the sandbox
        ("{{ self }}", {"self": 1}, {}),
        ("{{ true }}", {"true": 1}, {}),
        ("{{ loop }}", {"loop": 1}, {}),
        ("{{ a }}", {"a": 1, 2: "non-text key"}, {}),
        ("{{ a | percent }}", {"a": Decimal("0.5")}, {"percent": lambda v: "P"}),
        ("{{ a | money }}", {"a": Decimal("5")}, {"money": lambda v: "M"}),
        ("{{ a | money }}", {"a": Decimal("5")}, {}),  # no currency
        ("{{ a | money }}", {"a": Decimal("5"), "currency": None}, {}),
        ("{{ a | money }}", {"a": Decimal("5"), "currency": "JPY"}, {}),
        ("{{ a | percent }}", {"a": True}, {}),
        ("{{ a | percent }}", {"a": "0.125"}, {}),
        ("{{ a.b }}", {"a": [1]}, {}),
        ("{{ a.b }}", {"a": None}, {}),
        ("{{ a }}\n", {"a": 1}, {}),  # Jinja drops the trailing newline
        ("{{ a }}\r\nb", {"a": 1}, {}),
        ("{ {{ a }} }", {"a": 1}, {}),
        ("{{ a }}{% if true %}x{% endif %}", {"a": 1}, {}),
        ("{{a}}{{ a|percent }} and {{ b.c }}", {"a": 0.3, "b": {"c": None}}, {}),
        ("{{ a }}", {"a": "x" * 200_000}, {}),
    ],
)
def test_simple_message_corners_render_as_jinja_renders_them(
    source: str, context: dict[Any, Any], filters: dict[str, Any]
) -> None:
    assert_renders_as_jinja(Renderer([], filters), source, context)


@pytest.mark.parametrize(
    ("message", "values", "text"),
    [
        ("{{ a }}", {"a": Decimal("1.50")}, "1.50"),
        ("{{ a }} and {{ b }}", {"a": None, "b": True}, "None and True"),
        ("{{ a.b.c }}!", {"a": {"b": {"c": "deep"}}}, "deep!"),
        ("{{ a | money }}", {"a": Decimal("1234.5"), "currency": "JPY"}, "1,235 JPY"),
        ("{{a|percent}}", {"a": 0.125}, "12.5%"),
        ("{{ a | default('x') }}", {"a": None}, "None"),
        ("{ {{ a }} }", {"a": 1}, "{ 1 }"),
    ],
)
def test_the_quick_path_answers_and_agrees(
    renderer: Renderer, message: str, values: dict[str, Any], text: str
) -> None:
    # the property test accepts a quick path that never answers; here it must answer
    assert quick(renderer, message, values) == text
    assert jinja(renderer, message, values) == text
