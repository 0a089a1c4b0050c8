"""The columnar reader (frame.py): a row it calls fast is one the per-deal path has nothing to
say about, and every value the frame holds for it is prepare_deal's; on the generated books and
the peer workload nearly every valid row is fast."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyarrow")

from dealdesk import jsoncodec  # noqa: E402
from dealdesk.deal.schema import INPUT_FIELDS  # noqa: E402
from dealdesk.deal.unknown import unknown_fields  # noqa: E402
from dealdesk.deal.validate import prepare_deal  # noqa: E402
from dealdesk.engines.columnar.frame import read_frame  # noqa: E402
from dealdesk.errors import DuplicateKey  # noqa: E402
from dealdesk.io.readers import _parse_line, read_yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# the shared peer workload beside the project (../shared), as CI lays it out
PEER = Path(
    os.environ.get("DEALDESK_PEER_WORKLOAD")
    or Path(__file__).resolve().parents[3] / "shared" / "peer-workload"
)
SIZES = (1, 7, 256)

# the scalar paths a column may give (lines[] paths: line_column)
SCALAR_PATHS = [
    path
    for path, field in INPUT_FIELDS.items()
    if field.type not in ("object", "array") and not path.startswith("lines[]")
]
LINE_NAMES = [path.removeprefix("lines[].") for path in INPUT_FIELDS if path.startswith("lines[]")]
TOP_KEYS = [path for path in INPUT_FIELDS if "." not in path and "[" not in path]


def _lookup(deal: dict[str, Any], path: str) -> Any:
    value: Any = deal
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _per_deal(text: bytes) -> tuple[dict[str, Any] | None, bool]:
    """What the per-deal path makes of a line: its data, and whether it says nothing."""
    source = _parse_line("t.jsonl:1", text)
    if source.error is not None:
        return None, False
    data, errors = prepare_deal(source.deal, {})
    return data, not errors and not unknown_fields(source.deal, ())


def check_chunk(texts: list[bytes]) -> tuple[int, int]:
    """Every promise of the frame for one chunk; returns (fast rows, rows the per-deal path
    has nothing to say about)."""
    frame = read_frame(texts)
    assert frame.n == len(texts)
    assert frame.fast.dtype == bool and frame.fast.shape == (len(texts),)
    columns = {path: frame.column(path) for path in SCALAR_PATHS}
    lines = {name: frame.line_column(name) for name in LINE_NAMES}
    present = {key: frame.present(key) for key in TOP_KEYS}
    fast = quiet = 0
    line_at = 0
    for i, text in enumerate(texts):
        data, says_nothing = _per_deal(text)
        quiet += says_nothing
        if not frame.fast[i]:
            assert frame.ids[i] is None and frame.currencies[i] is None
            for path, column in columns.items():
                assert column is None or column.values[i] is None, path
            assert not (frame.owners == i).any()
            continue
        fast += 1
        assert says_nothing, text
        assert data is not None
        assert frame.ids[i] == data["id"] and type(frame.ids[i]) is str
        assert frame.currencies[i] == data["currency"]
        assert frame.raw(i) == jsoncodec.loads_unique(text.decode().rstrip("\r\n"))
        for key in [*TOP_KEYS, "export", "owner", "notes", "margin", "totals", "labor_margin"]:
            # each on a view not yet prepared: what it answers without the deal is the deal's
            assert frame.view(i).get(key, "-") == data.get(key, "-"), key
            assert (key in frame.view(i)) == (key in data), key
        view = frame.view(i)
        assert view == data and data == view
        assert dict(view) == data and list(view) == list(data)
        for key in TOP_KEYS:
            # a known key given as null is absent from the data; currency gets its default
            written = _lookup(frame.raw(i), key) is not None
            assert bool(present[key][i]) == written, key
            assert written == (key in data) or key == "currency", key
        for path, column in columns.items():
            assert column is not None, path
            want = _lookup(data, path)
            got = column.values[i]
            assert got == want and type(got) is type(want), (path, got, want)
            assert bool(column.known[i]) == (want is not None)
        count = len(data["lines"])
        assert (frame.owners[line_at : line_at + count] == i).all()
        for name, column in lines.items():
            assert column is not None, name
            for k, line in enumerate(data["lines"]):
                want = line.get(name)
                got = column.values[line_at + k]
                assert got == want and type(got) is type(want), (name, got, want)
        line_at += count
    assert line_at == len(frame.owners)
    for column in lines.values():
        assert column is not None and len(column.values) == line_at
    return fast, quiet


def check_corpus(texts: list[bytes], size: int) -> tuple[int, int]:
    fast = quiet = 0
    for start in range(0, len(texts), size):
        f, q = check_chunk(texts[start : start + size])
        fast, quiet = fast + f, quiet + q
    return fast, quiet


def _lines_of(output: bytes) -> list[bytes]:
    return [line + b"\n" for line in output.splitlines() if line.strip()]


@pytest.fixture(scope="module", params=[1, 2, 3])
def gen_book(request: pytest.FixtureRequest) -> list[bytes]:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gen_book.py"), "3000", "--seed", str(request.param)],
        capture_output=True,
        check=True,
    ).stdout
    return _lines_of(out)


@pytest.fixture(scope="module")
def peer() -> list[bytes]:
    if not (PEER / "peer_map.py").exists():
        pytest.skip("the peer workload is not here")
    out = subprocess.run(
        [sys.executable, str(PEER / "peer_map.py"), "2000"],
        cwd=PEER,
        capture_output=True,
        check=True,
    ).stdout
    return _lines_of(out)


@pytest.mark.parametrize("size", SIZES)
def test_gen_book(gen_book: list[bytes], size: int) -> None:
    texts = gen_book if size != 1 else gen_book[:400]
    fast, quiet = check_corpus(texts, size)
    print(f"gen_book, chunks of {size}: {fast} of {quiet} valid rows fast ({fast / quiet:.2%})")
    assert quiet > 0.9 * len(texts)
    assert fast >= 0.99 * quiet


@pytest.mark.parametrize("size", SIZES)
def test_peer(peer: list[bytes], size: int) -> None:
    texts = peer if size != 1 else peer[:400]
    fast, quiet = check_corpus(texts, size)
    print(f"peer, chunks of {size}: {fast} of {quiet} valid rows fast ({fast / quiet:.2%})")
    assert quiet == len(texts)
    assert fast == quiet


def _examples() -> list[bytes]:
    """The example deals: book.jsonl's lines, and each YAML deal as a JSON line."""
    folder = ROOT / "examples" / "deals"
    texts = (folder / "book.jsonl").read_bytes().splitlines(keepends=True)
    for path in sorted(folder.glob("*.yaml")):
        for source in read_yaml(path):
            assert source.deal is not None, source.error
            texts.append(jsoncodec.dumps(source.deal).encode())
    return [t for t in texts if t.strip()]


@pytest.mark.parametrize("size", SIZES)
def test_examples(size: int) -> None:
    texts = _examples()
    assert len(texts) > 10
    fast, quiet = check_corpus(texts, size)
    print(f"examples, chunks of {size}: {fast} of {quiet} valid rows fast")
    assert fast > 0


# ---------------------------------------------------------------------------------------------
# hostile lines

BASE: dict[str, Any] = {
    "id": "H-1",
    "currency": "EUR",
    "customer": {"name": "Zoë ☃ Ltd", "segment": "deer", "region": "emea", "government": False},
    "offer": {"type": "standard", "pricing": "kpi", "kpi_at_risk": "120.50"},
    "partner": {"name": "P", "kind": "reseller", "tier": "gold", "discount": 0.25},
    "billing": {"payment_terms_days": 45, "requested_split": [50, "50.0"]},
    "lines": [
        {"sku": "A", "category": "hardware", "quantity": 2, "unit_price": 510.5, "unit_cost": 300},
        {"sku": "S", "category": "subscription", "quantity": "3", "unit_price": "99.999999999999"},
        {"category": "labor", "quantity": 1, "unit_price": 1000, "unit_cost": 800, "hours": 10},
    ],
    "dates": {"close": "2026-02-28", "start": "2026-03-01"},
}


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, default=str).encode()


def _with(path: str, value: Any, *, delete: bool = False) -> bytes:
    deal = json.loads(json.dumps(BASE))
    *parents, last = path.split(".")
    target: Any = deal
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if delete:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return _dump(deal)


def _raw_number(path: str, text: str) -> bytes:
    marker = "__NUMBER__"
    return _with(path, marker).replace(f'"{marker}"'.encode(), text.encode())


HOSTILE: list[bytes] = [
    _dump(BASE),
    _with("lines.0.unit_price", "12,34"),
    _with("lines.0.unit_price", "12.34"),
    _with("lines.0.unit_price", " 12.34 "),
    _with("lines.0.quantity", "1e3"),
    _raw_number("lines.0.unit_price", "1.0000000000001"),
    _raw_number("lines.0.unit_price", "1.5000000000000000000"),
    _raw_number("lines.0.unit_price", "1e15"),
    _raw_number("lines.0.unit_price", "999999999999999.999999999999"),
    _raw_number("lines.0.unit_price", "1e-13"),
    _raw_number("lines.0.unit_price", "0E-5000"),
    _raw_number("lines.0.unit_price", "-0.0"),
    _raw_number("lines.0.quantity", "-1"),
    _raw_number("lines.0.quantity", "123456789012345678901234567890"),
    _raw_number("lines.0.quantity", "1" + "0" * 5000),
    _raw_number("lines.0.quantity", "1e400"),
    _raw_number("partner.discount", "1.0000000000001"),
    _raw_number("partner.discount", "1.5"),
    _raw_number("partner.discount", "1"),
    _raw_number("billing.requested_split.0", "-30"),
    _raw_number("billing.requested_split.0", "-1e15"),
    _raw_number("billing.requested_split.0", "null"),
    _with("billing.requested_split", []),
    _with("lines.0.quantity", True),
    _with("lines.0.quantity", "NaN"),
    _with("lines.0.quantity", 0),
    _with("lines.0.unit_cost", None),
    _with("lines.0.unit_cost", None, delete=True),
    _with("lines.1.unit_cost", "5"),
    _with("lines.0.category", "Hardware"),
    _with("lines.0.category", None),
    _with("lines.0.resource", "architect"),
    _with("lines.0.resource", "wizard"),
    _with("lines.0.warranty", "3y"),
    _with("lines.0.warranty", None),
    _with("lines.0.amount", None),
    _with("lines.0.amount", 5),
    _with("lines", []),
    _with("lines", None),
    _with("lines", [None]),
    _with("lines", [1]),
    _with("lines", {"category": "hardware"}),
    _with("lines", [{}]),
    _dump(
        {
            **BASE,
            "lines": [{"category": "hardware", "quantity": 0, "unit_price": 1, "unit_cost": 1}],
        }
    ),
    _with("customer.teir", "x"),
    _with("customer.teir", None),
    _with("customer.region", "mars"),
    _with("customer.region", 5),
    _with("customer.government", "false"),
    _with("customer.government", None),
    _with("customer", None),
    _with("customer", {}),
    _with("customer", "acme"),
    _with("customer", {"name": {"first": "a"}}),
    _with("partner", None, delete=True),
    _with("billing", None, delete=True),
    _with("dates.close", "2026-02-30"),
    _with("dates.close", "2026-2-3"),
    _with("dates.close", "2026-02-03T00:00:00"),
    _with("dates.close", "２０２６-02-03"),
    _with("dates.close", 20260203),
    _with("currency", "usd"),
    _with("currency", "XXX"),
    _with("currency", "ZZZ"),
    _with("currency", None),
    _with("currency", None, delete=True),
    _with("currency", 840),
    _with("id", ""),
    _with("id", 1001),
    _with("id", 10**30),
    _with("id", True),
    _with("id", 1.5),
    _with("id", None),
    _with("id", None, delete=True),
    _with("id", 'ünïcødé 😀 \\ " \u2028'),
    _with("owner", "someone"),
    _with("owner", None),
    _with("notes", {"a": [1, "b"]}),
    _with("partnr", {"tier": "gold"}),
    _with("partnr", None),
    _with("totals", None),
    _with("margin", 0.3),
    _with("customer.region", "emea").replace(
        b'"customer": {', b'"customer.region": "mars", "customer": {'
    ),
    _dump({**BASE, "customer": {**BASE["customer"], "regio\\u006e": "x"}}).replace(b"\\\\", b"\\"),
    _dump(BASE).replace(b'"id": "H-1"', b'"id": "H-1", "id": "H-2"'),
    _dump(BASE).replace(b'"segment": "deer"', b'"segment": "deer", "segment": "rabbit"'),
    _dump(BASE).replace(b'"sku": "A"', b'"sku": "A", "sku": "B"'),
    _dump(BASE).replace(b'"id": "H-1"', b'"id": "H-1", "\\u0069d": "H-2"'),
    _dump(BASE).replace(b'"id": "H-1"', b'"id": "H-1", "x": 1, "x": 2'),
    _dump(BASE).replace(b'"H-1"', b'"H-\xff"'),
    _dump(BASE).replace(b'"H-1"', b'"H-\xed\xa0\x80"'),
    _dump(BASE).replace(b'"H-1"', b'"H-\\ud800"'),
    _dump(BASE).replace(b'"H-1"', b'"H-\\u003a"'),
    _dump(BASE).replace(b'"H-1"', b'"H-\x01"'),
    _dump(BASE).replace(b'"H-1"', b'"H-1",'),
    _dump(BASE)[:-1],
    _dump(BASE) + b" ",
    b" " + _dump(BASE),
    b"\xef\xbb\xbf" + _dump(BASE),
    _dump(BASE) + _dump(BASE),
    _dump(BASE) + b"\r\n",
    b"null",
    b"[]",
    b"[1, 2]",
    b'"deal"',
    b"5",
    b"true",
    b"{}",
    b"{",
    b"not json",
    b'{"id": NaN, "lines": []}',
    _with("owner", float("nan")).replace(b"NaN", b"NaN"),
    _raw_number("lines.0.unit_price", "NaN"),
    _raw_number("lines.0.unit_price", "Infinity"),
    _dump({**BASE, "deep": json.loads("[" * 300 + "]" * 300)}),
    _with("notes", [None, "x"]),
    _with("lines.0.notes", {"a": [None, "12.50"]}),
    _dump(BASE)[:-1] + b', "deep": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    _dump(BASE)[:-1] + b', "deep": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_000 + b"}",
    _dump(BASE)[:-1] + b', "deep": ' + b"[" * 999 + b"]" * 999 + b"}",
    _dump({"id": "x", "lines": [{"category": "subscription", "quantity": 1, "unit_price": 1}]}),
]


@pytest.mark.parametrize("size", SIZES)
def test_hostile(size: int) -> None:
    fast, quiet = check_corpus(HOSTILE, size)
    print(f"hostile, chunks of {size}: {fast} fast of {quiet} valid, {len(HOSTILE)} lines")
    assert fast > 0


def test_hostile_alone() -> None:
    """Each hostile line amid valid deals: the frame's promises hold in every chunk, and the
    valid deals around a line Arrow refuses stay fast (the chunk is not given up)."""
    good = _dump(BASE)
    for line in HOSTILE:
        texts = [good, good, line, good]
        check_chunk(texts)
        frame = read_frame(texts)
        assert frame.fast[[0, 1, 3]].all(), line


def test_valid_and_odd_values_are_fast() -> None:
    """Decimal strings, exponents, trailing zeros, integer-valued and fractional numbers: fast,
    with prepare_deal's values (checked by check_chunk)."""
    texts = [
        _dump(BASE),
        _with("lines.0.unit_price", "12.34"),
        _raw_number("lines.0.unit_price", "1.5000000000000000000"),
        _raw_number("lines.0.unit_price", "0E-5000"),
        _with("lines.0.quantity", "1e3"),
        _raw_number("partner.discount", "1"),
        _with("customer", {}),
        _with("owner", None),
    ]
    fast, quiet = check_chunk(texts)
    assert fast == quiet == len(texts)
    # a key outside the schema is the deal's own, but a row that has one is decided per deal
    frame = read_frame([_with("owner", "someone"), *texts])
    assert frame.fast.tolist() == [False] + [True] * len(texts)


def test_column_values_are_exact() -> None:
    frame = read_frame([_dump(BASE), _with("lines.0.unit_price", "0.1")])
    assert frame.fast.all()
    price = frame.line_column("unit_price")
    assert price is not None
    assert price.values[0] == Decimal("510.5") and price.values[3] == Decimal("0.1")
    assert frame.line_column("lines[].unit_price") is price
    kpi = frame.column("offer.kpi_at_risk")
    assert kpi is not None and kpi.values == [Decimal("120.50")] * 2
    assert frame.column("customer.region").values == ["emea", "emea"]
    assert frame.column("customer.government").values == [False, False]
    for path in ("billing.requested_split", "totals.contract", "margin", "x.y"):
        assert frame.column(path) is None
    # an object: known where it is there (exists()), its values the prepared deal's
    customer = frame.column("customer")
    assert customer is not None and customer.known.tolist() == [True, True]
    assert customer.values == [frame.view(0)["customer"], frame.view(1)["customer"]]
    assert customer.kind == "mixed"  # compared row by row, never in the vector
    assert frame.line_column("amount") is None
    assert frame.owners.tolist() == [0, 0, 0, 1, 1, 1]
    assert frame.table is not None and frame.table.num_rows == 2


def test_view_answers_absent_keys_without_parsing() -> None:
    no_billing = _with("billing", None, delete=True)
    frame = read_frame([no_billing, _dump(BASE)])
    assert frame.fast.all()
    view = frame.view(0)
    assert view.get("billing") is None
    assert "billing" not in view
    assert view.get("billing", 7) == 7
    with pytest.raises(KeyError):
        view["billing"]
    assert view.get("export") is None and "export" not in view
    assert view["id"] == "H-1" and view.get("currency") == "EUR" and "currency" in view
    assert frame._raw == {}  # nothing parsed for row 0's absent keys, its id or currency
    assert view.get("customer") == prepare_deal(json.loads(no_billing), {})[0]["customer"]
    assert 0 in frame._raw
    assert 5 not in view and view.get("export") is None and len(view) == len(list(view))
    assert frame.present("billing").tolist() == [False, True]
    other = frame.view(1)
    assert other.get("billing") == {
        "payment_terms_days": Decimal(45),
        "requested_split": [Decimal(50), Decimal("50.0")],
    }


def test_refused_chunk_reads_the_other_lines() -> None:
    good = _dump(BASE)
    texts = [good, _with("lines.0.unit_price", "12,34"), good, b"null", _with("id", 7), good]
    frame = read_frame(texts)
    assert frame.fast.tolist() == [True, False, True, False, False, True]
    assert frame.table is not None and frame.table.num_rows == len(texts)
    assert frame.ids == ["H-1", None, "H-1", None, None, "H-1"]


def test_nothing_arrow_takes() -> None:
    frame = read_frame([b"null", b"[1]"])
    assert frame.table is None and not frame.fast.any()
    assert frame.raw(0) is None and frame.raw(1) == [1]
    region = frame.column("customer.region")
    assert region is not None and region.values == [None, None] and not region.known.any()
    assert frame.column("lines[].category") is None
    category = frame.line_column("category")
    assert category is not None and category.values == []


def test_many_refusals_go_line_by_line() -> None:
    """More refused lines than the retries trace: the lines are parsed one by one, and the
    valid ones are still read as a frame."""
    good = _dump(BASE)
    bad = [
        _with("lines.0.unit_price", "1,5"),
        _with("lines.0.unit_price", "2,5"),
        _with("id", 5),
        _with("customer", "x"),
        _with("lines.0.unit_price", "3,5"),
        b'{"id": "a"} x',
    ]
    texts = [good, *bad, good]
    frame = read_frame(texts)
    assert frame.fast.tolist() == [True] + [False] * len(bad) + [True]
    check_chunk(texts)


def test_raw_is_the_readers_parse() -> None:
    frame = read_frame([_dump(BASE) + b"\r\n", b'{"id": "\xff"}', b'{"a": 1, "a": 2}'])
    assert frame.raw(0) == json.loads(_dump(BASE), parse_float=Decimal)
    with pytest.raises(UnicodeDecodeError):
        frame.raw(1)
    with pytest.raises(DuplicateKey):
        frame.raw(2)


_TOKENS = [
    b"null", b'"x"', b"1e400", b"-1", b"0", b'"12,3"', b',"amount":1', b',"teir":null', b"{}",
    b"[]", b"true", b'"\\u0000"', b'"2026-02-30"', b"1.0000000000001", b'"USD"', b'"subscription"',
    b"999999999999999.9", b'""', b'"\\ud800"', b"\xff", b"}", b"{", b",", b":",
]  # fmt: skip


def _mutate(line: bytes, rng: random.Random) -> bytes:
    """A line with a few random edits: a byte gone, a token put in, a value replaced, a piece
    of the line repeated."""
    for _ in range(rng.randint(1, 3)):
        kind, at = rng.randrange(4), rng.randrange(len(line))
        if kind == 0:
            line = line[:at] + line[at + 1 :]
        elif kind == 1:
            line = line[:at] + rng.choice(_TOKENS) + line[at:]
        elif kind == 2:
            colon = line.find(b":", at)
            if colon > 0:
                ends = [x for x in (line.find(b",", colon), line.find(b"}", colon)) if x > 0]
                end = min(ends or [len(line)])
                line = line[: colon + 1] + b" " + rng.choice(_TOKENS) + line[end:]
        else:
            start = rng.randrange(len(line))
            line = line[:at] + line[start : start + rng.randint(1, 30)] + line[at:]
    return line


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_mutated_lines(gen_book: list[bytes], seed: int) -> None:
    """Randomly damaged deals (a fixed seed each): whatever the frame calls fast, the per-deal
    path agrees with, value for value."""
    rng = random.Random(seed)
    texts = [
        _mutate(rng.choice(gen_book).rstrip(b"\n"), rng) if rng.random() < 0.7 else gen_book[i]
        for i in range(300)
    ]
    for size in SIZES:
        fast, quiet = check_corpus(texts, size)
        assert fast > 0.8 * quiet


_NAMES = sorted(
    {path.rsplit(".", 1)[-1].replace("lines[]", "lines") for path in INPUT_FIELDS}
    | {"amount", "margin", "totals", "teir", "owner", "x", "customer.region", "lines[]"}
)
_ENUMS = [value for field in INPUT_FIELDS.values() for value in field.enum or ()]


def _random_deal(rng: random.Random) -> bytes:
    """BASE with a few values anywhere replaced by random ones: schema names at any depth,
    texts where numbers go, enums where objects go, nulls, nested objects and lists."""

    def scalar() -> Any:
        return rng.choice(
            [None, True, False, rng.randint(-3, 10**6), "12.50", "1,5", rng.choice(_ENUMS)]
            + ["2026-03-01", "2026-02-30", "USD", "", Decimal("1.25")]
        )

    def value(depth: int) -> Any:
        if depth > 3 or rng.random() < 0.5:
            return scalar()
        if rng.random() < 0.6:
            return {rng.choice(_NAMES): value(depth + 1) for _ in range(rng.randint(0, 5))}
        return [value(depth + 1) for _ in range(rng.randint(0, 3))]

    deal = json.loads(json.dumps(BASE))
    for _ in range(rng.randint(1, 4)):
        target: Any = deal
        while True:  # down to a random object or list
            items = list(target.values()) if isinstance(target, dict) else target
            inner = [item for item in items if isinstance(item, dict | list) and item]
            if not inner or rng.random() < 0.4:
                break
            target = rng.choice(inner)
        new = value(0) if rng.random() < 0.5 else scalar()
        if isinstance(target, dict):
            target[rng.choice(_NAMES + list(target))] = new
        elif target:
            target[rng.randrange(len(target))] = new
    return json.dumps(deal, ensure_ascii=False, default=str).encode()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_deals(seed: int) -> None:
    """Random changes to a valid deal's structure (a fixed seed each): whatever the frame calls
    fast, the per-deal path agrees with, value for value."""
    rng = random.Random(seed)
    texts = [_random_deal(rng) for _ in range(300)]
    for size in SIZES:
        fast, quiet = check_corpus(texts, size)
        assert fast > 0


def test_empty_chunk() -> None:
    frame = read_frame([])
    assert frame.n == 0 and frame.fast.shape == (0,) and frame.table is None
    assert frame.ids == [] and frame.currencies == [] and len(frame.owners) == 0
