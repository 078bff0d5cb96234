"""topozarr-plan."""

__version__ = "0.1.0"
