"""The bare RQ baseline's task: no work at all, so what is counted is RQ's own traffic."""

from __future__ import annotations


def add(left: int, right: int) -> int:
    """Add two numbers."""
    return left + right
