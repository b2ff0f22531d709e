"""Reading and checking the 24-kHz WAV files of a SELD dataset (4 channels for FOA / MIC, 2 for
the DCASE 2025 stereo format).

Every problem a user's file can have (missing, unreadable, truncated, wrong sample rate, too few
channels) is a one-line :class:`SeldbenchError` ``<path>: <problem>``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from seldbench.errors import SeldbenchError

SAMPLE_RATE = 24000
CHANNELS = 4
#: Channels of each audio format (:data:`seldbench.specs.AUDIO_FORMATS`).
FORMAT_CHANNELS = {"foa": 4, "mic": 4, "stereo": 2}


def format_channels(audio_format: str) -> int:
    """Channels a WAV of ``audio_format`` has: 4 (``foa``, ``mic``) or 2 (``stereo``)."""
    if audio_format not in FORMAT_CHANNELS:
        raise SeldbenchError(f"audio format '{audio_format}' is not one of "
                             f"{', '.join(FORMAT_CHANNELS)}")
    return FORMAT_CHANNELS[audio_format]


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _wav_shortfall(path: Path) -> tuple[int, int] | None:
    """``(declared, present)`` bytes of the ``data`` chunk of a RIFF/WAVE file that is cut short.

    None when the file is complete or not a plain RIFF/WAVE file (libsndfile reads a truncated
    WAV without complaint, returning fewer samples, so the header is checked here).
    """
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        size = os.fstat(fh.fileno()).st_size
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk = fh.read(8)
            chunk_id, chunk_size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if chunk_id == b"data":
                present = size - pos - 8
                if chunk_size != 0xFFFFFFFF and chunk_size > present:  # 0xFFFFFFFF: streamed
                    return chunk_size, present
                return None
            pos += 8 + chunk_size + (chunk_size & 1)
    return None


def audio_info(path: str | os.PathLike, expected_sr: int = SAMPLE_RATE,
               channels: int = CHANNELS, audio_format: str | None = None) -> int:
    """Check a WAV's header without reading its samples; return its length in samples.

    Raises :class:`SeldbenchError` ``path: problem`` when the file is missing, unreadable,
    truncated, not at ``expected_sr`` Hz or has fewer than ``channels`` channels
    (``audio_format``, when given, sets ``channels`` and is named in that error).
    """
    path = Path(path)
    if audio_format is not None:
        channels = format_channels(audio_format)
    if not path.is_file():
        raise SeldbenchError(f"{path}: no such audio file")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile's error for a corrupt or non-audio file
        raise SeldbenchError(f"{path}: cannot read audio ({_one_line(exc)})") from exc
    shortfall = _wav_shortfall(path)
    if shortfall is not None:
        raise SeldbenchError(f"{path}: truncated WAV (header declares {shortfall[0]} bytes of "
                             f"audio, the file holds {shortfall[1]})")
    if info.samplerate != expected_sr:
        raise SeldbenchError(f"{path}: sample rate {info.samplerate} Hz, expected {expected_sr} Hz")
    if info.channels < channels:
        fmt = f" for the {audio_format} format" if audio_format else ""
        raise SeldbenchError(f"{path}: {info.channels} channel(s), expected {channels}{fmt}")
    if info.frames <= 0:
        raise SeldbenchError(f"{path}: no audio samples")
    return int(info.frames)


def read_audio(path: str | os.PathLike, expected_sr: int = SAMPLE_RATE,
               channels: int = CHANNELS, audio_format: str | None = None) -> np.ndarray:
    """Read a WAV as float32 ``(channels, samples)``, int16 / 32768 scale.

    ``audio_format`` (``foa``, ``mic``, ``stereo``), when given, sets ``channels`` (4, 4, 2) and
    names the format in the error of a file with too few channels. The first ``channels``
    channels are kept (as the DCASE baseline does); integer PCM is scaled by 1/32768 (16 bit)
    exactly. Errors as in :func:`audio_info`.
    """
    path = Path(path)
    if audio_format is not None:
        channels = format_channels(audio_format)
    frames = audio_info(path, expected_sr, channels, audio_format)
    try:
        data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise SeldbenchError(f"{path}: cannot read audio ({_one_line(exc)})") from exc
    if data.shape[0] != frames:
        raise SeldbenchError(f"{path}: truncated audio (read {data.shape[0]} of {frames} samples)")
    return np.ascontiguousarray(data[:, :channels].T)
