"""Live processing during acquisition: follow a scan as it is written (``pyscatter watch``)."""
