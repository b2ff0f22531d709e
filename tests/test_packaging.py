"""pyproject.toml lists every package (the explicit list is needed for the plugins/ mapping)."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for top, name in (("seldbench", "seldbench"), ("plugins", "seldbench_plugins")):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top).parts
            found.add(".".join((name, *rel)))
    assert found == listed, f"missing: {sorted(found - listed)}, stale: {sorted(listed - found)}"


def test_every_default_yaml_ships_as_package_data():
    """A wheel holds only what package-data names: a YAML (or a board asset) beside the code
    that is not listed would be missing from a non-editable install."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = {name: ROOT / top for name, top in setuptools["package-dir"].items()}
    listed = set()
    for package, files in setuptools["package-data"].items():
        top, *rest = package.split(".")
        listed |= {dirs[top].joinpath(*rest, f) for f in files}
    assert all(p.is_file() for p in listed), sorted(p for p in listed if not p.is_file())
    found = {p for top in dirs.values() for p in top.rglob("*.yaml")}
    found |= set((ROOT / "seldbench" / "results" / "board_assets").glob("*"))  # the web board's
    assert found == listed, f"missing: {sorted(found - listed)}, stale: {sorted(listed - found)}"


def test_the_lock_file_pins_every_declared_dependency():
    """requirements-lock.txt is the tested set: each dependency pyproject.toml declares (base and
    extras) is pinned there at a version its bound admits."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    declared = [*project["dependencies"], *sum(project["optional-dependencies"].values(), [])]
    for text in declared:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned in requirements-lock.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (text, pins[name])
