"""neurofs: DANDI, WEBKNOSSOS and CAVE mounted as one ordinary directory tree."""

__version__ = "0.1.0"
