"""Tests for dealdesk.jsoncodec: orjson's speed with exactly the standard library's values and
bytes, and strict JSON (no NaN or Infinity) in records (SPEC §9)."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import OrderedDict
from decimal import Decimal
from enum import IntEnum
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dealdesk import app, jsoncodec
from dealdesk.errors import DuplicateKey, NonFiniteNumber
from dealdesk.io.readers import read_deals

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "deals"


# -- what the writers wrote before orjson: the reference -------------------------------------


def _stdlib_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def stdlib_compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_stdlib_default)


def stdlib_indented(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=_stdlib_default)


def assert_same_bytes(value: Any) -> None:
    assert jsoncodec.dumps(value) == stdlib_compact(value)
    assert jsoncodec.dumps(value, indent=True) == stdlib_indented(value)


class Grade(IntEnum):
    TWELVE = 12


class Label(str):
    pass


RECORD: dict[str, Any] = {
    "deal_id": "D-1001",
    "status": "needs_approval",
    "approvals": ["deal_desk", "vp_finance"],
    "policies": {
        "billing-milestone": {
            "status": "approved",
            "fired": ["BM-1"],
            "outputs": {
                "milestones": [
                    {"name": "signature", "percent": 30, "amount": "300000.00"},
                    {"name": "final_acceptance", "percent": 10, "amount": "100000.00"},
                ],
                "invoice_models": {"hardware": "milestone"},
                "payment_terms_days": 45,
            },
        },
        "onsite-support": {
            "status": "approved",
            "fired": [],
            "outputs": {
                "resident_engineer": {"fte": 1.0, "months": 12, "grade": 11},
                "service_contract_value": Decimal("300000.00"),
                "nothing": None,
                "empty": {},
                "none": [],
            },
        },
        "partner-margin": {
            "status": "needs_approval",
            "fired": ["PM-3"],
            "outputs": {"margin": 0.3134, "floor": 0.35, "cap": 0.0001, "zero": 0.0},
        },
    },
    "reasons": [
        {"policy": "partner-margin", "rule": "PM-3", "message": "Marge 31 % — für Ölçek 🚀 «ok»"}
    ],
    "flags": [{"policy": "p", "rule": "R", "message": 'quote " backslash \\ tab \t nl \n'}],
    "clauses": [{"id": "x/y", "text": "line\u2028sep \x00\x1f\x7f ctrl / slash"}],
    "errors": [],
    "provenance": {"rulesets": {"partner-margin": "2026.11.0"}, "digest": "sha256:ab"},
}


@pytest.mark.parametrize(
    "value",
    [
        RECORD,
        {"unicode": "é€😀 中文 \ud7ff", "keys": {"ключ": "значение", "": ""}},
        {"decimals": [Decimal("1.10"), Decimal("-0.0"), Decimal("1E+3"), Decimal("NaN")]},
        {"dates": [dt.date(2026, 1, 2), dt.datetime(2026, 1, 2, 3, 4, 5, 6)]},
        {"aware": dt.datetime(2026, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=-5)))},
        # floats on both sides of where repr() switches to an exponent, and the extremes
        [0.1, -0.0, 1e-4, 9.999999999999999e-05, 1e-05, 1.5e-07, 5e-324],
        [1e15, 9999999999999998.0, 1e16, -1e16, 1.7976931348623157e308, 12345.6789],
        # integers orjson cannot hold go to the standard library whole
        [2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**63) - 1, 10**30],
        {"tuple": (1, "a", (2.5, None)), "bools": [True, False], "nested": [[[[{}]]]]},
        {1: "int key", None: "null key", False: "bool key", 2.5: "float key"},
        OrderedDict(b=1, a=[Grade.TWELVE, Label("sub")]),
        {"lone surrogate": "\ud800"},
        [],
        {},
        "text",
        None,
    ],
)
def test_dumps_writes_what_the_standard_library_writes(value: Any) -> None:
    assert_same_bytes(value)


def test_dumps_deep_values_like_the_standard_library() -> None:
    deep: Any = 1.5
    for _ in range(300):  # deeper than orjson writes
        deep = [deep]
    assert_same_bytes(deep)
    assert_same_bytes({"a": [{"b": deep}]})


def test_dumps_keeps_the_record_key_order() -> None:
    text = jsoncodec.dumps(RECORD)
    assert text.startswith('{"deal_id":"D-1001","status":"needs_approval","approvals":[')
    assert list(json.loads(text)) == list(RECORD)


def test_dumps_refuses_what_json_cannot_represent_as_the_standard_library_does() -> None:
    for value in ({"x": object()}, {"t": dt.time(1, 2)}, {1, 2}):
        with pytest.raises(TypeError):
            jsoncodec.dumps(value)
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="Circular reference"):
        jsoncodec.dumps(cycle)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.decimals(allow_nan=False, allow_infinity=False).map(Decimal)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_dumps_matches_the_standard_library_on_any_json_value(value: Any) -> None:
    assert_same_bytes(value)


def test_dumps_matches_on_the_records_of_every_bundled_example() -> None:
    application = app.build(clauses=True, autoload=False)
    records = [application.evaluate_source(s) for s in read_deals([str(EXAMPLES)])]
    assert len(records) == 29
    for record in records:
        assert_same_bytes(record)


# -- strict JSON: NaN and Infinity are never written ------------------------------------------


@pytest.mark.parametrize(
    ("value", "path", "text"),
    [
        (math.nan, "", "NaN"),
        ({"policies": {"p": {"outputs": {"x": math.inf}}}}, "policies.p.outputs.x", "Infinity"),
        ({"a": [1.0, (2.0, -math.inf)]}, "a[1][1]", "-Infinity"),
        (OrderedDict(o=[{"deep": math.nan}]), "o[0].deep", "NaN"),
        ({"big": [10**30, 1e308 * 10]}, "big[1]", "Infinity"),  # an overflow is infinite too
    ],
)
def test_non_finite_numbers_are_refused_with_their_path(value: Any, path: str, text: str) -> None:
    for indent in (False, True):
        with pytest.raises(NonFiniteNumber) as caught:
            jsoncodec.dumps(value, indent=indent)
        assert caught.value.path == path
        assert str(caught.value) == (
            f"{path or 'the value'} is {text}; records are strict JSON (no NaN or Infinity)"
        )
    with pytest.raises(NonFiniteNumber):
        jsoncodec.check_finite(value)


def test_check_finite_accepts_finite_records_and_decimal_nan() -> None:
    jsoncodec.check_finite(RECORD)
    jsoncodec.check_finite({"d": Decimal("NaN"), "s": "NaN", "big": 1.7976931348623157e308})


# -- reading: exact decimals, and the standard library's values and errors -------------------


def typed(value: Any) -> Any:
    """``value`` with every scalar's type and exact text, so 1 != 1.0 != Decimal("1.0")."""
    if isinstance(value, dict):
        return ("dict", [(k, typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, str(value))


def stdlib_loads(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def outcome(load: Any, text: str) -> Any:
    try:
        return ("value", typed(load(text)))
    except json.JSONDecodeError as exc:
        return ("error", exc.msg, exc.lineno, exc.colno)
    except RecursionError:
        return ("recursion",)


@pytest.mark.parametrize(
    "text",
    [
        '{"id": "D-1", "discount": 0.18, "price": 150000, "rate": 1.50, "e": 1E+2, "f": 3e-2}',
        '{"plain": [1, -0, 0, true, false, null, "x"], "nested": {"a": {"b": []}}}',
        '{"i64": 9223372036854775807, "u64": 18446744073709551615, "over": 18446744073709551616}',
        '{"neg": -9223372036854775809, "long": 123456789012345678901234567890}',
        '{"a": 1, "b": 2, "a": 3}',  # a duplicate key: the last value, at the first position
        '{"nan": NaN, "inf": Infinity, "ninf": -Infinity}',  # read; validation refuses them
        '{"lone": "\\ud800", "pair": "\\ud83d\\ude00", "esc": "\\u00e9\\n\\t\\"\\\\\\/"}',
        ' \t\r\n {"ws": 1} \n',
        "\ufeff{}",  # a BOM the caller did not strip: the standard library's error
        '{"id": 1,}',
        '{"id": "D-1" "x": 1}',
        "[1, 2",
        '{"a": 01}',
        '{"a": 1.}',
        '{"a": .5}',
        '{"a": "tab\tinside"}',
        "\x0c{}",
        "",
        "[" * 300 + "1.5" + "]" * 300,  # deeper than orjson's values are checked: stdlib
        "[" * 300 + "]" * 300,
        "[" * 5000 + "]" * 5000,
    ],
)
def test_loads_gives_the_standard_library_values_and_errors(text: str) -> None:
    assert outcome(jsoncodec.loads, text) == outcome(stdlib_loads, text)


def test_loads_reads_fractions_as_exact_decimals_and_huge_integers() -> None:
    value = jsoncodec.loads('{"x": 0.1, "y": 0.30000000000000004, "n": 7}')
    assert value == {"x": Decimal("0.1"), "y": Decimal("0.30000000000000004"), "n": 7}
    digits = "9" * 5000  # beyond Python's int-string limit: a Decimal for validation to refuse
    assert jsoncodec.loads(f'{{"q": {digits}}}') == {"q": Decimal(digits)}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, st.sampled_from([None, 2]))
def test_loads_matches_the_standard_library_on_any_json_text(value: Any, indent: Any) -> None:
    text = json.dumps(value, default=str, indent=indent)
    assert outcome(jsoncodec.loads, text) == outcome(stdlib_loads, text)


# -- reading: generated JSON texts, number tokens as written ----------------------------------

# Number tokens as a file may hold them: trailing zeros, exponents of every case and sign, -0.0,
# more digits than a float keeps; each must come back as the Decimal of its own text.
number_tokens = st.from_regex(
    r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,20})?([eE][-+]?[0-9]{1,4})?", fullmatch=True
) | st.sampled_from(
    ["1.50", "1E+5", "1e5", "-0.0", "-0", "0e0", "1.0", "172565.36493696", "107829.45224080"]
    + ["1e400", "1e-400", "NaN", "Infinity", "-Infinity", "9" * 30, "-" + "9" * 25 + ".5"]
)
# Strings whose text looks like numbers, escapes (lone surrogates too) and non-ASCII text.
string_tokens = st.text(alphabet="0123456789.eE+-: ,[]{}abc\\é😀", max_size=12).map(
    lambda s: json.dumps(s, ensure_ascii=False)
) | st.sampled_from(
    ['"\\ud800"', '"\\udc00x"', '"\\ud83d\\ude00"', '"1.50"', '"\\u0031.5"', '"a\\/b\\n"']
)
spaces = st.sampled_from(["", " ", "\n", "\t", "\r\n ", "  "])


def _array(items: list[tuple[str, str]]) -> str:
    return "[" + ",".join(space + item for item, space in items) + "]"


def _object(items: list[tuple[str, str, str]]) -> str:
    return "{" + ",".join(f"{key}{space}:{value}" for key, value, space in items) + "}"


json_texts = st.recursive(
    number_tokens | string_tokens | st.sampled_from(["true", "false", "null"]),
    lambda children: (
        st.lists(st.tuples(children, spaces), max_size=5).map(_array)
        # few distinct keys, so duplicates (the last value, at the first position) come up
        | st.lists(
            st.tuples(st.sampled_from(['"a"', '"b"', '"1.5"', '""']), children, spaces),
            max_size=5,
        ).map(_object)
    ),
    max_leaves=25,
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spaces, json_texts, spaces)
def test_loads_matches_the_standard_library_on_generated_texts(
    before: str, text: str, after: str
) -> None:
    text = before + text + after
    assert outcome(jsoncodec.loads, text) == outcome(stdlib_loads, text)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    json_texts,
    st.integers(min_value=0),
    st.sampled_from(["", "x", ",", "]", "}", '"', "0", " ", "\x00", "."]),
)
def test_loads_matches_the_standard_library_on_broken_texts(
    text: str, where: int, insert: str
) -> None:
    # one character dropped or put in somewhere: mostly invalid, the same error either way
    where %= len(text) + 1
    for broken in (text[:where] + insert + text[where:], text[:where] + text[where + 1 :]):
        assert outcome(jsoncodec.loads, broken) == outcome(stdlib_loads, broken)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text=json_texts)
def test_loads_matches_the_standard_library_on_json_texts(text: str) -> None:
    assert outcome(jsoncodec.loads, text) == outcome(stdlib_loads, text)


def test_msgspec_reads_fractions_without_the_standard_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(text: str) -> Any:
        raise AssertionError(f"the standard library was asked for {text!r}")

    monkeypatch.setattr(jsoncodec, "_stdlib_loads", refuse)
    line = '{"lines": [{"unit_cost": 107829.45224080, "q": 1, "e": 1E+5, "z": -0.0}]}'
    value = jsoncodec.loads(line)
    assert typed(value) == typed(stdlib_loads(line))
    assert str(value["lines"][0]["unit_cost"]) == "107829.45224080"
    # what it cannot read exactly goes to the standard library
    for text in ('{"x": NaN}', '"\\ud800"', "[" * 200 + "]" * 200, "9" * 5000, "[1,]"):
        with pytest.raises(AssertionError, match="standard library was asked"):
            jsoncodec.loads(text)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet='{}[]",:0123456789.eE+-truefalsnNaIfiy \t\n\r\x00\x0c\x7f\u2028\u00a0\\/u'))
def test_loads_matches_the_standard_library_on_json_like_junk(text: str) -> None:
    assert outcome(jsoncodec.loads, text) == outcome(stdlib_loads, text)


# -- reading: repeated keys --------------------------------------------------------------------


class _Repeated(Exception):
    pass


def _refuse_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({key for key, _ in pairs}) != len(pairs):
        raise _Repeated
    return dict(pairs)


def repeats_a_key(text: str) -> bool:
    """The reference: the standard library, shown every member."""
    try:
        json.loads(text, parse_float=Decimal, object_pairs_hook=_refuse_repeats)
    except _Repeated:
        return True
    return False


# Keys that are the same when decoded but not when written, colons written and escaped.
colon_keys = st.sampled_from(['"a"', '"\\u0061"', '"b:"', '"b\\u003a"', '"b\\u003A"', '":"'])
colon_texts = st.recursive(
    string_tokens | st.sampled_from(['"\\u003a"', '"x:y"', "1.5", "null"]),
    lambda children: (
        st.lists(children, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
        | st.lists(st.tuples(colon_keys, children, spaces), max_size=4).map(_object)
    ),
    max_leaves=20,
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_texts | colon_texts)
def test_loads_unique_refuses_exactly_the_texts_that_repeat_a_key(text: str) -> None:
    try:
        expected = jsoncodec.loads(text)
    except (ValueError, RecursionError):
        return  # not JSON: loads_unique raises what loads raises (the same code)
    if repeats_a_key(text):
        with pytest.raises(DuplicateKey):
            jsoncodec.loads_unique(text)
        assert next(jsoncodec.duplicate_keys(text), None) is not None
    else:
        assert typed(jsoncodec.loads_unique(text)) == typed(expected)
        assert list(jsoncodec.duplicate_keys(text)) == []


def test_duplicate_keys_names_each_object_that_repeats_a_key() -> None:
    text = '{"a": 1, "a": 2, "lines": [{"sku": 1}, {"sku": 2, "q": {"x": 1, "x": 1}, "sku": 3}]}'
    assert [str(found) for found in jsoncodec.duplicate_keys(text)] == [
        'duplicate key "a"',
        'duplicate key "sku" in lines[1]',
        'duplicate key "x" in lines[1].q',
    ]


@given(
    st.one_of(
        st.text(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.booleans(),
        st.none(),
        st.floats(allow_nan=False, allow_infinity=False),
    )
)
def test_dumps_scalar_writes_what_dumps_writes(value: object) -> None:
    assert (
        jsoncodec.dumps_scalar(value)
        == jsoncodec.dumps(value)
        == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    )


def test_dumps_scalar_on_text_orjson_refuses() -> None:
    assert jsoncodec.dumps_scalar("\ud800") == json.dumps("\ud800", ensure_ascii=False)
