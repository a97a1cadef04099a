"""Schedules (filled in by the reports/UI issue)."""

import dagster as dg

SCHEDULES: list[dg.ScheduleDefinition] = []
