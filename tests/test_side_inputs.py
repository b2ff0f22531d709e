"""Side inputs (per-frame streams beside the features) travel with their chunks."""
import numpy as np
import pytest
import torch

from seldbench.errors import SeldbenchError
from seldbench.specs import ClipFiles
from seldbench.training.data import ChunkDataset, SplitData, clip_chunks, side_chunks
from seldbench.training.predict import Predictor


def _split(frames=(23, 12), per=5, with_side=True):
    clips = [ClipFiles(f"c{i}", {}, None) for i in range(len(frames))]
    feats, targets, side = {}, {}, {}
    for i, n in enumerate(frames):
        stem = f"c{i}"
        t = np.arange(n * per, dtype=np.float32)
        feats[stem] = np.broadcast_to(t[None, :, None] + 1000 * i, (2, n * per, 3)).copy()
        targets[stem] = np.arange(n, dtype=np.float32)[:, None] + 1000 * i
        if with_side:  # each frame's stream value names its clip and frame
            side[stem] = {"image": np.stack([np.arange(n) + 1000 * i] * 4, 1).astype(np.float32),
                          "mask": np.ones(n, np.float32)}
    return SplitData("train", clips, feats, targets, dict(zip(feats, frames)), per, side)


def test_chunks_carry_the_side_streams_of_their_own_frames():
    ds = ChunkDataset(_split(), 10)
    x, y, side = ds.__getitems__(list(range(len(ds))))
    assert set(side) == {"image", "mask"} and side["image"].shape == (len(ds), 10, 4)
    # the stream is aligned with the targets frame by frame (padding is zero in both)
    assert torch.equal(side["image"][..., 0], y[..., 0])
    # chunks c0[0:10], c0[10:20], c0[13:23] (tail), c1[0:10], c1[2:12] (tail): no padding
    assert len(ds) == 5 and float(side["mask"].sum()) == 50


def test_audio_only_split_gives_an_empty_side_dict():
    ds = ChunkDataset(_split(with_side=False), 10)
    assert ds[0][2] == {} and ds.__getitems__([0])[2] == {}


def test_side_chunks_match_clip_chunks_and_reject_wrong_lengths():
    x = np.zeros((2, 23 * 5, 3), np.float32)
    chunks, frames = clip_chunks(x, 10, 5)
    s = side_chunks({"image": np.arange(23, dtype=np.float32)[:, None]}, frames, 10)
    assert s["image"].shape == (len(chunks), 10, 1)
    assert s["image"].reshape(-1)[:23].tolist() == list(range(23))
    assert float(s["image"].reshape(-1)[23:].abs().sum()) == 0
    with pytest.raises(SeldbenchError, match="'image' has 40 frames"):
        side_chunks({"image": np.zeros((40, 1), np.float32)}, frames, 10)


def test_predictor_passes_side_streams_to_the_model():
    seen = []

    class Echo(torch.nn.Module):
        def forward(self, x, image=None):
            seen.append(image)
            return torch.zeros(x.shape[0], x.shape[2] // 5, 3 * 3 * 2)

    p = Predictor("multi_accdoa", 2, 10, 5, False, torch.device("cpu"), {}, batch_size=2)
    raw = p.raw(Echo(), np.zeros((2, 23 * 5, 3), np.float32),
                {"image": np.ones((23, 4), np.float32)})
    assert raw.shape == (23, 18)
    assert sum(float(s.sum()) for s in seen) == 23 * 4  # every frame's stream, once


def test_trackwise_output_is_decoded_per_track():
    C = 2
    raw = np.full((3, 3, C + 3), -9.0, np.float32)  # (frames, tracks, logits + xyz)
    raw[1, 2, 1] = 9.0  # frame 1, track 2: class 1
    raw[1, 2, C:] = [0.0, 1.0, 0.0]  # azimuth 90 (left)
    p = Predictor("track_wise", C, 10, 5, False, torch.device("cpu"), {})
    table = p.decode(raw.reshape(3, -1))
    assert len(table) == 1 and int(table.frame[0]) == 1 and int(table.cls[0]) == 1


def _drawing_model():
    """A side-input model drawing like CRATI: building its encoder draws from every global
    stream, on each cache miss and, on the train split, once whatever the cache holds."""
    import random
    from types import SimpleNamespace

    from seldbench.side_inputs import SideInputCache

    def build_encoder():
        random.random(), np.random.rand(), torch.rand(3)

    def side_inputs(cfg, dataset, clips, frames, *, training, cache_dir, device):
        cache = SideInputCache(cache_dir, "drawing")
        if training:
            build_encoder()  # e.g. CRATI's token grid, read on every training run

        def encode(stem):
            build_encoder()
            return np.full((frames[stem], 2), 7.0, np.float32)

        return {c.stem: {"emb": cache.get("emb", c.stem, c.video, {}, frames[c.stem],
                                          lambda s=c.stem: encode(s))} for c in clips}

    return SimpleNamespace(name="drawing", side_inputs=side_inputs, training_streams=())


@pytest.mark.parametrize("training", [True, False])
def test_collect_draws_the_same_with_an_empty_or_a_filled_cache(tmp_path, training):
    import random

    from seldbench.side_inputs import collect

    spec = _drawing_model()
    clips = []
    for i in range(2):
        (tmp_path / f"c{i}.mp4").write_bytes(b"video %d" % i)
        clips.append(ClipFiles(f"c{i}", {}, None, tmp_path / f"c{i}.mp4"))
    frames = {"c0": 4, "c1": 6}

    def after(cache, same_draws=True):
        random.seed(1), np.random.seed(1), torch.manual_seed(1)
        out = collect(spec, {}, None, clips, frames, training=training, cache_dir=cache,
                      device="cpu", same_draws=same_draws)
        assert out["c1"]["emb"].shape == (6, 2) and (out["c0"]["emb"] == 7).all()
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    empty = after(tmp_path / "a")
    assert after(tmp_path / "a") == empty  # the cache now filled: the same draws
    # ... which are those of a call on a full cache (here filled without the guard)
    unguarded = after(tmp_path / "b", same_draws=False)
    assert unguarded != empty and after(tmp_path / "b", same_draws=False) == empty
