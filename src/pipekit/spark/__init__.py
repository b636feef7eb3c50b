"""pipekit.spark."""
