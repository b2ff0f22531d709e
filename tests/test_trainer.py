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
