"""Cross-batch duplicate filter in bounded memory: keyed row hashes in sorted numpy runs.

Rows are hashed to 128 bits (two keyed 64-bit halves); within a batch both halves are compared, and
the set of rows seen in earlier batches keeps 96 of them (the high half and 32 bits of the low one):
12 bytes per distinct row kept (229 MiB at 20M rows), never the rows themselves. The hash is keyed
with a random per-run seed (never written anywhere), so nobody can craft two different rows that
collide; two different rows are merged only if all 96 bits collide by chance: for N distinct rows
about N**2 / 2**97 (3e-15 at 20M rows).
"""

from __future__ import annotations

import itertools
import secrets
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import NamedTuple

import numpy as np
import pyarrow as pa

# Position-and-byte tabulation table for the numpy fallback hash (used when polars is absent).
_TAB_POSITIONS = 512


def _polars() -> ModuleType | None:
    """The polars module when installed (its row hash is ~15x faster than the numpy fallback)."""
    try:
        import polars
    except ImportError:  # pragma: no cover - polars is installed with pipekit[bench] / [all]
        return None
    return polars


def import_polars_in_background() -> None:
    """Start importing polars (~0.4 s) on a daemon thread, so it overlaps the first batches' reading.

    A later ``import polars`` (``RowHasher``) waits for this one to finish rather than doing it twice.
    """
    if "polars" not in sys.modules:
        threading.Thread(target=_polars, name="pipekit-import-polars", daemon=True).start()


class RowHasher:
    """Hash table rows to 128 bits (two uint64 columns), the same way for every batch of one run.

    ``seed`` (default: random, from ``secrets``) keys the hash; the same seed gives the same hashes.
    """

    def __init__(self, seed: int | None = None, *, use_polars: bool | None = None) -> None:
        # With use_polars=None, polars is looked up at the first hash (see import_polars_in_background).
        self._use_polars = use_polars
        self._resolved = use_polars is False
        self._pl: ModuleType | None = None
        self._lock = threading.Lock()
        if use_polars:
            self._resolve()
        seed = secrets.randbits(128) if seed is None else int(seed)
        rng = np.random.default_rng(seed)
        # One 63-bit seed per half for polars' hash_rows, one tabulation table per half for numpy.
        self._seeds = [int(x) for x in rng.integers(0, 2**63, size=2, dtype=np.uint64)]
        self._halves = [_Tabulation(rng), _Tabulation(rng)]

    def _resolve(self) -> ModuleType | None:
        if not self._resolved:
            with self._lock:
                if not self._resolved:
                    self._pl = _polars()
                    self._resolved = True
                    if self._use_polars and self._pl is None:
                        raise ImportError("polars is not installed")
        return self._pl

    @property
    def engine(self) -> str:
        """Which implementation hashes rows ("polars" or "numpy")."""
        return "polars" if self._resolve() is not None else "numpy"

    def hash_rows(self, table: pa.Table, columns: Sequence[str] | None = None) -> np.ndarray:
        """``(rows, 2)`` uint64: one 128-bit hash per row of ``table`` over ``columns`` (all when None)."""
        if columns is not None:
            table = table.select(list(columns))
        out = np.zeros((table.num_rows, 2), dtype=np.uint64)
        if table.num_rows == 0:
            return out
        pl = self._resolve()
        if pl is not None:
            frame = pl.from_arrow(table, rechunk=False)
            for half in (0, 1):
                out[:, half] = frame.hash_rows(seed=self._seeds[half]).to_numpy()
            return out
        for half, tab in enumerate(self._halves):
            out[:, half] = tab.hash_table(table)
        return out


class _Tabulation:
    """Tabulation hash of rows (numpy): random table entries indexed by (position, byte), mixed per column."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._table = rng.integers(0, 2**63, size=(_TAB_POSITIONS * 256,), dtype=np.uint64)
        self._col_mix = rng.integers(1, 2**63, size=(4096,), dtype=np.uint64) | np.uint64(1)
        self._null = rng.integers(0, 2**63, dtype=np.uint64)

    def hash_table(self, table: pa.Table) -> np.ndarray:
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


class BatchHashes(NamedTuple):
    """One batch's distinct row hashes, sorted by ``hi`` (``SeenRows.distinct``), and the batch size."""

    hi: np.ndarray
    lo: np.ndarray
    first: np.ndarray  # the row index of each pair's first occurrence in the batch
    rows: int


class SeenRows:
    """The set of row hashes seen so far: 64 buckets (top 6 bits), each a list of sorted runs.

    A run is a uint64 array ``hi``, sorted, with the low 32 bits of ``lo`` alongside (uint32). Runs are
    merged like an LSM tree (amortised n log n). Bucketing keeps each merge, and so the transient extra
    memory of a merge, to about 1/64 of the set instead of doubling the whole set, and keeps each
    bucket's runs small (~300k entries at 20M rows), so lookups mostly hit the CPU caches (16 and 256
    buckets were both slower in a whole run: fewer misses against more Python calls per batch).

    ``distinct`` (the batch's own duplicates, a sort) touches no state and may run on any thread;
    ``first_new_distinct`` must see the batches one at a time, in file order.
    """

    _BITS = 6

    def __init__(self) -> None:
        # per bucket: runs of (hi sorted, lo in the same order, whether two entries share a hi)
        self._buckets: list[list[tuple[np.ndarray, np.ndarray, bool]]] = [[] for _ in range(1 << self._BITS)]
        shift = np.uint64(64 - self._BITS)
        self._starts = (np.arange(1 << self._BITS, dtype=np.uint64) << shift)[1:]
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        """Memory held by the hashes (12 bytes per distinct row)."""
        return sum(hi.nbytes + lo.nbytes for runs in self._buckets for hi, lo, _ in runs)

    @staticmethod
    def distinct(hashes: np.ndarray, skip: np.ndarray | None = None) -> BatchHashes:
        """The batch's distinct pairs sorted by ``hi``, each with the index of its first occurrence.

        Rows where ``skip`` is True (rows dropped for another reason) take no part: never kept, never seen.
        """
        rows = len(hashes)
        if skip is not None and skip.any():
            index = np.flatnonzero(~skip)
            hashes = hashes[index]
        else:
            index = None
        if len(hashes) == 0:
            empty = np.zeros(0, dtype=np.uint64)
            return BatchHashes(empty, empty, np.zeros(0, dtype=np.int64), rows)
        hi = np.ascontiguousarray(hashes[:, 0], dtype=np.uint64)
        lo = np.ascontiguousarray(hashes[:, 1], dtype=np.uint64)
        order = _order_first_occurrence(hi, lo)
        hi, lo = hi[order], lo[order]
        distinct = np.ones(len(hi), dtype=bool)
        distinct[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
        first = order[distinct] if index is None else index[order[distinct]]
        return BatchHashes(hi[distinct], lo[distinct], first, rows)

    def first_new(self, hashes: np.ndarray) -> np.ndarray:
        """Sorted row indices whose hash is new (first in this batch, unseen before); records them.

        ``hashes`` is ``(n, 2)`` uint64 (``RowHasher.hash_rows``): rows are the same only when both halves are.
        """
        return self.first_new_distinct(self.distinct(hashes))

    def first_new_distinct(self, batch: BatchHashes) -> np.ndarray:
        """``first_new`` for a batch that went through ``distinct`` already."""
        hi, lo, first = batch.hi, batch.lo, batch.first
        if len(hi) == 0:
            return np.zeros(0, dtype=np.int64)
        new = np.ones(len(hi), dtype=bool)
        bounds = [0, *np.searchsorted(hi, self._starts).tolist(), len(hi)]
        for bucket, (start, stop) in enumerate(itertools.pairwise(bounds)):
            if start == stop:
                continue
            part_hi, part_lo = hi[start:stop], lo[start:stop].astype(np.uint32)  # the 32 bits kept
            fresh = np.ones(stop - start, dtype=bool)
            for run_hi, run_lo, shared in self._buckets[bucket]:
                fresh &= ~_contains(run_hi, run_lo, shared, part_hi, part_lo)
            new[start:stop] = fresh
            self._add(bucket, part_hi[fresh], part_lo[fresh])
        self._count += int(new.sum())
        keep = np.zeros(batch.rows, dtype=bool)
        keep[first[new]] = True
        return np.flatnonzero(keep)  # file order, without sorting the indices

    def _add(self, bucket: int, hi: np.ndarray, lo: np.ndarray) -> None:
        if len(hi) == 0:
            return
        runs = self._buckets[bucket]
        runs.append((hi, lo, _shares_hi(hi)))
        # Merge while the newest run is at least half the size of the one before: log2(N) runs at most.
        while len(runs) > 1 and len(runs[-1][0]) * 2 >= len(runs[-2][0]):
            last_hi, last_lo, _ = runs.pop()
            prev_hi, prev_lo, _ = runs.pop()
            merged_hi = np.concatenate((prev_hi, last_hi))
            merged_lo = np.concatenate((prev_lo, last_lo))
            order = np.argsort(
                merged_hi, kind="stable"
            )  # two sorted runs: timsort merges them in linear time
            merged_hi, merged_lo = merged_hi[order], merged_lo[order]
            runs.append((merged_hi, merged_lo, _shares_hi(merged_hi)))


def _order_first_occurrence(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Row indices sorted by (hi, lo), equal pairs by index: the first occurrence of each pair leads.

    An unstable sort on ``hi`` alone (several times faster than ``lexsort`` on both halves); only the
    rows whose ``hi`` repeats (duplicates: a few percent) are then ordered by (hi, lo, index).
    """
    order = np.argsort(hi)
    sorted_hi = hi[order]
    repeats = sorted_hi[1:] == sorted_hi[:-1]
    if repeats.any():
        grouped = np.zeros(len(hi), dtype=bool)
        grouped[1:] |= repeats
        grouped[:-1] |= repeats
        at = np.flatnonzero(grouped)  # whole groups of equal hi, in sorted position
        rows = order[at]
        order[at] = rows[np.lexsort((rows, lo[rows], hi[rows]))]
    return order


def _shares_hi(hi: np.ndarray) -> bool:
    """Whether two entries of a sorted run have the same high half (about one run in 2**64/n**2)."""
    return bool(len(hi) > 1 and (hi[1:] == hi[:-1]).any())


def _contains(
    run_hi: np.ndarray, run_lo: np.ndarray, shared: bool, hi: np.ndarray, lo: np.ndarray
) -> np.ndarray:
    """True where (hi, lo) is in the run (sorted by hi)."""
    pos = np.searchsorted(run_hi, hi)
    at = np.where(pos < len(run_hi), pos, 0)
    found: np.ndarray = (pos < len(run_hi)) & (run_hi[at] == hi) & (run_lo[at] == lo)
    if shared:
        # Entries after the first with the same hi: check them one by one (astronomically rare).
        end = np.searchsorted(run_hi, hi, side="right")
        for i in np.flatnonzero(~found & (end - pos > 1)):
            found[i] = bool((run_lo[pos[i] : end[i]] == lo[i]).any())
    return found
