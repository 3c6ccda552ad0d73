"""Model family: lenet (being written)."""
