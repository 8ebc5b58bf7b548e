"""I420 frames (4:2:0 YUV, the planes stacked as ``cv2.COLOR_RGB2YUV_I420`` makes them): reading a box of
one as RGB and writing RGB pixels back into it, so a redraw converts only the pixels it touches and the
rest of the frame keeps its decoded values exactly."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from render.redub import FrameLips, MouthRedrawer


def planes(yuv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views (Y (H, W), U (H/2, W/2), V (H/2, W/2)) of an I420 frame (H * 3 / 2, W) with even W, H."""
    h, w = yuv.shape[0] * 2 // 3, yuv.shape[1]
    flat = yuv.reshape(-1)
    q = (h // 2) * (w // 2)
    return yuv[:h], flat[h * w : h * w + q].reshape(h // 2, w // 2), flat[h * w + q :].reshape(h // 2, w // 2)


def _box_i420(yuv: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    y, u, v = planes(yuv)
    bw, bh = x1 - x0, y1 - y0
    out = np.empty((bh * 3 // 2, bw), np.uint8)
    flat = out.reshape(-1)
    q = (bh // 2) * (bw // 2)
    out[:bh] = y[y0:y1, x0:x1]
    flat[bh * bw : bh * bw + q] = u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2].reshape(-1)
    flat[bh * bw + q :] = v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2].reshape(-1)
    return out


def _check(box: tuple[int, int, int, int]) -> None:
    if any(c % 2 for c in box) or box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"an I420 box needs even, ordered corners, got {box}")


def crop_rgb(yuv: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The pixels of ``box`` = (x0, y0, x1, y1) (even corners) of an I420 frame, as RGB uint8."""
    _check(box)
    return np.asarray(cv2.cvtColor(_box_i420(yuv, box), cv2.COLOR_YUV2RGB_I420))


def paste_rgb(yuv: np.ndarray, box: tuple[int, int, int, int], rgb: np.ndarray, alpha: np.ndarray) -> None:
    """Blend RGB pixels ``rgb`` (box-sized) into ``box`` (even corners) of an I420 frame, in place, with
    weight ``alpha`` (box-sized float32, 0..1; each chroma sample takes the mean of its four pixels'):
    pixels of weight 0 keep their values exactly."""
    _check(box)
    x0, y0, x1, y1 = box
    new = np.asarray(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420))
    ny, nu, nv = planes(new)
    y, u, v = planes(yuv)
    a = np.ascontiguousarray(alpha, np.float32)
    a2 = cv2.resize(a, ((x1 - x0) // 2, (y1 - y0) // 2), interpolation=cv2.INTER_AREA)
    for dst, src, w in (
        (y[y0:y1, x0:x1], ny, a),
        (u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2], nu, a2),
        (v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2], nv, a2),
    ):
        dst[:] = cv2.blendLinear(np.ascontiguousarray(src), np.ascontiguousarray(dst), w, 1.0 - w)


def redraw_mouth(
    yuv: np.ndarray, redrawer: MouthRedrawer, points: np.ndarray, mouth: np.ndarray, lips: FrameLips | None = None
) -> None:
    """Redraw the mouth of I420 frame ``yuv`` in place: ``points`` its face's (478, 3) landmarks, ``mouth``
    values of ``render.redub.MOUTH_CHANNELS``, ``lips`` as ``MouthRedrawer.redraw_crop`` takes them. Raises
    ``RigError`` when the face cannot be rigged."""
    size = (yuv.shape[1], yuv.shape[0] * 2 // 3)
    box = redrawer.region(points, size)
    got = redrawer.redraw_crop(crop_rgb(yuv, box), box, points, mouth, lips)
    if got is None:
        return
    drawn, alpha, (r0, c0) = got
    x0, y0 = box[0], box[1]
    # the redrawn rows and columns, widened to even pixels (a chroma sample covers 2x2)
    a0, b0 = r0 - r0 % 2, c0 - c0 % 2
    a1, b1 = r0 + len(drawn), c0 + drawn.shape[1]
    a1, b1 = a1 + a1 % 2, b1 + b1 % 2
    rgb = crop_rgb(yuv, (x0 + b0, y0 + a0, x0 + b1, y0 + a1))
    weight = np.zeros(rgb.shape[:2], np.float32)
    rgb[r0 - a0 : r0 - a0 + len(drawn), c0 - b0 : c0 - b0 + drawn.shape[1]] = drawn
    weight[r0 - a0 : r0 - a0 + len(drawn), c0 - b0 : c0 - b0 + drawn.shape[1]] = alpha
    paste_rgb(yuv, (x0 + b0, y0 + a0, x0 + b1, y0 + a1), rgb, weight)
