"""The DCASE input feature sets, registered as an ordinary plugin.

The torch implementations live in :mod:`seldbench.features`; this plugin only declares them
(name, version, audio format, output size, feature frames per 100-ms label frame). A new
feature set is registered the same way from any installed package.
"""
from seldbench.hookspecs import hookimpl
from seldbench.specs import FeatureSpec


# Builders import torch only when a feature is built, so listing plugins stays fast.
def foa_logmel_iv(**options):
    from seldbench.features.foa import foa_logmel_iv

    return foa_logmel_iv(**options)


def foa_logmel_iv_128(**options):
    from seldbench.features.foa import foa_logmel_iv_128

    return foa_logmel_iv_128(**options)


def mic_logmel_gcc(**options):
    from seldbench.features.mic import mic_logmel_gcc

    return mic_logmel_gcc(**options)


def mic_salsa_lite(**options):
    from seldbench.features.mic import mic_salsa_lite

    return mic_salsa_lite(**options)


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
    ]
