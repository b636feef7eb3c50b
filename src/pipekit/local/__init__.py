"""pipekit.local."""
