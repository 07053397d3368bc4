"""Analyses layer."""
