"""Model family: efficientnet (being written)."""
