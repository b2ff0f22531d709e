"""seldbench board build: the static leaderboard site (pages, canonical split, commands)."""
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from run_records import make_record, result
from seldbench.cli import main
from seldbench.errors import SeldbenchError
from seldbench.results.records import write_record

ROOT = Path(__file__).resolve().parent.parent
BOARD = "synth-mini-1.0-test-dcase2023"


def _classwise(f: float) -> list[dict]:
    return [{"class": c, "F": f - 0.01 * c, "LE": 10.0 + c, "ER": 0.5, "LR": 0.6 - 0.01 * c,
             "SELD": 0.4 + 0.01 * c}
            for c in range(3)]


def _runs(root: Path) -> Path:
    """Three configurations: A (2 seeds, pooling two code revisions), B and C (1 seed)."""
    recs = []
    for seed, rev in ((0, "1" * 40), (1, "2" * 40)):
        res = result({"ER": 0.5, "F": 0.6, "LE": 20.0, "LR": 0.6, "SELD": 0.30 + seed / 100})
        res["classwise"] = _classwise(0.6)
        recs.append(make_record("A", seed, {"dcase2023": res}, config_hash="a" * 64,
                                git={"revision": rev, "dirty": False}))
    for model, h, seld in (("B", "b" * 64, 0.2), ("C", "c" * 64, 0.5)):
        res = result({"ER": 0.5, "F": 0.5, "LE": 25.0, "LR": 0.5, "SELD": seld})
        res["classwise"] = _classwise(0.5)
        recs.append(make_record(model, 0, {"dcase2023": res}, config_hash=h, recipe="gpu",
                                device="cuda"))
    for i, rec in enumerate(recs):
        write_record(root / "runs" / rec["model"]["name"] / f"run{i}", rec)
    return root / "runs"


def _canonical(root: Path, text: str) -> Path:
    path = root / "boards.yaml"
    path.write_text(text)
    return path


def test_site_has_every_page_type_and_splits_canonical_from_exploratory(tmp_path):
    from seldbench.results.board import build_site

    runs = _runs(tmp_path)
    canon = _canonical(tmp_path, "canonical:\n  synth-mini:\n"
                                 "    - {model: A, config: aaaaaa, label: the baseline}\n"
                                 "    - {model: C}\n")
    sizes = build_site(runs, tmp_path / "site", canon)
    pages = sorted(k for k in sizes if k.endswith(".html"))
    expected = [r"index", rf"{BOARD}/A-a{{8}}-cpu-[0-9a-f]{{6}}", rf"{BOARD}/B-b{{8}}-cuda-\w+",
                rf"{BOARD}/C-c{{8}}-cuda-\w+", rf"{BOARD}/compare", rf"{BOARD}/index"]
    assert len(pages) == 6, pages
    assert all(re.fullmatch(rf"{want}\.html", page) for want, page in zip(expected, pages)), pages
    board = (tmp_path / "site" / BOARD / "index.html").read_text()
    canonical, exploratory = board.split('id="exploratory"')
    assert "the baseline" in canonical and ">C@1.0<" in canonical and ">B@1.0<" in exploratory
    # rows pooling two code revisions carry the flag and the detail one click away
    assert re.search(r'<details class="pooled"><summary>2 ⚠ pooled: code x2</summary>'
                     r"code \(1111111111: seeds 0; 2222222222: seeds 1\)</details>", board)
    # each column says which suite (version) it belongs to; the best of a column is bold
    assert board.count("dcase2023 v") >= 5
    assert "<b>30.5% ± 0.7%</b>" not in board and "<b>0.305 ± 0.007</b>" in canonical
    index = (tmp_path / "site" / "index.html").read_text()
    assert "2 canonical and 1 exploratory" in index and ">B@1.0<" not in index
    # nothing is fetched from elsewhere: every link and script is relative
    for page in (tmp_path / "site").rglob("*.html"):
        text = page.read_text()
        assert not re.search(r'(src|href)="(https?:)?//', text), page


def test_entry_page_per_class_curves_provenance_and_record_links(tmp_path):
    from seldbench.results.board import build_site

    runs = _runs(tmp_path)
    build_site(runs, tmp_path / "site")
    page = next((tmp_path / "site" / BOARD).glob("A-*.html"))
    text = page.read_text()
    assert text.count('<svg class="heatmap"') == 1 and text.count('<svg class="curve"') == 2
    from seldbench.registry import get_registry

    names = get_registry().get_dataset("synth-mini").classes[:3]
    assert all(f"<tr><td>{n}</td>" in text for n in names)  # the per-class table
    assert len(re.findall(r"<rect [^>]*fill=", text.split('class="heatmap"')[1])) == 3 * 5
    assert "ER: the same in every class" in text
    for link in re.findall(r'<a href="([^"]+record\.json)"', text):
        assert (page.parent / link).resolve().is_file(), link
    assert "seldbench rerun" in text and "1111111111" in text and "2222222222" in text
    assert "hold a run record only" in text


def test_the_build_is_byte_stable_and_drops_pages_of_rows_that_left(tmp_path):
    from seldbench.results.board import build_site

    runs = _runs(tmp_path)
    build_site(runs, tmp_path / "one")
    build_site(runs, tmp_path / "two")
    one = {p.relative_to(tmp_path / "one"): p.read_bytes() for p in (tmp_path / "one").rglob("*")
           if p.is_file()}
    two = {p.relative_to(tmp_path / "two"): p.read_bytes() for p in (tmp_path / "two").rglob("*")
           if p.is_file()}
    assert one == two
    stale = next((tmp_path / "one" / BOARD).glob("B-*.html"))
    for rec in (runs / "B").rglob("record.json"):
        rec.unlink()
    (tmp_path / "one" / "mine.html").write_text("a user's file")
    build_site(runs, tmp_path / "one")
    assert not stale.exists() and (tmp_path / "one" / "mine.html").is_file()
    # a folder holding other things is never written into
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep")
    with pytest.raises(SeldbenchError, match="not empty and not a board site"):
        build_site(runs, tmp_path / "other")
    assert [p.name for p in (tmp_path / "other").iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("text,expected", [
    ("canonical: [1]\n", "expected 'canonical:' mapping"),
    ("canonical:\n  synth: {model: A}\n", "boards.yaml:2: canonical.synth must be a list"),
    ("canonical:\n  synth:\n    - {model: A, hash: ab}\n", "unknown key 'hash'"),
    ("canonical:\n  synth:\n    - {model: A, config: xyz}\n", "config 'xyz' is not a config hash"),
])
def test_bad_boards_yaml_is_one_error_naming_the_file(tmp_path, text, expected):
    from seldbench.results.board import read_canonical

    with pytest.raises(SeldbenchError, match=re.escape(expected)):
        read_canonical(_canonical(tmp_path, text))


def test_a_grid_marked_as_board_names_canonical_entries(tmp_path):
    from seldbench.results.board import build_site, read_grid

    grid = tmp_path / "grid.yaml"
    grid.write_text("name: mini board\nboard: true\nmodels: [B]\nseeds: [0, 1, 2]\n")
    picks = read_grid(grid)
    assert [(p.model, p.config, p.label) for p in picks] == [("B", "", "grid grid.yaml")]
    build_site(_runs(tmp_path), tmp_path / "site", grids=[grid])
    board = (tmp_path / "site" / BOARD / "index.html").read_text()
    assert ">B@1.0<" in board.split('id="exploratory"')[0]
    # the grid format of `seldbench grid`: entries matched by model and recipe (the entry's, or
    # its experiment file's output.recipe), or by config hash
    (tmp_path / "exp.yaml").write_text("output:\n  recipe: gpu\n")
    grid.write_text("board: true\ndatasets: [synth-mini]\nseeds: [0]\nentries:\n"
                    "  - {model: A, config: exp.yaml}\n  - {model: C, config: exp.yaml}\n"
                    "  - {model: B, config: bbbbbbbb, recipe: gpu}\n")
    build_site(_runs(tmp_path), tmp_path / "site2", grids=[grid])
    canonical, _ = (tmp_path / "site2" / BOARD / "index.html").read_text() \
        .split('id="exploratory"')
    assert ">B@1.0<" in canonical and ">C@1.0<" in canonical and ">A@1.0<" not in canonical
    grid.write_text("board: false\nmodels: [B]\n")
    with pytest.raises(SeldbenchError, match="not a board grid"):
        read_grid(grid)


def test_cli_board_build_and_its_errors(tmp_path):
    runs = _runs(tmp_path)
    r = CliRunner().invoke(main, ["board", "build", "--runs", str(runs), "--out",
                                  str(tmp_path / "site")])
    assert r.exit_code == 0, r.output
    assert "6 pages" in r.stderr
    r = CliRunner().invoke(main, ["board", "build", "--runs", str(tmp_path / "nope"), "--out",
                                  str(tmp_path / "site")])
    assert r.exit_code == 2 and "runs folder does not exist" in r.stderr
    assert r.stderr.count("\n") == 1


def test_committed_site_is_what_the_committed_records_give(monkeypatch):
    """leaderboards/site/ is generated, never edited: rebuilding it gives it byte for byte."""
    from seldbench.results.board import build_site

    monkeypatch.chdir(ROOT)
    import tempfile

    # built beside leaderboards/site so that the relative links to the records are the same
    with tempfile.TemporaryDirectory(dir=ROOT / "leaderboards") as tmp:
        sizes = build_site("leaderboards/runs", tmp, "leaderboards/boards.yaml")
        site = ROOT / "leaderboards" / "site"
        committed = sorted(p.relative_to(site).as_posix() for p in site.rglob("*")
                           if p.is_file())
        assert committed == sorted(sizes)
        for rel in sizes:
            assert (Path(tmp) / rel).read_bytes() == (site / rel).read_bytes(), \
                f"{rel}: rebuild with the command in leaderboards/README.md"
    board = (site / "synth-1.0-test-dcase2023" / "index.html").read_text()
    canonical = board.split('id="exploratory"')[0]
    # the chosen designs, and only those, are canonical
    assert sorted(re.findall(r"<code>([0-9a-f]{8})</code>", canonical)) == \
        ["02840945", "0bee294a", "8aefc4be"]
    # the five CRATI rows of one recipe that differ only by hash say what sets them apart
    same = re.findall(r'1 thread<span class="differs">([^<]+)</span>', board)
    assert len(same) == 5 and len(set(same)) == 5 and all("class_queries=" in d for d in same)


def test_the_run_command_of_each_committed_entry_resolves_to_its_config_hash():
    """The `seldbench run` line an entry page shows must give the entry's configuration with
    today's code, except where the page says only the record's revision reproduces it."""
    from seldbench.config import config_hash
    from seldbench.registry import get_registry
    from seldbench.results.board import build_boards, reproduce_commands
    from seldbench.results.records import load_record_files
    from seldbench.training.plan import resolve_run_config

    reg = get_registry()
    found = load_record_files(ROOT / "leaderboards" / "runs")
    checked = 0
    for board in build_boards(found, [], reg):
        for en in board.entries:
            lines = reproduce_commands(en, reg, {p: str(p) for p, _ in found})
            if any("only the record's revision" in line for line in lines):
                continue
            text = next(line for line in lines if "seldbench run " in line)
            tokens = shlex.split(text[text.index("seldbench run"):].replace("\\\n", " ")
                                 .split("\n")[0].replace("$S", "0"))
            sets = [tokens[i + 1] for i, t in enumerate(tokens) if t == "--set"]
            model, dataset = tokens[tokens.index("--model") + 1], \
                tokens[tokens.index("--dataset") + 1]
            cfg = resolve_run_config(model, dataset, None, sets, 0, reg)
            assert config_hash(cfg, reg.get_model(model).neutral_keys) == \
                en.row["config_hash"], en.id
            checked += 1
    assert checked >= 13  # all but the six older exploratory rows (leaderboards/README.md)


def test_plot_on_a_record_only_folder_says_so(tmp_path):
    """A committed leaderboard run keeps record.json alone: plot names that, not an
    unfinished run."""
    run = next((ROOT / "leaderboards" / "runs" / "synth" / "crnn").iterdir())
    r = CliRunner().invoke(main, ["plot", "--run", str(run), "--out", str(tmp_path / "p.png")])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1, r.output
    assert "holds a run record only" in r.stderr and "unfinished" not in r.stderr
