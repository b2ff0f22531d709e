"""Leaderboard tables built from run records (``seldbench compare``).

One :class:`Table` per (dataset@version, split, metric suite): suites and splits are never
mixed in one table, and records of different dataset versions never share one either. A row
is one (model@version, config hash, recipe, device type, non-parity suite options) and
aggregates that configuration's runs over seeds:

- each figure: mean over seeds, and the sample standard deviation (``±``) when there are at
  least two seeds; a figure that is undefined (null) in any seed is undefined for the row;
- ``CI``: for the ranking figure, the mean half-width of the per-run 95% jackknife interval
  (the interval itself for a single seed);
- seed count, parameter count, and in the CSV the run ids and checkpoint hashes.

Rows are sorted by the suite's ranking figure (``rank_by``/``higher_is_better`` from the
registry); a suite the registry does not know keeps the records' order and the table says so.
Each table lists, as notes, the provenance that differs between its runs (package versions,
git revision, uncommitted changes, device, data hash, model selection), so a reader sees at
once whether two rows are comparable.
"""
from __future__ import annotations

import html
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from seldbench.errors import SeldbenchError, suggest
from seldbench.results.tables import fmt

#: columns identifying a row (one configuration run with several seeds)
ROW_KEY = ("model", "model_version", "config_hash", "recipe", "device", "options")
FORMATS = ("md", "csv", "html")


@dataclass
class Table:
    """One leaderboard: runs of one dataset version on one split scored by one metric suite.

    ``rows`` holds raw numbers in stored units (F and LR as fractions, angles in degrees),
    one row per configuration, already sorted: key columns (:data:`ROW_KEY`), ``rank``,
    ``seeds`` (distinct seeds), ``runs``, ``params``, per figure ``FIG`` (mean), ``FIG_std``,
    ``FIG_ci_half``, ``FIG_ci_lo``/``FIG_ci_hi`` (single-run rows only), and ``run_ids``,
    ``checkpoints``, ``seed_list`` (space-separated).
    """

    dataset: str
    dataset_version: str
    split: str
    suite: str
    figures: list[str]
    rank_by: str | None  # None: suite not registered, rows in record order
    higher_is_better: bool | None
    rows: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    view: str = ""  # e.g. "per class LE" for a class-wise table
    varying: dict[str, str] = field(default_factory=dict)  # ablation: header -> key path (column)

    @property
    def title(self) -> str:
        return (f"{self.dataset}@{self.dataset_version} · {self.split} · {self.suite}"
                + (f" · {self.view}" if self.view else ""))

    @property
    def ranking(self) -> str:
        if self.rank_by is None:
            return f"suite '{self.suite}' is not registered: rows in record order, not ranked"
        return (f"ranked by {self.rank_by} "
                f"({'higher' if self.higher_is_better else 'lower'} is better)")


# ----------------------------------------------------------------------------- building


def build_tables(records: Sequence[dict], dataset: str | None = None, suite: str | None = None,
                 split: str | None = None, registry=None, where: str = "run records",
                 models: Sequence[str] = (), classwise: str | None = None,
                 configs: Sequence[str] = (), ablation: bool = False) -> list[Table]:
    """Leaderboard tables from validated run records (see :mod:`seldbench.results.records`).

    ``classwise`` (a figure, e.g. ``"LE"``): per-class tables instead, one column
    ``FIG[class name]`` per class next to the suite's ranking figure and the overall ``FIG``;
    rows, seeds and ranking as in the overall table.

    ``configs``: only runs whose config hash starts with one of these prefixes. ``ablation``:
    the config keys whose values differ between the table's configurations become columns
    (:attr:`Table.varying`) instead of a note, so each row reads as what it changes.

    ``dataset``/``suite``/``split`` keep only matching records and suites; a filter that
    matches nothing raises :class:`SeldbenchError` ``<where>: ...`` listing what exists.
    Suites a run skipped (``{"skipped": reason}``) are left out of that run's rows. Tables
    come sorted by dataset, dataset version, split and suite.
    """
    if registry is None:
        from seldbench.registry import get_registry

        registry = get_registry()
    records, dup_notes = _dedupe(records)
    records = _filter(records, "dataset", dataset, lambda r: [r["dataset"]["name"]], where)
    for name in models:  # several models: the union of their records
        _filter(records, "model", name, lambda r: [r["model"]["name"]], where)
    if models:
        records = [r for r in records if r["model"]["name"] in set(models)]
    for prefix in configs:
        if records and not any(r["config_hash"].startswith(prefix) for r in records):
            known = sorted({r["config_hash"][:8] for r in records})
            raise SeldbenchError(f"{where}: no run with a config hash starting '{prefix}'; "
                                 f"there are {', '.join(known)}")
    if configs:
        records = [r for r in records if r["config_hash"].startswith(tuple(configs))]
    records = _filter(records, "split", split, lambda r: [r["split"]], where)
    records = _filter(records, "metric suite", suite, _scored_suites, where)

    groups: dict[tuple, list[dict]] = {}
    for rec in records:
        for name in _scored_suites(rec):
            if suite is None or name == suite:
                key = (rec["dataset"]["name"], rec["dataset"]["version"], rec["split"], name)
                groups.setdefault(key, []).append(rec)
    if classwise:
        groups = {key: [_classwise_record(r, key[3], classwise, registry, where) for r in recs]
                  for key, recs in groups.items()}
    tables = [_build_table(key, recs, registry, dup_notes, ablation)
              for key, recs in sorted(groups.items(), key=lambda kv: kv[0])]
    for t in tables:
        t.view = f"per class {classwise}" if classwise else ""
    return tables


def row_key(rec: dict, suite: str) -> tuple:
    """The values of :data:`ROW_KEY` of a record scored by ``suite``: the table row its runs
    pool into (``tuple(row[k] for k in ROW_KEY)`` of that row)."""
    options = rec["results"][suite]["options"]
    return (rec["model"]["name"], rec["model"]["version"], rec["config_hash"], rec["recipe"],
            rec["device"]["type"], json.dumps(options, sort_keys=True) if options else "")


def _classwise_record(rec: dict, suite: str, fig: str, registry, where: str) -> dict:
    """``rec`` with ``suite``'s figures replaced by the ranking figure, the overall ``fig`` and
    ``fig[class]`` per class (intervals alike)."""
    res = rec["results"][suite]
    rows = res.get("classwise") or []
    if not rows or any(fig not in row for row in rows):
        known = sorted({k for row in rows for k in row if k not in ("class", "interval")})
        raise SeldbenchError(f"{where}: run {rec['run_id']}: no per-class '{fig}' in suite "
                             f"'{suite}'" + (f" (per-class figures: {', '.join(known)})"
                                             if known else ""))
    try:
        names = list(registry.get_dataset(rec["dataset"]["name"]).classes)
    except SeldbenchError:  # a dataset this installation does not know: class numbers
        names = []
    try:
        rank_by = registry.get_metric_suite(suite).rank_by
    except SeldbenchError:
        rank_by = None
    keep = [f for f in dict.fromkeys((rank_by, fig)) if f and f in res["figures"]]
    figures = {f: res["figures"][f] for f in keep}
    interval = {f: res["interval"][f] for f in keep if f in res["interval"]}
    for row in rows:
        c = int(row["class"])
        col = f"{fig}[{names[c] if c < len(names) else c}]"
        figures[col] = row[fig]
        if fig in row.get("interval", {}):
            interval[col] = row["interval"][fig]
    return {**rec, "results": {**rec["results"],
                               suite: {**res, "figures": figures, "interval": interval}}}


def _scored_suites(rec: dict) -> list[str]:
    return [s for s, res in rec["results"].items() if "skipped" not in res]


def _filter(records: list[dict], what: str, wanted: str | None, values, where: str) -> list[dict]:
    if wanted is None:
        return records
    kept = [r for r in records if wanted in values(r)]
    if records and not kept:
        known = {v for r in records for v in values(r)}
        raise SeldbenchError(f"{where}: " + suggest(wanted, known, what)
                             .replace(f"unknown {what}", f"no run with {what}", 1))
    return kept


def _dedupe(records: Sequence[dict]) -> tuple[list[dict], list[str]]:
    """The same run found twice (e.g. in runs/ and in a copy) counts once."""
    seen, out = set(), []
    for rec in records:
        key = (rec["run_id"], rec["checkpoint"]["sha256"], rec["created"])
        if key not in seen:
            seen.add(key)
            out.append(rec)
    dropped = len(records) - len(out)
    notes = [f"{dropped} duplicate record(s) of the same run ignored"] if dropped else []
    return out, notes


def _suite_info(registry, suite: str, recs: list[dict]) -> tuple[list[str], str | None,
                                                                  bool | None]:
    present = list(dict.fromkeys(f for r in recs for f in r["results"][suite]["figures"]))
    try:
        spec = registry.get_metric_suite(suite)
    except SeldbenchError:
        return present, None, None
    figures = [f for f in spec.figures if f in present] + \
        [f for f in present if f not in spec.figures]
    return figures, spec.rank_by, spec.higher_is_better


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def _build_table(key: tuple, recs: list[dict], registry, dup_notes: list[str],
                 ablation: bool = False) -> Table:
    dataset, dversion, split, suite = key
    figures, rank_by, hib = _suite_info(registry, suite, recs)
    if rank_by is not None and rank_by not in figures:
        rank_by_missing = rank_by
        rank_by, hib = None, None
    else:
        rank_by_missing = None

    long = []
    for rec in recs:
        res = rec["results"][suite]
        row = {**dict(zip(ROW_KEY, row_key(rec, suite))), "seed": rec["seed"], "params": rec["model"]["params"], "run_id": rec["run_id"],
               "checkpoint": rec["checkpoint"]["sha256"], **_identity(rec)}
        for fig in figures:
            row[fig] = _num(res["figures"].get(fig))
            lo, hi = res["interval"].get(fig) or (None, None)
            row[f"{fig}_ci_lo"], row[f"{fig}_ci_hi"] = _num(lo), _num(hi)
        long.append(row)
    df = pd.DataFrame(long)
    lo_cols = [f"{f}_ci_lo" for f in figures]
    hi_cols = [f"{f}_ci_hi" for f in figures]
    half_cols = [f"{f}_ci_half" for f in figures]
    df[half_cols] = (df[hi_cols].to_numpy() - df[lo_cols].to_numpy()) / 2
    # group id = order of first appearance in the records
    df["group"] = df.groupby(list(ROW_KEY), sort=False, dropna=False).ngroup()
    g = df.groupby("group", sort=True)
    size = g.size()
    rows = g[list(ROW_KEY)].first()
    rows["runs"] = size
    rows["seeds"] = g["seed"].nunique()
    rows["params"] = g["params"].max()
    rows["run_ids"] = g["run_id"].agg(" ".join)
    rows["checkpoints"] = g["checkpoint"].agg(" ".join)
    rows["seed_list"] = g["seed"].agg(lambda s: " ".join(map(str, sorted(s))))
    pooled = {grp: _pooled(part) for grp, part in df.groupby("group", sort=True)}
    rows["pooled"] = [pooled[grp][0] for grp in rows.index]
    rows["pooled_detail"] = [pooled[grp][1] for grp in rows.index]
    # a value undefined in any seed is undefined for the row (no silent skipping)
    complete = g[figures + half_cols].count().eq(size, axis=0)
    means = g[figures + half_cols].mean().where(complete)
    stds = g[figures].std(ddof=1).where(complete[figures])
    stds.loc[size < 2] = np.nan  # a spread needs two seeds
    ends = g[lo_cols + hi_cols].first()
    ends.loc[size != 1] = np.nan  # the interval itself only for a single run
    stats = {}
    for fig in figures:
        stats.update({fig: means[fig], f"{fig}_std": stds[fig],
                      f"{fig}_ci_half": means[f"{fig}_ci_half"],
                      f"{fig}_ci_lo": ends[f"{fig}_ci_lo"], f"{fig}_ci_hi": ends[f"{fig}_ci_hi"]})
    rows = pd.concat([rows, pd.DataFrame(stats, index=rows.index)], axis=1)

    if rank_by is not None:
        rows = rows.sort_values(rank_by, ascending=not hib, na_position="last", kind="stable")
    rank = pd.Series(np.arange(1, len(rows) + 1), index=rows.index)  # group -> table row
    rows = rows.reset_index(drop=True)
    rows.insert(0, "rank", rank.to_numpy())

    notes = list(dup_notes)
    if rank_by_missing:
        notes.append(f"the runs have no '{rank_by_missing}' figure, the ranking figure of "
                     f"'{suite}': rows in record order, not ranked")
    row_of = dict(enumerate(rank.loc[df["group"]].astype(int).tolist()))  # record -> row
    notes += _provenance_notes(recs, row_of)
    varying = {}
    if ablation:
        flats = _config_flats(recs, registry)
        keys = _varying_keys(list(flats.values()))
        varying = dict(zip(_short_names(keys), keys))
        for k in keys:  # columns under the full key path: a short name may clash
            rows[k] = [flats[h].get(k, "absent") if h in flats else "n/a"
                       for h in rows["config_hash"]]
    else:
        notes += _config_notes(recs, row_of, registry)
    notes += _unlocalised_notes(recs, row_of, suite)
    for _, r in rows.iterrows():
        if r["pooled"]:
            notes.append(f"row {r['rank']} pools runs made with different "
                         f"{r['pooled_detail']}")
        if r["seeds"] < r["runs"]:
            notes.append(f"row {r['rank']}: {r['runs']} runs share {r['seeds']} seed(s) "
                         f"({r['seed_list']}); each run counts as a sample")
    return Table(dataset, dversion, split, suite, figures, rank_by, hib, rows, notes,
                 varying=varying)


#: what must be equal for runs to be pooled into one row without a flag: (column, name)
IDENTITY = (("data_hash", "data"), ("code", "code"), ("package_set", "packages"))


def _identity(rec: dict) -> dict:
    """The data, code and package identity of a run record (columns of the long table)."""
    git = rec.get("git")
    code = f"{git['revision'][:10]}{'+dirty' if git.get('dirty') else ''}" if git else "unknown"
    return {"data_hash": rec["dataset"]["data_hash"], "code": code,
            "package_set": json.dumps(rec.get("packages", {}), sort_keys=True)}


def _pooled(part: pd.DataFrame) -> tuple[str, str]:
    """``(flag, detail)`` of one row's runs: the identities that differ between them
    (``"data x2"``), and which seeds have which value; ``("", "")`` when all agree."""
    flags, details = [], []
    for col, name in IDENTITY:
        values = part[col].unique()
        if len(values) < 2:
            continue
        flags.append(f"{name} x{len(values)}")
        seeds = part.groupby(col, sort=False)["seed"].agg(lambda v: " ".join(map(str, sorted(v))))
        shown = "; ".join(f"{_short(name, v, values)}: seeds {seeds[v]}" for v in values)
        details.append(f"{name} ({shown})")
    return ", ".join(flags), "; ".join(details)


def _short(name: str, value: str, values) -> str:
    """A value as a note shows it: data hashes by prefix, a package set by the versions in it
    that differ from another set of the row."""
    if name == "data":
        return value[:8]
    if name == "packages":
        sets = [json.loads(v) for v in values]
        mine = json.loads(value)
        differ = sorted(k for k in set().union(*sets) if len({str(x.get(k)) for x in sets}) > 1)
        return " ".join(f"{k} {mine.get(k, 'absent')}" for k in differ)
    return value


def _rows_text(rows: Iterable[int]) -> str:
    rows = sorted(set(rows))
    return ("row " if len(rows) == 1 else "rows ") + ", ".join(map(str, rows))


def _flatten(d: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.dumps(v)
    return out


def _config_flats(recs: list[dict], registry) -> dict[str, dict[str, str]]:
    """Config hash -> its hashed config flattened to ``{key path: JSON value}``. For a model
    the registry knows, a key of its ``neutral_keys`` reads as its neutral value where the
    record predates it, so a row made before the key and one made after read alike."""
    from seldbench.config import hashed_config

    out = {}
    for rec in recs:
        if not isinstance(rec.get("config"), dict):
            continue
        model = rec.get("model")
        name = model.get("name") if isinstance(model, dict) else None
        neutral = registry.get_model(name).neutral_keys if name in registry.entries("model") \
            else {}
        flat = _flatten(hashed_config(rec["config"]))
        for key, value in neutral.items():  # absent before the key: its neutral value
            flat.setdefault(f"model.{key}", json.dumps(value))
        out[rec["config_hash"]] = flat
    return out


def _varying_keys(flats: list[dict[str, str]]) -> list[str]:
    keys = sorted({k for f in flats for k in f})
    return [k for k in keys if len({f.get(k, "absent") for f in flats}) > 1]


def _short_names(keys: list[str]) -> list[str]:
    """The shortest dotted suffix of each key path that no other key ends with."""
    out = []
    for k in keys:
        parts = k.split(".")
        for n in range(1, len(parts) + 1):
            name = ".".join(parts[-n:])
            if not any(o != k and (o == name or o.endswith("." + name)) for o in keys):
                break
        out.append(name)
    return out


def _config_notes(recs: list[dict], row_of: dict[int, int], registry, most: int = 12
                  ) -> list[str]:
    """For a model with several configurations in one table (an ablation), the config keys
    whose values differ between them, so a row can be read without opening its record."""
    by_model: dict[str, dict[str, int]] = {}
    for i, rec in enumerate(recs):
        by_model.setdefault(rec["model"]["name"], {}).setdefault(rec["config_hash"], row_of[i])
    all_flats = _config_flats(recs, registry)
    notes = []
    for model, rows in by_model.items():
        configs = {h: (row, all_flats[h]) for h, row in rows.items() if h in all_flats}
        if len(configs) < 2:
            continue
        flats = sorted(configs.values(), key=lambda rf: rf[0])
        diff = _varying_keys([f for _, f in flats])
        parts = [f"{k}: " + "; ".join(f"{f.get(k, 'absent')} (row {row})" for row, f in flats)
                 for k in diff[:most]]
        more = f" | and {len(diff) - most} more keys" if len(diff) > most else ""
        notes.append(f"{model} configurations differ in " + " | ".join(parts) + more)
    return notes


def _unlocalised_notes(recs: list[dict], row_of: dict[int, int], suite: str) -> list[str]:
    """Rows whose LE is the mean of per-class LEs (the macro suites, 2022/2023) and has
    classes with no localised detection, which count 180 degrees each: how many per seed, and
    the LE over the classes that were localised (a reader would otherwise take an LE above
    90 degrees for mirrored directions)."""
    per_row: dict[int, list[tuple[int, int, int, float]]] = {}
    for i, rec in enumerate(recs):
        res = rec["results"][suite]
        le, cw = res.get("figures", {}).get("LE"), res.get("classwise") or []
        values = [c.get("LE") for c in cw]
        if le is None or not values or any(v is None for v in values) \
                or abs(float(np.mean(values)) - float(le)) > 1e-6:
            continue  # not a mean over classes (micro LE, or no per-class figures)
        missing = [c for c in cw if c["LE"] == 180.0 and not c.get("LR")]
        kept = [c["LE"] for c in cw if c not in missing]
        per_row.setdefault(row_of[i], []).append(
            (rec["seed"], len(missing), len(cw), float(np.mean(kept)) if kept else math.nan))
    notes = []
    for row in sorted(per_row):
        found = sorted(per_row[row])
        if not any(n for _, n, _, _ in found):
            continue
        counts = ", ".join(str(n) for _, n, _, _ in found)
        seeds = ", ".join(str(s) for s, *_ in found)
        kept = [k for *_, k in found if not math.isnan(k)]
        over = (f"; over the classes it localises, LE {np.mean(kept):.1f}°" if kept else "")
        notes.append(f"row {row}: LE counts 180° for each class with no localised detection "
                     f"({counts} of {found[0][2]} classes, seed{'s' if len(found) > 1 else ''} "
                     f"{seeds}){over}")
    return notes


def _provenance_notes(recs: list[dict], row_of: dict[int, int]) -> list[str]:
    """What differs between the runs of a table, and provenance a reader must know about."""
    facets: list[dict[str, str]] = []
    for rec in recs:
        f = {f"{name}": version for name, version in rec["packages"].items()}
        for key in ("python", "platform"):
            if isinstance(rec.get(key), str):
                f[key] = rec[key]
        git = rec["git"]
        f["git revision"] = git["revision"][:10] if git else "unknown"
        dev = rec["device"]
        name = dev.get("name") or dev["type"]
        f["device"] = f"{name} x{dev['count']}" if dev.get("count", 1) > 1 and \
            dev["type"] != "cpu" else str(name)
        f["data hash"] = rec["dataset"]["data_hash"][:12] or "none"
        sel = rec["selection"]
        f["model selection"] = f"{sel['split']} {sel['suite']} {sel['figure']}"
        facets.append(f)
    names = list(dict.fromkeys(k for f in facets for k in f))
    notes = []
    differing = []
    for name in names:
        by_value: dict[str, list[int]] = {}
        for i, f in enumerate(facets):
            by_value.setdefault(f.get(name, "absent"), []).append(row_of[i])
        if len(by_value) > 1:
            differing.append(f"{name}: " + "; ".join(
                f"{value} ({_rows_text(rows)})"
                for value, rows in sorted(by_value.items(), key=lambda kv: min(kv[1]))))
    if differing:
        notes.append("provenance differs between runs: " + " | ".join(differing))
    elif len(recs) > 1:
        notes.append("all runs share package versions, git revision, device and data hash")
    dirty = [row_of[i] for i, r in enumerate(recs) if r["git"] and r["git"]["dirty"]]
    if dirty:
        notes.append(f"uncommitted changes in the working tree: {_rows_text(dirty)}")
    no_git = [row_of[i] for i, r in enumerate(recs) if not r["git"]]
    if no_git:
        notes.append(f"no git revision recorded: {_rows_text(no_git)}")
    on_test = [row_of[i] for i, r in enumerate(recs) if r["selection"]["val_is_test"]]
    if on_test:
        notes.append(f"best epoch chosen on the reported split (val is test), scores are "
                     f"optimistic: {_rows_text(on_test)}")
    return notes


# ----------------------------------------------------------------------------- rendering


def _params(n) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "n/a"
    n = int(n)
    if n >= 100_000:
        return f"{n / 1e6:.2f} M"
    if n >= 1_000:
        return f"{n / 1e3:.1f} k"
    return str(n)


def _cell(fig: str, row: pd.Series) -> str:
    mean = row[fig]
    cell = fmt(fig, None if pd.isna(mean) else float(mean))
    std = row[f"{fig}_std"]
    if not pd.isna(std) and not pd.isna(mean):
        cell += f" ± {fmt(fig, float(std))}"
    return cell


def _ci_cell(fig: str, row: pd.Series) -> str:
    lo, hi, half = row[f"{fig}_ci_lo"], row[f"{fig}_ci_hi"], row[f"{fig}_ci_half"]
    if row["runs"] == 1 and not (pd.isna(lo) or pd.isna(hi)):
        return f"[{fmt(fig, float(lo))}, {fmt(fig, float(hi))}]"
    if not pd.isna(half):
        return f"±{fmt(fig, float(half))}"
    return "n/a"


def _display(table: Table) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of a table (Markdown and HTML)."""
    with_options = bool(table.rows["options"].astype(bool).any())
    ci_fig = table.rank_by or (table.figures[0] if table.figures else None)
    head = ["#", "model", "recipe", "device", "config"] + (["options"] if with_options else []) \
        + list(table.varying) + ["seeds", "params"] + list(table.figures) \
        + ([f"CI {ci_fig}"] if ci_fig else [])
    body = []
    for _, r in table.rows.iterrows():
        cells = [str(r["rank"]) if table.rank_by else "–", f"{r['model']}@{r['model_version']}",
                 r["recipe"], r["device"], r["config_hash"][:8]]
        cells += [r["options"]] if with_options else []
        cells += [_config_value(r[k]) for k in table.varying.values()]
        cells += [str(r["seeds"]) + (f" ({r['runs']} runs)" if r["runs"] != r["seeds"] else "")
                  + (f" ⚠ pooled: {r['pooled']}" if r["pooled"] else ""),
                  _params(r["params"])]
        cells += [_cell(f, r) for f in table.figures]
        cells += [_ci_cell(ci_fig, r)] if ci_fig else []
        body.append(cells)
    return head, body


def _config_value(text: str) -> str:
    """A config value as stored (JSON), strings without their quotes."""
    return text[1:-1] if len(text) > 1 and text[0] == text[-1] == '"' else text


def _legend(table: Table) -> str:
    ci_fig = table.rank_by or (table.figures[0] if table.figures else "")
    ranking = table.ranking[:1].upper() + table.ranking[1:]
    return (f"{ranking}. Mean over seeds, ± sample std (2+ seeds); "
            f"CI {ci_fig}: 95% jackknife interval, [lo, hi] for one run, else ± mean "
            "half-width. F and LR in %, angles in degrees; config = config hash.")


def to_markdown(tables: Sequence[Table]) -> str:
    """GitHub Markdown: a heading, a legend, the table and its notes per leaderboard."""
    def esc(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    out = []
    for t in tables:
        head, body = _display(t)
        out += [f"### {t.title}", "", _legend(t), ""]
        out.append("| " + " | ".join(map(esc, head)) + " |")
        text_cols = {"model", "recipe", "device", "config", "options"}
        out.append("|" + "|".join("---" if h in text_cols else "--:" for h in head) + "|")
        out += ["| " + " | ".join(map(esc, row)) + " |" for row in body]
        if t.notes:
            out.append("")
            out += [f"- {esc(n)}" for n in t.notes]
        out.append("")
    return "\n".join(out)


def to_csv(tables: Sequence[Table]) -> str:
    """One CSV of all tables with ``dataset``/``dataset_version``/``split``/``suite`` columns
    and raw numbers in stored units (F and LR as fractions, angles in degrees)."""
    frames = []
    for t in tables:
        df = t.rows.copy()
        df.insert(0, "suite", t.suite)
        df.insert(0, "split", t.split)
        df.insert(0, "dataset_version", t.dataset_version)
        df.insert(0, "dataset", t.dataset)
        df.insert(5, "rank_by", t.rank_by or "")
        df.insert(6, "higher_is_better", "" if t.higher_is_better is None
                  else str(t.higher_is_better).lower())
        frames.append(df)
    if not frames:
        return ""
    buf = io.StringIO()
    pd.concat(frames, ignore_index=True).to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


def to_html(tables: Sequence[Table]) -> str:
    """A small standalone HTML page with one section per leaderboard."""
    e = html.escape
    out = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">",
           "<title>seldbench leaderboard</title></head><body>"]
    for t in tables:
        head, body = _display(t)
        out += ["<section>", f"<h3>{e(t.title)}</h3>", f"<p>{e(_legend(t))}</p>", "<table>",
                "<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead>",
                "<tbody>"]
        out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in body]
        out += ["</tbody></table>"]
        if t.notes:
            out += ["<ul>"] + [f"<li>{e(n)}</li>" for n in t.notes] + ["</ul>"]
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


RENDERERS = {"md": to_markdown, "csv": to_csv, "html": to_html}


def compare(runs: str | os.PathLike | Sequence[str | os.PathLike], dataset: str | None = None,
            suite: str | None = None, split: str | None = "test", fmt: str = "md",
            models: Sequence[str] = (), classwise: str | None = None,
            configs: Sequence[str] = (), ablation: bool = False) -> tuple[str, list[Table]]:
    """``seldbench compare``: load the records under ``runs``, build and render the tables.

    No record under ``runs`` raises :class:`SeldbenchError` naming the folder(s).
    """
    from seldbench.results.records import RECORD_NAME, load_records

    if fmt not in RENDERERS:
        raise SeldbenchError(suggest(fmt, RENDERERS, "format"))
    folders = [runs] if isinstance(runs, (str, os.PathLike)) else list(runs)
    where = ", ".join(map(str, folders))
    for folder in folders:
        if not os.path.exists(folder):
            raise SeldbenchError(f"{folder}: runs folder does not exist; train with "
                                 "`seldbench run` or pass --runs")
    records = load_records(folders)
    if not records:
        raise SeldbenchError(f"{where}: no run records ({RECORD_NAME}) found; train with "
                             "`seldbench run` or pass --runs")
    tables = build_tables(records, dataset=dataset, suite=suite, split=split, where=where,
                          models=models, classwise=classwise, configs=configs,
                          ablation=ablation)
    if not tables:
        raise SeldbenchError(f"{where}: no scored metric suite in the matching run records")
    return RENDERERS[fmt](tables), tables
