"""Trainer unit tests on a toy model: early stopping, gradient clipping, best selection."""
import torch

from seldbench.training.trainer import TrainConfig, Trainer, load_checkpoint


class _Loader:
    """Four fixed batches; no generator (like a distributed sampler)."""

    generator = None
    sampler = None

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.batches = [(torch.randn(4, 3, generator=g), torch.randn(4, 2, generator=g), {})
                        for _ in range(4)]

    def __iter__(self):
        return iter(self.batches)


def _trainer(tmp_path, values, **cfg):
    model = torch.nn.Linear(3, 2)
    calls = iter(values)

    def validate(m):
        v = next(calls)
        return v, {"SELD": v}

    train = TrainConfig(**{"epochs": len(values), "batch_size": 4, "lr": 0.1, "amp": False, **cfg})
    return Trainer(model, torch.nn.functional.mse_loss, _Loader(), validate, False, tmp_path,
                   train, torch.device("cpu"), 0, 5.0, progress=False)


def test_best_epoch_is_kept_and_early_stopping_stops(tmp_path):
    t = _trainer(tmp_path, [0.9, 0.5, 0.6, 0.7, 0.8, 0.1], early_stop_patience=2)
    h = t.fit()
    assert h.best_epoch == 2 and h.best_value == 0.5
    assert [e["epoch"] for e in h.epochs] == [1, 2, 3, 4]  # two epochs without improvement
    assert load_checkpoint(t.best_path)["epoch"] == 2


def test_gradient_clipping_bounds_the_update(tmp_path):
    big = _Loader()
    big.batches = [(torch.full((4, 3), 1e3), torch.zeros(4, 2), {})]
    steps = {}
    for clip in (0.0, 1e-3):
        t = _trainer(tmp_path / str(clip), [1.0], grad_clip=clip)
        t.loader = big
        t.opt = torch.optim.SGD(t.module.parameters(), lr=1.0)
        before = [p.detach().clone() for p in t.module.parameters()]
        t.fit()
        steps[clip] = sum(float((p.detach() - b).norm() ** 2) for p, b in
                          zip(t.module.parameters(), before)) ** 0.5
    # float32 parameters: the measured step carries ~1e-7 relative rounding
    assert steps[1e-3] <= 1e-3 * (1 + 1e-4) < steps[0.0]


def test_adamw_and_step_decay_follow_the_config_and_resume(tmp_path):
    t = _trainer(tmp_path, [0.5] * 3, optimizer="adamw", weight_decay=0.01,
                 lr_milestones=(1, 2), lr_gamma=0.5)
    assert isinstance(t.opt, torch.optim.AdamW)
    t.cfg.epochs = 2
    t.fit()  # lr 0.1 for epoch 1, 0.05 for epoch 2, then 0.025
    assert abs(t.opt.param_groups[0]["lr"] - 0.025) < 1e-12
    again = _trainer(tmp_path, [0.5] * 3, optimizer="adamw", weight_decay=0.01,
                     lr_milestones=(1, 2), lr_gamma=0.5)
    assert again.resume() and again.start_epoch == 3
    assert abs(again.opt.param_groups[0]["lr"] - 0.025) < 1e-12


def test_unknown_optimizer_is_one_clear_error(tmp_path):
    import pytest

    from seldbench.errors import SeldbenchError

    with pytest.raises(SeldbenchError, match="train.optimizer='sgdx'.*adamw"):
        _trainer(tmp_path, [0.5], optimizer="sgdx")


# ---------------------------------------------------------------- checkpoints: safe loading

class _Payload:
    """Unpickling this runs ``Path(marker).touch()``: what a hostile checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _one_line_error(fn, match):
    import pytest

    from seldbench.errors import SeldbenchError

    with pytest.raises(SeldbenchError, match=match) as err:
        fn()
    assert "\n" not in str(err.value)
    return str(err.value)


def test_a_hostile_best_pt_is_refused_without_running_its_payload(tmp_path):
    marker = tmp_path / "payload-ran"
    best = tmp_path / "best.pt"
    torch.save({"epoch": 1, "model": {"w": _Payload(marker)}}, best)  # a torch zip archive
    msg = _one_line_error(lambda: load_checkpoint(best), "refused to load checkpoint")
    assert msg == f"{best}: refused to load checkpoint: it holds Python objects other than " \
        "tensors and plain values (getattr)"  # the first global it met: getattr(Path, 'touch')
    assert not marker.exists()
    import pickle

    best.write_bytes(pickle.dumps({"model": _Payload(marker)}))  # a bare pickle
    _one_line_error(lambda: load_checkpoint(best), f"{best}: cannot read checkpoint .*not a torch zip")
    assert not marker.exists()
    pickle.loads(best.read_bytes())  # the file does carry a payload: this is what it would do
    assert marker.exists()


def test_a_hostile_last_pt_is_refused_on_resume(tmp_path):
    marker = tmp_path / "payload-ran"
    t = _trainer(tmp_path, [0.5])
    t.fit()
    state = torch.load(t.last_path, weights_only=True)
    state["history"]["epochs"] = [_Payload(marker)]
    torch.save(state, t.last_path)
    again = _trainer(tmp_path, [0.5, 0.5])
    _one_line_error(again.resume, f"{t.last_path}: refused to load checkpoint: .*; delete it to "
                    "train this run again from epoch 1")
    assert not marker.exists()


def test_checkpoint_hash_is_checked_before_loading(tmp_path):
    from seldbench.results.records import file_sha256

    t = _trainer(tmp_path, [0.5])
    t.fit()
    digest = file_sha256(t.best_path)
    assert load_checkpoint(t.best_path, sha256=digest)["epoch"] == 1
    _one_line_error(lambda: load_checkpoint(t.best_path, sha256="0" * 64),
                    f"{t.best_path}: SHA-256 {digest[:12]}\\.\\.\\. is not the 000000000000\\.\\.\\. "
                    "its run record gives")


def test_truncated_and_foreign_checkpoints_name_the_file(tmp_path):
    t = _trainer(tmp_path, [0.5])
    t.fit()
    data = t.best_path.read_bytes()
    t.best_path.write_bytes(data[: len(data) // 2])
    _one_line_error(lambda: load_checkpoint(t.best_path), f"{t.best_path}: cannot read checkpoint")
    t.best_path.write_text("epoch: 1\n")
    _one_line_error(lambda: load_checkpoint(t.best_path), "not a torch zip archive")
    torch.save([1, 2], t.best_path)
    _one_line_error(lambda: load_checkpoint(t.best_path), "not a seldbench checkpoint")
    _one_line_error(lambda: load_checkpoint(tmp_path / "none.pt"), "none.pt: cannot read checkpoint")


def test_resume_restores_every_rng_and_ends_with_the_same_weights(tmp_path):
    """Python, numpy and torch global RNGs all feed the loss; a resumed run (after the RNGs were
    disturbed) must match an uninterrupted one bit for bit, through the safe loader."""
    import random

    import numpy as np

    from seldbench.training.trainer import seed_everything

    def noisy(out, y):
        noise = random.random() + float(np.random.rand()) + float(torch.rand(()))
        return torch.nn.functional.mse_loss(out, y) + 1e-2 * noise * out.mean()

    def trainer(folder, epochs):
        t = _trainer(folder, [0.9, 0.5, 0.7])
        t.loss, t.cfg.epochs = noisy, epochs
        t.validate = lambda m: (0.5, {"SELD": np.float64(0.5), "F": np.float32(0.25)})
        return t

    seed_everything(0)
    full = trainer(tmp_path / "full", 3)
    full.fit()
    seed_everything(0)
    trainer(tmp_path / "cut", 1).fit()
    seed_everything(123)  # whatever the RNGs hold now must not matter
    resumed = trainer(tmp_path / "cut", 3)
    assert resumed.resume() and resumed.start_epoch == 2
    resumed.fit()
    for a, b in zip(full.module.parameters(), resumed.module.parameters()):
        assert torch.equal(a, b)
    assert [e["loss"] for e in resumed.history.epochs] == [e["loss"] for e in full.history.epochs]
