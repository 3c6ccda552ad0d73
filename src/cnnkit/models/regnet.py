"""Model family: regnet (being written)."""
