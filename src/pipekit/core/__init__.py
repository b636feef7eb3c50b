"""pipekit.core."""
