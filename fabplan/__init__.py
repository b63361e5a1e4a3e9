"""fabplan: design, plan, drive, simulate and evaluate donut-beam microdisc laser fabrication."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fabplan")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+src"

__all__ = ["__version__"]
