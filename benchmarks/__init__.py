"""Benchmarks: the results table (compare.py), inference speed (speed.py) and parameter counts (param_count.py)."""
