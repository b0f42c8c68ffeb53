"""Benchmarks: ``make bench`` (or ``python -m bench``) runs them all; results live in bench/README.md."""
