"""The compiled assignment equals scipy's linear_sum_assignment group by group, ties included."""
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from seldbench.metrics import kernels


def _coords(rng, n, ties):
    # azimuth/elevation degrees; integer multiples of 10 make exact ties common
    az = rng.integers(-2, 3, n) * 10.0 if ties else rng.uniform(-180, 180, n)
    el = rng.integers(-1, 2, n) * 10.0 if ties else rng.uniform(-60, 60, n)
    return np.stack([az, el], 1)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(20))
def test_match_sorted_equals_scipy(seed, ties):
    rng = np.random.default_rng(seed)
    rk = np.sort(rng.integers(0, 12, rng.integers(0, 40)))
    pk = np.sort(rng.integers(0, 12, rng.integers(0, 40)))
    rc, pc = _coords(rng, len(rk), ties), _coords(rng, len(pk), ties)
    r, p, c, pos, n, hard, nh = kernels.match_sorted(rk, pk, rc, pc, np.arange(len(rk)), np.arange(len(pk)), False, False, False)
    got = set(zip(r[:n].tolist(), p[:n].tolist()))
    for i, g, j, q in hard[:nh]:
        a, b = linear_sum_assignment(kernels.cost_block(rc, pc, np.arange(len(rk)), np.arange(len(pk)), False, False, False, i, g, j, q))
        got |= set(zip((i + a).tolist(), (j + b).tolist()))
    want = set()
    for key in np.intersect1d(rk, pk):
        ri, pi = np.flatnonzero(rk == key), np.flatnonzero(pk == key)
        cost = kernels.cost_block(rc, pc, np.arange(len(rk)), np.arange(len(pk)), False, False, False, ri[0], len(ri), pi[0], len(pi))
        a, b = linear_sum_assignment(cost)
        want |= set(zip(ri[a].tolist(), pi[b].tolist()))
    assert got == want
    assert np.all(rk[r[:n]] == pk[p[:n]]) and np.all(np.diff(rk[r[:n]]) >= 0)
    assert np.all(pos[:n] == r[:n] - np.searchsorted(rk, rk[r[:n]]))
