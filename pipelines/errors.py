"""The one error type the project raises for problems a user can fix."""


class EventpulseError(Exception):
    """A problem with input, configuration or environment, stated as one sentence with the fix.

    The CLI prints it without a traceback; Dagster shows it as the step's failure message.
    """
