"""Training throughput: seldbench's batched chunk loader vs the DCASE baseline's way, and the
CRNN training step it has to keep fed.

Data: an in-memory split of random normalised features like the synthetic benchmark's train
split (default 74 clips x 60 s: features ``(7, 3000, 64)`` and ADPIT targets ``(600, 6, 4, 13)``
float32 per clip), one epoch of batches of 128 sequences of 5 s (250 feature / 50 label frames):

- seldbench: :class:`~seldbench.training.data.ChunkDataset` (one padded tensor, a whole batch
  sliced by tensor indexing in ``__getitems__``) in a ``torch.utils.data.DataLoader`` built as
  ``seldbench run`` builds it (shuffle, ``collate_batch``, ``num_workers`` 0);
- reference: the official baseline's generator (``cls_data_generator.py``) rewritten here: the
  clips, in shuffled order, stored as ``(frames, channels * bins)`` rows as the baseline keeps
  them on disk, are pushed row by row into a deque ("circular buffer") until it holds a batch;
  a batch is popped row by row into Python lists, stacked with numpy, reshaped into sequences
  and converted to torch. Like the baseline it drops clip tails and the last partial batch.
  Both read from memory (the baseline's ``np.load`` per file is not timed), in float32 (the
  baseline's batch buffers are float64, which would only make the reference slower).

Both yield ``x (B, 7, 250, 64)`` and ``y (B, 50, 6, 4, 13)`` (checked equal on the first
unshuffled batch). Throughput is batches and seconds of audio per second (best of
``--repeat`` epochs); the ratio is seldbench over the reference.

Training step: the registry's ``crnn`` (synth-mini dataset spec, ``foa_logmel_iv`` features),
forward + ADPIT loss + backward + Adam step on a fixed batch (``--train-batch`` 32), on the CPU
with 1 torch thread and with all, and on the GPU with AMP when there is one (host-to-device copy
included, as the trainer does it) -- the rate the data pipeline must not fall below.

    python benchmarks/training_throughput.py                 # 74 clips x 60 s
    python benchmarks/training_throughput.py --clips 20 --steps 3
"""
from __future__ import annotations

import argparse
import platform
import time
from collections import deque

import numpy as np
import torch

from seldbench.registry import get_registry
from seldbench.specs import ClipFiles
from seldbench.training.data import ChunkDataset, SplitData, collate_batch
from seldbench.training.losses import adpit_loss
from timing import mean_step_seconds, print_table

FEATURE_HZ, LABEL_HZ = 50, 10  # 20-ms feature hop, 100-ms label hop
CHANNELS, BINS = 7, 64
ADPIT_SHAPE = (6, 4, 13)


# ------------------------------------------------------------------ data


def random_split(clips: int, seconds: float, seed: int) -> SplitData:
    """``clips`` random clips as a :class:`SplitData` (features ~ N(0, 1), as normalised)."""
    rng = np.random.default_rng(seed)
    t_feat, t_lab = int(seconds * FEATURE_HZ), int(seconds * LABEL_HZ)
    stems = [f"clip{k:03d}" for k in range(clips)]
    feats, targets = {}, {}
    for s in stems:
        feats[s] = rng.standard_normal((CHANNELS, t_feat, BINS), dtype=np.float32)
        y = rng.uniform(-1, 1, (t_lab, *ADPIT_SHAPE)).astype(np.float32)
        y[:, :, 0] = rng.random((t_lab, ADPIT_SHAPE[0], ADPIT_SHAPE[2])) < 0.1  # activity
        targets[s] = y
    return SplitData("train", [ClipFiles(s, {}, None) for s in stems], feats, targets,
                     {s: t_lab for s in stems}, FEATURE_HZ // LABEL_HZ)


def seldbench_loader(ds: ChunkDataset, batch: int, shuffle: bool, seed: int):
    """The train loader as ``seldbench run`` builds it (CPU device, no workers)."""
    return torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=shuffle,
                                       generator=torch.Generator().manual_seed(seed),
                                       collate_fn=collate_batch, num_workers=0)


class BaselineStyleGenerator:
    """The official baseline's per-row batching, rewritten: see the module docstring."""

    def __init__(self, data: SplitData, batch: int, label_seq: int) -> None:
        per = data.frames_per_label
        self.batch, self.label_seq, self.feat_seq = batch, label_seq, label_seq * per
        self.files = []  # (rows (frames, C*F), labels (label frames, ...)), the on-disk layout
        total = 0
        for s in data.stems:
            x = data.features[s]
            rows = np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(x.shape[1], -1)
            y = data.targets[s]
            n = y.shape[0] - y.shape[0] % label_seq  # whole label sequences only
            self.files.append((rows[:n // label_seq * self.feat_seq], y[:n]))
            total += rows.shape[0] - rows.shape[0] % self.feat_seq
        self.channels = data.features[data.stems[0]].shape[0]
        self.batches = total // (batch * self.feat_seq)

    def __len__(self) -> int:
        return self.batches

    def generate(self, shuffle: bool = True, seed: int = 0):
        order = list(range(len(self.files)))
        if shuffle:
            np.random.default_rng(seed).shuffle(order)
        feat_buf, label_buf = deque(), deque()
        n_feat, n_label = self.batch * self.feat_seq, self.batch * self.label_seq
        nxt = 0
        for _ in range(self.batches):
            while len(feat_buf) < n_feat:  # refill with whole files, one row at a time
                rows, labels = self.files[order[nxt]]
                nxt += 1
                for r in rows:
                    feat_buf.append(r)
                for r in labels:
                    label_buf.append(r)
            feat = np.stack([feat_buf.popleft() for _ in range(n_feat)])
            label = np.stack([label_buf.popleft() for _ in range(n_label)])
            feat = feat.reshape(self.batch, self.feat_seq, self.channels, -1).transpose(0, 2, 1, 3)
            label = label.reshape(self.batch, self.label_seq, *label.shape[1:])
            yield torch.tensor(feat), torch.tensor(label)


def time_epoch(batches, repeat: int) -> tuple[float, int, int, tuple]:
    """Best wall time of ``repeat`` passes over ``batches()``; batches, sequences, shapes."""
    best, shapes = float("inf"), None
    for _ in range(repeat):
        n_b = n_seq = 0
        t0 = time.perf_counter()
        for x, y, *_ in batches():
            n_b += 1
            n_seq += x.shape[0]
            shapes = shapes or (tuple(x.shape[1:]), tuple(y.shape[1:]), x.dtype, y.dtype)
        best = min(best, time.perf_counter() - t0)
    return best, n_b, n_seq, shapes


# ------------------------------------------------------------------ training step


def time_train_step(build, batch: int, label_seq: int, per: int, device: torch.device,
                    amp: bool, steps: int, warmup: int = 1) -> float:
    """Seconds per step (forward + ADPIT loss + backward + Adam) of a fresh model on one batch
    held in host memory (pinned on CUDA) and copied to ``device`` each step."""
    torch.manual_seed(0)
    model = build().to(device).train()
    with_distance = bool(getattr(model, "with_distance", False))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, CHANNELS, label_seq * per, BINS, generator=g)
    slots, _, classes = ADPIT_SHAPE
    y = torch.rand(batch, label_seq, slots, 5 if with_distance else 4, classes, generator=g) * 2 - 1
    y[:, :, :, 0] = (y[:, :, :, 0] > 0.8).float()
    if device.type == "cuda":
        x, y = x.pin_memory(), y.pin_memory()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step():
        xb, yb = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=amp):
            out = model(xb)
        loss = adpit_loss(out.float(), yb, with_distance=with_distance)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    return mean_step_seconds(step, steps, warmup, sync)


# ------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=74)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each clip")
    ap.add_argument("--batch", type=int, default=128, help="sequences per data batch")
    ap.add_argument("--chunk-s", type=float, default=5.0, help="sequence length, seconds")
    ap.add_argument("--repeat", type=int, default=3, help="data: best of this many epochs")
    ap.add_argument("--train-batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3, help="timed training steps per device")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    label_seq = int(round(args.chunk_s * LABEL_HZ))
    threads = torch.get_num_threads()
    data = random_split(args.clips, args.seconds, args.seed)
    per = data.frames_per_label
    t0 = time.perf_counter()
    ds = ChunkDataset(data, label_seq)
    t_ds = time.perf_counter() - t0
    gen = BaselineStyleGenerator(data, args.batch, label_seq)
    print(f"{args.clips} clips x {args.seconds:g} s ({data.audio_seconds / 3600:.2f} h) of "
          f"random features {(CHANNELS, int(args.seconds * FEATURE_HZ), BINS)}, targets "
          f"{(int(args.seconds * LABEL_HZ), *ADPIT_SHAPE)}; batches of {args.batch} x "
          f"{args.chunk_s:g} s; {platform.processor() or platform.machine()}, torch "
          f"{torch.__version__}, {threads} CPU threads; ChunkDataset built in {t_ds:.2f} s")

    # same data, same order when unshuffled: the first batches must be identical
    xa, ya, _ = next(iter(seldbench_loader(ds, args.batch, False, args.seed)))
    xb, yb = next(gen.generate(shuffle=False))
    assert xa.shape == xb.shape and ya.shape == yb.shape, (xa.shape, xb.shape, ya.shape, yb.shape)
    if args.seconds * LABEL_HZ % label_seq == 0:  # no clip tails, so the same sequences
        assert torch.equal(xa, xb) and torch.equal(ya, yb), "loaders disagree on batch 0"

    rows = []
    t_ref, nb_ref, ns_ref, sh_ref = time_epoch(
        lambda: gen.generate(shuffle=True, seed=args.seed), args.repeat)
    t_sb, nb_sb, ns_sb, sh_sb = time_epoch(
        lambda: seldbench_loader(ds, args.batch, True, args.seed), args.repeat)
    assert sh_ref == sh_sb, (sh_ref, sh_sb)
    ref_rate = ns_ref * args.chunk_s / t_ref
    rows.append(("data", "baseline-style generator (per-row deque, np.stack)", args.batch,
                 f"{nb_ref} in {t_ref:.2f} s", nb_ref / t_ref, ref_rate, "1.0x"))
    sb_rate = ns_sb * args.chunk_s / t_sb
    rows.append(("data", "seldbench ChunkDataset + DataLoader", args.batch,
                 f"{nb_sb} in {t_sb:.2f} s", nb_sb / t_sb, sb_rate, f"{sb_rate / ref_rate:.1f}x"))

    reg = get_registry()
    dspec, fspec = reg.get_dataset("synth-mini"), reg.get_feature("foa_logmel_iv")
    mspec = reg.get_model("crnn")
    assert fspec.frames_per_label == per

    def build():
        return mspec.build({}, dspec, fspec)

    devices = [("CPU, 1 thread", torch.device("cpu"), 1, False),
               (f"CPU, {threads} threads", torch.device("cpu"), threads, False)]
    if torch.cuda.is_available():
        devices.append((f"{torch.cuda.get_device_name(0)}, AMP", torch.device("cuda"), threads,
                        True))
    for label, device, n_threads, amp in devices:
        torch.set_num_threads(n_threads)
        s = time_train_step(build, args.train_batch, label_seq, per, device, amp, args.steps)
        torch.set_num_threads(threads)
        rows.append(("train step", f"crnn, {label}", args.train_batch,
                     f"{args.steps} in {s * args.steps:.2f} s", 1 / s,
                     args.train_batch * args.chunk_s / s,
                     f"loader {sb_rate / (args.train_batch * args.chunk_s / s):,.0f}x faster"))

    head = ("stage", "implementation", "batch", "batches timed", "batches / s", "audio s / s",
            "ratio")
    print_table(head, [(stage, impl, b, timed, f"{bps:.2f}", f"{rate:,.0f}", ratio)
                       for stage, impl, b, timed, bps, rate, ratio in rows])


if __name__ == "__main__":
    main()
