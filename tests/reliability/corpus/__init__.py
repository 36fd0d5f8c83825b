"""Data for the reliability tests (the corpus of bad sidecar writes)."""
