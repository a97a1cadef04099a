"""Sensors (filled in by the reports/UI issue)."""

import dagster as dg

SENSORS: list[dg.SensorDefinition] = []
