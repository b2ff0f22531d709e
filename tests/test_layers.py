"""The import graph: plugins use the public contract only, and the core imports downwards."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: what a plugin may import from seldbench
PUBLIC = {"seldbench.api", "seldbench.hookspecs", "seldbench.specs"}
#: core modules by layer, lowest first: a module imports from its own layer or lower ones
LAYERS = [
    {"errors", "io", "progress", "rng"},
    {"specs", "hookspecs", "config", "model_config"},
    {"registry"},
    {"metrics"},
    {"data", "side_inputs", "encoders"},
    {"features"},
    {"results"},
    {"training"},
    {"grid"},
    {"api", "cli", "__init__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every ``import`` / ``from ... import`` in a file, lazy ones included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.lineno, node.module))
    return out


def test_plugins_import_only_the_public_contract():
    bad = [f"{p.relative_to(ROOT)}:{line}: {mod}"
           for p in sorted((ROOT / "plugins").rglob("*.py"))
           for line, mod in _imports(p)
           if mod.startswith("seldbench.") and mod not in PUBLIC]
    assert not bad, "plugins reach into core internals:\n" + "\n".join(bad)


def test_plugins_do_not_import_each_other():
    bad = []
    for p in sorted((ROOT / "plugins").rglob("*.py")):
        own = p.relative_to(ROOT / "plugins").parts[0]
        for line, mod in _imports(p):
            parts = mod.split(".")
            if parts[0] == "seldbench_plugins" and len(parts) > 1 and parts[1] != own:
                bad.append(f"{p.relative_to(ROOT)}:{line}: {mod}")
    assert not bad, "a plugin imports another plugin (use seldbench.api.get_model):\n" + \
        "\n".join(bad)


def _layer(path: Path) -> str:
    rel = path.relative_to(ROOT / "seldbench").parts
    return rel[0].removesuffix(".py")


def test_core_imports_only_downwards():
    bad = []
    for p in sorted((ROOT / "seldbench").rglob("*.py")):
        me = _layer(p)
        assert me in RANK, f"{p}: put module '{me}' in a layer of this test"
        for line, mod in _imports(p):
            parts = mod.split(".")
            if parts[0] != "seldbench" or len(parts) < 2 or parts[1] == me:
                continue
            if RANK.get(parts[1], 0) > RANK[me]:
                bad.append(f"{p.relative_to(ROOT)}:{line}: {me} -> {parts[1]}")
    assert not bad, "imports from a higher layer:\n" + "\n".join(bad)


def test_the_import_checks_can_fail(tmp_path):
    """The AST walk sees lazy (function-level) imports, which is where violations hide."""
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from seldbench.training.losses import adpit_loss\n")
    assert _imports(f) == [(2, "seldbench.training.losses")]


def test_every_api_name_resolves_and_listing_stays_light():
    import seldbench.api as api

    for name in api.__all__:
        assert getattr(api, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        api.nope  # noqa: B018
    # loading every plugin imports neither torch nor numba
    code = ("import sys; from seldbench.registry import get_registry; get_registry(); "
            "print(sorted(m for m in ('torch', 'numba', 'timm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
