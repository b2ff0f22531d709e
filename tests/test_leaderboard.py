"""Leaderboard tables from run records, their renderings, and `seldbench compare`."""
import io
import json
import os
import statistics

import pandas as pd
import pytest
from click.testing import CliRunner
from run_records import PACKAGES as PACKAGES_FOR_TEST, make_record, result

from seldbench.cli import main
from seldbench.errors import SeldbenchError
from seldbench.results.leaderboard import build_tables, to_csv, to_html, to_markdown
from seldbench.results.records import write_record

# model A: 3 seeds, worse SELD but better F; model B: 2 seeds (another torch version)
A = {"SELD": [0.40, 0.42, 0.44], "F": [0.50, 0.52, 0.54]}
B = {"SELD": [0.30, 0.34], "F": [0.45, 0.47]}


def _results(seld: float, f: float) -> dict:
    return {
        "dcase2023": result({"ER": 0.5, "F": f, "LE": 20.0, "LR": 0.6, "SELD": seld}),
        "dcase2024": result({"ER": 0.6, "F": f - 0.1, "DOAE": 25.0, "DistE": 0.8, "RDE": 0.3,
                             "LR": 0.55, "SELD": seld + 0.1}),
    }


@pytest.fixture
def records():
    recs = [make_record("A", s, _results(A["SELD"][s], A["F"][s]), params=500_000)
            for s in range(3)]
    recs += [make_record("B", s, _results(B["SELD"][s], B["F"][s]), params=1_200_000,
                         config_hash="beef" * 6, packages={"seldbench": "0.1.0",
                                                           "torch": "2.4.0", "numpy": "2.1.0"})
             for s in range(2)]
    # another suite only, and another split
    recs.append(make_record("C", 0, {"dcase2021": result(
        {"ER": 0.7, "F": 0.3, "LE": 30.0, "LR": 0.4, "SELD": 0.5})}))
    recs.append(make_record("A", 0, {"dcase2023": _results(0.2, 0.9)["dcase2023"]},
                            split="val"))
    return recs


def _table(tables, split, suite):
    (t,) = [t for t in tables if (t.split, t.suite) == (split, suite)]
    return t


def test_one_table_per_dataset_split_suite(records):
    tables = build_tables(records)
    assert [(t.dataset, t.split, t.suite) for t in tables] == [
        ("synth-mini", "test", "dcase2021"), ("synth-mini", "test", "dcase2023"),
        ("synth-mini", "test", "dcase2024"), ("synth-mini", "val", "dcase2023")]
    for t in tables:
        assert t.rows["model"].is_unique  # one row per configuration, seeds aggregated
    assert len(build_tables(records, split="test")) == 3
    assert [t.suite for t in build_tables(records, suite="dcase2024")] == ["dcase2024"]


def test_sorted_by_rank_figure_in_its_direction(records):
    tables = build_tables(records, split="test")
    t23 = _table(tables, "test", "dcase2023")
    assert (t23.rank_by, t23.higher_is_better) == ("SELD", False)
    assert list(t23.rows["model"]) == ["B", "A"]  # lower SELD first
    t24 = _table(tables, "test", "dcase2024")
    assert (t24.rank_by, t24.higher_is_better) == ("F", True)
    assert list(t24.rows["model"]) == ["A", "B"]  # higher F first
    assert list(t24.rows["rank"]) == [1, 2]
    assert t24.figures == ["ER", "F", "DOAE", "DistE", "RDE", "LR", "SELD"]


def test_mean_std_seeds_interval_params(records):
    rows = _table(build_tables(records), "test", "dcase2023").rows.set_index("model")
    assert rows.loc["A", "seeds"] == 3 and rows.loc["B", "seeds"] == 2
    assert rows.loc["A", "SELD"] == pytest.approx(statistics.mean(A["SELD"]))
    assert rows.loc["A", "SELD_std"] == pytest.approx(statistics.stdev(A["SELD"]))
    assert rows.loc["B", "F"] == pytest.approx(statistics.mean(B["F"]))
    assert rows.loc["B", "F_std"] == pytest.approx(statistics.stdev(B["F"]))
    assert rows.loc["A", "SELD_ci_half"] == pytest.approx(0.05)
    assert pd.isna(rows.loc["A", "SELD_ci_lo"])  # [lo, hi] only for a single run
    assert rows.loc["A", "params"] == 500_000 and rows.loc["B", "params"] == 1_200_000
    assert rows.loc["A", "seed_list"] == "0 1 2"
    single = _table(build_tables(records), "test", "dcase2021").rows.iloc[0]
    assert single["seeds"] == 1 and pd.isna(single["SELD_std"])
    assert (single["SELD_ci_lo"], single["SELD_ci_hi"]) == pytest.approx((0.45, 0.55))


def test_undefined_figure_in_one_seed_is_undefined_for_the_row(records):
    records[1]["results"]["dcase2023"]["figures"]["LE"] = None
    rows = _table(build_tables(records), "test", "dcase2023").rows.set_index("model")
    assert pd.isna(rows.loc["A", "LE"]) and rows.loc["B", "LE"] == 20.0


def test_rows_split_by_recipe_and_device(records):
    records.append(make_record("B", 5, _results(0.1, 0.9), config_hash="beef" * 6,
                               device="cuda", packages=records[3]["packages"]))
    records.append(make_record("A", 7, _results(0.35, 0.5), recipe="full"))
    t = _table(build_tables(records), "test", "dcase2023")
    assert list(zip(t.rows["model"], t.rows["device"], t.rows["recipe"])) == [
        ("B", "cuda", "cpu-short"), ("B", "cpu", "cpu-short"), ("A", "cpu", "full"),
        ("A", "cpu", "cpu-short")]
    assert list(t.rows["seeds"]) == [1, 2, 1, 3]
    assert any("device: Test GPU (row 1); Test CPU (rows 2, 3, 4)" in n for n in t.notes)


def test_provenance_note_names_what_differs(records):
    t = _table(build_tables(records), "test", "dcase2023")
    note = next(n for n in t.notes if n.startswith("provenance differs"))
    assert "torch: 2.4.0 (row 1); 2.5.1 (row 2)" in note
    assert "numpy" not in note  # same everywhere
    same = _table(build_tables(records[:3]), "test", "dcase2023")
    assert not any(n.startswith("provenance differs") for n in same.notes)
    records[0]["git"] = {"revision": "2" * 40, "dirty": True}
    t = _table(build_tables(records), "test", "dcase2023")
    assert any("git revision: 1111111111 (rows 1, 2); 2222222222 (row 2)" in n
               for n in t.notes)
    assert "uncommitted changes in the working tree: row 2" in t.notes


def test_unknown_suite_keeps_record_order(records):
    for i, rec in enumerate(records[:5]):
        rec["results"] = {"mysuite": result({"score": [3.0, 1.0, 2.0, 5.0, 4.0][i]})}
    (t,) = build_tables(records, suite="mysuite")
    assert t.rank_by is None and t.higher_is_better is None
    assert list(t.rows["model"]) == ["A", "B"]  # first appearance, not by score
    assert "not registered" in t.ranking and "not registered" in to_markdown([t])


def test_skipped_suite_and_duplicates(records):
    records[0]["results"]["dcase2024"] = {"skipped": "the model predicts no distance"}
    records.append(json.loads(json.dumps(records[1])))  # the same run found twice
    t24 = _table(build_tables(records), "test", "dcase2024")
    assert t24.rows.set_index("model").loc["A", "seeds"] == 2
    t23 = _table(build_tables(records), "test", "dcase2023")
    assert t23.rows.set_index("model").loc["A", "runs"] == 3
    assert "1 duplicate record(s) of the same run ignored" in t23.notes


def test_filters_that_match_nothing_raise(records):
    with pytest.raises(SeldbenchError, match=r"^runs: no run with dataset 'synth'; did you "
                                             r"mean 'synth-mini'\?"):
        build_tables(records, dataset="synth", where="runs")
    with pytest.raises(SeldbenchError, match="no run with metric suite 'dcase2025'"):
        build_tables(records, suite="dcase2025")
    with pytest.raises(SeldbenchError, match="no run with split 'eval'"):
        build_tables(records, split="eval")
    with pytest.raises(SeldbenchError, match="no run with model 'Z'"):
        build_tables(records, models=["A", "Z"])
    assert build_tables([]) == []


def test_model_filter_keeps_only_those_models(records):
    t = _table(build_tables(records, models=["B"]), "test", "dcase2023")
    assert list(t.rows["model"]) == ["B"]
    both = _table(build_tables(records, models=["A", "B"]), "test", "dcase2023")
    assert sorted(both.rows["model"]) == ["A", "B"]


def test_renderers(records):
    tables = build_tables(records)
    md = to_markdown(tables)
    assert md.count("### synth-mini@1.0 · ") == 4
    assert "Ranked by SELD (lower is better)" in md and "Ranked by F (higher is better)" in md
    assert "| 1 | B@1.0 | cpu-short | cpu | beefbeef | 2 | 1.20 M |" in md
    assert "52.0% ± 2.0%" in md  # F of A in %, spread in %
    assert "20.0° ± 0.0°" in md  # LE in degrees
    assert "0.420 ± 0.020 | ±0.050 |" in md  # SELD and its mean jackknife half-width
    assert "| [0.450, 0.550] |" in md  # single run: the interval itself

    df = pd.read_csv(io.StringIO(to_csv(tables)))
    assert list(df.columns[:4]) == ["dataset", "dataset_version", "split", "suite"]
    assert len(df) == 1 + 2 + 2 + 1
    assert set(zip(df["split"], df["suite"])) == {("test", "dcase2021"), ("test", "dcase2023"),
                                                  ("test", "dcase2024"), ("val", "dcase2023")}
    a23 = df[(df["suite"] == "dcase2023") & (df["split"] == "test") & (df["model"] == "A")]
    assert a23["F"].item() == pytest.approx(0.52)  # raw fraction in CSV
    assert a23["config_hash"].item() == "c0ffee" * 4

    page = to_html(tables)
    assert page.startswith("<!DOCTYPE html>") and page.count("<table>") == 4
    records[0]["recipe"] = "a<b> & c"
    assert "a&lt;b&gt; &amp; c" in to_html(build_tables(records))
    records[0]["recipe"] = "x | y"
    assert "x \\| y" in to_markdown(build_tables(records))


# ----------------------------------------------------------------------------- CLI


def _write_runs(root, records):
    for i, rec in enumerate(records):
        write_record(root / rec["dataset"]["name"] / rec["model"]["name"] / f"run{i}", rec)


def test_cli_compare(tmp_path, records):
    _write_runs(tmp_path / "runs", records)
    runner = CliRunner()
    r = runner.invoke(main, ["compare", "--runs", str(tmp_path / "runs")])
    assert r.exit_code == 0, r.output
    assert r.stdout.count("### ") == 3  # default --split test
    r = runner.invoke(main, ["compare", "--runs", str(tmp_path / "runs"), "--split", "val",
                             "--suite", "dcase2023", "--format", "csv"])
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(io.StringIO(r.stdout))) == 1
    out = tmp_path / "board" / "lb.html"
    r = runner.invoke(main, ["compare", "--runs", str(tmp_path / "runs"), "--format", "html",
                             "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_text().count("<table>") == 3
    assert os.listdir(out.parent) == ["lb.html"]  # atomic: no temporary file left
    assert r.stdout == ""


def test_cli_compare_default_runs_folder(tmp_path, records):
    _write_runs(tmp_path / "runs", records[:2])
    runner = CliRunner()
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        r = runner.invoke(main, ["compare"])
    finally:
        os.chdir(cwd)
    assert r.exit_code == 0, r.output
    assert "A@1.0" in r.stdout


@pytest.mark.parametrize("setup,expected", [
    ("missing", "runs folder does not exist"),
    ("empty", "no run records (record.json) found"),
])
def test_cli_compare_no_records_is_one_error_line(tmp_path, setup, expected):
    runs = tmp_path / "runs"
    if setup == "empty":
        (runs / "sub").mkdir(parents=True)
    r = CliRunner().invoke(main, ["compare", "--runs", str(runs)])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {runs}: ")
    assert expected in lines[0]


def test_cli_compare_bad_record_and_filter(tmp_path, records):
    _write_runs(tmp_path / "runs", records[:1])
    bad = tmp_path / "runs" / "x" / "record.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    r = CliRunner().invoke(main, ["compare", "--runs", str(tmp_path / "runs")])
    assert r.exit_code == 2
    assert r.output.strip() == f"Error: {bad}:1: invalid JSON (Expecting property name " \
        "enclosed in double quotes); an unfinished run writes no record, so this file was " \
        "edited or damaged"
    bad.unlink()
    r = CliRunner().invoke(main, ["compare", "--runs", str(tmp_path / "runs"),
                                  "--dataset", "starss23"])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1
    assert "no run with dataset 'starss23'" in r.output


def test_an_ablation_table_names_the_config_keys_that_differ():
    from run_records import make_record

    recs = []
    for hash_, weight in (("aa" * 12, 0.0), ("bb" * 12, 0.1)):
        for seed in (0, 1):
            r = make_record("crati", seed, config_hash=hash_)
            r["config"] = {"seed": seed, "train": {"epochs": 5, "threads": seed + 1},
                           "model": {"loss": {"audio_text": weight, "seld": 1.0}}}
            recs.append(r)
    notes = build_tables(recs)[0].notes
    line = [n for n in notes if n.startswith("crati configurations differ in ")]
    assert line == ["crati configurations differ in model.loss.audio_text: 0.0 (row 1); "
                    "0.1 (row 2)"] or line == ["crati configurations differ in "
                                               "model.loss.audio_text: 0.1 (row 1); 0.0 (row 2)"]
    # seeds and threads are not configuration: one model with one config gets no such note
    assert not any("configurations differ" in n for n in build_tables(recs[:2])[0].notes)


def test_ablation_mode_puts_the_differing_keys_in_columns_and_config_filters(tmp_path):
    from run_records import make_record

    recs = []
    for hash_, at, fusion in (("aa" * 12, 0.0, False), ("ab" * 12, 0.01, False),
                              ("bb" * 12, 0.01, True)):
        for seed in (0, 1):
            r = make_record("crati", seed, config_hash=hash_,
                            results={"dcase2023": result({"F": 0.5 + at + fusion / 10,
                                                          "SELD": 0.4 - at - fusion / 10})})
            r["config"] = {"seed": seed, "train": {"threads": seed + 1, "device": "cpu"},
                           "model": {"fusion": fusion, "name": "x" if fusion else "y", "loss": {"audio_text": at},
                                     "image": {"name": "lite0" if fusion else "none"}}}
            recs.append(r)
    (t,) = build_tables(recs, ablation=True)
    # short headers where unique, longer where two keys share a last name; rows under full paths
    assert t.varying == {"fusion": "model.fusion", "image.name": "model.image.name",
                         "audio_text": "model.loss.audio_text", "model.name": "model.name"}
    assert list(t.rows["config_hash"].str[:2]) == ["bb", "ab", "aa"]
    assert list(t.rows["model.loss.audio_text"]) == ["0.01", "0.01", "0.0"]
    assert not any("configurations differ" in n for n in t.notes)  # the columns say it
    md = to_markdown([t])
    assert "| config | fusion | image.name | audio_text | model.name | seeds |" in md
    assert "| true | lite0 | 0.01 | x | 2 |" in md  # strings without their JSON quotes
    assert "model.image.name" in to_csv([t]).splitlines()[0]
    (t,) = build_tables(recs, configs=["a"], ablation=True)
    assert list(t.rows["config_hash"].str[:2]) == ["ab", "aa"]
    assert t.varying == {"audio_text": "model.loss.audio_text"}  # only what differs here
    with pytest.raises(SeldbenchError, match="no run with a config hash starting 'cc'; "
                                             "there are aaaaaaaa, abababab, bbbbbbbb"):
        build_tables(recs, configs=["cc"])
    for i, r in enumerate(recs):
        write_record(tmp_path / "runs" / f"r{i}", r)
    out = CliRunner().invoke(main, ["compare", "--runs", str(tmp_path / "runs"), "--ablation",
                                    "--config", "bb", "--config", "aa"])
    assert out.exit_code == 0 and "| config | fusion | image.name | audio_text | model.name |" in out.output


def test_ablation_columns_read_a_key_added_later_as_its_neutral_value():
    """CRATI's fuse_into (neutral: all) did not exist in older records: those rows read 'all',
    not 'absent', and a record holding the neutral value reads like one without the key."""
    from run_records import make_record

    recs = []
    for hash_, model in (("aa" * 12, {"width": 8}),
                         ("ab" * 12, {"width": 8, "fuse_into": "sed",
                                      "image": {"finetune_blocks": 0}}),
                         ("ac" * 12, {"width": 16, "fuse_into": "all"})):
        r = make_record("crati", 0, config_hash=hash_)
        r["config"] = {"seed": 0, "train": {"device": "cpu"}, "model": model}
        recs.append(r)
    (t,) = build_tables(recs, ablation=True)
    assert t.varying == {"fuse_into": "model.fuse_into", "width": "model.width"}
    by_hash = dict(zip(t.rows["config_hash"].str[:2], t.rows["model.fuse_into"]))
    assert by_hash == {"aa": '"all"', "ab": '"sed"', "ac": '"all"'}  # JSON, unquoted in the table
    assert "absent" not in to_markdown([t])


# rows recorded before keys were added to their model's config at values that are not neutral
# for every later record (see leaderboards/README.md): rerun them from their git revision
PREDATE_KEYS = {"38c36a1e", "43ace337", "53fc90a8", "59d6da32", "cd5c0270", "57d04c34"}


def test_committed_records_rerun_to_their_config_hash():
    """What `seldbench rerun RECORD` resolves from each committed record must hash to the
    record's config hash, so the rerun is that row's configuration (and a run of it resumes);
    keys added since hash as absent at their neutral values (``neutral_keys``). The older rows
    that predate keys added since are listed, and must stay the only ones."""
    import json
    from pathlib import Path

    from seldbench.config import config_hash
    from seldbench.registry import get_registry
    from seldbench.training.run import record_layer, resolve_run_config

    reg = get_registry()
    root = Path(__file__).resolve().parent.parent / "leaderboards" / "runs"
    differ = set()
    paths = sorted(root.rglob("record.json"))
    assert len(paths) >= 20
    for path in paths:
        rec = json.loads(path.read_text())
        model = rec["model"]["name"]
        cfg = resolve_run_config(model, rec["dataset"]["name"], None, [], rec["seed"], reg,
                                 [(str(path), record_layer(rec))])
        if config_hash(cfg, reg.get_model(model).neutral_keys) != rec["config_hash"]:
            differ.add(rec["config_hash"][:8])
    assert differ == PREDATE_KEYS


def test_committed_leaderboards_are_what_the_committed_records_give():
    """leaderboards/leaderboard.{md,csv} and the per-class tables are generated, never typed:
    regenerating them from the committed records must give the committed files byte for byte."""
    from pathlib import Path

    from seldbench.results.leaderboard import compare

    root = Path(__file__).resolve().parent.parent / "leaderboards"
    for fmt in ("md", "csv"):
        text, _ = compare(root / "runs", fmt=fmt)
        assert text == (root / f"leaderboard.{fmt}").read_text(encoding="utf-8"), fmt
    for fig in ("F", "LE"):
        text, _ = compare(root / "runs", suite="dcase2023", classwise=fig)
        assert text == (root / f"classwise-{fig}.md").read_text(encoding="utf-8"), fig
    # the CRATI ablation tables: the commands in leaderboards/README.md, one per recipe
    readme = (root / "README.md").read_text(encoding="utf-8")
    commands = readme.split("--model crati --ablation")[1:]
    assert len(commands) == 2
    for command in commands:
        options, out = command.replace("\\\n", " ").split("--out", 1)
        configs = [c.strip() for c in options.split("--config")[1:]]
        text, _ = compare(root / "runs", suite="dcase2023", models=["crati"], ablation=True,
                          configs=configs)
        target = out.split()[0].removeprefix("leaderboards/")
        assert text == (root / target).read_text(encoding="utf-8"), target


def test_classwise_tables_aggregate_per_class_figures_and_keep_the_ranking(records):
    from seldbench.registry import get_registry

    names = get_registry().get_dataset("synth-mini").classes
    for rec in records:  # class c of seed s: LE 10 c + s
        res = rec["results"].get("dcase2023")
        if res is not None:
            res["classwise"] = [{"class": c, "F": 0.5, "LE": 10.0 * c + rec["seed"],
                                 "interval": {"LE": [0.0, 1.0]}} for c in range(len(names))]
    (t,) = [t for t in build_tables(records, split="test", suite="dcase2023", classwise="LE")]
    assert t.view == "per class LE" and t.title.endswith("· per class LE")
    assert t.figures[:3] == ["LE", "SELD", f"LE[{names[0]}]"]  # the suite's order, then classes
    assert list(t.rows["model"]) == ["B", "A"]  # still ranked by SELD
    a = t.rows.set_index("model").loc["A"]
    assert a[f"LE[{names[3]}]"] == pytest.approx(31.0)  # mean of 30, 31, 32
    assert a[f"LE[{names[3]}]_std"] == pytest.approx(1.0)
    assert "| 31.0° ± 1.0° |" in to_markdown([t])
    with pytest.raises(SeldbenchError, match="no per-class 'DOAE' in suite 'dcase2023'.*LE"):
        build_tables(records, split="test", suite="dcase2023", classwise="DOAE")


def test_a_row_pooling_other_data_code_or_packages_is_flagged_on_the_row():
    same = [make_record("A", s) for s in (0, 1)]
    other_data = make_record("A", 2)
    other_data["dataset"]["data_hash"] = "e" * 64
    (t,) = build_tables([*same, other_data], split="test", suite="dcase2023")
    assert t.rows.loc[0, "pooled"] == "data x2"
    md = to_markdown([t])
    assert "3 ⚠ pooled: data x2" in md
    assert "row 1 pools runs made with different data (dddddddd: seeds 0 1; eeeeeeee: seeds 2)" in md
    other_pkgs = make_record("A", 2, packages={**PACKAGES_FOR_TEST, "torch": "9.9"})
    (t,) = build_tables([*same, other_pkgs], split="test", suite="dcase2023")
    assert t.rows.loc[0, "pooled"] == "packages x2"
    assert "packages (torch 2.5.1: seeds 0 1; torch 9.9: seeds 2)" in to_markdown([t])
    (t,) = build_tables(same, split="test", suite="dcase2023")  # agreeing runs: no flag
    assert t.rows.loc[0, "pooled"] == "" and "pooled" not in to_markdown([t])


def test_a_macro_le_with_unlocalised_classes_says_so_and_gives_the_le_over_the_others():
    def rec(seed, les, suite="dcase2023", le=None):
        cw = [{"class": c, "F": 0.0 if v == 180.0 else 0.5, "LE": v,
               "LR": 0.0 if v == 180.0 else 0.7} for c, v in enumerate(les)]
        res = result({"ER": 0.5, "F": 0.3, "LE": le if le is not None else sum(les) / len(les),
                      "LR": 0.5, "SELD": 0.5})
        res["classwise"] = cw
        return make_record("A", seed, {suite: res})

    # seed 0: classes 1 and 2 never localised (LE 180 each): LE 126.7 though the others are at
    # 20 and 0 degrees; seed 1 localises every class
    recs = [rec(0, [20.0, 180.0, 180.0]), rec(1, [10.0, 20.0, 30.0])]
    (t,) = build_tables(recs, split="test", suite="dcase2023")
    assert ("row 1: LE counts 180° for each class with no localised detection (2, 0 of 3 "
            "classes, seeds 0, 1); over the classes it localises, LE 20.0°") in t.notes
    # all localised, or an LE that is not the mean over classes (the micro 2021 suite): no note
    (t,) = build_tables([rec(1, [10.0, 20.0, 30.0])], split="test", suite="dcase2023")
    assert not [n for n in t.notes if "localised" in n]
    (t,) = build_tables([rec(0, [20.0, 180.0, 180.0], "dcase2021", le=20.0)], split="test",
                        suite="dcase2021")
    assert not [n for n in t.notes if "localised" in n]
