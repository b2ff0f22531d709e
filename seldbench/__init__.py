"""seldbench: a plugin-based benchmark suite for sound event localization and detection."""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("seldbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from seldbench.errors import SeldbenchError  # noqa: E402

__all__ = ["SeldbenchError", "__version__"]
