"""EINV2 (event-independent network V2, per-track Conformers) as a model plugin: ``einv2``.

Architecture in :mod:`seldbench_plugins.einv2.model`; the published recipe in
``einv2.yaml`` (package data), a CPU-sized variant in ``configs/experiments/einv2-small.yaml``.
Output ``track_wise``; the loss is left as ``None``, meaning the core loss of that format,
:func:`seldbench.training.losses.pit_loss` (frame-level PIT over the 6 track orders,
0.5 BCE + 0.5 MSE). On stereo features (``model.output: null`` or ``stereo``) the heads
emit the DCASE 2025 ``multi_accdoa_stereo`` output (x, y, distance, onscreen logit per track
and class), trained with the core stereo ADPIT loss (see :mod:`.model`).
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
    "sed_channels": 4,  # leading log-mel channels fed to the SED branch
    "with_distance": False,
    "output": None,  # null: "stereo" for stereo features, else "track_wise"
    "channels": [64, 128, 256, 512],
    "t_pool": None,  # null: from the feature set's frames per label frame (8 -> [2, 2, 2, 1])
    "f_pool": [2, 2, 2, 2],
    "d_model": 512,
    "heads": 8,
    "conformer_blocks": 2,
    "ff_mult": 4,
    "conv_kernel": 31,
    "dropout": 0.1,
    "tracks": 3,
}


def build(cfg: Mapping[str, Any] | None, dataset: DatasetSpec,
          feature: FeatureSpec | None = None):
    """Build EINV2 from the ``model:`` config section and the dataset (class count).

    ``feature`` (the run's :class:`FeatureSpec`) supplies the input channels, bins and the time
    pools (from its frames per label frame) where the config leaves them null. Without it,
    ``model.in_channels`` and ``model.in_bins`` must be set and the time pools default to
    ``[2, 2, 2, 1]`` (8 frames per label frame). Unknown keys and contradictions are
    :class:`SeldbenchError`.
    """
    import math

    opts = model_options("einv2", cfg, CONFIG_KEYS)
    channels, bins = input_shape("einv2", opts, feature)

    from seldbench_plugins.einv2.model import EINV2, time_pools

    blocks = len(opts["channels"])
    if len(opts["f_pool"]) != blocks:
        raise SeldbenchError(f"model 'einv2': model.f_pool {list(opts['f_pool'])} and "
                             f"model.channels {list(opts['channels'])} differ in length")
    per_label = getattr(feature, "frames_per_label", None)
    if opts["t_pool"] is None:
        opts["t_pool"] = time_pools(per_label or 8, blocks)
    if len(opts["t_pool"]) != blocks:
        raise SeldbenchError(f"model 'einv2': model.t_pool {list(opts['t_pool'])} and "
                             f"model.channels {list(opts['channels'])} differ in length")
    prod = math.prod(int(t) for t in opts["t_pool"])
    if per_label is not None and prod != per_label:
        raise SeldbenchError(f"model 'einv2': model.t_pool {list(opts['t_pool'])} pools "
                             f"{prod} frames per label frame, feature set '{feature.name}' "
                             f"has {per_label}")
    if math.prod(int(f) for f in opts["f_pool"]) > bins:
        raise SeldbenchError(f"model 'einv2': model.f_pool {list(opts['f_pool'])} leaves no "
                             f"bins of {bins}")
    if not 0 < int(opts["sed_channels"]) <= channels:
        raise SeldbenchError(f"model 'einv2': model.sed_channels {opts['sed_channels']} not in "
                             f"1..{channels} (input channels)")
    if int(opts["d_model"]) % int(opts["heads"]):
        raise SeldbenchError(f"model 'einv2': model.d_model {opts['d_model']} is not a multiple "
                             f"of model.heads {opts['heads']}")
    if int(opts["conv_kernel"]) % 2 == 0:
        raise SeldbenchError(f"model 'einv2': model.conv_kernel {opts['conv_kernel']} must be odd")
    if int(opts["tracks"]) < 1:
        raise SeldbenchError(f"model 'einv2': model.tracks {opts['tracks']} must be >= 1")
    output = output_choice("einv2", opts, feature, "track_wise")
    if output == "stereo" and int(opts["tracks"]) != 3:
        raise SeldbenchError(f"model 'einv2': model.tracks {opts['tracks']}: the stereo output "
                             f"has 3 tracks")

    return EINV2(channels, bins, len(dataset.classes), stereo=output == "stereo", **opts)


@hookimpl
def seldbench_register_models():
    return [
        ModelSpec(
            name="einv2", version="1.0", build=build,
            # stereo: the mid/side set first, its 4 log-mels being what sed_channels 4 expects
            features=("foa_logmel_iv_128", "foa_logmel_iv", "mic_logmel_gcc",
                      "stereo_logmel_ild_ipd_ms", "stereo_logmel_ild_ipd"),
            output="track_wise", loss=None,  # None: the core loss of the output format
            config=Path(__file__).with_name("einv2.yaml"),
            # output: added with the stereo head; null keeps FOA/MIC. Not with_distance: it has
            # been a key since 1.0, so the records hash it and listing it would change theirs
            neutral_keys={"output": None},
            description="EINV2: SED and DOA CNN branches with cross-stitch, 3 tracks of "
                        "per-track Conformers, track-wise output, PIT loss (~85 M parameters); "
                        "multi_accdoa_stereo on stereo features"),
    ]
