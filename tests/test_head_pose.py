"""The encoder's head rotation (``render.head_pose``) on pictures of a known 3-D face: turned, nodded and
tilted heads read back at their angles, and expressions or an outline slid along itself read as no turn."""

from __future__ import annotations

import numpy as np
import pytest

from render import topology as T
from render.canonical import canonical_mesh
from render.deform import _rotation
from render.encoder import euler_zxy
from render.head_pose import HeadPose

IOD_PX = 120.0


def _picture(shape: np.ndarray, yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(478, 2) pixels: the face-frame shape turned by the angles (degrees, as ``render.deform`` composes
    them), scaled and placed in a frame, orthographic."""
    r = _rotation(*np.radians([yaw, pitch, roll]))
    return (shape @ r.T)[:, :2] * IOD_PX + np.array([256.0, 240.0])


def _read(shape: np.ndarray, xy: np.ndarray) -> tuple[float, float, float]:
    return euler_zxy(HeadPose(shape * IOD_PX)(xy))


@pytest.mark.parametrize("angles", [(0, 10, 0), (0, -10, 0), (12, 0, 0), (0, 0, 8), (8, -10, 5), (-15, 12, -6)])
def test_a_pictured_head_reads_back_at_its_angles(angles):
    shape = canonical_mesh()
    got = _read(shape, _picture(shape, *angles))
    assert np.allclose(got, angles, atol=0.1), (angles, got)


def test_expressions_do_not_read_as_a_nod():
    """Brows and forehead raised, lids shut, the jaw and lips dropped: the head has not moved."""
    shape = canonical_mesh()
    xy = _picture(shape, 0, 6, 0)
    moved = xy.copy()
    up = sorted(set(T.FOREHEAD + [70, 63, 105, 66, 107, 300, 293, 334, 296, 336]))
    moved[up, 1] -= 0.08 * IOD_PX
    moved[T.R_EYE_UPPER[1:-1] + T.L_EYE_UPPER[1:-1], 1] += 0.2 * IOD_PX  # the lids, not the corners
    lower = np.where(shape[:, 1] > 0.9)[0]  # everything below the nose: lips, jaw, chin
    moved[lower, 1] += 0.25 * IOD_PX * (shape[lower, 1] - 0.9)
    base = _read(shape, xy)
    got = _read(shape, moved)
    assert abs(got[1] - base[1]) < 0.2 and abs(got[0] - base[0]) < 0.2, (base, got)


def test_an_outline_slid_along_itself_reads_as_no_nod():
    """The mesh's face outline lies on the silhouette, where the picture does not fix its height: points
    slid up or down along it do not tilt the head."""
    from render.head_pose import OUTLINE

    shape = canonical_mesh()
    xy = _picture(shape, 5, 0, 0)
    slid = xy.copy()
    slid[OUTLINE, 1] += 0.1 * IOD_PX
    assert abs(_read(shape, slid)[1] - _read(shape, xy)[1]) < 0.05
