"""sparring's version, in one place: the package metadata and every run's provenance read it."""

__version__ = "0.1.0"
