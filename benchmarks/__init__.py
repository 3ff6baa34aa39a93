"""Benchmarks: the results table (compare.py; its rows, runner, tables and plot in compare_*.py), inference speed
(speed.py) and parameter counts (param_count.py)."""
