"""The one exception type for mistakes a user can make (bad paths, files, settings)."""


class SatganError(Exception):
    """A user-facing error: the message names the file or value and what to do.

    The command line prints it without a traceback; notebooks show it as is.
    """
