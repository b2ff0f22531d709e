"""The CRNN baseline (DCASE 2023 SELDnet) as a model plugin: ``crnn``.

Architecture in :mod:`seldbench_plugins.crnn.model`; the published recipe in
``crnn.yaml`` (package data). Output ``multi_accdoa``; the loss is left as ``None``, meaning the
core loss of that format, :func:`seldbench.training.losses.adpit_loss` (ADPIT MSE), so every
multi-ACCDOA model trains with the same loss code. On stereo features (``model.output: null``
or ``stereo``) the head is the DCASE 2025 ``multi_accdoa_stereo`` output (x, y, distance,
onscreen logit per track and class), trained with the core stereo ADPIT loss.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seldbench.api import SeldbenchError, input_shape, model_options, output_choice
from seldbench.hookspecs import hookimpl
from seldbench.specs import DatasetSpec, FeatureSpec, ModelSpec

#: Config keys the builder understands (``model:`` section), with the constructor defaults.
CONFIG_KEYS: dict[str, Any] = {
    "in_channels": None,  # null: the feature set's channels
    "in_bins": None,  # null: the feature set's bins
    "with_distance": False,
    "output": None,  # null: "stereo" for stereo features, else "multi_accdoa"
    "conv_filters": 64,
    "t_pool": None,  # null: [frames_per_label, 1, 1] (5 for the 20-ms features)
    "f_pool": [4, 4, 2],
    "rnn_size": 128,
    "rnn_layers": 2,
    "attn_layers": 2,
    "attn_heads": 8,
    "fnn_size": 128,
    "fnn_layers": 1,
    "dropout": 0.05,
}


def build(cfg: Mapping[str, Any] | None, dataset: DatasetSpec,
          feature: FeatureSpec | None = None):
    """Build the CRNN from the ``model:`` config section and the dataset (class count).

    ``feature`` (the :class:`FeatureSpec` the run uses) supplies the input channels, bins and
    the first time pool (frames per label frame) where the config leaves them null. Without it,
    ``model.in_channels`` and ``model.in_bins`` must be set, and the time pools default to the
    baseline's ``[5, 1, 1]``. Unknown keys and contradictions are :class:`SeldbenchError`.
    """
    opts = model_options("crnn", cfg, CONFIG_KEYS)
    channels, bins = input_shape("crnn", opts, feature)

    per_label = getattr(feature, "frames_per_label", None)
    if opts["t_pool"] is None:
        opts["t_pool"] = [per_label or 5] + [1] * (len(opts["f_pool"]) - 1)
    prod = 1
    for t in opts["t_pool"]:
        prod *= int(t)
    if per_label is not None and prod != per_label:
        raise SeldbenchError(f"model 'crnn': model.t_pool {list(opts['t_pool'])} pools "
                             f"{prod} frames per label frame, feature set '{feature.name}' "
                             f"has {per_label}")
    if len(opts["t_pool"]) != len(opts["f_pool"]):
        raise SeldbenchError(f"model 'crnn': model.t_pool {list(opts['t_pool'])} and "
                             f"model.f_pool {list(opts['f_pool'])} differ in length")

    output = output_choice("crnn", opts, feature, "multi_accdoa")

    from seldbench_plugins.crnn.model import CRNN

    return CRNN(channels, bins, len(dataset.classes), stereo=output == "stereo", **opts)


@hookimpl
def seldbench_register_models():
    return [
        ModelSpec(
            name="crnn", version="1.0", build=build,
            features=("foa_logmel_iv", "mic_logmel_gcc", "mic_salsa_lite",
                      "stereo_logmel_ild_ipd", "stereo_logmel_ild_ipd_ms"),
            output="multi_accdoa", loss=None,  # None: the core ADPIT MSE loss
            config=Path(__file__).with_name("crnn.yaml"),
            neutral_keys={"output": None},  # added with the stereo head; null keeps FOA/MIC as before
            description="DCASE 2023 SELDnet baseline: 3 conv blocks, BiGRU, 2 self-attention "
                        "blocks, multi-ACCDOA head, ADPIT loss (~0.74 M parameters on FOA)"),
    ]
