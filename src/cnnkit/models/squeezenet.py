"""Model family: squeezenet (being written)."""
