#!/usr/bin/env bash
# Flag rows whose timestamp is after "now" in a cleaned customers CSV.
#
#   flag_future_timestamps.sh INPUT.csv SIDE_FILE.csv
#
# Writes the ids of future rows to SIDE_FILE.csv (a one-column CSV with header "id", written to a
# temp name then renamed), prints a summary line on stderr and the count alone on the last stdout line
# (Airflow's BashOperator pushes that line as XCom). Exit 0 on success, 2 on unreadable input or usage.
#
# Environment:
#   PIPEKIT_NOW        ISO-8601 instant to compare with (naive = UTC); default: the current time
#   ID_COLUMN          id column name (default: id)
#   TIMESTAMP_COLUMN   timestamp column name (default: timestamp)
#   PYTHON             interpreter to use (default: python3)
#
# Why python3's csv module and not awk/cut: fields may be quoted and contain commas, quotes and
# newlines; a line-based tool would split those records wrongly. python3 is on every Debian/Ubuntu
# image and in every Airflow image. The timestamp grammar mirrors pipekit.core.parse_timestamps:
# ISO-8601 date, optional 'T'/space + HH[:MM[:SS[.fraction]]], optional Z or +HH[[:]MM]; naive = UTC;
# anything else (or an impossible date) is unparsable and never counted as future.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $(basename "$0") INPUT.csv SIDE_FILE.csv" >&2
    exit 2
fi

exec "${PYTHON:-python3}" - "$1" "$2" <<'PY'
import csv
import os
import re
import sys
import tempfile
from datetime import datetime, timedelta, timezone

src, side = sys.argv[1], sys.argv[2]
id_col = os.environ.get("ID_COLUMN", "id")
ts_col = os.environ.get("TIMESTAMP_COLUMN", "timestamp")

ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?)?$"
)


def fail(message):
    print(f"flag_future_timestamps: {message}", file=sys.stderr)
    sys.exit(2)


def parse(value):
    """Aware UTC datetime, or None when the value is missing or unparsable."""
    m = ISO.match(value.strip())
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, z, sign, oh, om = m.groups()
    try:
        ts = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0),
                      int((frac or "0")[:6].ljust(6, "0")))
        offset = timedelta(hours=int(oh or 0), minutes=int(om or 0))
        if offset >= timedelta(hours=24):
            return None
        tz = timezone(-offset if sign == "-" else offset) if sign else timezone.utc
        return ts.replace(tzinfo=tz).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


raw_now = os.environ.get("PIPEKIT_NOW", "").strip()
if raw_now:
    now = parse(raw_now)
    if now is None:
        fail(f"PIPEKIT_NOW={raw_now!r} is not an ISO-8601 timestamp")
else:
    now = datetime.now(timezone.utc)

ids = []
rows = 0
try:
    with open(src, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, strict=True)
        header = next(reader, None)
        if header is None:
            fail(f"{src} is empty (no header row)")
        for col in (id_col, ts_col):
            if col not in header:
                fail(f"{src}: column {col!r} not found in header {header}")
        i_id, i_ts = header.index(id_col), header.index(ts_col)
        for rows, record in enumerate(reader, start=1):
            if len(record) != len(header):
                fail(f"{src}: record {rows} has {len(record)} fields, header has {len(header)}")
            ts = parse(record[i_ts])
            if ts is not None and ts > now:
                ids.append(record[i_id])
except FileNotFoundError:
    fail(f"{src} does not exist")
except (OSError, UnicodeDecodeError, csv.Error) as exc:
    fail(f"{src} is not a readable UTF-8 CSV: {exc}")

side_dir = os.path.dirname(os.path.abspath(side))
os.makedirs(side_dir, exist_ok=True)
fd, tmp = tempfile.mkstemp(prefix=".future_ids.", suffix=".tmp", dir=side_dir)
# mkstemp creates 0600; the side file is an output like the others, so its mode follows the umask.
umask = os.umask(0)
os.umask(umask)
try:
    os.fchmod(fd, 0o666 & ~umask)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id"])
        writer.writerows([i] for i in ids)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, side)
except BaseException:
    if os.path.exists(tmp):
        os.unlink(tmp)
    raise

print(f"flag_future_timestamps: {len(ids)} of {rows} rows after {now.isoformat()} -> {side}", file=sys.stderr)
print(len(ids))
PY
