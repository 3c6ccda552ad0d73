"""Model family: baselines (being written)."""
