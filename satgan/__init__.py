"""satgan: satellite-like images from building masks with pix2pix."""

from satgan.errors import SatganError

__version__ = "0.1.0"

__all__ = ["SatganError", "__version__"]
