"""The ``tlsgate`` command line (console script ``scanner.cli:main``, also ``python -m scanner.cli``)."""

from scanner.cli.app import app, main

__all__ = ["app", "main"]
