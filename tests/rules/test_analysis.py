"""Decision-table analysis in ``dealdesk validate``: overlaps, gaps, rows never reached and
conflicting writers, each with its exact message and position; the house rulesets' findings;
and, for random tables, witnesses that the real cell evaluation confirms."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dealdesk.errors import Location
from dealdesk.rules import analysis
from dealdesk.rules.analysis import Finding, TableAnalysis
from dealdesk.rules.expressions import Field
from dealdesk.rules.meaning import evaluate
from dealdesk.rules.model import Actions, Row, Table, Text
from dealdesk.rules.tables import parse_cell
from dealdesk.testing import CliRunner, Result

HOUSE = Path(str(resources.files("dealdesk.rulesets")))
NO_AUTOLOAD = {"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1"}


@pytest.fixture
def validate(cli_runner: CliRunner):
    """``validate(*args)``: ``dealdesk validate`` with installed plugins left out."""

    def invoke(*args: str | Path) -> Result:
        return cli_runner.run("validate", *map(str, args), env=NO_AUTOLOAD)

    return invoke


def ruleset(tmp_path: Path, body: str, name: str = "t") -> Path:
    """A ruleset file of the partner-margin family (its plugin is built in)."""
    path = tmp_path / f"{name}.yaml"
    head = f"ruleset: {name}\npolicy: partner-margin\n"
    path.write_text(head + textwrap.dedent(body).lstrip(), encoding="utf-8")
    return path


def at(path: Path, marker: str, column: int | None = None) -> str:
    """``path:line:column`` of the first line holding ``marker``; the column is the marker's
    own unless given."""
    for number, text in enumerate(path.read_text().splitlines(), 1):
        if marker in text:
            return f"{path}:{number}:{column or text.index(marker) + 1}"
    raise AssertionError(f"{marker!r} is not in {path}")


# ---------------------------------------------------------------------------------------------
# Each finding, through the command


def test_a_list_of_comparisons_and_ranges_is_a_union(validate, tmp_path: Path) -> None:
    """``< 1, > 2`` leaves [1..2] to the other rows: a gap, an overlap and a row that two
    rows shadow together, each found on the values the lists accept."""
    path = ruleset(
        tmp_path,
        """
        tables:
          - id: U
            hit: unique
            inputs: [totals.contract]
            rows:
              - when: ["< 1, > 2"]
                then: {require: cfo}
              - when: ["[1..2)"]
                then: {require: vp_sales}
              - when: ["[0..0.5], 1.5"]
                then: {require: vp_sales}
          - id: F
            hit: first
            complete: false
            inputs: [totals.contract]
            rows:
              - when: ["< 1, > 2"]
                then: {require: cfo}
              - when: ["[1..2]"]
                then: {require: vp_sales}
              - when: ["0.5, 1.5, 3"]
                then: {require: vp_sales}
        """,
    )
    result = validate(path)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"{at(path, '- id: U', 5)}: warning: table 'U' (hit unique) has a gap: no row matches "
        "totals.contract=2",
        f"{at(path, '[0..0.5], 1.5', 9)}: warning: rows 1 and 3 of table 'U' both match "
        "totals.contract=0 (hit policy unique allows one)",
        f"{at(path, '[0..0.5], 1.5', 9)}: warning: rows 2 and 3 of table 'U' both match "
        "totals.contract=1.5 (hit policy unique allows one)",
        f"{at(path, '0.5, 1.5, 3', 9)}: warning: row 3 of table 'F' is never reached (hit "
        "first): rows 1 and 2 together match everything it matches",
        "1 ruleset OK, 4 warnings in 1 file",
    ]


def test_rows_that_overlap_under_unique_are_named_with_an_input_both_match(
    validate, tmp_path: Path
) -> None:
    path = ruleset(
        tmp_path,
        """
        outputs: {margin_floor: {combine: max}}
        tables:
          - id: FLOOR
            hit: unique
            inputs: [customer.segment, margin]
            rows:
              - when: [elephant, "> 0.3"]
                then: {set: {margin_floor: 0.3}}
              - when: ["elephant, deer", "[0.2..0.4]"]
                then: {set: {margin_floor: 0.35}}
              - when: [rabbit, "-"]
                then: {set: {margin_floor: 0.4}}
              - when: [deer, "not([0.2..0.4])"]
                then: {set: {margin_floor: 0.4}}
              - when: [elephant, "< 0.2"]
                then: {set: {margin_floor: 0.4}}
        """,
    )
    result = validate(path)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout == (
        f"{at(path, 'elephant, deer', 9)}: warning: rows 1 and 2 of table 'FLOOR' both match "
        "customer.segment=elephant, margin=0.31 (hit policy unique allows one)\n"
        "1 ruleset OK, 1 warning in 1 file\n"
    )
    assert result.stderr == ""


def test_rows_that_overlap_under_any_matter_only_with_different_outcomes(
    validate, tmp_path: Path
) -> None:
    path = ruleset(
        tmp_path,
        """
        outputs: {margin_floor: {combine: max}}
        tables:
          - id: FLOOR
            hit: any
            inputs: [margin]
            rows:
              - when: ["< 0.5"]
                then: {set: {margin_floor: 0.3}}
              - when: ["<= 0.3"]
                then: {set: {margin_floor: 0.30}}
              - when: ["> 0.25"]
                then: {set: {margin_floor: 0.4}}
              - when: [">= 0.5"]
                then: {set: {margin_floor: 0.4}}
        """,
    )
    result = validate(path)
    assert result.exit_code == 0, result.stdout + result.stderr
    row3 = at(path, '"> 0.25"', 9)
    # rows 1 and 2 agree (0.3 and 0.30 are one value), and so do rows 3 and 4
    assert result.stdout == (
        f"{row3}: warning: rows 1 and 3 of table 'FLOOR' both match margin=0.26 with different "
        "outcomes (set margin_floor: 0.3 vs 0.4; hit policy any needs them equal)\n"
        f"{row3}: warning: rows 2 and 3 of table 'FLOOR' both match margin=0.26 with different "
        "outcomes (set margin_floor: 0.3 vs 0.4; hit policy any needs them equal)\n"
        "1 ruleset OK, 2 warnings in 1 file\n"
    )


def test_rows_under_any_with_equal_outcomes_are_no_finding(validate, tmp_path: Path) -> None:
    path = ruleset(
        tmp_path,
        """
        tables:
          - id: AUTH
            hit: any
            inputs: [max_line_discount]
            rows:
              - when: ["<= 0.2"]
                then: {require: [sales_manager]}
              - when: ["[0.1..0.3]"]
                then: {require: sales_manager}
              - when: ["> 0.3"]
                then: {require: [cfo]}
        """,
    )
    result = validate(path)
    assert (result.exit_code, result.stdout) == (0, "1 ruleset OK\n")


def test_a_gap_is_reported_at_the_table_with_a_value_no_row_matches(
    validate, tmp_path: Path
) -> None:
    path = ruleset(
        tmp_path,
        """
        tables:
          - id: SIZE
            hit: unique
            inputs: [risk_offer, customer.segment]
            rows:
              - when: [true, rabbit]
                then: {reject: "No risk offers to small accounts."}
              - when: [true, deer]
                then: {require: [vp_sales]}
          - id: MIX
            hit: first
            inputs: [services_ratio]
            rows:
              - when: ["< 0.2"]
                then: {require: [deal_desk]}
              - when: ["> 0.4"]
                then: {require: [cfo]}
        """,
    )
    result = validate(path)
    assert result.exit_code == 0
    size, mix = at(path, "- id: SIZE", 5), at(path, "- id: MIX", 5)
    assert result.stdout == (
        f"{size}: warning: table 'SIZE' (hit unique) has a gap: no row matches "
        "risk_offer=false, customer.segment=elephant\n"
        f"{size}: warning: table 'SIZE' (hit unique) has a gap: no row matches "
        "risk_offer=true, customer.segment=elephant\n"
        f"{mix}: warning: table 'MIX' (hit first) has a gap: no row matches "
        "services_ratio=0.2\n"
        "1 ruleset OK, 3 warnings in 1 file\n"
    )


def test_a_multi_hit_table_has_no_gaps(validate, tmp_path: Path) -> None:
    path = ruleset(
        tmp_path,
        """
        tables:
          - id: CHECKS
            hit: collect
            inputs: [services_ratio]
            rows:
              - when: ["< 0.2"]
                then: {flag: "Little services."}
        """,
    )
    assert validate(path).stdout == "1 ruleset OK\n"


def test_a_row_that_earlier_rows_shadow_under_first_names_them(validate, tmp_path: Path) -> None:
    path = ruleset(
        tmp_path,
        """
        tables:
          - id: SPLIT
            hit: first
            inputs: [margin]
            rows:
              - when: ["< 0.5"]
                then: {}
              - when: [">= 0.5"]
                then: {require: [deal_desk]}
              - when: ["not(0.7)"]
                then: {require: [cfo]}
          - id: NOT
            hit: first
            inputs: [margin]
            rows:
              - when: ["not(< 0.5)"]
                then: {require: [deal_desk]}
              - when: ["> 0.6"]
                then: {require: [cfo]}
              - when: ["-"]
                then: {}
        """,
    )
    result = validate(path)
    assert result.exit_code == 0
    # `not(...)` is beyond the load-time unreachable-row check (an error), so this is a warning
    assert result.stdout == (
        f"{at(path, 'not(0.7)', 9)}: warning: row 3 of table 'SPLIT' is never reached "
        "(hit first): rows 1 and 2 together match everything it matches\n"
        f"{at(path, '> 0.6', 9)}: warning: row 2 of table 'NOT' is never reached (hit first): "
        "row 1 matches everything it matches\n"
        "1 ruleset OK, 2 warnings in 1 file\n"
    )


def test_writers_of_one_output_that_file_order_alone_decides_conflict(
    validate, tmp_path: Path
) -> None:
    path = ruleset(
        tmp_path,
        """
        outputs:
          note: {combine: first}
          margin_floor: {combine: max}
          tags: {combine: list}
        rules:
          - id: BIG
            when: customer.segment == "elephant"
            then: {set: {note: big, tags: big}}
          - id: THIN
            when: margin < 0.3
            then: {set: {note: thin, tags: thin}}
          - id: MID
            when: customer.segment == "deer"
            then: {set: {note: mid}}
          - id: FIRST
            priority: 10
            when: margin < 0.1
            then: {set: {note: first}}
          - id: HIGH
            when: customer.segment in ["rabbit", "deer"]
            then: {set: {margin_floor: high}}
          - id: FLOOR
            when: customer.segment != "elephant"
            then: {set: {margin_floor: 0.3}}
          - id: ELEPHANT
            when: customer.segment == "elephant"
            then: {set: {margin_floor: 0.4}}
        """,
    )
    result = validate(path)
    assert result.exit_code == 0
    big = at(path, "- id: BIG", 5)
    thin = at(path, "- id: THIN", 5)
    floor = at(path, "- id: FLOOR", 5)
    # BIG and MID test one path with values no deal has both of; FIRST has its own priority;
    # a list keeps every value; ELEPHANT and HIGH never fire together
    assert result.stdout == (
        f"{at(path, 'thin, tags')}: warning: output 'note' (combine first) is set to 'thin' "
        f"by rule 'THIN' and to 'big' by rule 'BIG' at {big}, at the same priority (0): file "
        "order alone picks 'big'\n"
        f"{at(path, 'mid}')}: warning: output 'note' (combine first) is set to 'mid' "
        f"by rule 'MID' and to 'thin' by rule 'THIN' at {thin}, at the same priority (0): file "
        "order alone picks 'thin'\n"
        f"{at(path, 'high}')}: warning: output 'margin_floor' (combine max) is "
        "set to 'high' by rule 'HIGH', which is not a number: combine max keeps only numbers, "
        f"so 'high' is lost when rule 'FLOOR' at {floor} sets it too\n"
        "1 ruleset OK, 3 warnings in 1 file\n"
    )


def test_rows_of_one_single_hit_table_never_conflict_but_collect_rows_can(
    validate, tmp_path: Path
) -> None:
    path = ruleset(
        tmp_path,
        """
        outputs: {note: {combine: first}}
        tables:
          - id: ONE
            hit: first
            priority: 10
            inputs: [margin]
            rows:
              - when: ["< 0.3"]
                then: {set: {note: low}}
              - when: ["-"]
                then: {set: {note: any}}
          - id: ALL
            hit: collect
            inputs: [services_ratio]
            rows:
              - when: ["<= 0.3"]
                then: {set: {note: few}}
              - when: ["> 0.5"]
                then: {set: {note: many}}
              - when: ["> 0.2"]
                then: {set: {note: some}}
        """,
    )
    result = validate(path)
    few = at(path, '"<= 0.3"', 9)
    # ONE's rows are one decision, and ONE's priority puts its value first; ALL's rows 1 and 2
    # never both match; its row 3 meets row 1 at a services ratio of 0.2 to 0.3
    assert result.stdout == (
        f"{at(path, 'some}')}: warning: output 'note' (combine first) is set to 'some' by row 3 "
        f"of table 'ALL' and to 'few' by row 1 of table 'ALL' at {few}, at the "
        "same priority (0): row order alone picks 'few'\n"
        "1 ruleset OK, 1 warning in 1 file\n"
    )


def test_strict_makes_warnings_errors(validate, tmp_path: Path) -> None:
    path = ruleset(
        tmp_path,
        """
        tables:
          - id: MIX
            hit: first
            inputs: [services_ratio]
            rows:
              - when: ["< 0.2"]
                then: {require: [deal_desk]}
        """,
    )
    warning = (
        f"{at(path, '- id: MIX', 5)}: warning: table 'MIX' (hit first) has a gap: no row "
        "matches services_ratio=0.2\n"
    )
    relaxed = validate(path)
    assert (relaxed.exit_code, relaxed.stdout) == (
        0,
        warning + "1 ruleset OK, 1 warning in 1 file\n",
    )
    strict = validate("--strict", path)
    assert (strict.exit_code, strict.stdout) == (1, warning)
    assert strict.stderr == "1 warning in 1 file (errors under --strict)\n"
    path.write_text(path.read_text() + '      - when: ["-"]\n        then: {}\n')
    clean = validate("--strict", path)
    assert (clean.exit_code, clean.stdout, clean.stderr) == (0, "1 ruleset OK\n", "")


def test_a_set_with_errors_reports_its_errors_only(validate, tmp_path: Path) -> None:
    # the analysis needs a loaded set; the errors are what to fix first
    path = ruleset(
        tmp_path,
        """
        tables:
          - id: MIX
            hit: first
            inputs: [services_ratoi]
            rows:
              - when: ["< 0.2"]
                then: {}
        """,
    )
    result = validate("--strict", path)
    assert result.exit_code == 1
    assert "warning" not in result.stdout
    assert result.stdout.startswith(f"{at(path, 'services_ratoi')}: unknown path")


def test_a_search_that_reaches_its_limit_says_so(
    validate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analysis, "SEARCH_LIMIT", 3)
    path = ruleset(
        tmp_path,
        """
        tables:
          - id: WIDE
            hit: first
            inputs: [margin, services_ratio]
            rows:
              - when: ["< 0.1", "< 0.1"]
                then: {}
              - when: ["< 0.2", "< 0.2"]
                then: {}
          - id: SHADOW
            hit: first
            inputs: [margin, services_ratio]
            rows:
              - when: ["< 0.1", "< 0.1"]
                then: {}
              - when: ["< 0.2", "-"]
                then: {}
              - when: ["-", "-"]
                then: {}
        """,
    )
    result = validate(path)
    assert result.stdout == (
        f"{at(path, '- id: WIDE', 5)}: warning: table 'WIDE': the search for gaps stopped at "
        "its limit (3 steps); there may be gaps it did not reach\n"
        f"{at(path, '- id: WIDE', 5)}: warning: table 'WIDE': the search stopped at its limit "
        "(3 steps) before telling whether row 2 can be reached\n"
        f"{at(path, '- id: SHADOW', 5)}: warning: table 'SHADOW': the search stopped at its "
        "limit (3 steps) before telling whether rows 2 and 3 can be reached\n"
        "1 ruleset OK, 3 warnings in 1 file\n"
    )


def test_a_200_row_table(validate, tmp_path: Path) -> None:
    rows = "".join(
        f'      - when: ["[{i}..{i + 1})", "{"deer, rabbit" if i % 2 else "-"}"]\n'
        "        then: {}\n"
        for i in range(200)
    )
    path = ruleset(
        tmp_path,
        "tables:\n  - id: BIG\n    hit: unique\n"
        "    inputs: [billing.payment_terms_days, customer.segment]\n    rows:\n" + rows,
    )
    result = validate(path)
    where = at(path, "- id: BIG", 5)
    assert result.stdout == (
        f"{where}: warning: table 'BIG' (hit unique) has a gap: no row matches "
        "billing.payment_terms_days=-1, customer.segment=elephant\n"
        f"{where}: warning: table 'BIG' (hit unique) has a gap: no row matches "
        "billing.payment_terms_days=1, customer.segment=elephant\n"
        f"{where}: warning: table 'BIG' (hit unique) has a gap: no row matches "
        "billing.payment_terms_days=200, customer.segment=elephant\n"
        f"{where}: warning: table 'BIG': more gaps not listed\n"
        "1 ruleset OK, 4 warnings in 1 file\n"
    )


# ---------------------------------------------------------------------------------------------
# The house rulesets


def test_the_house_rulesets_validate_clean(validate) -> None:
    result = validate()
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["3 rulesets OK"]


def test_tables_not_marked_incomplete_report_their_gaps(validate, tmp_path: Path) -> None:
    # the house's partial tables say `complete: false`; without it, each gap is reported (every
    # one is a deal the table means to leave alone: no requirement, no rejection)
    for name in ("billing-milestone", "onsite-support", "partner-margin", "approvers"):
        text = (HOUSE / f"{name}.yaml").read_text()
        assert name == "approvers" or "complete: false" in text
        (tmp_path / f"{name}.yaml").write_text(text.replace("complete: false", "complete: true"))
    billing, onsite, partner = (
        tmp_path / f"{n}.yaml" for n in ("billing-milestone", "onsite-support", "partner-margin")
    )
    bm6, os3 = at(billing, "- id: BM-6", 5), at(onsite, "- id: OS-3", 5)
    pm8 = at(partner, "- id: PM-8", 5)
    gap = "warning: table '{}' (hit {}) has a gap: no row matches "
    result = validate(billing, onsite, partner)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"{bm6}: {gap.format('BM-6', 'first')}requested_split.total=100, requested_split.min=1, "
        'requested_split.key="30/30/30/10", risk_offer=false, totals.product=0, '
        "offer.type=new_market",
        f"{bm6}: {gap.format('BM-6', 'first')}requested_split.total=100, requested_split.min=1, "
        'requested_split.key="30/30/30/10", risk_offer=true, totals.product=500000, '
        "offer.type=new_market",
        f"{bm6}: {gap.format('BM-6', 'first')}requested_split.total=100, requested_split.min=1, "
        'requested_split.key="50/50", risk_offer=true, totals.product=0, offer.type=new_market',
        f"{os3}: {gap.format('OS-3', 'first')}risk_offer=false, totals.product=0, "
        "customer.government=true, customer.region=us-west",
        f"{os3}: {gap.format('OS-3', 'first')}risk_offer=true, totals.product=0, "
        "customer.government=true, customer.region=us-west",
        f"{pm8}: {gap.format('PM-8', 'unique')}risk_offer=false, customer.segment=elephant",
        f"{pm8}: {gap.format('PM-8', 'unique')}risk_offer=true, customer.segment=elephant",
        "3 rulesets OK, 7 warnings in 3 files",
    ]


# ---------------------------------------------------------------------------------------------
# Random tables: every witness holds under the real cell evaluation

ENUM = ("a", "b", "c")
NUMBERS = ["0", "0.5", "1", "2", "3"]


def number_cells() -> st.SearchStrategy[Any]:
    n = st.sampled_from(NUMBERS)
    one = st.one_of(
        n.map(lambda v: f"{v}"),
        st.tuples(st.sampled_from(["<", "<=", ">", ">=", "=", "!="]), n).map(" ".join),
        # two different ends: a range no value is inside is a validation error
        st.tuples(
            st.sampled_from("[("),
            st.lists(n, min_size=2, max_size=2, unique=True),
            st.sampled_from("])"),
        ).map(lambda t: f"{t[0]}{min(t[1], key=Decimal)}..{max(t[1], key=Decimal)}{t[2]}"),
    )
    simple = st.one_of(
        one,
        # a list of tests, any of which matches (a union of intervals)
        st.lists(one, min_size=2, max_size=3, unique=True).map(", ".join),
        st.sampled_from([0.5, 1, 2]),
    )
    return st.one_of(st.just("-"), simple, simple.map(lambda c: f"not({c})"))


def string_cells(values: tuple[str, ...]) -> st.SearchStrategy[Any]:
    simple = st.one_of(
        st.sampled_from(values), st.lists(st.sampled_from(values), min_size=2, unique=True)
    ).map(lambda v: v if isinstance(v, str) else ", ".join(v))
    return st.one_of(st.just("-"), simple, simple.map(lambda c: f"not({c})"))


KINDS = {
    "number": (Field((1, 0), "n", "number"), number_cells()),
    "enum": (Field((1, 0), "e", "string", ENUM), string_cells(ENUM)),
    "text": (Field((1, 0), "s", "string"), string_cells(("x", "y"))),
    "boolean": (Field((1, 0), "f", "boolean"), st.sampled_from(["-", True, False])),
}


@st.composite
def tables(draw: st.DrawFn) -> tuple[Table, list[Field]]:
    kinds = draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=3, unique=True))
    inputs = [KINDS[k][0] for k in kinds]
    rows = [
        Row(
            [draw(KINDS[k][1]) for k in kinds],
            Actions(sets={"o": draw(st.sampled_from([1, 2]))}),
            i,
            ("tables", 0, "rows", i),
        )
        for i in range(draw(st.integers(1, 6)))
    ]
    hit = draw(st.sampled_from(["unique", "any", "first"]))
    texts = [Text(f.path, ("tables", 0, "inputs", j)) for j, f in enumerate(inputs)]
    return Table("T", texts, rows, hit, path=("tables", 0)), inputs


def values(field: Field) -> st.SearchStrategy[Any]:
    if field.type == "number":
        return st.one_of(
            st.sampled_from(NUMBERS).map(Decimal),
            st.decimals(min_value=-5, max_value=5, places=2),
        )
    if field.type == "boolean":
        return st.booleans()
    return st.sampled_from(field.enum or ("x", "y", "z", "other"))


def matches(row: Row, inputs: list[Field], data: dict[str, Any]) -> bool:
    """The row's cells on ``data``, as the engine evaluates them."""
    for cell, field in zip(row.cells, inputs, strict=True):
        test = parse_cell(cell, field)
        if test is not None and evaluate(test, data) is not True:
            return False
    return True


def locate(path: tuple[str | int, ...]) -> Location:
    return Location("t.yaml", len(path), 1)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.data())
def test_witnesses_hold_under_the_real_cell_evaluation(
    drawn: tuple[Table, list[Field]], data: st.DataObject
) -> None:
    table, inputs = drawn
    result = TableAnalysis(table, inputs)
    assert result.analysable
    findings: list[Finding] = result.findings(locate)

    def deal(witness: Any) -> dict[str, Any]:
        assert list(witness) == [f.path for f in inputs]  # a value for every input
        return dict(witness)

    for finding in findings:
        if finding.kind == "overlap":
            first, second = (table.rows[r - 1] for r in finding.rows)
            assert matches(first, inputs, deal(finding.witness))
            assert matches(second, inputs, deal(finding.witness))
            assert table.hit != "any" or first.then.sets != second.then.sets
        elif finding.kind == "gap":
            assert not any(matches(row, inputs, deal(finding.witness)) for row in table.rows)
    kinds = {f.kind for f in findings}
    shadowed = {f.rows[-1]: f.rows[:-1] for f in findings if f.kind == "unreachable"}
    for _ in range(10):
        point = {f.path: data.draw(values(f)) for f in inputs}
        matched = [i + 1 for i, row in enumerate(table.rows) if matches(row, inputs, point)]
        if "gap" not in kinds and "limit" not in kinds:
            assert matched, f"no row matches {point}, and no gap was reported"
        if table.hit == "unique" and "overlap" not in kinds:
            assert len(matched) <= 1
        for row in matched:
            if row in shadowed:  # a row never reached: a row that shadows it matches first
                assert set(shadowed[row]) & set(matched)


# ---------------------------------------------------------------------------------------------
# The example in docs/rulesets.md


def test_the_documented_example(validate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "rulesets.md").read_text()
    section = text.split("### Table analysis", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    console = section.split("```console\n", 1)[1].split("```", 1)[0]
    command, *printed = console.splitlines()
    name = example.splitlines()[0].removeprefix("# ")
    (tmp_path / name).write_text(example, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert command == f"$ dealdesk validate {name}"
    result = validate(name)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == printed
