import os

# No hub access in tests, ever (a hub lookup would retry for tens of seconds offline).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def starss_root(tmp_path_factory):
    """A tiny STARSS23 tree in the exact release layout (read-only: copy it to modify)."""
    from dataset_trees import make_starss_tree

    return make_starss_tree(tmp_path_factory.mktemp("starss") / "STARSS23")


@pytest.fixture(scope="session")
def tau_root(tmp_path_factory):
    """A tiny TAU-NIGENS 2021 tree in the exact release layout (read-only)."""
    from dataset_trees import make_tau_tree

    return make_tau_tree(tmp_path_factory.mktemp("tau") / "TAU2021")


@pytest.fixture
def starss_copy(starss_root, tmp_path):
    """A private copy of the STARSS23 tree that a test may damage."""
    return Path(shutil.copytree(starss_root, tmp_path / "STARSS23"))
