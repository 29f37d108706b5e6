"""The ``plotjobs`` command."""

from plotjobs.cli.main import main

__all__ = ["main"]
