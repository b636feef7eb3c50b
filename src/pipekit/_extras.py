"""Guarded imports for optional extras."""

from __future__ import annotations

import importlib
from types import ModuleType

from pipekit.errors import MissingExtraError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise MissingExtraError with the exact install command for ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{module!r} is needed for this feature but is not installed.",
            hint=f'pip install "pipekit[{extra}]"',
        ) from exc
