"""The warp's vectorized triangle raster: same frames as the former per-triangle ``cv2.fillConvexPoly``
raster, no holes between triangles, and the later triangle wins where triangles overlap."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import media

import render.warp as warp
from render.warp import WarpRenderer, _affines, _margins, _remap_moved, _source_edges, _triangle_ranks
from talker.pipeline import Pipeline
from talker.sheet import pose_values


def _triangle_ranks_reference(poly: np.ndarray, cw: int, ch: int, eps: np.ndarray | None = None) -> np.ndarray:
    """``_triangle_ranks`` as one ``cv2.fillConvexPoly`` per triangle (the renderer's former raster; it
    has no per-triangle margin, so ``eps`` is ignored)."""
    out = np.zeros((ch, cw), np.int32)
    shift = 4
    pts = np.round(np.asarray(poly) * (1 << shift)).astype(np.int32)
    for k in range(len(pts)):
        cv2.fillConvexPoly(out, pts[k], (k + 1,), lineType=cv2.LINE_8, shift=shift)
    return out


FACES = [
    "astronaut_eileen_collins.png",
    "obama.jpg",
    "obama_biden_two_people.jpg",
    "liveportrait_s12_einstein.jpg",
    "liveportrait_s9_mona_lisa.jpg",
]
POSES: dict[str, dict[str, float]] = {
    "jaw open": {"jawOpen": 0.6},
    "blink": {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0},
    "yaw left": {"headYaw": -15.0},
    "yaw right": {"headYaw": 15.0},
    "pitch": {"headPitch": 10.0},
    "roll": {"headRoll": 10.0},
    "smile": {"mouthSmile": 0.8},
    "talking turn": {"jawOpen": 0.4, "mouthSmile": 0.4, "headYaw": -12.0, "headPitch": -8.0, "eyeBlinkLeft": 0.5},
}


def _grid_mesh(rng: np.random.Generator, n: int = 12, cell: float = 3.7) -> np.ndarray:
    """A jittered n x n grid of quads split into triangles (2 n^2, 3, 2), in grid units."""
    g = np.stack(np.meshgrid(np.arange(n + 1), np.arange(n + 1)), axis=-1).astype(np.float64) * cell + 1.3
    g[1:-1, 1:-1] += rng.uniform(-0.3, 0.3, (n - 1, n - 1, 2)) * cell
    a, b, c, d = g[:-1, :-1], g[:-1, 1:], g[1:, :-1], g[1:, 1:]
    return np.concatenate([np.stack([a, b, d], axis=2), np.stack([a, d, c], axis=2)]).reshape(-1, 3, 2)


def test_a_mesh_leaves_no_holes() -> None:
    rng = np.random.default_rng(0)
    tris = _grid_mesh(rng)
    tris[::3] = tris[::3, ::-1]  # orientation must not matter
    ranks = _triangle_ranks(tris, 50, 50)
    # every cell centre inside the mesh (the grid's outer square) gets a triangle, none outside it
    inside = np.zeros((50, 50), bool)
    inside[2:46, 2:46] = True  # mesh spans 1.3 .. 45.7 in both axes
    assert (ranks[inside] > 0).all()
    assert (ranks[:1] == 0).all() and (ranks[:, 47:] == 0).all()
    # and agrees with the former raster almost everywhere (they differ only on shared edges)
    assert (ranks == _triangle_ranks_reference(tris, 50, 50)).mean() > 0.9


def test_later_triangles_win_and_the_grid_clips() -> None:
    big = np.array([[-5.0, -5.0], [30.0, -5.0], [-5.0, 30.0]])
    small = np.array([[2.0, 2.0], [6.0, 2.0], [2.0, 6.0]])
    ranks = _triangle_ranks(np.stack([big, small]), 10, 8)
    assert ranks.shape == (8, 10)
    assert ranks[3, 3] == 2 and ranks[0, 0] == 1 and ranks[7, 9] == 1
    ranks = _triangle_ranks(np.stack([small, big]), 10, 8)
    assert (ranks == 2).all()  # the big triangle, drawn last, covers the small one
    assert (_triangle_ranks(np.zeros((0, 3, 2)), 4, 3) == 0).all()
    off = np.array([[20.0, 20.0], [25.0, 20.0], [20.0, 25.0]])  # wholly outside the grid
    assert (_triangle_ranks(off[None], 10, 8) == 0).all()


def test_a_sliver_samples_nothing_far_from_its_source() -> None:
    # a cheek triangle on a turned face's outline, squeezed to a sliver as the jaw opens: outside its
    # edges its affine extrapolates, and the cells of its crack-closing margin sampled the portrait
    # 15 pixels away (the background showed as a dark dot on the cheek)
    target = np.array([[10.0, 5.0], [10.4, 30.0], [10.8, 5.0]])  # 0.8 px wide
    source = np.array([[10.0, 5.0], [16.0, 30.0], [22.0, 5.0]])  # 12 px wide: a 15x stretch
    aff, ok = _affines(target, np.array([[0, 1, 2]]), _source_edges(source[None]))
    assert ok.all()
    ranks = _triangle_ranks(target[None], 40, 40, _margins(aff))
    ys, xs = np.nonzero(ranks)
    assert len(xs) > 0
    src = np.stack([xs, ys, np.ones(len(xs))], axis=1) @ aff[0].T
    # distance of each sampled source point outside the source triangle (0 inside)
    inside = cv2.pointPolygonTest
    far = [max(0.0, -inside(source.astype(np.float32), (float(x), float(y)), True)) for x, y in src]
    assert max(far) < 2.0, max(far)
    # a triangle that keeps its shape keeps the full margin that closes the cracks between triangles
    assert _margins(np.array([[[1.2, 0.1, 3.0], [0.0, 0.9, 1.0]]]))[0] == pytest.approx(warp._EDGE_EPS)


@pytest.mark.parametrize("s", [1, 2, 3, 4])
def test_remap_skips_only_pixels_that_map_to_themselves(s: int) -> None:
    rng = np.random.default_rng(s)
    src = rng.integers(0, 256, (200, 230, 3), dtype=np.uint8)
    x0, y0 = 6 * s, 3 * s
    cw, ch = -(-(230 - x0) // s), -(-(200 - y0) // s)  # the map runs past the right and bottom edges
    rank = np.zeros((ch, cw), np.int32)
    rank[ch // 3 : ch // 2, cw // 4 : cw // 2] = 1  # a moved blob, and a moved cell in a corner
    rank[0, cw - 1] = 2
    xs = (x0 + (np.arange(cw, dtype=np.float32) + 0.5) * s - 0.5)[None, :].repeat(ch, 0)
    ys = (y0 + (np.arange(ch, dtype=np.float32) + 0.5) * s - 0.5)[:, None].repeat(cw, 1)
    shift = rng.uniform(-3, 3, (2, ch, cw)).astype(np.float32) * (rank != 0)
    mx, my = xs + shift[0], ys + shift[1]
    if s > 1:
        mx = cv2.resize(mx, (cw * s, ch * s), interpolation=cv2.INTER_LINEAR)
        my = cv2.resize(my, (cw * s, ch * s), interpolation=cv2.INTER_LINEAR)
    mx, my = mx[: 200 - y0, : 230 - x0], my[: 200 - y0, : 230 - x0]
    want = src.copy()
    want[y0:, x0:] = cv2.remap(src, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    got = src.copy()
    got[y0:, x0:] = 0  # every pixel of the map's extent is written: remapped or copied
    _remap_moved(got, src, mx, my, rank, x0, y0, s)
    assert np.array_equal(got, want)
    assert not np.array_equal(got, src)


@pytest.mark.parametrize("name", FACES)
def test_frames_match_the_former_raster(name: str, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    avatar = pipeline.prepare_avatar(media("faces", name), (512, 512))
    r = WarpRenderer(avatar.rig)
    values = {"neutral": r.neutral_values()} | {k: pose_values(v) for k, v in POSES.items()}
    # the former raster had one margin for every triangle: compare without the stretched ones' smaller
    # margins (test_a_sliver_samples_nothing_far_from_its_source)
    monkeypatch.setattr(warp, "_margins", lambda aff: np.full(len(aff), warp._EDGE_EPS))
    for pose, v in values.items():
        monkeypatch.setattr(warp, "_triangle_ranks", _triangle_ranks_reference)
        old = r.render(v).astype(np.int16)
        monkeypatch.setattr(warp, "_triangle_ranks", _triangle_ranks)
        new = r.render(v).astype(np.int16)
        diff = np.abs(old - new)
        # the rankings differ only on scattered seam pixels, more of them where the head fills the frame
        assert diff.mean() < 0.5, (name, pose, diff.mean())
        assert np.percentile(diff, 99.9) <= 12, (name, pose, np.percentile(diff, 99.9))
