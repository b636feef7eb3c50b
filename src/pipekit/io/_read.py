"""Reading a CSV as Arrow string batches, and turning its parse/encoding errors into InputError naming the line."""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from pipekit.errors import ConfigError, InputError, PipekitError

Progress = Callable[[int, int], None]

#: Default rows per batch (the reader's blocks are cut to at most this many rows).
DEFAULT_BATCH_ROWS = 1 << 17
# Arrow reads 4 MiB blocks: with blocks of 8 MiB and more, peak RSS grew with the file size (allocator
# caching of large buffers, measured with mimalloc and jemalloc); 4 MiB keeps it flat.
_BLOCK_BYTES = 4 << 20
_PROBE_BYTES = 1 << 20
# Finding the physical line of a bad record re-reads the file with Python's csv module: cap the cost.
_LINE_SCAN_LIMIT = 5_000_000


def check_input(src: Path) -> None:
    if not src.exists():
        raise InputError(f"{src}: no such file", hint="check the path")
    if not src.is_file():
        raise InputError(f"{src}: not a regular file", hint="pass a CSV file")
    if src.stat().st_size == 0:
        raise InputError(
            f"{src}: the file is empty (no header row)",
            hint="a valid input has at least a header line, e.g. id,name,email,timestamp",
        )


def read_header(src: Path, encoding: str) -> list[str]:
    """Column names from the first row (BOM stripped), read with Arrow so quoting rules match."""
    try:
        with open(src, "rb") as fh:
            reader = pacsv.open_csv(
                fh,
                read_options=pacsv.ReadOptions(use_threads=False, block_size=_PROBE_BYTES, encoding=encoding),
                parse_options=pacsv.ParseOptions(
                    newlines_in_values=True, invalid_row_handler=lambda row: "skip"
                ),
            )
            names = list(reader.schema.names)
    except LookupError as exc:
        raise ConfigError(
            f"unknown encoding {encoding!r}", hint="use a Python codec name, e.g. latin-1"
        ) from exc
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        message = str(exc)
        if "Empty CSV file" in message:
            raise InputError(f"{src}: the file has no header row", hint="add a header line") from exc
        if "UTF8" in message or "UTF-8" in message or isinstance(exc, UnicodeDecodeError):
            raise encoding_error(src, encoding) from exc
        raise InputError(
            f"{src}: cannot read the header: {scrub(message)}", hint="check the file is a CSV"
        ) from exc
    if not any(n.strip() for n in names):
        raise InputError(f"{src}: the header row is blank", hint="the first line must name the columns")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(
            f"{src}: duplicate column name(s) in the header: {', '.join(dupes)}", hint="rename them"
        )
    return names


def record_lines(src: Path, encoding: str, records: Sequence[int]) -> dict[int, int]:
    """Physical line where each of Arrow's record numbers (header = 1) starts, in one pass over the file.

    Line breaks inside quoted fields are counted; records past the scan limit are left out.
    """
    import csv

    wanted = sorted({r for r in records if 1 <= r <= _LINE_SCAN_LIMIT + 1})
    found: dict[int, int] = {}
    if not wanted:
        return found
    try:
        with open(src, encoding=encoding, newline="", errors="replace") as fh:
            reader = csv.reader(fh)
            consumed = 0
            for record in wanted:
                while consumed < record - 1:
                    next(reader)
                    consumed += 1
                found[record] = reader.line_num + 1
    except (StopIteration, csv.Error, OSError):
        pass
    return found


def _where(src: Path, encoding: str, record: int | None) -> str:
    """'line N' for Arrow's record number (header = 1), counting the line breaks inside quoted fields."""
    if record is None:
        return "a row"
    line = record_lines(src, encoding, [record]).get(record)
    return f"line {line}" if line else f"record {record} (header = 1)"


def encoding_error(src: Path, encoding: str) -> InputError:
    """Name the first line whose bytes do not decode, and suggest --encoding."""
    line, detail = _first_undecodable_line(src, encoding)
    where = f"line {line}" if line else "somewhere"
    return InputError(
        f"{src}: {where} is not valid {encoding} ({detail})",
        hint="pass the file's real encoding, e.g. --encoding latin-1 (or cp1252), or re-save it as UTF-8",
    )


def _first_undecodable_line(src: Path, encoding: str) -> tuple[int | None, str]:
    """1-based physical line of the first byte that ``encoding`` cannot decode."""
    import codecs

    decoder = codecs.getincrementaldecoder(encoding)("strict")
    line = 1
    with open(src, "rb") as fh:
        while chunk := fh.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return line + chunk.count(b"\n", 0, exc.start), f"byte 0x{chunk[exc.start]:02x}"
            line += chunk.count(b"\n")
    return None, "undecodable bytes"


class HashingReader(io.RawIOBase):
    """A read-only file wrapper that sha256-hashes and counts the bytes Arrow reads from it."""

    def __init__(self, raw: io.BufferedReader, progress: Progress | None, total: int) -> None:
        self._raw, self._progress, self._total = raw, progress, total
        self._sha = hashlib.sha256()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._raw.readinto(buffer)
        if n:
            self._sha.update(memoryview(buffer)[:n])
            self.bytes_read += n
            if self._progress is not None:
                self._progress(self.bytes_read, self._total)
        return n or 0

    def drain(self) -> None:
        """Hash whatever Arrow did not need to read (it may stop before EOF)."""
        while chunk := self._raw.read(1 << 20):
            self._sha.update(chunk)
            self.bytes_read += len(chunk)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def block_bytes(batch_rows: int) -> int:
    # Small batches (tests) get small blocks; big ones get _BLOCK_BYTES blocks, regrouped by rebatch.
    return int(min(_BLOCK_BYTES, max(1 << 16, batch_rows * 128)))


def rebatch(reader: Iterator[pa.RecordBatch], batch_rows: int) -> Iterator[pa.Table]:
    """Tables of exactly ``batch_rows`` rows (the last may be shorter) from the reader's blocks, no copies."""
    parts: list[pa.RecordBatch] = []
    held = 0
    for batch in reader:
        start = 0
        while start < batch.num_rows:
            take = min(batch_rows - held, batch.num_rows - start)
            parts.append(batch.slice(start, take))
            held += take
            start += take
            if held == batch_rows:
                yield pa.Table.from_batches(parts)
                parts, held = [], 0
    if held:
        yield pa.Table.from_batches(parts)


def iter_batches(
    path: str | os.PathLike[str], *, encoding: str = "utf-8", batch_rows: int = DEFAULT_BATCH_ROWS
) -> Iterator[pa.Table]:
    """Read a CSV as Arrow tables of at most ``batch_rows`` rows, every column a string.

    Unreadable input raises InputError naming the line (wrong field count, bytes not in ``encoding``).
    """
    src = Path(path)
    check_input(src)
    columns = read_header(src, encoding)
    bad: list[Any] = []

    def on_bad_row(row: Any) -> str:
        bad.append(row)
        return "error"

    try:
        # Opening parses the first block already: a bad row there must be translated too.
        reader = pacsv.open_csv(
            src,
            read_options=pacsv.ReadOptions(
                use_threads=False, block_size=block_bytes(batch_rows), encoding=encoding
            ),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_bad_row),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in columns},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        yield from rebatch(reader, batch_rows)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise read_error(src, encoding, exc, bad[0] if bad else None, columns) from exc


def read_error(
    src: Path, encoding: str, exc: BaseException, bad_row: Any, columns: Sequence[str] = ()
) -> PipekitError:
    """InputError for a parse failure: the malformed row's line, or the first undecodable line.

    The message names the line, the field counts and the columns, never the row's values: a row that
    cannot be split into columns cannot be masked, and it may hold personal data.
    """
    if bad_row is not None:
        where = _where(src, encoding, bad_row.number)
        expected = f"expected {bad_row.expected_columns}" + (f" ({_names(columns)})" if columns else "")
        return InputError(
            f"{src}: {where} has {bad_row.actual_columns} field(s), {expected}; "
            "its values are not shown (they may be personal data)",
            hint="fix the row (quote fields that contain commas), or pass --bad-rows quarantine "
            "to set such rows aside in a private folder (see docs/cli.md)",
        )
    message = str(exc)
    if "UTF8" in message or "UTF-8" in message or isinstance(exc, UnicodeDecodeError):
        return encoding_error(src, encoding)
    return InputError(f"{src}: cannot parse as CSV: {scrub(message)}", hint="check the file is a CSV")


# Arrow quotes the row (or the value) in some parse/conversion errors: never pass that text on.
_VALUES_IN_MESSAGE = re.compile(r"(Expected \d+ columns?, got \d+|invalid value)\b.*", re.S)


def scrub(message: str) -> str:
    """Arrow's error text without the row or value it quotes."""
    return _VALUES_IN_MESSAGE.sub(lambda m: f"{m.group(1)} (values not shown)", message)


def _names(columns: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(columns[:limit])
    return shown + (f", ... ({len(columns)} columns)" if len(columns) > limit else "")
