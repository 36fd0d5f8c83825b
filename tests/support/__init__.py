"""Helpers shared by the tests and the benchmarks (``bench``): mounting neurofs, wrapping its
emulators, checking what the daemon logs. Nothing here imports pytest at module level, so
``bench`` (run with ``python -m bench`` from the repository) can import it too."""
