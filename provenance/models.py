"""What is proven: artifacts by digest, attestations, keys and the transparency log."""
