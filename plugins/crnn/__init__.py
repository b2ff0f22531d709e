"""The CRNN baseline (DCASE 2023 SELDnet) as a model plugin: ``crnn``.

Architecture in :mod:`seldbench_plugins.crnn.model`; the published recipe in
``crnn.yaml`` (package data). Output ``multi_accdoa``; the loss is left as ``None``, meaning the
core loss of that format, :func:`seldbench.training.losses.adpit_loss` (ADPIT MSE), so every
multi-ACCDOA model trains with the same loss code. On stereo features (``model.output: null``
or ``stereo``) the head is the DCASE 2025 ``multi_accdoa_stereo`` output (x, y, distance,
onscreen logit per track and class), trained with the core stereo ADPIT loss.

``crnn-av`` is the DCASE 2025 audio-visual baseline on top of it: a visual vector per label
frame from a frozen pretrained image encoder, cached as a side input (:mod:`.video`), fused
into the audio embeddings by a Transformer decoder (:class:`.model.AudioVisualCRNN`); stereo
features and output only. A model of its own rather than a ``crnn`` option because side inputs
and video are declared per model (:class:`seldbench.specs.ModelSpec`): on ``crnn`` they would
change every audio-only CRNN run (its data identity, the augmentations allowed with side
inputs). Details and the comparison with the 2025 baseline: plugins/crnn/README.md.
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


#: The ``crnn-av`` model section: the CRNN's keys (stereo head, so no output choice or
#: with_distance) plus the image encoder and the fusion (crnn-av.yaml repeats them with comments).
AV_CONFIG_KEYS: dict[str, Any] = {
    **{k: v for k, v in CONFIG_KEYS.items() if k not in ("output", "with_distance")},
    "video": {"encoder": "tf_efficientnet_lite0", "weights": None, "stage": -1,
              "input_size": [128, 224]},
    "fusion_layers": 2,
    "fusion_heads": 8,
    "fusion_ff": 2048,
    "fusion_dropout": 0.1,
}


def _crnn_options(model: str, opts: dict, feature: FeatureSpec | None) -> tuple[int, int]:
    """The input (channels, bins); fills the time pools in ``opts`` and checks them."""
    channels, bins = input_shape(model, opts, feature)
    per_label = getattr(feature, "frames_per_label", None)
    if opts["t_pool"] is None:
        opts["t_pool"] = [per_label or 5] + [1] * (len(opts["f_pool"]) - 1)
    prod = 1
    for t in opts["t_pool"]:
        prod *= int(t)
    if per_label is not None and prod != per_label:
        raise SeldbenchError(f"model '{model}': model.t_pool {list(opts['t_pool'])} pools "
                             f"{prod} frames per label frame, feature set '{feature.name}' "
                             f"has {per_label}")
    if len(opts["t_pool"]) != len(opts["f_pool"]):
        raise SeldbenchError(f"model '{model}': model.t_pool {list(opts['t_pool'])} and "
                             f"model.f_pool {list(opts['f_pool'])} differ in length")
    return channels, bins


def build(cfg: Mapping[str, Any] | None, dataset: DatasetSpec,
          feature: FeatureSpec | None = None):
    """Build the CRNN from the ``model:`` config section and the dataset (class count).

    ``feature`` (the :class:`FeatureSpec` the run uses) supplies the input channels, bins and
    the first time pool (frames per label frame) where the config leaves them null. Without it,
    ``model.in_channels`` and ``model.in_bins`` must be set, and the time pools default to the
    baseline's ``[5, 1, 1]``. Unknown keys and contradictions are :class:`SeldbenchError`.
    """
    opts = model_options("crnn", cfg, CONFIG_KEYS)
    channels, bins = _crnn_options("crnn", opts, feature)
    output = output_choice("crnn", opts, feature, "multi_accdoa")

    from seldbench_plugins.crnn.model import CRNN

    return CRNN(channels, bins, len(dataset.classes), stereo=output == "stereo", **opts)


def build_av(cfg: Mapping[str, Any] | None, dataset: DatasetSpec,
             feature: FeatureSpec | None = None):
    """Build the audio-visual CRNN (``crnn-av``) from its ``model:`` section; the image encoder
    is loaded once to check its weights and size the visual vectors."""
    opts = model_options("crnn-av", cfg, AV_CONFIG_KEYS)
    channels, bins = _crnn_options("crnn-av", opts, feature)
    if getattr(feature, "audio_format", "stereo") != "stereo":
        raise SeldbenchError(f"model 'crnn-av': feature set '{feature.name}' is not stereo; "
                             f"the audio-visual CRNN is the DCASE 2025 stereo model")
    size = opts["video"]["input_size"]
    if not (isinstance(size, (list, tuple)) and len(size) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        raise SeldbenchError(f"model 'crnn-av': model.video.input_size={size!r}: [height, "
                             f"width] in pixels")
    fusion = {k: opts.pop(f"fusion_{k}") for k in ("layers", "heads", "ff", "dropout")}
    if int(opts["rnn_size"]) % int(fusion["heads"]):
        raise SeldbenchError(f"model 'crnn-av': model.fusion_heads={fusion['heads']} does not "
                             f"divide model.rnn_size={opts['rnn_size']}")
    from seldbench_plugins.crnn.model import AudioVisualCRNN
    from seldbench_plugins.crnn.video import image_encoder, visual_dim

    video = opts.pop("video")
    return AudioVisualCRNN(channels, bins, len(dataset.classes),
                           visual_dim=visual_dim(image_encoder(video), video), fusion=fusion,
                           **opts)


def side_inputs_av(cfg, dataset, clips, frames, *, training, cache_dir, device):
    """``video`` (cached visual vectors) and ``video_mask`` of every clip (:mod:`.video`)."""
    from seldbench_plugins.crnn.video import VideoFeatures, clip_streams

    opts = model_options("crnn-av", cfg, AV_CONFIG_KEYS)
    return clip_streams(VideoFeatures(opts["video"], cache_dir, device), clips, frames,
                        has_video=dataset.has_video)


@hookimpl
def seldbench_register_models():
    return [
        ModelSpec(
            name="crnn", version="1.0", build=build,
            features=("foa_logmel_iv", "mic_logmel_gcc", "mic_salsa_lite",
                      "stereo_logmel_ild_ipd", "stereo_logmel_ild_ipd_ms", "stereo_logmel"),
            output="multi_accdoa", loss=None,  # None: the core ADPIT MSE loss
            config=Path(__file__).with_name("crnn.yaml"),
            neutral_keys={"output": None},  # added with the stereo head; null keeps FOA/MIC as before
            description="DCASE 2023 SELDnet baseline: 3 conv blocks, BiGRU, 2 self-attention "
                        "blocks, multi-ACCDOA head, ADPIT loss (~0.74 M parameters on FOA)"),
        ModelSpec(
            name="crnn-av", version="1.0", build=build_av,
            features=("stereo_logmel_ild_ipd", "stereo_logmel_ild_ipd_ms", "stereo_logmel"),
            output="multi_accdoa_stereo", loss=None,  # None: the core stereo ADPIT loss
            side_inputs=side_inputs_av, needs_video=True,
            config=Path(__file__).with_name("crnn-av.yaml"),
            description="DCASE 2025 audio-visual baseline: the CRNN + per-frame visual "
                        "vectors of a frozen image encoder fused by a 2-layer Transformer "
                        "decoder, stereo output with onscreen flags"),
    ]
