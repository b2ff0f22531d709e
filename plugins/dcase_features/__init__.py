"""The DCASE input feature sets, registered as an ordinary plugin.

The torch implementations live in :mod:`seldbench.features`; this plugin only declares them
(name, version, audio format, output size, feature frames per 100-ms label frame). A new
feature set is registered the same way from any installed package.
"""
import importlib

from seldbench.hookspecs import hookimpl
from seldbench.specs import FeatureSpec


def _lazy(module: str, name: str):
    """A builder that imports ``module`` (torch) only when a feature is built, so listing
    plugins stays fast."""
    def build(**options):
        return getattr(importlib.import_module(module), name)(**options)

    build.__name__ = build.__qualname__ = name
    return build


foa_logmel_iv = _lazy("seldbench.features.foa", "foa_logmel_iv")
foa_logmel_iv_128 = _lazy("seldbench.features.foa", "foa_logmel_iv_128")
mic_logmel_gcc = _lazy("seldbench.features.mic", "mic_logmel_gcc")
mic_salsa_lite = _lazy("seldbench.features.mic", "mic_salsa_lite")
stereo_logmel = _lazy("seldbench.features.stereo", "stereo_logmel")
stereo_logmel_ild_ipd = _lazy("seldbench.features.stereo", "stereo_logmel_ild_ipd")
stereo_logmel_ild_ipd_ms = _lazy("seldbench.features.stereo", "stereo_logmel_ild_ipd_ms")


@hookimpl
def seldbench_register_features():
    return [
        FeatureSpec(
            name="foa_logmel_iv", version="1.0", build=foa_logmel_iv, audio_format="foa",
            channels=7, bins=64, frames_per_label=5,
            description="FOA: 4 log-mel (W, Y, Z, X) + 3 mel intensity vectors; hop 20 ms "
                        "(DCASE 2023 baseline)"),
        FeatureSpec(
            name="foa_logmel_iv_128", version="1.0", build=foa_logmel_iv_128, audio_format="foa",
            channels=7, bins=128, frames_per_label=8,
            description="FOA: log-mel + intensity vectors, 128 mels 20 Hz-12 kHz, hop 12.5 ms "
                        "(EINV2)"),
        FeatureSpec(
            name="mic_logmel_gcc", version="1.0", build=mic_logmel_gcc, audio_format="mic",
            channels=10, bins=64, frames_per_label=5,
            description="MIC: 4 log-mel + 6 GCC-PHAT pairs (64 lags); hop 20 ms "
                        "(DCASE 2023 baseline)"),
        FeatureSpec(
            name="mic_salsa_lite", version="1.0", build=mic_salsa_lite, audio_format="mic",
            channels=7, bins=382, frames_per_label=5,
            description="MIC: SALSA-Lite, 4 log-power spectra + 3 normalised phase differences, "
                        "50 Hz-9 kHz; hop 20 ms"),
        FeatureSpec(
            name="stereo_logmel_ild_ipd", version="1.0", build=stereo_logmel_ild_ipd,
            audio_format="stereo", channels=5, bins=64, frames_per_label=5,
            description="Stereo: 2 log-mel (L, R) + mel-binned ILD (dB) and IPD (cos, sin); "
                        "hop 20 ms"),
        FeatureSpec(
            name="stereo_logmel", version="1.0", build=stereo_logmel,
            audio_format="stereo", channels=2, bins=64, frames_per_label=5,
            description="Stereo: 2 log-mel (L, R); hop 20 ms (the DCASE 2025 baseline's "
                        "input)"),
        FeatureSpec(
            name="stereo_logmel_ild_ipd_ms", version="1.0", build=stereo_logmel_ild_ipd_ms,
            audio_format="stereo", channels=7, bins=64, frames_per_label=5,
            description="Stereo: log-mel of L, R, mid, side + mel-binned ILD and IPD (cos, "
                        "sin); hop 20 ms"),
    ]
