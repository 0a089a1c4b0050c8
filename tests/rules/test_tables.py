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
        # a list of unary tests matches when any of them does (DMN S-FEEL)
        ("< 1, > 2", ["0", "2.01"], ["1", "1.5", "2"]),
        ("[1..2], 3", ["1", "2", "3"], ["0.99", "2.5", "4"]),
        ("]0..1[, 5", ["0.5", "5"], ["0", "1", "4"]),
        ("(0.2..0.4], < 0, 7", ["0.4", "-1", "7"], ["0.2", "0", "6"]),
        ("[-1..0[, -1", ["-1", "-0.5"], ["0", "-2"]),
        ("not(< 1, > 2)", ["1", "2"], ["0", "3"]),
        ("not (< 0.2)", ["0.2"], ["0.1"]),  # DMN allows the space
        ("not([0..0.5))", ["0.5", "-1"], ["0", "0.25"]),
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


def test_a_list_may_mix_words_and_comparisons() -> None:
    test = parse_cell("gold, > 5", Field((1, 0), "a", "any"))
    assert test is not None
    assert [evaluate(test, {"a": v}) for v in ("gold", Decimal(6))] == [True, True]
    # "silver" > 5 and 5 == "gold" are unknown (a string is no number): neither matches
    assert [evaluate(test, {"a": v}) for v in ("silver", Decimal(5))] == [None, None]


@pytest.mark.parametrize(
    ("cell", "message", "meant"),
    [
        ("=> 0.3", "'=>' is not an S-FEEL operator", ">= 0.3"),
        ("=< 0.3", "'=<' is not an S-FEEL operator", "<= 0.3"),
        ("== 0.3", "S-FEEL tests equality with the bare value", "0.3"),
        ("<> 0.3", "'<>' is not an S-FEEL operator", "not(0.3)"),
        ("not < 0.3", "not takes parentheses in S-FEEL", "not(< 0.3)"),
        ("[0.2, 0.4]", "a range is written with '..' between its ends", "[0.2..0.4]"),
        ("(0.2,0.4]", "a range is written with '..' between its ends", "(0.2..0.4]"),
        ("0.1..0.2", "a range needs brackets", "[0.1..0.2]"),
        ("[0.4..0.2]", "empty range: 0.4 is above 0.2", "[0.2..0.4]"),
        ("(0.3..0.3)", "empty range: no value is inside it", "0.3"),
        ("[0.3..0.3)", "empty range: no value is inside it", "0.3"),
        ("> 5,000,000", "'5,000,000' has thousands separators", "> 5000000"),
        ("1,000, 2,500", "'1,000' has thousands separators", "1000, 2500"),
        # a slip inside a list or a negation: the suggestion is the whole cell, mended
        ("1, => 2", "'=>' is not an S-FEEL operator", "1, >= 2"),
        ("not(=> 2)", "'=>' is not an S-FEEL operator", "not(>= 2)"),
    ],
)
def test_slips_in_cells_suggest_the_s_feel_form(cell: str, message: str, meant: str) -> None:
    with pytest.raises(CellError) as info:
        parse_cell(cell, SUBJECT)
    assert str(info.value).startswith(message)
    assert info.value.suggestion == meant


@pytest.mark.parametrize("cell", ["[0.3..0.3]", "1, 2", "0.5,100", '"a,000"', "not(1), 2"])
def test_what_looks_like_a_slip_but_is_not(cell: str) -> None:
    assert parse_cell(cell, Field((1, 0), "a", "any")) is not None


def test_cell_coverage_for_unreachable_rows() -> None:
    assert covers(cell_interval("-"), cell_interval("< 3"))
    assert covers(cell_interval("<= 0.2"), cell_interval("[0.1..0.2]"))
    assert not covers(cell_interval("< 0.2"), cell_interval("[0.1..0.2]"))
    assert covers(cell_interval("gold, silver"), cell_interval("gold"))
    assert not covers(cell_interval("gold"), cell_interval("gold, silver"))
    assert not covers(cell_interval("not(gold)"), cell_interval("silver"))  # unsure: no claim
    # a list is the union of its tests
    assert covers(cell_interval("< 1, > 2"), cell_interval("[3..4]"))
    assert covers(cell_interval("< 1, > 2"), cell_interval("0, [5..6]"))
    assert not covers(cell_interval("< 1, > 2"), cell_interval("0, 1.5"))
    assert covers(cell_interval("gold, > 5"), cell_interval("gold"))
    assert covers(cell_interval("gold, > 5, silver"), cell_interval("silver, gold, 6"))
    assert not covers(cell_interval("gold, > 5"), cell_interval("silver, 6"))
    assert covers(cell_interval("1, 2"), cell_interval("2"))
    assert not covers(cell_interval("[2..3]"), cell_interval("2, 4"))
    # a cell that is no unary test describes nothing (its error is reported elsewhere)
    assert cell_interval("< 1, >> 2") is None and cell_interval("[0.2, 0.4]") is None


def test_a_row_that_a_list_cell_above_covers_is_unreachable(tmp_path: Path) -> None:
    write_rulesets(
        tmp_path / "rs",
        r="""
        ruleset: r
        policy: test
        version: "1"
        tables:
          - id: T
            hit: first
            inputs: [margin]
            rows:
              - when: ["< 0.1, [0.3..0.5]"]
                then: {}
              - when: ["(0.3..0.4)"]
                then: {}
        """,
    )
    with pytest.raises(ValidationFailed) as failed:
        policy_set(tmp_path / "rs")
    (error,) = failed.value.errors
    assert "row 2 of table 'T' is unreachable: row 1 matches everything it matches" in str(error)


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
