"""Lip-sync training utterances made harder the way real input arrives (tempo and pitch, gain, room reverb,
noise at several SNRs, the telephone band, MP3/Opus round trips; phone timings kept true), and clips of
non-speech (noise, tones, music) whose target is a closed mouth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from audio.io import resample
from audio.mel import SAMPLE_RATE
from audio.types import SILENCE, Phone


@dataclass
class Utterance:
    audio: np.ndarray  # float32 at 16 kHz
    phones: tuple[Phone, ...]
    meta: dict[str, object]


# ---- non-speech: the mouth must stay closed -------------------------------------------------------


def nonspeech_utterance(rng: np.random.Generator) -> Utterance:
    dur = float(rng.uniform(1.0, 4.0))
    n = int(dur * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    kind = str(rng.choice(["white", "pink", "brown", "sweep", "chords", "clicks", "hum"]))
    if kind == "white":
        x = rng.normal(0, 1, n)
    elif kind in ("pink", "brown"):
        spec = np.fft.rfft(rng.normal(0, 1, n))
        f = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 20.0)
        spec /= f ** (0.5 if kind == "pink" else 1.0)
        x = np.fft.irfft(spec, n)
    elif kind == "sweep":
        f0, f1 = rng.uniform(80, 500), rng.uniform(1000, 7000)
        if rng.random() < 0.5:
            f0, f1 = f1, f0
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * dur))
        x = np.sin(phase)
    elif kind == "chords":
        x = np.zeros(n)
        step = int(rng.uniform(0.15, 0.6) * SAMPLE_RATE)
        for a in range(0, n, step):
            root = 110 * 2 ** (rng.integers(0, 24) / 12)
            seg = t[a : a + step] - t[a]
            env = np.exp(-seg * rng.uniform(1, 6))
            for ratio in (1.0, 1.26, 1.5, 2.0):
                for h in range(1, 5):
                    x[a : a + step] += env * np.sin(2 * np.pi * root * ratio * h * seg) / h
    elif kind == "clicks":
        x = np.zeros(n)
        for a in rng.integers(0, n - 200, int(dur * rng.uniform(2, 10))):
            x[a : a + 200] += rng.normal(0, 1, 200) * np.exp(-np.arange(200) / 30)
    else:
        hum_hz = float(rng.choice([50.0, 60.0, 120.0]))
        x = np.asarray(sum(np.sin(2 * np.pi * hum_hz * h * t) / h for h in range(1, 6))) + 0.05 * rng.normal(0, 1, n)
    x = x / (np.abs(x).max() + 1e-9) * 10 ** (rng.uniform(-30, -3) / 20)
    return Utterance(x.astype(np.float32), (Phone(0.0, n / SAMPLE_RATE, SILENCE),), {"engine": "nonspeech",
                                                                                    "kind": kind})  # fmt: skip


# ---- augmentation -----------------------------------------------------------------------------------


def _retime(phones: tuple[Phone, ...], factor: float) -> tuple[Phone, ...]:
    return tuple(Phone(p.start_s * factor, p.end_s * factor, p.symbol, p.stress) for p in phones)


def _noise_like(rng: np.random.Generator, n: int) -> np.ndarray:
    kind = rng.integers(3)
    w = rng.normal(0, 1, n)
    if kind == 0:
        return w
    spec = np.fft.rfft(w)
    f = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 30.0)
    spec /= f ** (0.5 if kind == 1 else 1.0)
    return np.fft.irfft(spec, n)


def _reverb(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    from scipy.signal import fftconvolve

    rt60 = rng.uniform(0.15, 0.8)
    n = int(rt60 * SAMPLE_RATE)
    ir = rng.normal(0, 1, n) * np.exp(-6.9 * np.arange(n) / n)
    ir[0] = 1.0 / rng.uniform(0.3, 1.0)  # direct path
    ir /= np.sqrt((ir**2).sum())
    return fftconvolve(x, ir)[: len(x)]


def _codec(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """MP3 or Opus encode + decode through PyAV (input returned unchanged if the codec is missing)."""
    import io

    import av

    codec, fmt, rate = (("libmp3lame", "mp3", 16000), ("libopus", "ogg", 48000))[int(rng.integers(2))]
    try:
        buf = io.BytesIO()
        with av.open(buf, "w", format=fmt) as out:
            st: Any = out.add_stream(codec, rate=rate)
            st.bit_rate = int(rng.choice([16000, 24000, 32000]))
            st.layout = "mono"
            y = resample(x.astype(np.float32), SAMPLE_RATE, rate)
            frame = av.AudioFrame.from_ndarray(y[None, :], format="flt", layout="mono")
            frame.sample_rate = rate
            for pkt in st.encode(frame):
                out.mux(pkt)
            for pkt in st.encode(None):
                out.mux(pkt)
        buf.seek(0)
        parts = []
        inp: Any
        with av.open(buf) as inp:
            for fr in inp.decode(audio=0):
                parts.append(fr.to_ndarray().reshape(-1, fr.samples).mean(axis=0))
                dec_rate = fr.sample_rate
        y = resample(np.concatenate(parts).astype(np.float32), dec_rate, SAMPLE_RATE)
    except (av.FFmpegError, ValueError):
        return x
    # codec delay: align by cross-correlation over the first second
    lag = _best_lag(x, y)
    y = y[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag, np.float32), y])
    y = np.concatenate([y, np.zeros(max(0, len(x) - len(y)), np.float32)])[: len(x)]
    return y


def _best_lag(x: np.ndarray, y: np.ndarray, max_lag: int = 2000) -> int:
    n = min(len(x), len(y), SAMPLE_RATE * 2)
    if n <= max_lag * 2:
        return 0
    a, b = x[:n], y[: n + max_lag] if len(y) >= n + max_lag else np.pad(y, (0, n + max_lag - len(y)))
    scores = [float(a[: n - max_lag] @ b[k : k + n - max_lag]) for k in range(0, max_lag)]
    return int(np.argmax(scores))


def augment(rng: np.random.Generator, u: Utterance) -> Utterance:
    x = u.audio.astype(np.float64)
    phones = u.phones
    steps: list[str] = []
    if rng.random() < 0.35:  # tempo and pitch together, by resampling (timings scale with it)
        factor = float(rng.uniform(0.85, 1.18))
        x = resample(x.astype(np.float32), SAMPLE_RATE, int(round(SAMPLE_RATE * factor))).astype(np.float64)
        phones = _retime(phones, factor)
        steps.append(f"speed{1 / factor:.2f}")
    if rng.random() < 0.3:
        x = _reverb(rng, x)
        steps.append("reverb")
    if rng.random() < 0.5:
        snr = float(rng.choice([0, 5, 10, 15, 20, 30]))
        sig = np.sqrt(np.mean(x**2) + 1e-12)
        noise = _noise_like(rng, len(x))
        if rng.random() < 0.3:  # music under the speech
            noise = nonspeech_utterance(rng).audio.astype(np.float64)
            noise = np.resize(noise, len(x))
        noise *= sig / (np.sqrt(np.mean(noise**2)) + 1e-12) * 10 ** (-snr / 20)
        x = x + noise
        steps.append(f"snr{snr:g}")
    if rng.random() < 0.2:
        x = resample(resample(x.astype(np.float32), SAMPLE_RATE, 8000), 8000, SAMPLE_RATE).astype(np.float64)
        steps.append("8k")
    if rng.random() < 0.1:
        x = _codec(rng, x.astype(np.float32)).astype(np.float64)
        steps.append("codec")
    peak = np.abs(x).max() + 1e-9
    x = x / peak * 10 ** (rng.uniform(-32, -1) / 20)
    if rng.random() < 0.05:
        x = np.clip(x * 4, -1, 1)  # clipping
        steps.append("clip")
    meta = dict(u.meta, augment=steps)
    return Utterance(x.astype(np.float32), phones, meta)
