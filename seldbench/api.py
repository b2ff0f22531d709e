"""What a plugin may use from seldbench besides :mod:`seldbench.hookspecs` and
:mod:`seldbench.specs`: one declared surface.

Built-in plugins import from these three modules only (``tests/test_layers.py`` checks it), so
they are the examples a new plugin copies, and the core may reorganise everything else. Names
are loaded on first use: ``from seldbench.api import adpit_loss`` imports torch,
``from seldbench.api import SeldbenchError`` does not, so listing plugins stays fast.

Errors and options
    ``SeldbenchError`` (the one-line error every user mistake raises), ``suggest`` (closest
    names for an unknown one), ``model_options`` (a ``model:`` section checked against the keys
    a builder knows), ``input_shape`` (channels and bins from the run's feature set),
    ``output_choice`` (``model.output``: the stereo head on stereo features).
Registry
    ``get_model(name) -> ModelSpec``: another registered model, e.g. the audio trunk a
    multimodal model wraps (check it with :class:`seldbench.specs.AudioTrunk`);
    ``get_dataset(name) -> DatasetSpec``: another registered dataset, e.g. the set a derived
    one is made from; ``resolve_root(spec)`` (its folder), ``data_home()`` (where generated
    sets live).
Losses (torch)
    ``adpit_loss`` (multi-ACCDOA, auxiliary duplicating PIT, MSE), ``pit_loss`` (track-wise,
    frame-level PIT of BCE + MSE), ``ADPIT_SLOTS`` (6), ``core_loss(output, with_distance)``.
Dataset layouts
    ``STARSS23_CLASSES``, ``DEV_SUBFOLDERS``, ``list_starss_layout(root, split, ...)``,
    ``parse_stem`` / ``make_stem`` (``fold3_room4_mix001``).
Labels and video
    ``read_metadata``, ``label_frames``, ``adpit_targets``, ``track_targets``,
    ``describe_frames`` (per-frame text), ``load_video_frames``, ``grid_directions``,
    ``direction_cell`` (grid cells of a video frame, degrees; ``projection`` equirectangular or
    perspective, as ``DatasetSpec.video_projection``).
Side inputs (multimodal models)
    ``SideInputCache`` (per-clip encoder outputs, cached), ``fill_missing`` (zeros and mask 0
    for clips without a stream); ``ImageEncoder`` (a frozen pretrained timm image encoder,
    weights from local files only; ``DEFAULT_IMAGE_ENCODER``, its default timm name).
Keyed cache and files
    ``cached_npy``, ``source_signature``, ``atomic_open``, ``atomic_write_json``.
Metric suites
    ``SegmentScorer`` (1-s segment suites), ``FrameScorer`` (100-ms frame suites),
    ``StereoFrameScorer`` (2025 stereo frames: folded azimuth, distance, onscreen).
Synthetic data
    ``generate_synth``, ``synth_manifest``, ``synth_is_complete``, ``synth_remove_stale``
    (a cached set of another generator version), ``SYNTH_GENERATOR_VERSION``;
    ``derive_stereo`` / ``stereo_manifest`` (the DCASE 2025-style stereo set derived from a
    generated FOA set).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> (module, attribute in that module)
_EXPORTS: dict[str, tuple[str, str]] = {
    **{n: ("seldbench.errors", n) for n in ("SeldbenchError", "suggest")},
    **{n: ("seldbench.model_config", n)
       for n in ("model_options", "input_shape", "output_choice")},
    **{n: ("seldbench.training.losses", n)
       for n in ("adpit_loss", "pit_loss", "ADPIT_SLOTS", "core_loss")},
    **{n: ("seldbench.data.layout", n)
       for n in ("STARSS23_CLASSES", "DEV_SUBFOLDERS", "list_starss_layout", "parse_stem",
                 "make_stem")},
    **{n: ("seldbench.data.labels", n)
       for n in ("read_metadata", "label_frames", "adpit_targets", "track_targets",
                 "describe_frames")},
    **{n: ("seldbench.data.video", n)
       for n in ("load_video_frames", "grid_directions", "direction_cell")},
    **{n: ("seldbench.side_inputs", n) for n in ("SideInputCache", "fill_missing")},
    **{n: ("seldbench.encoders", n) for n in ("ImageEncoder", "DEFAULT_IMAGE_ENCODER")},
    **{n: ("seldbench.io", n)
       for n in ("cached_npy", "source_signature", "atomic_open", "atomic_write_json")},
    **{n: ("seldbench.metrics.suites", n)
       for n in ("SegmentScorer", "FrameScorer", "StereoFrameScorer")},
    "generate_synth": ("seldbench.data.synth.generate", "generate"),
    "synth_manifest": ("seldbench.data.synth.generate", "read_manifest"),
    "synth_is_complete": ("seldbench.data.synth.generate", "is_complete"),
    "synth_remove_stale": ("seldbench.data.synth.generate", "remove_stale"),
    "SYNTH_GENERATOR_VERSION": ("seldbench.data.synth", "GENERATOR_VERSION"),
    "derive_stereo": ("seldbench.data.synth.stereo", "derive_stereo"),
    "stereo_manifest": ("seldbench.data.synth.stereo", "read_manifest"),
    **{n: ("seldbench.data.roots", n) for n in ("data_home", "resolve_root")},
}

__all__ = sorted([*_EXPORTS, "get_dataset", "get_model"])


def get_model(name: str):
    """The registered :class:`~seldbench.specs.ModelSpec` called ``name`` (an unknown name is
    one error with the closest names). Call it when building, not at import time: the
    registry is still loading while plugins are imported."""
    from seldbench.registry import get_registry

    return get_registry().get_model(name)


def get_dataset(name: str):
    """The registered :class:`~seldbench.specs.DatasetSpec` called ``name`` (call it when
    preparing or listing, not at import time)."""
    from seldbench.registry import get_registry

    return get_registry().get_dataset(name)


def __getattr__(name: str) -> Any:
    try:
        module, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'seldbench.api' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # for type checkers and editors; at run time names load on first use
    from seldbench.data.labels import (adpit_targets, describe_frames, label_frames,  # noqa
                                       read_metadata, track_targets)
    from seldbench.data.layout import (DEV_SUBFOLDERS, STARSS23_CLASSES,  # noqa
                                       list_starss_layout, make_stem, parse_stem)
    from seldbench.data.synth import GENERATOR_VERSION as SYNTH_GENERATOR_VERSION  # noqa
    from seldbench.data.synth.generate import generate as generate_synth  # noqa
    from seldbench.data.synth.generate import is_complete as synth_is_complete  # noqa
    from seldbench.data.synth.generate import remove_stale as synth_remove_stale  # noqa
    from seldbench.data.synth.generate import read_manifest as synth_manifest  # noqa
    from seldbench.data.synth.stereo import derive_stereo  # noqa
    from seldbench.data.synth.stereo import read_manifest as stereo_manifest  # noqa
    from seldbench.data.roots import data_home, resolve_root  # noqa
    from seldbench.data.video import (direction_cell, grid_directions,  # noqa
                                      load_video_frames)
    from seldbench.errors import SeldbenchError, suggest  # noqa
    from seldbench.io import atomic_open, atomic_write_json, cached_npy, source_signature  # noqa
    from seldbench.metrics.suites import FrameScorer, SegmentScorer, StereoFrameScorer  # noqa
    from seldbench.model_config import input_shape, model_options, output_choice  # noqa
    from seldbench.side_inputs import SideInputCache, fill_missing  # noqa
    from seldbench.encoders import DEFAULT_IMAGE_ENCODER, ImageEncoder  # noqa
    from seldbench.training.losses import ADPIT_SLOTS, adpit_loss, core_loss, pit_loss  # noqa
