"""bench/gen_book.py: a seeded book of deals the house policy can evaluate (issue 6, part 8)."""

from __future__ import annotations

import importlib.util
import io
import json
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from dealdesk.deal import schema
from dealdesk.testing import CliRunner

GEN_BOOK = Path(__file__).resolve().parents[1] / "bench" / "gen_book.py"
N = 2_000


def load_gen_book() -> ModuleType:
    """The script as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_book", GEN_BOOK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen_book() -> ModuleType:
    return load_gen_book()


def book_text(gen_book: ModuleType, n: int, seed: int) -> str:
    out = io.StringIO()
    gen_book.write_book(n, seed, out)
    return out.getvalue()


@pytest.fixture(scope="module")
def book(gen_book: ModuleType) -> str:
    return book_text(gen_book, N, 0)


def test_same_seed_same_bytes(gen_book: ModuleType, book: str) -> None:
    assert book_text(gen_book, N, 0) == book
    assert book_text(gen_book, N, 1) != book
    # the first K deals of a book of N are the book of K
    assert book.startswith(book_text(gen_book, 50, 0))


def test_every_kind_of_deal_appears(book: str) -> None:
    deals = [json.loads(line) for line in book.splitlines()]
    assert len(deals) == N
    assert len({d["id"] for d in deals}) == N
    seen: dict[str, set[str]] = {
        "segment": {d["customer"]["segment"] for d in deals},
        "region": {d["customer"]["region"] for d in deals},
        "offer type": {d["offer"]["type"] for d in deals},
        "pricing": {d["offer"]["pricing"] for d in deals},
        "partner tier": {d["partner"]["tier"] for d in deals if "partner" in d},
        "partner kind": {d["partner"]["kind"] for d in deals if "partner" in d},
        "support model": {d["support"]["model"] for d in deals},
        "category": {line["category"] for d in deals for line in d["lines"]},
        "resource": {line["resource"] for d in deals for line in d["lines"] if "resource" in line},
    }
    wanted = {
        "segment": schema.SEGMENTS,
        "region": schema.REGIONS,
        "offer type": schema.OFFER_TYPES,
        "pricing": schema.PRICING_MODELS,
        "partner tier": schema.PARTNER_TIERS,
        "partner kind": schema.PARTNER_KINDS,
        "support model": schema.SUPPORT_MODELS,
        "category": schema.CATEGORIES,
        "resource": schema.RESOURCES,
    }
    for name, values in wanted.items():
        missing = set(values) - seen[name]
        assert not missing, f"no deal with {name} {sorted(missing)}"
    partner_share = sum("partner" in d for d in deals) / N
    assert 0.3 <= partner_share <= 0.5
    assert {len(d["lines"]) for d in deals} == set(range(1, 9))


def test_deals_evaluate_and_few_are_invalid(book: str, tmp_path: Path) -> None:
    path = tmp_path / "book.jsonl"
    path.write_text(book, encoding="utf-8")
    result = CliRunner().run("evaluate", str(path), env={"DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == N
    statuses = Counter(r["status"] for r in records)
    # a few deliberately invalid deals (~0.5%), the rest decided; every outcome occurs
    assert set(statuses) == {"approved", "needs_approval", "rejected", "invalid"}
    assert statuses["invalid"] <= 0.015 * N, statuses
    fired = {rule for r in records for p in r["policies"].values() for rule in p["fired"]}
    for rule in ("BM-1", "BM-6", "BM-7", "OS-1", "OS-5", "OS-7", "PM-1", "PM-3-cfo", "PM-9"):
        assert rule in fired, f"no deal fired {rule}"
