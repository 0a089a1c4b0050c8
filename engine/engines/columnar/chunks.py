"""A chunk read by the columnar reader, for the condition vectors: the columns the reader
(:mod:`.frame`) and the derived facts (:mod:`.exact`) hold, and every other path read from the
deals' views (a plugin's fact, a list), as the dict chunk reads it.

Rows the reader did not find valid (``frame.fast`` false) have no view: every path is missing
there, and no rule fires; their records are made deal by deal from the raw line.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dealdesk.engines.columnar.vector import Chunk, Column, Elements
from dealdesk.rules.meaning import compile_expr

if TYPE_CHECKING:
    from dealdesk.engines.columnar.exact import Derived
    from dealdesk.engines.columnar.frame import Frame
    from dealdesk.rules.expressions import Expr


class Views(Sequence[Any]):
    """Each row's view (a read-only mapping of the prepared deal), None where not valid."""

    def __init__(self, frame: Frame):
        self.frame = frame
        self.fast = frame.fast.tolist()
        self.cache: dict[int, Mapping[str, Any]] = {}

    def __len__(self) -> int:
        return self.frame.n

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not self.fast[index]:
            return None
        view = self.cache.get(index)
        if view is None:
            view = self.cache[index] = self.frame.view(index)
        return view


class FrameChunk(Chunk):
    """The chunk of a frame: columns from the reader where it has them."""

    def __init__(self, frame: Frame, derived: Derived, views: Views):
        super().__init__(views)
        self.frame = frame
        self.derived = derived

    def path(self, path: str) -> Column:
        column = self.paths.get(path)
        if column is None:
            found = self.frame.column(path)
            if found is None:
                found = self.derived.column(path)
            if found is None:
                return super().path(path)
            column = self.paths[path] = found
        return column

    def elements(self, path: str) -> Elements:
        if path != "lines":
            return super().elements(path)
        found = self.lists.get(path)
        if found is None:
            found = self.lists[path] = FrameLines(self)
        return found

    def per_row(self, expr: Expr) -> list[Any]:
        compiled = compile_expr(expr)
        return [None if d is None else compiled(d, None) for d in self.deals]


class FrameLines(Elements):
    """Every line of a frame's valid rows, flattened in row order."""

    def __init__(self, chunk: FrameChunk):
        self.owner_chunk = chunk
        self.frame = chunk.frame
        self.derived = chunk.derived
        self.owners = np.asarray(chunk.frame.owners, dtype=np.intp)
        self.counts = np.bincount(self.owners, minlength=chunk.n)
        self.broadcast: dict[str, Column] = {}
        Chunk.__init__(self, _LazyLines(chunk))

    def path(self, path: str) -> Column:
        column = self.paths.get(path)
        if column is None:
            found = self.frame.line_column(path)
            if found is None:
                found = self.derived.line_column(path)
            if found is None:
                return super().path(path)
            column = self.paths[path] = found
        return column


class _LazyLines(Sequence[Any]):
    """The lines of the valid rows' views, flattened, built on first use (per-row fallbacks)."""

    def __init__(self, chunk: FrameChunk):
        self.chunk = weakref.ref(chunk)  # the chunk holds these lines: no cycle back
        self.size = len(chunk.frame.owners)
        self.lines: list[Any] | None = None

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: Any) -> Any:
        if self.lines is None:
            chunk = self.chunk()
            assert chunk is not None, "lines are read while their chunk is evaluated"
            views = chunk.deals
            self.lines = [
                line
                for i in range(len(views))
                if views[i] is not None
                for line in views[i]["lines"]
            ]
        return self.lines[index]
