"""Reading audio files and changing sample rates: the only place ``audio/`` touches codecs.

``load_audio`` decodes any container/codec FFmpeg knows (wav, mp3, flac, ogg/vorbis/opus, m4a/aac, ...)
through PyAV, at any sample rate and channel count, into mono float32 in [-1, 1]. Decoding streams frame by
frame (memory holds only the mono output, never the multichannel source), and an over-long file is refused
as soon as its length is known.
"""

from __future__ import annotations

import functools
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np

MAX_AUDIO_S = 3600.0
"""Longest audio accepted by default (seconds); pass ``max_duration_s`` to change it."""


_SLACK_S = 0.02  # headers and codec padding may overstate a length by a few ms


class AudioError(ValueError):
    """An audio input cannot be used: missing, not audio, corrupt, empty or too long. Names the file."""


def load_audio(
    path: str | Path, sample_rate: int | None = None, max_duration_s: float | None = MAX_AUDIO_S
) -> tuple[np.ndarray, int]:
    """Decode ``path`` to mono float32 samples.

    Args:
        path: audio (or video with an audio track) file.
        sample_rate: output rate in Hz; ``None`` keeps the file's own rate.
        max_duration_s: refuse longer files (``None``: no limit).

    Returns:
        ``(samples, sr)``: shape ``(n,)`` float32 in [-1, 1], the mean of all channels, and its rate in Hz.

    Raises:
        AudioError: the file is missing, unreadable, has no audio stream, decodes to nothing, or is longer
            than ``max_duration_s``.
    """
    import av

    p = Path(path)
    if not p.exists():
        raise AudioError(f"audio file not found: {p}")
    if not p.is_file():
        raise AudioError(f"not a file: {p}")
    if p.stat().st_size == 0:
        raise AudioError(f"audio file is empty (0 bytes): {p}")
    if sample_rate is not None and sample_rate <= 0:
        raise AudioError(f"sample rate must be positive, got {sample_rate} (for {p})")
    try:
        container = av.open(str(p), mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise AudioError(f"cannot read {p} as audio: {e}") from e
    try:
        if not container.streams.audio:
            raise AudioError(f"{p} has no audio stream")
        stream = container.streams.audio[0]
        try:
            src_rate = int(stream.rate or 0)
        except (AttributeError, TypeError, ValueError):  # a damaged header can leave no codec context
            src_rate = 0
        if src_rate <= 0:
            raise AudioError(f"{p}: audio stream has no sample rate")
        out_rate = int(sample_rate or src_rate)
        declared = _declared_duration_s(container, stream)
        if max_duration_s is not None and declared is not None and declared > max_duration_s + _SLACK_S:
            raise AudioError(f"{p} is {declared:.1f} s long; the limit is {max_duration_s:g} s")
        limit_samples = None if max_duration_s is None else int((max_duration_s + _SLACK_S) * out_rate)
        resampler = av.AudioResampler(format="fltp", rate=out_rate)
        parts: list[np.ndarray] = []
        total = 0
        try:
            for frame in container.decode(audio=0):
                frame.pts = None  # the resampler re-times; broken timestamps must not stop decoding
                for out in resampler.resample(_audio_frame(frame)):
                    total += _append_mono(parts, out)
                if limit_samples is not None and total > limit_samples:
                    raise AudioError(
                        f"{p} is longer than the limit of {max_duration_s:g} s "
                        f"(stopped reading at {total / out_rate:.0f} s)"
                    )
            for out in resampler.resample(None):
                total += _append_mono(parts, out)
        except (av.FFmpegError, ValueError) as e:  # (ValueError: a frame whose layout or format is damaged)
            if total == 0:
                raise AudioError(f"{p}: audio data is corrupt and nothing could be decoded: {e}") from e
            # A damaged tail after good audio: keep what decoded (like most players do).
    finally:
        container.close()
    if total == 0:
        raise AudioError(f"{p} contains no audio samples (zero length)")
    samples = np.concatenate(parts) if len(parts) > 1 else parts[0]
    if limit_samples is not None and len(samples) > limit_samples:
        raise AudioError(f"{p} is {len(samples) / out_rate:.1f} s long; the limit is {max_duration_s:g} s")
    np.nan_to_num(samples, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    np.clip(samples, -1.0, 1.0, out=samples)
    return samples.astype(np.float32, copy=False), out_rate


def _audio_frame(frame: Any) -> Any:
    """Decoded frames of an audio stream are ``av.AudioFrame`` (the stubs type them as any frame)."""
    return frame


def _declared_duration_s(container: object, stream: object) -> float | None:
    """Duration from the container or stream header, if it states one (it can be absent or wrong)."""
    dur = getattr(stream, "duration", None)
    tb = getattr(stream, "time_base", None)
    if dur is not None and tb is not None:
        return float(dur * tb)
    cdur = getattr(container, "duration", None)
    if cdur is not None:
        return float(cdur) / 1_000_000.0  # AV_TIME_BASE
    return None


def _append_mono(parts: list[np.ndarray], frame: object) -> int:
    arr = frame.to_ndarray()  # type: ignore[attr-defined]  # (channels, n) float32 for planar formats
    if arr.ndim == 2 and arr.shape[0] > 1:
        mono = arr.mean(axis=0, dtype=np.float32)
    else:
        mono = np.asarray(arr, dtype=np.float32).reshape(-1)
    if len(mono):
        parts.append(np.ascontiguousarray(mono, dtype=np.float32))
    return len(mono)


@functools.lru_cache(maxsize=16)
def _resample_filter(up: int, down: int) -> np.ndarray:
    """``resample_poly``'s default low-pass (Kaiser, beta 5), designed once per ratio: designing it takes
    longer than filtering a 40 ms piece, and live sessions resample every frame."""
    from scipy.signal import firwin

    max_rate = max(up, down)
    h: np.ndarray = firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))
    h.setflags(write=False)
    return h


def resample(samples: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Change the sample rate of mono float samples (polyphase filter, anti-aliased).

    Args:
        samples: shape ``(n,)``.
        sr_in, sr_out: rates in Hz (positive integers).

    Returns:
        float32 array of ``round(n * sr_out / sr_in)`` samples.
    """
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"resample expects mono (1-D) samples, got shape {x.shape}")
    if sr_in == sr_out or len(x) == 0:
        return x.copy()
    from scipy.signal import resample_poly

    g = gcd(int(sr_in), int(sr_out))
    up, down = int(sr_out) // g, int(sr_in) // g
    y = resample_poly(x, up, down, window=_resample_filter(up, down)).astype(np.float32)
    n_out = int(round(len(x) * sr_out / sr_in))
    if len(y) > n_out:
        y = y[:n_out]
    elif len(y) < n_out:
        y = np.pad(y, (0, n_out - len(y)))
    return y


def to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] to little-endian signed 16-bit PCM bytes."""
    x = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    return (x * 32767.0).astype("<i2").tobytes()
