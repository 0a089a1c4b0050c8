"""Tests of the lean durable_rules driver against the real C extension (no mocks).

For whoever changes ``dealdesk.engines.durable.driver`` or the compiler that feeds it: each test pins one
durable_rules 2.0.28 behaviour from SPEC §9 that the driver is designed around, so an upgrade
or a shortcut in the driver that breaks one of them fails here.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from typing import Any

import durable_rules_engine
import pytest
from bounded import run_child

from dealdesk.engines.durable.driver import SESSION_RULE, DurableDriver, get_driver, tune_malloc
from dealdesk.engines.durable.limits import MAX_FACT_PROPERTIES, MAX_RULES
from dealdesk.errors import EngineError


def rule(condition: dict[str, Any]) -> dict[str, Any]:
    """A single-fact rule in the shape the compiler emits."""
    return {"all": [{"m": condition}]}


def deal(*conditions: dict[str, Any]) -> dict[str, Any]:
    """A rule anchored on ``kind == "deal"`` plus ``conditions``, all in one ``$and``."""
    return rule({"$and": [{"kind": "deal"}, *conditions]})


def session_exists(driver: DurableDriver, name: str, sid: str) -> bool:
    """Whether durable_rules still holds session ``sid`` of ruleset ``name``."""
    try:
        durable_rules_engine.get_state(driver._rulesets[name].handle, sid)
    except durable_rules_engine.error as error:
        assert "error code: 309" in str(error)  # session id not found
        return False
    return True


@pytest.fixture
def driver() -> DurableDriver:
    """A fresh driver, so session ids start at 1 and no ruleset name is taken."""
    return DurableDriver()


# (1) At most 1,024 live sessions per ruleset: the driver deletes each one, so a batch goes on.


def test_thousands_of_facts_outlive_the_1024_session_limit(driver: DurableDriver) -> None:
    driver.register("limit", {"hit": rule({"x": 1})})
    for _ in range(3_000):
        assert driver.match("limit", {"x": 2}) == []
    for _ in range(3_000):
        assert driver.match("limit", {"x": 1}) == ["hit"]


def test_the_1025th_live_session_is_a_memory_error() -> None:
    # The limit the driver exists to avoid, shown on the bare extension (it may crash later).
    result = run_child(
        """
        import json, durable_rules_engine as e
        h = e.create_ruleset("leak", json.dumps({"hit": {"all": [{"m": {"x": 1}}]}}))
        for n in range(1, 1025):
            e.assert_fact(h, json.dumps({"sid": str(n), "id": str(n), "x": 2}))
        try:
            e.assert_fact(h, json.dumps({"sid": "1025", "id": "1025", "x": 2}))
        except MemoryError:
            print("MemoryError at 1025", flush=True)
        """
    )
    assert "MemoryError at 1025" in result.stdout


# (2) An unmatched fact still creates a session in durable_rules; the driver keeps one session
# per ruleset, retracting every fact from it, so no session piles up and none holds a fact.


def facts_held(driver: DurableDriver, name: str, sid: str) -> list[dict[str, Any]]:
    """The facts session ``sid`` of ruleset ``name`` holds, its state fact included."""
    handle = driver._rulesets[name].handle
    facts: list[dict[str, Any]] = json.loads(durable_rules_engine.get_facts(handle, sid))
    return facts


def test_unmatched_fact_returns_nothing_and_the_session_keeps_no_fact(
    driver: DurableDriver,
) -> None:
    driver.register("unmatched", {"hit": rule({"x": 1})})
    handle = driver._rulesets["unmatched"].handle
    # The bare extension answers "not handled" (1) yet keeps the session alive.
    code, state = durable_rules_engine.assert_fact(handle, '{"sid":"raw","id":"raw","x":2}')
    assert code == 1
    assert session_exists(driver, "unmatched", "raw")
    # Drain the driver's session rule before deleting, as match() does (see the next tests).
    started = durable_rules_engine.start_action_for_state(handle, state)
    assert started is not None and json.loads(started[1]) == {
        SESSION_RULE: {"m": {"sid": "raw", "id": "sid-raw", "$s": 1}}
    }
    assert durable_rules_engine.complete_and_start_action(handle, state) is None
    durable_rules_engine.delete_state(handle, "raw")

    state_fact = {"sid": "1", "id": "sid-1", "$s": 1}
    for fact, fired in [({"x": 2}, []), ({"x": 1}, ["hit"])] * 3:
        assert driver.match("unmatched", fact) == fired
        # one live session, holding only its state fact: the matched fact was retracted
        assert facts_held(driver, "unmatched", "1") == [state_fact]
    assert not any(session_exists(driver, "unmatched", str(sid)) for sid in range(2, 8))


def test_a_reused_session_answers_as_a_fresh_one(driver: DurableDriver) -> None:
    definition = {
        "eq": rule({"x": 1}),
        "neg": rule({"$nex": {"y": 1}}),  # fires on the session's state fact too: dropped
        "any": rule({"$iany": {"lines": {"$i.k": "p"}}}),
        "all": rule({"$and": [{"$ex": {"lines": 1}}, {"$iall": {"lines": {"$gt": {"$i.v": 1}}}}]}),
        "ref": rule({"$and": [{"$ex": {"a": 1}}, {"$ex": {"b": 1}}, {"$lt": {"a": {"$m": "b"}}}]}),
    }
    driver.register("reused", definition)
    facts: list[dict[str, Any]] = [
        {"x": 1},
        {"x": 1},  # the same fact again: no "already in the session" (code 2)
        {"x": 2, "y": 1},
        {"lines": [{"k": "p", "v": 2}, {"k": "q", "v": 3}]},
        {"lines": [{"k": "q", "v": 0}]},
        {"lines": []},
        {"a": 1, "b": 2, "y": 1},
        {"a": 3, "b": 2},
        {},
    ]
    reference = DurableDriver()
    reference.register("reused", definition)
    part = reference._rulesets["reused"].parts[0]
    for fact in facts * 3:
        if part.sid is not None:  # a fresh session for every fact, as the driver had before
            durable_rules_engine.delete_state(part.handle, part.sid)
            part.sid = None
        expected = reference.match("reused", fact)
        assert driver.match("reused", fact) == expected, fact
    assert facts_held(driver, "reused", "1") == [{"sid": "1", "id": "sid-1", "$s": 1}]


def test_a_failed_fact_costs_its_session_and_the_next_fact_gets_a_fresh_one(
    driver: DurableDriver,
) -> None:
    driver.register("fails", {"a": rule({"x": 1}), "b": rule({"$gt": {"x": 0}})})
    assert driver.match("fails", {"x": 1}) == ["a", "b"]
    with pytest.raises(EngineError, match="more than 1 actions"):
        driver.match("fails", {"x": 1}, max_actions=1)
    assert not session_exists(driver, "fails", "1")  # its actions were left half drained
    assert driver.match("fails", {"x": 1}) == ["a", "b"]
    assert session_exists(driver, "fails", "2")


GLIBC = bool(hasattr(os, "confstr") and os.confstr("CS_GNU_LIBC_VERSION"))
# glibc fills every malloc'd block with garbage: what a long-running process's heap holds anyway.
PERTURBED = {**os.environ, "MALLOC_PERTURB_": "165"}


@pytest.mark.skipif(not GLIBC, reason="MALLOC_PERTURB_ is glibc's")
@pytest.mark.parametrize(("drain", "survives"), [(False, False), (True, True)])
def test_deleting_a_session_that_started_no_action_frees_garbage(
    drain: bool, survives: bool
) -> None:
    # createStateNode leaves the action context uninitialised; only a started action sets it.
    result = run_child(
        f"""
        import durable_rules_engine as e
        h = e.create_ruleset("r", '{{"hit":{{"all":[{{"m":{{"x":1}}}}]}},"s":{{"all":[{{"m":{{"$s":1}}}}]}}}}')
        for n in range(20):
            code, state = e.assert_fact(h, '{{"sid":"%d","id":"%d","x":2}}' % (n, n))
            if {drain}:
                e.start_action_for_state(h, state)
                while e.complete_and_start_action(h, state):
                    pass
            e.delete_state(h, str(n))
        print("survived")
        """,
        env=PERTURBED,
    )
    if survives:
        assert result.returncode == 0 and "survived" in result.stdout, result.stderr
    else:
        assert result.returncode < 0  # SIGSEGV, or SIGABRT from "free(): invalid pointer"


@pytest.mark.skipif(not GLIBC, reason="MALLOC_PERTURB_ is glibc's")
def test_driver_deletes_every_kind_of_session_safely() -> None:
    result = run_child(
        """
        from dealdesk.engines.durable.driver import DurableDriver
        from dealdesk.errors import EngineError
        d = DurableDriver()
        d.register("r", {"hit": {"all": [{"m": {"x": 1}}]}, "pos": {"all": [{"m": {"$gt": {"x": 0}}}]}})
        for n in range(300):
            assert d.match("r", {"x": 2 - n % 2}) == (["hit", "pos"] if n % 2 else ["pos"])
            assert d.match("r", {"x": -1}) == []
            for fact, bound in (({"x": 1}, 1), ({f"p{i}": i for i in range(300)}, 10)):
                try:
                    d.match("r", fact, max_actions=bound)
                except EngineError:
                    pass
        print("survived")
        """,
    )
    assert result.returncode == 0 and "survived" in result.stdout, result.stderr


# (3) No timer threads: durable's Host starts two; the driver starts none.


def test_driver_starts_no_threads() -> None:
    python_threads = set(threading.enumerate())
    native_threads = (
        len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None
    )
    driver = DurableDriver()
    driver.register("threads", {"hit": rule({"x": 1})})
    assert driver.match("threads", {"x": 1}) == ["hit"]
    assert driver.match("threads", {"x": 2}) == []
    assert set(threading.enumerate()) == python_threads
    if native_threads is not None:
        assert len(os.listdir("/proc/self/task")) == native_threads


# (4) A negation-only rule matches durable's own state fact; update_state would make it loop.


NEGATION = {"neg": rule({"$nex": {"y": 1}}), "anchor": rule({"x": 1})}


def test_negation_only_rule_fires_on_the_fact_only(driver: DurableDriver) -> None:
    driver.register("negation", NEGATION)
    # Without update_state nothing loops; the firing on the state fact {sid, id, $s} is dropped.
    assert sorted(driver.match("negation", {"x": 1})) == ["anchor", "neg"]
    assert driver.match("negation", {"x": 1, "y": 1}) == ["anchor"]
    assert driver.match("negation", {"y": 1}) == []
    assert driver.match("negation", {}) == ["neg"]


def test_negation_only_rule_also_matches_the_state_fact_on_the_bare_extension() -> None:
    handle = durable_rules_engine.create_ruleset("negation-raw", json.dumps(NEGATION))
    code, state = durable_rules_engine.assert_fact(handle, '{"sid":"1","id":"1","y":1}')
    started = durable_rules_engine.start_action_for_state(handle, state)
    assert code == 1 and started is not None  # "not handled", yet an action is queued
    assert json.loads(started[1]) == {"neg": {"m": {"sid": "1", "id": "sid-1", "$s": 1}}}
    durable_rules_engine.delete_state(handle, "1")


def test_update_state_makes_a_negation_only_rule_loop() -> None:
    # What durable's Host does after every action, and why the driver never calls update_state.
    handle = durable_rules_engine.create_ruleset("negation-loop", json.dumps(NEGATION))
    _, state = durable_rules_engine.assert_fact(handle, '{"sid":"1","id":"1","y":1}')
    started = durable_rules_engine.start_action_for_state(handle, state)
    assert started is not None
    actions = 0
    message: str | None = started[1]
    while message and actions < 50:
        actions += 1
        durable_rules_engine.update_state(handle, '{"sid":"1","id":"sid-1","$s":1}')
        message = durable_rules_engine.complete_and_start_action(handle, state)
    durable_rules_engine.delete_state(handle, "1")
    assert actions == 50


def test_action_bound_stops_the_fact_and_the_driver_goes_on(driver: DurableDriver) -> None:
    driver.register("bound", {"a": rule({"x": 1}), "b": rule({"$gt": {"x": 0}})})
    with pytest.raises(EngineError, match=r"ruleset 'bound': more than 1 actions .* looping"):
        driver.match("bound", {"x": 1}, max_actions=1)
    assert not session_exists(driver, "bound", "1")
    assert driver.match("bound", {"x": 1}) == ["a", "b"]


# (5) durable_rules' opaque definition errors become EngineError naming the ruleset.


@pytest.mark.parametrize(
    ("definition", "code"),
    [
        ({"r": rule({"$bogus": {"x": 1}})}, 202),
        ({"r": {"all": [{"m": {"x": 1}}], "run": "r"}}, 105),
    ],
    ids=["bogus-operator", "run-key"],
)
def test_bad_definition_is_an_engine_error(
    driver: DurableDriver, definition: dict[str, Any], code: int
) -> None:
    with pytest.raises(
        EngineError, match=rf"durable_rules refused ruleset 'bad': error code {code}"
    ):
        driver.register("bad", definition)
    assert not driver.is_registered("bad")
    driver.register("bad", {"r": rule({"x": 1})})
    assert driver.match("bad", {"x": 1}) == ["r"]


# (6) Facts, not events: every rule that matches a fact fires.


THREE = {"eq": rule({"x": 1}), "gt": rule({"$gt": {"x": 0}}), "lt": rule({"$lt": {"x": 5}})}


def test_every_matching_rule_fires_for_a_fact(driver: DurableDriver) -> None:
    driver.register("three", THREE)
    assert driver.match("three", {"x": 1}) == ["eq", "gt", "lt"]
    assert driver.match("three", {"x": 7}) == ["gt"]


def test_an_event_is_consumed_by_the_first_rule_only() -> None:
    # Why the driver asserts facts: the same message posted as an event fires one rule.
    handle = durable_rules_engine.create_ruleset("three-events", json.dumps(THREE))
    _, state = durable_rules_engine.assert_event(handle, '{"sid":"1","id":"1","x":1}')
    started = durable_rules_engine.start_action_for_state(handle, state)
    assert started is not None
    assert list(json.loads(started[1])) == ["eq"]
    assert durable_rules_engine.complete_and_start_action(handle, state) is None
    durable_rules_engine.delete_state(handle, "1")


# (7) The condition forms the compiler emits: nested paths, $iany/$iall, $m arithmetic, guards.


FORMS = {
    "west": deal({"customer.region": "us-west"}),
    "any_support": deal({"$iany": {"lines": {"$i.category": "support"}}}),
    "any_support_bare": deal({"$iany": {"lines": {"category": "support"}}}),
    "all_qty": deal({"$iall": {"lines": {"$gt": {"$i.quantity": 1}}}}),
    "double_cost": deal(
        {"$ex": {"cost": 1}}, {"$gt": {"contract": {"$mul": {"$l": {"$m": "cost"}, "$r": 2}}}}
    ),
    "ratio": deal(
        {"$neq": {"cost": 0}},
        {"$lt": {"margin": {"$div": {"$l": {"$m": "contract"}, "$r": {"$m": "cost"}}}}},
    ),
    "unguarded_mul": deal({"$gt": {"contract": {"$mul": {"$l": {"$m": "cost"}, "$r": 2}}}}),
}


@pytest.mark.parametrize(
    ("fact", "fired"),
    [
        ({"customer": {"region": "us-west"}}, ["west"]),
        ({"customer": {"region": "emea"}}, []),
        (
            {
                "lines": [
                    {"category": "hardware", "quantity": 2},
                    {"category": "support", "quantity": 3},
                ]
            },
            ["any_support", "all_qty"],
        ),
        ({"lines": [{"category": "support", "quantity": 1}]}, ["any_support"]),
        ({"lines": []}, []),
        ({"contract": 100, "cost": 40, "margin": 1}, ["double_cost", "ratio", "unguarded_mul"]),
        ({"contract": 100, "cost": 60, "margin": 3}, []),
        ({"contract": 100, "cost": 0, "margin": 3}, ["double_cost", "unguarded_mul"]),
        # A missing operand makes durable's arithmetic comparison true: guard it with $ex.
        ({"contract": 100, "margin": 3}, ["unguarded_mul"]),
    ],
)
def test_condition_forms(driver: DurableDriver, fact: dict[str, Any], fired: list[str]) -> None:
    driver.register("forms", FORMS)
    assert driver.match("forms", {"kind": "deal", **fact}) == fired


@pytest.mark.parametrize(
    ("guard", "cost", "crashes"),
    [("none", "0", True), ("after", "0", True), ("before", "0", False), ("none", "0.0", False)],
)
def test_integer_division_by_zero_needs_a_guard_before_it(
    guard: str, cost: str, crashes: bool
) -> None:
    # SIGFPE kills the interpreter, so each case runs in its own process.
    result = run_child(
        f"""
        import json, durable_rules_engine as e
        division = {{"$lt": {{"margin": {{"$div": {{"$l": {{"$m": "contract"}}, "$r": {{"$m": "cost"}}}}}}}}}}
        guard = {{"$neq": {{"cost": 0}}}}
        conditions = {{"none": [division], "before": [guard, division], "after": [division, guard]}}
        h = e.create_ruleset("div", json.dumps({{"r": {{"all": [{{"m": {{"$and": conditions["{guard}"]}}}}]}}}}))
        e.assert_fact(h, '{{"sid":"1","id":"1","contract":100,"cost":{cost},"margin":0}}')
        print("survived")
        """
    )
    if crashes:
        assert result.returncode == -signal.SIGFPE
    else:
        assert result.returncode == 0 and "survived" in result.stdout, result.stderr


# (8) durable_rules refuses a message with 255 properties or more (nested keys count, list items
# do not); the driver narrows a fact that wide to what the rules read.


def test_durable_refuses_a_fact_with_too_many_properties() -> None:
    handle = durable_rules_engine.create_ruleset("wide-bare", json.dumps({"hit": rule({"x": 1})}))
    keys = {f"p{i}": i for i in range(251)}
    # 252 keys plus sid and id is the most durable_rules takes.
    durable_rules_engine.assert_fact(handle, json.dumps({"sid": "1", "id": "1", "x": 1, **keys}))
    for fact in ({"x": 1, "p251": 1, **keys}, {"x": 1, "nested": keys | {"p251": 1}}):
        with pytest.raises(durable_rules_engine.error, match="error code: 302"):
            durable_rules_engine.assert_fact(handle, json.dumps({"sid": "2", "id": "2", **fact}))


def test_a_wide_fact_is_narrowed_to_what_the_rules_read(driver: DurableDriver) -> None:
    driver.register("wide", {"hit": rule({"x": 1}), "deep": rule({"nested.p7": 7})})
    assert driver.match("wide", {"x": 1, **{f"p{i}": i for i in range(251)}}) == ["hit"]
    assert driver.match("wide", {"x": 1, **{f"p{i}": i for i in range(300)}}) == ["hit"]
    nested = {f"p{i}": i for i in range(300)}
    assert driver.match("wide", {"x": 1, "nested": nested}) == ["hit", "deep"]
    assert driver.match("wide", {"x": 1, "lines": [{f"p{i}": i for i in range(300)}]}) == ["hit"]


def test_rules_reading_more_than_a_fact_holds_are_split_and_all_fire(
    driver: DurableDriver,
) -> None:
    definition = {f"r{i}": rule({"$gte": {f"p{i}": 0}}) for i in range(600)}
    driver.register("many", definition)
    assert len(driver._rulesets["many"].parts) > 600 // MAX_FACT_PROPERTIES
    assert driver.match("many", {f"p{i}": i for i in range(600)}) == list(definition)
    assert driver.match("many", {"p3": 1, "p599": 1}) == ["r3", "r599"]


def test_a_rule_that_reads_too_many_properties_is_an_engine_error_and_the_driver_goes_on(
    driver: DurableDriver,
) -> None:
    reads = [{"$ex": {f"p{i}": 1}} for i in range(MAX_FACT_PROPERTIES + 1)]
    driver.register("too-wide", {"all_of_them": rule({"$and": reads}), "x": rule({"x": 1})})
    with pytest.raises(EngineError, match=r"ruleset 'too-wide': the fact has too many properties"):
        driver.match("too-wide", {"x": 1, **{f"p{i}": i for i in range(300)}})
    assert not session_exists(driver, "too-wide", "1")
    assert driver.match("too-wide", {"x": 1}) == ["x"]


# (9) Ruleset names: durable_rules would take a second one silently; the driver does not.


def test_registering_a_name_twice(driver: DurableDriver) -> None:
    definition = {"hit": rule({"x": 1})}
    assert not driver.is_registered("twice")
    driver.register("twice", definition)
    driver.register("twice", {"hit": rule({"x": 1})})  # identical: no-op
    assert driver.is_registered("twice")
    with pytest.raises(EngineError, match="'twice' is already registered with a different"):
        driver.register("twice", {"hit": rule({"x": 2})})
    assert driver.match("twice", {"x": 1}) == ["hit"]
    assert driver.match("twice", {"x": 2}) == []


# The driver's own contract around those behaviours.


def test_match_on_an_unknown_ruleset(driver: DurableDriver) -> None:
    with pytest.raises(EngineError, match="ruleset 'nowhere' is not registered"):
        driver.match("nowhere", {"x": 1})


@pytest.mark.parametrize("fact", [{"id": "D-1", "x": 1}, {"sid": "7", "x": 1}])
def test_fact_must_leave_sid_and_id_to_the_driver(
    driver: DurableDriver, fact: dict[str, Any]
) -> None:
    driver.register("keys", {"hit": rule({"x": 1})})
    with pytest.raises(EngineError, match="the driver sets those keys"):
        driver.match("keys", fact)


@pytest.mark.parametrize("value", [float("nan"), object()], ids=["nan", "object"])
def test_fact_that_is_not_json(driver: DurableDriver, value: object) -> None:
    driver.register("json", {"hit": rule({"x": 1})})
    with pytest.raises(EngineError, match="ruleset 'json': the fact is not JSON"):
        driver.match("json", {"x": value})
    assert driver.match("json", {"x": 1}) == ["hit"]


def test_non_ascii_text_and_odd_rule_names(driver: DurableDriver) -> None:
    # durable_rules compares escaped text, so definition and fact must be encoded alike.
    driver.register("text", {'Zürich "HQ"\\': rule({"city": "Zürich"}), "ü": rule({"q": 'a"b'})})
    assert driver.match("text", {"city": "Zürich", "q": 'a"b'}) == ['Zürich "HQ"\\', "ü"]
    assert driver.match("text", {"city": "Zurich"}) == []


def test_text_that_looks_like_the_state_fact_is_not_dropped(driver: DurableDriver) -> None:
    driver.register("lookalike", {"hit": rule({"x": 1})})
    assert driver.match("lookalike", {"x": 1, "note": '"$s":1'}) == ["hit"]


def test_one_driver_per_process() -> None:
    assert get_driver() is get_driver()
    tune_malloc()  # idempotent: the driver has already called it
    if not hasattr(os, "fork"):
        return
    parent = get_driver()
    pid = os.fork()
    if pid == 0:  # the child must get a driver of its own
        os._exit(0 if get_driver() is not parent else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# (10) durable_rules overflows its stack when more than 64 rules match one fact (error 303), and
# the half-built session corrupts the heap: the driver splits rulesets so that never happens.


@pytest.mark.skipif(not GLIBC, reason="MALLOC_PERTURB_ is glibc's")
@pytest.mark.parametrize("count", [1, 64, 65, 120, 500])
def test_every_rule_matching_one_fact_fires_however_many(count: int) -> None:
    result = run_child(
        f"""
        from dealdesk.engines.durable.driver import DurableDriver
        d = DurableDriver()
        # distinct conditions after a shared prefix: durable keeps every match pending at once
        names = [f"r{{i}}" for i in range({count})]
        d.register("all", {{n: {{"all": [{{"m": {{"$and": [{{"kind": "deal"}}, {{"$gt": {{"x": -i - 0.5}}}}]}}}}]}}
                           for i, n in enumerate(names)}})
        for n in range(30):
            assert d.match("all", {{"kind": "deal", "x": 1.0}}) == names
            assert d.match("all", {{"kind": "deal", "x": -{count} - 1.0}}) == []
        print("survived")
        """,
        env=PERTURBED,
    )
    assert result.returncode == 0 and "survived" in result.stdout, result.stderr


@pytest.mark.skipif(not GLIBC, reason="MALLOC_PERTURB_ is glibc's")
def test_a_fact_that_fails_in_its_session_never_touches_the_session_again() -> None:
    # With the split turned off, 100 matches overflow durable's stack: the driver must neither
    # delete nor read that session, and must go on with a fresh C ruleset.
    result = run_child(
        """
        from dealdesk.engines.durable import driver as module
        from dealdesk.errors import EngineError
        module.MAX_RULES = 1_000
        d = module.DurableDriver()
        d.register("all", {f"r{i}": {"all": [{"m": {"$gt": {"x": -i - 0.5}}}]} for i in range(100)})
        for n in range(30):
            try:
                d.match("all", {"x": 1.0})
            except EngineError as error:
                assert "error code 303 (max stack size)" in str(error), error
            else:
                raise AssertionError("durable took 100 matches")
            assert d.match("all", {"x": -60.0}) == [f"r{i}" for i in range(60, 100)]
        print("survived")
        """,
        env=PERTURBED,
    )
    assert result.returncode == 0 and "survived" in result.stdout, result.stderr


def test_rulesets_are_split_below_durables_stack() -> None:
    driver = DurableDriver()
    driver.register("split", {f"r{i}": rule({"x": i}) for i in range(2 * MAX_RULES + 1)})
    assert [len(part.names) for part in driver._rulesets["split"].parts] == [
        MAX_RULES,
        MAX_RULES,
        1,
    ]
    assert driver.match("split", {"x": 2 * MAX_RULES}) == [f"r{2 * MAX_RULES}"]


# (11) durable's JSON reader takes an exponent only after a fraction (error 204 on 1e-05), and
# the extension takes text only as UTF-8 (a lone surrogate is "Invalid argument").


def test_numbers_python_writes_with_a_bare_exponent(driver: DurableDriver) -> None:
    driver.register(
        "exponents",
        {
            "tiny": rule({"$lt": {"x": 1e-05}}),
            "huge": rule({"$gte": {"y": 1e16}}),
            "text": rule({"note": "1e-05"}),
            "e+": rule({"e+1": 1}),
        },
    )
    assert driver.match("exponents", {"x": 1e-06, "y": 1e17, "note": "1e-05", "e+1": 1}) == [
        "tiny",
        "huge",
        "text",
        "e+",
    ]
    assert driver.match("exponents", {"x": 2e-05, "y": 9e15, "note": 1e-05}) == []


def test_lone_surrogates_and_non_ascii_text(driver: DurableDriver) -> None:
    driver.register(
        "surrogates", {"\ud83d rule": rule({"s\udc00": "\ud83d"}), "ü": rule({"ö": "😀"})}
    )
    assert driver.match("surrogates", {"s\udc00": "\ud83d", "ö": "😀"}) == ["\ud83d rule", "ü"]
    assert driver.match("surrogates", {"s\udc00": "\ud83e", "ö": "😁"}) == []
