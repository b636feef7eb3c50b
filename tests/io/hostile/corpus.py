"""A hostile-input corpus, generated (nothing large is committed): one small file per kind of trouble,
plus one wide (10,000 columns) and one huge-field case.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

HEADER = "id,name,email,timestamp"
ROWS = "".join(f"{i},Name {i},user{i}@example.com,2025-01-0{1 + i % 9}T00:00:00Z\n" for i in range(20))
#: A field longer than the default --max-row-bytes (4 MiB), and than the two blocks Arrow tolerates.
HUGE_FIELD_BYTES = 9 << 20
WIDE_COLUMNS = 10_000


def _binary(path: Path) -> None:
    path.write_bytes(random.Random(12).randbytes(256 << 10))


def _nuls(path: Path) -> None:
    path.write_text(
        HEADER + ",note\n" + "1,a\x00b,a@x.io,2025-01-01,\x00\x00\n2,\x1b[2Jc,b@x.io,2025-01-01,ok\x7f\n"
    )


def _huge_field(path: Path) -> None:
    with open(path, "w") as fh:
        head = "".join(ROWS.splitlines(keepends=True)[:5])  # the huge row is on line 7
        fh.write(HEADER + "\n" + head + f'9,"{"x" * HUGE_FIELD_BYTES}",h@x.io,2025-01-01\n' + ROWS)


def _wide(path: Path) -> None:
    extra = ",".join(f"c{i}" for i in range(4, WIDE_COLUMNS))
    cells = ",".join("v" for _ in range(4, WIDE_COLUMNS))
    with open(path, "w") as fh:
        fh.write(f"{HEADER},{extra}\n")
        for i in range(300):
            fh.write(f"{i},n{i},u{i}@x.io,2025-01-01,{cells}\n")


def _formulas(path: Path) -> None:
    path.write_text(
        HEADER + ",note\n"
        "1,=HYPERLINK(\"http://x\"),a@x.io,2025-01-01,+cmd|' /C calc'!A0\n"
        "2,@SUM(1+1),b@x.io,2025-01-01,-2+3+cmd\n"
        '3,"\t=1+1",c@x.io,2025-01-01,=1\n'
    )


def _unbalanced_quotes(path: Path) -> None:
    path.write_text(HEADER + "\n" + '1,"never closed,a@x.io,2025-01-01\n' + ROWS)


def _mixed_encodings(path: Path) -> None:
    path.write_bytes((HEADER + "\n1,José,j@x.io,2025-01-01\n").encode() + b"2,Ren\xe9,r@x.io,2025-01-01\n")


def _bom(path: Path) -> None:
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + "\n" + ROWS).encode())


def _crlf(path: Path) -> None:
    path.write_bytes((HEADER + "\n" + ROWS).replace("\n", "\r\n").encode())


def _cr(path: Path) -> None:
    path.write_bytes((HEADER + "\n" + ROWS).replace("\n", "\r").encode())


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _header_only(path: Path) -> None:
    path.write_text(HEADER + "\n")


def _utf16(path: Path) -> None:
    path.write_bytes((HEADER + "\n" + ROWS).encode("utf-16-le"))


def _ragged(path: Path) -> None:
    path.write_text(HEADER + "\n" + ROWS + "99,too,many,fields,here\n")


CASES: dict[str, Callable[[Path], None]] = {
    "binary": _binary,
    "nuls": _nuls,
    "huge_field": _huge_field,
    "wide": _wide,
    "formulas": _formulas,
    "unbalanced_quotes": _unbalanced_quotes,
    "mixed_encodings": _mixed_encodings,
    "bom": _bom,
    "crlf": _crlf,
    "cr": _cr,
    "empty": _empty,
    "header_only": _header_only,
    "utf16": _utf16,
    "ragged": _ragged,
}


def write_corpus(folder: Path) -> dict[str, Path]:
    """Write every case into ``folder``; name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, write in CASES.items():
        paths[name] = folder / f"{name}.csv"
        write(paths[name])
    return paths
