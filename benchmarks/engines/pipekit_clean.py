"""The cleaning pipeline with pipekit's streaming engine (``pipekit.clean_file``)."""

from __future__ import annotations

from _common import parse_args

import pipekit


def main() -> None:
    """Clean one CSV file with pipekit."""
    src, out, now = parse_args(__doc__ or "")
    pipekit.clean_file(src, out.parent, now=now)


if __name__ == "__main__":
    main()
