"""Decision-table cells: S-FEEL unary tests and the intervals behind the unreachable-row check."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from bounded import run_python
from helpers import policy_set, write_rulesets

from dealdesk.errors import ValidationFailed
from dealdesk.rules.expressions import MAX_DEPTH, Field
from dealdesk.rules.meaning import evaluate
from dealdesk.rules.tables import CellError, cell_interval, covers, parse_cell

SUBJECT = Field((1, 0), "a", "number")


@pytest.mark.parametrize(
    ("cell", "true_for", "false_for"),
    [
        ("< 0.2", ["0.1"], ["0.2", "0.3"]),
        ("[0.2..0.4)", ["0.2", "0.39"], ["0.4", "0.1"]),
        ("(0.2..0.4]", ["0.4"], ["0.2"]),
        ("not(< 0.2)", ["0.2"], ["0.1"]),
        ("1, 2", ["1", "2"], ["3"]),
        (0.25, ["0.25"], ["0.26"]),
        ("= 3", ["3"], ["4"]),
        ("!= 3", ["4"], ["3"]),
    ],
)
def test_unary_tests(cell: object, true_for: list[str], false_for: list[str]) -> None:
    test = parse_cell(cell, SUBJECT)
    assert test is not None
    for value in true_for:
        assert evaluate(test, {"a": Decimal(value)}) is True
    for value in false_for:
        assert evaluate(test, {"a": Decimal(value)}) is False
    assert evaluate(test, {}) is None  # a missing input fails every test but "-"


def test_any_cell_and_bad_cells() -> None:
    assert parse_cell("-", SUBJECT) is None
    with pytest.raises(CellError):
        parse_cell("not(-)", SUBJECT)
    with pytest.raises(CellError):
        parse_cell("< 1 +", SUBJECT)


def test_cell_coverage_for_unreachable_rows() -> None:
    assert covers(cell_interval("-"), cell_interval("< 3"))
    assert covers(cell_interval("<= 0.2"), cell_interval("[0.1..0.2]"))
    assert not covers(cell_interval("< 0.2"), cell_interval("[0.1..0.2]"))
    assert covers(cell_interval("gold, silver"), cell_interval("gold"))
    assert not covers(cell_interval("gold"), cell_interval("gold, silver"))
    assert not covers(cell_interval("not(gold)"), cell_interval("silver"))  # unsure: no claim


def test_deeply_nested_cells_are_refused() -> None:
    parse_cell("not(" * (MAX_DEPTH - 1) + "1" + ")" * (MAX_DEPTH - 1), SUBJECT)
    with pytest.raises(CellError, match=f"nested too deeply \\(limit {MAX_DEPTH}\\)"):
        parse_cell("not(" * 1000 + "1" + ")" * 1000, SUBJECT)  # was a RecursionError


def test_a_huge_range_like_cell_is_read_in_linear_time() -> None:
    # the regular expression that read ranges took 16 s on 20,000 dots: in a child, bounded
    out = run_python(
        """
        from dealdesk.rules.tables import CellError, cell_interval, parse_cell
        from dealdesk.rules.expressions import Field

        cell = "[" + "." * 100_000
        try:
            parse_cell(cell, Field((1, 0), "a", "number"))
        except CellError:
            print("refused", cell_interval(cell))
        """,
        timeout=20,
    )
    assert out.split() == ["refused", "None"]


def test_a_hostile_cell_is_quoted_short_in_its_error(tmp_path: Path) -> None:
    cell = "<" + "9" * 4000 + "x"
    write_rulesets(
        tmp_path / "rs",
        r=f"""
        ruleset: r
        policy: test
        version: "1"
        tables:
          - id: T
            hit: first
            inputs: [margin]
            rows:
              - when: ["{cell}"]
                then: {{}}
        """,
    )
    with pytest.raises(ValidationFailed) as failed:
        policy_set(tmp_path / "rs")
    (error,) = failed.value.errors
    assert "cannot read" in str(error) and len(str(error)) < 300
