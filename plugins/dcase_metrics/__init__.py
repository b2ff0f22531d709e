"""The official DCASE Task 3 metric suites, registered as an ordinary plugin.

- ``dcase2021``: 1-s segments over a fixed 60 s, micro average (TAU-NIGENS 2021, 12 classes).
- ``dcase2022`` / ``dcase2023``: 1-s segments up to the last reference frame, macro average.
- ``dcase2024``: 100-ms frames with distance (DOAE, DistE, RDE), macro average.
- ``dcase2025``: stereo SELD, 100-ms frames, folded azimuth, distance and on/off-screen; both
  F figures (``F``: onscreen not required, ``F_onscreen``: required), macro or micro average.

The scoring code lives in :mod:`seldbench.metrics`; this plugin only names its variants.
"""
from __future__ import annotations

from functools import partial

from seldbench.hookspecs import hookimpl
from seldbench.specs import MetricSuiteSpec

SEGMENT_FIGURES = ("ER", "F", "LE", "LR", "SELD")
FRAME_FIGURES = ("ER", "F", "DOAE", "DistE", "RDE", "LR", "SELD")
STEREO_FIGURES = ("F", "F_onscreen", "DOAE", "DistE", "RDE", "OnscreenAcc")
QUIRK_OPTIONS = {"no_last_frame_drop": False}


# Builders import the scoring code (numba, scipy) only when a suite is used, so that loading
# the registry (e.g. `seldbench list`) stays fast.
def _segment_2022(num_classes: int, suite: str, **options):
    from seldbench.api import SegmentScorer

    return SegmentScorer(num_classes, suite=suite, average="macro", spatial_fp="FP_spatial",
                         ref_layouts={5: "fctae", 6: "fctaed"}, pred_layouts={7: "fctxyzd"},
                         **options)


def build_dcase2021(num_classes: int):
    from seldbench.api import SegmentScorer

    # 60-s clips: 600 frames are scored whatever the files hold; a spatially wrong match is a
    # plain false positive (half weight in F), micro average.
    return SegmentScorer(num_classes, suite="dcase2021", average="micro", spatial_fp="FP",
                         ref_layouts={5: "fctae"}, pred_layouts={6: "fctxyz"}, fixed_frames=600)


def build_dcase2024(num_classes: int, **options):
    from seldbench.api import FrameScorer

    return FrameScorer(num_classes, **options)


def build_dcase2025(num_classes: int, **options):
    from seldbench.api import StereoFrameScorer

    return StereoFrameScorer(num_classes, **options)


@hookimpl
def seldbench_register_metric_suites():
    return [
        MetricSuiteSpec(
            name="dcase2021", version="2021.1", build=build_dcase2021,
            figures=SEGMENT_FIGURES, rank_by="SELD", higher_is_better=False, default_classes=12,
            unit="segment",
            description="DCASE 2021 Task 3: 1-s segments over 60 s, micro average, 20 deg"),
        *[MetricSuiteSpec(
            name=name, version=f"{name[-4:]}.1", build=partial(_segment_2022, suite=name),
            figures=SEGMENT_FIGURES, rank_by="SELD", higher_is_better=False, default_classes=13,
            unit="segment", options=QUIRK_OPTIONS,
            description=f"DCASE {name[-4:]} Task 3: 1-s segments, macro average, 20 deg")
          for name in ("dcase2022", "dcase2023")],
        MetricSuiteSpec(
            name="dcase2024", version="2024.1", build=build_dcase2024,
            figures=FRAME_FIGURES, rank_by="F", higher_is_better=True, default_classes=13,
            unit="frame", options=QUIRK_OPTIONS,
            description="DCASE 2024 Task 3: 100-ms frames, macro, 20 deg and relative distance 1.0"),
        MetricSuiteSpec(
            name="dcase2025", version="2025.1", build=build_dcase2025,
            figures=STEREO_FIGURES, rank_by="F", higher_is_better=True, default_classes=13,
            unit="frame", options={**QUIRK_OPTIONS, "average": "macro"},
            description="DCASE 2025 Task 3 (stereo): 100-ms frames, folded azimuth, 20 deg, "
                        "relative distance 1.0, F with and without onscreen"),
    ]
