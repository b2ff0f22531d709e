"""A non-editable install works: the wheel, installed into a fresh venv, trains from a folder
that has nothing to do with the checkout, reading its YAML from the installed package."""
import json
import os
import shutil
import subprocess
import sys
import venv
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.e2e


def _can_build_without_isolation() -> bool:
    """setuptools >= 70.1 builds wheels itself (older ones need the `wheel` package); the lock
    file pins one, so a venv made from it builds offline."""
    try:
        major, minor = (int(x) for x in version("setuptools").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return False
    if (major, minor) >= (70, 1):
        return True
    try:
        version("wheel")
        return True
    except PackageNotFoundError:
        return False


def _build_wheel(tmp: Path) -> Path:
    """The wheel of the working tree, built from a copy (a build in place would leave build/
    in the checkout, and a stale build/lib could leak into the wheel)."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("seldbench", "plugins"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                          "--no-build-isolation", "--no-index", "-w", str(tmp / "dist"), "."],
                         cwd=src, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = (tmp / "dist").glob("seldbench-*.whl")
    return wheel


def _fresh_venv(where: Path) -> Path:
    """A venv without pip or packages of its own that sees this interpreter's site-packages
    through a .pth file: the lock file's packages without installing them again. A .pth file
    inside those folders is not read (only the venv's own site-packages is a site dir), so
    this checkout's editable install is not visible there."""
    venv.create(where, with_pip=False)
    python = where / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    Path(site, "lock_packages.pth").write_text("".join(f"{p}\n" for p in ours))
    return python


def test_wheel_installs_and_runs_from_an_unrelated_folder(tmp_path, synth_env):
    if not _can_build_without_isolation():
        pytest.skip("needs setuptools>=70.1 here to build offline; "
                    "pip install -r requirements-lock.txt installs it")
    wheel = _build_wheel(tmp_path)
    env_dir = tmp_path / "venv"
    python = _fresh_venv(env_dir)
    # pip comes from this interpreter's site-packages; --ignore-installed: the editable
    # seldbench that it also sees there is another environment's, not this one's
    out = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                          "--ignore-installed", str(wheel)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # synth-mini comes from the session's copy ($SELDBENCH_SYNTH_MINI_ROOT); anything else that
    # defaults to ~ or $SELDBENCH_DATA lands in tmp_path
    env = {**os.environ, "HOME": str(tmp_path / "home"), "SELDBENCH_DATA": str(tmp_path / "data")}
    env.pop("PYTHONPATH", None)
    where = subprocess.run(
        [python, "-c", "import seldbench, seldbench_plugins.crnn as c; "
                       "from seldbench.config import DEFAULTS_YAML; "
                       "from seldbench.registry import Registry; "
                       "print(seldbench.__file__, c.__file__, DEFAULTS_YAML, "
                       "Registry(entry_points=False).get_model('crnn').config, sep='\\n')"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr[-2000:]
    paths = [Path(p) for p in where.stdout.split()]
    assert len(paths) == 4
    for p in paths:  # the wheel's copies, not the checkout's
        assert p.is_relative_to(env_dir) and p.is_file(), p

    sets = ["train.batch_size=4", "train.threads=1", "eval.jackknife=false",
            f"features.cache_dir={synth_env / 'cache'}"]
    cmd = [env_dir / "bin" / "seldbench", "run", "--model", "crnn", "--dataset", "synth-mini",
           "--epochs", "1", "--quiet", *[a for s in sets for a in ("--set", s)]]
    out = subprocess.run(cmd, cwd=elsewhere, env=env, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    # output.runs_dir defaults to runs/ of the current folder
    (record,) = (elsewhere / "runs" / "synth-mini" / "crnn").glob("*/record.json")
    rec = json.loads(record.read_text())
    assert rec["status"] == "complete" and rec["train"]["epochs_run"] == 1
    # the installed YAML resolves to the checkout's config, hash included
    from seldbench.training.plan import plan_run

    plan = plan_run("crnn", "synth-mini", overrides=[*sets, "train.epochs=1"])
    assert rec["config"] == plan.cfg and rec["config_hash"] == plan.digest
    assert rec["git"] is None  # an installed package is no checkout
    assert not (tmp_path / "home").exists()  # nothing went to ~
