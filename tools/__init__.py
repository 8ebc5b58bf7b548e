"""Evaluation tools, judges and test helpers for talker (not installed with the package)."""
