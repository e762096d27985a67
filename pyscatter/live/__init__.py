"""Live mode: follow a scan while it is acquired (``pyscatter watch``)."""
