"""pipekit.clean_file with the PROPOSED core timestamp fix installed (benchmarks/proposals); not the product."""

from __future__ import annotations

import sys
from pathlib import Path

from _common import parse_args

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "proposals"))

import core_timestamps

import pipekit


def main() -> None:
    """Clean one CSV file with pipekit + the proposed timestamp range check."""
    core_timestamps.install()
    src, out, now = parse_args(__doc__ or "")
    pipekit.clean_file(src, out.parent, now=now)


if __name__ == "__main__":
    main()
