"""Validated experiment data, input/output and built-in datasets."""
