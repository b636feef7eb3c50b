"""Twin operations for codecommit_twin (see pipekit.local.server)."""

from __future__ import annotations
