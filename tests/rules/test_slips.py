"""Common slips, said in words at the exact place: other languages' operators in expressions,
and YAML mistakes located where they are, not where the parser gave up."""

from __future__ import annotations

import pytest

from dealdesk.errors import RulesetError
from dealdesk.rules.expressions import ExpressionError, FieldType, Scope, parse_expression
from dealdesk.rules.loader import load_yaml

SCOPE = Scope(
    {
        "margin": FieldType("number"),
        "risk_offer": FieldType("boolean"),
        "customer.name": FieldType("string"),
        "customer.region": FieldType("string"),
    }
)


@pytest.mark.parametrize(
    ("text", "pos", "message", "meant"),
    [
        ("margin => 0.2", (1, 7), "'=>' is not an operator here", ">="),
        ("margin =< 0.2", (1, 7), "'=<' is not an operator here", "<="),
        ("risk_offer && margin > 0", (1, 11), "'&&' is not an operator here", "and"),
        ("risk_offer || margin > 0", (1, 11), "'||' is not an operator here", "or"),
        ('customer.region = "emea"', (1, 16), "'=' assigns; it does not compare", "=="),
        ('customer.region === "emea"', (1, 16), "'===' is not an operator here", "=="),
        ("!risk_offer", (1, 0), "'!' is not an operator here", "not"),
        ('customer.region <> "emea"', (1, 16), "'<>' is not an operator here", "!="),
        # on a later line of a block scalar; a slip inside a string literal is text
        ('customer.name == "a => b"\n  and margin => 1', (2, 13), "'=>' is not", ">="),
    ],
)
def test_other_languages_operators_say_the_python_one(
    text: str, pos: tuple[int, int], message: str, meant: str
) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, SCOPE)
    assert info.value.message.startswith(f"invalid syntax: {message}")
    assert (info.value.pos, info.value.suggestion) == (pos, meant)


@pytest.mark.parametrize(
    ("text", "pos", "meant"),
    [("margin > 0 & risk_offer", (1, 11), "and"), ("margin > 0 |\n risk_offer", (1, 11), "or")],
)
def test_bitwise_operators_are_taken_for_and_or(
    text: str, pos: tuple[int, int], meant: str
) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, SCOPE)
    assert (info.value.pos, info.value.suggestion) == (pos, meant)
    # said as '&&' and '||' are
    assert info.value.message == f"invalid syntax: {text[11]!r} is not an operator here"


def test_valid_operators_are_not_slips() -> None:
    for text in ["margin >= 0.2", "margin <= 0.2", 'customer.region != "emea"', "not risk_offer"]:
        parse_expression(text, SCOPE)


def yaml_error(text: str) -> str:
    with pytest.raises(RulesetError) as info:
        load_yaml(text, "f.yaml")
    return str(info.value)


NO_COLON = (
    "invalid YAML: this line has no ':' after its key (or it needs indenting under the key above)"
)


def test_a_key_without_its_colon_is_reported_on_its_own_line() -> None:
    # PyYAML notices only on the next line (line 3); the mistake is on line 2
    assert yaml_error("rule:\n  when margin > 0.2\n  then: x\n") == f"f.yaml:2:3: {NO_COLON}"


def test_text_under_indented_below_a_block_scalar_key_is_reported_on_its_line() -> None:
    text = "then:\n  reason: >\n  Margin is low.\nnext: 1\n"
    assert yaml_error(text) == f"f.yaml:3:3: {NO_COLON}"


def test_a_key_without_its_colon_above_a_key_with_one_is_that_line() -> None:
    # `require cfo reason` is read as one text whose ':' is refused on line 3
    assert yaml_error("then:\n  require cfo\n  reason: x\n") == f"f.yaml:2:3: {NO_COLON}"
    # a ':' inside a value stays where it is
    assert (
        yaml_error("a: b: c\n") == "f.yaml:1:5: invalid YAML: mapping values are not allowed here"
    )


def test_unclosed_quotes_and_tags_are_reported_where_they_start() -> None:
    assert (
        yaml_error('a: "x\nb: 1\n') == "f.yaml:1:4: invalid YAML: this quoted text is never closed"
    )
    assert yaml_error("when: !risk_offer\n") == (
        "f.yaml:1:7: invalid YAML: a value that starts with '!' is a YAML tag; quote the value "
        "(and in a condition write `not`, not `!`)"
    )


def test_indentation_errors_name_the_line_and_say_so() -> None:
    assert yaml_error("a:\n  b: 1\n c: 2\n") == (
        "f.yaml:3:2: invalid YAML: expected <block end>, but found '<block mapping start>' "
        "(check this line's indentation)"
    )
