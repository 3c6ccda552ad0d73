"""Model family: alexnet (being written)."""
