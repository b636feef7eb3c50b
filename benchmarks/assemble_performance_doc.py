"""Assemble docs/performance.md from the per-area pages in docs/perf/ (each written by its benchmark).

    .venv/bin/python benchmarks/assemble_performance_doc.py

Every figure stays on its area's page next to the command that produced it; this only stitches the
pages together (headings pushed down one level) under a summary written in docs/perf/_summary.md.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PERF = ROOT / "docs" / "perf"
ORDER = ["clean", "spark_clean", "core", "airflow", "aws", "glue", "cicd", "ml"]


def demote(markdown: str) -> str:
    """Push every Markdown heading down one level, outside fenced code blocks."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        out.append("#" + line if not fenced and re.match(r"#{1,5} ", line) else line)
    return "\n".join(out)


def main() -> None:
    parts = [(PERF / "_summary.md").read_text().rstrip()]
    for name in ORDER:
        page = PERF / f"{name}.md"
        if page.exists():
            parts.append(f"<!-- from docs/perf/{name}.md -->\n" + demote(page.read_text().rstrip()))
    (ROOT / "docs" / "performance.md").write_text("\n\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
