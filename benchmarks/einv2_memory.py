"""EINV2 training-step memory and throughput per batch size, full and small configs.

One training step = forward + :func:`~seldbench.training.losses.pit_loss` + backward + AdamW
step on random ``foa_logmel_iv_128`` features of ``--chunk-s`` seconds (5 s: ``(B, 7, 400,
128)``) and random 3-track targets for 13 classes. Each (config, batch size) runs in a fresh
subprocess, so the CPU figure is that process's peak resident memory (``ru_maxrss``: Python,
torch, the model, the AdamW state and the step's activations), printed with the resident
memory after building the model (before any step) for reference. On CUDA the figure is
``torch.cuda.max_memory_allocated`` (AMP off unless ``--amp``). Throughput is seconds of audio
per second of wall time over ``--steps`` steps after one warm-up step.

    python benchmarks/einv2_memory.py                          # CPU, 1 thread, batches 1 4 8
    python benchmarks/einv2_memory.py --device cuda --batches 1 8 32 --amp
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLASSES = 13


def one(config: str, batch: int, chunk_s: float, device: str, threads: int, steps: int,
        amp: bool) -> dict:
    """Build, warm up, time ``steps`` steps; the figures as a dict (run in a subprocess)."""
    import resource

    import torch

    from seldbench.config import resolve
    from seldbench.registry import get_registry
    from seldbench.specs import DatasetSpec
    from seldbench.training.losses import pit_loss
    from timing import mean_step_seconds

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    experiment = ROOT / "configs" / "experiments" / "einv2-small.yaml" if config == "small" \
        else None
    cfg = resolve(model_yaml=ROOT / "configs" / "models" / "einv2.yaml", experiment=experiment)
    reg = get_registry()
    feature = reg.get_feature("foa_logmel_iv_128")
    dataset = DatasetSpec(name="bench", version="0",
                          classes=tuple(f"c{k}" for k in range(CLASSES)), splits=("train",),
                          list_clips=lambda root, split: [], metric_suites=())
    dev = torch.device(device)
    model = reg.get_model("einv2").build(cfg["model"], dataset, feature).to(dev).train()
    params = sum(p.numel() for p in model.parameters())
    rss_model_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    frames = round(chunk_s * 10)
    x = torch.randn(batch, feature.channels, frames * feature.frames_per_label, feature.bins,
                    device=dev)
    cls = torch.randint(-1, CLASSES, (batch, frames, 3), device=dev)
    onehot = torch.nn.functional.one_hot(cls.clamp(min=0), CLASSES).float() * (cls >= 0)[..., None]
    xyz = torch.nn.functional.normalize(torch.randn(batch, frames, 3, 3, device=dev), dim=-1)
    y = torch.cat([onehot, xyz * (cls >= 0)[..., None]], dim=-1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
    use_amp = amp and dev.type == "cuda"
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def step():
        with torch.autocast(dev.type, enabled=use_amp):
            out = model(x)
        loss = pit_loss(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    sec = mean_step_seconds(step, steps, 1, sync)
    out = {"config": config, "batch": batch, "params": params, "step_s": sec,
           "audio_s_per_s": batch * chunk_s / sec, "rss_model_mb": rss_model_mb,
           "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if dev.type == "cuda":
        out["gpu_peak_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=["small", "full"], choices=["small", "full"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 4, 8])
    ap.add_argument("--chunk-s", type=float, default=5.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--steps", type=int, default=1, help="timed steps after one warm-up")
    ap.add_argument("--amp", action="store_true", help="autocast on CUDA")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = ap.parse_args()
    if args.one:
        config, batch = args.one.split(":")
        print(json.dumps(one(config, int(batch), args.chunk_s, args.device, args.threads,
                             args.steps, args.amp)))
        return
    import torch

    print(f"EINV2 training step (forward + PIT loss + backward + AdamW), {args.chunk_s:g}-s "
          f"chunks, {args.device}, {args.threads} thread(s); "
          f"{platform.processor() or platform.machine()}, torch {torch.__version__}")
    gpu = args.device.startswith("cuda")
    print(f"| config | params | batch | step s | audio s/s | RSS after build MB | peak RSS MB"
          f"{' | GPU peak MB' if gpu else ''} |")
    print(f"|---|---|---|---|---|---|---{'|---' if gpu else ''}|")
    for config in args.configs:
        for batch in args.batches:
            cmd = [sys.executable, __file__, "--one", f"{config}:{batch}",
                   "--chunk-s", str(args.chunk_s), "--device", args.device,
                   "--threads", str(args.threads), "--steps", str(args.steps),
                   *(["--amp"] if args.amp else [])]
            res = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if res.returncode:
                print(f"| {config} | | {batch} | failed: "
                      f"{(res.stderr.strip().splitlines() or ['?'])[-1]} |")
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"| {config} | {r['params'] / 1e6:.2f} M | {batch} | {r['step_s']:.2f} | "
                  f"{r['audio_s_per_s']:.2f} | {r['rss_model_mb']:.0f} | {r['rss_peak_mb']:.0f}"
                  + (f" | {r['gpu_peak_mb']:.0f}" if gpu else "") + " |", flush=True)


if __name__ == "__main__":
    main()
