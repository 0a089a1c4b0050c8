"""durable_rules' limits, pinned on the bare C extension, and the helpers that measure a
definition against them (``dealdesk.engines.durable.limits``).

For whoever upgrades durable_rules or changes how the driver splits rulesets: the first tests
show each limit on durable_rules 2.0.28 itself (in a fresh interpreter where a limit corrupts
the heap), the rest check what the driver and the compiler rely on to stay inside them.
"""

from __future__ import annotations

import json
import os

import durable_rules_engine
import pytest
from bounded import run_perturbed

from dealdesk.engines.durable.limits import (
    MAX_ELEMENT_PROPERTIES,
    MAX_FACT_PROPERTIES,
    MAX_RULES,
    MAX_STRING_BYTES,
    fits,
    merge,
    project,
    property_count,
    reads,
    rule_reads,
)

GLIBC = bool(hasattr(os, "confstr") and os.confstr("CS_GNU_LIBC_VERSION"))


def create_ruleset_text(text: str) -> int:
    return durable_rules_engine.create_ruleset("limits", text)


# durable_rules 2.0.28 itself


@pytest.mark.skipif(not GLIBC, reason="MALLOC_PERTURB_ is glibc's")
@pytest.mark.parametrize(("rules", "overflows"), [(64, False), (65, True)])
def test_more_than_64_rules_matching_one_fact_overflow_durables_stack(
    rules: int, overflows: bool
) -> None:
    # Sibling conditions after a shared prefix all match: every one is pending on the stack at
    # once. The failed session is half-built, and deleting it corrupts the heap.
    result = run_perturbed(
        f"""
        import json, durable_rules_engine as e
        rules = {{f"r{{i}}": {{"all": [{{"m": {{"$and": [{{"a": 1}}, {{"$gt": {{"x": -i - 0.5}}}}]}}}}]}}
                 for i in range({rules})}}
        rules["session"] = {{"all": [{{"m": {{"$s": 1}}}}]}}  # as the driver adds (deletion needs it)
        h = e.create_ruleset("stack", json.dumps(rules))
        try:
            _, state = e.assert_fact(h, '{{"sid":"1","id":"1","a":1,"x":1.0}}')
            fired = [e.start_action_for_state(h, state)[1]]
            while fired[-1]:
                fired.append(e.complete_and_start_action(h, state))
            print(len(fired) - 2, "fired", flush=True)
        except e.error as error:
            print(error, flush=True)
        e.delete_state(h, "1")
        print("deleted", flush=True)
        """
    )
    if overflows:
        assert "error code: 303" in result.stdout
        assert result.returncode < 0, result.stdout  # SIGSEGV, or SIGABRT from glibc's checks
    else:
        assert result.returncode == 0 and "deleted" in result.stdout, result.stderr


@pytest.mark.parametrize("number", ["1e-05", "1e+16", "-3e-07"])
def test_durable_reads_an_exponent_only_after_a_fraction(number: str) -> None:
    # Python writes 0.00001 as 1e-05 and 10.0**16 as 1e+16.
    with pytest.raises(durable_rules_engine.error, match="error code: 204"):
        create_ruleset_text('{"r":{"all":[{"m":{"$lt":{"x":' + number + "}}}]}}")
    mantissa, exponent = number.split("e")
    create_ruleset_text('{"r":{"all":[{"m":{"$lt":{"x":' + f"{mantissa}.0e{exponent}" + "}}}]}}")


def test_durable_compares_strings_by_their_lengths_modulo_65536() -> None:
    handle = durable_rules_engine.create_ruleset(
        "long-text", json.dumps({"short": {"all": [{"m": {"s": "abc"}}]}})
    )
    long_value = "abc" + "x" * 65_536  # 65,539 bytes: compared as 3
    _, state = durable_rules_engine.assert_fact(
        handle, json.dumps({"sid": "1", "id": "1", "s": long_value})
    )
    started = durable_rules_engine.start_action_for_state(handle, state)
    assert started is not None and list(json.loads(started[1])) == ["short"]  # wrongly equal
    assert durable_rules_engine.complete_and_start_action(handle, state) is None
    durable_rules_engine.delete_state(handle, "1")
    assert MAX_STRING_BYTES == 65_535


# What a definition reads


def test_reads_names_nested_paths_references_and_list_elements() -> None:
    condition = {
        "$and": [
            {"_a": 1},
            {"$ex": {"customer.region": 1}},
            {"$gt": {"margin": {"$m": "outputs.floor"}}},
            {"$lt": {"cost": {"$mul": {"$l": {"$m": "price"}, "$r": 2}}}},
            {"$iany": {"lines": {"$and": [{"$i.category": "hw"}, {"$gt": {"$i._x1": 0}}]}}},
            {"$iall": {"tags": {"$i": "a"}}},
            {"$or": [{"$nex": {"partner": 1}}, {"partner.tier": "gold"}]},
        ]
    }
    assert reads(condition) == {
        "_a": None,
        "customer": {"region": None},
        "margin": None,
        "outputs": {"floor": None},
        "cost": None,
        "price": None,
        "lines": {"[]": {"category": None, "_x1": None}},
        "tags": {"[]": {}},
        "partner": {"tier": None},
    }
    assert rule_reads({"all": [{"m": condition}]}) == reads(condition)


def test_property_count_counts_nested_keys_and_lists_once() -> None:
    tree = reads({"$and": [{"a.b.c": 1}, {"a.d": 1}, {"$iany": {"l": {"$i.x": 1}}}]})
    assert property_count(tree) == 5  # a, a.b, a.b.c, a.d, l


def test_fits_bounds_the_fact_and_each_element() -> None:
    def wide(count: int, prefix: str = "") -> list[dict]:
        return [{"$ex": {f"{prefix}p{i}": 1}} for i in range(count)]

    assert fits(reads({"$and": wide(MAX_FACT_PROPERTIES)}))
    assert not fits(reads({"$and": wide(MAX_FACT_PROPERTIES + 1)}))
    assert fits(reads({"$iany": {"l": {"$and": wide(MAX_ELEMENT_PROPERTIES, "$i.")}}}))
    assert not fits(reads({"$iany": {"l": {"$and": wide(MAX_ELEMENT_PROPERTIES + 1, "$i.")}}}))


def test_merge_keeps_both_sides_and_changes_neither() -> None:
    left = reads({"$and": [{"a.b": 1}, {"$ex": {"c": 1}}]})
    right = reads({"$and": [{"a.d": 1}, {"$iany": {"c": {"$i.e": 1}}}]})
    assert merge(left, right) == {"a": {"b": None, "d": None}, "c": {"[]": {"e": None}}}
    assert left == {"a": {"b": None}, "c": None}
    assert right == {"a": {"d": None}, "c": {"[]": {"e": None}}}


def test_project_keeps_what_is_read_and_presence_of_objects_and_lists() -> None:
    tree = reads(
        {
            "$and": [
                {"customer.region": "emea"},
                {"$ex": {"partner": 1}},
                {"$ex": {"notes": 1}},
                {"$iany": {"lines": {"$i.category": "hw"}}},
            ]
        }
    )
    fact = {
        "customer": {"region": "emea", "name": "Acme"},
        "partner": {"tier": "gold"},
        "notes": ["a", "b"],
        "lines": [{"category": "hw", "sku": "X"}, {"sku": "Y"}],
        "margin": 0.3,
    }
    assert project(fact, tree) == {
        "customer": {"region": "emea"},
        "partner": {},
        "notes": [],
        "lines": [{"category": "hw"}, {}],
    }


def test_the_rule_limit_leaves_room_for_the_drivers_session_rule() -> None:
    assert MAX_RULES == 63
