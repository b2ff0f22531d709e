"""``seldbench board build``: a static leaderboard site built from run records.

The site opens from ``file://`` with no server and no network: plain HTML, one style sheet and
one small script (package data, copied to ``assets/``), pictures as inline SVG. Its layout::

    index.html                       every board, its canonical ranking at a glance
    assets/board.css, assets/board.js
    <board>/index.html               one board per (dataset@version, split, metric suite)
    <board>/<entry>.html             one page per row: per-class table and heatmap, learning
                                     curves, config diff, provenance, reproduction commands
    <board>/compare.html             two entries side by side (?a=<entry>&b=<entry>)

Rows and figures come from :func:`seldbench.results.leaderboard.build_tables` (the same rows,
means, spreads, intervals and pooled flags as ``seldbench compare``); per-class figures from
its per-class tables. Canonical rows are named by ``leaderboards/boards.yaml`` (``--canonical``)
or by grid files marked ``board: true`` (``--grid``); the others are shown as exploratory.
The output is byte-stable: no timestamps, fixed number formats, sorted inputs.
"""
from __future__ import annotations

import copy
import hashlib
import html
import json
import math
import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

from seldbench.errors import SeldbenchError
from seldbench.results.leaderboard import ROW_KEY, Table, _ci_cell, _params, build_tables, \
    row_key
from seldbench.results.tables import fmt

#: per-figure direction for colours and highlights (the suite only states its ranking figure's)
HIGHER_IS_BETTER = {"F", "LR"}
#: the site's own files, copied from package data
ASSETS = ("board.css", "board.js")
#: line colours of seeds in the learning curves
SEED_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
                "#17becf")

e = html.escape


# ----------------------------------------------------------------------------- canonical


@dataclass(frozen=True)
class Pick:
    """One canonical entry: rows of ``model`` whose config hash starts with ``config``, on
    ``device``, with ``recipe``, in ``dataset`` (each: any if empty)."""

    model: str
    config: str = ""
    device: str = ""
    dataset: str = ""
    recipe: str = ""
    label: str = ""
    source: str = ""

    def matches(self, dataset: str, row: pd.Series) -> bool:
        return (row["model"] == self.model and row["config_hash"].startswith(self.config)
                and (not self.device or row["device"] == self.device)
                and (not self.recipe or row["recipe"] == self.recipe)
                and (not self.dataset or dataset == self.dataset))


def read_canonical(path: str | os.PathLike) -> list[Pick]:
    """``boards.yaml``: ``canonical: {DATASET: [{model, config, device?, label?}, ...]}``."""
    from seldbench.config import load_yaml

    data, lines = load_yaml(path)
    canonical = data.get("canonical")
    if not isinstance(canonical, dict):
        raise SeldbenchError(f"{path}: expected 'canonical:' mapping dataset names to lists "
                             "of {model, config, device, label}")
    picks = []
    for dataset, entries in canonical.items():
        if not isinstance(entries, list):
            raise SeldbenchError(f"{path}:{lines.get(f'canonical.{dataset}', '?')}: "
                                 f"canonical.{dataset} must be a list of entries")
        for i, entry in enumerate(entries):
            where = f"{path}:{lines.get(f'canonical.{dataset}', '?')}: canonical.{dataset}[{i}]"
            picks.append(_pick(entry, where, dataset=str(dataset), source=str(path)))
    return picks


def _pick(entry, where: str, **extra) -> Pick:
    allowed = {"model", "config", "device", "label"}
    if not isinstance(entry, dict) or not isinstance(entry.get("model"), str):
        raise SeldbenchError(f"{where}: expected a mapping with at least 'model'")
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise SeldbenchError(f"{where}: unknown key '{unknown[0]}' (known: "
                             f"{', '.join(sorted(allowed))})")
    config = str(entry.get("config", ""))
    if config and not re.fullmatch(r"[0-9a-f]{6,64}", config):
        raise SeldbenchError(f"{where}: config '{config}' is not a config hash (6+ hex digits)")
    return Pick(entry["model"], config, str(entry.get("device", "")),
                label=str(entry.get("label", "")), **extra)


def read_grid(path: str | os.PathLike) -> list[Pick]:
    """The canonical entries of a grid file marked ``board: true`` (``seldbench grid``): each
    of its ``entries`` (``{model, config, recipe}``) in each of its ``datasets``. A row
    matches an entry by model and recipe (the record's ``output.recipe``: the entry's, else the
    grid's ``set``, else its experiment file's), and by config hash where ``config`` is one.
    Other keys (seeds, resources) are the grid's own."""
    from seldbench.config import load_yaml

    path = Path(path)
    data, lines = load_yaml(path)
    if data.get("board") is not True:
        raise SeldbenchError(f"{path}: not a board grid (no 'board: true'); only grids marked "
                             "as boards name canonical entries")

    def listed(*keys) -> list:
        for key in keys:
            if key in data:
                return data[key] if isinstance(data[key], list) else [data[key]]
        return []

    entries = data.get("entries")
    if entries is None:  # a grid that names models only
        entries = [{"model": m} for m in listed("models", "model")]
    where = f"{path}:{lines.get('entries', '?')}"
    if not isinstance(entries, list) or not entries:
        raise SeldbenchError(f"{where}: a board grid lists its entries "
                             "('entries: [{model, config, recipe}, ...]')")
    shared = [str(s).split("=", 1)[1] for s in listed("set")
              if str(s).startswith("output.recipe=")]
    datasets = [str(d) for d in listed("datasets", "dataset")] or [""]
    picks = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("model"), str):
            raise SeldbenchError(f"{where}: entries[{i}] must be a mapping with 'model'")
        config = str(entry.get("config") or "")
        recipe = entry.get("recipe") or (shared[-1] if shared else None)
        if config and not re.fullmatch(r"[0-9a-f]{6,64}", config):
            recipe = recipe or _experiment_recipe(path.parent / config, f"{where}: entries[{i}]")
            config = ""  # an experiment file: its rows are known by their recipe
        picks += [Pick(entry["model"], config, dataset=d, recipe=str(recipe or ""),
                       label=f"grid {path.name}", source=str(path)) for d in datasets]
    return picks


def _experiment_recipe(file: Path, where: str) -> str | None:
    """The ``output.recipe`` an experiment file (and the files it builds on) sets, if any."""
    from seldbench.config import experiment_layers

    if not file.is_file():
        raise SeldbenchError(f"{where}: config file {file} not found")
    recipe = None
    for _, layer, _ in experiment_layers(file):
        out = layer.get("output")
        if isinstance(out, dict) and out.get("recipe"):
            recipe = str(out["recipe"])
    return recipe


# ----------------------------------------------------------------------------- model


@dataclass
class Entry:
    """One row of a board with the records it pools and what its page shows."""

    id: str
    row: pd.Series
    runs: list[tuple[Path, dict]]
    canonical: str | None = None  # the pick's label ("" when unlabelled), None: exploratory
    classwise: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    # figure -> class name -> (mean, std)
    differs: str = ""  # the config keys that set it apart from rows of the same recipe

    @property
    def name(self) -> str:
        return f"{self.row['model']}@{self.row['model_version']}"


@dataclass
class Board:
    id: str
    table: Table
    entries: list[Entry]
    suite_version: str
    classes: list[str]

    @property
    def figure_label(self) -> str:
        return f"{self.table.suite} v{self.suite_version}" if self.suite_version else \
            self.table.suite


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def _entry_id(row: pd.Series) -> str:
    digest = hashlib.sha256(json.dumps([str(row[k]) for k in ROW_KEY]).encode()).hexdigest()
    return _slug(f"{row['model']}-{row['config_hash'][:8]}-{row['device']}-{digest[:6]}")


def build_boards(found: Sequence[tuple[Path, dict]], picks: Sequence[Pick] = (),
                 registry=None) -> list[Board]:
    """The boards of validated records ``(path, record)``: the rows of
    :func:`build_tables` (test and other splits alike), each with its runs and per-class
    figures, canonical where a pick matches."""
    if registry is None:
        from seldbench.registry import get_registry

        registry = get_registry()
    records = [rec for _, rec in found]
    boards = []
    for table in build_tables(records, split=None, registry=registry):
        key = (table.dataset, table.dataset_version, table.split, table.suite)
        mine = [(p, r) for p, r in found if (r["dataset"]["name"], r["dataset"]["version"],
                                              r["split"]) == key[:3]
                and table.suite in r["results"] and "skipped" not in r["results"][table.suite]]
        entries = []
        for _, row in table.rows.iterrows():
            rk = tuple(row[k] for k in ROW_KEY)
            runs = [(p, r) for p, r in mine if row_key(r, table.suite) == rk]
            runs.sort(key=lambda pr: (pr[1]["seed"], str(pr[0])))
            hit = next((pk for pk in picks if pk.matches(table.dataset, row)), None)
            entries.append(Entry(_entry_id(row), row, runs,
                                 None if hit is None else (hit.label or "")))
        classes = _add_classwise(table, mine, entries, registry)
        _add_differences(entries, registry)
        try:
            version = registry.get_metric_suite(table.suite).version
        except SeldbenchError:
            version = ""
        boards.append(Board(_slug("-".join(key)), table, entries, version, classes))
    return boards


def _add_differences(entries: list[Entry], registry) -> None:
    """Rows of one model, recipe and device that differ only by config hash read the same on
    the board: name the config keys whose values set each apart (as ``compare --ablation``)."""
    from seldbench.results.leaderboard import _config_flats, _config_value, _short_names, \
        _varying_keys

    groups: dict[tuple, list[Entry]] = {}
    for en in entries:
        groups.setdefault((en.row["model"], en.row["recipe"], en.row["device"]), []).append(en)
    for group in groups.values():
        if len({en.row["config_hash"] for en in group}) < 2:
            continue
        flats = _config_flats([en.runs[0][1] for en in group if en.runs], registry)
        keys = _varying_keys(list(flats.values()))
        for en in group:
            flat = flats.get(en.row["config_hash"], {})
            en.differs = "; ".join(f"{short}={_config_value(flat.get(k, 'absent'))}"
                                   for short, k in zip(_short_names(keys), keys))


def _add_classwise(table: Table, found, entries: list[Entry], registry) -> list[str]:
    """Per-class means and spreads of each entry, from the per-class tables of
    :func:`build_tables`; returns the class names in order."""
    suite = table.suite
    recs = [r for _, r in found if r["results"][suite].get("classwise")]
    figs = [f for f in dict.fromkeys(k for r in recs for row in r["results"][suite]["classwise"]
                                     for k in row) if f not in ("class", "interval")]
    by_key = {tuple(en.row[k] for k in ROW_KEY): en for en in entries}
    classes: list[str] = []
    for fig in figs:
        have = [r for r in recs if all(fig in row for row in r["results"][suite]["classwise"])]
        if not have:
            continue
        for t in build_tables(have, dataset=table.dataset, suite=suite, split=table.split,
                              classwise=fig, registry=registry):
            if t.dataset_version != table.dataset_version:
                continue
            cols = [c for c in t.figures if c.startswith(f"{fig}[")]
            for c in cols:
                name = c[len(fig) + 1:-1]
                if name not in classes:
                    classes.append(name)
            for _, row in t.rows.iterrows():
                en = by_key.get(tuple(row[k] for k in ROW_KEY))
                if en is not None:
                    en.classwise[fig] = {c[len(fig) + 1:-1]: (float(row[c]),
                                                              float(row[f"{c}_std"]))
                                         for c in cols}
    return classes


# ----------------------------------------------------------------------------- small pieces


def _v(value) -> str:
    """A raw number as a sort key (data-v); empty for undefined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{float(value):.6g}"


def _nan(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _mean_std(fig: str, mean: float, std: float) -> str:
    text = fmt(fig, None if _nan(mean) else mean)
    return text + (f" ± {fmt(fig, std)}" if not (_nan(std) or _nan(mean)) else "")


def _best(values: list[float], fig: str) -> float | None:
    ok = [v for v in values if not _nan(v)]
    if not ok:
        return None
    return max(ok) if fig in HIGHER_IS_BETTER else min(ok)


def _goodness(fig: str, value: float, lo: float, hi: float) -> float:
    """0 (worst) .. 1 (best) of ``value`` within ``[lo, hi]`` for the heatmap colours."""
    if _nan(value):
        return float("nan")
    t = 0.5 if hi <= lo else (value - lo) / (hi - lo)
    return t if fig in HIGHER_IS_BETTER else 1 - t


def _colour(t: float) -> str:
    """Red (0) through pale yellow to green (1); grey for undefined."""
    if _nan(t):
        return "#dddddd"
    stops = ((215, 48, 39), (254, 224, 139), (26, 152, 80))
    a, b, u = (stops[0], stops[1], t * 2) if t < 0.5 else (stops[1], stops[2], t * 2 - 1)
    return "#" + "".join(f"{round(x + (y - x) * u):02x}" for x, y in zip(a, b))


def _page(title: str, body: list[str], depth: int, scripts: str = "") -> str:
    up = "../" * depth
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        f'<link rel="stylesheet" href="{up}assets/board.css">', "</head><body>",
        f'<nav><a href="{up}index.html">seldbench leaderboards</a></nav>', "<main>",
        *body, "</main>", scripts, f'<script src="{up}assets/board.js"></script>',
        "</body></html>", ""])


def _ci_bounds(fig: str, row: pd.Series) -> tuple[float, float]:
    """The 95% jackknife interval drawn for a row: the interval of a single run, else the mean
    ± mean half-width over seeds."""
    if row["runs"] == 1 and not (_nan(row[f"{fig}_ci_lo"]) or _nan(row[f"{fig}_ci_hi"])):
        return float(row[f"{fig}_ci_lo"]), float(row[f"{fig}_ci_hi"])
    half = row[f"{fig}_ci_half"]
    if _nan(half) or _nan(row[fig]):
        return float("nan"), float("nan")
    return float(row[fig]) - float(half), float(row[fig]) + float(half)


def _interval_svg(lo: float, hi: float, mean: float, axis: tuple[float, float],
                  width: int = 110, height: int = 14) -> str:
    """A small bar from ``lo`` to ``hi`` with a tick at ``mean`` on the shared ``axis``."""
    a, b = axis
    if _nan(lo) or _nan(hi) or b <= a:
        return ""

    def x(v: float) -> str:
        return f"{2 + (width - 4) * (v - a) / (b - a):.1f}"

    mid = height / 2
    return (f'<svg class="ci" width="{width}" height="{height}" role="img" '
            f'aria-label="95% interval">'
            f'<line x1="2" x2="{width - 2}" y1="{mid}" y2="{mid}" class="axis"/>'
            f'<rect x="{x(lo)}" y="{mid - 3}" width="{float(x(hi)) - float(x(lo)):.1f}" '
            f'height="6" class="bar"/>'
            + (f'<line x1="{x(mean)}" x2="{x(mean)}" y1="1" y2="{height - 1}" class="mean"/>'
               if not _nan(mean) else "") + "</svg>")


# ----------------------------------------------------------------------------- board page


def _board_table(board: Board, entries: list[Entry], tid: str, depth_link: str) -> list[str]:
    t = board.table
    ci_fig = t.rank_by or (t.figures[0] if t.figures else None)
    bounds = [_ci_bounds(ci_fig, en.row) for en in board.entries] if ci_fig else []
    ends = [v for pair in bounds for v in pair if not _nan(v)]
    axis = (min(ends), max(ends)) if ends else (0.0, 1.0)
    best = {f: _best([en.row[f] for en in entries], f) for f in t.figures}
    head = [("#", "num"), ("model", "text"), ("recipe", "text"), ("device", "text"),
            ("config", "text"), ("seeds", "num"), ("params", "num")]
    out = [f'<table class="board" id="{tid}"><thead><tr>']
    for name, kind in head:
        out.append(f'<th data-type="{kind}"><button class="sort">{e(name)}</button></th>')
    for f in t.figures:
        out.append(f'<th data-type="num" data-fig="{e(f)}"><button class="sort">{e(f)}'
                   f'</button><span class="ver">{e(board.figure_label)}</span></th>')
    if ci_fig:
        out.append(f'<th data-type="num"><button class="sort">CI {e(ci_fig)}</button>'
                   f'<span class="ver">95% jackknife</span></th>')
    out.append("</tr></thead><tbody>")
    for pos, en in enumerate(entries, 1):
        r = en.row
        label = f'<span class="label">{e(en.canonical)}</span>' if en.canonical else ""
        seeds = str(r["seeds"]) + (f" ({r['runs']} runs)" if r["runs"] != r["seeds"] else "")
        if r["pooled"]:
            seeds = (f'<details class="pooled"><summary>{e(seeds)} ⚠ pooled: '
                     f'{e(r["pooled"])}</summary>{e(r["pooled_detail"])}</details>')
        else:
            seeds = e(seeds)
        out.append(f'<tr data-model="{e(r["model"])}" data-recipe="{e(r["recipe"])}" '
                   f'data-device="{e(r["device"])}">')
        out += [f'<td data-v="{pos}">{pos}</td>',
                f'<td><a class="entry" href="{depth_link}{en.id}.html">{e(en.name)}</a>'
                f'{label}</td>',
                f'<td class="recipe">{e(r["recipe"])}'
                + (f'<span class="differs">{e(en.differs)}</span>' if en.differs else "")
                + "</td>", f'<td class="text">{e(r["device"])}</td>',
                f'<td class="text"><code>{e(r["config_hash"][:8])}</code></td>',
                f'<td data-v="{r["seeds"]}">{seeds}</td>',
                f'<td data-v="{_v(r["params"])}">{e(_params(r["params"]))}</td>']
        for f in t.figures:
            text = e(_mean_std(f, r[f], r[f"{f}_std"]))
            if best[f] is not None and not _nan(r[f]) and float(r[f]) == best[f]:
                text = f"<b>{text}</b>"
            out.append(f'<td data-v="{_v(r[f])}">{text}</td>')
        if ci_fig:
            lo, hi = _ci_bounds(ci_fig, r)
            out.append(f'<td data-v="{_v(r[ci_fig])}">{_interval_svg(lo, hi, r[ci_fig], axis)}'
                       f'<span class="ci-text">{e(_ci_cell(ci_fig, r))}</span></td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return out


def _filters(board: Board) -> list[str]:
    out = ['<form class="filters" onsubmit="return false">']
    for key, label in (("model", "model"), ("recipe", "recipe"), ("device", "device")):
        values = sorted({str(en.row[key]) for en in board.entries})
        out.append(f'<label>{label} <select data-filter="{key}"><option value="">all</option>'
                   + "".join(f'<option value="{e(v)}">{e(v)}</option>' for v in values)
                   + "</select></label>")
    out.append('<label>text <input type="search" data-filter="text" '
               'placeholder="filter rows"></label></form>')
    return out


def _legend(board: Board) -> str:
    t = board.table
    return (f"{t.ranking[:1].upper() + t.ranking[1:]}. Each figure is the mean over seeds "
            f"± sample std (2+ seeds); the best of each column is bold; the bar is the 95% "
            f"leave-one-file-out jackknife interval of {t.rank_by or 'the first figure'} "
            f"(one run: the interval; several: mean ± mean half-width) on an axis shared by "
            f"the rows. Figures are {board.figure_label} figures: other suites (versions) are "
            f"not comparable. F and LR in %, angles in degrees.")


def board_page(board: Board) -> str:
    t = board.table
    canonical = [en for en in board.entries if en.canonical is not None]
    explore = [en for en in board.entries if en.canonical is None]
    body = [f"<h1>{e(t.title)}</h1>", f'<p class="legend">{e(_legend(board))}</p>',
            '<p><a href="compare.html">Compare two entries</a></p>', *_filters(board)]
    if canonical:
        body += ["<h2>Canonical entries</h2>",
                 "<p>The chosen designs (<code>leaderboards/boards.yaml</code> or a grid "
                 "marked <code>board: true</code>), ranked among themselves.</p>",
                 *_board_table(board, canonical, "canonical", "")]
    body += [f"<h2>{'Exploratory runs' if canonical else 'All entries'}</h2>",
             "<p>Ablations, earlier designs and other recipes or devices.</p>" if canonical
             else "", *_board_table(board, explore, "exploratory", "")]
    if t.notes:
        body += ["<details class=\"notes\"><summary>Provenance notes</summary><ul>",
                 *[f"<li>{e(n)}</li>" for n in t.notes], "</ul></details>"]
    return _page(t.title, body, 1)


# ----------------------------------------------------------------------------- entry page


def _heatmap_svg(board: Board, en: Entry, figs: list[str]) -> str:
    classes = [c for c in board.classes if any(c in en.classwise[f] for f in figs)]
    cw, ch, left, top = 64, 20, 150, 22
    width, height = left + cw * len(figs) + 4, top + ch * len(classes) + 4
    out = [f'<svg class="heatmap" width="{width}" height="{height}" role="img" '
           f'aria-label="per-class heatmap">']
    for j, f in enumerate(figs):
        out.append(f'<text x="{left + cw * j + cw / 2:.1f}" y="15" text-anchor="middle">'
                   f'{e(f)}</text>')
    for j, f in enumerate(figs):
        vals = [en.classwise[f].get(c, (float("nan"), 0))[0] for c in classes]
        ok = [v for v in vals if not _nan(v)]
        lo, hi = (min(ok), max(ok)) if ok else (0.0, 1.0)
        for i, (c, v) in enumerate(zip(classes, vals)):
            x, y = left + cw * j, top + ch * i
            out.append(f'<rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" '
                       f'fill="{_colour(_goodness(f, v, lo, hi))}"><title>{e(c)} {e(f)} '
                       f'{e(fmt(f, None if _nan(v) else v))}</title></rect>')
            out.append(f'<text x="{x + (cw - 2) / 2:.1f}" y="{y + 14}" text-anchor="middle">'
                       f'{e(fmt(f, None if _nan(v) else v))}</text>')
    for i, c in enumerate(classes):
        out.append(f'<text x="{left - 6}" y="{top + ch * i + 14}" text-anchor="end">'
                   f'{e(c)}</text>')
    out.append("</svg>")
    return "".join(out)


def _same_everywhere(board: Board, en: Entry, figs: list[str]) -> str:
    """A note naming the figures that hold one value in every class (the suite computes them
    over all classes, e.g. dcase2023's ER), so a flat column does not read as a finding."""
    flat = [f for f in figs if len({_v(en.classwise[f].get(c, (float("nan"), 0))[0])
                                    for c in board.classes}) == 1 and len(board.classes) > 1]
    return (f" {', '.join(flat)}: the same in every class (the suite does not split "
            f"{'it' if len(flat) == 1 else 'them'} by class).") if flat else ""


def _curve_svg(title: str, series: list[tuple[int, list[tuple[float, float]]]], fig: str,
               width: int = 300, height: int = 180) -> str:
    """One small line chart: x = epoch, one line per seed."""
    pts = [p for _, s in series for p in s if not _nan(p[1])]
    if not pts:
        return ""
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if y1 <= y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    if x1 <= x0:
        x1 = x0 + 1
    left, right, top, bottom = 44, 8, 20, 24

    def sx(v):
        return left + (width - left - right) * (v - x0) / (x1 - x0)

    def sy(v):
        return top + (height - top - bottom) * (1 - (v - y0) / (y1 - y0))

    out = [f'<svg class="curve" width="{width}" height="{height}" role="img" '
           f'aria-label="{e(title)}"><text x="{width / 2}" y="13" text-anchor="middle" '
           f'class="title">{e(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{width - left - right}" '
           f'height="{height - top - bottom}" class="frame"/>']
    for v in (y0, y1):
        out.append(f'<text x="{left - 4}" y="{sy(v) + 4:.1f}" text-anchor="end">'
                   f'{e(fmt(fig, v) if fig else f"{v:.3g}")}</text>')
    for v in (x0, x1):
        out.append(f'<text x="{sx(v):.1f}" y="{height - 8}" text-anchor="middle">{v:g}</text>')
    for k, (seed, s) in enumerate(series):
        d = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s if not _nan(y))
        out.append(f'<polyline points="{d}" fill="none" stroke-width="1.5" '
                   f'stroke="{SEED_COLOURS[k % len(SEED_COLOURS)]}"><title>seed {seed}</title>'
                   f'</polyline>')
    out.append("</svg>")
    return "".join(out)


def _curves(en: Entry) -> list[str]:
    by_seed = [(r["seed"], r.get("train", {}).get("history") or []) for _, r in en.runs]
    if not any(h for _, h in by_seed):
        return ["<p>The records hold no training history.</p>"]
    charts = [_curve_svg("training loss", [(s, [(h["epoch"], _num(h.get("loss")))
                                                for h in hist]) for s, hist in by_seed], "")]
    figs = list(dict.fromkeys(k for _, hist in by_seed for h in hist for k in h.get("val", {})))
    for f in figs:
        charts.append(_curve_svg(f"validation {f}", [
            (s, [(h["epoch"], _num(h.get("val", {}).get(f))) for h in hist])
            for s, hist in by_seed], f))
    legend = " ".join(f'<span class="swatch" style="background:{SEED_COLOURS[k % 8]}"></span>'
                      f"seed {s}" for k, (s, _) in enumerate(by_seed))
    return [f'<p class="seeds">{legend}</p>', '<div class="charts">', *charts, "</div>"]


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def _defaults(rec: dict, registry) -> dict | None:
    """Today's resolved defaults of the record's model on its dataset (no experiment file, no
    --set), or None when this installation does not know the model or dataset."""
    from seldbench.config import resolve

    try:
        mspec = registry.get_model(rec["model"]["name"])
        dspec = registry.get_dataset(rec["dataset"]["name"])
    except SeldbenchError:
        return None
    cfg = resolve(dataset_yaml=dspec.config, model_yaml=mspec.config,
                  overrides=[f"dataset.name={dspec.name}"])
    # what `seldbench run` fills in when the files leave it open
    cfg["features"]["name"] = cfg["features"]["name"] or mspec.features[0]
    cfg["eval"]["suites"] = cfg["eval"]["suites"] or list(dspec.metric_suites)
    return cfg


def config_diff(rec: dict, registry) -> tuple[list[tuple[str, object, object]], bool]:
    """``([(key path, default, this run)], known)``: the hashed keys where the record's resolved
    config differs from today's defaults (``"absent"`` where one side lacks the key; an empty
    mapping in the defaults, such as CRATI's ``model.trunk``, compares whole); ``known`` is
    False when this installation does not know the model or dataset."""
    from seldbench.config import hashed_config

    base = _defaults(rec, registry)
    if base is None or not isinstance(rec.get("config"), dict):
        return [], False
    neutral = registry.get_model(rec["model"]["name"]).neutral_keys
    out: list[tuple[str, object, object]] = []

    def walk(a, b, prefix):
        for k in sorted(set(a) | set(b)):
            path = f"{prefix}{k}"
            if k not in a or k not in b:
                out.append((path, a.get(k, "absent"), b.get(k, "absent")))
            elif isinstance(a[k], dict) and a[k] and isinstance(b[k], dict):
                walk(a[k], b[k], path + ".")
            elif json.dumps(a[k], sort_keys=True) != json.dumps(b[k], sort_keys=True):
                out.append((path, a[k], b[k]))

    mine = copy.deepcopy(hashed_config(rec["config"]))
    for path, value in neutral.items():  # a record from before a neutral key: its value
        *parents, leaf = f"model.{path}".split(".")
        node = mine
        for p in parents:
            node = node.setdefault(p, {}) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.setdefault(leaf, value)
    walk(hashed_config(base), mine, "")
    return [d for d in out if d[0] != "dataset.name"], True


def _yaml_value(v) -> str:
    """A value as ``--set`` and a reader take it: strings bare, the rest as JSON (flow YAML)."""
    return v if isinstance(v, str) else json.dumps(v)


def reproduce_commands(en: Entry, registry, shown: dict[Path, str]) -> list[str]:
    """Shell lines that reproduce an entry: ``seldbench rerun`` of each record (at the record's
    revision), and ``seldbench run`` with the record's differences from today's defaults."""
    lines = []
    revs = sorted({r["git"]["revision"][:10] for _, r in en.runs if r.get("git")})
    if revs:
        lines.append(f"git checkout {revs[0]}   # the code of the record"
                     + (f" (other seeds: {', '.join(revs[1:])})" if len(revs) > 1 else ""))
    lines += [f"seldbench rerun {shlex.quote(shown[p])}" for p, _ in en.runs]
    rec = en.runs[0][1]
    diff, known = config_diff(rec, registry)
    if not known:
        return lines
    settable = [(k, v) for k, d, v in diff if d != "absent" and v != "absent"]
    sets = [f"--set {shlex.quote(f'{k}={_yaml_value(v)}')}" for k, v in settable]
    sets.append(f"--set {shlex.quote('output.recipe=' + rec['recipe'])}")
    seeds = sorted({r["seed"] for _, r in en.runs})
    head = f"seldbench run --model {rec['model']['name']} --dataset {rec['dataset']['name']}"
    cmd = " \\\n    ".join([head, *sets])
    if len(seeds) > 1:
        lines.append(f"# or from today's code and defaults:\nfor S in {' '.join(map(str, seeds))}"
                     f"; do\n  {cmd} \\\n    --seed $S\ndone")
    else:
        lines.append(f"# or from today's code and defaults:\n{cmd} \\\n    --seed {seeds[0]}")
    stale = [k for k, d, v in diff if d == "absent" or v == "absent"]
    if stale:
        lines.append(f"# today's defaults and this record differ in which keys exist "
                     f"({', '.join(stale)}): only the record's revision reproduces it")
    return lines


def _provenance(en: Entry, shown: dict[Path, str], link: dict[Path, str]) -> list[str]:
    head = ["seed", "record", "git revision", "device", "data hash", "wall time",
            "throughput", "peak memory", "best epoch"]
    out = ['<table class="plain"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head)
           + "</tr></thead><tbody>"]
    for path, r in en.runs:
        git = r.get("git")
        rev = (git["revision"][:10] + (" (uncommitted changes)" if git.get("dirty") else "")) \
            if git else "unknown"
        dev = r["device"]
        device = f"{dev.get('name') or dev['type']}" + \
            (f" x{dev['count']}" if dev.get("count", 1) > 1 else "")
        train = r.get("train", {})
        peaks = [f"{k.removeprefix('peak_').removesuffix('_gb').upper()} {v:.2f} GB"
                 for k, v in sorted(train.items()) if k.startswith("peak_")
                 and isinstance(v, (int, float))]
        wall = r.get("wall_time_s")
        speed = train.get("audio_s_per_s")
        cells = [str(r["seed"]), f'<a href="{e(link[path])}">{e(r["run_id"])}</a>', e(rev),
                 e(device), f'<code>{e(r["dataset"]["data_hash"][:12])}</code>',
                 e(f"{wall / 60:.1f} min" if isinstance(wall, (int, float)) else "n/a"),
                 e(f"{speed:.0f} s of audio/s" if isinstance(speed, (int, float)) else "n/a"),
                 e(", ".join(peaks) or "n/a"), str(r["selection"]["best_epoch"])]
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    names = sorted({k for _, r in en.runs for k in r.get("packages", {})})
    rows = []
    for name in names:
        vals = list(dict.fromkeys(str(r["packages"].get(name, "absent")) for _, r in en.runs))
        rows.append(f"<tr><td>{e(name)}</td><td>{e(' / '.join(vals))}</td></tr>")
    for key in ("python", "platform"):
        vals = list(dict.fromkeys(str(r.get(key, "n/a")) for _, r in en.runs))
        rows.append(f"<tr><td>{key}</td><td>{e(' / '.join(vals))}</td></tr>")
    out += ['<details><summary>Packages</summary><table class="plain"><tbody>', *rows,
            "</tbody></table></details>"]
    return out


def entry_page(board: Board, en: Entry, registry, shown: dict[Path, str],
               link: dict[Path, str]) -> str:
    t, r = board.table, en.row
    title = f"{en.name} · {t.title}"
    kind = (f"canonical entry{': ' + en.canonical if en.canonical else ''}"
            if en.canonical is not None else "exploratory entry")
    body = [f"<h1>{e(en.name)} <small>{e(r['config_hash'][:8])} · {e(r['device'])}</small></h1>",
            f'<p class="kind">{e(kind)} of <a href="index.html">{e(t.title)}</a> · '
            f'<a href="compare.html?a={en.id}">compare with another entry</a></p>',
            f"<p>recipe: {e(r['recipe'])}</p>"]
    if r["pooled"]:
        body.append(f'<p class="warn">⚠ pools runs made with different {e(r["pooled_detail"])}'
                    "</p>")
    # overall figures
    ci_fig = t.rank_by or (t.figures[0] if t.figures else None)
    body += ["<h2>Figures</h2>", f'<p class="legend">{e(board.figure_label)}; mean ± std over '
             f'{r["seeds"]} seed(s); per seed in order '
             f'{e(", ".join(str(x["seed"]) for _, x in en.runs))}.</p>',
             '<table class="plain"><thead><tr><th>figure</th><th>mean ± std</th>'
             "<th>95% interval</th><th>per seed</th></tr></thead><tbody>"]
    for f in t.figures:
        per = ", ".join(fmt(f, x["results"][t.suite]["figures"].get(f)) for _, x in en.runs)
        lo, hi = _ci_bounds(f, r)
        interval = "n/a" if _nan(lo) else f"[{fmt(f, lo)}, {fmt(f, hi)}]"
        strong = f == ci_fig
        cell = e(_mean_std(f, r[f], r[f"{f}_std"]))
        body.append(f"<tr><td>{e(f)}</td><td>{'<b>' + cell + '</b>' if strong else cell}</td>"
                    f"<td>{e(interval)}</td><td>{e(per)}</td></tr>")
    body.append("</tbody></table>")
    # per class
    figs = [f for f in t.figures if f in en.classwise] + \
        [f for f in en.classwise if f not in t.figures]
    body.append("<h2>Per class</h2>")
    if figs:
        body += ['<table class="plain classwise"><thead><tr><th>class</th>',
                 *[f"<th>{e(f)}</th>" for f in figs], "</tr></thead><tbody>"]
        for c in board.classes:
            cells = [e(_mean_std(f, *en.classwise[f].get(c, (float("nan"), float("nan")))))
                     for f in figs]
            body.append(f"<tr><td>{e(c)}</td>" + "".join(f"<td>{x}</td>" for x in cells)
                        + "</tr>")
        body += ["</tbody></table>",
                 '<p class="legend">Heatmap: each column from its worst class (red) to its best '
                 f"(green).{_same_everywhere(board, en, figs)}</p>", _heatmap_svg(board, en, figs)]
    else:
        body.append("<p>The records hold no per-class figures for this suite.</p>")
    body += ["<h2>Learning curves</h2>", *_curves(en)]
    # configuration
    diff, known = config_diff(en.runs[0][1], registry)
    body.append("<h2>Configuration</h2>")
    if not known:
        body.append("<p>This installation does not know the model or dataset: no defaults to "
                    "compare with.</p>")
    elif diff:
        body += [f"<p>Differences from today's defaults of {e(r['model'])} on "
                 f"{e(t.dataset)} (config hash <code>{e(r['config_hash'][:12])}</code>):</p>",
                 '<table class="plain"><thead><tr><th>key</th><th>default</th>'
                 "<th>this entry</th></tr></thead><tbody>",
                 *[f"<tr><td><code>{e(k)}</code></td><td>{e(_yaml_value(d))}</td>"
                   f"<td>{e(_yaml_value(v))}</td></tr>" for k, d, v in diff],
                 "</tbody></table>"]
    else:
        body.append("<p>The model's defaults, unchanged.</p>")
    body += ["<h2>Provenance</h2>", *_provenance(en, shown, link)]
    body += ["<h2>Reproduce</h2>",
             "<pre class=\"cmd\">" + e("\n".join(reproduce_commands(en, registry, shown)))
             + "</pre>"]
    body += ["<h2>Test predictions</h2>", *_trajectory(en, t.suite)]
    return _page(title, body, 1)


def _trajectory(en: Entry, suite: str) -> list[str]:
    """One test clip's azimuth and elevation, reference against prediction, from the first run
    folder (by seed) that kept its ``predictions/<suite>/`` (the data as ``plot`` reads it)."""
    from seldbench.results.plot import clip_tracks

    for path, rec in en.runs:
        if not (path.parent / "predictions" / suite).is_dir():
            continue
        try:
            stem, ref, pred, info = clip_tracks(path.parent, None, suite)
        except SeldbenchError as exc:
            return [f"<p>No trajectory drawn: {e(str(exc))}</p>"]
        return [f'<p class="legend">Clip {e(stem)} (seed {rec["seed"]}): azimuth and elevation '
                "per class over time, reference against prediction.</p>",
                _tracks_svg(ref, pred, info["classes"])]
    return ["<p>These run folders hold a run record only (<code>record.json</code>): the test "
            "predictions were not kept with them, so no clip trajectory is shown. A run folder "
            "that keeps <code>config.json</code> and <code>predictions/</code> beside its record "
            "gets one here (and <code>seldbench plot</code> works on it).</p>"]


#: class colours of the trajectories (matplotlib's tab20, as ``seldbench plot`` draws them)
CLASS_COLOURS = ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728",
                 "#ff9896", "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2",
                 "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5")


def _tracks_svg(ref, pred, classes: list[str], width: int = 380, height: int = 150) -> str:
    """A 2 x 2 grid of scatter plots: rows azimuth and elevation (degrees), columns reference
    and prediction, time on a shared axis."""
    end = max([0.1, *(float(t.time_s.max()) + 0.1 for t in (ref, pred) if len(t.time_s))])
    left, top, gap = 40, 18, 24
    out = [f'<svg class="tracks" width="{left + 2 * (width + gap)}" '
           f'height="{top + 2 * (height + gap) + 20}" role="img" aria-label="trajectories">']
    for col, (name, tr) in enumerate((("reference", ref), ("prediction", pred))):
        for row, (label, values, lim) in enumerate((("azimuth", tr.azimuth_deg, 180),
                                                    ("elevation", tr.elevation_deg, 90))):
            x0, y0 = left + col * (width + gap), top + row * (height + gap)
            out.append(f'<rect x="{x0}" y="{y0}" width="{width}" height="{height}" '
                       'class="frame" fill="none" stroke="#d0d7de"/>')
            if row == 0:
                out.append(f'<text x="{x0 + width / 2}" y="{y0 - 5}" text-anchor="middle">'
                           f"{name}: {len(tr.time_s)} rows</text>")
            if col == 0:
                out += [f'<text x="{x0 - 4}" y="{y0 + 10}" text-anchor="end">{lim}°</text>',
                        f'<text x="{x0 - 4}" y="{y0 + height}" text-anchor="end">-{lim}°</text>',
                        f'<text x="{x0 - 4}" y="{y0 + height / 2 + 4}" text-anchor="end">'
                        f"{label[:2]}</text>"]
            for t, c, v in zip(tr.time_s.tolist(), tr.cls.tolist(), values.tolist()):
                out.append(f'<circle cx="{x0 + width * t / end:.1f}" '
                           f'cy="{y0 + height * (lim - v) / (2 * lim):.1f}" r="1.6" '
                           f'fill="{CLASS_COLOURS[int(c) % len(CLASS_COLOURS)]}"/>')
    out.append(f'<text x="{left}" y="{top + 2 * (height + gap) + 10}">time 0 to {end:.1f} s'
               "</text></svg>")
    present = sorted(set(ref.cls.tolist()) | set(pred.cls.tolist()))
    legend = " ".join(f'<span class="swatch" style="background:'
                      f'{CLASS_COLOURS[int(c) % len(CLASS_COLOURS)]}"></span>'
                      f"{e(classes[c] if c < len(classes) else str(c))}" for c in present)
    return "".join(out) + f'<p class="seeds">{legend}</p>'


# ----------------------------------------------------------------------------- compare, index


def compare_page(board: Board) -> str:
    t = board.table
    data = {"figures": t.figures, "better": {f: f in HIGHER_IS_BETTER for f in t.figures},
            "classes": board.classes, "entries": []}
    for en in sorted(board.entries, key=lambda x: (x.canonical is None, int(x.row["rank"]))):
        data["entries"].append({
            "id": en.id, "canonical": en.canonical is not None,
            "label": f"{en.name} · {en.row['config_hash'][:8]} · {en.row['device']} · "
                     f"{en.row['recipe']}",
            "overall": {f: _cells(f, en.row[f], en.row[f"{f}_std"]) for f in t.figures},
            "classwise": {f: {c: _cells(f, *v) for c, v in per.items()}
                          for f, per in en.classwise.items()}})
    blob = json.dumps(data, sort_keys=True, ensure_ascii=False).replace("</", "<\\/")
    body = [f"<h1>Compare · {e(t.title)}</h1>",
            '<p class="legend">Two entries side by side: B − A per figure and class; green where '
            "B is better, red where it is worse (F and LR: higher is better; the rest lower).</p>",
            '<form class="filters" onsubmit="return false">',
            '<label>A <select id="cmp-a"></select></label>',
            '<label>B <select id="cmp-b"></select></label></form>',
            '<div id="cmp-out"></div>']
    script = f'<script type="application/json" id="compare-data">{blob}</script>'
    return _page(f"compare · {t.title}", body, 1, script)


def _cells(fig: str, mean: float, std: float) -> list:
    return [None if _nan(mean) else round(float(mean), 6), _mean_std(fig, mean, std)]


def index_page(boards: list[Board]) -> str:
    body = ["<h1>seldbench leaderboards</h1>",
            '<p class="legend">One board per dataset version, split and metric suite. Canonical '
            "entries are the chosen designs; every other run is on the board as exploratory. "
            "Built from run records by <code>seldbench board build</code>.</p>"]
    for b in boards:
        t = b.table
        canon = [en for en in b.entries if en.canonical is not None]
        show = canon or b.entries
        rank = t.rank_by
        body += [f'<section><h2><a href="{b.id}/index.html">{e(t.title)}</a></h2>',
                 f"<p>{e(t.ranking[:1].upper() + t.ranking[1:])} ({e(b.figure_label)}); "
                 f"{len(canon)} canonical and {len(b.entries) - len(canon)} exploratory "
                 f"entries.</p>",
                 '<table class="plain"><thead><tr><th>#</th><th>entry</th><th>recipe</th>'
                 + "".join(f"<th>{e(f)}</th>" for f in t.figures) + "<th>seeds</th>"
                 "</tr></thead><tbody>"]
        best = {f: _best([en.row[f] for en in show], f) for f in t.figures}
        for pos, en in enumerate(show, 1):
            cells = []
            for f in t.figures:
                text = e(_mean_std(f, en.row[f], en.row[f"{f}_std"]))
                bold = best[f] is not None and not _nan(en.row[f]) and en.row[f] == best[f]
                cells.append(f"<td>{'<b>' + text + '</b>' if bold else text}</td>")
            label = f" <span class=\"label\">{e(en.canonical)}</span>" if en.canonical else ""
            body.append(f'<tr><td>{pos}</td><td><a href="{b.id}/{en.id}.html">{e(en.name)}</a>'
                        f"{label}</td><td class=\"recipe\">{e(en.row['recipe'])}</td>"
                        + "".join(cells) + f"<td>{en.row['seeds']}</td></tr>")
        body += ["</tbody></table>", f'<p><a href="{b.id}/index.html">the whole board</a>'
                 f'{" (ranked by " + e(rank) + ")" if rank else ""} · '
                 f'<a href="{b.id}/compare.html">compare</a></p>', "</section>"]
    return _page("seldbench leaderboards", body, 0)


# ----------------------------------------------------------------------------- build


def build_site(runs: str | os.PathLike | Sequence[str | os.PathLike], out: str | os.PathLike,
               canonical: str | os.PathLike | None = None,
               grids: Sequence[str | os.PathLike] = (), registry=None) -> dict[str, int]:
    """``seldbench board build``: write the site for the records under ``runs`` to ``out``.

    ``canonical``: a ``boards.yaml``; ``grids``: grid files marked ``board: true``. Record
    links and commands name the records relative to the pages and to the working folder.
    Files are written atomically; those of an earlier build (listed in its ``.seldbench-board``)
    that this one does not write are removed. A non-empty ``out`` that is not a board is
    refused. Returns ``{relative path: bytes}`` of the files written.
    """
    from seldbench.io import atomic_write_text
    from seldbench.results.records import RECORD_NAME, load_record_files

    if registry is None:
        from seldbench.registry import get_registry

        registry = get_registry()
    folders = [runs] if isinstance(runs, (str, os.PathLike)) else list(runs)
    for folder in folders:
        if not os.path.exists(folder):
            raise SeldbenchError(f"{folder}: runs folder does not exist; pass --runs")
    found = load_record_files(folders)
    if not found:
        raise SeldbenchError(f"{', '.join(map(str, folders))}: no run records ({RECORD_NAME})")
    picks = (read_canonical(canonical) if canonical else []) + \
        [p for g in grids for p in read_grid(g)]
    boards = build_boards(found, picks, registry)
    out = Path(out)
    cwd = Path.cwd()
    shown = {p: _rel(p, cwd) for p, _ in found}
    pages: dict[str, str] = {"index.html": index_page(boards)}
    for b in boards:
        link = {p: Path(os.path.relpath(p.resolve(), (out / b.id).resolve())).as_posix()
                for p, _ in found}
        pages[f"{b.id}/index.html"] = board_page(b)
        pages[f"{b.id}/compare.html"] = compare_page(b)
        for en in b.entries:
            pages[f"{b.id}/{en.id}.html"] = entry_page(b, en, registry, shown, link)
    for name in ASSETS:
        pages[f"assets/{name}"] = resources.files("seldbench.results").joinpath(
            "board_assets", name).read_text(encoding="utf-8")
    previous = _previous_build(out)
    pages[MANIFEST] = "".join(f"{rel}\n" for rel in sorted(pages))
    for rel, text in pages.items():
        atomic_write_text(out / rel, text)
    for rel in previous - set(pages):
        # a page of a row that left would keep a dead entry on the site; only files an
        # earlier build listed are removed, never anything else in the folder
        (out / rel).unlink(missing_ok=True)
    return {rel: len(text.encode()) for rel, text in pages.items()}


#: the list of files a build wrote (so that the next build removes only its own stale pages)
MANIFEST = ".seldbench-board"


def _previous_build(out: Path) -> set[str]:
    """The files of an earlier build in ``out``; an empty or new folder has none. A folder
    holding anything else is refused: the build would mix its pages with the user's files."""
    if out.exists() and not out.is_dir():
        raise SeldbenchError(f"{out}: exists and is not a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return set()
    manifest = out / MANIFEST
    if not manifest.is_file():
        raise SeldbenchError(f"{out}: not empty and not a board site (no {MANIFEST}); "
                             "pass an empty or new folder to --out")
    listed = {line.strip() for line in manifest.read_text(encoding="utf-8").splitlines()}
    return {rel for rel in listed if rel and ".." not in Path(rel).parts
            and not Path(rel).is_absolute()}


def _rel(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


__all__ = ["Board", "Entry", "Pick", "build_boards", "build_site", "config_diff",
           "read_canonical", "read_grid", "reproduce_commands"]
