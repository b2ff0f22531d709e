"""Strict reading and writing of DCASE SELD CSV files (one row per frame and event; no header, but
for the 2025 layout, whose header line is required).

Layouts, by the number of fields in a row (which one a file may use depends on the suite):

========== ========================================================== ==================
name       fields                                                     used for
========== ========================================================== ==================
``fcae``   frame, class, azimuth_deg, elevation_deg                   2024 predictions
``fctae``  frame, class, source/track, azimuth_deg, elevation_deg     2021 references
``fctaed`` ... azimuth_deg, elevation_deg, distance (cm or m)         STARSS23 references
``fctxyz`` frame, class, track, x, y, z                               2021 predictions
``fctxyzd`` frame, class, track, x, y, z, distance_m                  2022-2024 predictions
``fctado`` header ``frame,class,source,azimuth,distance,onscreen``,  2025 references and
           then frame, class, source, azimuth_deg, distance_cm, 0/1    predictions
========== ========================================================== ==================

The official loaders dispatch on the field count row by row and silently drop rows with any
other count; here a file has one layout, and any bad row is a :class:`SeldbenchError`
``file:line: problem``. Blank lines carry nothing and are skipped; an empty file is a valid
file with no events.

:func:`read_many` reads a folder's files in one batch with the same result: files in the
plainest form are parsed by one compiled pass (:func:`seldbench.metrics.kernels.parse_plain_csv`)
and checked together; the rest, and any bad file, go through :func:`read_dcase_csv`.
"""
from __future__ import annotations

import codecs
import errno
import os
import re
import stat
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seldbench.errors import SeldbenchError, printable
from seldbench.io import atomic_open

LAYOUTS: dict[str, tuple[int, bool, bool]] = {
    # name: (fields, cartesian, has_track)
    "fcae": (4, False, False),
    "fctae": (5, False, True),
    "fctaed": (6, False, True),
    "fctxyz": (6, True, True),
    "fctxyzd": (7, True, True),
    "fctado": (6, False, True),
}
#: the header line the 2025 layout requires (the official loader skips line 1 unread)
HEADER_2025 = "frame,class,source,azimuth,distance,onscreen"


@dataclass
class EventTable:
    """The rows of one DCASE CSV file, in file order.

    ``coords`` is ``(N, 2)`` azimuth/elevation in degrees for polar layouts, ``(N, 3)``
    x/y/z for Cartesian ones and ``(N, 1)`` azimuth for ``fctado``; ``distance`` is ``(N,)`` in
    the file's unit, or None; ``onscreen`` is ``(N,)`` 0/1 for ``fctado``, else None.
    """

    path: str
    layout: str
    frame: np.ndarray  # (N,) int64, 100-ms label frames
    cls: np.ndarray  # (N,) int64
    track: np.ndarray  # (N,) int64; 0 where the layout has no track column
    coords: np.ndarray  # (N, 2) degrees or (N, 3) Cartesian, float64
    distance: np.ndarray | None  # (N,) float64
    line: np.ndarray  # (N,) 1-based line numbers, for messages
    onscreen: np.ndarray | None = None  # (N,) int64 0/1 (2025 layout only)

    @property
    def cartesian(self) -> bool:
        return LAYOUTS[self.layout][1]

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def empty(cls, path: str = "<empty>", layout: str = "fctaed") -> EventTable:
        k = 3 if LAYOUTS[layout][1] else 1 if layout == "fctado" else 2
        z = np.zeros(0, np.int64)
        dist = np.zeros(0) if layout in ("fctaed", "fctxyzd", "fctado") else None
        return cls(path, layout, z, z.copy(), z.copy(), np.zeros((0, k)), dist, z.copy(),
                   z.copy() if layout == "fctado" else None)

    def polar(self) -> np.ndarray:
        """``(N, 2)`` azimuth/elevation in degrees (``atan2`` of the Cartesian form if needed;
        elevation 0 for the azimuth-only ``fctado`` rows)."""
        if self.layout == "fctado":
            return np.concatenate([self.coords, np.zeros((len(self.coords), 1))], axis=1)
        if not self.cartesian:
            return self.coords
        return cartesian_to_polar(self.coords)


def concat_polar(tables: list[EventTable]) -> np.ndarray:
    """Azimuth/elevation (degrees) of the rows of several tables, converted in one pass."""
    if not tables:
        return np.zeros((0, 2))
    coords = [t.coords for t in tables]
    if all(t.cartesian for t in tables):
        return cartesian_to_polar(np.concatenate(coords))
    if not any(t.cartesian for t in tables):
        return np.concatenate(coords)
    return np.concatenate([t.polar() for t in tables])


def cartesian_to_polar(xyz: np.ndarray) -> np.ndarray:
    """``(N, 3)`` vectors (any length) -> ``(N, 2)`` azimuth, elevation in degrees."""
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    az = np.arctan2(y, x) * 180 / np.pi
    el = np.arctan2(z, np.sqrt(x**2 + y**2)) * 180 / np.pi
    return np.stack([az, el], axis=1)


def polar_to_cartesian(azel_deg: np.ndarray) -> np.ndarray:
    """``(N, 2)`` azimuth, elevation in degrees -> ``(N, 3)`` unit vectors."""
    az = azel_deg[:, 0] * np.pi / 180
    el = azel_deg[:, 1] * np.pi / 180
    c = np.cos(el)
    return np.stack([np.cos(az) * c, np.sin(az) * c, np.sin(el)], axis=1)


def _fail(path: str, line: int, problem: str) -> SeldbenchError:
    return SeldbenchError(f"{path}:{line}: {problem}")


#: what a field of a DCASE CSV may hold: ASCII digits, sign, point, exponent, nan/inf, and
#: spaces around it. Anything else (other controls, which Python's splitlines and float()
#: would take as line breaks or blanks, non-ASCII digits, underscores) is found in one search.
_NOT_CSV = re.compile(r"[^0-9eE+\-.,\n naiftyNAIFTY]")
_NUMBER = re.compile(r" *[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)? *|"
                     r" *[+-]?(nan|inf|infinity) *", re.IGNORECASE)
_WORD = re.compile(r" *[A-Za-z_][A-Za-z_ ]*")
#: integer fields (frame, class, track) beyond this are not exactly representable as floats
MAX_INT_FIELD = 2 ** 53


def check_regular_file(path: str | os.PathLike, what: str = "CSV") -> None:
    """Raise a one-line :class:`SeldbenchError` unless ``path`` is a readable regular file (or a
    symbolic link to one); never opens it, so a FIFO cannot block."""
    spath = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise SeldbenchError(f"{spath}: dangling symbolic link (to "
                                 f"'{os.readlink(path)}'), not a {what} file") from None
        raise SeldbenchError(f"{spath}: no such file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SeldbenchError(f"{spath}: symbolic link loop, not a {what} file") from None
        raise SeldbenchError(f"{spath}: cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise SeldbenchError(f"{spath}: is a folder, not a {what} file")
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else \
               "a socket" if stat.S_ISSOCK(st.st_mode) else "a device"
        raise SeldbenchError(f"{spath}: is {kind}, not a regular {what} file")


def _read_text(path: str | os.PathLike, spath: str) -> str:
    """The file as text: UTF-8 (ASCII in practice), a leading byte-order mark dropped."""
    check_regular_file(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SeldbenchError(f"{spath}: cannot read: {exc.strerror or exc}") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _fail(spath, line, f"byte 0x{data[exc.start]:02x} is not UTF-8 text; a DCASE CSV "
                    "is plain ASCII text (a binary file?)") from None


def _bad_character(ch: str) -> str:
    """How an unexpected character is named in a message."""
    code = f"U+{ord(ch):04X}"
    if ch == "\ufeff":
        return f"byte-order mark ({code}) inside the file"
    if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
        return f"control character '{printable(ch)}' ({code})"
    return f"character '{printable(ch)}' ({code})"


def _check_characters(text: str, spath: str) -> bool:
    """Reject controls (other than the \\n or \\r\\n line ends) and non-ASCII characters with
    their line. True if printable ASCII that cannot be part of a number (a letter, an
    underscore) was seen: the field checks name that field."""
    strange = False
    for m in _NOT_CSV.finditer(text):
        ch = m.group()[0]
        if ch.isascii() and ch.isprintable():
            strange = True
            continue
        line = text.count("\n", 0, m.start()) + 1
        raise _fail(spath, line, _bad_character(ch) + ("" if ch.isascii() else
                    "; a DCASE CSV holds ASCII numbers only"))
    return strange


def _is_word(tok: str) -> bool:
    """A field that is a name (as in a header row), not a number or nan/inf."""
    return bool(_WORD.fullmatch(tok)) and tok.strip().lower() not in ("nan", "inf", "infinity")


def _check_header(spath: str, lineno: int, line: str) -> None:
    """A first row of two or more fields, most of them names, is a header: say so."""
    toks = line.split(",")
    words = [k for k, tok in enumerate(toks) if _is_word(tok)]
    if len(toks) >= 2 and 2 * len(words) >= len(toks):
        raise _fail(spath, lineno, f"looks like a header row (field {words[0] + 1} "
                    f"'{printable(toks[words[0]].strip())}'); DCASE CSVs of these suites take no "
                    "header")


def _check_header_line(spath: str, text: str, header: str) -> str:
    """The text with its required header line (line 1, fields exactly ``header``'s, spaces
    around them allowed) blanked, so that line numbers stay those of the file."""
    first, newline, rest = text.partition("\n")
    if not first.strip() and not newline:
        raise _fail(spath, 1, f"no header line; a file of this suite starts with '{header}'")
    if [t.strip() for t in first.split(",")] != header.split(","):
        raise _fail(spath, 1, f"header '{printable(first.strip())}' is not '{header}'")
    return "\n" + rest


def read_dcase_csv(path: str | os.PathLike, layouts: Mapping[int, str],
                   num_classes: int | None = None, *, header: str | None = None,
                   positive_distance: bool = False) -> EventTable:
    """Read one DCASE CSV strictly.

    ``layouts`` maps an allowed field count to its layout name (e.g. ``{6: "fctaed"}``); every
    row of the file must have the same count. Lines end in ``\\n`` or ``\\r\\n``; a leading
    UTF-8 byte-order mark is dropped. Checks: no other control characters, numbers only, finite,
    integer frame, class and track (at most 2**53), frame >= 0, track >= 0, class in
    ``[0, num_classes)``, elevation in [-90, 90], Cartesian vectors of non-zero length.
    Cartesian vectors too long or short to square in float64 are scaled by a power of two,
    which keeps their direction exactly. With ``header`` line 1 must be that header (a file of
    only the header has no events); ``fctado`` rows also take an integer onscreen flag in
    {0, 1}, and with ``positive_distance`` a distance above 0.
    """
    spath = str(path)
    text = _read_text(path, spath)
    if "\r" in text:  # \r\n line ends; a lone \r is then a control character like any other
        text = text.replace("\r\n", "\n")
    if header is not None:
        _check_characters(text.partition("\n")[0], spath)
        text = _check_header_line(spath, text, header)
    strange = _check_characters(text, spath)
    rows = [(i + 1, ln) for i, ln in enumerate(text.split("\n")) if ln.strip()]
    if not rows:
        layout = next(iter(layouts.values()))
        return EventTable.empty(spath, layout)
    allowed = ", ".join(str(k) for k in sorted(layouts))
    nfields = rows[0][1].count(",") + 1
    if strange and header is None:
        _check_header(spath, *rows[0])
    if nfields not in layouts:
        raise _fail(spath, rows[0][0], f"{nfields} fields, expected {allowed}")
    layout = layouts[nfields]
    # Fast path: one vectorised parse; on any failure find the culprit row by row.
    counts = [ln.count(",") for _, ln in rows]
    if counts.count(nfields - 1) != len(counts):
        for (lineno, ln), c in zip(rows, counts):
            if c != nfields - 1:
                raise _fail(spath, lineno, f"{c + 1} fields, but the file's first row has {nfields}")
    try:
        if strange:  # numpy would take "1_0"
            raise ValueError
        values = np.array(",".join(ln for _, ln in rows).split(","), dtype=np.float64)
    except ValueError:
        for lineno, ln in rows:
            for k, tok in enumerate(ln.split(",")):
                if not _NUMBER.fullmatch(tok):
                    raise _fail(spath, lineno, f"field {k + 1} '{printable(tok.strip())}' is not "
                                "a number") from None
        # every field is a number by the pattern: parse them one by one
        values = np.array([float(t) for _, ln in rows for t in ln.split(",")], np.float64)
    values = values.reshape(len(rows), nfields)
    lines = np.array([lineno for lineno, _ in rows], dtype=np.int64)

    def first_bad(mask: np.ndarray, problem) -> None:
        if mask.any():
            i = int(np.argmax(mask))
            raise _fail(spath, int(lines[i]),
                        problem(i, lambda col: rows[i][1].split(",")[col].strip()))

    columns = _checked_columns(values, layout, num_classes, positive_distance, first_bad)
    return EventTable(spath, layout, *columns[:5], lines, columns[5])


def _checked_columns(values: np.ndarray, layout: str, num_classes: int | None,
                     positive_distance: bool, first_bad) -> tuple:
    """The checks of :func:`read_dcase_csv` on parsed rows ``values`` (rows x fields, any number
    of files), in its order, then the columns: frame, class, track, coords, distance, onscreen.
    ``first_bad(mask, problem)`` acts on the first row of a true ``mask``; ``problem(i, field)``
    words it, ``field(col)`` giving field ``col`` of row ``i`` as written."""
    nfields = values.shape[1]
    _, cartesian, has_track = LAYOUTS[layout]
    n = len(values)
    bad = ~np.isfinite(values)
    first_bad(bad.any(axis=1), lambda i, field: f"field {int(np.argmax(bad[i])) + 1} is "
              f"{field(int(np.argmax(bad[i])))}, not a finite number")
    stereo = layout == "fctado"
    int_cols = [0, 1, 2, 5] if stereo else [0, 1, 2] if has_track else [0, 1]
    ints = values[:, int_cols]
    nonint = ints != np.round(ints)
    first_bad(nonint.any(axis=1), lambda i, field: f"field "
              f"{int_cols[int(np.argmax(nonint[i]))] + 1} "
              f"'{field(int_cols[int(np.argmax(nonint[i]))])}' is not an integer")
    first_bad(values[:, 0] < 0, lambda i, field: f"negative frame {field(0)}")
    if num_classes is not None:
        first_bad((values[:, 1] < 0) | (values[:, 1] >= num_classes),
                  lambda i, field: f"class {field(1)} outside [0, {num_classes - 1}]")
    else:
        first_bad(values[:, 1] < 0, lambda i, field: f"negative class {field(1)}")
    if has_track:
        first_bad(values[:, 2] < 0, lambda i, field: f"negative track/source index {field(2)}")
    huge = ints > MAX_INT_FIELD
    first_bad(huge.any(axis=1), lambda i, field: f"field {int_cols[int(np.argmax(huge[i]))] + 1} "
              f"'{field(int_cols[int(np.argmax(huge[i]))])}' is too large for an index "
              "(beyond 2**53)")
    frame, cls = values[:, 0].astype(np.int64), values[:, 1].astype(np.int64)
    if has_track:
        track = values[:, 2].astype(np.int64)
        start = 3
    else:
        track = np.zeros(n, np.int64)
        start = 2
    if stereo:
        on = values[:, 5]
        first_bad((on != 0) & (on != 1), lambda i, field: f"onscreen {field(5)} is not 0 or 1")
        if positive_distance:
            first_bad(~(values[:, 4] > 0), lambda i, field: f"distance {field(4)} is not above 0 "
                      "(reference distances are in cm)")
        return (frame, cls, track, np.ascontiguousarray(values[:, 3:4]),
                np.ascontiguousarray(values[:, 4]), on.astype(np.int64))
    if cartesian:
        coords = values[:, start:start + 3]
        first_bad(~(coords != 0).any(axis=1),
                  lambda i, field: "zero-length Cartesian vector (0, 0, 0)")
        coords = _squarable(coords)
        dist = values[:, start + 3] if nfields > start + 3 else None
    else:
        coords = values[:, start:start + 2]
        el = coords[:, 1]
        first_bad((el < -90) | (el > 90),
                  lambda i, field: f"elevation {field(start + 1)} outside [-90, 90]")
        dist = values[:, start + 2] if nfields > start + 2 else None
    return (frame, cls, track, np.ascontiguousarray(coords),
            None if dist is None else np.ascontiguousarray(dist), None)


class _OffFastPath(Exception):
    """A row the batch checks of :func:`read_many` do not pass: the strict reader words it."""


def _off_fast_path(mask: np.ndarray, problem) -> None:
    if mask.any():
        raise _OffFastPath


def _read_plain(path: str | os.PathLike) -> bytes | None:
    """The bytes of a regular file, or None where anything is unusual (the strict reader then
    says what): opened without blocking, so a FIFO is seen for what it is, not waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        parts = [os.read(fd, 1 << 16)]
        while parts[-1]:
            parts.append(os.read(fd, 1 << 20))
        return b"".join(parts)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_many(paths, layouts: Mapping[int, str], num_classes: int | None = None, *,
              header: str | None = None, positive_distance: bool = False) -> list[EventTable]:
    """:func:`read_dcase_csv` of each of ``paths`` (same arguments), in one batch: the files in
    the plainest form (digits, ``-``, ``.``, commas, ``\\n`` line ends, the exact header line
    where one is required) are parsed by one compiled pass and checked by one vectorised pass
    over all their rows; any other file is read by :func:`read_dcase_csv`. The tables are
    identical to its; where any file is bad, the error is the one :func:`read_dcase_csv` raises
    for the first bad file of ``paths``.
    """
    paths = list(paths)
    kw = dict(num_classes=num_classes, header=header, positive_distance=positive_distance)
    try:
        return _read_batch(paths, layouts, **kw)
    except (SeldbenchError, _OffFastPath):
        return [read_dcase_csv(p, layouts, **kw) for p in paths]  # raises the first file's error


def _read_batch(paths: list, layouts: Mapping[int, str], num_classes: int | None,
                header: str | None, positive_distance: bool) -> list[EventTable]:
    from seldbench.metrics import kernels  # numba: imported when files are scored

    head = b"" if header is None else (header + "\n").encode()
    datas = [_read_plain(p) for p in paths]
    plain = [d is not None and d.startswith(head) for d in datas]
    buf = b"".join(d for d, ok in zip(datas, plain) if ok)
    sizes = np.array([len(d) for d, ok in zip(datas, plain) if ok], np.int64)
    ends = np.cumsum(sizes)
    body = ends - sizes + len(head)
    widest = max(layouts)
    allowed = np.zeros(widest + 1, np.bool_)
    allowed[list(layouts)] = True
    # rows: at most one a line end (and a last one), each of at least 2 * fields - 1 bytes
    capacity = min(buf.count(b"\n"), len(buf) // (2 * min(layouts) - 1)) + len(sizes) + 1
    values = np.empty((capacity, widest))
    lines = np.empty(capacity, np.int64)
    row_end = np.zeros(len(sizes), np.int64)
    nfields = np.zeros(len(sizes), np.int64)
    kernels.parse_plain_csv(np.frombuffer(buf, np.uint8), body, ends,
                            np.full(len(sizes), 2 if header else 1, np.int64), allowed, values,
                            lines, row_end, nfields)
    row_start = np.r_[0, row_end[:-1]] if len(sizes) else row_end
    tables: list = [None] * len(paths)
    fast = [i for i, ok in enumerate(plain) if ok]
    for nf in set(nfields.tolist()) - {0}:  # one pass per field count (a suite allows 1 or 2)
        group = np.flatnonzero(nfields == nf)
        if len(group) == len(sizes):
            rows = slice(0, int(row_end[-1]))
        else:
            rows = np.concatenate([np.arange(row_start[g], row_end[g]) for g in group])
        columns = _checked_columns(values[rows, :nf], layouts[nf], num_classes,
                                   positive_distance, _off_fast_path)
        stop = np.cumsum(row_end[group] - row_start[group])
        bounds = list(zip((stop - row_end[group] + row_start[group]).tolist(), stop.tolist()))
        frame, cls, track, coords, dist, on = columns
        line = lines[rows]
        for g, (a, b) in zip(group.tolist(), bounds):  # views of each file's rows
            tables[fast[g]] = EventTable(
                str(paths[fast[g]]), layouts[nf], frame[a:b], cls[a:b], track[a:b], coords[a:b],
                None if dist is None else dist[a:b], line[a:b], None if on is None else on[a:b])
    for i, t in enumerate(tables):
        if t is None:
            tables[i] = read_dcase_csv(paths[i], layouts, num_classes, header=header,
                                       positive_distance=positive_distance)
    return tables


def _squarable(xyz: np.ndarray) -> np.ndarray:
    """``(N, 3)`` vectors whose largest component is outside [2**-500, 2**500] scaled by a power
    of two into [0.5, 1) (exact, so their direction is unchanged), so that ``x**2 + y**2`` in the
    angle conversions neither overflows nor underflows; other rows are left bit for bit."""
    top = np.abs(xyz).max(axis=1)
    odd = (top > 2.0 ** 500) | (top < 2.0 ** -500)
    if not odd.any():
        return xyz
    xyz = xyz.copy()
    _, exp = np.frexp(top[odd])
    xyz[odd] = np.ldexp(xyz[odd], -exp[:, None])
    return xyz


def write_dcase_csv(path: str | os.PathLike, table: EventTable, decimals: int = 4) -> None:
    """Write ``table`` atomically in its layout (integers for frame/class/track)."""
    _, cartesian, has_track = LAYOUTS[table.layout]
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        for i in range(len(table)):
            fields = [str(int(table.frame[i])), str(int(table.cls[i]))]
            if has_track:
                fields.append(str(int(table.track[i])))
            fields += [_num(v, decimals) for v in table.coords[i]]
            if table.distance is not None:
                fields.append(_num(table.distance[i], decimals))
            fh.write(",".join(fields) + "\n")


def write_dcase2025_csv(path: str | os.PathLike, table: EventTable, decimals: int = 4) -> None:
    """Write an ``fctado`` table atomically: the header line, then integer frame, class,
    source and onscreen, azimuth (degrees) and distance (cm) with at most ``decimals`` decimals
    (``decimals=0`` rounds half to even, as the official writer's ``round``)."""
    if table.layout != "fctado":
        raise SeldbenchError(f"{table.path}: a {table.layout} table is not in the 2025 layout")
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(HEADER_2025 + "\n")
        for i in range(len(table)):
            fh.write(f"{int(table.frame[i])},{int(table.cls[i])},{int(table.track[i])},"
                     f"{_num(table.coords[i, 0], decimals)},"
                     f"{_num(table.distance[i], decimals)},{int(table.onscreen[i])}\n")


def _num(v: float, decimals: int) -> str:
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    s = f"{v:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def as_layout(table: EventTable, layout: str = "fctxyzd") -> EventTable:
    """A Cartesian prediction table in a Cartesian ``layout``: ``fctxyzd`` (2022-2024 suites)
    adds a zero distance column when the table has none, ``fctxyz`` (2021) drops it."""
    if layout not in ("fctxyz", "fctxyzd"):
        raise SeldbenchError(f"prediction layout '{layout}': only fctxyz and fctxyzd are written")
    dist = table.distance if table.distance is not None else np.zeros(len(table))
    return make_table(table.frame, table.cls, table.track, table.coords,
                      dist if layout == "fctxyzd" else None, layout=layout, path=table.path)


def as_stereo(table: EventTable, onscreen_deg: float = 45.0) -> EventTable:
    """Any table as an ``fctado`` (2025) table, for simulations and tests: the azimuth of its
    direction, its distance in cm (Cartesian prediction layouts hold metres: times 100; none:
    100 cm), and, where it has no onscreen flag, 1 when ``|azimuth| <= onscreen_deg``."""
    if table.layout == "fctado":
        return table
    az = table.polar()[:, :1]
    if table.distance is None:
        dist = np.full(len(table), 100.0)
    else:
        dist = table.distance * (100.0 if table.cartesian else 1.0)
    on = (np.abs(az[:, 0]) <= onscreen_deg).astype(np.int64)
    return EventTable(table.path, "fctado", table.frame, table.cls, table.track,
                      np.ascontiguousarray(az), dist, table.line, on)


def make_table(frame, cls, track, coords, distance=None, layout: str | None = None,
               path: str = "<memory>", onscreen=None) -> EventTable:
    """Build an :class:`EventTable` from arrays (e.g. decoder output); layout inferred (with
    ``onscreen``: ``fctado``, ``coords`` the azimuths and ``distance`` in cm)."""
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2:
        coords = coords.reshape(len(frame), -1)
    cart = coords.shape[1] == 3
    if layout is None:
        layout = "fctado" if onscreen is not None else \
                 ("fctxyzd" if distance is not None else "fctxyz") if cart else \
                 ("fctaed" if distance is not None else "fctae")
    n = len(frame)
    return EventTable(path, layout, np.asarray(frame, np.int64), np.asarray(cls, np.int64),
                      np.asarray(track, np.int64), coords,
                      None if distance is None else np.asarray(distance, np.float64),
                      np.arange(1, n + 1, dtype=np.int64),
                      None if onscreen is None else np.asarray(onscreen, np.int64))


__all__ = ["EventTable", "LAYOUTS", "HEADER_2025", "as_layout", "as_stereo", "read_dcase_csv",
           "read_many", "write_dcase_csv",
           "write_dcase2025_csv", "make_table",
           "cartesian_to_polar", "polar_to_cartesian"]
