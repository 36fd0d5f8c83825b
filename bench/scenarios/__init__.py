"""The scenarios, one module per kind of work."""
