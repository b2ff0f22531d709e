"""Fine-tuning: start a run from another run's weights (``train.init_from``, ``seldbench run
--init-from``) and keep parts of the model fixed (``train.freeze``).

The source is a run folder (its ``best.pt``, checked against the SHA-256 in its
``record.json``) or a checkpoint file. Its SHA-256 goes into the config as
``train.init_sha256``, so the config hash (and the board row) names what a run was fine-tuned
from, wherever the file lies. Weights load strictly: every tensor name must match, and every
shape, except that when the source run's output differs from this run's (another number of
classes, or distance predicted by one and not the other, as when the DCASE 2024 baseline starts
its distance model from a direction-only one) the tensors whose shape differs (the output head)
keep their fresh initialisation, and the run says which.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from seldbench.errors import SeldbenchError


@dataclass(frozen=True)
class InitSource:
    """A checkpoint to start from: its file, SHA-256, the class count it was trained for and
    whether it predicts distance (each None when no run folder beside it says)."""

    path: Path
    sha256: str
    num_classes: int | None
    with_distance: bool | None = None


def locate_init(given: str, registry=None) -> InitSource:
    """The checkpoint ``given`` names (a run folder or a ``.pt`` file), hashed."""
    from seldbench.results.records import file_sha256

    path = Path(given).expanduser()
    if path.is_dir():
        ckpt = path / "best.pt"
        if not ckpt.is_file():
            raise SeldbenchError(f"train.init_from={given}: {ckpt} not found (is it a finished "
                                 "run folder?)")
        recorded = _json(path / "record.json").get("checkpoint", {}).get("sha256")
    elif path.is_file():
        ckpt, recorded = path, None
    else:
        raise SeldbenchError(f"train.init_from={given}: no such run folder or checkpoint file")
    if recorded is not None:  # a run folder's checkpoint must be the one its record names
        from seldbench.training.trainer import check_sha256

        check_sha256(ckpt, recorded)
    return init_source(ckpt.resolve(), recorded or file_sha256(ckpt), registry)


def init_source(ckpt: Path, sha256: str, registry=None) -> InitSource:
    """The :class:`InitSource` of checkpoint ``ckpt``, its output described by the config of
    the run folder holding it (read once)."""
    config = _run_config(ckpt.parent)
    return InitSource(ckpt, sha256, _classes(config, registry), _with_distance(config))


def _json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _run_config(run_dir: Path) -> dict:
    """The resolved config of a run folder: its ``config.json``, else its record's copy (a
    committed board run keeps only ``record.json`` and ``best.pt``)."""
    config = _json(run_dir / "config.json")
    if not config:
        config = _json(run_dir / "record.json").get("config")
    return config if isinstance(config, dict) else {}


def _classes(config: dict, registry=None) -> int | None:
    """The class count of a run's dataset, from its resolved config (None when unknown)."""
    name = (config.get("dataset") or {}).get("name")
    if not isinstance(name, str):
        return None
    from seldbench.registry import get_registry

    try:
        return len((registry or get_registry()).get_dataset(name).classes)
    except SeldbenchError:
        return None


def _with_distance(config: dict) -> bool | None:
    """Whether a run predicts distance (``model.with_distance`` of its resolved config; False
    when its model config has no such key, None when it has no model config)."""
    model = config.get("model")
    if not isinstance(model, dict):
        return None
    return bool(model.get("with_distance", False))


def head_change(source: InitSource, num_classes: int, with_distance: bool | None) -> str | None:
    """Why this run's output head may differ from ``source``'s (None when it must not)."""
    why = []
    if source.num_classes is not None and source.num_classes != num_classes:
        why.append(f"{source.num_classes} classes there, {num_classes} here")
    if (source.with_distance is not None and with_distance is not None
            and source.with_distance != bool(with_distance)):
        why.append("distance predicted " + ("there, not here" if source.with_distance
                                            else "here, not there"))
    return "; ".join(why) or None


def resolve_init(cfg: dict, registry=None) -> InitSource | None:
    """Fill ``train.init_sha256`` of a resolved config from ``train.init_from`` (an absolute
    checkpoint path afterwards); a given ``init_sha256`` must match the file."""
    train = cfg["train"]
    given, expected = train.get("init_from"), train.get("init_sha256")
    if given is None:
        if expected is not None:
            raise SeldbenchError("train.init_sha256 is set but train.init_from is not: give the "
                                 "checkpoint with that SHA-256 (--init-from RUN_DIR|CKPT)")
        return None
    source = locate_init(given, registry)
    if expected is not None and expected != source.sha256:
        raise SeldbenchError(f"train.init_from={given}: SHA-256 {source.sha256[:12]}... is not "
                             f"the train.init_sha256 {expected[:12]}... of the config")
    train["init_from"], train["init_sha256"] = str(source.path), source.sha256
    return source


def load_init(model, source: InitSource, num_classes: int,
              with_distance: bool | None = None) -> list[str]:
    """Load ``source``'s weights into ``model`` (checked as the module docstring says);
    returns the names of the tensors left at their fresh initialisation. ``num_classes`` and
    ``with_distance`` describe this run's output."""
    from seldbench.training.trainer import load_checkpoint

    state = load_checkpoint(source.path, "cpu", sha256=source.sha256)
    weights = state.get("model")
    if not isinstance(weights, dict):
        raise SeldbenchError(f"{source.path}: not a seldbench checkpoint (no 'model' weights)")
    own = model.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    if missing or unexpected:
        raise SeldbenchError(f"{source.path}: its tensors do not fit this model: "
                             f"{_some(missing)} missing, {_some(unexpected)} unexpected "
                             "(another model or model config?)")
    differ = [k for k in own if tuple(weights[k].shape) != tuple(own[k].shape)]
    if differ and head_change(source, num_classes, with_distance) is None:
        k = differ[0]
        why = ("the class count and the distance output are the same"
               if source.num_classes is not None
               else "no run folder beside it gives its class count")
        raise SeldbenchError(f"{source.path}: tensor '{k}' is {tuple(weights[k].shape)} in the "
                             f"checkpoint, {tuple(own[k].shape)} in this model ({len(differ)} "
                             f"differ; {why}, so none is re-initialised)")
    model.load_state_dict({k: v for k, v in weights.items() if k not in differ}, strict=False)
    return differ


def _some(names: Sequence[str], shown: int = 3) -> str:
    if not names:
        return "none"
    more = f", ... ({len(names)} in all)" if len(names) > shown else ""
    return ", ".join(f"'{n}'" for n in names[:shown]) + more


def freeze(model, prefixes: Sequence[str]) -> int:
    """Stop training every parameter whose name starts with one of ``prefixes``; returns how
    many values that fixes. A prefix that matches nothing is an error naming the model's
    top-level parts."""
    if not prefixes:
        return 0
    named = list(model.named_parameters())
    count = 0
    for prefix in prefixes:
        hits = [p for n, p in named if n == prefix or n.startswith(prefix)]
        if not hits:
            tops = sorted({n.split(".")[0] for n, _ in named})
            raise SeldbenchError(f"train.freeze: '{prefix}' matches no parameter of the model "
                                 f"(its parts: {', '.join(tops)})")
        for p in hits:
            if p.requires_grad:
                p.requires_grad_(False)
                count += p.numel()
    return count
