"""Generators' renders: pure functions, spec in, bytes out (matplotlib lives here only)."""
