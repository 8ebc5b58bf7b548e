"""Motion channels -> target vertex positions of a FaceRig (pure array maths, ~0.1 ms per frame)."""

from __future__ import annotations

import numpy as np

from motion.types import CHANNEL_INDEX
from render import topology as T
from render.geometry import clamp
from render.rig import (
    HEAD_PIVOT,
    JAW_HINGE_YZ,
    JAW_LINE,
    LOWER_FACE,
    LOWER_LIPS,
    MAX_LIP_GAP_IOD,
    UPPER_LIPS,
    FaceRig,
    moving_handles,
)

_C = CHANNEL_INDEX

LID_MEET = 0.1
"""Where a shut upper lid meets the lower lid: this share of the open gap above the lower lid."""
WIDE = 0.3
"""How much a fully widened eye (eyeWide 1) gains of its open lid gap, its upper lid raised."""
LID_FOLLOWS_GAZE = 0.5
"""The upper lid follows the eye up: raised this share of ``WIDE`` per unit of gaze up (eyeLookY -1)."""
_UPPER_ARCH = 0.12
"""Opening wide, the upper lip's middle rises this share of the extra opening more than its corners."""
_ROUND_WIDTH = 0.55
"""Fully rounded lips (an "oo") leave open this share of the inner mouth's half width: the lips meet
beside it and part in the middle into a small rounded opening."""
_ROUND_FLARE = 0.03
"""... and the middle of that opening parts this much further (inter-ocular distances), the lips pushed
forward and apart."""
CAMERA_DISTANCE_IOD = 10.0
"""How far the portrait's camera is from the face (inter-ocular distances; about 60 cm, a webcam or a phone
at arm's length). A turning head brings some of the face nearer the camera and takes some away, and the
picture shows the nearer part larger: a turn is drawn with that perspective, not as a flat projection."""
TURN_MAX_DEG = 22.0
"""How far the warp turns a head (degrees) each way from a portrait facing the camera. A three-quarter view
turns less, this much less its own turn (``RigPose.turn``): turned back towards the camera its hidden,
compressed cheek would be stretched until it folds, and turned further away it would be drawn in near
profile from a picture that has none."""
TURN_MIN_DEG = 6.0
"""... but every portrait keeps at least this much room to turn."""


def rig_lip_gap(rig: FaceRig, v: np.ndarray) -> float:
    """The gap between ``rig``'s inner lips (IOD) that channel values ``v`` ask for (``FaceRig.lip_gap`` of
    the jaw's opening less the lips' closing)."""
    jaw = clamp(v[_C["jawOpen"]], 0.0, 1.2)
    close = clamp(v[_C["mouthClose"]], 0.0, 1.0)
    return rig.lip_gap(MAX_LIP_GAP_IOD * jaw * (1.0 - close))


def lip_rounding(v: np.ndarray) -> float:
    """How rounded the lips are (0..1) for channel values ``v``: pucker and funnel gather the lips
    into a round opening."""
    return clamp(0.8 * float(v[_C["mouthPucker"]]) + 0.7 * float(v[_C["mouthFunnel"]]), 0.0, 1.0)


class RigPose:
    """Precomputed per-rig lookups for ``deform`` (index arrays into the handle list)."""

    def __init__(self, rig: FaceRig) -> None:
        self.rig = rig
        pos = {int(v): i for i, v in enumerate(rig.handles)}
        self.pos = pos
        L = rig.local

        def hidx(ids: list[int]) -> np.ndarray:
            return np.array([pos[i] for i in ids], dtype=np.int64)

        self.h_local = L[rig.handles].astype(np.float64)
        # only the moving handles (listed first) ever get a displacement
        self.n_moving = len(moving_handles())
        self.harmonic = np.ascontiguousarray(rig.harmonic[:, : self.n_moving].astype(np.float64))
        self.n_h = len(rig.handles)
        # jaw
        self.jaw_ids = hidx(JAW_LINE + LOWER_FACE + LOWER_LIPS)
        self.jaw_gain = np.ones(len(self.jaw_ids))
        self.corner_ids = hidx(T.MOUTH_CORNERS)
        self.upper_ids = hidx(UPPER_LIPS)
        inner_up = set(T.LIP_INNER_UPPER)
        self.upper_gain = np.array([1.0 if i in inner_up else 0.8 for i in UPPER_LIPS])
        up_x = L[UPPER_LIPS, 0]
        up_c = 0.5 * (float(L[61, 0]) + float(L[291, 0]))
        up_hw = max(1e-3, 0.5 * abs(float(L[291, 0]) - float(L[61, 0])))
        self.upper_arch = np.sqrt(np.clip(1.0 - ((up_x - up_c) / up_hw) ** 2, 0.0, 1.0))
        lip_all = UPPER_LIPS + LOWER_LIPS + T.MOUTH_CORNERS
        self.lip_ids = hidx(lip_all)
        self.lower_lip_ids = hidx(LOWER_LIPS)
        inner_low = set(T.LIP_INNER_LOWER)
        self.lower_inner_gain = np.array([1.0 if i in inner_low else 0.55 for i in LOWER_LIPS])
        self.up_in = hidx(T.LIP_INNER_UPPER[1:-1])
        self.lo_in = hidx(T.LIP_INNER_LOWER[1:-1])
        self.up_out = hidx(T.LIP_OUTER_UPPER[1:-1])
        self.lo_out = hidx(T.LIP_OUTER_LOWER[1:-1])
        self.in_corners = hidx([T.LIP_INNER_UPPER[0], T.LIP_INNER_UPPER[-1]])
        self.contours = [hidx(c) for c in (T.LIP_OUTER_UPPER, T.LIP_INNER_UPPER, T.LIP_OUTER_LOWER, T.LIP_INNER_LOWER)]
        self.pair_gap0 = self.h_local[self.lo_in, 1] - self.h_local[self.up_in, 1]
        inner = L[T.LIP_INNER_UPPER]
        ic = 0.5 * (inner[0, 0] + inner[-1, 0])
        ihw = max(1e-3, 0.5 * abs(float(inner[-1, 0] - inner[0, 0])))
        rel = np.clip(np.abs(self.h_local[self.up_in, 0] - ic) / ihw, 0, 1)
        self.pair_profile = np.sqrt(np.clip(1 - rel**2.2, 0, 1))  # open mouth: round in the middle
        self.pair_rel = rel
        mouth = L[T.LIP_OUTER_UPPER + T.LIP_OUTER_LOWER]
        self.mouth_centre = mouth.mean(axis=0)
        self.mouth_half_width = max(1e-3, float(np.abs(L[[61, 291], 0] - self.mouth_centre[0]).max()))
        hy, hz = JAW_HINGE_YZ
        r = L[T.LIP_INNER_LOWER[5]]
        self.jaw_norm = max(0.2, hz - float(r[2]))  # depth from the lower lip back to the hinge
        self.hinge = np.array([hy, hz])
        # lids: upper k pairs with lower k
        self.lid_pairs = []
        for up, lo in ((T.R_EYE_UPPER, T.R_EYE_LOWER), (T.L_EYE_UPPER, T.L_EYE_LOWER)):
            self.lid_pairs.append((hidx(up[1:-1]), hidx(lo[1:-1])))
        self.brow_inner = hidx([107, 66, 55, 65, 336, 296, 285, 295])
        self.brow_outer = hidx([70, 63, 105, 46, 53, 52, 300, 293, 334, 276, 283, 282])
        self.pivot_px = rig.origin + (np.array(HEAD_PIVOT) * rig.iod) @ rig.axes
        self.camera_px = CAMERA_DISTANCE_IOD * rig.iod
        self.centre_px = rig.origin[:2].astype(np.float64)
        self.verts64 = rig.verts.astype(np.float64)
        self.axes64 = rig.axes.astype(np.float64)
        self.head_weight64 = rig.head_weight.astype(np.float64)[:, None]
        # the portrait's own turn from facing the camera (degrees, the channel's sign), from its eye line's depth
        ex = rig.axes[0].astype(np.float64)
        self.rest_yaw = -float(np.degrees(np.arctan2(ex[2], ex[0])))
        self.turn_room = max(TURN_MIN_DEG, TURN_MAX_DEG - abs(self.rest_yaw))
        # funnel flare direction of every lip handle: up for the upper lip, down for the rest
        self.lip_flare = np.where(np.isin(self.lip_ids, self.upper_ids), -1.0, 1.0)

    def turn(self, yaw: float) -> float:
        """The turn drawn for a ``headYaw`` of ``yaw`` degrees: the same while small, eased beyond half this
        portrait's room (``turn_room``), never past it (monotonic, smooth)."""
        room = self.turn_room
        knee = 0.5 * room
        a = abs(yaw)
        if a <= knee:
            return yaw
        return float(np.copysign(knee + (room - knee) * np.tanh((a - knee) / (room - knee)), yaw))

    def handle_delta(self, v: np.ndarray) -> np.ndarray:
        """Face-frame displacement (Nh, 3) of every handle for channel values ``v`` (IOD units)."""
        rig = self.rig
        d = np.zeros((self.n_h, 3))
        H = self.h_local
        roll = clamp(v[_C["mouthRollLower"]], 0.0, 1.0)
        gap = rig_lip_gap(rig, v)
        delta = gap - rig.source_gap
        if delta >= 0:
            drop, lift = 0.85 * delta, 0.15 * delta
        else:
            drop, lift = 0.6 * delta, 0.4 * delta
        lift += 0.03 * roll
        # jaw rotation about the hinge: displacement perpendicular to (y - hy, z - hz) in the y-z plane
        theta = drop / self.jaw_norm
        jl = H[self.jaw_ids]
        ry = jl[:, 1] - self.hinge[0]
        rz = jl[:, 2] - self.hinge[1]
        d[self.jaw_ids, 1] += theta * (-rz)
        d[self.jaw_ids, 2] += theta * ry
        d[self.upper_ids, 1] -= lift * self.upper_gain
        if delta > 0:
            # opening wide, the upper lip rises most in the middle, over the teeth: an arch, not a flat top
            d[self.upper_ids, 1] -= _UPPER_ARCH * delta * self.upper_gain * self.upper_arch
        # per-pair lip gaps: the whole inner lip line (not only its centre) opens to the target shape,
        # so a smiling open source mouth closes everywhere at once instead of crossing at the corners
        g_src = self.rig.source_gap
        if g_src > 1e-3 and gap <= g_src:
            want = self.pair_gap0 * (gap / g_src)
        else:
            want = self.pair_gap0 + max(gap - g_src, 0.0) * self.pair_profile
        rnd = lip_rounding(v)
        if rnd > 0:
            # rounded lips meet beside a small opening in the middle, round rather than a slit
            half = 1.0 - (1.0 - _ROUND_WIDTH) * rnd
            oval = np.sqrt(np.clip(1.0 - (self.pair_rel / half) ** 2, 0.0, 1.0))
            want = want * (1.0 - rnd + rnd * oval) + _ROUND_FLARE * rnd * min(1.0, gap / 0.05) * oval
        now = self.pair_gap0 + d[self.lo_in, 1] - d[self.up_in, 1]
        corr = want - now
        d[self.lo_in, 1] += 0.6 * corr
        d[self.up_in, 1] -= 0.4 * corr
        d[self.lo_out, 1] += 0.45 * corr
        d[self.up_out, 1] -= 0.3 * corr
        if self.rig.mouth_open_source and gap < g_src:
            self._smooth_seam(d, 1.0 - gap / g_src)
        # lower lip roll-in (f, v): the lower lip rises under the upper teeth
        d[self.lower_lip_ids, 1] -= roll * (0.6 * max(gap, 0.0) + 0.02) * self.lower_inner_gain
        # corners follow part of the jaw
        cz = H[self.corner_ids]
        d[self.corner_ids, 1] += 0.35 * theta * (self.hinge[1] - cz[:, 2])
        if self.rig.rest_lips is not None and self.rig.mouth_open_source and gap < g_src:
            self._towards_rest(d, 1.0 - gap / g_src)
        # lip shapes, relative to the portrait's own mouth
        smile = clamp(v[_C["mouthSmile"]], -1.0, 1.0)
        stretch = clamp(v[_C["mouthStretch"]], 0.0, 1.0)
        pucker = clamp(v[_C["mouthPucker"]], 0.0, 1.0)
        funnel = clamp(v[_C["mouthFunnel"]], 0.0, 1.0)
        lp = H[self.lip_ids]
        rel_x = (lp[:, 0] - self.mouth_centre[0]) / self.mouth_half_width
        side = np.clip(np.abs(rel_x), 0, 1) ** 2
        d[self.lip_ids, 0] += np.sign(rel_x) * side * (0.09 * smile + 0.07 * stretch) * self.mouth_half_width / 0.45
        d[self.lip_ids, 1] += side * (-0.06 * smile + 0.015 * stretch)
        narrow = 0.22 * pucker + 0.14 * funnel
        d[self.lip_ids, 0] -= (lp[:, 0] - self.mouth_centre[0]) * narrow
        d[self.lip_ids, 2] -= 0.08 * (pucker + funnel) * (1 - side)
        # funnel/pucker round the opening a little: lips flare away from the centre line, in the middle
        # only (beside a rounded opening the lips meet)
        centre_w = (1 - side) ** 3
        d[self.lip_ids, 1] += self.lip_flare * 0.02 * funnel * centre_w
        # lids
        for eye, w, (up, lo) in zip(("eyeBlinkRight", "eyeBlinkLeft"), lid_raise(v), self.lid_pairs):
            b = clamp(v[_C[eye]], 0.0, 1.0)
            if b <= 0 and w <= 0:
                continue
            # the upper lid slides down over the eyeball and meets the lower lid, which rises a little;
            # a widening eye (or one looking up) raises the upper lid
            gap_vec = H[up] - H[lo]
            d[up] += (WIDE * w - b * (1.0 - LID_MEET)) * gap_vec
            d[lo] += b * LID_MEET * gap_vec
        brow_up = clamp(v[_C["browInnerUp"]], 0.0, 1.0)
        brow_dn = clamp(v[_C["browDown"]], 0.0, 1.0)
        d[self.brow_inner, 1] += -0.10 * brow_up + 0.06 * brow_dn
        d[self.brow_outer, 1] += -0.05 * brow_up + 0.03 * brow_dn
        bi = H[self.brow_inner]
        d[self.brow_inner, 0] -= np.sign(bi[:, 0]) * 0.03 * brow_dn
        return d

    def _smooth_seam(self, d: np.ndarray, k: float) -> None:
        """As an open portrait mouth closes (``k`` 0..1), its inner lip pairs meet on one smooth line.

        The detector's inner contour of an open mouth follows the teeth's edges, and its upper and lower
        points are not above one another: closed by the per-pair gaps alone, the lips would meet along
        a zigzag with slivers of the other lip between the steps. Each pair moves towards its common
        x, and the line where they meet towards a parabola through it and the mouth corners.
        """
        H = self.h_local
        up = H[self.up_in] + d[self.up_in]
        lo = H[self.lo_in] + d[self.lo_in]
        corners = H[self.in_corners] + d[self.in_corners]
        mx = 0.5 * (up[:, 0] + lo[:, 0])
        # depth too: the jaw's rotation moved the lower lip in depth, which a pitched face shows as height
        mz = 0.5 * (up[:, 2] + lo[:, 2])
        d[self.up_in, 2] += (mz - up[:, 2]) * k
        d[self.lo_in, 2] += (mz - lo[:, 2]) * k
        my = 0.6 * up[:, 1] + 0.4 * lo[:, 1]
        xs = np.concatenate([mx, corners[:, 0]])
        ys = np.concatenate([my, corners[:, 1]])
        w = np.concatenate([np.ones(len(mx)), np.full(2, 3.0)])  # the line ends at the corners
        c = np.polyfit(xs, ys, 2, w=w)
        dy = (np.polyval(c, mx) - my) * k
        d[self.up_in, 0] += (mx - up[:, 0]) * k
        d[self.lo_in, 0] += (mx - lo[:, 0]) * k
        d[self.up_in, 1] += dy
        d[self.lo_in, 1] += dy
        d[self.up_out, 1] += dy
        d[self.lo_out, 1] += dy

    def _towards_rest(self, d: np.ndarray, k: float) -> None:
        """As a filmed frame's open mouth closes (``k`` 0..1), its lips take the shot's own closed shape
        (``FaceRig.rest_lips``): the width and each lip's thickness the face has with the lips together.

        A wide open mouth is narrower than the closed one and its lips are stretched: brought together in
        that shape they would make a small pursed mouth of swollen lips."""
        rest = self.rig.rest_lips
        assert rest is not None
        H = self.h_local
        cur = [H[ids] + d[ids] for ids in self.contours]
        corner_x = 0.5 * (cur[0][0, 0] + cur[0][-1, 0])
        rest_x = 0.5 * (rest[0][0, 0] + rest[0][-1, 0])
        for n, (ids, c, r) in enumerate(zip(self.contours, cur, rest)):
            part = slice(None) if n < 2 else slice(1, -1)  # the lower contours share the upper's corners
            d[ids[part], 0] += k * (r[part, 0] - rest_x + corner_x - c[part, 0])
        # the lips meet along the closed mouth's own line (curving up into a smile's corners), and the
        # corners sit beside it as they do there (an open mouth's corners are at the opening's mid-height)
        line = 0.5 * (cur[1][1:-1, 1] + cur[3][1:-1, 1])
        rest_line = 0.5 * (rest[1][1:-1, 1] + rest[3][1:-1, 1])
        seam, rest_seam = float(line.mean()), float(rest_line.mean())
        dy = k * (rest_line - rest_seam + seam - line)
        for n in (1, 3):
            d[self.contours[n][1:-1], 1] += dy
        for n in (0, 1):
            for end in (0, -1):
                d[self.contours[n][end], 1] += k * (rest[n][end, 1] - rest_seam + seam - cur[n][end, 1])
        # each outer contour keeps its distance from the inner one as the closed lips have it
        for out_k, in_k in ((0, 1), (2, 3)):
            o, i = cur[out_k][1:-1, 1], cur[in_k][1:-1, 1]
            thick = (1.0 - k) * (i - o) + k * (rest[in_k][1:-1, 1] - rest[out_k][1:-1, 1])
            d[self.contours[out_k][1:-1], 1] += (i + dy - thick) - o

    def deform(self, v: np.ndarray) -> np.ndarray:
        """Target vertex positions (Nv, 3) in pixels for channel values ``v`` (len(CHANNELS),)."""
        rig = self.rig
        dh = self.handle_delta(v)
        dlocal = self.harmonic @ dh[: self.n_moving]
        out = self.verts64 + (dlocal * rig.iod) @ self.axes64
        yaw, pitch, roll = (float(v[_C[k]]) for k in ("headYaw", "headPitch", "headRoll"))
        yaw = self.turn(yaw)
        if yaw or pitch or roll:
            axes = self.axes64
            r_cam = axes.T @ _rotation(np.radians(yaw), np.radians(pitch), np.radians(roll)) @ axes
            rotated = (out - self.pivot_px) @ r_cam.T + self.pivot_px
            # vertices that follow only part of the head (neck, background) blend towards the rotation
            w = self.head_weight64
            turned = out + w * (rotated - out)
            # perspective: each vertex's distance to the camera changed by its change in depth, and its
            # picture scales about the camera's axis (taken through the face) by the inverse ratio
            dist = self.camera_px + out[:, 2] - rig.origin[2]
            scale = dist / (dist + turned[:, 2] - out[:, 2])
            turned[:, :2] = self.centre_px + (turned[:, :2] - self.centre_px) * scale[:, None]
            out = turned
        return out


def lid_raise(v: np.ndarray) -> tuple[float, float]:
    """How far (0..1 of ``WIDE``) channel values ``v`` raise the (right, left) upper lid: the eye's widening,
    or the lid following the eyeball up as the gaze rises, whichever is more; none while it blinks."""
    up = LID_FOLLOWS_GAZE * max(0.0, -float(v[_C["eyeLookY"]]))
    out = []
    for wide, blink in (("eyeWideRight", "eyeBlinkRight"), ("eyeWideLeft", "eyeBlinkLeft")):
        w = max(clamp(v[_C[wide]], 0.0, 1.0), min(up, 1.0))
        out.append(w * (1.0 - clamp(v[_C[blink]], 0.0, 1.0)))
    return out[0], out[1]


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation in the face frame (x right, y down, z into the head): yaw about y, pitch about x, roll about z."""
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry
