"""leaderboards/onscreen.py: a stereo run's onscreen flags against the no-video guesses."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool():
    spec = importlib.util.spec_from_file_location("onscreen", ROOT / "leaderboards" / "onscreen.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


HEADER = "frame,class,source,azimuth,distance,onscreen"


def test_only_the_onscreen_column_changes_and_the_references_score_as_documented(tmp_path):
    from seldbench.metrics.score import score_folders

    tool = _tool()
    # reference: class 0 on screen in front (10 deg), class 1 off screen at the side (80 deg)
    rows = [f"{f},0,0,10,200,1" for f in range(10)] + [f"{f},1,0,80,300,0" for f in range(10)]
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "a.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    # the model's flags are right; the event at 80 deg is called off screen by both guesses,
    # the one at 10 deg on screen only by the azimuth rule
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred" / "a.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    off = tool.with_onscreen(tmp_path / "pred", tmp_path / "off", "off")
    az = tool.with_onscreen(tmp_path / "pred", tmp_path / "az", "azimuth", half_fov=50)
    assert {ln.split(",")[5] for ln in (off / "a.csv").read_text().splitlines()[1:]} == {"0"}
    az_rows = (az / "a.csv").read_text().splitlines()
    assert az_rows[0] == HEADER and az_rows[1:] == rows  # here the rule is right everywhere
    score = {name: score_folders(folder, tmp_path / "ref", "dcase2025").figures
             for name, folder in (("model", tmp_path / "pred"), ("off", off), ("az", az))}
    assert score["model"]["OnscreenAcc"] == pytest.approx(1.0)
    assert score["off"]["OnscreenAcc"] == pytest.approx(0.5)  # class 0 wrong, class 1 right
    assert score["off"]["F"] == score["model"]["F"]  # detections untouched
    assert score["off"]["F_onscreen"] < score["model"]["F_onscreen"]
    assert score["az"]["OnscreenAcc"] == pytest.approx(1.0)
