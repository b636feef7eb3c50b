"""The incremental UTF-8 check of the reader agrees with Python's strict decoder, however the stream is cut."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipekit.io._read import Utf8Check

_PIECES = st.sampled_from(
    [b"a", b",", b"\n", "é".encode(), "€".encode(), "😀".encode(), b"\xed\xa0\x80", b"\xc0\xaf", b"\xff",
     b"\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xf0\x9f", b"\xc3"]
)  # fmt: skip


def _valid(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _check(data: bytes, cuts: list[int]) -> bool:
    check = Utf8Check()
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    try:
        for start, stop in itertools.pairwise(bounds):
            check.feed(memoryview(data)[start:stop])
        check.feed(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=30), st.lists(st.integers(0, 10_000), max_size=6))
def test_agrees_with_the_strict_decoder(pieces: list[bytes], cuts: list[int]) -> None:
    data = b"".join(pieces)
    assert _check(data, cuts) == _valid(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.lists(st.integers(0, 100), max_size=4))
def test_agrees_on_random_bytes(data: bytes, cuts: list[int]) -> None:
    assert _check(data, cuts) == _valid(data)


@pytest.mark.parametrize("split", range(1, 4))
def test_a_character_cut_between_reads_is_valid(split: int) -> None:
    data = "😀".encode()
    assert _check(data, [split])


def test_a_character_cut_off_by_the_end_is_not() -> None:
    check = Utf8Check()
    check.feed(b"ok\xf0\x9f")
    with pytest.raises(UnicodeDecodeError):
        check.feed(b"", final=True)
