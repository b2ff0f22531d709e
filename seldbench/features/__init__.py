"""Input features computed in torch (CPU or GPU) and their HDF5 cache.

One module per feature family (:mod:`.foa`, :mod:`.mic`, :mod:`.stereo`) on the shared STFT pieces in
:mod:`.stft`; :mod:`.cache` computes features for whole clips, caches them per
(dataset, split, feature-config hash) and fits the train-split normaliser. The feature sets are
registered by the built-in ``dcase_features`` plugin; look them up through the registry.
"""
from seldbench.features.foa import FoaLogmelIV, foa_logmel_iv, foa_logmel_iv_128
from seldbench.features.mic import MicLogmelGCC, MicSalsaLite, mic_logmel_gcc, mic_salsa_lite
from seldbench.features.stereo import (StereoLogmelIldIpd, stereo_logmel, stereo_logmel_ild_ipd,
                                       stereo_logmel_ild_ipd_ms)
from seldbench.features.stft import FeatureModule, MultichannelSTFT, mel_filterbank, power_to_db

__all__ = [
    "FeatureModule",
    "FoaLogmelIV",
    "MicLogmelGCC",
    "MicSalsaLite",
    "MultichannelSTFT",
    "foa_logmel_iv",
    "foa_logmel_iv_128",
    "mel_filterbank",
    "mic_logmel_gcc",
    "mic_salsa_lite",
    "power_to_db",
    "StereoLogmelIldIpd",
    "stereo_logmel",
    "stereo_logmel_ild_ipd",
    "stereo_logmel_ild_ipd_ms",
]
