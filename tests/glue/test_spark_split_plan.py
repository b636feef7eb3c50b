"""The python-split plan of ``clean_file_spark``, without Spark: byte ranges cut at line starts and the
later copies found per hash bucket (the Spark runs of the plan are in test_spark_clean_parity.py)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import pytest

from pipekit.spark._clean_input import line_splits
from pipekit.spark._clean_tasks import SplitScan, later_copies


def random_csv(rng: random.Random, newline: bytes, trailing: bool) -> bytes:
    rows = [b"id,name,email"]
    for i in range(rng.randrange(0, 60)):
        rows.append(b"" if rng.random() < 0.1 else f"{i},{'x' * rng.randrange(0, 40)},e{i}@x.io".encode())
    return newline.join(rows) + (newline if trailing else b"")


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_line_splits_cut_the_rows_at_line_starts(tmp_path: Path, newline: bytes) -> None:
    rng = random.Random(7)
    path = tmp_path / "f.csv"
    for case in range(60):
        data = random_csv(rng, newline, trailing=case % 3 != 0)
        path.write_bytes(data)
        header_end = data.index(b"\n") + 1 if b"\n" in data else len(data)
        for split in (1, 5, 64, 1 << 20):
            bounds = line_splits(path, len(data), split)
            assert bounds is not None
            assert bounds[0] == header_end and bounds[-1] == len(data)
            assert all(a < b for a, b in itertools.pairwise(bounds[1:]))
            assert all(data[b - 1 : b] == b"\n" for b in bounds[1:-1])  # every cut follows an LF
            assert b"".join(data[a:b] for a, b in itertools.pairwise(bounds)) == data[header_end:]
            if split >= len(data):
                assert len(bounds) == 2


def test_line_splits_refuse_bare_cr_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "cr.csv"
    path.write_bytes(b"a,b\r1,2\r3,4\r")
    assert line_splits(path, 12, 4) is None
    path.write_bytes(b"a,b")  # a header and nothing else
    assert line_splits(path, 3, 4) == [3, 3]


def test_later_copies_match_a_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    parts, per_part = 5, 400
    scan = SplitScan("unused.csv", tuple(range(parts + 1)), ("a",), "utf-8", 1 << 16, str(tmp_path))
    every: list[tuple[int, int, int]] = []
    buckets: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for part in range(parts):
        h1 = rng.integers(-50, 50, per_part)  # few distinct hashes: many copies, across parts too
        h2 = rng.integers(0, 3, per_part)
        rows = (np.arange(per_part) | (part << 33)).astype(np.int64)
        for a, b, r in zip(h1, h2, rows, strict=True):
            every.append((int(a), int(b), int(r)))
            bucket = int(np.int64(a).view(np.uint64) % np.uint64(parts))
            buckets.setdefault((part, bucket), []).append((int(a), int(b), int(r)))
    for part in range(parts):
        for bucket in range(parts):
            recs = buckets.get((part, bucket), [])
            np.save(scan.bucket_file(part, bucket), np.array(recs, np.int64).reshape(-1, 3).T)
    found = np.concatenate([later_copies(b, scan) for b in range(parts)])
    first: dict[tuple[int, int], int] = {}
    for a, b, r in every:
        first[(a, b)] = min(first.get((a, b), r), r)
    expected = sorted(r for a, b, r in every if first[(a, b)] != r)
    assert sorted(found.tolist()) == expected and len(expected) > 1000
    assert not list(tmp_path.glob("*.npy"))  # each bucket task removes what it read
