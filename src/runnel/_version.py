"""runnel's version, in a module of its own: code anywhere in the package can read it without importing
the package (and so everything the package imports)."""

__version__ = "0.1.0"
