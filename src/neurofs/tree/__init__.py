"""Node kinds of the mounted tree (no FUSE here)."""
