"""neuroseq: NWB recordings to labelled xarray results, one config, one workflow."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("neuroseq")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
