"""Cross-batch duplicate filter in bounded memory: 64-bit row hashes in sorted numpy runs.

Memory is 8 bytes per distinct row kept (160 MB at 20M rows), never the rows themselves. Two
different rows are merged only if their 64-bit hashes collide: for N distinct rows the chance
that any pair collides is about N**2 / 2**65 (3e-8 at 1M rows, 1e-5 at 20M rows).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from types import ModuleType

import numpy as np
import pyarrow as pa

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
# Position-and-byte tabulation table for the numpy fallback hash (used when polars is absent).
_TAB_POSITIONS = 512


def _polars() -> ModuleType | None:
    """The polars module when installed (its row hash is ~15x faster than the numpy fallback)."""
    try:
        import polars
    except ImportError:  # pragma: no cover - polars is installed with pipekit[bench] / [all]
        return None
    return polars


class RowHasher:
    """Hash table rows to uint64, the same way for every batch of one file."""

    def __init__(self, seed: int = 0x5EED, *, use_polars: bool | None = None) -> None:
        self._pl = _polars() if use_polars in (None, True) else None
        if use_polars and self._pl is None:
            raise ImportError("polars is not installed")
        rng = np.random.default_rng(seed)
        self._seed = int(seed)
        self._table = rng.integers(0, 2**63, size=(_TAB_POSITIONS * 256,), dtype=np.uint64)
        self._col_mix = rng.integers(1, 2**63, size=(4096,), dtype=np.uint64) | np.uint64(1)
        self._null = rng.integers(0, 2**63, dtype=np.uint64)

    @property
    def engine(self) -> str:
        """Which implementation hashes rows ("polars" or "numpy")."""
        return "polars" if self._pl is not None else "numpy"

    def hash_rows(self, table: pa.Table, columns: Sequence[str] | None = None) -> np.ndarray:
        """One uint64 per row of ``table`` over ``columns`` (all when None)."""
        if columns is not None:
            table = table.select(list(columns))
        if table.num_rows == 0:
            return np.zeros(0, dtype=np.uint64)
        if self._pl is not None:
            frame = self._pl.from_arrow(table, rechunk=False)
            hashes: np.ndarray = frame.hash_rows(seed=self._seed).to_numpy()
            return hashes
        out = np.zeros(table.num_rows, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for i, column in enumerate(table.columns):
                out = (out * self._col_mix[i % len(self._col_mix)]) ^ self._hash_strings(column)
        return out

    def _hash_strings(self, column: pa.ChunkedArray | pa.Array) -> np.ndarray:
        """Tabulation hash of each string: sum of random table entries indexed by (position, byte)."""
        array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        array = array.cast(pa.large_string())
        n = len(array)
        offsets = np.frombuffer(array.buffers()[1], dtype=np.int64, count=n + 1, offset=array.offset * 8)
        data = array.buffers()[2]
        raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
        raw = raw[offsets[0] : offsets[-1]]
        starts = offsets[:-1] - offsets[0]
        lengths = np.diff(offsets)
        position = np.arange(len(raw), dtype=np.int64) - np.repeat(starts, lengths)
        values = self._table[(position % _TAB_POSITIONS) * 256 + raw]
        with np.errstate(over="ignore"):
            sums = np.zeros(n, dtype=np.uint64)
            nonempty = lengths > 0
            if len(values):
                sums[nonempty] = np.add.reduceat(values, starts[nonempty])
            sums = sums + lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        if array.null_count:
            sums[np.asarray(array.is_null())] = self._null
        return sums


class SeenRows:
    """The set of row hashes seen so far: 16 buckets (top 4 bits), each a list of sorted numpy runs.

    Runs are merged like an LSM tree (amortised n log n). Bucketing keeps each merge, and so the
    transient extra memory of a merge, to about 1/16 of the set instead of doubling the whole set.
    """

    _BITS = 4

    def __init__(self) -> None:
        self._buckets: list[list[np.ndarray]] = [[] for _ in range(1 << self._BITS)]
        shift = np.uint64(64 - self._BITS)
        self._starts = (np.arange(1 << self._BITS, dtype=np.uint64) << shift)[1:]

    def __len__(self) -> int:
        return sum(len(r) for runs in self._buckets for r in runs)

    @property
    def nbytes(self) -> int:
        """Memory held by the hashes."""
        return sum(r.nbytes for runs in self._buckets for r in runs)

    def first_new(self, hashes: np.ndarray) -> np.ndarray:
        """Sorted row indices whose hash is new (first in this batch, unseen before); records them."""
        if len(hashes) == 0:
            return np.zeros(0, dtype=np.int64)
        unique, first = np.unique(hashes.astype(np.uint64, copy=False), return_index=True)
        new = np.ones(len(unique), dtype=bool)
        bounds = [0, *np.searchsorted(unique, self._starts).tolist(), len(unique)]
        for bucket, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            if lo == hi:
                continue
            part = unique[lo:hi]
            fresh = np.ones(hi - lo, dtype=bool)
            for run in self._buckets[bucket]:
                pos = np.searchsorted(run, part)
                pos[pos == len(run)] = 0
                fresh &= run[pos] != part
            new[lo:hi] = fresh
            self._add(bucket, part[fresh])
        return np.sort(first[new])

    def _add(self, bucket: int, run: np.ndarray) -> None:
        if len(run) == 0:
            return
        runs = self._buckets[bucket]
        runs.append(run)
        # Merge while the newest run is at least half the size of the one before: log2(N) runs at most.
        while len(runs) > 1 and len(runs[-1]) * 2 >= len(runs[-2]):
            last = runs.pop()
            prev = runs.pop()
            merged = np.concatenate((prev, last))
            merged.sort(kind="stable")  # two sorted runs: timsort merges them in linear time
            runs.append(merged)
