"""Model family: vgg (being written)."""
