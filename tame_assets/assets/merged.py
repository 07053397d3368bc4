"""Merged layer."""
