"""Benchmarks: each runs its anchor in the same process and prints ratios (``make bench``)."""
