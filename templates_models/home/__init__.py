"""Home templates."""
