"""Errors that mean "the user asked for something wrong", as opposed to a bug in ganforge.

The CLI's single top-level handler prints a UsageError as one line and exits with code 2; any other
exception keeps its traceback, because that is a bug users should report.
"""


class UsageError(Exception):
    """A mistake in the user's input (a path, a flag, a file). The message says what to do."""


class FormatError(UsageError):
    """A file that is not what it claims to be: truncated, foreign, or refused for safety."""
