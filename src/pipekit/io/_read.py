"""Reading a CSV as Arrow string batches, and turning its parse/encoding errors into InputError naming the line."""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import re
import stat
import time
import traceback
import weakref
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from pipekit.errors import ConfigError, InputError, PipekitError

Progress = Callable[[int, int], None]

#: Default rows per batch (the reader's blocks are cut to at most this many rows).
DEFAULT_BATCH_ROWS = 1 << 17
#: Default Arrow bytes per batch: batches end at this size too, so a wide file's batches hold fewer rows
#: (a 6-column customers batch of 131,072 rows is ~17 MB, well under it). Files of more than
#: _WIDE_COLUMNS columns get _WIDE_BATCH_BYTES (see ``batch_bytes_for``).
DEFAULT_BATCH_BYTES = 32 << 20
# Past a few hundred columns, what a batch costs outside Arrow's pool (per-column objects, allocator
# slack) grows with its columns: 8 MiB batches kept a 2,000-column file near 550 MiB where 32 MiB
# batches took 820 MiB. Narrow files keep big batches: 8 MiB ones made a 5M-row clean much slower.
_WIDE_COLUMNS = 256
_WIDE_BATCH_BYTES = 8 << 20
#: Default longest row (raw bytes, all its fields) the reader accepts: Arrow's block size. Arrow fails on
#: a row that does not fit in a block ("straddling object"); blocks of 8 MiB and more made peak RSS
#: grow with the file size (allocator caching of large buffers, measured with mimalloc and jemalloc),
#: so the default stays at 4 MiB and ``max_row_bytes`` (``--max-row-bytes``) raises it when needed.
DEFAULT_MAX_ROW_BYTES = 4 << 20
_MIN_BLOCK_BYTES = 1 << 16
_PROBE_BYTES = 1 << 20
# Finding the physical line of a bad record re-reads the file with Python's csv module: cap the cost.
_LINE_SCAN_LIMIT = 5_000_000


def check_input(src: Path) -> os.stat_result:
    """The input's identity (inode, device, size, mtime) once it is known to be a non-empty regular file."""
    try:
        st = os.stat(src)
    except FileNotFoundError as exc:
        raise InputError(f"{src}: no such file", hint="check the path") from exc
    except OSError as exc:
        raise InputError(
            f"{src}: cannot read the file: {exc.strerror or exc}", hint="check the path and its permissions"
        ) from exc
    if not stat.S_ISREG(st.st_mode):
        raise InputError(
            f"{src}: not a regular file (a folder, pipe or device)",
            hint="pass a CSV file; to clean a stream, save it to a file first",
        )
    if st.st_size == 0:
        raise InputError(
            f"{src}: the file is empty (no header row)",
            hint="a valid input has at least a header line, e.g. id,name,email,timestamp",
        )
    return st


def read_header(src: Path, encoding: str, *, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> list[str]:
    """Column names from the first row (BOM stripped), read with Arrow so quoting rules match."""
    checked = CheckedInput(src, None, encoding)
    try:
        with checked:
            reader = pacsv.open_csv(
                checked.stream(),
                read_options=pacsv.ReadOptions(
                    use_threads=False, block_size=max(_PROBE_BYTES, max_row_bytes), encoding=encoding
                ),
                parse_options=pacsv.ParseOptions(
                    newlines_in_values=True, invalid_row_handler=lambda row: "skip"
                ),
            )
            names = list(reader.schema.names)
            del reader  # before leaving the block, which waits for Arrow to let go of the file
        problem = checked.problem()
        if problem is not None:
            raise problem
    except LookupError as exc:
        raise ConfigError(
            f"unknown encoding {encoding!r}", hint="use a Python codec name, e.g. latin-1"
        ) from exc
    except OSError as exc:
        raise read_os_error(src, exc) from exc
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        problem = checked.problem()
        if problem is not None:
            raise problem from exc
        message = str(exc)
        if "Empty CSV file" in message:
            raise InputError(f"{src}: the file has no header row", hint="add a header line") from exc
        if "UTF8" in message or "UTF-8" in message or isinstance(exc, UnicodeDecodeError):
            raise encoding_error(src, encoding) from exc
        if _STRADDLING in message:
            raise oversized_row_error(src, encoding, max(_PROBE_BYTES, max_row_bytes)) from exc
        raise InputError(
            f"{src}: cannot read the header: {scrub(message)}", hint="check the file is a CSV"
        ) from exc
    if not any(n.strip() for n in names):
        raise InputError(f"{src}: the header row is blank", hint="the first line must name the columns")
    controls = [i for i, n in enumerate(names, 1) if _CONTROL.search(n)]
    if controls:
        utf16 = any("\x00" in n for n in names) and not encoding.lower().startswith("utf-16")
        raise InputError(
            f"{src}: the header holds control characters (column(s) {', '.join(map(str, controls[:10]))})"
            + ("; NUL bytes between the letters mean the file is probably UTF-16" if utf16 else ""),
            hint="pass --encoding utf-16" if utf16 else "fix the header: column names cannot hold them",
        )
    dupes = sorted(n for n, k in Counter(names).items() if k > 1)  # Counter: 10,000 columns is common
    if dupes:
        raise InputError(
            f"{src}: duplicate column name(s) in the header: {', '.join(dupes)}", hint="rename them"
        )
    return names


# Control characters other than tab, LF and CR (the same set as pipekit.core.normalize.CONTROL_CHARS).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


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


def read_os_error(src: Path, exc: OSError) -> InputError:
    """InputError for an OS error while reading ``src`` (permission denied, I/O error, a folder)."""
    return InputError(
        f"{src}: cannot read the file: {exc.strerror or exc}",
        hint="check the file exists, is readable and is a regular file",
    )


def _is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False  # Arrow reports the unknown encoding itself


class Utf8Check:
    """Incremental strict UTF-8 validation of a byte stream, as ``codecs``' decoder but without decoding.

    Arrow validates each chunk (SIMD, GIL released: ~2 ms per 4 MiB against ~6 ms for Python's decoder
    building a str); a character cut by the chunk's end is carried over to the next chunk.
    ``feed`` raises UnicodeDecodeError where Python's strict decoder would.
    """

    def __init__(self) -> None:
        self._carry = b""

    def feed(self, data: bytes | memoryview, *, final: bool = False) -> None:
        """Check the next chunk (``final`` at the end of the stream: nothing may be left cut off)."""
        chunk: bytes | memoryview = self._carry + bytes(data) if self._carry else data
        cut = len(chunk) if final else _complete_prefix(chunk)
        self._carry = bytes(chunk[cut:])
        if cut and not _valid_utf8(chunk, cut):
            bytes(chunk[:cut]).decode("utf-8")  # raises the decoder's own error, with its position
            raise UnicodeDecodeError("utf-8", bytes(chunk[:cut]), 0, cut, "invalid UTF-8")  # unreachable


def _complete_prefix(chunk: bytes | memoryview) -> int:
    """Length of ``chunk`` without a multi-byte character cut off at its end (at most 3 bytes back)."""
    n = len(chunk)
    i = n - 1
    while i >= 0 and n - i <= 4 and chunk[i] & 0xC0 == 0x80:
        i -= 1  # continuation bytes
    if i < 0 or n - i > 4:
        return n  # no lead byte in reach: invalid anyway, let validation say so
    lead = chunk[i]
    need = 2 if 0xC0 <= lead < 0xE0 else 3 if 0xE0 <= lead < 0xF0 else 4 if 0xF0 <= lead < 0xF8 else 1
    return i if n - i < need else n


def _valid_utf8(chunk: bytes | memoryview, length: int) -> bool:
    offsets = pa.py_buffer(np.array([0, length], dtype=np.int32))
    array = pa.Array.from_buffers(pa.binary(), 1, [None, offsets, pa.py_buffer(chunk)])
    try:
        array.cast(pa.string())  # a safe cast validates UTF-8 (rejects overlongs, surrogates, > U+10FFFF)
    except pa.ArrowInvalid:
        return False
    return True


class _Digest:
    """What has been read so far: sha256, byte count, and whether an undecodable byte stopped the read."""

    def __init__(self, raw: io.BufferedReader, progress: Progress | None, total: int, encoding: str) -> None:
        self.raw, self.progress, self.total = raw, progress, total
        self.sha = hashlib.sha256()
        self.bytes_read = 0
        self.utf8 = Utf8Check() if _is_utf8(encoding) else None
        self.undecodable = False
        self.closed = False
        # Arrow's reader reads up to 32 blocks ahead of the parser on its own thread, into Python bytes
        # (outside its memory pool): with a slow consumer that is 128 MiB of 4 MiB blocks held for
        # nothing. ``read_batches`` counts the blocks it was handed; reads wait while they are more
        # than _READ_AHEAD_BLOCKS ahead (never for good: see HashingReader.readinto).
        self.block_size = 0
        self.blocks_consumed = 0


class HashingReader(io.RawIOBase):
    """The file as Arrow reads it: every byte handed over is hashed and counted; ``read`` never raises
    for bad bytes.

    For UTF-8 input (which Arrow parses without transcoding) the bytes are checked to decode before Arrow
    sees them: pyarrow decodes a malformed row's text to call ``invalid_row_handler``, and when that
    fails the exception escapes the callback ("Exception ignored ... UnicodeDecodeError"). A chunk that
    does not decode is not handed over: the read ends there (EOF) and ``CheckedInput`` reports the
    encoding error. Nothing raised here may keep Arrow's reader alive (see ``CheckedInput.__exit__``).
    """

    def __init__(self, digest: _Digest) -> None:
        self._d = digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        d = self._d
        if d.closed or d.undecodable:
            return 0
        if d.block_size:
            waited = 0.0
            while (
                d.bytes_read > (d.blocks_consumed + _READ_AHEAD_BLOCKS) * d.block_size
                and not d.closed
                and waited < _READ_AHEAD_PATIENCE_S
            ):
                time.sleep(0.001)  # releases the GIL; the parser catches up
                waited += 0.001
        n = d.raw.readinto(buffer) or 0
        if d.utf8 is not None:
            try:
                # final at EOF: a multi-byte character cut off by the end of the file is undecodable too.
                d.utf8.feed(memoryview(buffer)[:n], final=not n)
            except UnicodeDecodeError:
                d.undecodable = True
                return 0
        if n:
            d.sha.update(memoryview(buffer)[:n])
            d.bytes_read += n
            if d.progress is not None:
                d.progress(d.bytes_read, d.total)
        return n


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)


_READ_AHEAD_BLOCKS = 4
# A consumer that holds on to batches (a caller collecting them all) stops counting blocks: reading
# then goes on at a slow pace rather than never.
_READ_AHEAD_PATIENCE_S = 0.05

#: How long leaving a CheckedInput waits for Arrow's I/O threads to let go of the Python file.
_RELEASE_TIMEOUT_S = 30.0


class CheckedInput:
    """The input opened for one read: hashes and counts what is read, and knows whether the file changed.

    ``expected`` is the ``check_input`` result from before the run looked at the file: the open file must
    be that file, and at the end it (and the path) must still be it, with every byte of it read once.

    Leaving the block waits until Arrow has dropped every ``stream()``: Arrow reads ahead on its own I/O
    threads, and one that calls into Python while the interpreter exits aborts the process ("terminate
    called without an active exception", SIGABRT) - after an early error that used to happen about once
    in 30 runs. The frames of the exception leaving the block are cleared so they hold no Arrow reader.
    """

    def __init__(
        self, src: Path, expected: os.stat_result | None, encoding: str, progress: Progress | None = None
    ) -> None:
        self.src, self.encoding = src, encoding
        self._expected = _identity(expected) if expected is not None else None
        try:
            raw = open(src, "rb")  # noqa: SIM115 - closed in __exit__
        except OSError as exc:
            raise read_os_error(src, exc) from exc
        self._raw = raw
        self._digest = _Digest(raw, progress, expected.st_size if expected is not None else 0, encoding)
        self._streams: list[weakref.ref[HashingReader]] = []

    def stream(self) -> HashingReader:
        """A file object for Arrow; this object keeps no strong reference to it."""
        stream = HashingReader(self._digest)
        self._streams.append(weakref.ref(stream))
        return stream

    @property
    def bytes_read(self) -> int:
        return self._digest.bytes_read

    def limit_read_ahead(self, block_size: int) -> None:
        """Let reads run only a few blocks of ``block_size`` ahead of the blocks ``count_blocks`` saw."""
        self._digest.block_size = block_size

    def count_blocks(self, reader: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """``reader``'s batches (one per parsed block), counted for ``limit_read_ahead``."""
        for batch in reader:
            self._digest.blocks_consumed += 1
            yield batch

    def __enter__(self) -> CheckedInput:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self._digest.closed = True  # a read still in flight gets EOF at once
        seen: set[int] = set()
        while exc is not None and id(exc) not in seen:
            seen.add(id(exc))
            traceback.clear_frames(exc.__traceback__)
            exc = exc.__cause__ or exc.__context__
        deadline = time.monotonic() + _RELEASE_TIMEOUT_S
        while any(ref() is not None for ref in self._streams) and time.monotonic() < deadline:
            time.sleep(0.001)
        self._raw.close()

    def problem(self) -> InputError | None:
        """Why what was read is not the file: it changed, or it has bytes not in the encoding; else None."""
        changed = self.changed()
        if changed is not None:
            return changed
        return encoding_error(self.src, self.encoding) if self._digest.undecodable else None

    def changed(self) -> InputError | None:
        """InputError when the file was truncated, appended to or replaced since the run began, else None."""
        if self._expected is None:
            return None
        now_open: os.stat_result | None
        now_path: os.stat_result | None
        try:
            now_open, now_path = os.fstat(self._raw.fileno()), os.stat(self.src)
        except OSError:
            now_open = now_path = None
        ino, dev, size, mtime = self._expected
        read = self._digest.bytes_read
        if now_open is None or now_path is None or (now_path.st_ino, now_path.st_dev) != (ino, dev):
            what = "was replaced or removed"
        elif (now_open.st_ino, now_open.st_dev) != (ino, dev):
            what = "was replaced before it was opened"
        elif now_open.st_size < size or read < size:
            what = f"was truncated ({size:,} bytes at the start, {now_open.st_size:,} now)"
        elif now_open.st_size > size or read > size:
            what = f"was appended to ({size:,} bytes at the start, {now_open.st_size:,} now)"
        elif now_open.st_mtime_ns != mtime:
            what = "was rewritten (its modification time changed)"
        else:
            return None
        return InputError(
            f"{self.src}: the file changed while it was read: it {what}; nothing was written",
            hint="wait until the upload or copy into that path has finished, or copy the file "
            "somewhere first and clean the copy",
        )

    def finish(self) -> str:
        """Read what Arrow left, check it all; the sha256 of exactly the bytes read (the bytes cleaned)."""
        d = self._digest
        if not d.undecodable:
            try:
                while chunk := d.raw.read(1 << 20):  # Arrow may stop before EOF
                    d.sha.update(chunk)
                    d.bytes_read += len(chunk)
            except OSError as exc:
                raise read_os_error(self.src, exc) from exc
        problem = self.problem()
        if problem is not None:
            raise problem
        return d.sha.hexdigest()


def read_batches(
    checked: CheckedInput,
    columns: Sequence[str],
    encoding: str,
    batch_rows: int,
    on_bad_row: Callable[[Any], str],
    *,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
) -> Generator[pa.Table, None, None]:
    """Arrow string tables of at most ``batch_rows`` rows and about ``batch_bytes`` bytes from ``checked``;
    ``on_bad_row`` must never raise.

    The Arrow reader lives only in this generator's frame, so it is gone once the generator is.
    """
    checked.limit_read_ahead(block_bytes(max_row_bytes))
    reader = pacsv.open_csv(
        checked.stream(),
        read_options=pacsv.ReadOptions(
            use_threads=False, block_size=block_bytes(max_row_bytes), encoding=encoding
        ),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_bad_row),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in columns},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    yield from rebatch(checked.count_blocks(reader), batch_rows, batch_bytes)


def batch_bytes_for(columns: int) -> int:
    """The default ``batch_bytes`` for a file of ``columns`` columns."""
    return DEFAULT_BATCH_BYTES if columns <= _WIDE_COLUMNS else _WIDE_BATCH_BYTES


def block_bytes(max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> int:
    """Arrow's block size: every row up to ``max_row_bytes`` must fit in one block."""
    return int(max(_MIN_BLOCK_BYTES, max_row_bytes))


def rebatch(
    reader: Iterator[pa.RecordBatch], batch_rows: int, batch_bytes: int = DEFAULT_BATCH_BYTES
) -> Iterator[pa.Table]:
    """Tables from the reader's blocks, no copies: ``batch_rows`` rows each, or fewer when that many
    would pass ``batch_bytes`` (so a 10,000-column file gets batches of a few hundred rows); the last
    may be shorter. Every table has at least one row.
    """
    parts: list[pa.RecordBatch] = []
    held = 0
    held_bytes = 0.0
    for batch in reader:
        if not batch.num_rows:
            continue
        row_bytes = max(1.0, batch.nbytes / batch.num_rows)  # this block's average
        start = 0
        while start < batch.num_rows:
            room = max(1, int((batch_bytes - held_bytes) // row_bytes))
            take = min(batch_rows - held, room, batch.num_rows - start)
            parts.append(batch.slice(start, take))
            held += take
            held_bytes += take * row_bytes
            start += take
            if held == batch_rows or held_bytes + row_bytes > batch_bytes:
                yield pa.Table.from_batches(parts)
                parts, held, held_bytes = [], 0, 0.0
    if held:
        yield pa.Table.from_batches(parts)


def iter_batches(
    path: str | os.PathLike[str],
    *,
    encoding: str = "utf-8",
    batch_rows: int = DEFAULT_BATCH_ROWS,
    batch_bytes: int | None = None,
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
) -> Iterator[pa.Table]:
    """Read a CSV as Arrow tables of at most ``batch_rows`` rows (and about ``batch_bytes``), every column
    a string. ``batch_bytes`` defaults to ``batch_bytes_for(number of columns)``.

    Unreadable input raises InputError naming the line (wrong field count, bytes not in ``encoding``,
    a row longer than ``max_row_bytes``).
    """
    src = Path(path)
    expected = check_input(src)
    columns = read_header(src, encoding, max_row_bytes=max_row_bytes)
    batch_bytes = batch_bytes or batch_bytes_for(len(columns))
    bad: list[Any] = []

    def on_bad_row(row: Any) -> str:  # must never raise: pyarrow would print and ignore it
        bad.append(row)
        return "error"

    with CheckedInput(src, expected, encoding) as checked:
        try:
            yield from read_batches(
                checked, columns, encoding, batch_rows, on_bad_row,
                batch_bytes=batch_bytes, max_row_bytes=max_row_bytes,
            )  # fmt: skip
        except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as exc:
            problem = checked.problem()
            if problem is not None:
                raise problem from exc
            if isinstance(exc, OSError):
                raise read_os_error(src, exc) from exc
            raise read_error(
                src, encoding, exc, bad[0] if bad else None, columns, max_row_bytes=max_row_bytes
            ) from exc
        checked.finish()


def read_error(
    src: Path,
    encoding: str,
    exc: BaseException,
    bad_row: Any,
    columns: Sequence[str] = (),
    *,
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
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
    if _STRADDLING in message:
        return oversized_row_error(src, encoding, block_bytes(max_row_bytes))
    return InputError(f"{src}: cannot parse as CSV: {scrub(message)}", hint="check the file is a CSV")


# Arrow's error for a row that does not fit in one block.
_STRADDLING = "straddling object straddles"


def oversized_row_error(src: Path, encoding: str, limit: int) -> InputError:
    """InputError for a row longer than the reader's limit: its line, its size, the option to raise it."""
    found = first_long_record(src, limit) if ascii_compatible(encoding) else None
    what = f"line {found[0]} starts a row of {found[1]:,} bytes" if found is not None else "a row is"
    return InputError(
        f"{src}: {what}, longer than the {limit:,}-byte limit on one row "
        "(a huge field, or an unbalanced quote that runs on to the end); its values are not shown",
        hint=f"if the row is genuine, raise the limit, e.g. --max-row-bytes {_suggest(found, limit)} "
        "(memory use grows with it); else fix the quoting",
    )


def _suggest(found: tuple[int, int] | None, limit: int) -> str:
    need = found[1] + 1 if found is not None else limit * 4
    mib = -(-need // (1 << 20))
    return f"{1 << (mib - 1).bit_length()}MiB"


def ascii_compatible(encoding: str) -> bool:
    try:
        return ',"\r\n'.encode(encoding) == b',"\r\n'
    except (LookupError, UnicodeError):
        return False


_SCAN_CHUNK = 8 << 20


def first_long_record(src: Path, limit: int) -> tuple[int, int] | None:
    """(physical line where it starts, raw bytes) of the first record longer than ``limit`` bytes.

    Records end at a CR or LF outside double quotes (quotes inside quoted fields are doubled, so quote
    parity says whether a byte is inside a field); a vectorised pass over the file, 8 MiB at a time.
    """
    import numpy as np

    inside = 0  # 1 while inside a quoted field, carried across chunks
    offset = 0  # file offset of this chunk
    line = 1  # physical line at the start of this chunk
    start, start_line = 0, 1  # where the current record began
    try:
        with open(src, "rb") as fh:
            while chunk := fh.read(_SCAN_CHUNK):
                while chunk.endswith(b"\r") and (more := fh.read(1)):
                    chunk += more  # a CR LF is never split between two chunks
                a = np.frombuffer(chunk, dtype=np.uint8)
                # uint8 cumsum wraps at 256, an even number: the parity is still right.
                quoted = (np.cumsum(a == 34, dtype=np.uint8) + inside) & 1
                newline = (a == 10) | (a == 13)
                ends = np.flatnonzero(newline & (quoted == 0))
                # physical line breaks: LF, or a CR not followed by LF
                lf = a == 10
                breaks = lf.copy()
                breaks[:-1] |= (a[:-1] == 13) & ~lf[1:]
                breaks[-1] |= a[-1] == 13  # only at the end of the file (see the read below)
                before = np.cumsum(breaks, dtype=np.int64)  # breaks up to and including each byte
                starts = np.concatenate(([start - offset], ends[:-1] + 1)).astype(np.int64)
                lengths = ends - starts
                long = np.flatnonzero(lengths > limit)
                if len(long):
                    i = int(long[0])
                    s0 = int(starts[i])
                    at = start_line if s0 <= 0 else line + int(before[s0 - 1])
                    return at, int(lengths[i])
                if len(ends):
                    start = offset + int(ends[-1]) + 1
                    start_line = line + int(before[ends[-1]])
                offset += len(a)
                line += int(before[-1])
                inside = int(quoted[-1])
    except OSError:
        return None
    return (start_line, offset - start) if offset - start > limit else None  # runs to the end of the file


# Arrow quotes the row (or the value) in some parse/conversion errors: never pass that text on.
_VALUES_IN_MESSAGE = re.compile(r"(Expected \d+ columns?, got \d+|invalid value)\b.*", re.S)


def scrub(message: str) -> str:
    """Arrow's error text without the row or value it quotes."""
    return _VALUES_IN_MESSAGE.sub(lambda m: f"{m.group(1)} (values not shown)", message)


def _names(columns: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(columns[:limit])
    return shown + (f", ... ({len(columns)} columns)" if len(columns) > limit else "")
