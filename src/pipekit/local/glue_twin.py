"""Twin operations for glue_twin (see pipekit.local.server)."""

from __future__ import annotations
