"""satgan: satellite-like images from building masks with pix2pix.

The two exception types every layer raises live here, at the root, so any module can
name them without importing another.
"""

__version__ = "0.1.0"


class SatganError(Exception):
    """A user-facing error: the message names the file or value and what to do.

    The command line prints it without a traceback; notebooks show it as is.
    """


class SatganWarning(UserWarning):
    """Something a user should know that does not stop the work (a converted file, a skip)."""


__all__ = ["SatganError", "SatganWarning", "__version__"]
