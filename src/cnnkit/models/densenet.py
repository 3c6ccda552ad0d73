"""Model family: densenet (being written)."""
