"""Fuzz `seldbench score`: malformed DCASE CSVs per suite, scored in-process.

Each case starts from a small valid reference/prediction pair of the suite's layouts (dcase2025:
its header line, then frame, class, source, azimuth, distance, onscreen) and
applies one to three mutations. A mutation is *garbage* (the file must be rejected: control or
non-ASCII characters, bytes that are not UTF-8, non-numbers, NaN/inf, wrong field counts, header
rows, indices out of range or beyond 2**53, elevations beyond 90 degrees, zero vectors, numbers
too long for a float), *valid* (must be scored: a leading byte-order mark, blank lines, CRLF line
ends, spaces around numbers, huge or tiny finite coordinates and distances, very long numbers
that are still finite) or *either* (random bytes: only crashes count). A case is garbage if any
of its mutations is. Counted per suite:

- tracebacks: any exception other than :class:`~seldbench.errors.SeldbenchError`;
- garbage accepted: a garbage case that scored (the CLI would exit 0);
- valid rejected: a valid case that raised SeldbenchError;
- warnings: a case that emitted any Python warning (numpy overflow noise and the like).

    python tests/fuzz_score.py [--cases 10000] [--seed 0] [--suites dcase2021,...]

``tests/test_fuzz_score.py`` runs a few hundred cases with a fixed seed in the test suite.
"""
from __future__ import annotations

import argparse
import tempfile
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from seldbench.errors import SeldbenchError
from seldbench.metrics.score import score_folders

SUITES = ("dcase2021", "dcase2022", "dcase2023", "dcase2024", "dcase2025")
CLASSES = {"dcase2021": 12, "dcase2022": 13, "dcase2023": 13, "dcase2024": 13, "dcase2025": 13}
# (reference field counts, prediction field counts) each suite reads; the first is written
LAYOUTS = {"dcase2021": ((5,), (6,)), "dcase2022": ((6, 5), (7,)), "dcase2023": ((6, 5), (7,)),
           "dcase2024": ((6,), (7, 6)), "dcase2025": ((6,), (6,))}
HEADER_2025 = "frame,class,source,azimuth,distance,onscreen\n"
CONTROLS = [chr(c) for c in (*range(0, 9), 9, 11, 12, *range(14, 32), 127, 0x85)] + \
    ["\u2028", "\u2029", "\u200b", "\u202e"]
NON_NUMBER = list("xyzgGhHkKqQ#@!_$%&*()[]{}<>?/\\|;:'\"`~=")
# (a byte-order mark is valid at the start of a file only: m_inner_bom puts one elsewhere)
NON_ASCII = ["\u00e9", "\u0661", "\uff11", "\U0001f600", "\u00a0", "\u2212"]
BAD_UTF8 = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe2\x82", b"\x80\x80", b"\xc0\xaf"]


def _valid_rows(rng: np.random.Generator, n_fields: int, classes: int, cartesian: bool,
                stereo: bool = False) -> list:
    """Rows of a valid file as lists of field strings: frame, class, track, then azimuth and
    elevation or x, y, z, then a distance if ``n_fields`` asks for one; ``stereo`` (2025):
    source, azimuth, distance (cm) and an onscreen flag."""
    rows = []
    for f in sorted(rng.integers(0, 60, int(rng.integers(1, 12)))):
        row = [str(f), str(int(rng.integers(0, classes))), str(int(rng.integers(0, 3)))]
        if stereo:
            row[2] = str(int(rng.integers(0, 14)))  # source ids beyond the 10 tracks too
            rows.append(row + [f"{rng.uniform(-400, 400):.2f}", str(int(rng.integers(1, 900))),
                               str(int(rng.integers(0, 2)))])
            continue
        if cartesian:
            row += [f"{v:.4f}" for v in rng.uniform(-1, 1, 3) + 0.01]
        else:
            row += [str(int(rng.integers(-180, 180))), str(int(rng.integers(-90, 91)))]
        if len(row) < n_fields:
            row.append(str(round(float(rng.uniform(0.5, 500)), 2)))
        rows.append(row)
    return rows


def _join(rows: list, header: str = "") -> str:
    """The file's text: ``header`` (the 2025 suite's header line, or nothing), then the rows."""
    return header + "".join(",".join(r) + "\n" for r in rows)


# ---------------------------------------------------------------- mutations
# Each takes (rng, rows as field lists, context) and returns (new text or bytes or rows, tag).


def _pick(rng, seq):
    return seq[int(rng.integers(0, len(seq)))]


def _row(rng, rows):
    """A row that is not blank (blank ones come from m_blank_lines)."""
    return _pick(rng, [i for i, r in enumerate(rows) if len(r) > 1] or [0])


def _cell(rng, rows):
    i = _row(rng, rows)
    return i, int(rng.integers(0, len(rows[i])))


def m_control(rng, rows, ctx):
    i, k = _cell(rng, rows)
    tok = rows[i][k]
    pos = int(rng.integers(0, len(tok) + 1))
    rows[i][k] = tok[:pos] + _pick(rng, CONTROLS) + tok[pos:]
    return rows, "garbage"


def m_lone_cr(rng, rows, ctx):
    i, k = _cell(rng, rows)
    rows[i][k] = rows[i][k][:1] + "\r" + rows[i][k][1:] + ("0" if k == len(rows[i]) - 1 else "")
    return rows, "garbage"


def m_non_number(rng, rows, ctx):
    i, k = _cell(rng, rows)
    tok = rows[i][k]
    pos = int(rng.integers(0, len(tok) + 1))
    rows[i][k] = tok[:pos] + _pick(rng, NON_NUMBER + NON_ASCII) + tok[pos:]
    return rows, "garbage"


def m_empty_field(rng, rows, ctx):
    i, k = _cell(rng, rows)
    rows[i][k] = _pick(rng, ["", " ", "-", "+", ".", "e", "1e", "--1", "1..2", "0x10", "1 2"])
    return rows, "garbage"


def m_field_count(rng, rows, ctx):
    i = _row(rng, rows)
    n = len(rows[i])
    # to a count no layout of any suite has (at most 3, or at least 8 fields)
    new = int(rng.integers(1, 4)) if rng.random() < 0.5 else int(rng.integers(8, 12))
    rows[i] = (rows[i] + ["1"] * new)[:new] if new > n else rows[i][:new]
    return rows, "garbage"


def m_non_finite(rng, rows, ctx):
    i, k = _cell(rng, rows)
    rows[i][k] = _pick(rng, ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e999",
                             "-1e400", "9" * 400])
    return rows, "garbage"


def m_bad_index(rng, rows, ctx):
    i = _row(rng, rows)
    k = int(rng.integers(0, min(3, len(rows[i]))))
    choices = ["-1", "1.5", "1e19", "9.3e18", "1e300", "-0.5", "18446744073709551616"]
    if k == 1:
        choices.append(str(ctx["classes"]))
    rows[i][k] = _pick(rng, choices)
    return rows, "garbage"


def m_geometry(rng, rows, ctx):
    i = _row(rng, rows)
    if ctx["header"]:  # 2025: an onscreen flag other than 0/1, a reference distance not above 0
        if len(rows[i]) < 6:
            return rows, "garbage"
        if ctx["target"] == "ref" and rng.random() < 0.5:
            rows[i][4] = _pick(rng, ["0", "-0", "-3", "-1e-300"])
        else:
            rows[i][5] = _pick(rng, ["2", "-1", "0.5", "10"])
        return rows, "garbage"
    if len(rows[i]) < (6 if ctx["cartesian"] else 5):  # cut short by m_field_count: garbage
        return rows, "garbage"
    if ctx["cartesian"]:
        rows[i][3:6] = ["0", "0.0", "-0"]
    else:
        rows[i][4] = _pick(rng, ["90.5", "-91", "180", "1e10"])
    return rows, "garbage"


def m_header(rng, rows, ctx):
    names = ["frame", "class", "track", "azimuth", "elevation", "distance", "x", "y", "z"]
    return [names[:max(map(len, rows))]] + rows, "garbage"


def m_random_bytes(rng, rows, ctx):
    data = bytearray(_join(rows, ctx["header"]).encode())
    for _ in range(int(rng.integers(1, 6))):
        pos = int(rng.integers(0, len(data) + 1))
        data[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 8)), dtype=np.uint8).tobytes()
    return bytes(data), "either"


def m_bad_utf8(rng, rows, ctx):
    data = _join(rows, ctx["header"]).encode()
    pos = int(rng.integers(0, len(data) + 1))
    return data[:pos] + _pick(rng, BAD_UTF8) + data[pos:], "garbage"


def m_inner_bom(rng, rows, ctx):
    i, k = _cell(rng, rows)
    tok = rows[i][k]
    rows[i][k] = tok[:1] + "\ufeff" + tok[1:]  # after a field's first character: never at the start
    return rows, "garbage"


def m_long_garbage_line(rng, rows, ctx):
    i = _row(rng, rows)
    rows[i][-1] = rows[i][-1] + "x" * int(rng.integers(1000, 200000))
    return rows, "garbage"


# valid mutations


def m_bom(rng, rows, ctx):
    return b"\xef\xbb\xbf" + _join(rows, ctx["header"]).encode(), "valid"


def m_blank_lines(rng, rows, ctx):
    for _ in range(int(rng.integers(1, 4))):
        rows.insert(int(rng.integers(0, len(rows) + 1)), [_pick(rng, ["", " ", "   "])])
    return rows, "valid"


def m_crlf(rng, rows, ctx):
    text = "".join(",".join(r) + ("\r\n" if rng.random() < 0.5 else "\n")
                   for r in ([ctx["header"][:-1].split(",")] if ctx["header"] else []) + rows)
    return text.encode(), "valid"


def m_no_final_newline(rng, rows, ctx):
    return _join(rows, ctx["header"]).rstrip("\n").encode(), "valid"


def m_spaces(rng, rows, ctx):
    i, k = _cell(rng, rows)
    rows[i][k] = " " * int(rng.integers(1, 4)) + rows[i][k] + " " * int(rng.integers(0, 3))
    return rows, "valid"


def m_huge_finite(rng, rows, ctx):
    i = _row(rng, rows)
    k = int(rng.integers(3, len(rows[i])))
    value = _pick(rng, ["1e300", "-1e308", "1e-300", "5e-324", "1.7976931348623157e308"])
    if ctx["header"] and k >= 4:  # 2025: a distance stays above 0, an onscreen flag 0 or 1
        value = "1" if k == 5 else value.lstrip("-")
    elif not ctx["cartesian"] and k == 4:
        value = "89.999999"  # an elevation must stay within [-90, 90]
    rows[i][k] = value
    return rows, "valid"


def m_long_number(rng, rows, ctx):
    i, k = _cell(rng, rows)
    tok = rows[i][k].strip()
    sign = tok[:1] if tok[:1] in "+-" else ""
    tok = tok[len(sign):]
    rows[i][k] = sign + "0" * int(rng.integers(100, 50000)) + tok
    return rows, "valid"


def m_number_forms(rng, rows, ctx):
    i, k = _cell(rng, rows)
    tok = rows[i][k].strip()
    if not tok.replace(".", "", 1).isdigit():  # signed, or reshaped already
        return rows, "valid"
    forms = ["+" + tok, tok + "e0", tok + "E+00"] + ([] if "." in tok else [tok + ".", tok + ".0"])
    rows[i][k] = _pick(rng, forms)
    return rows, "valid"


GARBAGE = [m_control, m_lone_cr, m_non_number, m_empty_field, m_field_count, m_non_finite,
           m_bad_index, m_geometry, m_header, m_bad_utf8, m_inner_bom, m_long_garbage_line]
VALID = [m_bom, m_blank_lines, m_crlf, m_no_final_newline, m_spaces, m_huge_finite,
         m_long_number, m_number_forms]
EITHER = [m_random_bytes]
# mutations that turn the rows into bytes: applied last
FINAL = {m_random_bytes, m_bad_utf8, m_bom, m_crlf, m_no_final_newline}


def make_case(rng: np.random.Generator, suite: str) -> tuple[bytes, bytes, str, list[str]]:
    """(reference bytes, prediction bytes, expected "garbage"/"valid"/"either", mutation names)."""
    classes = CLASSES[suite]
    ref_counts, pred_counts = LAYOUTS[suite]
    ref_n, pred_n = _pick(rng, ref_counts), _pick(rng, pred_counts)
    stereo = suite == "dcase2025"
    pred_cartesian = not (suite == "dcase2024" and pred_n == 6) and not stereo
    files = {"ref": _valid_rows(rng, ref_n, classes, False, stereo),
             "pred": _valid_rows(rng, pred_n, classes, pred_cartesian, stereo)}
    target = "ref" if rng.random() < 0.4 else "pred"
    header = HEADER_2025 if stereo else ""
    ctx = {"classes": classes, "cartesian": target == "pred" and pred_cartesian,
           "header": header, "target": target}
    pool = GARBAGE + VALID + EITHER
    chosen = [_pick(rng, pool) for _ in range(int(rng.integers(1, 4)))]
    # valid edits first, so that none can overwrite a garbage field; one bytes-level edit last
    chosen = [m for m in chosen if m not in FINAL and m in VALID] + \
        [m for m in chosen if m not in FINAL and m not in VALID] + \
        [m for m in chosen if m in FINAL][:1]
    tags, data = [], files[target]
    for m in chosen:
        data, tag = m(rng, data, ctx)
        tags.append(tag)
    out = {k: _join(v, header).encode() for k, v in files.items()}
    out[target] = data if isinstance(data, bytes) else _join(data, header).encode()
    expected = "garbage" if "garbage" in tags else "either" if "either" in tags else "valid"
    return out["ref"], out["pred"], expected, [m.__name__[2:] for m in chosen]


def run_case(folder: Path, suite: str, ref: bytes, pred: bytes) -> tuple[str, str]:
    """Score one pair in ``folder``: ("ok" | "error" | "traceback" | "warning", detail)."""
    (folder / "ref" / "a.csv").write_bytes(ref)
    (folder / "pred" / "a.csv").write_bytes(pred)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            score_folders(folder / "pred", folder / "ref", suite)
        except SeldbenchError as exc:
            outcome = ("error", str(exc))
        except Exception as exc:  # noqa: BLE001 - what the fuzz is looking for
            return "traceback", "".join(traceback.format_exception_only(type(exc), exc)).strip()
        else:
            outcome = ("ok", "")
    if caught:
        return "warning", f"{caught[0].category.__name__}: {caught[0].message}"
    return outcome


def fuzz(suite: str, cases: int, seed: int, folder: Path) -> dict:
    """Run ``cases`` cases of ``suite``; counts and the first few examples of each problem."""
    for sub in ("ref", "pred"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, SUITES.index(suite)])
    counts, examples = Counter(), {}
    for _ in range(cases):
        ref, pred, expected, names = make_case(rng, suite)
        outcome, detail = run_case(folder, suite, ref, pred)
        counts[expected] += 1
        problem = {"traceback": "tracebacks", "warning": "warnings"}.get(outcome)
        if outcome == "ok" and expected == "garbage":
            problem = "garbage accepted"
        elif outcome == "error" and expected == "valid":
            problem = "valid rejected"
        if problem:
            counts[problem] += 1
            examples.setdefault(problem, []).append((names, detail, ref[:200], pred[:200]))
    return {"counts": counts, "examples": examples}


PROBLEMS = ("tracebacks", "garbage accepted", "valid rejected", "warnings")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10000, help="cases per suite")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--suites", default=",".join(SUITES))
    args = ap.parse_args()
    print(f"{'suite':<10} {'cases':>6} {'garbage':>8} {'valid':>6} {'either':>7} "
          + " ".join(f"{p:>16}" for p in PROBLEMS) + f" {'seconds':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for suite in args.suites.split(","):
            t0 = time.perf_counter()
            res = fuzz(suite, args.cases, args.seed, Path(tmp) / suite)
            c = res["counts"]
            print(f"{suite:<10} {args.cases:>6} {c['garbage']:>8} {c['valid']:>6} {c['either']:>7} "
                  + " ".join(f"{c[p]:>16}" for p in PROBLEMS)
                  + f" {time.perf_counter() - t0:>8.1f}")
            for problem, found in res["examples"].items():
                for names, detail, ref, pred in found[:3]:
                    print(f"    {problem}: {names}: {detail[:300]!r}\n      ref {ref!r}\n"
                          f"      pred {pred!r}")


if __name__ == "__main__":
    main()
