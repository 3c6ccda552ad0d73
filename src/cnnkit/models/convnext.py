"""Model family: convnext (being written)."""
