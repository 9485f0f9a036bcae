"""The ``gllmm`` command: thin argument parsing over the library."""

from ._main import main

__all__ = ["main"]
