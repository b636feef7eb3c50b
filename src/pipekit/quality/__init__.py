"""Data-quality checks with Great Expectations 1.x, built from the same rules as pipekit.core.

Import is light; Great Expectations itself is imported only when a check runs (``pipekit[gx]``).
"""

from __future__ import annotations

from pipekit.quality.gx_suite import (
    QualityFailure,
    QualityResult,
    QualityRules,
    build_suite,
    check_csv,
    render_html,
    save_result,
    validate_csv,
    validate_frame,
)

__all__ = [
    "QualityFailure",
    "QualityResult",
    "QualityRules",
    "build_suite",
    "check_csv",
    "render_html",
    "save_result",
    "validate_csv",
    "validate_frame",
]
