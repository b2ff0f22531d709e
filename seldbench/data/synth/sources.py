"""Procedural dry sources for the 13 STARSS23 classes, each a family of timbres with random
variation per instance.

:func:`synthesize` returns the mono signal (unit RMS over its active parts) and its loudness
envelope at 100 Hz (max 1), which the video renderer uses to animate the class's object.
Every class starts sounding at sample 0 (the labelled onset) and fills its duration.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

from seldbench.data.layout import STARSS23_CLASSES
from seldbench.data.synth import exact

#: STARSS23 class names, in index order (docs/datasets.md, "STARSS23").
CLASSES = STARSS23_CLASSES
#: Event length range per class, seconds (all within 0.3-10 s).
DURATION_RANGE_S = (
    (1.0, 8.0), (1.0, 8.0), (0.5, 5.0), (1.0, 8.0), (0.5, 4.0), (0.5, 6.0), (1.0, 8.0),
    (0.3, 3.0), (3.0, 10.0), (1.0, 8.0), (1.0, 10.0), (0.5, 6.0), (0.3, 2.0),
)
ENVELOPE_RATE_HZ = 100


@dataclass(frozen=True)
class SourceSignal:
    """A dry event: ``signal`` (samples,) at ``fs``; ``envelope`` (frames,) at 100 Hz in [0, 1]."""

    signal: np.ndarray
    envelope: np.ndarray
    fs: int


# ---------------------------------------------------------------- building blocks


def _resonator(freq: float, bw: float, fs: int) -> tuple[np.ndarray, np.ndarray]:
    """Two-pole resonator (b, a) at ``freq`` Hz with bandwidth ``bw`` Hz, peak gain about 1."""
    freq = min(freq, 0.45 * fs)
    r = float(exact.exp(-np.pi * bw / fs))
    theta = 2 * np.pi * freq / fs
    a = np.array([1.0, -2 * r * np.cos(theta), r * r])
    return np.array([(1 - r) * np.sqrt(1 - 2 * r * np.cos(2 * theta) + r * r)]), a


def _butter2(fc: float, fs: int, high: bool) -> tuple[np.ndarray, np.ndarray]:
    """Second-order Butterworth low/highpass (b, a) by the bilinear transform, designed with
    plain arithmetic (scipy's ``butter`` goes through numpy's SIMD-dependent ``tan`` and
    complex products)."""
    k = float(exact.tan(np.pi * min(fc, 0.45 * fs) / fs))
    q = 2.0 ** 0.5
    norm = 1.0 / (1.0 + q * k + k * k)
    a = np.array([1.0, 2.0 * (k * k - 1.0) * norm, (1.0 - q * k + k * k) * norm])
    b = np.array([1.0, -2.0, 1.0]) * norm if high else np.array([1.0, 2.0, 1.0]) * (k * k * norm)
    return b, a


def _bandpass(x: np.ndarray, lo: float, hi: float, fs: int) -> np.ndarray:
    """Highpass at ``lo`` then lowpass at ``hi`` (each second-order Butterworth)."""
    hi = min(hi, 0.45 * fs)
    lo = max(lo, 20.0)
    if lo >= hi:
        lo = hi / 2
    return _lowpass(_highpass(x, lo, fs), hi, fs)


def _lowpass(x: np.ndarray, fc: float, fs: int) -> np.ndarray:
    return sps.lfilter(*_butter2(fc, fs, high=False), x)


def _highpass(x: np.ndarray, fc: float, fs: int) -> np.ndarray:
    return sps.lfilter(*_butter2(fc, fs, high=True), x)


def _smooth_curve(rng: np.random.Generator, n: int, fs: int, rate_hz: float, depth: float) -> np.ndarray:
    """A smooth random curve around 0 (length n) with variations at about ``rate_hz``."""
    knots = max(int(n / fs * rate_hz) + 2, 2)
    vals = rng.uniform(-depth, depth, knots)
    return np.interp(np.linspace(0, knots - 1, n), np.arange(knots), vals)


def _pulse_train(f0: np.ndarray, fs: int, rng: np.random.Generator, jitter: float = 0.01) -> np.ndarray:
    """Impulses at the periods of an f0 curve (Hz per sample), lowpassed like a glottal source."""
    phase = np.cumsum(f0 * (1 + jitter * rng.standard_normal(len(f0))) / fs)
    wraps = np.flatnonzero(np.diff(np.floor(phase)) > 0) + 1
    x = np.zeros(len(f0))
    x[wraps] = 1.0
    # glottal pulse shape: a two-pole lowpass (spectral tilt about -12 dB/octave above ~ 1 kHz)
    return sps.lfilter([1.0], [1.0, -1.6, 0.64], x) * 0.04


def _harmonic_tone(f0: np.ndarray, fs: int, amps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sum of harmonics k*f0(t) with amplitudes ``amps[k-1]``, dropped above 0.45 fs."""
    phase = 2 * np.pi * np.cumsum(f0) / fs
    out = np.zeros(len(f0))
    top = float(np.max(f0))
    for k, a in enumerate(amps, start=1):
        if k * top > 0.45 * fs:
            break
        out += a * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    return out


def _place(n: int, times_s: np.ndarray, grain: np.ndarray, fs: int, gains: np.ndarray | None = None
           ) -> np.ndarray:
    """Overlap-add copies of ``grain`` starting at ``times_s`` into a signal of length n."""
    out = np.zeros(n + len(grain))
    for i, t in enumerate(times_s):
        s = int(t * fs)
        if 0 <= s < n:
            out[s:s + len(grain)] += grain * (1.0 if gains is None else gains[i])
    return out[:n]


def _decay(n: int, tau_s: float, fs: int) -> np.ndarray:
    return exact.exp(-np.arange(n) / (tau_s * fs))


def _event_times(rng: np.random.Generator, dur: float, rate_hz: float, jitter: float,
                 start: float = 0.0) -> np.ndarray:
    """Roughly periodic times in [start, dur) at ``rate_hz`` with relative ``jitter``."""
    times, t = [], start
    while t < dur:
        times.append(t)
        t += (1.0 / rate_hz) * (1 + jitter * rng.uniform(-1, 1))
    return np.array(times)


# ---------------------------------------------------------------- the classes

_VOWELS = np.array([  # F1, F2, F3 (Hz), adult male
    (730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480),
    (570, 840, 2410), (660, 1720, 2410), (440, 1020, 2240), (390, 1990, 2550),
])


def _speech(n: int, fs: int, rng: np.random.Generator, female: bool) -> np.ndarray:
    """Voiced speech: a pulse train through per-syllable formants, syllable-rate envelopes."""
    f0_base = rng.uniform(165, 255) if female else rng.uniform(85, 145)
    fscale = rng.uniform(1.12, 1.22) if female else rng.uniform(0.95, 1.05)
    t = np.arange(n) / fs
    f0 = f0_base * (1 + _smooth_curve(rng, n, fs, 3.0, 0.12) - 0.08 * t / max(t[-1], 1e-3))
    src = _pulse_train(f0, fs, rng)
    src = src + 0.05 * np.std(src) * rng.standard_normal(n)
    voiced = np.zeros(n)
    fric = np.zeros(n)
    env = np.zeros(n)
    pos = 0
    zi = None
    while pos < n:
        syl = int(rng.uniform(0.12, 0.3) * fs)
        seg = slice(pos, min(pos + syl, n))
        f = _VOWELS[rng.integers(len(_VOWELS))] * fscale * rng.uniform(0.95, 1.05, 3)
        b, a = np.array([1.0]), np.array([1.0])
        for fk, bw in zip(f, (80, 110, 160)):
            bk, ak = _resonator(fk, bw * (1.2 if female else 1.0), fs)
            b, a = exact.convolve(b, bk), exact.convolve(a, ak)
        if zi is None:
            zi = np.zeros(len(a) - 1)
        y, zi = sps.lfilter(b, a, src[seg], zi=zi)
        voiced[seg] = y
        m = seg.stop - seg.start
        env[seg] = exact.power(np.sin(np.pi * np.linspace(0, 1, m)), 0.7) * rng.uniform(0.5, 1.0)
        pos = seg.stop
        if pos > 0.3 * fs and rng.random() < 0.18:  # pause between words / phrases
            pos += int(rng.uniform(0.08, 0.35) * fs)
        elif rng.random() < 0.25 and pos < n:  # unvoiced consonant (fricative)
            m = min(int(rng.uniform(0.04, 0.09) * fs), n - pos)
            fric[pos:pos + m] = _highpass(rng.standard_normal(m), rng.uniform(2500, 4500), fs) * np.hanning(m)
            pos += m
    voiced *= env
    voiced /= max(np.sqrt(np.mean(voiced ** 2)), 1e-12)
    return voiced + 0.25 * fric


def _clapping(n: int, fs: int, rng: np.random.Generator) -> np.ndarray:
    rate = rng.uniform(2.0, 6.5)
    times = _event_times(rng, n / fs, rate, 0.12)
    centre = rng.uniform(900, 2400)
    gl = int(0.06 * fs)
    out = np.zeros(n + gl)
    for t in times:
        s = int(t * fs)
        tau = rng.uniform(0.004, 0.012)
        g = rng.standard_normal(gl) * _decay(gl, tau, fs) * rng.uniform(0.6, 1.0)
        out[s:s + gl] += _bandpass(g, centre * rng.uniform(0.7, 0.9), centre * rng.uniform(1.6, 2.4), fs)
    return out[:n]


def _telephone(n: int, fs: int, rng: np.random.Generator) -> np.ndarray:
    pairs = ((440, 480), (400, 450), (1000, 1250), (697, 1209), (852, 1477), (1400, 2060))
    f1, f2 = np.array(pairs[rng.integers(len(pairs))]) * rng.uniform(0.97, 1.03)
    t = np.arange(n) / fs
    tone = np.sin(2 * np.pi * f1 * t) + np.sin(2 * np.pi * f2 * t + 1.0)
    if rng.random() < 0.5:  # electromechanical trill
        tone *= 0.55 + 0.45 * np.sign(np.sin(2 * np.pi * rng.uniform(15, 25) * t))
    tone = exact.tanh(1.5 * tone)
    on, off = rng.uniform(0.4, 2.0), rng.uniform(0.2, 1.5)
    gate = ((t % (on + off)) < on).astype(float)
    gate = exact.convolve(gate, np.ones(48) / 48, mode="same")
    return tone * gate


def _laughter(n: int, fs: int, rng: np.random.Generator) -> np.ndarray:
    f0_base = rng.uniform(180, 380)
    f0 = f0_base * (1 + _smooth_curve(rng, n, fs, 4.0, 0.15))
    voiced = _pulse_train(f0, fs, rng, jitter=0.03)
    breath = 0.02 * rng.standard_normal(n)
    f = _VOWELS[0] * rng.uniform(1.0, 1.2)
    b, a = np.array([1.0]), np.array([1.0])
    for fk, bw in zip(f, (120, 160, 220)):
        bk, ak = _resonator(fk, bw, fs)
        b, a = exact.convolve(b, bk), exact.convolve(a, ak)
    x = sps.lfilter(b, a, voiced * rng.uniform(0.5, 1.0) + breath)
    rate = rng.uniform(3.5, 6.0)
    env = np.zeros(n)
    for t in _event_times(rng, n / fs, rate, 0.15):
        s, m = int(t * fs), int(rng.uniform(0.08, 0.14) * fs)
        m = min(m, n - s)
        if m > 0:
            env[s:s + m] = np.maximum(env[s:s + m], np.hanning(2 * m)[m // 2: m // 2 + m] * rng.uniform(0.4, 1.0))
    return x * env * exact.exp(-np.arange(n) / (fs * rng.uniform(1.5, 6.0)))


def _modal_ir(rng: np.random.Generator, fs: int, freqs: np.ndarray, taus: np.ndarray, length_s: float) -> np.ndarray:
    t = np.arange(int(length_s * fs)) / fs
    ir = np.zeros(len(t))
    for f, tau in zip(freqs, taus):
        ir += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28)) * exact.exp(-t / tau)
    return ir


def _domestic(n: int, fs: int, rng: np.random.Generator) -> np.ndarray:
    irs = [_modal_ir(rng, fs, rng.uniform(900, 7000, 4), rng.uniform(0.02, 0.2, 4), 0.3) for _ in range(2)]
    rate = rng.uniform(3, 12)
    exc = np.zeros((2, n))
    for t in _event_times(rng, n / fs, rate, 0.9):
        s = int(t * fs)
        m = min(int(0.003 * fs), n - s)
        exc[rng.integers(2), s:s + m] += rng.standard_normal(m) * rng.uniform(0.2, 1.0)
    x = sum(exact.fftconvolve(exc[i], irs[i])[:n] for i in range(2))
    rustle = _bandpass(rng.standard_normal(n), 300, 8000, fs) * 0.05
    rustle *= 1 + _smooth_curve(rng, n, fs, 5.0, 0.8)
    return x + rustle


def _footsteps(n: int, fs: int, rng: np.random.Generator) -> np.ndarray:
    rate = rng.uniform(1.4, 2.4)
    gl = int(0.25 * fs)
    t = np.arange(gl) / fs
    f_thud = rng.uniform(60, 140)
    cutoff = rng.uniform(300, 900)
    out = np.zeros(n + gl)
    for k, ts in enumerate(_event_times(rng, n / fs, rate, 0.06)):
        s = int(ts * fs)
        thud = np.sin(2 * np.pi * f_thud * t) * exact.exp(-t / 0.03)
        noise = _lowpass(rng.standard_normal(gl), cutoff, fs) * exact.exp(-t / 0.015) * 2.0
        step = thud + noise
        toe = int(rng.uniform(0.03, 0.07) * fs)
        step[toe:] += 0.5 * step[:gl - toe]
        if rng.random() < 0.4:  # scuff
            step += _highpass(rng.standard_normal(gl), 2000, fs) * exact.exp(-t / 0.02) * 0.2
        out[s:s + gl] += step * (0.8 if k % 2 else 1.0) * rng.uniform(0.7, 1.0)
    return out[:n]


def _door(n: int, fs: int, rng: np.random.Generator) -> np.ndarray:
    slam_len = min(int(rng.uniform(0.25, 0.45) * fs), n)
    creak_len = n - slam_len if n > int(0.6 * fs) else 0
    out = np.zeros(n)
    if creak_len > 0:  # stick-slip creak: a pulse train sweeping in rate through wood resonances
        r0, r1 = rng.uniform(15, 60), rng.uniform(60, 180)
        rate = np.geomspace(r0, r1, creak_len) * (1 + _smooth_curve(rng, creak_len, fs, 6, 0.25))
        x = _pulse_train(rate, fs, rng, jitter=0.08) * 25
        res = sum(sps.lfilter(*_resonator(f, 60, fs), x) for f in rng.uniform(350, 1800, 3))
        out[:creak_len] = res * exact.power(np.hanning(creak_len), 0.3)
    t = np.arange(slam_len) / fs
    slam = (np.sin(2 * np.pi * rng.uniform(55, 120) * t) * exact.exp(-t / 0.06)
            + _lowpass(rng.standard_normal(slam_len), rng.uniform(600, 1500), fs) * exact.exp(-t / 0.03) * 2)
    click = np.zeros(slam_len)
    m = min(int(0.004 * fs), slam_len)
    click[:m] = rng.standard_normal(m) * 0.8
    out[:creak_len] /= max(np.sqrt(np.mean(out[:creak_len] ** 2)), 1e-12) if creak_len else 1.0
    out[n - slam_len:] += 1.5 * (slam + _highpass(click, 2000, fs))
    return out


def _music(n: int, fs: int, rng: np.random.Generator) -> np.ndarray:
    key = rng.integers(-7, 6)
    degrees = ((0, 4, 7), (7, 11, 14), (9, 12, 16), (5, 9, 12), (2, 5, 9), (4, 7, 11))
    beat = 60.0 / rng.uniform(80, 140)
    chord_beats = rng.choice([2, 4])
    harm = np.array([1.0, 0.5, 0.3, 0.2, 0.12, 0.08]) * rng.uniform(0.6, 1.0, 6)
    out = np.zeros(n)
    tb = 0.0
    prog = rng.choice(len(degrees), size=max(int(n / fs / (beat * chord_beats)) + 2, 2))
    for i, chord_idx in enumerate(prog):
        start = int(tb * fs)
        if start >= n:
            break
        seg = min(int(beat * chord_beats * fs), n - start)
        tt = np.arange(seg) / fs
        strike = exact.exp(-((tt % beat) / rng.uniform(0.15, 0.5)))  # re-struck on every beat
        for semis in degrees[chord_idx]:
            f = 220.0 * float(exact.power(2.0, (key + semis) / 12))
            out[start:start + seg] += _harmonic_tone(np.full(seg, f), fs, harm, rng) * strike * 0.4
        fb = 55.0 * float(exact.power(2.0, (key + degrees[chord_idx][0]) / 12))  # bass
        out[start:start + seg] += _harmonic_tone(np.full(seg, fb), fs, harm[:3], rng) * strike * 0.5
        hat = exact.exp(-((tt + beat / 2) % beat) / 0.02)  # off-beat hi-hat
        out[start:start + seg] += _highpass(rng.standard_normal(seg), 6000, fs) * hat * 0.15
        tb += beat * chord_beats
    return out


def _instrument(n: int, fs: int, rng: np.random.Generator) -> np.ndarray:
    kind = rng.integers(3)
    if kind == 0:  # flute-like: few harmonics and breath
        harm = np.array([1.0, 0.3, 0.12, 0.05])
    elif kind == 1:  # bowed string: sawtooth-like
        harm = 1.0 / exact.power(np.arange(1, 25), rng.uniform(0.9, 1.3))
    else:  # reed: odd harmonics
        harm = np.array([1.0 / k if k % 2 else 0.08 / k for k in range(1, 16)])
    base = rng.uniform(180, 700)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    out = np.zeros(n)
    pos = 0
    while pos < n:
        m = min(int(rng.uniform(0.3, 1.5) * fs), n - pos)
        f = base * float(exact.power(2.0, scale[rng.integers(len(scale))] / 12))
        t = np.arange(m) / fs
        vib = 1 + rng.uniform(0.004, 0.012) * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t) * np.clip(t / 0.3, 0, 1)
        env = np.clip(t / 0.05, 0, 1) * np.clip((m / fs - t) / 0.08, 0, 1)
        note = _harmonic_tone(f * vib, fs, harm, rng) * env
        if kind == 0:
            note += _bandpass(rng.standard_normal(m), f, 4 * f, fs) * 0.05 * env
        out[pos:pos + m] += note
        pos += m
    return out


def _water_tap(n: int, fs: int, rng: np.random.Generator) -> np.ndarray:
    lo = rng.uniform(300, 1200)
    x = _bandpass(rng.standard_normal(n), lo, lo * rng.uniform(3, 8), fs)
    x *= 1 + _smooth_curve(rng, n, fs, rng.uniform(3, 10), 0.3)
    t_b = np.arange(int(0.02 * fs)) / fs
    bubbles = np.zeros(n)
    for t in np.sort(rng.uniform(0, n / fs, int(rng.uniform(5, 30) * n / fs))):
        f = rng.uniform(500, 3000)
        g = np.sin(2 * np.pi * f * (1 + 8 * t_b) * t_b) * exact.exp(-t_b / 0.005)
        s = int(t * fs)
        m = min(len(g), n - s)
        bubbles[s:s + m] += g[:m] * rng.uniform(0.5, 1.5)
    return x + 0.3 * bubbles


def _bell(n: int, fs: int, rng: np.random.Generator) -> np.ndarray:
    small = rng.random() < 0.5
    base = rng.uniform(1500, 3500) if small else rng.uniform(250, 900)
    ratios = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.51, 2.66, 3.01, 4.1, 5.4]) * rng.uniform(0.98, 1.02, 10)
    keep = ratios * base < 0.45 * fs
    ratios = ratios[keep]
    taus = (0.3 if small else 1.5) * rng.uniform(0.6, 1.4) / exact.power(ratios, 0.6)
    amps = rng.uniform(0.3, 1.0, len(ratios))
    strikes = [0.0] + list(np.sort(rng.uniform(0.3, n / fs, rng.integers(0, 3))))
    t = np.arange(n) / fs
    out = np.zeros(n)
    for ts in strikes:
        tt = np.clip(t - ts, 0, None)
        on = t >= ts
        for r, tau, a in zip(ratios, taus, amps):
            out += on * a * np.sin(2 * np.pi * r * base * tt) * exact.exp(-tt / tau)
    return out


def _knock(n: int, fs: int, rng: np.random.Generator) -> np.ndarray:
    ir = _modal_ir(rng, fs, np.concatenate([rng.uniform(120, 450, 2), rng.uniform(700, 2200, 2)]),
                   rng.uniform(0.01, 0.05, 4), 0.15)
    exc = np.zeros(n)
    t = 0.0
    while t < n / fs:
        rate = rng.uniform(4, 8)
        for _ in range(rng.integers(2, 6)):
            s = int(t * fs)
            if s >= n:
                break
            m = min(int(0.002 * fs), n - s)
            exc[s:s + m] += rng.standard_normal(m) * rng.uniform(0.6, 1.0)
            t += 1.0 / rate * rng.uniform(0.9, 1.1)
        t += rng.uniform(0.5, 1.5)
    return exact.fftconvolve(exc, ir)[:n] + 0.3 * _highpass(exc, 1500, fs)


_GENERATORS = (
    lambda n, fs, rng: _speech(n, fs, rng, female=True),
    lambda n, fs, rng: _speech(n, fs, rng, female=False),
    _clapping, _telephone, _laughter, _domestic, _footsteps, _door, _music, _instrument,
    _water_tap, _bell, _knock,
)


def loudness_envelope(x: np.ndarray, fs: int, rate_hz: int = ENVELOPE_RATE_HZ) -> np.ndarray:
    """RMS per ``1/rate_hz`` s, lightly smoothed, scaled to max 1: ``(ceil(len/hop),)``."""
    hop = fs // rate_hz
    frames = -(-len(x) // hop)
    pad = np.zeros(frames * hop)
    pad[:len(x)] = x
    rms = np.sqrt(np.mean(pad.reshape(frames, hop) ** 2, axis=1))
    rms = exact.convolve(rms, np.array([0.25, 0.5, 0.25]), mode="same")
    return (rms / max(rms.max(), 1e-12)).astype(np.float32)


def synthesize(class_idx: int, duration_s: float, fs: int, rng: np.random.Generator) -> SourceSignal:
    """A random instance of class ``class_idx`` lasting ``duration_s`` seconds.

    The signal is scaled to unit RMS over its active part (10-ms windows within 30 dB of the
    loudest), so an SNR means the same for a stationary and an impulsive class.
    """
    n = int(round(duration_s * fs))
    x = _GENERATORS[class_idx](n, fs, rng)[:n]
    x = x - np.mean(x)
    fade_in, fade_out = min(int(0.005 * fs), n // 4), min(int(0.02 * fs), n // 4)
    x[:fade_in] *= np.linspace(0, 1, fade_in)
    x[n - fade_out:] *= np.linspace(1, 0, fade_out)
    hop = fs // ENVELOPE_RATE_HZ
    frames = -(-n // hop)
    pad = np.zeros(frames * hop)
    pad[:n] = x
    power = np.mean(pad.reshape(frames, hop) ** 2, axis=1)
    active = power > power.max() * 1e-3
    x = x / np.sqrt(max(np.mean(power[active]), 1e-20))
    return SourceSignal(signal=x, envelope=loudness_envelope(x, fs), fs=fs)
