"""The ``neurofs`` command line."""

from __future__ import annotations

from neurofs.cli.main import main

__all__ = ["main"]
