"""Seeded, vectorised generators of realistic messy customer data (demo, tests, benchmarks).

Every value is produced by numpy/pyarrow kernels over whole chunks (no per-row Python), so 20M rows
of CSV are written in well under a minute. Output depends only on ``(n, seed)``: the data is built in
chunks of at most ``CHUNK_ROWS`` rows, each from its own ``numpy.random.default_rng([seed, chunk_index])``.

The customers table has the columns ``id, name, email, phone, address, timestamp`` and, on purpose:
mixed-case and accented names with stray spaces ("  o'brien", "JEAN-LUC", "élodie"); exact and
near duplicates (same person, different case/spacing); nulls and blank strings; timestamps with and
without offsets, some in the future and some unparsable; malformed emails; quoted fields with commas,
escaped quotes and (rarely) embedded newlines; PII (emails, phones).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipekit.io.atomic import atomic_path
from pipekit.io.csvfmt import encode_csv_rows, header_line

#: Rows per generated chunk; part of the seeding scheme, so changing it changes the data.
CHUNK_ROWS = 1 << 17

CUSTOMER_COLUMNS: tuple[str, ...] = ("id", "name", "email", "phone", "address", "timestamp")

#: The narrow layout (about 96 bytes a row, no field that needs quoting): the customers sample with a
#: country in place of the address (issue 13's benchmark file).
NARROW_COLUMNS: tuple[str, ...] = ("id", "name", "email", "timestamp", "phone", "country")

_COUNTRIES = [
    "United Kingdom", "Ireland", "France", "Germany", "Spain", "Poland", "Nigeria", "Japan", "India",
    "United States", "Canada", "Brazil", "Sweden", "Italy", "Côte d'Ivoire", "México", "Norway", "Chile",
]  # fmt: skip

ADVENTUREWORKS_COLUMNS: tuple[str, ...] = (
    "CustomerID", "NameStyle", "Title", "FirstName", "MiddleName", "LastName", "Suffix", "CompanyName",
    "SalesPerson", "EmailAddress", "Phone", "PasswordHash", "PasswordSalt", "rowguid", "ModifiedDate",
)  # fmt: skip

# (display form, ascii form for email local parts)
_FIRST = [
    ("john", "john"), ("mary", "mary"), ("jean-luc", "jeanluc"), ("élodie", "elodie"), ("josé", "jose"),
    ("anne-marie", "annemarie"), ("zoë", "zoe"), ("søren", "soren"), ("björn", "bjorn"), ("chloé", "chloe"),
    ("mohammed", "mohammed"), ("aoife", "aoife"), ("siobhán", "siobhan"), ("li", "li"), ("priya", "priya"),
    ("oluwaseun", "oluwaseun"), ("günter", "gunter"), ("françois", "francois"), ("ana", "ana"),
    ("d'arcy", "darcy"), ("mary-kate", "marykate"), ("renée", "renee"), ("łukasz", "lukasz"),
    ("ngozi", "ngozi"), ("hiroshi", "hiroshi"), ("maría", "maria"), ("seán", "sean"), ("emma", "emma"),
    ("liam", "liam"), ("olivia", "olivia"), ("noah", "noah"), ("ava", "ava"), ("lucas", "lucas"),
    ("sophia", "sophia"), ("ethan", "ethan"), ("isabella", "isabella"), ("jakub", "jakub"),
    ("ingrid", "ingrid"), ("raúl", "raul"), ("fatima", "fatima"),
]  # fmt: skip
_LAST = [
    ("o'brien", "obrien"), ("smith", "smith"), ("mcdonald", "mcdonald"), ("van der berg", "vanderberg"),
    ("núñez", "nunez"), ("müller", "muller"), ("o'neill", "oneill"), ("garcía", "garcia"),
    ("dubois", "dubois"), ("kowalski", "kowalski"), ("smith-jones", "smithjones"), ("nguyen", "nguyen"),
    ("johansson", "johansson"), ("rossi", "rossi"), ("d'angelo", "dangelo"), ("schröder", "schroder"),
    ("okafor", "okafor"), ("tanaka", "tanaka"), ("brown", "brown"), ("wilson", "wilson"),
    ("martínez", "martinez"), ("lefèvre", "lefevre"), ("kim", "kim"), ("patel", "patel"),
    ("fitzgerald", "fitzgerald"), ("ó súilleabháin", "osuilleabhain"), ("andersen", "andersen"),
    ("wójcik", "wojcik"), ("silva", "silva"), ("murphy", "murphy"), ("le blanc", "leblanc"),
    ("hernández", "hernandez"), ("chen", "chen"), ("ivanova", "ivanova"), ("björk", "bjork"),
    ("el-amin", "elamin"),
]  # fmt: skip
_DOMAINS = [
    "example.com", "example.org", "mail.example.net", "corp.example.co.uk", "example.io", "test.example",
]  # fmt: skip
_STREETS = [
    "Main St", "High Street", "Rue de la Paix", "Elm Avenue", "Baker Street", "Calle Mayor",
    "Königstraße", "Oak Lane", "Station Road", "Via Roma", "Church Rd", "Mill Lane",
]  # fmt: skip
_CITIES = [
    "Springfield", "Dublin", "Paris", "München", "Madrid", "São Paulo", "Kraków", "Lagos", "Osaka",
    "Toronto", "Leeds", "Cork", "Montréal", "Zürich", "Austin",
]  # fmt: skip
_BAD_TIMESTAMPS = [
    "not a date", "31/12/2023", "2023-13-45T00:00:00", "yesterday", "2023-02-30 10:00:00", "N/A", "0",
]  # fmt: skip
_OFFSETS = ["Z", "+00:00", "+02:00", "-05:00", "+05:30", "-08:00"]
_TITLES = ["Mr.", "Ms.", "Mrs.", "Sr.", "Sra.", "Dr."]
_SUFFIXES = ["Jr.", "Sr.", "II", "III", "PhD"]
_COMPANIES = [
    "A Bike Store", "Progressive Sports", "Advanced Bike Components", "Modular Cycle Systems",
    "Metropolitan Sports Supply", "Aerobic Exercise Company", "Associated Bikes", "Rural Cycle Emporium",
    "Sharp Bikes", "Bikes and Motorbikes", "Bulk Discount Store", "Trailblazing Sports",
]  # fmt: skip
_SALES = ["adventure-works\\pamela0", "adventure-works\\david8", "adventure-works\\jillian0",
          "adventure-works\\garrett1", "adventure-works\\shu0", "adventure-works\\josé1",
          "adventure-works\\linda3", "adventure-works\\michael9"]  # fmt: skip

_B64 = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", dtype=np.uint8)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)

# Epoch seconds: sign-ups between 2015-01-01 and 2025-06-30; "future" rows between 2031 and 2035,
# so they stay in the future whatever day the demo runs (until 2031).
_PAST = (1_420_070_400, 1_751_241_600)
_FUTURE = (1_924_992_000, 2_051_222_400)


def _variants(name: str) -> list[str]:
    """Four spellings of one name: as typed, UPPER, lower, and a naive str.title()."""
    return [name, name.upper(), name.lower(), name.title()]


_FIRST_ASCII = pa.array([a for _, a in _FIRST])
_LAST_ASCII = pa.array([a for _, a in _LAST])
# (lead, between, trail) whitespace: mostly clean, sometimes messy.
_SPACING = [("", " ", "")] * 7 + [(" ", "  ", " "), ("  ", " ", ""), ("", "   ", "  ")]
_NAME_POOL: pa.Array | None = None


def _name_pool() -> pa.Array:
    """Every rendering of "first last" (case variants x spacing), built once, indexed by _name_index."""
    global _NAME_POOL
    if _NAME_POOL is None:
        firsts = [v for d, _ in _FIRST for v in _variants(d)]
        lasts = [v for d, _ in _LAST for v in _variants(d)]
        _NAME_POOL = pa.array(
            [f"{lead}{f}{mid}{la}{trail}" for f in firsts for la in lasts for lead, mid, trail in _SPACING]
        )
    return _NAME_POOL


def _name_index(
    first: np.ndarray, fcase: np.ndarray, last: np.ndarray, lcase: np.ndarray, spacing: np.ndarray
) -> np.ndarray:
    """Position in _name_pool() of one rendering."""
    return ((first * 4 + fcase) * (len(_LAST) * 4) + last * 4 + lcase) * len(_SPACING) + spacing


def _take(pool: list[str] | pa.Array, idx: np.ndarray) -> pa.Array:
    """Vectorised lookup of ``pool[idx]``."""
    arr = pool if isinstance(pool, pa.Array) else pa.array(pool, pa.string())
    return arr.take(pa.array(idx, pa.int32()))


def _digits(values: np.ndarray, width: int) -> pa.Array:
    """Zero-padded decimal strings of ``values``."""
    return pc.utf8_lpad(pa.array(values, pa.int64()).cast(pa.string()), width=width, padding="0")


def _join(*parts: pa.Array | str) -> pa.Array:
    """Element-wise string concatenation (scalars broadcast)."""
    return pc.binary_join_element_wise(*parts, "")


def _rand_text(rng: np.random.Generator, n: int, length: int, alphabet: np.ndarray) -> pa.Array:
    """``n`` random fixed-length ASCII strings drawn from ``alphabet``."""
    codes = alphabet[rng.integers(0, len(alphabet), size=(n, length))]
    data = pa.py_buffer(np.ascontiguousarray(codes).tobytes())
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * length).tobytes())
    return pa.Array.from_buffers(pa.string(), n, [None, offsets, data])


def _null_where(arr: pa.Array, mask: np.ndarray) -> pa.Array:
    """Set ``arr`` to null where ``mask`` is true."""
    return pc.if_else(pa.array(mask), pa.scalar(None, arr.type), arr)


def _customers_chunk(seed: int, chunk: int, n: int) -> pa.Table:
    """One chunk of messy customers; rows are numbered from ``chunk * CHUNK_ROWS``."""
    rng = np.random.default_rng([seed, chunk])
    start = chunk * CHUNK_ROWS

    # The underlying "person" of each row, as integer attributes.
    ident = np.arange(start + 1, start + n + 1, dtype=np.int64)
    first = rng.integers(0, len(_FIRST), n)
    last = rng.integers(0, len(_LAST), n)
    local_style = rng.integers(0, 3, n)
    local_num = rng.integers(1, 1000, n)
    domain = rng.integers(0, len(_DOMAINS), n)
    phone = rng.integers(0, 10**10, n)
    phone_fmt = rng.integers(0, 4, n)
    house = rng.integers(1, 300, n)
    street = rng.integers(0, len(_STREETS), n)
    city = rng.integers(0, len(_CITIES), n)
    seconds = rng.integers(*_PAST, n)
    ts_fmt = rng.integers(0, 4, n)
    offset = rng.integers(0, len(_OFFSETS), n)

    # Exact duplicates (3%) copy a whole earlier row; near duplicates (2%) copy the person but are
    # re-drawn below with another case/spacing, so they only match after normalisation.
    dup = rng.random(n) < 0.05
    dup[: min(n, 8)] = False
    dup_rows = np.flatnonzero(dup)
    # Sources are never duplicates themselves, so an exact copy really equals its source row.
    originals = np.flatnonzero(~dup)
    below = np.searchsorted(originals, dup_rows)
    src = originals[(rng.random(len(dup_rows)) * below).astype(np.int64)]
    for attr in (ident, first, last, local_style, local_num, domain, phone, phone_fmt, house, street,
                 city, seconds, ts_fmt, offset):  # fmt: skip
        attr[dup_rows] = attr[src]
    exact = np.zeros(n, dtype=bool)
    exact[dup_rows] = rng.random(len(dup_rows)) < 0.6

    fcase = rng.integers(0, 4, n)
    lcase = rng.integers(0, 4, n)
    spacing = rng.integers(0, len(_SPACING), n)
    email_case = rng.integers(0, 10, n)
    kind = rng.random(n)
    extra = rng.random(n)
    # Exact duplicates also copy their presentation draws.
    exact_rows = np.flatnonzero(exact)
    exact_src = src[np.searchsorted(dup_rows, exact_rows)]
    for draw in (fcase, lcase, spacing, email_case, kind, extra):
        draw[exact_rows] = draw[exact_src]

    # id: zero-padded strings (leading zeros must survive every engine).
    ids = _digits(ident, 8)

    # name: "first last" with mixed case and stray whitespace (spacing 0-6 clean, 7-9 messy).
    names = _take(_name_pool(), _name_index(first, fcase, last, lcase, spacing))

    # email: ascii local part in three styles, some upper-cased or space-padded, some malformed.
    fa = _take(_FIRST_ASCII, first)
    la = _take(_LAST_ASCII, last)
    num = pa.array(local_num, pa.int64()).cast(pa.string())
    local = pc.if_else(
        pa.array(local_style == 0),
        _join(fa, ".", la),
        pc.if_else(
            pa.array(local_style == 1), _join(pc.utf8_slice_codeunits(fa, 0, 1), la, num), _join(fa, "_", la)
        ),
    )
    emails = _join(local, "@", _take(_DOMAINS, domain))
    emails = pc.if_else(pa.array(email_case == 0), pc.utf8_upper(emails), emails)
    emails = pc.if_else(pa.array(email_case == 1), _join(" ", emails, " "), emails)
    emails = pc.if_else(pa.array(email_case == 2), pc.utf8_capitalize(emails), emails)
    malformed = (kind > 0.990) & (kind <= 0.995)
    emails = pc.if_else(pa.array(malformed), pc.replace_substring(emails, "@", " at "), emails)

    # phone: four common shapes of the same ten digits.
    d = _digits(phone, 10)
    area, mid3, last4 = (pc.utf8_slice_codeunits(d, a, b) for a, b in ((0, 3), (3, 6), (6, 10)))
    phones = pc.if_else(
        pa.array(phone_fmt == 0),
        _join("+1 (", area, ") ", mid3, "-", last4),
        pc.if_else(
            pa.array(phone_fmt == 1),
            _join(area, ".", mid3, ".", last4),
            pc.if_else(pa.array(phone_fmt == 2), _join("+44 20 ", mid3, " ", last4), d),
        ),
    )

    # address: always has a comma (so the CSV quotes it); a few have quotes or a line break.
    addr = _join(pa.array(house, pa.int64()).cast(pa.string()), " ", _take(_STREETS, street), ", ",
                 _take(_CITIES, city))  # fmt: skip
    addr = pc.if_else(pa.array(extra < 0.01), _join('Flat "B", ', addr), addr)
    addr = pc.if_else(pa.array((extra >= 0.01) & (extra < 0.012)), _join("c/o Reception\n", addr), addr)

    # timestamp: ISO-8601 in several spellings; 2% future, 1% unparsable.
    future = (kind > 0.95) & (kind <= 0.97)
    secs = np.where(future, rng.integers(*_FUTURE, n), seconds)
    plain = pa.array(secs, pa.int64()).cast(pa.timestamp("s")).cast(pa.string())  # "YYYY-MM-DD HH:MM:SS"
    with_t = pc.replace_substring(plain, " ", "T", max_replacements=1)
    millis = pa.array(secs * 1000 + (secs % 997), pa.int64()).cast(pa.timestamp("ms")).cast(pa.string())
    stamps = pc.if_else(
        pa.array(ts_fmt == 0),
        with_t,
        pc.if_else(
            pa.array(ts_fmt == 1),
            _join(with_t, _take(_OFFSETS, offset)),
            pc.if_else(
                pa.array(ts_fmt == 2), plain, pc.replace_substring(millis, " ", "T", max_replacements=1)
            ),
        ),
    )
    bad = (kind > 0.97) & (kind <= 0.98)
    stamps = pc.if_else(
        pa.array(bad), _take(_BAD_TIMESTAMPS, rng.integers(0, len(_BAD_TIMESTAMPS), n)), stamps
    )

    # Nulls and blanks in required columns (a blank is whitespace-only, which counts as null).
    blank_name = (kind > 0.980) & (kind <= 0.985)
    names = pc.if_else(pa.array(blank_name & (extra < 0.5)), pa.scalar("   "), names)
    names = _null_where(names, blank_name & (extra >= 0.5))
    emails = _null_where(emails, (kind > 0.985) & (kind <= 0.990))
    stamps = _null_where(stamps, (kind > 0.995) & (kind <= 0.998))
    ids = _null_where(ids, kind > 0.9995)
    phones = _null_where(phones, (extra > 0.8) & (extra <= 0.9))

    return pa.table([ids, names, emails, phones, addr, stamps], names=list(CUSTOMER_COLUMNS))


def _narrow_chunk(seed: int, chunk: int, n: int) -> pa.Table:
    """One chunk of the narrow layout: the same people, a country instead of the (quoted) address."""
    wide = _customers_chunk(seed, chunk, n)
    # An exact duplicate keeps its source's country: derive it from the (copied) phone and id.
    digits = pc.utf8_length(pc.fill_null(wide["phone"], "")).to_numpy(zero_copy_only=False)
    ids = pc.cast(pc.fill_null(wide["id"], "0"), pa.int64()).to_numpy(zero_copy_only=False)
    country = _take(_COUNTRIES, (digits + ids) % len(_COUNTRIES))
    columns = {name: wide[name] for name in ("id", "name", "email", "timestamp", "phone")}
    columns["country"] = country
    return pa.table(columns)


def _chunks(n: int, seed: int, make: Callable[[int, int, int], pa.Table]) -> Iterator[pa.Table]:
    """Yield generated chunks covering rows ``[0, n)``."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    for chunk in range((n + CHUNK_ROWS - 1) // CHUNK_ROWS):
        yield make(seed, chunk, min(CHUNK_ROWS, n - chunk * CHUNK_ROWS))


def iter_customer_tables(n: int, seed: int = 0) -> Iterator[pa.Table]:
    """Yield the messy customers sample as Arrow tables of at most CHUNK_ROWS rows."""
    return _chunks(n, seed, _customers_chunk)


def customers_table(n: int, seed: int = 0) -> pa.Table:
    """The messy customers sample as one Arrow table (all columns strings)."""
    parts = list(iter_customer_tables(n, seed))
    return pa.concat_tables(parts) if parts else _empty(CUSTOMER_COLUMNS)


def make_customers(n: int, seed: int = 0) -> pd.DataFrame:
    """Realistic messy customers as a DataFrame of strings (object dtype, None for nulls)."""
    return customers_table(n, seed).to_pandas()


def write_customers_csv(
    path: str | os.PathLike[str], n: int, seed: int = 0, *, layout: str = "standard"
) -> Path:
    """Write the messy customers sample as CSV (UTF-8, quoted where needed), atomically.

    ``layout="narrow"`` writes ``NARROW_COLUMNS`` (a country instead of the address: ~96 bytes a row).
    """
    if layout == "narrow":
        return _write_csv(path, n, seed, _narrow_chunk, NARROW_COLUMNS)
    if layout != "standard":
        raise ValueError(f"layout must be 'standard' or 'narrow', got {layout!r}")
    return _write_csv(path, n, seed, _customers_chunk, CUSTOMER_COLUMNS)


def _adventureworks_chunk(seed: int, chunk: int, n: int) -> pa.Table:
    """One chunk of AdventureWorks ``SalesLT.Customer``-shaped rows."""
    rng = np.random.default_rng([seed, chunk, 1])
    start = chunk * CHUNK_ROWS
    ident = np.arange(start + 1, start + n + 1, dtype=np.int64)
    first = rng.integers(0, len(_FIRST), n)
    last = rng.integers(0, len(_LAST), n)
    title_cased = [pc.utf8_title(pa.array([d for d, _ in pool])) for pool in (_FIRST, _LAST)]
    fname = title_cased[0].take(pa.array(first, pa.int32()))
    lname = title_cased[1].take(pa.array(last, pa.int32()))
    middle = _null_where(
        _take([chr(c) + "." for c in range(65, 91)], rng.integers(0, 26, n)), rng.random(n) < 0.6
    )
    title = _take(_TITLES, rng.integers(0, len(_TITLES), n))
    suffix = _null_where(_take(_SUFFIXES, rng.integers(0, len(_SUFFIXES), n)), rng.random(n) < 0.95)
    company = _take(_COMPANIES, rng.integers(0, len(_COMPANIES), n))
    sales = _take(_SALES, rng.integers(0, len(_SALES), n))
    email = _join(_take(_FIRST_ASCII, first), pa.array(rng.integers(0, 10, n), pa.int64()).cast(pa.string()),
                  "@adventure-works.com")  # fmt: skip
    d = _digits(rng.integers(0, 10**7, n), 7)
    phone = pc.if_else(
        pa.array(rng.random(n) < 0.8),
        _join(_digits(rng.integers(100, 1000, n), 3), "-555-", pc.utf8_slice_codeunits(d, 3, 7)),
        _join("1 (11) 500 555-", pc.utf8_slice_codeunits(d, 3, 7)),
    )
    pw_hash = _join(_rand_text(rng, n, 43, _B64), "=")
    pw_salt = _join(_rand_text(rng, n, 7, _B64), "=")
    h = _rand_text(rng, n, 32, _HEX)
    guid = pc.utf8_upper(_join(*(pc.utf8_slice_codeunits(h, a, b) if i == 4 else
                                 _join(pc.utf8_slice_codeunits(h, a, b), "-")
                                 for i, (a, b) in enumerate(((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))))))  # fmt: skip
    modified = pa.array(rng.integers(1_117_584_000, 1_214_870_400, n) // 86400 * 86400, pa.int64())
    modified = pc.binary_join_element_wise(modified.cast(pa.timestamp("s")).cast(pa.string()), ".000", "")
    name_style = pa.array(np.full(n, "0"), pa.string())
    cols = [_digits(ident, 1), name_style, title, fname, middle, lname, suffix, company, sales, email, phone,
            pw_hash, pw_salt, guid, modified]  # fmt: skip
    return pa.table(cols, names=list(ADVENTUREWORKS_COLUMNS))


def make_adventureworks_customers(n: int, seed: int = 0) -> pd.DataFrame:
    """Rows shaped like AdventureWorks ``Customer`` (all columns strings, as read from CSV)."""
    parts = list(_chunks(n, seed, _adventureworks_chunk))
    table = pa.concat_tables(parts) if parts else _empty(ADVENTUREWORKS_COLUMNS)
    return table.to_pandas()


def write_adventureworks_csv(path: str | os.PathLike[str], n: int, seed: int = 0) -> Path:
    """Write the AdventureWorks-shaped sample as CSV, atomically."""
    return _write_csv(path, n, seed, _adventureworks_chunk, ADVENTUREWORKS_COLUMNS)


def _empty(columns: tuple[str, ...]) -> pa.Table:
    """A zero-row table of string columns."""
    return pa.table({c: pa.array([], pa.string()) for c in columns})


def _write_csv(
    path: str | os.PathLike[str],
    n: int,
    seed: int,
    make: Callable[[int, int, int], pa.Table],
    columns: tuple[str, ...],
    newline: str = "\n",
) -> Path:
    """Generate and write ``n`` rows as a UTF-8 CSV file with a header, atomically, in bounded memory."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")

    def render(chunk: int) -> bytes:
        return encode_csv_rows(make(seed, chunk, min(CHUNK_ROWS, n - chunk * CHUNK_ROWS)), newline)

    n_chunks = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    with atomic_path(path) as tmp, open(tmp, "wb") as fh, ThreadPoolExecutor(max_workers=2) as pool:
        fh.write(header_line(columns, newline))
        # Two chunks in flight on two threads (Arrow kernels release the GIL); written in order.
        pending: deque[Future[bytes]] = deque()
        for chunk in range(n_chunks):
            pending.append(pool.submit(render, chunk))
            if len(pending) >= 3:
                fh.write(pending.popleft().result())
        while pending:
            fh.write(pending.popleft().result())
    return Path(path)
