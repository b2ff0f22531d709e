"""The ``seldbench`` command line: thin click commands that call the core and print results.

A :class:`~seldbench.errors.SeldbenchError` becomes one ``Error: ...`` line and exit code 2;
``SELDBENCH_TRACEBACK=1`` shows the traceback instead.
"""
from __future__ import annotations

import json
import logging
import os
import sys

import click

from seldbench.errors import SeldbenchError, printable


class UserError(click.ClickException):
    """Printed as one ``Error: ...`` line; exit code 2 (1 is kept for "checks found problems").
    Unprintable characters of the message (from file names or file contents) are escaped."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(printable(message))


def _log(message: str) -> None:
    """A progress, warning or problem line on stderr, unprintable characters escaped."""
    click.echo(printable(message), err=True)


class _Group(click.Group):
    """A click group that turns SeldbenchError into a one-line error."""

    def make_context(self, *args, **kwargs) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.ClickException as exc:
            exc.message = printable(exc.message)
            raise

    def invoke(self, ctx: click.Context):  # noqa: D401
        try:
            return super().invoke(ctx)
        except SeldbenchError as exc:
            if os.environ.get("SELDBENCH_TRACEBACK"):
                raise
            raise UserError(str(exc)) from None
        except click.ClickException as exc:  # click's usage errors quote arguments as typed
            exc.message = printable(exc.message)
            raise
        except (click.exceptions.Exit, click.exceptions.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # a bug: still one line, with the way to see more
            if os.environ.get("SELDBENCH_TRACEBACK"):
                raise
            raise UserError(
                f"internal error: {type(exc).__name__}: {exc} "
                "(run with SELDBENCH_TRACEBACK=1 for the traceback)") from None


class _SubGroup(_Group):
    pass


class _LogLines(logging.Handler):
    """Log records of seldbench and its plugins as plain stderr lines (escaped), so a dataset
    plugin's "generating ..." or "using the set at ..." reaches the user."""

    def emit(self, record: logging.LogRecord) -> None:
        _log(record.getMessage())


def _route_plugin_logs() -> None:
    for name in ("seldbench", "seldbench_plugins"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, _LogLines) for h in logger.handlers):
            logger.addHandler(_LogLines())
        logger.setLevel(logging.INFO)
        logger.propagate = False


@click.group(cls=_Group)
@click.version_option(package_name="seldbench")
def main() -> None:
    """seldbench: benchmark suite for sound event localization and detection."""
    _route_plugin_logs()


# ---------------------------------------------------------------- list


@main.command("list")
@click.argument("kind", required=False, type=click.Choice(["models", "datasets", "metrics", "features"]))
@click.argument("pattern", required=False, default="*")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def list_cmd(kind: str | None, pattern: str, as_json: bool) -> None:
    """List registered models, datasets, metric suites and features (PATTERN: shell glob)."""
    from seldbench.registry import get_registry, spec_summary

    reg = get_registry()
    kinds = {"models": "model", "datasets": "dataset", "metrics": "metric suite", "features": "feature"}
    chosen = [kind] if kind else list(kinds)
    out = {k: [{"name": n, "plugin": reg.plugin_of(kinds[k], n), **spec_summary(reg.get(kinds[k], n))}
               for n in reg.list(kinds[k], pattern)] for k in chosen}
    if as_json:
        _echo_json(out)
        return
    for k, rows in out.items():
        click.echo(f"{k}:")
        if not rows:
            click.echo("  (none)")
        for row in rows:
            caps = ", ".join(f"{key}={_fmt_cap(v)}" for key, v in row.items()
                             if key not in ("name", "version", "plugin"))
            click.echo(f"  {row['name']} {row['version']} [{row['plugin']}]  {caps}")


def _fmt_cap(v) -> str:
    return "/".join(map(str, v)) if isinstance(v, list) else str(v)


# ---------------------------------------------------------------- score


@main.command()
@click.option("--pred", "pred_dir", required=True, type=click.Path(), help="Folder of prediction CSVs.")
@click.option("--ref", "ref_dir", required=True, type=click.Path(), help="Folder of reference CSVs.")
@click.option("--suite", required=True, help="Metric suite, e.g. dcase2023 (see `seldbench list metrics`).")
@click.option("--classes", "num_classes", type=click.IntRange(min=1), default=None,
              help="Number of classes (default: the suite's).")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout.")
@click.option("--jackknife", is_flag=True, help="Leave-one-file-out 95% confidence intervals.")
@click.option("--no-last-frame-drop", is_flag=True,
              help="Non-parity: also score the last annotated reference frame.")
@click.option("--average", type=click.Choice(["macro", "micro"]), default=None,
              help="Class averaging, for suites that offer both (dcase2025; default macro).")
@click.option("--dataset", default=None,
              help="Name the classes as this dataset does (and take its class count).")
def score(pred_dir, ref_dir, suite, num_classes, as_json, jackknife, no_last_frame_drop,
          average, dataset) -> None:
    """Score a folder of DCASE prediction CSVs against reference CSVs (matched by file stem)."""
    from seldbench.metrics.score import score_folders

    names = None
    if dataset is not None:
        from seldbench.registry import get_registry

        names = list(get_registry().get_dataset(dataset).classes)
        if num_classes is not None and num_classes != len(names):
            raise UserError(f"--classes {num_classes}: dataset '{dataset}' has {len(names)} "
                            f"classes")
        num_classes = len(names)

    options = {"no_last_frame_drop": True} if no_last_frame_drop else {}
    if average == "micro":  # macro is every suite's parity default
        options["average"] = "micro"
    result = score_folders(pred_dir, ref_dir, suite, num_classes, jackknife, **options)
    for w in result.warnings:
        _log(f"Warning: {w}")
    if as_json:
        out = result.to_dict()
        if names:
            for row in out.get("classwise", []):
                row["name"] = names[row["class"]]
        _echo_json(out)
    else:
        from seldbench.results.tables import score_table

        click.echo(score_table(result, names))


# ---------------------------------------------------------------- run


def _experiment_options(command):
    """--model, --dataset, --config, --set: what resolves a run's config (run and cache)."""
    for option in reversed([
        click.option("--model", required=True, help="Model name (see `seldbench list models`)."),
        click.option("--dataset", required=True,
                     help="Dataset name (see `seldbench list datasets`)."),
        click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                     help="Experiment YAML merged over the defaults, dataset and model configs."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override a config key, e.g. --set train.epochs=5 (repeatable)."),
    ]):
        command = option(command)
    return command


@main.command("run")
@_experiment_options
@click.option("--seed", type=int, default=None, help="Random seed (config key `seed`).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Shortcut for --set train.epochs=N.")
@click.option("--root", type=click.Path(file_okay=False), default=None,
              help="Dataset folder (config key dataset.root; not part of the run's identity).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Runs folder (config key output.runs_dir).")
@click.option("--init-from", "init_from", type=click.Path(), default=None, metavar="RUN_DIR|CKPT",
              help="Start from a trained run's weights (config key train.init_from).")
@click.option("--quiet", is_flag=True, help="No progress bars or per-epoch lines.")
def run_cmd(model, dataset, config_file, overrides, seed, epochs, root, out, init_from,
            quiet) -> None:
    """Train MODEL on DATASET, predict and score the test split, write a run record.

    Re-running the same command resumes an interrupted run.
    """
    from seldbench.training.run import run

    overrides = list(overrides) + ([f"train.epochs={epochs}"] if epochs else []) + \
        ([f"dataset.root={root}"] if root else []) + \
        ([f"train.init_from={init_from}"] if init_from else [])
    record = run(model, dataset, config_file, overrides, seed, out, progress=not quiet,
                 log=_log)
    if record:  # under torchrun only rank 0 has the record
        from seldbench.results.tables import next_steps, record_table

        click.echo(record_table(record))
        if not quiet:
            _log(next_steps(record, out))


@main.command("rerun")
@click.argument("record", type=click.Path(exists=True))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key (e.g. where the data is: dataset.root=DIR).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Runs folder (config key output.runs_dir).")
@click.option("--quiet", is_flag=True, help="No progress bars or per-epoch lines.")
def rerun_cmd(record, overrides, out, quiet) -> None:
    """Train again what RECORD (a record.json or its run folder) describes.

    Same model, dataset, seed and resolved config; data and cache folders are this machine's.
    Prints whether the config hash is the record's and the figures side by side. Check out the
    record's git revision first for the same code.
    """
    from seldbench.training.run import rerun

    old, new = rerun(record, list(overrides), out, progress=not quiet,
                     log=_log)
    if not new:  # under torchrun only rank 0 has the record
        return
    for what, a, b in (("config", old["config_hash"], new["config_hash"]),
                       ("data", old["dataset"]["data_hash"], new["dataset"]["data_hash"])):
        click.echo(f"{what} {b[:8]}: " + ("the record's" if a == b
                                          else f"not the record's ({a[:8]})"))
    for suite, res in old["results"].items():
        figs = (res or {}).get("figures") or {}
        now = ((new["results"].get(suite) or {}).get("figures")) or {}
        if figs:
            from seldbench.results.tables import fmt  # F and LR in %, angles in degrees

            click.echo(f"{suite}: " + ", ".join(
                f"{k} {fmt(k, figs[k])} -> {fmt(k, now.get(k))}" for k in figs
                if isinstance(figs[k], (int, float))))


@main.command("cache")
@_experiment_options
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes computing the model's side inputs, clip by clip.")
def cache_cmd(model, dataset, config_file, overrides, workers) -> None:
    """Compute before training what `seldbench run` with the same options caches.

    That is the features of every split and the model's side inputs of every clip (CRATI: its
    frozen encoders' image tokens and text embeddings). Seeds started afterwards, together,
    then only read them.
    """
    from seldbench.training.warm_cache import warm_cache

    warm_cache(model, dataset, config_file, list(overrides), workers,
               log=_log)


# ---------------------------------------------------------------- predict, plot


@main.command()
@click.option("--checkpoint", "run_dir", required=True, type=click.Path(),
              help="Run folder <runs>/<dataset>/<model>/<run id> (best.pt, config.json...).")
@click.option("--audio", required=True, type=click.Path(),
              help="4-channel 24-kHz WAV, or a folder of them.")
@click.option("--video", default=None, type=click.Path(),
              help="360-degree MP4, or a folder of <stem>.mp4 (ignored by audio-only models).")
@click.option("--out", required=True, type=click.Path(),
              help="DCASE CSV to write (frame,class,track,x,y,z,distance_m), or a folder for "
                   "one <stem>.csv per WAV.")
def predict(run_dir, audio, video, out) -> None:
    """Predict the events of recordings with a trained run; write DCASE CSVs."""
    from pathlib import Path

    if Path(audio).is_dir():
        from seldbench.training.inference import predict_folder

        rows = predict_folder(run_dir, audio, out, video, log=_log)
        click.echo(f"{out}: {len(rows)} files, {sum(rows.values())} rows")
        return
    from seldbench.training.inference import predict_to_csv

    table = predict_to_csv(run_dir, audio, out, video)
    click.echo(f"{out}: {len(table)} rows, {len(set(table.frame.tolist()))} active frames")


@main.command()
@click.option("--run", "run_dir", required=True, type=click.Path(), help="Run folder.")
@click.option("--clip", default=None, help="Test clip stem (default: the first).")
@click.option("--suite", default="dcase2023", show_default=True,
              help="Which predictions/<suite> folder to plot.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG to write.")
def plot(run_dir, clip, suite, out) -> None:
    """Azimuth and elevation over time of one test clip: reference vs prediction (PNG)."""
    from seldbench.results.plot import plot_run

    stem = plot_run(run_dir, out, clip, suite)
    click.echo(f"{out}: {stem}")


# ---------------------------------------------------------------- compare


@main.command()
@click.option("--runs", "runs_dirs", multiple=True, default=("runs",), show_default=True,
              type=click.Path(), help="Folder searched recursively for record.json (repeatable).")
@click.option("--dataset", default=None, help="Only this dataset.")
@click.option("--suite", default=None, help="Only this metric suite.")
@click.option("--split", default="test", show_default=True, help="Only this split.")
@click.option("--model", "models", multiple=True,
              help="Only these models (repeatable), e.g. an ablation table of one model.")
@click.option("--config", "configs", multiple=True, metavar="HASH",
              help="Only runs whose config hash starts with HASH (repeatable).")
@click.option("--ablation", is_flag=True,
              help="Config keys that differ between the rows become columns (an ablation table).")
@click.option("--classwise", metavar="FIG", default=None,
              help="Per-class tables of figure FIG (e.g. F or LE) instead, one column per class.")
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "html"]), default="md",
              show_default=True, help="Output format.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write to FILE (atomically) instead of stdout.")
@click.option("--grid", "grid_file", type=click.Path(dir_okay=False), default=None,
              help="Only the records of this grid file's cells (under --runs if given, else "
                   "the grid's runs folder).")
def compare(runs_dirs, dataset, suite, split, models, configs, ablation, classwise, fmt,
            out, grid_file) -> None:
    """Leaderboard tables from run records: one per (dataset, split, metric suite)."""
    from seldbench.results.leaderboard import compare as compare_runs

    if grid_file:
        from seldbench.grid import load_cells, record_paths

        given = click.get_current_context().get_parameter_source("runs_dirs")
        if given == click.core.ParameterSource.COMMANDLINE and len(runs_dirs) > 1:
            raise UserError("--grid reads one runs folder: give at most one --runs")
        _, cells = load_cells(grid_file, runs_dirs[0]
                              if given == click.core.ParameterSource.COMMANDLINE else None)
        runs_dirs = record_paths(cells)
        if not runs_dirs:
            raise UserError(f"{grid_file}: none of its {len(cells)} cells is done yet")
    text, tables = compare_runs(runs_dirs, dataset, suite, split, fmt, models, classwise,
                                configs, ablation)
    if out:
        from seldbench.io import atomic_write_text

        atomic_write_text(out, text)
        _log(f"{out}: {len(tables)} table(s)")
    else:
        click.echo(text, nl=False)


# ---------------------------------------------------------------- board


@main.group(cls=_SubGroup)
def board() -> None:
    """The leaderboard as a static web site."""


@board.command("build")
@click.option("--runs", "runs_dirs", multiple=True, default=("runs",), show_default=True,
              type=click.Path(), help="Folder searched recursively for record.json (repeatable).")
@click.option("--canonical", type=click.Path(dir_okay=False), default=None,
              help="boards.yaml naming the canonical entries (default: "
                   "leaderboards/boards.yaml when it exists).")
@click.option("--grid", "grids", multiple=True, type=click.Path(dir_okay=False),
              help="Grid file marked `board: true`: its models/configs are canonical "
                   "(repeatable).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Folder to write the site to (index.html and one folder per board).")
def board_build(runs_dirs, canonical, grids, out) -> None:
    """Build the static leaderboard site from run records (opens from file://, no network)."""
    from seldbench.results.board import build_site

    if canonical is None and os.path.isfile(os.path.join("leaderboards", "boards.yaml")):
        canonical = os.path.join("leaderboards", "boards.yaml")
    sizes = build_site(runs_dirs, out, canonical, grids)
    pages = sum(1 for k in sizes if k.endswith(".html"))
    click.echo(f"{out}: {pages} pages, {sum(sizes.values()) / 1024:.0f} KiB", err=True)


# ---------------------------------------------------------------- grid


@main.group(cls=_SubGroup)
def grid() -> None:
    """Run grids of runs (datasets x models x configs x seeds) on Ray or Slurm."""


@grid.command("run")
@click.argument("grid_file", type=click.Path(dir_okay=False))
@click.option("--backend", type=click.Choice(["ray", "local", "slurm", "slurm-local"]),
              default="ray", show_default=True,
              help="ray: a local Ray cluster (or --address); local: one process per cell, "
                   "nothing to install; slurm: job arrays through submitit; slurm-local: the "
                   "same jobs as local processes.")
@click.option("--address", default=None,
              help="Join this Ray cluster (auto, or ray://host:port) instead of starting one.")
@click.option("--max-concurrent", type=click.IntRange(min=1), default=None,
              help="At most N cells at once (default: as many as the resources allow).")
@click.option("--retries", type=click.IntRange(min=0), default=2, show_default=True,
              help="Times a cell whose worker died is started again (it resumes).")
@click.option("--dry-run", is_flag=True, help="List the cells and their state; start nothing.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Runs folder (default: the grid's out:, else runs/).")
def grid_run(grid_file, backend, address, max_concurrent, retries, dry_run, out) -> None:
    """Run every cell of GRID_FILE not yet done; exit 1 when a cell failed.

    A cell is one `seldbench run` (same folder, record and resume); rerunning the grid
    skips finished cells and resumes interrupted ones.
    """
    from seldbench.grid import format_rows, load_cells, run_grid_file, status_rows

    if address and backend != "ray":
        raise UserError("--address is for --backend ray")
    if dry_run:
        _, cells = load_cells(grid_file, out)
        click.echo(format_rows(status_rows(cells, epochs=False)), nl=False)
        return
    import signal

    def _terminate(signum, frame):  # kill / a scheduler's stop: cancel the cells like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    summary = run_grid_file(grid_file, backend, address, max_concurrent, retries, out,
                            echo=lambda m: click.echo(m, err=True))
    ran = len(summary.done) - len(summary.skipped)
    click.echo(f"{grid_file}: {len(summary.done)}/{summary.total} cells done ({ran} now, "
               f"{len(summary.skipped)} before), {len(summary.failed)} failed"
               + (f", {sum(summary.retried.values())} worker(s) lost and retried"
                  if summary.retried else ""))
    for cell, error in summary.failed:
        click.echo(f"  failed {cell.name}: {error}")
    if summary.failed:
        click.get_current_context().exit(1)


@grid.command("status")
@click.argument("grid_file", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Runs folder (default: the grid's out:, else runs/).")
def grid_status(grid_file, out) -> None:
    """A table of GRID_FILE's cells: done, partial (epoch k of n), not started, failed."""
    from seldbench.grid import format_rows, load_cells, status_rows

    _, cells = load_cells(grid_file, out)
    click.echo(format_rows(status_rows(cells)), nl=False)


# ---------------------------------------------------------------- data (datasets, synthetic set)


@main.group(cls=_SubGroup)
def data() -> None:
    """Generate and check datasets."""


@data.command("synth")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--clips", type=click.IntRange(min=1), default=20, show_default=True,
              help="Number of clips (about 53% fold-3 train, 47% fold-4 test).")
@click.option("--duration", "duration_s", type=click.FloatRange(min=0.1), default=60.0,
              show_default=True, help="Clip length in seconds (a multiple of 0.1).")
@click.option("--seed", type=int, default=0, show_default=True, help="Dataset seed.")
@click.option("--no-video", is_flag=True, help="Skip the 360-degree MP4s.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Parallel processes.")
def data_synth(out_dir: str, clips: int, duration_s: float, seed: int, no_video: bool,
               workers: int) -> None:
    """Generate a synthetic STARSS23-like dataset in OUT_DIR (resumes an unfinished one)."""
    from seldbench.data.synth.generate import generate

    manifest = generate(out_dir, clips=clips, duration_s=duration_s, seed=seed,
                        video=not no_video, workers=workers, log=_log)
    splits = ", ".join(f"{k} {v}" for k, v in manifest["splits"].items())
    click.echo(f"{out_dir}: {clips} clips ({splits}); val rooms {manifest['val_rooms']}")


@data.command("verify")
@click.option("--dataset", required=True, help="Dataset name (see `seldbench list datasets`).")
@click.option("--root", type=click.Path(file_okay=False), default=None,
              help="Dataset folder (default: the dataset's environment variable).")
@click.option("--video", is_flag=True,
              help="Require the video tree (for multimodal models such as CRATI).")
def data_verify(dataset: str, root: str | None, video: bool) -> None:
    """Check a dataset's files without changing them; exit 1 on any problem."""
    from seldbench.data.verify import verify

    report = verify(dataset, root, video=video)
    for line in report.problems:
        click.echo(printable(line))
    for line in report.notes:
        click.echo(f"note: {printable(line)}")
    click.echo(report.summary())
    if not report.ok:
        click.get_current_context().exit(1)


def _echo_json(obj) -> None:
    from seldbench.io import nan_to_none

    click.echo(json.dumps(nan_to_none(obj)))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
