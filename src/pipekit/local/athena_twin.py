"""Twin operations for athena_twin (see pipekit.local.server)."""

from __future__ import annotations
