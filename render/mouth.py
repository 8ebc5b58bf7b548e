"""The mouth interior: a layer behind the lips, shown wherever the lips part.

The opening is a hole, never stretched skin. Behind it: a dark cavity, a hint of tongue, upper teeth
fixed to the skull and lower teeth that ride with the jaw. When the portrait already shows its teeth,
those real teeth are moved rigidly (upper with the head, lower with the jaw); otherwise teeth are
synthesized in the portrait's own colours. What the portrait's own open mouth gives (its opening split
between skull and jaw, its teeth's colour, its lips extended over the teeth) is in ``render.mouth_source``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from render import topology as T
from render.deform import lip_rounding
from render.geometry import apply, similarity, soft_around
from render.mouth_source import lip_extended_source, own_teeth_rgb, source_hole_masks
from render.rig import FaceRig

__all__ = ["MouthPainter", "lip_extended_source"]

_SUB = 4  # the opening's coverage is taken down this many sub-columns per pixel
_SPAN_T = np.arange(8) / 8.0  # where the lip lines' smooth curves are sampled along each span
# ... and the cubic Hermite weights there (of the span's start, start slope, end, end slope)
_HERMITE = np.stack(
    [
        2 * _SPAN_T**3 - 3 * _SPAN_T**2 + 1,
        _SPAN_T**3 - 2 * _SPAN_T**2 + _SPAN_T,
        -2 * _SPAN_T**3 + 3 * _SPAN_T**2,
        _SPAN_T**3 - _SPAN_T**2,
    ]
)
_TONGUE = 0.6  # the tongue's top reaches this share of the lip gap above the lower lip, in the middle
_TONGUE_MAX = 0.18  # ... and no higher than this (inter-ocular distances): it rides down with the jaw
_TONGUE_SOFT = 0.05  # its back slopes away into the dark over this height (inter-ocular distances)
_CAVITY = 0.34  # the cavity's tone: this share of the lips'
_CAVITY_SAT = 1.4  # ... and this much more saturated
_RIM = 1.5  # ... its brightness, relative to that tone, just inside the lips (their wet inner surface)
_DEEP = 1.0  # ... and where no light from the opening reaches (the back, the corners)
_LIT_LOWER = 0.04  # the light off the lower lip reaches this far into the cavity (inter-ocular distances)
_LIT_UPPER = 0.012  # ... off the upper lip's edge, this far (it overhangs: the rest is in its shade)
_TONGUE_LIP = 0.2  # the tongue's tone: this share of the lips' and the rest a pinker skin's
_TONGUE_TINT = np.array([0.97, 0.70, 0.72])  # the skin's tone made pinker
_TONGUE_TOP = 0.5  # the tongue's brightness at its top edge (sloping away into the mouth), relative to its front
_TONGUE_BRIGHT = 0.85  # the tongue's brightness relative to its tone (it is in the mouth's shade)
_UPPER_H = 0.1  # drawn upper teeth: how far they show below the upper lip (inter-ocular distances)
_UPPER_ARCH = 0.75  # ... out to this share of the opening's half width
_LIP_SHADOW = 0.7  # ... their brightness in the upper lip's shadow, at their top
_LIP_SHADE_SPAN = 0.35  # ... coming out of it over this share of their height
_LOWER_W = 0.72  # drawn lower incisors: this share of the upper central incisors' width
_ROUND_HIDE = 0.7  # rounded lips (pushed forward) hide this share of the teeth's height
_ROUND_DIM = 0.15  # ... and shade what shows this much
_LOWER_H = 0.06  # drawn lower teeth: how far their edges show above the lower lip (inter-ocular distances)
_LOWER_ARCH = 0.7  # ... out to this share of the opening's half width
_UPPER_SHARE = 0.55  # ... and at most this share of the opening's height, so a small opening shows
_LOWER_SHARE = 0.25  # dark between the rows (lower teeth: this share), as filmed ones do, not a wall of teeth


class MouthPainter:
    def __init__(self, rig: FaceRig) -> None:
        self.rig = rig
        self.src = rig.image
        self.iod = rig.iod
        v0 = rig.verts[:, :2].astype(np.float64)
        self.v0 = v0
        skin = rig.skin_rgb.astype(np.float64)
        lip = rig.lip_rgb.astype(np.float64)
        gray = float(np.std(skin)) < 4.0 and float(np.std(lip)) < 4.0
        bright = float(np.clip(skin.mean() / 170.0, 0.55, 1.0))
        # ivory, tinted by the picture's own colour cast (a varnished painting gets yellowed teeth)
        cast = skin / max(float(skin.mean()), 1.0)
        teeth = np.array([232.0, 226.0, 212.0]) * (0.8 + 0.2 * cast) * bright
        if gray:
            teeth = np.full(3, teeth.mean())
        teeth = np.clip(teeth, 0, 250)
        # the inside of the mouth in the lips' own hue (mucosa), darker: a warm red-brown
        # (more saturated than the lips: wet tissue in shadow)
        mucosa = lip.mean() + _CAVITY_SAT * (lip - lip.mean())
        self.cavity_rgb = np.clip(mucosa, 0, 255) * _CAVITY + np.array([6.0, 0.0, 0.0]) * (0 if gray else 1)
        # the tongue: pink mucosa, lighter and less saturated than lips (which may be painted: a filmed
        # tongue under red lipstick is the skin's tone, pinker), so mostly the skin's with the blood
        # showing through and a little of the lips'
        tongue = _TONGUE_LIP * lip + (1 - _TONGUE_LIP) * skin * _TONGUE_TINT
        self.tongue_rgb = _TONGUE_BRIGHT * (tongue if not gray else np.full(3, tongue.mean()))
        self._eye_span0 = max(1.0, float(np.linalg.norm(v0[263] - v0[33])))
        self._gap0 = float(v0[14, 1] - v0[13, 1])  # the portrait's own lip gap
        self._incisor0 = 0.13 * float(np.linalg.norm(v0[308] - v0[78]))  # central incisor width at rest
        self.open_source = rig.mouth_open_source
        if self.open_source:
            self._upper_mask, self._lower_mask = source_hole_masks(rig.image, v0, rig.iod)
            own = own_teeth_rgb(rig.image, self._upper_mask)
            teeth = teeth if own is None else own  # drawn teeth match the portrait's own
        self.teeth_rgb = teeth
        # the picture's own softness around the mouth: the drawn opening's edge and interior match it
        self.soft = soft_around(rig.image, v0[T.LIP_OUTER_UPPER + T.LIP_OUTER_LOWER], 0.4 * self.iod)
        # lower teeth stand in the mouth's warm shadow
        self.lower_teeth_rgb = 0.95 * (0.9 * teeth + 0.1 * self.tongue_rgb / _TONGUE_BRIGHT)

    def paint(self, out: np.ndarray, vt: np.ndarray, values: np.ndarray) -> None:
        """Paint the interior into ``out`` (in place) for target vertices ``vt`` (Nv, 2)."""
        up = vt[T.LIP_INNER_UPPER]
        lo = vt[T.LIP_INNER_LOWER]
        h, w = out.shape[:2]
        # a soft picture's opening gets a soft edge: room around it for the feathering
        m = int(np.ceil(2.5 * self.soft))
        x0 = max(0, int(np.floor(min(up[:, 0].min(), lo[:, 0].min()))) - 1 - m)
        x1 = min(w, int(np.ceil(max(up[:, 0].max(), lo[:, 0].max()))) + 2 + m)
        if x1 <= x0:
            return
        # the lip lines as smooth curves through their points (a polyline through 11 points draws an
        # open mouth as a polygon with flat sides), sampled at _SUB columns per pixel
        sub = np.arange(x0 - 0.5 + 0.5 / _SUB, x1 - 0.5, 1.0 / _SUB, dtype=np.float64)
        yu_s, yl_s = _smooth_curves(np.stack([up, lo]), sub)
        # the opening ends at the corners: on a turned head, lip points beyond the far corner (the lips
        # curve back around it) would otherwise part into a pocket outside the mouth
        xa, xb = sorted((float(up[0, 0]), float(up[-1, 0])))
        yl_s = np.where((sub < xa) | (sub > xb), yu_s, yl_s)
        open_px = float((yl_s - yu_s).max())
        if open_px < 0.05:
            return  # lips together: nothing of the interior shows
        yu = yu_s.reshape(-1, _SUB).mean(axis=1)
        yl = yl_s.reshape(-1, _SUB).mean(axis=1)
        y0 = max(0, int(np.floor(yu_s.min())) - 1 - m)
        y1 = min(h, int(np.ceil(yl_s.max())) + 2 + m)
        if y1 <= y0:
            return
        # coverage of each pixel by the opening [yu, yl]: exact down each of _SUB sub-columns, averaged
        # across them, so steep sides near the corners are anti-aliased too (no staircase, no seams)
        rows = np.arange(y0, y1, dtype=np.float32)[:, None]
        cover = np.clip(np.minimum(rows + 0.5, yl_s[None, :]) - np.maximum(rows - 0.5, yu_s[None, :]), 0.0, 1.0)
        cover = cover.reshape(len(rows), -1, _SUB).mean(axis=2)
        # between contour points the interpolated lip lines can part by a fraction of a pixel even when
        # every pair of points meets: an opening under ~1.5 px is faded rather than drawn as a sliver
        alpha = cover * min(1.0, open_px / 1.5)
        if m:
            alpha = cv2.GaussianBlur(alpha, (0, 0), self.soft)
        alpha = alpha[..., None]
        xs, ys = _pixel_axes(x0, y0, x1, y1)
        xc = float(0.5 * (vt[13, 0] + vt[14, 0]))
        op = _Opening(xs, ys, yu[None, :], yl[None, :], xc, _half_width(vt), lip_rounding(values))
        if self.open_source:
            # the portrait's own teeth, moved; the lower row in front of what the jaw brings down with them
            layer = self._synth(vt, op, upper=False, lower=False)
            self._overlay_source_teeth(layer, vt, op, x0, y0, x1, y1)
            self._synth_teeth(layer, vt, op, upper=False, lower=True)
        else:
            layer = self._synth(vt, op, upper=True, lower=True)
        sigma = max(0.5, 0.007 * self.iod, self.soft)
        layer = cv2.GaussianBlur(layer, (0, 0), sigma)
        roi = out[y0:y1, x0:x1].astype(np.float32)
        out[y0:y1, x0:x1] = np.clip(roi * (1 - alpha) + layer * alpha, 0, 255).astype(np.uint8)

    # -- layers ----------------------------------------------------------------------------------
    def _synth(self, vt: np.ndarray, op: _Opening, upper: bool, lower: bool) -> np.ndarray:
        iod = self.iod
        xs, ys, yu, yl, xc, half_w = op.xs, op.ys, op.yu, op.yl, op.xc, op.half_w
        lo = vt[T.LIP_INNER_LOWER]
        gap_c = float(vt[14, 1] - vt[13, 1])
        rel = np.clip(np.abs(xs - xc) / half_w, 0, 1.5)
        # where each pixel lies between the lips: 0 under the upper lip, 1 on the lower
        v = np.clip((ys - yu) / np.maximum(yl - yu, 1.0), 0.0, 1.0)
        # the cavity is lit from the front through the opening: the lips' wet inner surface just inside
        # the opening in their own tone, then darker over a few pixels into the back of the mouth (the
        # middle, a little above the centre line) and into the corners, never black; the upper lip
        # overhangs and shades the top. A flat dark fill up to the lips reads as a hole cut in the face
        du = np.maximum(ys - yu, 0.0)
        dl = np.maximum(yl - ys, 0.0)
        d_corner = np.maximum(1.0 - rel, 0.0) * half_w
        lit = np.maximum(
            np.exp(-dl / max(1.0, _LIT_LOWER * iod)),
            0.7 * np.exp(-du / max(0.7, _LIT_UPPER * iod)),
        ) * (0.6 + 0.4 * np.clip(d_corner / max(1.0, 0.08 * iod), 0.0, 1.0))
        back = np.exp(-((rel / 0.8) ** 2 + ((v - 0.42) / 0.4) ** 2))
        deep = (1.0 - 0.4 * back) * (0.85 + 0.15 * np.clip(v * 2.5, 0.0, 1.0))
        depth = _DEEP * deep + (_RIM - _DEEP * deep) * lit
        layer = np.empty((ys.shape[0], xs.shape[1], 3), np.float32)
        layer[:] = self.cavity_rgb
        layer *= depth[..., None]
        # tongue: fills the floor of the mouth behind the lower teeth. In a filmed open mouth it is the
        # largest thing that shows: a pink surface up to 0.6 of the opening (less leaves more dark than
        # filmed mouths show: tools.mouthcheck), its front lit and its back (the top edge, sloping away)
        # in shadow, with the cavity dark only above and beside it. The back fades into the dark over
        # _TONGUE_SOFT, and a wide-open jaw takes the tongue down with it (_TONGUE_MAX): a hard, high top
        # edge reads as the lower lip's edge
        if gap_c > 0.04 * iod:
            grow = float(np.clip((gap_c - 0.04 * iod) / (0.12 * iod), 0, 1))
            lo_c = float(np.interp(xc, lo[:, 0], lo[:, 1]))
            # its top edge: an arch whose height is a share of the opening, lower towards the sides
            height = min(_TONGUE * gap_c, _TONGUE_MAX * iod) * (1.0 - 0.6 * rel**2)
            top = lo_c - height
            soft = max(1.0, _TONGUE_SOFT * iod)
            t_alpha = np.clip((ys - top) / soft, 0, 1) * np.clip((1.05 - rel) / 0.3, 0, 1) * grow
            below_top = np.clip((ys - top) / np.maximum(height, 1.0), 0.0, 1.0)
            shade = _TONGUE_TOP + (1.0 - _TONGUE_TOP) * below_top**0.6
            # the midline groove
            shade = shade * (1.0 - 0.1 * np.exp(-(((xs - xc) / max(1.0, 0.08 * half_w)) ** 2)))
            tongue = self.tongue_rgb * shade[..., None]
            layer = layer * (1 - t_alpha[..., None]) + tongue * t_alpha[..., None]
        self._synth_teeth(layer, vt, op, upper, lower)
        return layer

    def _synth_teeth(self, layer: np.ndarray, vt: np.ndarray, op: _Opening, upper: bool, lower: bool) -> None:
        """Drawn teeth into ``layer``. They are fixed to the skull: their size follows the head's scale,
        not the lips' width, and they stay centred under the upper lip's middle. A portrait that shows
        its own upper teeth keeps them (``_overlay_source_teeth``); its lower teeth are mostly hidden
        behind them, so the lower row that an opening jaw uncovers is drawn, in its own teeth's colour."""
        if not (upper or lower):
            return
        scale = float(np.linalg.norm(vt[263] - vt[33])) / self._eye_span0
        share = 1.0
        if not upper:
            # the portrait's lower teeth are hidden until the jaw opens past where the portrait has it
            gap = float(vt[14, 1] - vt[13, 1]) / scale
            share = float(np.clip((gap - self._gap0) / (0.08 * self.iod), 0.0, 1.0))
        inc_w = self._incisor0 * scale
        args = (op.xs, op.ys, op.xc, op.half_w, op.yu, op.yl, float(vt[13, 0]), inc_w)
        self._teeth(layer, *args, upper=upper, lower=lower, lower_share=share, rounding=op.rounding)

    def _teeth(
        self,
        layer: np.ndarray,
        xs: np.ndarray,
        ys: np.ndarray,
        xc: float,
        half_w: float,
        yu: np.ndarray,
        yl: np.ndarray,
        x_mid: float,
        inc_w: float,
        upper: bool = True,
        lower: bool = True,
        lower_share: float = 1.0,
        rounding: float = 0.0,
    ) -> None:
        """Upper and lower teeth into ``layer``; ``x_mid``: the dental midline, ``inc_w``: central incisor
        width (pixels); ``xc``, ``half_w``: the opening's middle and half width (what of them shows);
        ``rounding``: how far rounded lips, pushed forward, hide the teeth and shade them."""
        iod = self.iod
        rel = (xs - xc) / half_w
        arel = np.abs(rel)
        inc_w = max(inc_w, 1.0)
        hide = 1.0 - _ROUND_HIDE * rounding  # rounded lips cover the teeth ...
        dim = 1.0 - _ROUND_DIM * rounding  # ... and shade what still shows
        if upper:
            # position along the arch in tooth widths: the central incisors span [-1, 0] and [0, 1]; teeth
            # look narrower towards the corners as the arch turns away
            f, edge = _tooth_phase(xs, x_mid, inc_w, arel)
            # gaps between teeth: thin, darkest up under the lip (where the gum's triangles are) and at the
            # edge (the notch between two rounded tooth corners), fading towards the corners
            gap = np.exp(-((edge / max(0.35, 0.008 * iod)) ** 2)) * (0.14 - 0.08 * np.clip(arel, 0, 1))
            # each tooth is convex: a little brighter across its middle
            convex = 0.92 + 0.08 * np.sin(np.pi * f)
            # upper teeth: a band hanging under the upper lip, each tooth's edge rounded at its corners,
            # receding into shadow towards the corners of the mouth
            th = _UPPER_H * hide * iod * (1.0 - 0.12 * (2.0 * f - 1.0) ** 2) * (1.0 - 0.25 * np.clip(arel, 0, 1))
            # their edges make one smooth arc, fixed to the skull: the lip line they hang from has bumps (the
            # upper lip's tubercle, a painted lip's uneven edge) that the teeth's edges would copy as a step
            yu_arc = _smooth_arc(xs[0], yu[0], yl[0] - yu[0])[None, :]
            edge_y = yu_arc + np.minimum(th, _UPPER_SHARE * (yl - yu_arc))
            th = np.maximum(edge_y - yu, 0.5)
            v = (ys - yu) / th
            band = np.clip(v * 5, 0, 1) * np.clip((1.0 - v) * th / 0.8, 0, 1)
            arch = np.clip((_UPPER_ARCH - arel) / 0.3, 0, 1)
            # the upper lip's shadow: the teeth come out of it over their top part, no hard line under the
            # lip; the incisal edge a little translucent
            lip_sh = np.clip(v / _LIP_SHADE_SPAN, 0.0, 1.0)
            lip_sh = _LIP_SHADOW + (1.0 - _LIP_SHADOW) * lip_sh * lip_sh * (3 - 2 * lip_sh)
            shade = (1.0 - 0.55 * arel**1.5) * lip_sh * (1.0 - 0.12 * np.clip((v - 0.75) * 4, 0, 1))
            shade = shade * convex * (1.0 - gap * (1.0 + np.clip(1.0 - 3.0 * v, 0, 1))) * dim
            a_up = (band * arch)[..., None]
            layer[:] = layer * (1 - a_up) + (self.teeth_rgb * shade[..., None]) * a_up
        if not lower:
            return
        # lower teeth: narrower than the upper, only their edges show above the lower lip, in the shade of
        # the upper teeth and lip, each edge a little rounded with a dark notch between two teeth; in a
        # narrow opening, where they would show as a dotted line a pixel or two high, they stay hidden
        f2, edge2 = _tooth_phase(xs, x_mid, _LOWER_W * inc_w, arel)
        tl = np.maximum(np.minimum(_LOWER_H * hide * iod, _LOWER_SHARE * (yl - yu)), 0.5)
        tl_t = tl * (1.0 - 0.08 * (2.0 * f2 - 1.0) ** 2) * (1.0 - 0.3 * np.clip(arel, 0, 1))
        v2 = (yl - ys) / np.maximum(tl_t, 0.5)  # 0 at the lower lip, 1 at the teeth's edge
        # (from the lip's edge up: the lower lip's wet inner side lies against them, no dark line between)
        band2 = np.clip((1.0 - v2) * tl_t / 0.8, 0, 1)
        arch2 = np.clip((_LOWER_ARCH - arel) / 0.3, 0, 1)
        notch = np.exp(-((edge2 / max(0.35, 0.007 * iod)) ** 2)) * (0.12 - 0.06 * np.clip(arel, 0, 1))
        convex2 = 0.9 + 0.1 * np.sin(np.pi * f2)
        # lit at the edge, in the lower lip's shade at the base, darker towards the back of the mouth
        shade2 = (0.9 + 0.1 * np.clip(v2, 0, 1)) * (1.0 - 0.4 * arel**1.3) * convex2
        shade2 = shade2 * (1.0 - notch * (0.5 + 0.8 * np.clip(v2, 0, 1))) * dim
        a_lo = (band2 * arch2 * lower_share * np.clip((tl - 1.0) / 2.0, 0.0, 1.0))[..., None]
        layer[:] = layer * (1 - a_lo) + (self.lower_teeth_rgb * shade2[..., None]) * a_lo

    def _overlay_source_teeth(
        self, layer: np.ndarray, vt: np.ndarray, op: _Opening, x0: int, y0: int, x1: int, y1: int
    ) -> None:
        """Move the portrait's own teeth: upper rigidly with the head, lower with the jaw. Rounded lips,
        pushed forward, cover their lower part and shade what shows, as they do drawn teeth."""
        xs, ys = _pixel_axes(x0, y0, x1, y1)
        dim = 1.0 - _ROUND_DIM * op.rounding
        hide = _ROUND_HIDE * op.rounding
        shown = (
            np.clip(op.yu + (1.0 - hide) * (op.yl - op.yu) - ys + 0.5, 0.0, 1.0)[..., None]
            if hide > 0
            else np.ones((1, 1, 1), np.float32)
        )
        up_aff = similarity(vt[[33, 263]], self.v0[[33, 263]])
        # the lower teeth move with the lower lip's centre, on top of the head motion
        head_fwd = similarity(self.v0[[33, 263]], vt[[33, 263]])
        moved14 = apply(head_fwd, self.v0[14:15])[0]
        jaw_shift = vt[14] - moved14
        lo_aff = up_aff.copy()
        lo_aff[:, 2] -= up_aff[:, :2] @ jaw_shift
        for aff, mask, keep in ((up_aff, self._upper_mask, shown), (lo_aff, self._lower_mask, 1.0 - hide)):
            mx = (aff[0, 0] * xs + aff[0, 1] * ys + aff[0, 2]).astype(np.float32)
            my = (aff[1, 0] * xs + aff[1, 1] * ys + aff[1, 2]).astype(np.float32)
            px = cv2.remap(self.src, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
            px *= dim
            m = cv2.remap(mask, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0,))[..., None]
            m = m * keep
            # the portrait's own shadows in its opening (the dark beside the teeth at a smile's corners)
            # no darker than the drawn cavity there: moved into a wider opening they would be black crescents
            layer[:] = layer * (1 - m) + np.maximum(px, layer) * m


@dataclass(frozen=True)
class _Opening:
    """The mouth opening of one frame, on the pixel grid of the interior layer's box."""

    xs: np.ndarray  # (1, W) pixel x
    ys: np.ndarray  # (H, 1) pixel y
    yu: np.ndarray  # (1, W) upper inner lip's y per column
    yl: np.ndarray  # (1, W) lower inner lip's y per column
    xc: float  # the opening's middle
    half_w: float  # half its width, corner to corner
    rounding: float  # how rounded the lips are (0..1: ``render.deform.lip_rounding``)


def _tooth_phase(xs: np.ndarray, x_mid: float, width: float, arel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each column lies across its tooth (0..1) and how far (pixels) from the nearest boundary
    between two teeth, for teeth ``width`` pixels wide at the midline ``x_mid``, narrower towards the
    corners as the arch turns away (``arel``: the column's share of the opening's half width)."""
    narrow = 1.0 + 0.6 * arel
    u = (xs - x_mid) / width * narrow
    f = u - np.floor(u)
    return f, np.minimum(f, 1.0 - f) * width / narrow


def _half_width(vt: np.ndarray) -> float:
    """Half the inner mouth's width (corner to corner)."""
    return max(1.0, 0.5 * float(np.linalg.norm(vt[308] - vt[78])))


def _smooth_arc(x: np.ndarray, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """A parabola through the points (x, y), fitted by least squares weighted by how far ``weight`` (the
    opening's height there) exceeds half a pixel; ``y`` itself where too few columns are open to fit one."""
    w = np.maximum(weight.astype(np.float64) - 0.5, 0.0)
    if np.count_nonzero(w) < 6:
        return y
    t = (x - 0.5 * (x[0] + x[-1])) / max(float(x[-1] - x[0]), 1.0)
    basis = np.stack([np.ones_like(t), t, t * t])  # (3, n)
    bw = basis * w
    try:
        c = np.linalg.solve(bw @ basis.T, bw @ y)
    except np.linalg.LinAlgError:
        return y
    return np.asarray(c @ basis, dtype=y.dtype)


def _pixel_axes(x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel x (1, W) and y (H, 1) of the box, float32: they broadcast to the box's grid, so what
    depends on one of them only is computed once per column or row."""
    return np.arange(x0, x1, dtype=np.float32)[None, :], np.arange(y0, y1, dtype=np.float32)[:, None]


def _smooth_curves(lines: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y at ``x`` (L, len(x)) of smooth curves through lip lines' points ``lines`` (L, n, 2): monotone
    cubics (Fritsch-Carlson) in x. They never overshoot their points (no notch past a corner, no bump
    over a flat top), and outside them they hold the end points' y, as ``mouth_source.curve`` does."""
    xk, yk = lines[..., 0].astype(np.float64), lines[..., 1].astype(np.float64)
    if not (np.diff(xk, axis=1) >= 0).all():  # (they usually run left to right already)
        order = np.argsort(xk, axis=1, kind="stable")
        xk, yk = np.take_along_axis(xk, order, axis=1), np.take_along_axis(yk, order, axis=1)
    xk = xk + 1e-3 * np.arange(xk.shape[1])  # points stacked on one column: a steep but finite span
    h = np.maximum(np.diff(xk, axis=1), 1e-3)
    d = np.diff(yk, axis=1) / h
    # slopes: the weighted harmonic mean of the secants on either side, flat where they differ in sign
    w1, w2 = 2 * h[:, 1:] + h[:, :-1], h[:, 1:] + 2 * h[:, :-1]
    same = d[:, :-1] * d[:, 1:] > 0
    inner = (w1 + w2) * d[:, :-1] * d[:, 1:] / np.where(same, w1 * d[:, 1:] + w2 * d[:, :-1], 1.0) * same
    m = np.concatenate([d[:, :1], inner, d[:, -1:]], axis=1)
    # sampled densely along each span (Hermite weights at fixed steps), then read at x
    hk = h[..., None]
    b0, b1, b2, b3 = _HERMITE
    y = b0 * yk[:, :-1, None] + b1 * hk * m[:, :-1, None] + b2 * yk[:, 1:, None] + b3 * hk * m[:, 1:, None]
    y = y.reshape(len(yk), -1)
    xs = (xk[:, :-1, None] + _SPAN_T * hk).reshape(len(xk), -1)
    return np.stack(
        [np.interp(x, np.append(a, b[-1]), np.append(c, e[-1])) for a, b, c, e in zip(xs, xk, y, yk)]
    ).astype(np.float32)
