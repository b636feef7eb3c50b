"""Twin operations for glue_jobs_twin (see pipekit.local.server)."""

from __future__ import annotations
