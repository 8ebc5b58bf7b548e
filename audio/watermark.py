"""Invisible provenance mark: the 64-bit payload and the spread-spectrum mark in speech audio.

Payload: 16-bit talker tag, 32-bit output id, CRC-16 over both, convolutionally coded (rate 1/2,
constraint length 7) into 140 bits that a Viterbi decoder reads back from soft values. The mark itself
is a keyed pattern, periodic with a 1 s period, defined on 1 Hz bins between 1 and 4 kHz: half the
bins (sync) carry a fixed random phase, the rest are split among the 140 coded bits, each bit
flipping the sign of its bins. Detection resamples to 16 kHz, folds the signal onto one period
(evidence grows with every second heard), whitens the spectrum and correlates with the sync bins at
every circular offset; the peak gives the offset and a z-score, and the payload bins read there give
the coded bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TAG = 0x544B  # "TK": the talker tag in every payload
WORD_BITS = 64  # tag, output id, CRC
TAIL_BITS = 6  # zeros that return the convolutional encoder to its first state
N_BITS = 2 * (WORD_BITS + TAIL_BITS)  # coded bits carried by the mark
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


def _word_bits(output_id: int) -> np.ndarray:
    """The 64 payload bits (0/1): tag, id, CRC-16 of both."""
    if not 0 <= output_id < 2**32:
        raise ValueError(f"output id must fit in 32 bits, got {output_id}")
    head = TAG.to_bytes(2, "big") + output_id.to_bytes(4, "big")
    word = int.from_bytes(head + crc16(head).to_bytes(2, "big"), "big")
    return np.array([(word >> (WORD_BITS - 1 - i)) & 1 for i in range(WORD_BITS)], np.uint8)


def _parity(x: np.ndarray) -> np.ndarray:
    return np.array([bin(int(v)).count("1") & 1 for v in x.ravel()], np.uint8).reshape(x.shape)


# convolutional code, rate 1/2, constraint length 7 (generators 133, 171 octal): every state's two
# output bits for an input bit of 0 and of 1, and the state it leads to
_STATES = np.arange(64)
_NEXT = np.stack([(_STATES >> 1), (_STATES >> 1) | 32], axis=1)  # [state, input]
_REG = np.stack([_STATES | (b << 6) for b in (0, 1)], axis=1)  # the 7-bit register, newest bit high
_OUT = np.stack([_parity(_REG & 0o133), _parity(_REG & 0o171)], axis=2).astype(np.float32) * 2 - 1


def payload_bits(output_id: int) -> np.ndarray:
    """The ``N_BITS`` coded payload bits (+1/-1, float32) for a 32-bit ``output_id``."""
    bits = np.concatenate([_word_bits(output_id), np.zeros(TAIL_BITS, np.uint8)])
    state = 0
    out = np.empty((len(bits), 2), np.float32)
    for t, b in enumerate(bits):
        out[t] = _OUT[state, b]
        state = _NEXT[state, b]
    return out.ravel()


def read_payload(soft: np.ndarray) -> int | None:
    """The output id from ``N_BITS`` soft coded bits (sign = bit), Viterbi-decoded, when the tag and
    the CRC check (32 check bits: noise passes once in ~4e9), else None."""
    steps = len(soft) // 2
    pairs = np.asarray(soft, np.float64).reshape(steps, 2)
    score = np.full(64, -np.inf)
    score[0] = 0.0
    # state n is reached with input bit n >> 5 from the two states (n & 31) << 1 | {0, 1}
    given = _STATES >> 5
    p0 = (_STATES & 31) << 1
    p1 = p0 | 1
    back = np.zeros((steps, 64), np.int64)  # per step and state reached: the state it came from
    for t in range(steps):
        gain = _OUT[:, :, 0] * pairs[t, 0] + _OUT[:, :, 1] * pairs[t, 1]  # [state, input]
        c0 = score[p0] + gain[p0, given]
        c1 = score[p1] + gain[p1, given]
        take1 = c1 > c0
        score = np.where(take1, c1, c0)
        back[t] = np.where(take1, p1, p0)
    state = 0  # the tail brings the encoder back to state 0
    bits = np.zeros(steps, np.uint8)
    for t in range(steps - 1, -1, -1):
        bits[t] = state >> 5
        state = int(back[t, state])
    word = int("".join(str(int(b)) for b in bits[:WORD_BITS]), 2)
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

    def __call__(self, samples: np.ndarray, start: int | None = None) -> np.ndarray:
        """The chunk, marked; ``start``: its first sample's index in the output (default: right
        after the previous chunk), which keeps the pattern's phase when chunks are skipped."""
        if start is not None and start != self._n:
            self._n, self._gain = start, 0.0
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
