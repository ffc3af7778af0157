"""Tabular data for the product templates (shoe sizes), read with importlib.resources."""
