"""The user-facing exception and warning types (mistakes a user can make: paths, files, settings)."""


class SatganError(Exception):
    """A user-facing error: the message names the file or value and what to do.

    The command line prints it without a traceback; notebooks show it as is.
    """


class SatganWarning(UserWarning):
    """Something a user should know that does not stop the work (a converted file, a skip)."""
