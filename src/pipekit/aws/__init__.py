"""pipekit.aws."""
