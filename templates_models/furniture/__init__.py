"""Furniture templates."""
