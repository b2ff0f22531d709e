"""Compiled inner loops of the metric suites (numba), over rows sorted by (file, frame, class).

The loops follow the per-frame rules of docs/metrics.md one to one - the Python version of the same
loops is :mod:`seldbench.metrics.reference` - but run over all files at once without Python
overhead. Groups that need a real Hungarian assignment (more than 3 entries on both sides, or
two different pairings within 1e-9 degrees of each other) are handed back to scipy, so the
assignment is always the one scipy's ``linear_sum_assignment`` makes.

Grid keys: ``key = (grid_row * C + class)``, ``grid_row = file_offset + frame``.

The matching cost is one of three official forms (``metric``): ``POLAR`` (2021-2023: the great
circle angle from azimuth/elevation), ``UNIT`` (2024: the angle between unit vectors
normalised by ``sqrt(|v|^2 + 1e-10)``) and ``FOLDED_AZIMUTH`` (2025: ``|a - b|`` of azimuths the
caller has already folded front-back).

``parse_plain_csv`` is the compiled half of the batch CSV reader
(:func:`seldbench.metrics.csvio.read_many`).

Compiled code is cached on disk (numba's ``cache=True``: next to this file, else under the
user's cache folder). Where neither can be written (a read-only install and HOME) the cache goes
to a folder under the temporary directory, and where even that fails the kernels are compiled
in memory each run: slower, never an error.
"""
from __future__ import annotations

import math
import os
import tempfile

import numba
import numpy as np

from seldbench.metrics.counters import COUNTERS, IDX


def _temp_cache_dir() -> str:
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return os.path.join(tempfile.gettempdir(), f"seldbench-numba-cache-{uid}")


_cache = {"on": True}


def _cached(fn, options: dict):
    """``fn`` compiled with an on-disk cache, or None where numba finds no cache folder."""
    try:
        return numba.njit(cache=True, **options)(fn)
    except RuntimeError as exc:
        if "no locator available" not in str(exc):
            raise
        return None


def _njit(**options):
    """``numba.njit(cache=True, **options)`` that falls back to a temporary cache folder, then
    to no cache, when numba finds no writable cache location ("no locator available")."""
    def decorate(fn):
        compiled = _cached(fn, options) if _cache["on"] else None
        if compiled is None and _cache["on"] and numba.config.CACHE_DIR != _temp_cache_dir():
            # numba re-reads its settings from the environment: set both
            os.environ["NUMBA_CACHE_DIR"] = numba.config.CACHE_DIR = _temp_cache_dir()
            compiled = _cached(fn, options)
        if compiled is None:
            _cache["on"] = False
            compiled = numba.njit(**options)(fn)
        return compiled
    return decorate


POLAR, UNIT, FOLDED_AZIMUTH = 0, 1, 2  # the cost forms (``metric``)
_N_COUNTERS = len(COUNTERS)
TIE_DEG = 1e-9
_PERMS = np.array([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]], np.int64)
(_TP, _FP, _FPS, _FN, _NREF, _ANG, _DIST, _REL, _DETP, _DEFP, _DEFN, _S, _D, _I, _TPO, _FPSO,
 _ONOK) = (IDX[n] for n in ("TP", "FP", "FP_spatial", "FN", "Nref", "AngE", "DistE", "RelDistE",
                           "DE_TP", "DE_FP", "DE_FN", "S", "D", "I", "TP_onscreen",
                           "FP_spatial_onscreen", "OnscreenCorrect"))


@_njit(inline="always")
def _terms(coords, k, cartesian_in, metric, out, o):
    """Direction terms of CSV row ``k`` (of ``coords``) into ``out[o]``, with the official
    conversions.

    ``coords[k]``: azimuth/elevation degrees, or x, y, z (``cartesian_in``: converted to degrees
    with ``atan2`` first, as every official loader does), or with ``FOLDED_AZIMUTH`` one folded
    azimuth in degrees (taken as is). Terms: (azimuth rad, sin el, cos el) for ``POLAR``; the
    unit vector of the degrees normalised by ``sqrt(|v|^2 + 1e-10)`` for ``UNIT``, as the 2024
    scorer does; the folded azimuth for ``FOLDED_AZIMUTH``.
    """
    if metric == FOLDED_AZIMUTH:
        out[o, 0] = coords[k, 0]
        return
    if cartesian_in:
        x, y, z = coords[k, 0], coords[k, 1], coords[k, 2]
        az = math.atan2(y, x) * 180 / math.pi
        el = math.atan2(z, math.sqrt(x ** 2 + y ** 2)) * 180 / math.pi
    else:
        az, el = coords[k, 0], coords[k, 1]
    a = az * math.pi / 180.0
    e = el * math.pi / 180.0
    if metric == UNIT:
        ce = math.cos(e)
        ux, uy, uz = math.cos(a) * ce, math.sin(a) * ce, math.sin(e)
        nn = math.sqrt(ux ** 2 + uy ** 2 + uz ** 2 + 1e-10)
        out[o, 0], out[o, 1], out[o, 2] = ux / nn, uy / nn, uz / nn
    else:
        out[o, 0], out[o, 1], out[o, 2] = a, math.sin(e), math.cos(e)


@_njit(inline="always")
def _angle(r, a, p, b, metric):
    """Angle in degrees between terms ``r[a]`` and ``p[b]`` (see :func:`_terms`)."""
    if metric == FOLDED_AZIMUTH:
        return abs(r[a, 0] - p[b, 0])
    if metric == UNIT:
        d = r[a, 0] * p[b, 0] + r[a, 1] * p[b, 1] + r[a, 2] * p[b, 2]
    else:
        d = r[a, 1] * p[b, 1] + r[a, 2] * p[b, 2] * math.cos(abs(r[a, 0] - p[b, 0]))
    d = min(1.0, max(-1.0, d))
    return math.acos(d) * 180.0 / math.pi


@_njit(nogil=True)
def match_sorted(rk, pk, rc, pc, ri, pi, r_cart, p_cart, metric):
    """Assign predictions to references inside every shared key.

    ``rk``/``pk``: sorted keys; sorted row ``k`` has CSV coordinates ``rc[ri[k]]`` (``pc[pi[k]]``;
    Cartesian when ``r_cart``/``p_cart``), converted here only for rows of shared keys; ``metric``:
    the cost form. Returns ``(ref_row, pred_row,
    cost, ref_pos, n, hard, n_hard)``: the first ``n`` pairs in key order (``ref_pos`` = position
    of the reference row inside its group) and ``n_hard`` groups ``(ref_start, refs,
    pred_start, preds)`` left to scipy.
    """
    nr, npr = rk.shape[0], pk.shape[0]
    cap = min(nr, npr)
    o_r = np.empty(cap, np.int64)
    o_p = np.empty(cap, np.int64)
    o_c = np.empty(cap, np.float64)
    o_pos = np.empty(cap, np.int64)
    hard = np.empty((cap, 4), np.int64)
    rt = np.empty((3, 3))
    pt = np.empty((3, 3))
    cost = np.zeros((3, 3))
    n = 0
    nh = 0
    i = 0
    j = 0
    while i < nr and j < npr:
        if rk[i] < pk[j]:
            i += 1
            continue
        if rk[i] > pk[j]:
            j += 1
            continue
        key = rk[i]
        g = 1
        while i + g < nr and rk[i + g] == key:
            g += 1
        p = 1
        while j + p < npr and pk[j + p] == key:
            p += 1
        if g == 1 or p == 1:
            # one entry on a side: the first minimum, as scipy breaks ties
            if g == 1:
                _terms(rc, ri[i], r_cart, metric, rt, 0)
            if p == 1:
                _terms(pc, pi[j], p_cart, metric, pt, 0)
            best = 0
            bc = np.inf
            for k in range(max(g, p)):
                if g > 1:
                    _terms(rc, ri[i + k], r_cart, metric, rt, 0)
                if p > 1:
                    _terms(pc, pi[j + k], p_cart, metric, pt, 0)
                c = _angle(rt, 0, pt, 0, metric)
                if c < bc:
                    bc = c
                    best = k
            o_r[n] = i + (best if g > 1 else 0)
            o_p[n] = j + (best if p > 1 else 0)
            o_c[n] = bc
            o_pos[n] = best if g > 1 else 0
            n += 1
        elif g <= 3 and p <= 3:
            for a in range(g):
                _terms(rc, ri[i + a], r_cart, metric, rt, a)
            for b in range(p):
                _terms(pc, pi[j + b], p_cart, metric, pt, b)
            for a in range(3):
                for b in range(3):
                    cost[a, b] = _angle(rt, a, pt, b, metric) if (a < g and b < p) else 0.0
            m = min(g, p)
            tot = np.full(6, np.inf)
            mask = np.zeros(6, np.int64)
            for q in range(6):
                used = 0
                t = 0.0
                bits = 0
                for a in range(3):
                    b = _PERMS[q, a]
                    t += cost[a, b]
                    if a < g and b < p:
                        used += 1
                        bits |= 1 << (3 * a + b)
                if used == m:
                    tot[q] = t
                    mask[q] = bits
            best = 0
            for q in range(6):
                if tot[q] < tot[best]:
                    best = q
            tie = False
            for q in range(6):
                if tot[q] <= tot[best] + TIE_DEG and mask[q] != mask[best]:
                    tie = True
            if tie:
                hard[nh, 0], hard[nh, 1], hard[nh, 2], hard[nh, 3] = i, g, j, p
                nh += 1
            else:
                for a in range(g):
                    b = _PERMS[best, a]
                    if b < p:
                        o_r[n] = i + a
                        o_p[n] = j + b
                        o_c[n] = cost[a, b]
                        o_pos[n] = a
                        n += 1
        else:
            hard[nh, 0], hard[nh, 1], hard[nh, 2], hard[nh, 3] = i, g, j, p
            nh += 1
        i += g
        j += p
    return o_r, o_p, o_c, o_pos, n, hard, nh


@_njit()
def cost_block(rc, pc, ri, pi, r_cart, p_cart, metric, i, g, j, p):
    """The ``(g, p)`` angle matrix of reference rows ``i..i+g`` and prediction rows ``j..j+p``."""
    rt = np.empty((g, 3))
    pt = np.empty((p, 3))
    for a in range(g):
        _terms(rc, ri[i + a], r_cart, metric, rt, a)
    for b in range(p):
        _terms(pc, pi[j + b], p_cart, metric, pt, b)
    out = np.empty((g, p))
    for a in range(g):
        for b in range(p):
            out[a, b] = _angle(rt, a, pt, b, metric)
    return out


@_njit(inline="always")
def _missed(out, f, c, n):
    """``n`` reference entries without a prediction (FN and DE_FN)."""
    out[f, _FN, c] += n
    out[f, _DEFN, c] += n


@_njit(inline="always")
def _extra(out, f, c, n):
    """``n`` predicted entries without a reference (FP and DE_FP)."""
    out[f, _FP, c] += n
    out[f, _DEFP, c] += n


@_njit(inline="always")
def _sdi(out, f, loc_fp, loc_fn):
    """Substitutions, deletions and insertions of one segment or frame."""
    out[f, _S, 0] += min(loc_fp, loc_fn)
    out[f, _D, 0] += max(0, loc_fn - loc_fp)
    out[f, _I, 0] += max(0, loc_fp - loc_fn)


@_njit(nogil=True)
def segment_counts(rk, pk, m_key, m_pos, m_cost, C, seg, row_file, n_files, spatial, max_pos,
                   threshold):
    """Counters ``(files, counters, C)`` of the 1-s segment rules (docs/metrics.md, "Segment suites"), block by block.
    ``m_*``: matched pairs sorted by key; ``spatial``: the counter a wrong match goes to."""
    out = np.zeros((n_files, _N_COUNTERS, C))
    nG = np.zeros(C, np.int64)
    nP = np.zeros(C, np.int64)
    tsum = np.zeros((C, max_pos))
    tcnt = np.zeros((C, max_pos), np.int64)
    nr, npr, nm = rk.shape[0], pk.shape[0], m_key.shape[0]
    i = 0
    j = 0
    m = 0
    big = np.iinfo(np.int64).max
    while i < nr or j < npr:
        br = rk[i] // C // seg if i < nr else big
        bp = pk[j] // C // seg if j < npr else big
        blk = min(br, bp)
        nG[:] = 0
        nP[:] = 0
        tsum[:, :] = 0.0
        tcnt[:, :] = 0
        while i < nr and rk[i] // C // seg == blk:  # most entries of a class in one frame
            key = rk[i]
            g = 0
            while i < nr and rk[i] == key:
                g += 1
                i += 1
            c = key % C
            nG[c] = max(nG[c], g)
        while j < npr and pk[j] // C // seg == blk:
            key = pk[j]
            p = 0
            while j < npr and pk[j] == key:
                p += 1
                j += 1
            c = key % C
            nP[c] = max(nP[c], p)
        while m < nm and m_key[m] // C // seg == blk:  # frame order: sums as upstream
            c = m_key[m] % C
            tsum[c, m_pos[m]] += m_cost[m]
            tcnt[c, m_pos[m]] += 1
            m += 1
        f = row_file[blk * seg]
        loc_fp = 0
        loc_fn = 0
        for c in range(C):
            g = nG[c]
            p = nP[c]
            if g > 0:
                out[f, _NREF, c] += g
            if g > 0 and p > 0:
                tracks = 0
                for k in range(max_pos):
                    if tcnt[c, k] > 0:
                        tracks += 1
                        avg = tsum[c, k] / tcnt[c, k]
                        out[f, _ANG, c] += avg
                        out[f, _DETP, c] += 1
                        if avg <= threshold:
                            out[f, _TP, c] += 1
                        else:
                            out[f, spatial, c] += 1
                            loc_fp += 1
                if tracks == 0:  # in both, never in the same frame: nP misses
                    _missed(out, f, c, p)
                    loc_fn += p
                elif p > g:
                    _extra(out, f, c, p - g)
                    loc_fp += p - g
                elif p < g:
                    _missed(out, f, c, g - p)
                    loc_fn += g - p
            elif g > 0:
                _missed(out, f, c, g)
                loc_fn += g
            elif p > 0:
                _extra(out, f, c, p)
                loc_fp += p
        _sdi(out, f, loc_fp, loc_fn)
    return out


@_njit(nogil=True)
def frame_counts(rk, pk, m_key, m_cost, m_dist, m_rel, m_on, C, row_file, n_files, threshold,
                 dist_threshold, reldist_threshold, onscreen):
    """Counters ``(files, counters, C)`` of the 100-ms frame rules (docs/metrics.md, "Frame suite"), frame by frame.

    With ``onscreen`` (2025), ``m_on[m]`` is 1 where matched pair ``m`` agrees on the
    on/off-screen flag: it is counted, and a second TP/FP_spatial pair also fails a disagreeing
    match (the official ``req_onscreen``). Without, ``m_on`` is not read.
    """
    out = np.zeros((n_files, _N_COUNTERS, C))
    R = np.zeros(C, np.int64)
    P = np.zeros(C, np.int64)
    K = np.zeros(C, np.int64)
    L = np.zeros(C, np.int64)
    LO = np.zeros(C, np.int64)
    nr, npr, nm = rk.shape[0], pk.shape[0], m_key.shape[0]
    i = 0
    j = 0
    m = 0
    big = np.iinfo(np.int64).max
    while i < nr or j < npr:
        row = min(rk[i] // C if i < nr else big, pk[j] // C if j < npr else big)
        R[:] = 0
        P[:] = 0
        K[:] = 0
        L[:] = 0
        LO[:] = 0
        f = row_file[row]
        while i < nr and rk[i] // C == row:
            R[rk[i] % C] += 1
            i += 1
        while j < npr and pk[j] // C == row:
            P[pk[j] % C] += 1
            j += 1
        while m < nm and m_key[m] // C == row:
            c = m_key[m] % C
            K[c] += 1
            fail = m_cost[m] > threshold or m_dist[m] > dist_threshold or \
                m_rel[m] > reldist_threshold
            if fail:
                L[c] += 1
            if onscreen:
                out[f, _ONOK, c] += m_on[m]
                if fail or m_on[m] == 0:
                    LO[c] += 1
            out[f, _ANG, c] += m_cost[m]
            out[f, _DIST, c] += m_dist[m]
            out[f, _REL, c] += m_rel[m]
            m += 1
        loc_fp = 0
        loc_fn = 0
        for c in range(C):
            r = R[c]
            p = P[c]
            out[f, _NREF, c] += r
            if r > 0 and p > 0:
                fp = max(0, p - r)
                fn = max(0, r - p)
                out[f, _TP, c] += K[c] - L[c]
                out[f, _FPS, c] += L[c]
                out[f, _DETP, c] += K[c]
                if onscreen:
                    out[f, _TPO, c] += K[c] - LO[c]
                    out[f, _FPSO, c] += LO[c]
                _extra(out, f, c, fp)
                _missed(out, f, c, fn)
                loc_fp += fp + L[c]
                loc_fn += fn
            elif r > 0:
                _missed(out, f, c, r)
                loc_fn += r
            elif p > 0:
                _extra(out, f, c, p)
                loc_fp += p
        _sdi(out, f, loc_fp, loc_fn)
    return out




# ------------------------------------------------------------------ CSV fast path

#: exact powers of ten (10**22 is the last one a float64 holds exactly)
_POW10 = np.array([float(10 ** k) for k in range(23)])
_NL, _COMMA, _MINUS, _POINT, _ZERO, _NINE = 10, 44, 45, 46, 48, 57


@_njit(nogil=True)
def parse_plain_csv(buf, body, ends, first_line, allowed, values, lines, row_end, nfields):
    """Rows of many DCASE CSV files held in one byte buffer, for files in the plainest form
    only: ASCII digits, ``-``, ``.``, ``,`` and ``\\n``, every number ``-?(\\d+\\.?\\d*|\\.\\d+)``
    with at most 15 significant digits and 22 decimals (so that ``m / 10**k`` is exactly
    Python's ``float``), every row with the same field count, one that ``allowed`` marks.

    File ``f`` is ``buf[body[f]:ends[f]]`` (after any header), its first line numbered
    ``first_line[f]``. Its rows go to ``values`` (rows x max fields) and ``lines`` from
    ``row_end[f - 1]`` to ``row_end[f]``; ``nfields[f]`` is its field count, 0 for a file off
    this path (anything else, or no rows): the strict reader decides about those.
    """
    r = 0
    for f in range(len(body)):
        p, end, line, r0, nf = body[f], ends[f], first_line[f], r, -1
        ok = True
        while ok and p < end:
            if buf[p] == _NL:  # a blank line
                p += 1
                line += 1
                continue
            k = 0
            while True:  # one field
                neg = p < end and buf[p] == _MINUS
                if neg:
                    p += 1
                m, digits, sig, frac, point = 0, 0, 0, 0, False
                while p < end:
                    c = buf[p]
                    if _ZERO <= c <= _NINE:
                        digits += 1
                        if m > 0 or c != _ZERO:
                            sig += 1
                        m = m * 10 + (c - _ZERO) if sig <= 15 else m
                        if point:
                            frac += 1
                    elif c == _POINT and not point:
                        point = True
                    else:
                        break
                    p += 1
                if digits == 0 or sig > 15 or frac > 22 or k >= values.shape[1]:
                    ok = False
                    break
                v = m / _POW10[frac]
                values[r, k] = -v if neg else v
                k += 1
                if p < end and buf[p] == _COMMA:
                    p += 1
                    continue
                if p < end and buf[p] != _NL:
                    ok = False
                elif p < end:
                    p += 1
                break
            if not ok:
                break
            if nf < 0:
                nf = k
                ok = nf < len(allowed) and allowed[nf]
            elif k != nf:
                ok = False
            if ok:
                lines[r] = line
                line += 1
                r += 1
        if not ok or r == r0:
            r = r0
            nf = 0
        nfields[f] = nf
        row_end[f] = r
