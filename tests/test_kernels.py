"""The compiled assignment equals scipy's linear_sum_assignment group by group, ties included."""
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from seldbench.metrics import kernels


def _coords(rng, n, ties):
    # azimuth/elevation degrees; integer multiples of 10 make exact ties common
    az = rng.integers(-2, 3, n) * 10.0 if ties else rng.uniform(-180, 180, n)
    el = rng.integers(-1, 2, n) * 10.0 if ties else rng.uniform(-60, 60, n)
    return np.stack([az, el], 1)


@pytest.mark.parametrize("metric", ["polar", "folded"])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(20))
def test_match_sorted_equals_scipy(seed, ties, metric):
    """Polar angles (2021-2023), and 2025's folded azimuth difference, where integer azimuths
    folding front-back onto each other tie often."""
    from seldbench.metrics.angles import fold_azimuth

    rng = np.random.default_rng(seed)
    rk = np.sort(rng.integers(0, 12, rng.integers(0, 40)))
    pk = np.sort(rng.integers(0, 12, rng.integers(0, 40)))
    rc, pc = _coords(rng, len(rk), ties), _coords(rng, len(pk), ties)
    form = kernels.POLAR
    if metric == "folded":
        form = kernels.FOLDED_AZIMUTH
        rc, pc = (fold_azimuth(rng.integers(-6, 7, (len(k), 1)) * 30.0 if ties else c[:, :1])
                  for k, c in ((rk, rc), (pk, pc)))
    ri, pi = np.arange(len(rk)), np.arange(len(pk))
    r, p, c, pos, n, hard, nh = kernels.match_sorted(rk, pk, rc, pc, ri, pi, False, False, form)
    got = set(zip(r[:n].tolist(), p[:n].tolist()))
    for i, g, j, q in hard[:nh]:
        a, b = linear_sum_assignment(kernels.cost_block(rc, pc, ri, pi, False, False, form, i, g, j, q))
        got |= set(zip((i + a).tolist(), (j + b).tolist()))
    want = set()
    for key in np.intersect1d(rk, pk):
        rows, cols = np.flatnonzero(rk == key), np.flatnonzero(pk == key)
        if metric == "folded":  # written out here, not through the kernels
            cost = np.abs(rc[rows, 0][:, None] - pc[cols, 0][None, :])
        else:
            cost = kernels.cost_block(rc, pc, ri, pi, False, False, form, rows[0], len(rows),
                                      cols[0], len(cols))
        a, b = linear_sum_assignment(cost)
        want |= set(zip(rows[a].tolist(), cols[b].tolist()))
    assert got == want
    assert np.all(rk[r[:n]] == pk[p[:n]]) and np.all(np.diff(rk[r[:n]]) >= 0)
    assert np.all(pos[:n] == r[:n] - np.searchsorted(rk, rk[r[:n]]))


def _python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("temp_writable", [True, False])
def test_kernels_load_where_no_cache_folder_can_be_written(tmp_path, temp_writable):
    """A read-only install and HOME (a read-only container): the compiled-kernel cache falls
    back to a folder under TMPDIR, or to none, instead of failing at import."""
    blocker = tmp_path / "file"
    blocker.write_text("")  # nothing can be created under a file, whoever runs the test
    (tmp_path / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    # numba's in-tree locator left out: stands in for an install folder it cannot write; without
    # its user-provided one too, no folder (the temporary one included) is usable
    locators = "UserWideCacheLocator" if not temp_writable else \
        "UserProvidedCacheLocator,UserWideCacheLocator"
    env.update(HOME=str(blocker / "home"), XDG_CACHE_HOME=str(blocker / "cache"),
               TMPDIR=str(tmp_path / "tmp"), NUMBA_CACHE_LOCATOR_CLASSES=locators)
    r = _python("import seldbench.metrics.kernels as k; c = k.match_sorted._cache; "
                "print(type(c).__name__, getattr(c, '_cache_path', '-'))", env)
    assert r.returncode == 0, r.stderr[-600:]
    kind, path = r.stdout.split()
    if temp_writable:
        assert kind == "FunctionCache" and path.startswith(str(tmp_path / "tmp"))
    else:
        assert kind == "NullCache"


def test_scoring_imports_neither_scipy_stats_nor_optimize_unless_needed(tmp_path):
    """Start-up: `seldbench score` without --jackknife and without ties loads no scipy.stats
    (about 0.4 s) or scipy.optimize; importing the CLI loads no numba, scipy or torch."""
    from seldbench.metrics.simulate import write_random_set

    write_random_set(tmp_path, 2, num_classes=13, seed=0)
    code = ("import sys; import seldbench.cli as cli\n"
            "assert not {'numba', 'scipy', 'torch'} & set(sys.modules), 'cli'\n"
            "from seldbench.metrics.score import score_folders\n"
            f"score_folders({str(tmp_path / 'pred')!r}, {str(tmp_path / 'ref')!r}, 'dcase2023')\n"
            "print(sorted(m for m in ('scipy.stats', 'scipy.optimize') if m in sys.modules))")
    r = _python(code, dict(os.environ))
    assert r.returncode == 0, r.stderr[-600:]
    assert r.stdout.strip() == "[]"
