"""The cleaning pipeline as the plain pandas script a typical tutorial would write."""

from __future__ import annotations

import pandas as pd
from _common import EMAIL_MASK_PATTERN, REQUIRED, parse_args


def main() -> None:
    """Clean one CSV file with pandas, all in memory."""
    src, out, now = parse_args(__doc__ or "")
    df = pd.read_csv(src, dtype=str, keep_default_na=False)
    df = df.apply(lambda col: col.str.strip())
    df = df[(df[list(REQUIRED)] != "").all(axis=1)]
    df["name"] = df["name"].str.replace(r"\s+", " ", regex=True).str.title()
    df["email"] = df["email"].str.lower()
    df = df.drop_duplicates()
    df["email"] = df["email"].str.replace(f"(?s){EMAIL_MASK_PATTERN}", r"\1***\2", regex=True)
    ts = pd.to_datetime(df["timestamp"], utc=True, errors="coerce", format="ISO8601")
    df["is_future"] = (ts > pd.Timestamp(now)).astype("boolean").where(ts.notna())
    df.to_csv(f"{out}.csv", index=False)
    df.to_parquet(f"{out}.parquet", index=False, compression="snappy")


if __name__ == "__main__":
    main()
