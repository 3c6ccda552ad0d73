"""Model family: googlenet (being written)."""
