"""The package version, in a module of its own so that xnn's modules can read it without importing
the package (an import circle)."""

__version__ = "0.1.0"
