"""The alias budget on composed YAML, and the deal reader that applies it (SPEC §9)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from yaml.composer import ComposerError

from dealdesk.io.readers import read_yaml
from dealdesk.yaml_aliases import MAX_ALIAS_VALUES, check_aliases

# 9**30 values once expanded; composed, a few hundred nodes
DEEP_BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*{prev}'] * 9)}]\n"
    for i, prev in enumerate(["a", *(f"a{j}" for j in range(29))])
)


def compose(text: str) -> yaml.Node:
    node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert node is not None
    return node


def test_a_bomb_is_refused_at_the_sequence_that_passes_the_budget_in_linear_time() -> None:
    started = time.perf_counter()
    with pytest.raises(ComposerError) as info:
        check_aliases(compose(DEEP_BOMB))
    assert time.perf_counter() - started < 1
    assert info.value.problem_mark is not None
    assert (info.value.problem_mark.line, info.value.problem_mark.column) == (4, 4)  # `&a3 [`
    assert f"by more than {MAX_ALIAS_VALUES:,} values" in str(info.value.problem)


def test_shared_blocks_in_a_long_list_scale_with_what_is_written() -> None:
    # every deal repeats a customer block: more than MAX_ALIAS_VALUES added in all, but less
    # than ALIAS_FACTOR times the values written
    customer = "{name: A, segment: deer, region: emea, tags: [a, b, c, d, e, f, g, h]}"
    text = f"- {{id: D-0, customer: &acme {customer}}}\n" + "".join(
        f"- {{id: D-{i}, customer: *acme, q: [1, 2]}}\n" for i in range(1, 700)
    )
    assert 700 * 16 > MAX_ALIAS_VALUES
    check_aliases(compose(text))


def test_merges_and_aliases_to_scalars_are_fine() -> None:
    check_aliases(
        compose("base: &b {x: 1, y: [1, 2]}\nr1: {<<: *b, z: 1}\nr2: *b\ns: &s t\nu: *s\n")
    )


@pytest.mark.parametrize("text", ["a: &a [1, *a]\n", "a: &a {b: {c: *a}}\n", "- &l [x, [y, *l]]\n"])
def test_recursive_data_is_refused(text: str) -> None:
    with pytest.raises(ComposerError, match="refers to a value that contains it"):
        check_aliases(compose(text))


def test_a_bomb_in_a_deal_file_costs_its_document_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "deals.yaml"
    path.write_text(f"id: D-1\n---\nid: D-2\n{DEEP_BOMB}---\nid: D-3\n", encoding="utf-8")
    items = list(read_yaml(path))
    # sources and errors only: a failing comparison would print a deal read with the bomb
    read = [(item.source, item.deal is None, item.error) for item in items]
    assert read[0] == (f"{path}:1", False, None)
    assert read[1][:2] == (f"{path}:8", True)  # the line of `a3: &a3 [`, where the budget ends
    assert str(read[1][2]).startswith(f"{path}:8: invalid YAML: aliases here expand the document")
    assert read[2:] == [(f"{path}:36", False, None)]
