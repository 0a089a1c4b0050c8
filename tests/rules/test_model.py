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
