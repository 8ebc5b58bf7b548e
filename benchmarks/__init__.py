"""Benchmarks of the talker stages and the live server (not installed with the package)."""
