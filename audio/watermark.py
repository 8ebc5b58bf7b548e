"""Invisible provenance mark: the 64-bit payload and the spread-spectrum mark in speech audio.

Payload: 16-bit talker tag, 32-bit output id, CRC-16 over both. The mark itself is a keyed pattern,
periodic with a 1 s period, defined on 1 Hz bins between 1 and 4 kHz: half the bins (sync) carry a
fixed random phase, the rest are split among the 64 payload bits, each bit flipping the sign of its
bins. Detection resamples to 16 kHz, folds the signal onto one period (evidence grows with every
second heard), whitens the spectrum and correlates with the sync bins at every circular offset; the
peak gives the offset and a z-score, and the payload bins read there give the bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

TAG = 0x544B  # "TK": the talker tag in every payload
N_BITS = 64
KEY = 0x7A1C_2026  # seeds every pattern; a deployer's own key would make its marks private

AUDIO_RATE = 16_000  # analysis rate (Hz); the pattern's period is one second at any rate
AUDIO_BAND_HZ = (1000, 4000)
AUDIO_SNR_DB = 32.0  # mark power below the speech around it
AUDIO_FOUND_Z = 6.0  # sync z-score alone that counts as found
AUDIO_PAYLOAD_Z = 4.0  # sync z-score that counts as found when the payload's checks also pass


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE of ``data``."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def payload_bits(output_id: int) -> np.ndarray:
    """The 64 payload bits (+1/-1, float32) for a 32-bit ``output_id``."""
    if not 0 <= output_id < 2**32:
        raise ValueError(f"output id must fit in 32 bits, got {output_id}")
    head = TAG.to_bytes(2, "big") + output_id.to_bytes(4, "big")
    word = int.from_bytes(head + crc16(head).to_bytes(2, "big"), "big")
    bits = [(word >> (N_BITS - 1 - i)) & 1 for i in range(N_BITS)]
    return np.where(np.array(bits) > 0, 1.0, -1.0).astype(np.float32)


def read_payload(soft: np.ndarray, max_flips: int = 3, weakest: int = 16) -> int | None:
    """The output id from 64 soft bits (sign = bit) when the tag and the CRC check, else None.

    The weakest ``weakest`` bits may be flipped, up to ``max_flips`` at a time, before giving up:
    697 candidates against 32 check bits leave ~2e-7 chance that noise passes."""
    hard = soft > 0
    order = np.argsort(np.abs(soft))[:weakest]
    for n in range(max_flips + 1):
        for flip in combinations(order.tolist(), n):
            bits = hard.copy()
            bits[list(flip)] ^= True
            word = int("".join("1" if b else "0" for b in bits), 2)
            raw = word.to_bytes(8, "big")
            if int.from_bytes(raw[:2], "big") == TAG and crc16(raw[:6]) == int.from_bytes(raw[6:], "big"):
                return int.from_bytes(raw[2:6], "big")
    return None


def new_output_id() -> int:
    """A random 32-bit id for one output."""
    import secrets

    return secrets.randbits(32)


@dataclass(frozen=True)
class Layout:
    """Which spectrum bins carry the sync pattern and which carry each payload bit."""

    sync: np.ndarray  # indices into the flattened half spectrum
    bits: list[np.ndarray]  # one index array per payload bit
    phase: np.ndarray  # unit complex phase per flattened bin (all bins)


def make_layout(candidates: np.ndarray, n_total: int, salt: int, sync_fraction: float = 0.5) -> Layout:
    """Split ``candidates`` (flattened half-spectrum indices) into sync and payload bins, keyed."""
    rng = np.random.default_rng([KEY, salt])
    idx = rng.permutation(candidates)
    half = int(len(idx) * sync_fraction)
    sync, rest = idx[:half], idx[half:]
    bits = [rest[i::N_BITS] for i in range(N_BITS)]
    phase = np.exp(2j * np.pi * rng.random(n_total)).astype(np.complex64)
    return Layout(np.sort(sync), bits, phase)


@dataclass(frozen=True)
class Detection:
    """What a detector found: ``found``, the output id (None when unreadable), the sync z-score
    (above ~6 is never seen on unmarked media) and the payload bits' mean |z|."""

    found: bool
    output_id: int | None
    z: float
    bit_z: float
    detail: str = ""


def _audio_layout() -> Layout:
    lo, hi = AUDIO_BAND_HZ
    n_bins = AUDIO_RATE // 2 + 1
    return make_layout(np.arange(lo, hi + 1), n_bins, salt=1)


def audio_pattern(output_id: int, sample_rate: int) -> np.ndarray:
    """One period (1 s, ``sample_rate`` samples, float32) of the mark, unit RMS."""
    lay = _audio_layout()
    bits = payload_bits(output_id)
    spec = np.zeros(sample_rate // 2 + 1, np.complex64)
    spec[lay.sync] = lay.phase[lay.sync]
    for b, where in zip(bits, lay.bits, strict=True):
        spec[where] = b * lay.phase[where]
    x = np.fft.irfft(spec, n=sample_rate).astype(np.float32)
    return x / float(np.sqrt(np.mean(x * x)))


class AudioMarker:
    """Adds the mark to successive mono float32 chunks of one output, following the speech level.

    The mark's level tracks the RMS of the signal around it (``AUDIO_SNR_DB`` below), so silence stays
    silent; chunks may have any length."""

    def __init__(self, output_id: int, sample_rate: int) -> None:
        self.output_id = output_id
        self.sample_rate = int(sample_rate)
        self._pattern = audio_pattern(output_id, self.sample_rate)
        self._n = 0
        self._gain = 0.0
        self._scale = 10.0 ** (-AUDIO_SNR_DB / 20.0)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        n = len(samples)
        if n == 0:
            return samples
        x = np.asarray(samples, np.float32)
        idx = (self._n + np.arange(n)) % self.sample_rate
        self._n += n
        # envelope: RMS over 10 ms blocks, ramped from the previous chunk's level
        block = max(1, self.sample_rate // 100)
        nb = -(-n // block)
        pad = np.zeros(nb * block, np.float32)
        pad[:n] = x
        rms = np.sqrt(np.mean(pad.reshape(nb, block) ** 2, axis=1))
        env = np.repeat(rms, block)[:n]
        k = np.arange(1, n + 1, dtype=np.float32) / n
        gain = self._gain * (1 - k) + env * k if n < block else env
        self._gain = float(env[-1])
        return (x + self._scale * gain * self._pattern[idx]).astype(np.float32)


def mark_audio(samples: np.ndarray, sample_rate: int, output_id: int) -> np.ndarray:
    """``samples`` (mono float32) with the mark added (all at once)."""
    return AudioMarker(output_id, sample_rate)(samples)


def _resample(x: np.ndarray, sr: int, to: int) -> np.ndarray:
    if sr == to:
        return x
    from scipy.signal import resample_poly

    g = np.gcd(sr, to)
    return resample_poly(x, to // g, sr // g).astype(np.float32)


def detect_audio(samples: np.ndarray, sample_rate: int) -> Detection:
    """Look for the mark in mono float32 ``samples`` (any rate; a few seconds of speech suffice)."""
    x = _resample(np.asarray(samples, np.float32), int(sample_rate), AUDIO_RATE)
    n = AUDIO_RATE
    if len(x) < n // 2:
        return Detection(False, None, 0.0, 0.0, "under half a second of audio")
    x = _whiten(x)
    periods = -(-len(x) // n)
    folded = np.zeros(periods * n, np.float32)
    folded[: len(x)] = x
    folded = folded.reshape(periods, n).sum(axis=0)
    return _correlate_1d(np.fft.rfft(folded), _audio_layout())


def _whiten(x: np.ndarray) -> np.ndarray:
    """Flatten the spectrum in time and frequency: each 32 ms STFT cell keeps its phase and is
    divided by its magnitude, so loud harmonics weigh no more than the mark under them."""
    from scipy.signal import istft, stft

    _, _, z = stft(x, fs=AUDIO_RATE, nperseg=512, noverlap=384)
    z = z / np.maximum(np.abs(z), 1e-6)
    _, y = istft(z, fs=AUDIO_RATE, nperseg=512, noverlap=384)
    return np.asarray(y[: len(x)], np.float32)


def _correlate_1d(spec: np.ndarray, lay: Layout) -> Detection:
    g = np.zeros_like(spec)
    mag = np.abs(spec)
    g[lay.sync] = spec[lay.sync] / np.maximum(mag[lay.sync], 1e-12)
    surface = np.fft.irfft(g * np.conj(lay.phase), n=AUDIO_RATE)
    return _decide(surface, spec, mag, lay, np.arange(AUDIO_RATE // 2 + 1), AUDIO_RATE,
                   AUDIO_FOUND_Z, AUDIO_PAYLOAD_Z)  # fmt: skip


def _decide(
    surface: np.ndarray,
    spec: np.ndarray,
    mag: np.ndarray,
    lay: Layout,
    freqs: np.ndarray,
    period: int,
    found_z: float,
    payload_z: float,
) -> Detection:
    """Peak of the sync correlation ``surface`` (1-D), then the payload read at that offset."""
    std = float(surface.std())
    peak = int(np.argmax(surface))
    z = float((surface[peak] - surface.mean()) / max(std, 1e-12))
    # a shift of ``peak`` samples turns each bin's phase by 2*pi*f*peak/period
    turn = np.exp(2j * np.pi * freqs * peak / period)
    unit = spec / np.maximum(mag, 1e-12)
    aligned = unit * np.conj(lay.phase) * turn
    soft = np.array([aligned[w].real.sum() / np.sqrt(len(w) / 2) for w in lay.bits], np.float32)
    output_id = read_payload(soft) if z >= payload_z else None
    found = z >= found_z or output_id is not None
    return Detection(found, output_id, z, float(np.mean(np.abs(soft))))
