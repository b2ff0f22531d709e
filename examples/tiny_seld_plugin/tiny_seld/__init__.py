"""tiny-seld: the smallest useful seldbench model plugin.

One hook returns one ModelSpec. The core does everything else: features, labels, the ADPIT
loss (``loss=None`` means the core loss of the ``multi_accdoa`` output), training, decoding,
scoring and the run record.
"""
from __future__ import annotations

from seldbench.hookspecs import hookimpl
from seldbench.specs import ModelSpec


def build(cfg, dataset, feature):
    """``cfg``: the ``model:`` config section; ``dataset``/``feature``: the run's specs."""
    from tiny_seld.model import TinySELD

    return TinySELD(feature.channels, feature.bins, len(dataset.classes),
                    frames_per_label=feature.frames_per_label, width=int(cfg.get("width", 32)))


@hookimpl
def seldbench_register_models():
    return [ModelSpec(name="tiny-seld", version="0.1.0", build=build,
                      features=("foa_logmel_iv", "mic_logmel_gcc"), output="multi_accdoa",
                      description="two conv layers and a linear multi-ACCDOA head")]
