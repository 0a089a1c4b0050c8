"""YAML with positions: safe loading only, dates as text, located errors, bounded aliases and
nesting."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bounded import run_python

from dealdesk.errors import Location, RulesetError
from dealdesk.rules import loader
from dealdesk.rules.loader import MAX_DEPTH, Document, load_yaml, load_yaml_documents


def test_values_know_where_they_start() -> None:
    doc = load_yaml("a:\n  b: [1, 2]\n  c: 'x'\n", "f.yaml")
    assert doc.data == {"a": {"b": [1, 2], "c": "x"}}
    assert doc.location(("a", "b", 1)) == Location("f.yaml", 2, 10)
    assert doc.key_location(("a", "c")) == Location("f.yaml", 3, 3)
    assert doc.location(("a", "missing")) == Location("f.yaml", 2, 3)  # nearest located parent


def test_offsets_inside_strings_follow_quotes_and_folding() -> None:
    text = 'w1: "x < y"\nw2: >-\n  first line\n  second z\nw3: |\n  one\n  two z\n'
    doc = load_yaml(text, "f.yaml")
    assert doc.location(("w1",), (1, 4)) == Location("f.yaml", 1, 10)  # the y, after the quote
    assert doc.location(("w2",), (1, 18)) == Location("f.yaml", 4, 10)  # folded: z on line 4
    assert doc.location(("w3",), (2, 4)) == Location("f.yaml", 7, 7)  # literal: line 2 of block


def test_dates_stay_text_and_tags_are_refused() -> None:
    assert load_yaml("d: 2026-12-15\n", "f").data == {"d": "2026-12-15"}
    with pytest.raises(RulesetError, match="f.yaml:1:4: invalid YAML"):
        load_yaml("a: !!python/object:os.system 'echo'\n", "f.yaml")


def test_duplicate_keys_and_syntax_errors_are_located() -> None:
    with pytest.raises(RulesetError) as info:
        load_yaml("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert str(info.value) == "f.yaml:3:1: duplicate key 'a'"
    with pytest.raises(RulesetError) as info:
        load_yaml("a: [1, 2\n", "f.yaml")
    # the bracket that is never closed, not the end where the parser gave up
    assert str(info.value) == (
        "f.yaml:1:4: invalid YAML: the '[' here is not closed where expected: "
        "expected ',' or ']', but got '<stream end>' at line 2, column 1"
    )


def test_keys_must_be_names() -> None:
    with pytest.raises(RulesetError) as info:
        load_yaml("outputs:\n  yes: {}\n", "f.yaml")
    assert str(info.value) == (
        "f.yaml:2:3: the key 'yes' is read as bool True; quote it (\"yes\") to make it a name"
    )


def test_several_documents() -> None:
    docs = list(load_yaml_documents("a: 1\n---\nb: 2\n", "f.yaml"))
    assert [d.data for d in docs] == [{"a": 1}, {"b": 2}]
    assert docs[1].location(("b",)) == Location("f.yaml", 3, 4)
    with pytest.raises(RulesetError, match="expected one YAML document"):
        load_yaml("a: 1\n---\nb: 2\n", "f.yaml")


BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_an_alias_bomb_is_a_located_error_in_little_time_and_memory() -> None:
    assert len(BILLION_LAUGHS) < 600
    # in a child with 512 MiB: unbounded, the positions of 9**9 values take far more
    out = run_python(
        f"""
        from dealdesk.errors import RulesetError
        from dealdesk.rules.loader import load_yaml
        try:
            load_yaml({BILLION_LAUGHS!r}, "bomb.yaml")
        except RulesetError as exc:
            print(exc)
        """,
        timeout=30,
    )
    assert out.startswith("bomb.yaml:5:4: invalid YAML: aliases here expand the document"), out


def test_aliases_within_the_budget_load_as_before() -> None:
    doc = load_yaml("base: &base {priority: 10, flag: x}\nrule: {<<: *base, id: R}\n", "f.yaml")
    assert doc.data["rule"] == {"priority": 10, "flag": "x", "id": "R"}


def test_recursive_aliases_are_a_located_error() -> None:
    with pytest.raises(RulesetError) as info:
        load_yaml("ok: 1\nloop: &a [1, *a]\n", "f.yaml")
    assert str(info.value) == (
        "f.yaml:2:7: invalid YAML: an alias refers to a value that contains it (recursive data)"
    )


def test_deep_nesting_is_a_located_error() -> None:
    text = "rules: " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(RulesetError) as info:
        load_yaml(text, "f.yaml")
    assert str(info.value) == (
        f"f.yaml:1:{8 + MAX_DEPTH - 1}: invalid YAML: values nested too deeply (limit {MAX_DEPTH})"
    )
    load_yaml("rules: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n", "f.yaml")


# -- libyaml and the Python parser give the same documents ---------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def documents(texts: Iterator[Document]) -> list[tuple[Any, Any, Any]]:
    return [(d.data, sorted(d.spans.items()), sorted(d.keys.items())) for d in texts]


def parsed_by(parse: Callable[[], Iterator[Document]]) -> Any:
    try:
        return documents(parse())
    except RulesetError as exc:
        return str(exc)


def python_parser(text: str) -> Any:
    return parsed_by(lambda: loader._documents(loader._loaders()[0], text, "f.yaml"))


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "rulesets").glob("*.yaml")) + sorted((ROOT / "examples").rglob("*.yaml")),
    ids=lambda p: p.name,
)
def test_the_fast_parser_gives_the_python_parser_documents(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not loader._PYTHON_PARSER_ONLY.search(text)  # the fast path is taken
    fast = documents(loader._documents(loader._loaders()[1], text, "f.yaml"))
    assert fast == python_parser(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb:\n  - {c: 'é😀', d: [1, 2]}\n  - |\n    block\n  - x\u2028y\r\nf: 2026-01-02\n",
        "a:\tb\n",  # a tab libyaml accepts and the Python parser refuses
        "a: {b: c?d}\n",  # `?` in a flow scalar: likewise
        "a: >#\n  text\n",  # a comment glued to a block scalar header: likewise
        "\ufeffa: 1\n",  # a byte-order mark: libyaml leaves it out of the offsets
        "a: 1\nb: x\ufeffy\n",
        "x: {a: , b: 1}\n",  # libyaml puts the empty value one column later
        "x: {a: \r\n, b: 1}\n",
        "x: {a: # note\n  , b: 1}\n",
        "x: {a:, b: 1}\n",  # libyaml refuses what the Python parser accepts
        "a:\n  grade: !\n  b: 1\n",  # an empty value tagged `!`: null, not ""
        "%YAML 1.1\n---\na: !!str 1\n",
        "a: [1, 2\n",  # both refuse: the Python parser's message
        "a: 1\n---\nb: [\n",
        "a: 1\na: 2\n",
    ],
)
def test_load_yaml_documents_is_the_python_parser_in_every_corner(text: str) -> None:
    assert parsed_by(lambda: load_yaml_documents(text, "f.yaml")) == python_parser(text)
