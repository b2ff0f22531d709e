"""Helpers for a model plugin's ``build(cfg, dataset, feature)``: its ``model:`` section checked
against the keys it understands, its input shape taken from the run's feature set, and the
output head ``model.output`` selects."""
from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from seldbench.errors import SeldbenchError


def model_options(model: str, cfg: Mapping[str, Any] | None, defaults: Mapping[str, Any],
                  where: str = "model", open_keys: tuple[str, ...] = ()) -> dict:
    """``defaults`` updated by ``cfg``; a key not in ``defaults`` is one :class:`SeldbenchError`
    naming it (``model.loss.audio_txt``) and the closest known key. Nested mappings are checked
    the same way, except the keys named in ``open_keys`` (passed on as given)."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(defaults))
    if unknown:
        close = difflib.get_close_matches(unknown[0], defaults, n=1, cutoff=0.6)
        hint = f"; did you mean '{where}.{close[0]}'?" if close else \
            f" (known: {', '.join(defaults)})"
        raise SeldbenchError(f"model '{model}': unknown config key '{where}.{unknown[0]}'{hint}")
    out = {**defaults, **cfg}
    for key, value in defaults.items():
        if isinstance(value, Mapping) and key not in open_keys:
            out[key] = model_options(model, cfg.get(key), value, f"{where}.{key}")
    return out


def input_shape(model: str, opts: dict, feature) -> tuple[int, int]:
    """(channels, bins) of the input: ``model.in_channels`` / ``model.in_bins`` (popped from
    ``opts``) or, where null, the feature set's; a contradiction is one clear error."""
    shape = []
    for key, attr in (("in_channels", "channels"), ("in_bins", "bins")):
        value, from_feature = opts.pop(key), getattr(feature, attr, None)
        if value is None and from_feature is None:
            raise SeldbenchError(f"model '{model}': model.{key} is null and no feature set was "
                                 f"given; set model.{key} or pass feature= to build()")
        if value is not None and from_feature is not None and int(value) != from_feature:
            raise SeldbenchError(f"model '{model}': model.{key} is {value} but feature set "
                                 f"'{feature.name}' gives {from_feature}")
        shape.append(int(value if value is not None else from_feature))
    return shape[0], shape[1]


def output_choice(model: str, opts: dict, feature, default: str) -> str:
    """The head a builder makes from ``model.output`` (popped from ``opts``): null picks
    ``"stereo"`` (the DCASE 2025 ``multi_accdoa_stereo`` head) for stereo features, else
    ``default``; anything but those two, or ``model.with_distance`` with the stereo head (which
    always carries distance), is one :class:`SeldbenchError`."""
    output = opts.pop("output")
    if output is None:
        output = "stereo" if getattr(feature, "audio_format", None) == "stereo" else default
    if output not in (default, "stereo"):
        raise SeldbenchError(f"model '{model}': model.output '{output}' (expected {default} or "
                             f"stereo)")
    if output == "stereo" and opts.get("with_distance"):
        raise SeldbenchError(f"model '{model}': model.with_distance is for {default}; the "
                             f"stereo output always has distance")
    return output
