"""Dagster wiring: definitions, the resource, assets by layer with their checks, schedules, sensors, runner."""
