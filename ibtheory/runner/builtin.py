"""Built-in task kinds that call the rest of the package: ``train`` and ``ib_curve`` (being written)."""
