"""Evidence bundles: facts collected once, rendered into a signed zip, verifiable offline."""
