"""The ruleset schema check and the cache of texts that passed it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dealdesk.rules import model
from dealdesk.rules.cache import cache_dir
from dealdesk.rules.loader import load_yaml

GOOD = "ruleset: r\npolicy: test\nversion: '1'\nrules: []\n"
BAD = "ruleset: r\npolicy: test\nversion: '1'\nrulez: []\n"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEALDESK_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_text_that_passed_is_not_checked_again(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert model.schema_errors(load_yaml(GOOD, "r.yaml"), GOOD) == []
    assert len(list((cache / "schema-ok").iterdir())) == 1

    def no_validator() -> None:
        raise AssertionError("the schema was checked again")

    monkeypatch.setattr(model, "_validator", no_validator)
    assert model.schema_errors(load_yaml(GOOD, "r.yaml"), GOOD) == []
    with pytest.raises(AssertionError, match="checked again"):  # a new text is checked
        model.schema_errors(load_yaml(GOOD + "\n", "r.yaml"), GOOD + "\n")


def test_a_text_with_problems_is_never_remembered(cache: Path) -> None:
    for _ in range(2):
        (error,) = model.schema_errors(load_yaml(BAD, "r.yaml"), BAD)
        assert "unknown key 'rulez'" in str(error)
    assert not (cache / "schema-ok").exists()


def test_no_cache_when_it_is_off_or_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEALDESK_CACHE_DIR", "")
    assert cache_dir() is None
    assert model.schema_errors(load_yaml(GOOD, "r.yaml"), GOOD) == []
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DEALDESK_CACHE_DIR", str(blocker))
    assert model.schema_errors(load_yaml(GOOD, "r.yaml"), GOOD) == []  # checked, not cached


@pytest.mark.parametrize(
    ("written", "kept"),
    [("1.10", "1.10"), ("2026.11.0", "2026.11.0"), ("3", "3"), ('"1.10"', "1.10"), ("1e3", "1e3")],
)
def test_the_version_is_kept_as_written(written: str, kept: str) -> None:
    # YAML reads 1.10 as the float 1.1; provenance says what the author wrote
    for text in (
        f"ruleset: a\npolicy: p\ndescription: 日本\nversion: {written}\n",
        f"{{ruleset: a, policy: p, version: {written}, rules: []}}\n",
    ):
        assert model.read_ruleset(load_yaml(text, "a.yaml")).version == kept


def test_a_schema_problem_leaves_the_rest_of_the_file_to_check() -> None:
    text = """ruleset: a
policy: p
rules:
  - {id: A, priorty: 3, when: margin > 0, then: {require: cfo, rejct: x}}
  - {id: B, when: 5, then: {require: cfoo}}
  - {id: C, when: margin > 1}
  - 7
tables:
  - {id: T, inputs: [margin], rows: [{when: [1], then: {}}, {when: [{}], then: {}}]}
"""
    doc = load_yaml(text, "a.yaml")
    assert model.schema_errors(doc)
    usable = model.readable(doc)
    assert usable is not None
    ruleset = model.read_ruleset(usable, checked=True)
    assert [(r.id, r.then.require) for r in ruleset.rules] == [
        ("A", ["cfo"]),
        ("B", ["cfoo"]),
        ("C", []),
    ]
    # left-out items keep the positions of the others
    assert [r.path for r in ruleset.rules] == [("rules", 0), ("rules", 1), ("rules", 2)]
    assert [row.index for row in ruleset.tables[0].rows] == [0]
    assert model.readable(load_yaml("ruleset: a\nrules: []\n", "a.yaml")) is None
