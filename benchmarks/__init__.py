"""Benchmarks of drmaa2-ostracker: ``python -m benchmarks [--quick] [--output FILE]``."""
