"""Model family: shufflenetv2 (being written)."""
