"""Model family: resnet (being written)."""
