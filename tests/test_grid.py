"""`seldbench grid`: grid files, the driver's scheduling rules, the committed grids, and grids
run end to end on a local Ray cluster and through submitit's local executor."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from seldbench.errors import SeldbenchError

ROOT = Path(__file__).resolve().parent.parent


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- grid files


@pytest.mark.parametrize("text, message", [
    ("datasets: [synth]\nseed: [0]\nentries: [{model: crnn}]\n",
     r"g.yaml:2: unknown key 'seed'; did you mean 'seeds'\?"),
    ("datasets: [synth]\nentries:\n  - model: crnn\n  - model: crnn\n    sett: [a=1]\n",
     r"g.yaml:5: unknown key 'sett'; did you mean 'set'\?"),
    ("datasets: [synth]\nresources:\n  gpu: 0.5\nentries: [{model: crnn}]\n",
     r"g.yaml:3: unknown key 'resources.gpu'; did you mean 'resources.gpus'\?"),
    ("datasets: [synth]\nresources: {gpus: -1}\nentries: [{model: crnn}]\n",
     r"g.yaml:2: resources.gpus must be a finite number, >= 0, got -1"),
    ("datasets: [synth]\nresources: {memory: lots}\nentries: [{model: crnn}]\n",
     r"g.yaml:2: resources.memory must be a size such as 4G"),
    ("datasets: [synth]\nentries:\n  - model: crnn\n    seeds: [a]\n",
     r"g.yaml:4: seeds must be a list of seeds"),
    ("datasets: [synth]\nentries:\n  - model: crnn\n    set: train.epochs=1\n",
     r"g.yaml:4: set must be a list of key.path=value strings"),
    ("datasets: [synth]\nentries:\n  - model: crnn\n    config: nowhere.yaml\n",
     r"g.yaml:4: config file 'nowhere.yaml' not found .*relative to the grid file"),
    ("datasets: [synth]\nentries:\n  - recipe: x\n", r"g.yaml:3: entry 1 has no 'model'"),
    ("datasets: []\nentries: [{model: crnn}]\n", r"g.yaml: 'datasets' is missing or empty"),
    ("datasets: &d [synth]\nentries: [{model: crnn}]\n",
     r"g.yaml:1: invalid YAML: anchor '&d': anchors and aliases are not allowed"),
])
def test_a_bad_grid_file_is_one_error_naming_file_line_and_key(tmp_path, text, message):
    from seldbench.grid.spec import load_grid

    with pytest.raises(SeldbenchError, match=message):
        load_grid(_write(tmp_path / "g.yaml", text))


def test_grid_file_entries_seeds_resources_and_overrides(tmp_path):
    from seldbench.grid.spec import load_grid

    exp = _write(tmp_path / "exp.yaml", "train:\n  lr: 0.002\n")
    g = load_grid(_write(tmp_path / "g.yaml", (
        "datasets: synth-mini\nseeds: 3\nset: [train.epochs=1]\nout: r\n"
        "resources: {cpus: 2, gpus: 0.25, memory: 512M}\nslurm: {partition: gpu}\n"
        "entries:\n  - model: crnn\n    recipe: 'my recipe'\n"
        "  - model: einv2\n    config: exp.yaml\n    set: [train.batch_size=2]\n"
        "    seeds: [0, 1]\n")))
    assert g.datasets == ("synth-mini",) and g.out == Path("r") and g.slurm["partition"] == "gpu"
    assert (g.resources.cpus, g.resources.gpus, g.resources.memory_gib) == (2, 0.25, 0.5)
    a, b = g.entries
    assert a.seeds == (3,) and a.overrides == ("train.epochs=1", "output.recipe=my recipe")
    assert a.where == f"{tmp_path / 'g.yaml'}:8"
    assert b.config == exp and b.seeds == (0, 1)
    assert b.overrides == ("train.epochs=1", "train.batch_size=2")


def test_a_relative_init_from_in_a_grid_is_relative_to_the_grid_file(tmp_path, monkeypatch):
    from seldbench.grid.spec import load_grid

    (tmp_path / "grids").mkdir()
    grid = _write(tmp_path / "grids" / "g.yaml", (
        "datasets: [synth]\nset: [train.init_from=../runs/a]\nentries:\n"
        "  - model: crnn\n    set: [train.init_from=null]\n  - model: crnn\n"
        "    set: [train.init_from=/abs/b, train.epochs=2]\n"))
    monkeypatch.chdir(tmp_path / "grids")  # wherever the grid is run from
    first, second = load_grid(grid).entries
    assert first.overrides == (f"train.init_from={tmp_path / 'runs' / 'a'}", "train.init_from=null")
    assert second.overrides[1:] == ("train.init_from=/abs/b", "train.epochs=2")


def test_cells_are_planned_like_seldbench_run_and_a_bad_key_fails_only_its_cells(tmp_path):
    """A cell's run folder and config hash are those of the same `seldbench run`; a cell
    whose config does not resolve is invalid with its one-line error (its entry's line)."""
    from seldbench.grid import load_cells, status_rows
    from seldbench.training.plan import plan_run

    grid = _write(tmp_path / "g.yaml", (
        "datasets: synth-mini\nseeds: [0, 1]\nset: [train.epochs=1]\n"
        "entries:\n  - model: crnn\n  - model: crnn\n    set: [train.lrate=1]\n"))
    _, cells = load_cells(grid, str(tmp_path / "runs"))
    assert len(cells) == 4
    plan = plan_run("crnn", "synth-mini", None, ["train.epochs=1"], 1, str(tmp_path / "runs"))
    assert (cells[1].run_base, cells[1].config_hash) == (str(plan.run_base), plan.digest)
    assert cells[0].warm_key == cells[1].warm_key  # seeds read the same cache
    rows = status_rows(cells)
    assert [r["state"] for r in rows] == ["not started"] * 2 + ["invalid"] * 2
    assert rows[2]["detail"] == (f"{grid}:6: --set train.lrate=1: unknown key 'train.lrate'; "
                                 "did you mean 'train.lr'?")


# ----------------------------------------------------------------------------- the driver


class FakeBackend:
    """Runs jobs in this process, in submission order, with scripted worker deaths."""

    name = "fake"

    def __init__(self, lose=()):
        self.lose = list(lose)  # names of cells whose next run "dies"
        self.calls = []  # (kind, cell name, jobs in flight at submission)
        self.inflight = set()
        self.check = lambda cells: None
        self.cancel = lambda handles: None

    def submit(self, fn, args):
        out = []
        for cell, _log in args:
            kind = "warm" if fn.__name__ == "warm_cell" else "cell"
            handle = (kind, cell, len(self.calls))
            self.calls.append((kind, cell.name, sorted(k for k, *_ in self.inflight)))
            self.inflight.add(handle)
            out.append(handle)
        return out

    def wait(self, handles, timeout_s):
        return handles[:1]

    def result(self, handle):
        from seldbench.grid.driver import WorkerLost

        self.inflight.discard(handle)
        kind, cell, _ = handle
        if kind == "cell" and cell.name in self.lose:
            self.lose.remove(cell.name)
            raise WorkerLost("WorkerCrashedError")
        if kind == "cell" and "bad" in cell.overrides:
            return {"ok": False, "error": "it diverged"}
        return {"ok": True, "run_dir": "x", "wall_s": 1.0}


def _cells(tmp_path, n_seeds=2, models=("crnn", "einv2"), bad=False):
    from seldbench.grid.cells import Cell
    from seldbench.grid.spec import Resources

    return [Cell("synth-mini", m, None, ("bad",) if bad and m == models[-1] else (), s,
                 str(tmp_path), Resources(), "g.yaml:1", run_id=f"{m}-s{s}",
                 run_base=str(tmp_path / m / f"{m}-s{s}"), config_hash="h", recipe="r",
                 warm_key=m)
            for m in models for s in range(n_seeds)]


def test_driver_warms_each_cache_once_before_its_cells_and_one_per_dataset_at_a_time(tmp_path):
    from seldbench.grid.driver import run_grid

    backend = FakeBackend()
    summary = run_grid(_cells(tmp_path), backend, "g", echo=lambda m: None)
    assert summary.ok and len(summary.done) == 4
    kinds = [(k, n) for k, n, _ in backend.calls]
    assert kinds[0] == ("warm", "crnn-s0")
    assert [k for k, _ in kinds].count("warm") == 2  # one per key, not one per cell
    warm_einv2 = kinds.index(("warm", "einv2-s0"))
    assert kinds.index(("cell", "einv2-s0")) > warm_einv2
    # the second warm job started when no other warm job of the dataset was in flight
    assert "warm" not in backend.calls[warm_einv2][2]
    status = json.loads((tmp_path / ".grid" / "g.json").read_text())
    assert {v["state"] for v in status["cells"].values()} == {"done"}


def test_driver_retries_a_lost_worker_and_a_failing_cell_fails_alone(tmp_path):
    from seldbench.grid.driver import run_grid

    lines = []
    backend = FakeBackend(lose=["crnn-s1", "crnn-s1", "crnn-s0"])
    summary = run_grid(_cells(tmp_path, bad=True), backend, "g", retries=2, echo=lines.append)
    assert summary.retried == {"crnn-s1": 2, "crnn-s0": 1}
    assert sorted(c.name for c in summary.done) == ["crnn-s0", "crnn-s1"]
    assert [(c.name, e) for c, e in summary.failed] == [("einv2-s0", "it diverged"),
                                                       ("einv2-s1", "it diverged")]
    assert "[grid] crnn-s1: worker lost (WorkerCrashedError); retry 2 of 2, resuming from " \
        "its last checkpoint" in lines
    assert lines[-1].startswith("[grid] [####################] 2/4 done, 0 running, 2 failed")
    # retries spent: the cell fails with the reason
    summary = run_grid(_cells(tmp_path / "b", models=("crnn",), n_seeds=1),
                       FakeBackend(lose=["crnn-s0"] * 2), "g", retries=1, echo=lambda m: None)
    assert summary.failed[0][1] == "worker lost 2 times (WorkerCrashedError); --retries 1 spent"


def test_max_concurrent_bounds_the_jobs_in_flight(tmp_path):
    from seldbench.grid.driver import run_grid

    backend = FakeBackend()
    run_grid(_cells(tmp_path, n_seeds=3), backend, "g", max_concurrent=2, echo=lambda m: None)
    assert max(len(inflight) for _, _, inflight in backend.calls) <= 1  # + the new one = 2


def test_with_one_slot_a_ready_cell_runs_before_the_next_cache_is_warmed(tmp_path):
    from seldbench.grid.driver import run_grid

    backend = FakeBackend()
    run_grid(_cells(tmp_path), backend, "g", max_concurrent=1, echo=lambda m: None)
    # crnn's results come before einv2's cache (an hour of image tokens, say) is built
    assert [(k, n) for k, n, _ in backend.calls] == [
        ("warm", "crnn-s0"), ("cell", "crnn-s0"), ("cell", "crnn-s1"),
        ("warm", "einv2-s0"), ("cell", "einv2-s0"), ("cell", "einv2-s1")]


def test_ray_backend_refuses_resources_the_cluster_cannot_give():
    """A cell asking for a GPU on a cluster without one would wait for ever."""
    from seldbench.grid.ray_backend import RayBackend

    backend = RayBackend.__new__(RayBackend)
    backend.embedded = True
    backend.ray = SimpleNamespace(cluster_resources=lambda: {"CPU": 2.0, "memory": 2.0**33})
    cells = _cells(Path("/tmp"), n_seeds=1, models=("crnn",))
    backend.check(cells)
    from dataclasses import replace

    from seldbench.grid.spec import Resources

    assert backend.slots(Resources(cpus=1)) == 2
    assert backend.slots(Resources(cpus=0.5, memory_gib=3)) == 2  # 8 GiB / 3

    gpu = [replace(cells[0], resources=Resources(gpus=0.25))]
    with pytest.raises(SeldbenchError, match=r"^g.yaml: resources.gpus is 0.25 per cell, more "
                       r"than the local Ray cluster has \(0\); run on a GPU machine"):
        backend.check(gpu)


def test_cli_and_run_do_not_import_ray_or_submitit():
    """Ray is imported by `grid` only: `run`, `score` and `compare` start as fast as before."""
    code = ("import sys\nfrom click.testing import CliRunner\nimport seldbench.cli as c\n"
            "r = CliRunner().invoke(c.main, ['run', '--help'])\nassert r.exit_code == 0\n"
            "r = CliRunner().invoke(c.main, ['grid', 'run', '--help'])\nassert r.exit_code == 0\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'submitit')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout


# ----------------------------------------------------------------------------- committed grids

# the rows recorded before config keys added since (leaderboards/README.md): today's code gives
# their commands other config hashes, so no grid cell is theirs; their git revision reruns them
from test_leaderboard import PREDATE_KEYS  # noqa: E402


def test_committed_grids_reproduce_every_committed_record():
    """`grid run --dry-run` over leaderboards/grids/ finds every committed record as a done
    cell (same model, dataset, config hash, seed and recipe): no board cell without its
    record, no record without a cell (except the rows that predate today's config keys)."""
    from seldbench.grid import load_cells
    from seldbench.grid.cells import cell_state

    runs = ROOT / "leaderboards" / "runs"
    found = set()
    grids = sorted((ROOT / "leaderboards" / "grids").glob("*.yaml"))
    assert len(grids) >= 4
    for path in grids:
        grid, cells = load_cells(path, str(runs))
        assert grid.board, path
        for cell in cells:
            state = cell_state(cell)
            assert state.kind == "done", (path.name, cell.name, state)
            found.add(state.folder / "record.json")
    orphans = {p for p in runs.rglob("record.json") if p not in found}
    hashes = {json.loads(p.read_text())["config_hash"][:8] for p in orphans}
    assert hashes == PREDATE_KEYS, sorted(map(str, orphans))


def test_every_grid_under_configs_plans_every_cell(tmp_path):
    """The grids not yet run (configs/grids/) parse and plan every cell as `seldbench run`
    would: no cell invalid (a config that does not fit its dataset, a missing file), every
    entry a configuration of its own."""
    from seldbench.grid import load_cells

    grids = sorted((ROOT / "configs" / "grids").glob("*.yaml"))
    assert {"augment", "stereo"} <= {p.stem for p in grids}
    for path in grids:
        grid, cells = load_cells(path, str(tmp_path))
        assert not grid.board, path
        assert [c.error for c in cells if c.error] == [], path
        assert len(cells) == sum(len(e.seeds) for e in grid.entries) * len(grid.datasets), path
        configs = {(c.model, c.config_hash, c.recipe) for c in cells}
        assert len(configs) == len(grid.entries) * len(grid.datasets), path


def test_compare_grid_gives_the_committed_ablation_tables():
    from click.testing import CliRunner

    from seldbench.cli import main

    for name in ("ablation-crati", "ablation-crati-h100"):
        r = CliRunner().invoke(main, ["compare", "--grid",
                                      str(ROOT / "leaderboards" / "grids" / f"{name}.yaml"),
                                      "--runs", str(ROOT / "leaderboards" / "runs"),
                                      "--suite", "dcase2023",
                                      "--model", "crati", "--ablation"])
        assert r.exit_code == 0, r.output
        assert r.stdout == (ROOT / "leaderboards" / f"{name}.md").read_text(), name


# ----------------------------------------------------------------------------- end to end

TINY = "train.batch_size=4, train.threads=1, eval.jackknife=false"


def _grid(base: Path, name: str, epochs: int, entries: str, seeds="[0, 1]") -> Path:
    return _write(base / f"{name}.yaml", (
        f"datasets: synth-mini\nseeds: {seeds}\nout: {base / name}\n"
        f"set: [train.epochs={epochs}, {TINY}, features.cache_dir={base / 'cache'}]\n"
        f"resources: {{cpus: 1}}\nentries:\n{entries}"))


def _records(folder: Path) -> dict:
    return {p.parent.name: json.loads(p.read_text())
            for p in folder.glob("synth-mini/*/*/record.json")}


def test_grid_on_local_ray_runs_each_cell_once(synth_env):
    """2 models x 2 seeds on the embedded Ray cluster: 4 valid records; a cell with a bad key
    fails alone with its message (exit 1); running the grid again trains nothing."""
    from click.testing import CliRunner

    from seldbench.cli import main
    from seldbench.results.records import load_records

    grid = _grid(synth_env, "g2x2", 1, (
        "  - model: crnn\n"
        "  - model: einv2\n    config: " + str(ROOT / "configs/experiments/einv2-cpu.yaml") +
        "\n  - model: crnn\n    set: [train.lrate=0.1]\n    seeds: [0]\n"))
    r = CliRunner().invoke(main, ["grid", "run", str(grid)])
    assert r.exit_code == 1, r.output
    assert r.stdout.startswith(f"{grid}: 4/5 cells done (4 now, 0 before), 1 failed")
    assert "unknown key 'train.lrate'; did you mean 'train.lr'?" in r.stdout
    assert "caching what 4 cell(s) read" in r.stderr  # crnn and einv2-cpu: one feature set
    recs = _records(synth_env / "g2x2")
    assert sorted((r["model"]["name"], r["seed"]) for r in recs.values()) == \
        [("crnn", 0), ("crnn", 1), ("einv2", 0), ("einv2", 1)]
    assert len(load_records(synth_env / "g2x2")) == 4  # each checked against the schema
    # again: nothing is trained (the records stay those of the first run), Ray not even started
    r = CliRunner().invoke(main, ["grid", "run", str(grid)])
    assert r.stdout.startswith(f"{grid}: 4/5 cells done (0 now, 4 before), 1 failed")
    assert "Ray cluster" not in r.stderr
    assert {k: v["created"] for k, v in _records(synth_env / "g2x2").items()} == \
        {k: v["created"] for k, v in recs.items()}
    r = CliRunner().invoke(main, ["grid", "status", str(grid)])
    assert r.stdout.splitlines()[-1] == "5 cells: 4 done, 1 invalid"
    r = CliRunner().invoke(main, ["compare", "--grid", str(grid), "--suite", "dcase2023"])
    assert r.exit_code == 0 and r.stdout.count("| crnn@") == 1 and r.stdout.count("| einv2@") == 1


def test_a_killed_worker_is_retried_and_resumes_to_the_uninterrupted_result(synth_env):
    """SIGKILL the worker of a 2-epoch cell after its epoch-1 checkpoint: the driver starts the
    cell again, it resumes, and its record and checkpoint equal an uninterrupted run's."""
    from seldbench.grid import run_grid_file
    from seldbench.training.run import run

    grid = _grid(synth_env, "gkill", 2, "  - model: crnn\n", seeds="[0]")
    overrides = ["train.epochs=2", *TINY.split(", "), f"features.cache_dir={synth_env / 'cache'}"]
    full = run("crnn", "synth-mini", None, overrides, 0, str(synth_env / "gkill-ref"),
               progress=False, log=lambda m: None)
    killed = []

    def killer():
        runs = synth_env / "gkill" / "synth-mini" / "crnn"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            for last in runs.glob("*/last.pt"):
                pid = int((last.parent / ".lock").read_text())
                os.kill(pid, signal.SIGSTOP)  # frozen at once: check it is mid-run
                if not (last.parent / "record.json").exists():
                    killed.append(pid)
                os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.005)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    lines = []
    summary = run_grid_file(grid, retries=1, echo=lines.append)
    thread.join(10)
    assert killed, "the worker finished before it could be killed"
    assert summary.ok and list(summary.retried.values()) == [1], lines
    assert any("worker lost (" in m and "retry 1 of 1" in m for m in lines)
    (rec,) = _records(synth_env / "gkill").values()
    assert rec["checkpoint"]["sha256"] == full["checkpoint"]["sha256"]
    assert rec["results"] == full["results"] and rec["config_hash"] == full["config_hash"]
    assert [e["loss"] for e in rec["train"]["history"]] == \
        [e["loss"] for e in full["train"]["history"]]


def test_the_same_grid_through_submitit_local_executor(synth_env):
    from seldbench.grid import run_grid_file

    grid = _grid(synth_env, "gsubmitit", 1, "  - model: crnn\n")
    lines = []
    summary = run_grid_file(grid, backend="slurm-local", max_concurrent=2, echo=lines.append)
    assert summary.ok and len(summary.done) == 2, lines
    recs = _records(synth_env / "gsubmitit")
    assert sorted(r["seed"] for r in recs.values()) == [0, 1]
    assert list((synth_env / "gsubmitit" / ".grid" / "submitit" / "gsubmitit").glob("*_result.pkl"))


def test_local_backend_returns_results_and_reports_a_dead_process_as_lost():
    """A spawned process per job: its value comes back; one that exits without sending a
    result is a lost worker (the driver retries it), naming its exit code or signal."""
    import operator

    from seldbench.grid.driver import WorkerLost
    from seldbench.grid.local_backend import LocalBackend, local_slots
    from seldbench.grid.spec import Resources

    backend = LocalBackend()
    ok, dead, hung = backend.submit(operator.add, [(2, 3)]) + \
        backend.submit(os._exit, [(7,)]) + backend.submit(time.sleep, [(60,)])
    finished = []
    deadline = time.monotonic() + 60
    while len(finished) < 2 and time.monotonic() < deadline:
        finished += [h for h in backend.wait([ok, dead, hung], 0.5) if h not in finished]
    assert set(finished) == {ok, dead}
    assert backend.result(ok) == 5
    with pytest.raises(WorkerLost, match=r"process \d+ ended with exit code 7"):
        backend.result(dead)
    backend.cancel([hung])
    with pytest.raises(WorkerLost, match=r"ended with signal 15"):
        backend.result(hung)
    assert local_slots(Resources(cpus=1, gpus=0.25), cpus=16, gpus=1) == 4
    assert local_slots(Resources(cpus=2, gpus=0), cpus=16, gpus=0) == 8


def test_the_same_grid_through_local_processes(synth_env):
    """`--backend local`: no Ray, no submitit; each cell once, and a second call trains nothing."""
    from click.testing import CliRunner

    from seldbench.cli import main

    grid = _grid(synth_env, "glocal", 1, "  - model: crnn\n")
    r = CliRunner().invoke(main, ["grid", "run", str(grid), "--backend", "local"])
    assert r.exit_code == 0, r.output
    assert "[grid] local processes:" in r.stderr
    recs = _records(synth_env / "glocal")
    assert sorted(r["seed"] for r in recs.values()) == [0, 1]
    r = CliRunner().invoke(main, ["grid", "run", str(grid), "--backend", "local"])
    assert r.stdout.startswith(f"{grid}: 2/2 cells done (0 now, 2 before)")


def test_a_terminated_local_grid_stops_its_cells(synth_env):
    """SIGTERM to `grid run --backend local` (kill, a job scheduler) ends the cells it
    started: no run goes on training without its driver."""
    grid = _grid(synth_env, "gterm", 1000, "  - model: crnn\n", seeds="[0]")
    lock_dir = synth_env / "gterm" / "synth-mini" / "crnn"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    driver = subprocess.Popen([sys.executable, "-m", "seldbench.cli", "grid", "run", str(grid),
                               "--backend", "local"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    locks = []
    while not locks and time.monotonic() < deadline and driver.poll() is None:
        locks = list(lock_dir.glob("*/last.pt"))  # training is under way
        time.sleep(0.2)
    assert locks, "the cell never reached its first checkpoint"
    pid = int((locks[0].parent / ".lock").read_text())
    driver.send_signal(signal.SIGTERM)
    assert driver.wait(60) != 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail(f"the cell's process {pid} outlived its driver")


def test_a_dead_ray_address_is_one_error_at_once():
    from seldbench.grid.ray_backend import RayBackend

    with pytest.raises(SeldbenchError, match=r"^cannot reach Ray at 127.0.0.1:1: Connection "
                                             r"refused$"):
        RayBackend("127.0.0.1:1")


def test_status_shows_partial_epochs_and_the_last_failure(tmp_path):
    from seldbench.grid import status_rows
    from seldbench.grid.driver import run_grid
    from seldbench.training.trainer import save_checkpoint

    cells = _cells(tmp_path, n_seeds=1, bad=True)  # crnn-s0 fine, einv2-s0 fails
    cells = [c.__class__(**{**c.__dict__, "epochs": 3}) for c in cells]
    run_grid(cells, FakeBackend(), "g", echo=lambda m: None)
    Path(cells[0].run_base).mkdir(parents=True)
    save_checkpoint(Path(cells[0].run_base) / "last.pt", {"epoch": 2})
    einv2 = Path(cells[1].run_base + "-2")  # a sibling folder (a second process) counts too
    einv2.mkdir(parents=True)
    save_checkpoint(einv2 / "last.pt", {"epoch": 1})
    rows = status_rows(cells)
    assert [(r["state"], r["detail"]) for r in rows] == [
        ("partial", "epoch 2 of 3"), ("failed", "it diverged (epoch 1 of 3)")]
