"""Exact number columns for the columnar engine: a deal's own numbers and its derived facts
(SPEC §2), from the Arrow arrays a chunk was read into.

Every column here is a :class:`~dealdesk.engines.columnar.vector.Column` whose comparisons with
a ``Decimal`` give exactly what the per-deal engines give on the ``Decimal`` values
:func:`~dealdesk.deal.validate.prepare_deal` computes (sums and products exact, quotients
rounded to 28 digits), and whose ``values`` equal those ``Decimal`` values.

A first version: the values as ``Decimal`` objects in an object array (exact, not fast). The
int64 minor-unit columns with division-free comparisons replace it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dealdesk.engines.columnar.vector import Column


def number_column(array: Any, rows: np.ndarray) -> Column:
    """A column of one of the deal's own numbers (``decimal128`` or integer Arrow array).

    :param rows: the rows the column holds (the chunk's valid deals); elsewhere it is unknown.
    """
    values = array.to_pylist()
    return Column(
        [v if ok and v is not None else None for v, ok in zip(values, rows.tolist(), strict=True)]
    )
