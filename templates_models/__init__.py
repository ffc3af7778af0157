"""The shop's product templates, one module per product, grouped by family."""
