"""CRATI, contrastive audio-image-text multimodal SELD, as a model plugin: ``crati``.

The audio trunk is any registered model whose module is a :class:`seldbench.specs.AudioTrunk`
(``model.backbone``: the CRNN, multi-ACCDOA, or EINV2, track-wise; either emits
``multi_accdoa_stereo`` on stereo features), taken from the registry; the
image encoder (timm) and the text encoder (transformers) are pretrained, frozen and loaded from
local files; their embeddings are computed once per clip and cached (:mod:`.embeddings`) and
reach the model as side inputs (:attr:`seldbench.specs.ModelSpec.side_inputs`). Text is a
training signal only; video is used at test time when a clip has it. Design and ablations:
plugins/crati/README.md.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seldbench.api import SeldbenchError, get_model, model_options
from seldbench.hookspecs import hookimpl
from seldbench.specs import AudioTrunk, DatasetSpec, FeatureSpec, ModelSpec, model_output

#: The model: section, with defaults (crati.yaml beside this file repeats them with comments).
CONFIG_KEYS: dict[str, Any] = {
    "backbone": "crnn",  # the audio trunk, a registered model: "crnn" (multi-ACCDOA) or
    # "einv2" (track-wise)
    "trunk": {},  # the backbone's own model keys (its CONFIG_KEYS)
    "with_distance": False,
    "embed_dim": 256,
    "fusion": True,
    "fusion_heads": 4,
    "fuse_into": "all",  # the backbone's channels the image evidence is added to: all, or a
    # stream of it (einv2: sed or doa)
    "video_dropout": 0.0,
    "class_queries": False,
    "token_dim": None,
    "slot_kernel": 1,
    "presence": False,
    "visual_residual": False,
    "contrast_frames": 512,
    "image": {"encoder": "tf_efficientnet_lite0", "weights": None, "stage": 3,
              "input_size": [64, 128], "every": 2, "finetune": False,
              "finetune_blocks": 0},
    "text": {"encoder": None, "seed": 0},
    "loss": {"seld": 1.0, "audio_text": 0.01, "audio_image": 0.01, "align": 0.01,
             "grounding": 0.0, "presence": 0.0, "positive_sectors": 0,
             "temperature": 0.07, "learnable_temperature": True},
}


def backbone_spec(name) -> ModelSpec:
    """The registered model that ``model.backbone`` names (not CRATI itself)."""
    try:
        if name == "crati":
            raise SeldbenchError("CRATI cannot be its own trunk")
        return get_model(str(name))
    except SeldbenchError as exc:
        raise SeldbenchError(f"model.backbone={name!r}: {exc}") from None


def build_trunk(opts: dict, dataset: DatasetSpec, feature: FeatureSpec | None):
    """The audio trunk of the resolved options and the output format it emits."""
    spec = backbone_spec(opts["backbone"])
    trunk = spec.build({**opts["trunk"], "with_distance": opts["with_distance"]}, dataset,
                       feature)
    if not isinstance(trunk, AudioTrunk):
        raise SeldbenchError(f"model.backbone={opts['backbone']!r}: its module has no "
                             f"embed/decode split (seldbench.specs.AudioTrunk), so it cannot "
                             f"be a trunk")
    return trunk, model_output(trunk, spec)[0]


def trunk_output(opts: dict, dataset: DatasetSpec) -> str:
    """The output format the trunk emits on ``dataset``, without building it: the 2025 stereo
    labels train only ``multi_accdoa_stereo`` (what the CRNN and EINV2 emit on stereo
    features), other labels the backbone's declared format."""
    if dataset.metadata_format == "dcase2025":
        return "multi_accdoa_stereo"
    return backbone_spec(opts["backbone"]).output


def resolve(cfg: Mapping[str, Any] | None) -> dict:
    """The model section with defaults filled in; unknown keys are one clear error."""
    return model_options("crati", cfg, CONFIG_KEYS, open_keys=("trunk",))


def _uses(opts: dict) -> tuple[bool, bool]:
    """(image, text): which side streams the configuration needs."""
    loss = opts["loss"]
    image = bool(opts["fusion"]) or bool(loss["audio_image"]) or bool(loss["align"])
    text = bool(loss["audio_text"]) or bool(loss["align"])
    return image, text


def build(cfg: Mapping[str, Any] | None, dataset: DatasetSpec, feature: FeatureSpec | None = None):
    """CRATI from the ``model:`` section, the dataset (classes) and the feature set."""
    from seldbench_plugins.crati.model import CRATI

    opts = resolve(cfg)
    trunk, output_format = build_trunk(opts, dataset, feature)  # first: the trunk's init of
    encoder, grid = _image_encoder(opts["image"])  # this seed, as the backbone alone
    loss = opts["loss"]
    weights = loss_weights(opts)
    _whole(loss["positive_sectors"], "loss.positive_sectors", 0)  # the loss factory's, checked now
    if weights["grounding"] and not (opts["fusion"] and opts["class_queries"]):
        raise SeldbenchError("model.loss.grounding needs model.fusion and model.class_queries")
    if weights["presence"] and not (opts["fusion"] and opts["class_queries"] and opts["presence"]):
        raise SeldbenchError("model.loss.presence needs model.fusion, model.class_queries and "
                             "model.presence")
    if opts["visual_residual"] and not (opts["fusion"] and opts["class_queries"]
                                        and opts["presence"]):
        raise SeldbenchError("model.visual_residual needs model.fusion, model.class_queries and "
                             "model.presence")
    if opts["visual_residual"] and output_format != "multi_accdoa":
        raise SeldbenchError(f"model.visual_residual needs a multi-ACCDOA output (the crnn "
                             f"backbone on FOA/MIC features), not {output_format} "
                             f"({opts['backbone']})")
    tuned = bool(opts["image"]["finetune"])
    last = _whole(opts["image"]["finetune_blocks"], "image.finetune_blocks", 0)
    tail = encoder.tail(last, *opts["image"]["input_size"]) if tuned and last else None
    streams = ["all", *trunk.streams]
    if opts["fuse_into"] not in streams:
        raise SeldbenchError(f"model.fuse_into={opts['fuse_into']!r}: one of "
                             f"{', '.join(streams)} for backbone {opts['backbone']}")
    return CRATI(trunk, output_format=output_format, image_dim=encoder.channels, grid=grid,
                 projection=dataset.video_projection,
                 image_encoder=encoder if tuned and not last else None, image_tail=tail,
                 every=int(opts["image"]["every"]), text_dim=_text_dim(opts["text"]),
                 embed_dim=int(opts["embed_dim"]), fusion=bool(opts["fusion"]),
                 fusion_heads=int(opts["fusion_heads"]),
                 video_dropout=_share(opts["video_dropout"], "video_dropout"),
                 class_queries=bool(opts["class_queries"]),
                 token_dim=_whole(opts["token_dim"], "token_dim", 1) if opts["token_dim"] is not None
                 else None,
                 slot_kernel=_odd(opts["slot_kernel"], "slot_kernel"),
                 presence=bool(opts["presence"]),
                 visual_residual=bool(opts["visual_residual"]),
                 fuse_into=str(opts["fuse_into"]), weights=weights,
                 temperature=float(loss["temperature"]),
                 learnable_temperature=bool(loss["learnable_temperature"]))


def loss_weights(opts: dict) -> dict[str, float]:
    """The weight of each loss term, from the resolved options."""
    return {k: float(opts["loss"][k]) for k in ("seld", "audio_text", "audio_image", "align",
                                                "grounding", "presence")}


def _share(value, key: str) -> float:
    try:
        share = float(value)
    except (TypeError, ValueError):
        share = -1.0
    if not 0.0 <= share < 1.0:
        raise SeldbenchError(f"model.{key}={value!r}: a share in [0, 1)")
    return share


def _whole(value, key: str, least: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise SeldbenchError(f"model.{key}={value!r}: a whole number >= {least}")
    return value


def _odd(value, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value % 2 == 0:
        raise SeldbenchError(f"model.{key}={value!r}: an odd number of frames (1, 3, 5, ...)")
    return value


def _image_encoder(image_cfg: dict):
    """The configured image encoder (its weights checked and loaded) and its token grid."""
    from seldbench_plugins.crati.encoders import ImageEncoder

    enc = ImageEncoder(image_cfg["encoder"], image_cfg["weights"], stage=int(image_cfg["stage"]))
    return enc, enc.grid(*image_cfg["input_size"])


def _text_dim(text_cfg: dict) -> int | None:
    """Width of the text encoder's embeddings, from its config.json; None where the encoder is
    not on this machine: a trained model predicts without it (text is a training signal), and
    its text head is sized from the checkpoint when loaded."""
    import json
    from pathlib import Path

    from seldbench_plugins.crati.encoders import default_text_encoder

    try:
        where = Path(text_cfg["encoder"]).expanduser() if text_cfg["encoder"] else \
            default_text_encoder()
    except SeldbenchError:  # the default package is not installed
        return None
    config = where / "config.json"
    if not where.exists():
        return None
    if not config.is_file():
        raise SeldbenchError(f"model.text.encoder: {where}: no config.json (not a local "
                             f"transformers model directory)")
    try:
        return int(json.loads(config.read_text())["hidden_size"])
    except (ValueError, KeyError, TypeError):
        raise SeldbenchError(f"{config}: no hidden_size") from None


def side_inputs(cfg, dataset, clips, frames, *, training, cache_dir, device):
    """Cached image tokens (and, for the train split, event tokens and text embeddings); at
    test time only what the model reads (no image tokens without the fusion)."""
    from seldbench_plugins.crati.embeddings import ClipEmbedder, clip_streams

    opts = resolve(cfg)
    image, text = _uses(opts)
    # without the fusion the image is a training signal only, like the text
    image = image and dataset.has_video and (training or bool(opts["fusion"]))
    embedder = ClipEmbedder(opts["image"], opts["text"], cache_dir, device)
    return clip_streams(embedder, dataset, clips, frames, training=training, image=image,
                        text=text)


def training_loss(cfg, dataset: DatasetSpec):
    """The loss factory: :func:`seldbench_plugins.crati.loss.crati_loss` with the settings of
    the ``model:`` section (weights, contrastive frames, positives, the trunk's output format),
    as ``loss(output, target) -> scalar``. Imported on first use: listing the plugins does not
    import torch."""
    from functools import partial

    from seldbench_plugins.crati.loss import LossSettings, crati_loss

    opts = resolve(cfg)
    loss = opts["loss"]
    settings = LossSettings(
        output_format=trunk_output(opts, dataset), classes=len(dataset.classes),
        weights=loss_weights(opts), with_distance=bool(opts["with_distance"]),
        contrast_frames=int(opts["contrast_frames"]),
        positive_sectors=_whole(loss["positive_sectors"], "loss.positive_sectors", 0))
    return partial(crati_loss, settings=settings)


@hookimpl
def seldbench_register_models():
    return [
        ModelSpec(
            name="crati", version="0.1", build=build,
            features=("foa_logmel_iv", "mic_logmel_gcc", "mic_salsa_lite", "foa_logmel_iv_128",
                      "stereo_logmel_ild_ipd", "stereo_logmel_ild_ipd_ms"),
            output="multi_accdoa", loss=training_loss, side_inputs=side_inputs,
            needs_video=True, needs_text=True,
            training_streams=("text", "text_mask", "event_cells", "event_mask"),
            default_note="these are CRATI's first-design defaults (CRNN trunk); the design "
                         "chosen by the ablations is --config "
                         "configs/experiments/crati-einv2-cpu.yaml",
            config=Path(__file__).with_name("crati.yaml"),
            # added in 0.1 after its first recorded runs; these values are the model before them
            # (not with_distance: a key from the start, hashed in every record)
            neutral_keys={"image.finetune_blocks": 0, "fuse_into": "all"},
            description="contrastive audio-image-text SELD: CRNN trunk, cross-attention to "
                        "frozen timm image tokens, InfoNCE with frozen text/image embeddings"),
    ]
