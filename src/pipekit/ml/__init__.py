"""pipekit.ml."""
