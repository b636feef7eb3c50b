"""Shared fixtures for the core tests: a small messy customers frame."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

NOW = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def messy_customers() -> pd.DataFrame:
    """Customers with the problems the pipeline must handle, all as strings as after a CSV read."""
    return pd.DataFrame(
        {
            "id": ["007", "2", "3", "4", "5", "6", "7", "8"],
            "name": [" o'brien ", "JEAN-LUC  picard", "ÉLODIE", "  ", "O'Brien", None, "ana", "x"],
            "email": [
                " John.Smith@Example.com",
                "jl@x.com",
                "e@x.fr",
                "blank@x.com",
                "john.smith@example.com",
                "a@b.co",
                "not-an-email",
                "x@y.org",
            ],
            "timestamp": [
                "2023-01-01",
                "2099-01-01T00:00:00Z",
                "garbage",
                "2023-01-01",
                "2023-01-01",
                "2023-01-01",
                "2024-05-05 10:00:00+02:00",
                "2024-12-31T23:59:59",
            ],
        }
    )
