"""Decision-table cells: S-FEEL unary tests and the intervals behind the unreachable-row check."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dealdesk.rules.expressions import Field, evaluate
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
