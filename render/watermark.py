"""Invisible provenance mark in pixels: a keyed luma pattern tiled over every frame.

The pattern is one 128x128 tile defined in its 2-D spectrum on the ring 4-24 cycles per tile
(periods of 5-32 px: low enough to survive H.264 at low bit rates and a resize to half, high enough
to stay out of sight at about 1.8 grey levels RMS). Three fifths of the ring's bins carry a fixed
random phase (sync); the rest are split among the 140 coded payload bits (``audio.watermark``),
each flipping its bins' sign. The tile repeats over the frame from its top-left corner, so a crop only
shifts it circularly.

Embedding adds one precomputed pattern per frame size to the luma (the same value to R, G and B):
well under a millisecond for a 512x512 frame. Detection sums the high-passed luma of all frames,
then tries 66 scales from 0.4 to 2 (the tile then spans 52 to 256 px); at each it folds the sum onto
one tile, whitens the tile's spectrum and correlates it with the sync bins at all circular shifts;
the peak's z-score says whether the mark is there and the payload bins read at that shift give the
output id.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np

from audio.watermark import N_BITS, Detection, Layout, make_layout, payload_bits, read_payload

TILE = 128  # px
RING = (4.0, 24.0)  # cycles per tile
AMPLITUDE = 1.8  # RMS grey levels added to the luma
FOUND_Z = 6.5  # sync z-score alone that counts as found (unmarked media peak at ~5.1)
PAYLOAD_Z = 4.5  # sync z-score that counts as found when the payload's checks also pass
# scales tried when detecting (the size seen over the marked size): 2.5% apart from 0.4 to 2, so the
# ring's highest bin lands within half a bin of its place at one of them; then finer around the best
SCALES = tuple(2.0 ** (k / 28) for k in range(-37, 29))
MIN_PERIOD = 2 * int(RING[1]) + 4  # a folded tile must hold the ring and the 5x5 weighting around it


@lru_cache(maxsize=1)
def _layout() -> tuple[Layout, np.ndarray, np.ndarray]:
    """Sync and payload bins on the ring, and each rfft2 bin's (ky, kx) frequency."""
    ky = np.fft.fftfreq(TILE, 1.0 / TILE)[:, None] * np.ones((1, TILE // 2 + 1))
    kx = np.arange(TILE // 2 + 1)[None, :] * np.ones((TILE, 1))
    r = np.hypot(ky, kx)
    # kx = 0 and kx = TILE/2 hold bins that are their own conjugates' mirrors: left out
    ring = (r >= RING[0]) & (r <= RING[1]) & (kx > 0) & (kx < TILE // 2)
    lay = make_layout(np.flatnonzero(ring.ravel()), ring.size, salt=2, sync_fraction=0.6)
    return lay, ky.ravel(), kx.ravel()


@lru_cache(maxsize=8)
def tile_pattern(output_id: int) -> np.ndarray:
    """The 128x128 float32 pattern for ``output_id``, ``AMPLITUDE`` RMS."""
    lay, _, _ = _layout()
    spec = np.zeros(TILE * (TILE // 2 + 1), np.complex64)
    spec[lay.sync] = lay.phase[lay.sync]
    for b, where in zip(payload_bits(output_id), lay.bits, strict=True):
        spec[where] = b * lay.phase[where]
    t = np.fft.irfft2(spec.reshape(TILE, TILE // 2 + 1), s=(TILE, TILE)).astype(np.float32)
    return t * (AMPLITUDE / float(np.sqrt(np.mean(t * t))))


class PixelMarker:
    """Adds the mark for one output to frames of any size (patterns cached per size)."""

    def __init__(self, output_id: int) -> None:
        self.output_id = output_id
        self._cache: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}

    def _planes(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(what to add, what to subtract) as uint8 arrays of ``shape`` (H, W) or (H, W, C)."""
        got = self._cache.get(shape)
        if got is None:
            h, w = shape[:2]
            t = np.rint(tile_pattern(self.output_id))
            full = np.tile(t, (-(-h // TILE), -(-w // TILE)))[:h, :w]
            if len(shape) == 3:
                full = np.repeat(full[:, :, None], shape[2], axis=2)
            got = (np.clip(full, 0, 255).astype(np.uint8), np.clip(-full, 0, 255).astype(np.uint8))
            if len(self._cache) > 4:
                self._cache.clear()
            self._cache[shape] = got
        return got

    def mark(self, image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``image`` (H x W luma, or H x W x 3 RGB; uint8) with the mark added (saturating).

        ``out`` may be ``image`` itself to mark in place."""
        import cv2

        add, sub = self._planes(image.shape)
        res = cv2.add(image, add, dst=out)
        return cv2.subtract(res, sub, dst=res)


def luma(image: np.ndarray) -> np.ndarray:
    """Luma (float32, H x W) of a grey or RGB uint8 image."""
    if image.ndim == 2:
        return image.astype(np.float32)
    c = image[..., :3].astype(np.float32)
    return c[..., 0] * 0.299 + c[..., 1] * 0.587 + c[..., 2] * 0.114


class PixelDetector:
    """Accumulates evidence over frames (grey H x W arrays), then decides.

    Frames of one video share one scale and one shift, and every step after the high-pass is linear:
    the high-passed frames are summed per frame size, and the tile periods are tried once on the sums.
    Each scale is tried at the size seen (resized by at most 1%), so small copies cost little."""

    def __init__(self, scales: Iterable[float] = SCALES) -> None:
        self.scales = tuple(x for x in scales if TILE * x >= MIN_PERIOD)
        self._sums: dict[tuple[int, ...], np.ndarray] = {}
        self.frames = 0

    def add(self, grey: np.ndarray) -> None:
        r = _highpass(grey.astype(np.float32))
        acc = self._sums.get(r.shape)
        if acc is None:
            self._sums[r.shape] = r
        else:
            acc += r
        self.frames += 1

    def result(self) -> Detection:
        """The best scale's detection (``detail`` names it): the grid first, then a finer look
        around its three best scales."""
        tried = {x: self._at(x) for x in self.scales}
        for x in sorted(tried, key=lambda x: -tried[x].z)[:3]:
            for k in (-2, -1, 1, 2):
                fine = x * 2.0 ** (k / 112)
                if TILE * fine >= MIN_PERIOD:
                    tried.setdefault(fine, self._at(fine))
        best = max(tried.items(), key=lambda kv: kv[1].z, default=None)
        if best is None or best[1].detail:
            return Detection(False, None, 0.0, 0.0, "image too small")
        x = best[0]
        d = self._at(x, read=True)
        return Detection(d.found, d.output_id, d.z, d.bit_z, f"scale {x:.3g}, {self.frames} frames")

    def _at(self, scale: float, read: bool = False) -> Detection:
        """The sync peak for a mark resized by ``scale``; with ``read``, the payload too (slower).

        The tile then spans ``128 * scale`` px: a resize by at most 1% makes that a whole number of
        pixels, and the fold at that period has the ring's bins in the same place (cycles per tile)."""
        import cv2

        period = round(TILE * scale)
        fit = period / (TILE * scale)
        folded = np.zeros((period, period), np.float32)
        for (h, w), acc in self._sums.items():
            sh, sw = round(h * fit), round(w * fit)
            if min(sh, sw) < period // 2:
                continue
            z = acc if (sh, sw) == (h, w) else cv2.resize(acc, (sw, sh), interpolation=cv2.INTER_LINEAR)
            folded += _fold(z, period)
        if not folded.any():
            return Detection(False, None, -1.0, 0.0, "too small")
        return _correlate(_ring_spectrum(folded), read)


def detect_pixels(frames: Iterable[np.ndarray]) -> Detection:
    """Look for the mark in frames (uint8 grey or RGB) of one image or video."""
    det = PixelDetector()
    for f in frames:
        det.add(luma(f) if f.ndim == 3 else f)
    return det.result()


def _highpass(y: np.ndarray) -> np.ndarray:
    """Luma minus its local mean (the ring's lowest period is 32 px), clipped to a few grey levels
    so that edges do not outweigh the flat areas where the mark is as strong as anywhere."""
    import cv2

    r = y - cv2.blur(y, (33, 33), borderType=cv2.BORDER_REFLECT)
    lim = 3.0 * float(np.mean(np.abs(r[::4, ::4]))) + 1.0
    return np.clip(r, -lim, lim)


def _fold(r: np.ndarray, period: int) -> np.ndarray:
    """Sum of the image's ``period`` x ``period`` tiles (zero-padded at the right and bottom)."""
    h, w = r.shape
    ph, pw = -(-h // period) * period, -(-w // period) * period
    if (ph, pw) != (h, w):
        pad = np.zeros((ph, pw), np.float32)
        pad[:h, :w] = r
        r = pad
    return r.reshape(ph // period, period, pw // period, period).sum(axis=(0, 2))


def _ring_spectrum(folded: np.ndarray) -> np.ndarray:
    """The folded tile's low bins (up to ``MIN_PERIOD // 2 - 1`` cycles per tile) placed in a
    128 x 65 half spectrum, whatever the tile's size."""
    q = folded.shape[0]
    f = np.fft.rfft2(folded)
    m = MIN_PERIOD // 2 - 1
    rows = np.r_[0 : m + 1, -m:0]
    out = np.zeros((TILE, TILE // 2 + 1), np.complex128)
    out[np.ix_(rows % TILE, np.arange(m + 1))] = f[np.ix_(rows % q, np.arange(m + 1))]
    return out


WEIGHT_POWER = 1.0  # bins are divided by the host's local spectral magnitude to this power


def _correlate(spec2: np.ndarray, read: bool = True) -> Detection:
    """Sync peak over all circular shifts of a folded tile (its 128 x 65 half spectrum ``spec2``),
    then the payload read at the peak.

    Each bin is weighted by the inverse of the host's spectral magnitude around it (a 5x5 bin
    neighbourhood), so bins where the picture is loud count for less."""
    import cv2

    lay, ky, kx = _layout()
    local = cv2.blur((np.abs(spec2) ** 2).astype(np.float32), (5, 5), borderType=cv2.BORDER_REFLECT)
    spec = spec2.ravel()
    power = np.maximum(local.ravel().astype(np.float64), 1e-18)  # (float blur can dip below 0)
    weight = 1.0 / np.sqrt(power) ** WEIGHT_POWER
    g = np.zeros_like(spec)
    g[lay.sync] = spec[lay.sync] * weight[lay.sync]
    surface = np.fft.irfft2((g * np.conj(lay.phase)).reshape(TILE, TILE // 2 + 1), s=(TILE, TILE))
    std = float(surface.std())
    py, px = np.unravel_index(int(np.argmax(surface)), surface.shape)
    z = float((surface[py, px] - surface.mean()) / max(std, 1e-12))
    if not read:
        return Detection(z >= FOUND_Z, None, z, 0.0)
    turn = np.exp(2j * np.pi * (ky * py + kx * px) / TILE)
    aligned = spec * weight * np.conj(lay.phase) * turn
    noise = np.abs(spec * weight) ** 2 / 2  # each bin's variance were it noise of random phase
    soft = np.array([aligned[w].real.sum() / np.sqrt(noise[w].sum()) for w in lay.bits], np.float32)
    assert len(soft) == N_BITS
    output_id = read_payload(soft) if z >= PAYLOAD_Z else None
    found = z >= FOUND_Z or output_id is not None
    return Detection(found, output_id, z, float(np.mean(np.abs(soft))))
