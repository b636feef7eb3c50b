"""pipekit.io."""
