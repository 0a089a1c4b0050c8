"""The cache folder: remembered YAML documents, approver ranks and message checks are what the
work would give, and anything odd in the folder is a miss."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dealdesk.errors import RulesetError
from dealdesk.rules import cache, loader
from dealdesk.rules.loader import Document, load_yaml, load_yaml_cached
from dealdesk.rules.policyset import house_approvers

ROOT = Path(__file__).resolve().parents[2]
YAML_FILES = sorted((ROOT / "rulesets").glob("*.yaml")) + sorted(
    (ROOT / "examples").rglob("*.yaml")
)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEALDESK_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def same(a: Document, b: Document) -> None:
    """Equal documents, types and key order included (1 == 1.0 == True in Python)."""
    assert (a.file, a.text) == (b.file, b.text)
    assert repr(a.data) == repr(b.data)  # "nan" == "nan" too
    assert list(a.spans.items()) == list(b.spans.items())
    assert list(a.keys.items()) == list(b.keys.items())


def entries(folder: Path, kind: str) -> list[Path]:
    return sorted((folder / kind).iterdir()) if (folder / kind).exists() else []


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_a_remembered_document_is_the_parsed_one(folder: Path, path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    parsed = load_yaml(text, "a.yaml")
    same(load_yaml_cached(text, "a.yaml"), parsed)  # parsed, then remembered
    assert len(entries(folder, "yaml")) == 1
    same(load_yaml_cached(text, "a.yaml"), parsed)  # read back
    same(load_yaml_cached(text, "b.yaml"), load_yaml(text, "b.yaml"))  # the name is not kept


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.sampled_from(["2026-01-02", "1e3", "0x1f", ".inf", "-.nan", "yes", "~", "'quoted'"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(min_size=1), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(VALUES, st.sampled_from([None, 2, 4]))
def test_any_document_is_read_back_as_it_was_parsed(
    tmp_path_factory: pytest.TempPathFactory, value: Any, indent: int | None
) -> None:
    import yaml

    text = yaml.safe_dump({"v": value}, indent=indent, allow_unicode=True, sort_keys=False)
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEALDESK_CACHE_DIR", str(folder))
        try:
            parsed = load_yaml(text, "f.yaml")
        except RulesetError:
            return  # e.g. a key YAML reads as a number: an error, never remembered
        first, second = load_yaml_cached(text, "f.yaml"), load_yaml_cached(text, "f.yaml")
    same(first, parsed)
    same(second, parsed)


def test_a_remembered_document_needs_no_yaml(folder: Path) -> None:
    text = (ROOT / "rulesets" / "partner-margin.yaml").read_text(encoding="utf-8")
    load_yaml_cached(text, "p.yaml")
    code = (
        "import sys\n"
        "from dealdesk.rules.loader import load_yaml_cached\n"
        f"doc = load_yaml_cached({text!r}, 'p.yaml')\n"
        "assert doc.data['ruleset'] == 'partner-margin'\n"
        "print('yaml' in sys.modules)\n"
    )
    env = {**__import__("os").environ, "DEALDESK_CACHE_DIR": str(folder)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert done.stdout.split() == ["False"]


def test_an_edit_or_an_upgrade_is_a_miss(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_yaml_cached("a: 1\n", "f.yaml")
    load_yaml_cached("a: 2\n", "f.yaml")
    assert len(entries(folder, "yaml")) == 2
    monkeypatch.setattr("dealdesk.__version__", "999")
    assert load_yaml_cached("a: 1\n", "f.yaml").data == {"a": 1}
    assert len(entries(folder, "yaml")) == 3


@pytest.mark.parametrize(
    "damage",
    [
        lambda e: e.write_text("{not json"),
        lambda e: e.write_bytes(b"\xff\xfe"),
        lambda e: e.write_text(""),
        lambda e: e.write_text("[]"),
        lambda e: e.write_text(json.dumps({**json.loads(e.read_text()), "key": "other"})),
        lambda e: e.write_text(json.dumps({**json.loads(e.read_text()), "spans": [[["a"], 1]]})),
        lambda e: e.write_text(json.dumps({**json.loads(e.read_text()), "keys": [["a", 1, 1, 0]]})),
        lambda e: e.write_text(
            json.dumps({**json.loads(e.read_text()), "spans": [[["a"], 1, "1", 0]]})
        ),
        lambda e: e.write_text(
            json.dumps({**json.loads(e.read_text()), "spans": [[[True], 1, 1, 0]]})
        ),
        lambda e: e.write_text(
            json.dumps({k: v for k, v in json.loads(e.read_text()).items() if k != "data"})
        ),
        lambda e: (e.unlink(), e.mkdir()),
    ],
)
def test_a_damaged_entry_is_a_miss(folder: Path, damage: Any) -> None:
    text = "a: [1, {b: x}]\n"
    load_yaml_cached(text, "f.yaml")
    (entry,) = entries(folder, "yaml")
    damage(entry)
    same(load_yaml_cached(text, "f.yaml"), load_yaml(text, "f.yaml"))


def test_errors_binary_values_and_several_documents_are_never_remembered(folder: Path) -> None:
    for text in ["a: [1\n", "a: 1\na: 2\n", "a: !!binary aGk=\n", "a: 1\n---\nb: 2\n", "# none\n"]:
        for _ in range(2):
            try:
                expected: Any = load_yaml(text, "f.yaml")
            except RulesetError as exc:
                expected = str(exc)
            try:
                found: Any = load_yaml_cached(text, "f.yaml")
            except RulesetError as exc:
                found = str(exc)
            if isinstance(expected, Document):
                same(found, expected)
            else:
                assert found == expected
    assert entries(folder, "yaml") == []


def test_nothing_is_remembered_when_the_cache_is_off_or_unwritable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEALDESK_CACHE_DIR", "")
    assert cache.cache_dir() is None
    same(load_yaml_cached("a: 1\n", "f.yaml"), load_yaml("a: 1\n", "f.yaml"))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DEALDESK_CACHE_DIR", str(blocker))
    same(load_yaml_cached("a: 1\n", "f.yaml"), load_yaml("a: 1\n", "f.yaml"))
    assert blocker.read_text() == "not a folder"


def test_a_hit_parses_nothing(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "a: {b: [1, 2]}\n"
    load_yaml_cached(text, "f.yaml")

    def no_parse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(loader, "load_yaml", no_parse)
    assert load_yaml_cached(text, "f.yaml").data == {"a": {"b": [1, 2]}}
    with pytest.raises(AssertionError, match="parsed again"):
        load_yaml_cached(text + "c: 3\n", "f.yaml")


def test_the_approver_ranks_are_remembered_as_read(folder: Path) -> None:
    import yaml

    text = (ROOT / "rulesets" / "approvers.yaml").read_text(encoding="utf-8")
    expected = list(yaml.safe_load(text)["approvers"])
    assert house_approvers() == expected
    assert len(entries(folder, "yaml")) == 1  # remembered as any ruleset document is
    assert house_approvers() == expected
    (entry,) = entries(folder, "yaml")
    entry.write_text('["not", 1]')  # damaged: read again
    assert house_approvers() == expected


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
@pytest.mark.parametrize("loosened", ["entry", "kind folder", "cache folder"])
def test_an_entry_others_could_have_written_is_never_read(folder: Path, loosened: str) -> None:
    cache.write("yaml", "k", {"planted": True})
    cache.mark("yaml", "m")
    entry = folder / "yaml" / "k"
    assert cache.read("yaml", "k") == {"planted": True} and cache.is_marked("yaml", "m")
    # what dealdesk writes is private to the user
    assert entry.stat().st_mode & 0o077 == 0 and folder.stat().st_mode & 0o077 == 0
    targets = {
        "entry": [entry, folder / "yaml" / "m"],
        "kind folder": [entry.parent],
        "cache folder": [folder],
    }
    for target in targets[loosened]:
        target.chmod(target.stat().st_mode | 0o022)  # group and others may write
    assert cache.read("yaml", "k") is None
    assert not cache.is_marked("yaml", "m")


def test_a_text_with_a_duplicate_key_is_read_on_but_never_remembered(folder: Path) -> None:
    text = "a: 1\na: 2\nb: 3\n"
    doc = load_yaml_cached(text, "f.yaml", tolerant=True)
    assert doc.data == {"a": 1, "b": 3}  # the first value stands; the rest is read
    assert [str(p) for p in doc.problems] == ["f.yaml:2:1: duplicate key 'a'"]
    # not remembered as clean: a reader that does not read on still gets the error
    with pytest.raises(RulesetError, match="duplicate key 'a'"):
        load_yaml_cached(text, "f.yaml")
