"""Footwear templates."""
