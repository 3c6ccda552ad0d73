"""Model family: airnet (being written)."""
