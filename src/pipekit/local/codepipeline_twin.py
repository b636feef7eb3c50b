"""Twin operations for codepipeline_twin (see pipekit.local.server)."""

from __future__ import annotations
