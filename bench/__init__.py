"""neurofs's side-by-side benchmark suite (run it with ``scripts/bench``).

Not part of the installed package and not a test: it measures, prints and records, and never
asserts. See ``bench/driver.py`` for the scenarios.
"""
