"""Which columnar library for the columnar engine (issue 8): numpy, pyarrow.compute or polars,
measured on the real work of a chunk.

    python bench/bench_columnar_libs.py                    # peer workload and house book
    python bench/bench_columnar_libs.py --sizes 256,4096 --deals 8192 --rounds 5

For each workload (the peer workload mapped by ``peer_map.py``; a house book from
``gen_book.py``) the JSONL is cut into chunks of each size and each candidate does, per chunk:

1. **parse**: JSONL bytes → columns, ``lines`` as a nested list column, money exact.
   ``pyarrow.json`` (an explicit schema, money as ``decimal128(38, 12)``: exact, parsed from the
   number's text); ``polars.read_ndjson`` (its JSON reader refuses decimals for JSON numbers, so
   money is Float64 here: *not exact*, for its speed only); ``msgspec`` (the product's reader
   today: Python objects, numbers as ``Decimal``) then a Python loop into numpy arrays.
2. **derive**: the SPEC §2 totals per deal in integer minor units (int64; money cast to a
   common scale, refused when a value has more places or a product could overflow), on the
   nested lines (offsets + flat values): contract, product, services, cost with "every costed
   line has a cost", and the exact rewrites of the quotient facts (below).
3. **conditions**: eight conditions of the peer and house policies, three-valued (SQL/Kleene:
   a comparison with a missing value is unknown, ``not`` unknown is unknown), fired where True.
   Quotients are never divided: ``margin < 0.30`` is ``100·cost > 70·contract`` on a contract
   that is not zero and a cost that is complete (else unknown), ``services_ratio > 0.4`` is
   ``10·services > 4·contract``, ``max_line_discount > 0.20`` is "some line with a non-zero list
   price has ``100·price < 80·list``" (SPEC: 0 when no line has one). numpy keeps a (true,
   false) pair of masks, pyarrow uses ``and_kleene``/``or_kleene`` on nullable booleans,
   polars its nullable boolean expressions (Kleene by definition).

Every candidate's fired counts must equal a Python ``Decimal`` reference computed from the
product's own ``prepare_deal`` (the derived facts the per-deal engines use): the script exits 1
otherwise. Figures are CPU µs per deal (``time.process_time``), the minimum over rounds, with one
thread (``POLARS_MAX_THREADS=1``, ``pyarrow.set_cpu_count(1)``: a worker process uses one core).
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

os.environ.setdefault("POLARS_MAX_THREADS", "1")

import msgspec  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.json as pj  # noqa: E402

pa.set_cpu_count(1)
pa.set_io_thread_count(1)

HERE = Path(__file__).resolve().parent
PEER = Path(os.environ.get("PEER_WORKLOAD", "/work/shared/peer-workload"))

MONEY = pa.decimal128(38, 12)
LINE = pa.struct(
    [
        ("category", pa.string()),
        ("quantity", MONEY),
        ("unit_price", MONEY),
        ("unit_cost", MONEY),
        ("list_price", MONEY),
    ]
)
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        (
            "customer",
            pa.struct(
                [("segment", pa.string()), ("region", pa.string()), ("government", pa.bool_())]
            ),
        ),
        ("offer", pa.struct([("type", pa.string())])),
        ("partner", pa.struct([("tier", pa.string())])),
        ("lines", pa.list_(LINE)),
    ]
)
POLARS_LINE = pl.Struct(
    {
        "category": pl.String,
        "quantity": pl.Float64,
        "unit_price": pl.Float64,
        "unit_cost": pl.Float64,
        "list_price": pl.Float64,
    }
)
POLARS_SCHEMA = {
    "id": pl.String,
    "customer": pl.Struct({"segment": pl.String, "region": pl.String, "government": pl.Boolean}),
    "offer": pl.Struct({"type": pl.String}),
    "partner": pl.Struct({"tier": pl.String}),
    "lines": pl.List(POLARS_LINE),
}
CONDITIONS = [
    'offer.type == "new_market" and totals.contract >= 500000',
    'partner.tier in ["gold", "silver"] and offer.type == "new_market"',
    "margin < 0.30",
    "services_ratio > 0.4",
    "not exists(partner) and totals.contract >= 1000000",
    'customer.region == "us-west" and max_line_discount > 0.20',
    'not customer.government and customer.segment == "elephant"',
    'partner.tier == "gold" and offer.type != "new_market"',
]
SCALES = (0, 2, 4, 6, 8, 10, 12)
INT64_SAFE = float(2**62)


class Refused(Exception):
    """A chunk this exact path cannot take (a value past int64 at its scale): per deal."""


# ---------------------------------------------------------------------------------------------
# Kleene reference on the product's own prepared deals


def reference(lines: list[bytes]) -> tuple[list[int], list[bool]]:
    from dealdesk.deal.validate import prepare_deal
    from dealdesk.jsoncodec import loads

    def cmp(a: Any, op: str, b: Any) -> bool | None:
        if a is None:
            return None
        return {"<": a < b, ">": a > b, ">=": a >= b, "==": a == b, "!=": a != b}[op]

    def and_(*xs: bool | None) -> bool | None:
        return False if False in xs else (None if None in xs else True)

    def not_(x: bool | None) -> bool | None:
        return None if x is None else not x

    def get(d: dict[str, Any], path: str) -> Any:
        for part in path.split("."):
            d = d.get(part) if isinstance(d, dict) else None
        return d

    counts = [0] * len(CONDITIONS)
    valid = []
    for line in lines:
        deal, problems = prepare_deal(loads(line.decode()))
        valid.append(not problems and deal is not None)
        if not valid[-1]:
            continue
        tier = get(deal, "partner.tier")
        results = [
            and_(
                cmp(get(deal, "offer.type"), "==", "new_market"),
                cmp(get(deal, "totals.contract"), ">=", 500000),
            ),
            and_(
                None if tier is None else tier in ("gold", "silver"),
                cmp(get(deal, "offer.type"), "==", "new_market"),
            ),
            cmp(deal.get("margin"), "<", Decimal("0.30")),
            cmp(deal.get("services_ratio"), ">", Decimal("0.4")),
            and_(deal.get("partner") is None, cmp(get(deal, "totals.contract"), ">=", 1000000)),
            and_(
                cmp(get(deal, "customer.region"), "==", "us-west"),
                cmp(deal.get("max_line_discount"), ">", Decimal("0.20")),
            ),
            and_(
                not_(get(deal, "customer.government")),
                cmp(get(deal, "customer.segment"), "==", "elephant"),
            ),
            and_(cmp(tier, "==", "gold"), cmp(get(deal, "offer.type"), "!=", "new_market")),
        ]
        for i, r in enumerate(results):
            counts[i] += r is True
    return counts, valid


# ---------------------------------------------------------------------------------------------
# shared: Arrow decimals → int64 minor units


def unscaled(column: pa.Array) -> tuple[np.ndarray, np.ndarray, int]:
    """(int64 values at the smallest scale that holds every value exactly, valid mask, scale)."""
    valid = ~np.asarray(column.is_null().to_numpy(zero_copy_only=False))
    raw = np.frombuffer(column.buffers()[1], dtype=np.int64)
    raw = raw[2 * column.offset : 2 * (column.offset + len(column))].reshape(-1, 2)
    low, high = raw[:, 0], raw[:, 1]
    top = column.type.scale
    if np.array_equal(high[valid], low[valid] >> 63):
        # the 128-bit unscaled values fit int64 at the read scale: drop the trailing zeros
        # every value has (a few vectorised modulo tests instead of casts that may fail)
        values = np.where(valid, low, 0)
        scale = top
        while scale > 0 and not (values % 10).any():
            values = values // 10
            scale -= 1
        return values, valid, scale
    for scale in SCALES:  # large values: the smallest scale at which they still fit int64
        try:
            cast = pc.cast(column, pa.decimal128(38, scale))  # safe: refuses to drop places
        except pa.ArrowInvalid:
            continue
        raw = np.frombuffer(cast.buffers()[1], dtype=np.int64)
        raw = raw[2 * cast.offset : 2 * (cast.offset + len(cast))].reshape(-1, 2)
        low, high = raw[:, 0], raw[:, 1]
        if not np.array_equal(high[valid], low[valid] >> 63):
            raise Refused(f"a value past int64 at scale {scale}")
        return np.where(valid, low, 0), valid, scale
    raise Refused("more than 12 places")


def rescale(values: np.ndarray, scale: int, to: int) -> np.ndarray:
    if to == scale:
        return values
    factor = 10 ** (to - scale)
    if np.abs(values).max(initial=0) * float(factor) >= INT64_SAFE:
        raise Refused("rescale overflow")
    return values * factor


def product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # exact unless it could overflow: estimated in floats first
    if (np.abs(a.astype(np.float64)) * np.abs(b.astype(np.float64))).max(initial=0) >= INT64_SAFE:
        raise Refused("product overflow")
    return a * b


def segment_sum(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per deal sums of a flat line column (every deal has at least one line here)."""
    cumulative = np.concatenate(([0], np.cumsum(values)))
    return cumulative[offsets[1:]] - cumulative[offsets[:-1]]


# ---------------------------------------------------------------------------------------------
# numpy on Arrow columns


def numpy_derive(table: pa.Table) -> dict[str, Any]:
    lines = table.column("lines").combine_chunks()
    offsets = lines.offsets.to_numpy()
    flat = lines.flatten()
    category = flat.field("category").to_numpy(zero_copy_only=False)
    qty, _, qs = unscaled(flat.field("quantity"))
    price, _, ps = unscaled(flat.field("unit_price"))
    cost, has_cost, cs = unscaled(flat.field("unit_cost"))
    listp, has_list, ls = unscaled(flat.field("list_price"))
    amount = product(qty, price)  # scale qs + ps
    cost_amount = product(qty, cost)  # scale qs + cs
    scale = max(qs + ps, qs + cs)
    amount, cost_amount = rescale(amount, qs + ps, scale), rescale(cost_amount, qs + cs, scale)
    is_product = (category == "hardware") | (category == "software")
    is_services = (category == "labor") | (category == "support")
    costed = category != "subscription"
    contract = segment_sum(amount, offsets)
    # exact: 100 * price < 80 * list, both at one scale (list price present and not zero)
    top = max(ps, ls)
    discounted = has_list & (listp != 0)
    over_20 = discounted & (
        rescale(price, ps, top) * 100 < rescale(listp, ls, top) * 80
    )  # bounded by the rescale checks above for these magnitudes
    return {
        "contract": contract,
        "scale": scale,
        "product": segment_sum(np.where(is_product, amount, 0), offsets),
        "services": segment_sum(np.where(is_services, amount, 0), offsets),
        "cost": segment_sum(np.where(has_cost, cost_amount, 0), offsets),
        "cost_complete": segment_sum((costed & ~has_cost).astype(np.int64), offsets) == 0,
        "discount_over_20": segment_sum(over_20.astype(np.int64), offsets) > 0,
    }


def numpy_conditions(table: pa.Table, facts: dict[str, Any]) -> list[np.ndarray]:
    def text(path: str) -> tuple[np.ndarray, np.ndarray]:
        group, name = path.split(".")
        column = table.column(group).combine_chunks()
        values = pc.struct_field(column, name)
        known = ~values.is_null().to_numpy(zero_copy_only=False)
        return values.to_numpy(zero_copy_only=False), known

    def eq(path: str, constant: str) -> tuple[np.ndarray, np.ndarray]:
        values, known = text(path)
        hit = values == constant
        return known & hit, known & ~hit

    def and_(*xs: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        t, f = xs[0]
        for t2, f2 in xs[1:]:
            t, f = t & t2, f | f2
        return t, f

    def not_(x: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return x[1], x[0]

    def known(mask: np.ndarray, hit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return mask & hit, mask & ~hit

    scale = 10 ** facts["scale"]
    contract = facts["contract"]
    everywhere = np.ones(len(contract), dtype=bool)
    nonzero = contract != 0
    offer = eq("offer.type", "new_market")
    tier_values, tier_known = text("partner.tier")
    partner_present = ~table.column("partner").is_null().to_numpy(zero_copy_only=False)
    gov_values, gov_known = text("customer.government")
    biggest = max(
        float(np.abs(contract).max(initial=0)), float(np.abs(facts["cost"]).max(initial=0))
    )
    if biggest * 100.0 >= INT64_SAFE or 1000000.0 * scale >= INT64_SAFE:
        raise Refused("comparison overflow")
    results = [
        and_(offer, known(everywhere, contract >= 500000 * scale)),
        and_(known(tier_known, np.isin(tier_values, ["gold", "silver"])), offer),
        known(nonzero & facts["cost_complete"], 100 * facts["cost"] > 70 * contract),
        known(nonzero, 10 * facts["services"] > 4 * contract),
        and_(known(everywhere, ~partner_present), known(everywhere, contract >= 1000000 * scale)),
        and_(eq("customer.region", "us-west"), known(everywhere, facts["discount_over_20"])),
        and_(not_(known(gov_known, gov_values.astype(bool))), eq("customer.segment", "elephant")),
        and_(eq("partner.tier", "gold"), not_(offer)),
    ]
    return [t for t, _ in results]


# ---------------------------------------------------------------------------------------------
# pyarrow.compute


def arrow_int(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    return pa.array(values, mask=None if valid is None else ~valid)


def arrow_derive(table: pa.Table) -> dict[str, Any]:
    # the decimal → int64 step is the same buffer view; the arithmetic and the per-deal sums
    # are pyarrow.compute's (list_parent_indices + Table.group_by)
    lines = table.column("lines").combine_chunks()
    flat = lines.flatten()
    parents = pc.list_parent_indices(lines)
    category = flat.field("category")
    qty, _, qs = unscaled(flat.field("quantity"))
    price, _, ps = unscaled(flat.field("unit_price"))
    cost, has_cost, cs = unscaled(flat.field("unit_cost"))
    listp, has_list, ls = unscaled(flat.field("list_price"))
    scale = max(qs + ps, qs + cs)
    product(qty, price), product(qty, cost)  # the overflow guards
    amount = pc.multiply(pa.array(qty), pa.array(rescale(price, ps, scale - qs)))
    cost_amount = pc.multiply(pa.array(qty), pa.array(rescale(cost, cs, scale - qs)))
    is_product = pc.is_in(category, pa.array(["hardware", "software"]))
    is_services = pc.is_in(category, pa.array(["labor", "support"]))
    has_cost_a = pa.array(has_cost)
    missing_cost = pc.and_(pc.not_equal(category, "subscription"), pc.invert(has_cost_a))
    top = max(ps, ls)
    over_20 = pc.and_(
        pc.and_(pa.array(has_list), pc.not_equal(pa.array(listp), 0)),
        pc.less(
            pc.multiply(pa.array(rescale(price, ps, top)), 100),
            pc.multiply(pa.array(rescale(listp, ls, top)), 80),
        ),
    )
    zero = pa.scalar(0, pa.int64())
    grouped = (
        pa.table(
            {
                "deal": parents,
                "amount": amount,
                "product": pc.if_else(is_product, amount, zero),
                "services": pc.if_else(is_services, amount, zero),
                "cost": pc.if_else(has_cost_a, cost_amount, zero),
                "missing": pc.cast(missing_cost, pa.int64()),
                "over": pc.cast(over_20, pa.int64()),
            }
        )
        .group_by("deal", use_threads=False)
        .aggregate(
            [
                ("amount", "sum"),
                ("product", "sum"),
                ("services", "sum"),
                ("cost", "sum"),
                ("missing", "sum"),
                ("over", "sum"),
            ]
        )
        .sort_by("deal")
    )
    return {
        "contract": grouped.column("amount_sum"),
        "scale": scale,
        "product": grouped.column("product_sum"),
        "services": grouped.column("services_sum"),
        "cost": grouped.column("cost_sum"),
        "cost_complete": pc.equal(grouped.column("missing_sum"), 0),
        "discount_over_20": pc.greater(grouped.column("over_sum"), 0),
    }


def arrow_conditions(table: pa.Table, facts: dict[str, Any]) -> list[np.ndarray]:
    def field(path: str) -> pa.Array:
        group, name = path.split(".")
        return pc.struct_field(table.column(group), name)

    scale = 10 ** facts["scale"]
    contract = facts["contract"]
    nonzero = pc.not_equal(contract, 0)
    null_unless = lambda mask, values: pc.if_else(mask, values, pa.scalar(None, pa.bool_()))  # noqa: E731
    offer = pc.equal(field("offer.type"), "new_market")
    tier = field("partner.tier")
    partner_missing = pc.is_null(table.column("partner"))
    results = [
        pc.and_kleene(offer, pc.greater_equal(contract, 500000 * scale)),
        pc.and_kleene(pc.is_in(tier, pa.array(["gold", "silver"]), skip_nulls=True), offer),
        null_unless(
            pc.and_(nonzero, facts["cost_complete"]),
            pc.greater(pc.multiply(facts["cost"], 100), pc.multiply(contract, 70)),
        ),
        null_unless(
            nonzero, pc.greater(pc.multiply(facts["services"], 10), pc.multiply(contract, 4))
        ),
        pc.and_kleene(partner_missing, pc.greater_equal(contract, 1000000 * scale)),
        pc.and_kleene(pc.equal(field("customer.region"), "us-west"), facts["discount_over_20"]),
        pc.and_kleene(
            pc.invert(field("customer.government")),
            pc.equal(field("customer.segment"), "elephant"),
        ),
        pc.and_kleene(pc.equal(tier, "gold"), pc.invert(offer)),
    ]
    # is_in with skip_nulls gives False for a null: make it unknown again
    results[1] = pc.and_kleene(
        null_unless(pc.is_valid(tier), pc.is_in(tier, pa.array(["gold", "silver"]))), offer
    )
    return [pc.fill_null(r, False).to_numpy(zero_copy_only=False) for r in results]


# ---------------------------------------------------------------------------------------------
# polars


def polars_derive(table: pa.Table) -> tuple[pl.DataFrame, dict[str, Any]]:
    # the same exact int64 values in a flat frame of lines, summed per deal by group_by
    lines = table.column("lines").combine_chunks()
    flat = lines.flatten()
    qty, _, qs = unscaled(flat.field("quantity"))
    price, _, ps = unscaled(flat.field("unit_price"))
    cost, has_cost, cs = unscaled(flat.field("unit_cost"))
    listp, has_list, ls = unscaled(flat.field("list_price"))
    scale = max(qs + ps, qs + cs)
    product(qty, price), product(qty, cost)
    top = max(ps, ls)
    frame = pl.DataFrame(
        {
            "deal": pc.list_parent_indices(lines).to_numpy(),
            "category": flat.field("category").to_numpy(zero_copy_only=False),
            "qty": qty,
            "price": rescale(price, ps, scale - qs),
            "cost": rescale(cost, cs, scale - qs),
            "has_cost": has_cost,
            "price_top": rescale(price, ps, top),
            "list_top": np.where(has_list, rescale(listp, ls, top), 0),
        }
    )
    amount = pl.col("qty") * pl.col("price")
    cat = pl.col("category")
    derived = (
        frame.group_by("deal", maintain_order=True)
        .agg(
            contract=amount.sum(),
            product=pl.when(cat.is_in(["hardware", "software"])).then(amount).otherwise(0).sum(),
            services=pl.when(cat.is_in(["labor", "support"])).then(amount).otherwise(0).sum(),
            cost=pl.when(pl.col("has_cost"))
            .then(pl.col("qty") * pl.col("cost"))
            .otherwise(0)
            .sum(),
            cost_complete=((cat != "subscription") & ~pl.col("has_cost")).any().not_(),
            discount_over_20=(
                (pl.col("list_top") != 0) & (pl.col("price_top") * 100 < pl.col("list_top") * 80)
            ).any(),
        )
        .drop("deal")
    )
    return derived, {"scale": scale}


def polars_conditions(
    table: pa.Table, derived: pl.DataFrame, meta: dict[str, Any]
) -> list[np.ndarray]:
    scale = 10 ** meta["scale"]
    deals = pl.from_arrow(table.select(["customer", "offer", "partner"]))
    frame = pl.concat([deals, derived], how="horizontal")
    offer = pl.col("offer").struct.field("type") == "new_market"
    tier = pl.col("partner").struct.field("tier")
    contract = pl.col("contract")
    nonzero = contract != 0
    result = frame.select(
        c1=offer & (contract >= 500000 * scale),
        c2=tier.is_in(["gold", "silver"]) & offer,
        c3=pl.when(nonzero & pl.col("cost_complete")).then(pl.col("cost") * 100 > contract * 70),
        c4=pl.when(nonzero).then(pl.col("services") * 10 > contract * 4),
        c5=pl.col("partner").is_null() & (contract >= 1000000 * scale),
        c6=(pl.col("customer").struct.field("region") == "us-west") & pl.col("discount_over_20"),
        c7=~pl.col("customer").struct.field("government")
        & (pl.col("customer").struct.field("segment") == "elephant"),
        c8=(tier == "gold") & ~offer,
    ).select(pl.all().fill_null(False))
    return [result.to_series(i).to_numpy() for i in range(result.width)]


# ---------------------------------------------------------------------------------------------
# msgspec → Python → numpy (what reading into columns costs without a columnar parser)

_DECODER = msgspec.json.Decoder(float_hook=Decimal)


def msgspec_columns(chunk: bytes) -> int:
    deals = [_DECODER.decode(line) for line in chunk.splitlines()]
    scale = Decimal(1).scaleb(-8)
    q, p, c = [], [], []
    offsets = [0]
    regions = []
    for deal in deals:
        regions.append(deal.get("customer", {}).get("region"))
        for line in deal.get("lines") or ():
            for target, key in ((q, "quantity"), (p, "unit_price"), (c, "unit_cost")):
                value = line.get(key)
                number = Decimal(value) if value is not None else None
                scaled = number.scaleb(8) if number is not None else None
                if scaled is not None and scaled != scaled.to_integral_value():
                    raise Refused(f"{key}: more than 8 places")
                target.append(0 if scaled is None else int(scaled))
        offsets.append(len(q))
    del scale
    arrays = (np.array(q, np.int64), np.array(p, np.int64), np.array(c, np.int64))
    return len(arrays[0]) + len(regions)


# ---------------------------------------------------------------------------------------------


def chunks_of(lines: list[bytes], size: int) -> list[bytes]:
    return [b"\n".join(lines[i : i + size]) + b"\n" for i in range(0, len(lines), size)]


def read_arrow(chunk: bytes) -> pa.Table:
    return pj.read_json(
        io.BytesIO(chunk),
        read_options=pj.ReadOptions(use_threads=False, block_size=max(1 << 20, 2 * len(chunk))),
        parse_options=pj.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore"),
    )


def read_arrow_isolating(lines: list[bytes]) -> tuple[pa.Table, list[int]]:
    """The chunk's lines as one table, and the indices of the lines Arrow refuses (malformed
    money, a string where a number goes): halves are read again until the refused lines are
    alone, and those go to the per-deal path."""
    tables: list[pa.Table] = []
    refused: list[int] = []

    def read(start: int, stop: int) -> None:
        try:
            tables.append(read_arrow(b"\n".join(lines[start:stop]) + b"\n"))
        except pa.ArrowInvalid:
            if stop - start == 1:
                refused.append(start)
                return
            middle = (start + stop) // 2
            read(start, middle)
            read(middle, stop)

    read(0, len(lines))
    return pa.concat_tables(tables).combine_chunks(), refused


def read_polars(chunk: bytes) -> pl.DataFrame | None:
    try:
        return pl.read_ndjson(io.BytesIO(chunk), schema=POLARS_SCHEMA)
    except pl.exceptions.PolarsError:  # money as a decimal string ("510.00"): refused
        return None


def timed(fn: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(rounds):
        start = time.process_time()
        result = fn()
        best = min(best, time.process_time() - start)
    return best, result


def workload(name: str, n: int) -> list[bytes]:
    if name == "peer":
        out = subprocess.run(
            [sys.executable, str(PEER / "peer_map.py"), str(n)],
            cwd=PEER,
            capture_output=True,
            check=True,
        ).stdout
    else:
        out = subprocess.run(
            [sys.executable, str(HERE / "gen_book.py"), str(n)], capture_output=True, check=True
        ).stdout
    return [line for line in out.splitlines() if line.strip()]


def measure(name: str, lines: list[bytes], size: int, rounds: int) -> bool:
    """Print one workload's figures at one chunk size; False when a candidate's fired counts
    differ from the reference."""
    chunks = chunks_of(lines, size)
    # deals the exact path cannot take (an invalid deal's malformed money) go per deal in the
    # engine; here they are left out, and counted
    tables: list[pa.Table] = []
    kept: list[bytes] = []
    refused_lines = 0
    for chunk in chunks:
        table, refused = read_arrow_isolating(chunk.splitlines())
        try:
            numpy_derive(table)
        except Refused:
            continue
        gone = set(refused)
        refused_lines += len(gone)
        tables.append(table)
        kept.append(b"".join(x + b"\n" for i, x in enumerate(chunk.splitlines()) if i not in gone))
    isolate_s, _ = timed(lambda: [read_arrow_isolating(c.splitlines()) for c in chunks], rounds)
    n = sum(t.num_rows for t in tables)
    want, valid_rows = reference([line for chunk in kept for line in chunk.splitlines()])
    # invalid deals are the validator's (the per-deal path): left out of the counts
    masks, at = [], 0
    for table in tables:
        masks.append(np.array(valid_rows[at : at + table.num_rows]))
        at += table.num_rows
    print(
        f"\n{name}, chunks of {size}: {n:,} deals in {len(kept)} chunks "
        f"({len(chunks) - len(kept)} chunks and {refused_lines} lines refused by Arrow "
        "left to the per-deal path)"
    )
    total_lines = sum(len(c.splitlines()) for c in chunks)
    print(
        f"  pyarrow.json read, refused lines isolated by halving: "
        f"{1e6 * isolate_s / total_lines:.2f} µs per deal"
    )
    if not n:
        return True
    print(
        f"  {'candidate':<28} {'parse':>8} {'derive':>8} {'conds':>8} {'sum':>8}  fired = reference"
    )
    same_everywhere = True
    candidates: list[tuple[str, Callable[[Any], Any], Callable[[Any, Any], list[np.ndarray]]]] = [
        ("numpy (pyarrow.json read)", numpy_derive, numpy_conditions),
        ("pyarrow.compute", arrow_derive, arrow_conditions),
        ("polars (pyarrow.json read)", polars_derive, lambda t, d: polars_conditions(t, *d)),
    ]
    for label, derive, conditions in candidates:
        parse_s, _ = timed(lambda: [read_arrow(c) for c in kept], rounds)  # noqa: B023
        derive_s, derived = timed(lambda: [derive(t) for t in tables], rounds)  # noqa: B023
        cond_s, fired = timed(
            lambda: [conditions(t, d) for t, d in zip(tables, derived, strict=True)],  # noqa: B023
            rounds,
        )
        total = [
            sum(int((f[i] & m).sum()) for f, m in zip(fired, masks, strict=True))
            for i in range(len(CONDITIONS))
        ]
        us = [1e6 * s / n for s in (parse_s, derive_s, cond_s)]
        same = total == want
        same_everywhere &= same
        print(
            f"  {label:<28} {us[0]:8.2f} {us[1]:8.2f} {us[2]:8.2f} {sum(us):8.2f}  "
            f"{'yes' if same else f'NO {total} != {want}'}"
        )
    polars_read_s, frames = timed(lambda: [read_polars(c) for c in kept], rounds)
    refused_frames = sum(f is None for f in frames)
    msgspec_s, _ = timed(lambda: [msgspec_columns(c) for c in kept], rounds)
    print(
        f"  {'polars.read_ndjson (floats!)':<28} {1e6 * polars_read_s / n:8.2f}"
        + (
            f"  (refused {refused_frames} of {len(frames)} chunks: decimal strings)"
            if refused_frames
            else ""
        )
    )
    print(f"  {'msgspec → Python → numpy':<28} {1e6 * msgspec_s / n:8.2f}")
    return same_everywhere


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=8192)
    parser.add_argument("--sizes", default="256,4096")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workloads", default="peer,house")
    args = parser.parse_args()
    print(
        f"numpy {np.__version__}, pyarrow {pa.__version__}, polars {pl.__version__}, "
        f"msgspec {msgspec.__version__}; CPU µs per deal, min of {args.rounds} rounds, 1 thread"
    )
    same = True
    for name in args.workloads.split(","):
        lines = workload(name, args.deals)
        for size in map(int, args.sizes.split(",")):
            same &= measure(name, lines, size, args.rounds)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
