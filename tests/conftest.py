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


@pytest.fixture(scope="session")
def synth_env(tmp_path_factory):
    """synth-mini generated once into a temporary folder (``base / "data"``, via
    ``$SELDBENCH_SYNTH_MINI_ROOT``), shared by every test file; ``base / "cache"`` is the
    conventional feature cache."""
    import os

    base = tmp_path_factory.mktemp("synthmini")
    env = {"SELDBENCH_SYNTH_MINI_ROOT": str(base / "data"), "HF_HUB_OFFLINE": "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield base
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: one intra-op thread avoids thread-pool spin-waits on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def registry():
    """The built-in plugins only (no third-party entry points): what the tests build from."""
    from seldbench.registry import Registry

    return Registry(entry_points=False)


#: fixtures that make a test end-to-end (generated data, training, prediction)
E2E_FIXTURES = {"synth_env"}


def pytest_collection_modifyitems(config, items):
    """Mark every test that uses generated data as ``e2e``, so ``pytest -m "not e2e"`` is the
    quick loop (unit and contract tests) and nobody has to remember to mark a new one."""
    for item in items:
        if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def stereo_root(tmp_path_factory):
    """A tiny DCASE 2025 stereo tree in the exact release layout (read-only)."""
    from dataset_trees import make_stereo_tree

    return make_stereo_tree(tmp_path_factory.mktemp("stereo") / "DCASE2025_SELD_dataset")
