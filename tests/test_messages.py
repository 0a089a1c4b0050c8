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
        ["", "|money", " | percent", "| default('the partner')", "|upper", "|money('EUR')"]
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


def jinja(renderer: Renderer, message: str, values: dict[str, Any]) -> str:
    renderer._quick[message] = None  # the quick path off: Jinja itself
    try:
        return renderer.render_message(message, values, "here")
    except TemplateError:
        return "<error>"
    finally:
        del renderer._quick[message]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer([])


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source, st.lists(context, min_size=1, max_size=4))
def test_the_quick_path_gives_jinjas_text(message: str, contexts: list[dict[str, Any]]) -> None:
    renderer = Renderer([])
    quick = renderer._quick_message(message)
    for values in contexts:
        expected = jinja(renderer, message, values)
        if quick is not None:
            got = quick.render(values)
            if got is not None:
                assert got == expected, (message, values)
        try:
            rendered = renderer.render_message(message, values, "here")
        except TemplateError:
            rendered = "<error>"
        assert rendered == expected, (message, values)


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
    assert renderer.render_message(message, values, "here") == jinja(renderer, message, values)
    # a missing name: Jinja's own error, not a quick guess
    assert quick.render({"currency": "USD"}) is None
    with pytest.raises(TemplateError, match="percent: expected a number, got StrictUndefined"):
        renderer.render_message(message, {"currency": "USD"}, "here")


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
    assert renderer.render_message("{{ a | percent }}", {"a": 1}, "here") == "PLUGIN"


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
