"""seldbench: a plugin-based benchmark suite for sound event localization and detection."""
from seldbench.errors import SeldbenchError

__all__ = ["SeldbenchError", "__version__"]


def __getattr__(name: str):
    # importlib.metadata costs ~20 ms at start-up; only look the version up when asked
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("seldbench")
        except PackageNotFoundError:  # running from a source tree that is not installed
            return "0.0.0+unknown"
    raise AttributeError(f"module 'seldbench' has no attribute {name!r}")
