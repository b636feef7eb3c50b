"""The example repository ships its own copy of the Glue job script (it is meant to be copied out as a
whole); it must stay the same as the job pipekit deploys."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_example_glue_script_is_the_shipped_entrypoint() -> None:
    shipped = (ROOT / "adapters/glue/customers_etl.py").read_text()
    example = (ROOT / "examples/glue-repo/glue/scripts/customers_etl.py").read_text()
    assert example == shipped, "copy adapters/glue/customers_etl.py over the example's script"
