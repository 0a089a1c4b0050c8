"""The combine step (SPEC §4): status precedence, approval order, output combination."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dealdesk.combine import (
    STATUS_ORDER,
    combine_values,
    decision_record,
    format_output,
    order_roles,
    policy_status,
    worst,
)
from dealdesk.rules.policyset import house_approvers

RANKS = house_approvers()
statuses = st.sampled_from(STATUS_ORDER)
decimals = st.decimals(
    min_value=-(10**9), max_value=10**9, places=4, allow_nan=False, allow_infinity=False
)


def test_house_approver_ranks_are_spec_order() -> None:
    assert RANKS == [
        "deal_desk", "sales_manager", "sales_director", "regional_vp", "vp_sales", "vp_channels",
        "services_finance", "vp_finance", "controller", "revenue_accounting",
        "public_sector_legal", "legal", "cfo",
    ]  # fmt: skip


@given(st.lists(statuses))
def test_worst_status_wins(found: list[str]) -> None:
    result = worst(found)
    assert all(STATUS_ORDER.index(result) >= STATUS_ORDER.index(s) for s in found)
    assert result in found or (not found and result == "approved")


@given(st.integers(0, 3), st.integers(0, 3))
def test_policy_status_precedence(rejects: int, requires: int) -> None:
    expected = "rejected" if rejects else "needs_approval" if requires else "approved"
    assert policy_status(rejects, requires) == expected


@given(st.lists(st.sampled_from(RANKS + ["zz_custom", "aa_custom"])))
def test_roles_are_unique_and_in_rank_order(roles: list[str]) -> None:
    ordered = order_roles(roles, RANKS)
    assert sorted(ordered) == sorted(set(roles))
    ranks = [RANKS.index(r) if r in RANKS else len(RANKS) for r in ordered]
    assert ranks == sorted(ranks)


@given(st.lists(decimals, min_size=1))
def test_numeric_combine_modes(values: list[Decimal]) -> None:
    assert combine_values("max", values) == max(values)
    assert combine_values("min", values) == min(values)
    assert combine_values("sum", values) == sum(values, Decimal(0))
    assert combine_values("first", values) == values[0]
    assert combine_values("list", values) == values


@given(decimals)
def test_money_and_fraction_formats(value: Decimal) -> None:
    money = format_output(value, "money", "USD")
    assert isinstance(money, str) and Decimal(money) == value.quantize(
        Decimal("0.01"), rounding="ROUND_HALF_UP"
    )
    yen = format_output(value, "money", "JPY")
    assert "." not in yen and Decimal(yen) == value.quantize(Decimal(1), rounding="ROUND_HALF_UP")
    assert format_output(value, "fraction", "USD") == float(
        value.quantize(Decimal("0.0001"), rounding="ROUND_HALF_UP")
    )


def test_record_keys_and_status_from_policies() -> None:
    record = decision_record(
        "D-1",
        {"a": {"status": "approved"}, "b": {"status": "rejected"}},
        approvals=[],
        reasons=[],
        flags=[],
        provenance={"digest": "x"},
    )
    assert list(record) == [
        "deal_id",
        "status",
        "approvals",
        "policies",
        "reasons",
        "flags",
        "clauses",
        "errors",
        "provenance",
    ]
    assert record["status"] == "rejected"
    errors = [{"path": "lines[0]", "message": "bad"}]
    assert (
        decision_record(
            "D-1", {}, approvals=[], reasons=[], flags=[], errors=errors, provenance={}
        )["status"]
        == "invalid"
    )


def test_record_dict_is_the_records_key_order() -> None:
    from dealdesk.record import KEYS, DecisionRecord, record_dict

    values = ("D-1", "approved", [], {}, [], [], [], [], {"digest": "x"})
    assert record_dict(*values) == DecisionRecord(*values).to_dict()  # type: ignore[arg-type]
    assert tuple(record_dict(*values)) == KEYS
    with pytest.raises(TypeError, match="9 fields"):
        record_dict(*values[:-1])
