"""Model family: mobilenetv3 (being written)."""
