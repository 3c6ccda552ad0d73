"""Model family: mobilenetv2 (being written)."""
