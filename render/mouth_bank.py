"""The person's own open mouths, kept from a video's frames by opening (a memory bank built from real
frames): where a redraw opens a mouth wider than the frame did, the interior (teeth, tongue, cavity) comes
from the frame that opened about as far. Also the inner-lip gap both the bank and the redraw measure."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from render import topology as T
from render.rig import eye_centres

GAP_PAIRS = ((82, 87), (13, 14), (312, 317), (81, 178), (311, 402))
"""Inner-lip landmark pairs (upper, lower) whose mean distance is the lip gap, as the rig measures it."""
INNER = T.LIP_INNER_UPPER + T.LIP_INNER_LOWER[::-1][1:-1]
"""The inner lip contour, as a polygon."""


def eye_axis(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame of (N, 478, >=2) landmarks: the unit vector (N, 2) from the right eye's centre to the
    left's, and their distance (N,), the inter-ocular distance (as the rig measures it)."""
    p = np.asarray(points, np.float64)[..., :2]
    d = p[:, T.L_EYE_UPPER + T.L_EYE_LOWER].mean(axis=1) - p[:, T.R_EYE_UPPER + T.R_EYE_LOWER].mean(axis=1)
    iod = np.maximum(np.linalg.norm(d, axis=1), 1e-6)
    return d / iod[:, None], iod


def lip_gaps_iod(points: np.ndarray, axis: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The inner-lip gap (N,) of (N, 478, >=2) landmarks in inter-ocular distances, all frames at once;
    ``axis``: their ``eye_axis`` when the caller has it already."""
    p = np.asarray(points, np.float64)[..., :2]
    ex, iod = eye_axis(p) if axis is None else axis
    ey = np.stack([-ex[:, 1], ex[:, 0]], axis=1)
    return np.mean([((p[:, b] - p[:, a]) * ey).sum(axis=1) for a, b in GAP_PAIRS], axis=0) / iod


def lip_gap_iod(points: np.ndarray) -> float:
    """The inner-lip gap of (478, 3) landmarks in inter-ocular distances (as the rig measures it)."""
    return float(lip_gaps_iod(np.asarray(points)[None])[0])


_BANK_MIN_GAP = 0.08  # mouths open at least this far (IOD) are kept in the bank
BANK_WIDER = 0.03
"""The bank's mouth is used where the new opening is this much wider than the frame's own (IOD)."""


@dataclass(frozen=True)
class MouthSample:
    """One frame's own open mouth: the pixels around it and its landmarks in them."""

    gap: float  # inner-lip gap, inter-ocular distances
    image: np.ndarray  # (h, w, 3) RGB uint8
    points: np.ndarray  # (478, 2) landmarks, pixels of ``image``


def mouth_sample(image: np.ndarray, points: np.ndarray) -> MouthSample:
    """The mouth of a frame (RGB uint8, (478, >=2) landmarks) as a ``MouthSample``."""
    lips = points[T.LIP_OUTER_UPPER + T.LIP_OUTER_LOWER, :2]
    r, left = eye_centres(points)
    pad = 0.15 * float(np.linalg.norm((left - r)[:2]))
    h, w = image.shape[:2]
    x0, y0 = int(max(0, lips[:, 0].min() - pad)), int(max(0, lips[:, 1].min() - pad))
    x1, y1 = int(min(w, lips[:, 0].max() + pad + 1)), int(min(h, lips[:, 1].max() + pad + 1))
    patch = np.ascontiguousarray(image[y0:y1, x0:x1])
    return MouthSample(lip_gap_iod(points), patch, points[:, :2].astype(np.float64) - np.array([x0, y0]))


def _bank_slot(p: np.ndarray) -> tuple[int, float] | None:
    """(step of opening, how far the face is turned) of landmarks ``p``, or None for a mouth not open
    enough for the bank."""
    gap = lip_gap_iod(p)
    if gap < _BANK_MIN_GAP:
        return None
    r, left = eye_centres(p)
    iod = float(np.linalg.norm((left - r)[:2]))
    return int(gap / 0.04), abs(float(p[T.NOSE_TIP, 0] - 0.5 * (r[0] + left[0]))) / max(iod, 1e-6)


def bank_frames(points: np.ndarray, valid: np.ndarray) -> list[int]:
    """Frames whose open mouths make a good bank: over the range of openings, the most frontal face per
    step of opening (0.04 IOD). ``points`` (N, 478, 3), ``valid`` (N,) bool."""
    best: dict[int, tuple[float, int]] = {}
    for k in np.where(valid)[0]:
        slot = _bank_slot(points[k])
        if slot is not None and (slot[0] not in best or slot[1] < best[slot[0]][0]):
            best[slot[0]] = (slot[1], int(k))
    return sorted(k for _, k in best.values())


class BankCollector:
    """Builds a ``MouthBank`` from frames as they pass (``offer``): per step of opening, the most frontal."""

    def __init__(self) -> None:
        self._best: dict[int, tuple[float, MouthSample]] = {}

    def offer(self, image: np.ndarray, points: np.ndarray) -> None:
        slot = _bank_slot(points)
        if slot is not None and (slot[0] not in self._best or slot[1] < self._best[slot[0]][0]):
            self._best[slot[0]] = (slot[1], mouth_sample(image, points))

    def bank(self) -> MouthBank:
        return MouthBank([m for _, m in self._best.values()])


class MouthBank:
    """The person's own open mouths, by opening: where a dub opens a mouth wider than the frame did, the
    interior (teeth, tongue, cavity) comes from the sample opened about as far."""

    def __init__(self, samples: list[MouthSample]) -> None:
        self.samples = sorted(samples, key=lambda m: m.gap)
        self._gaps = np.array([m.gap for m in self.samples])

    def __len__(self) -> int:
        return len(self.samples)

    def pick(self, gap: float) -> MouthSample | None:
        """The sample opened closest to ``gap`` (IOD), preferring wider ones; None when the bank is empty."""
        if not self.samples:
            return None
        cost = np.abs(self._gaps - gap) + 0.5 * np.maximum(gap - self._gaps, 0.0)
        return self.samples[int(np.argmin(cost))]

    def paint(self, out: np.ndarray, vt: np.ndarray, iod: float) -> bool:
        """Paint the interior of the opening of target vertices ``vt`` (Nv, 2) into ``out`` from the sample
        that fits; False when there is none."""
        gap = float(np.mean([vt[b, 1] - vt[a, 1] for a, b in GAP_PAIRS])) / max(iod, 1e-6)
        sample = self.pick(gap)
        if sample is None:
            return False
        ids = [78, 308, 13, 14, 82, 87, 312, 317]
        src = sample.points[ids]
        dst = vt[ids, :2]
        a = np.column_stack([src, np.ones(len(src))])
        m = np.linalg.lstsq(a, dst, rcond=None)[0].T  # (2, 3): sample pixels -> out pixels
        poly = vt[INNER, :2]
        h, w = out.shape[:2]
        x0, y0 = int(max(0, np.floor(poly[:, 0].min()) - 2)), int(max(0, np.floor(poly[:, 1].min()) - 2))
        x1, y1 = int(min(w, np.ceil(poly[:, 0].max()) + 3)), int(min(h, np.ceil(poly[:, 1].max()) + 3))
        if x1 - x0 < 3 or y1 - y0 < 3:
            return False
        shift = np.array([[1.0, 0, -x0], [0, 1.0, -y0]])
        m_box = shift @ np.vstack([m, [0, 0, 1.0]])
        warped = cv2.warpAffine(sample.image, m_box, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [np.round((poly - [x0, y0]) * 8).astype(np.int32)], (255,), cv2.LINE_AA, shift=3)
        alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), max(0.5, 0.01 * iod))[..., None]
        region = out[y0:y1, x0:x1].astype(np.float32)
        out[y0:y1, x0:x1] = np.clip(region + alpha * (warped.astype(np.float32) - region) + 0.5, 0, 255).astype(
            np.uint8
        )
        return True
