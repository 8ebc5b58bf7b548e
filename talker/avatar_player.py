"""Playing a prepared video avatar (``talker.video_avatar``): the loop decoded frame by frame, its mouth
redrawn to the mouth channels of each motion row.

While the motion is silent the loop's frames pass through untouched (a clip that talks had its mouth shut
into the loop when prepared); speech fades the redraw in over a few frames and out after a short hold.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from motion.types import CHANNEL_INDEX
from render import i420
from render.mouth_bank import MouthBank, MouthSample, lip_gap_iod
from render.redub import MOUTH_CHANNELS, FrameLips, MouthRedrawer, closed_frame
from render.rig import MAX_LIP_GAP_IOD, RigError
from talker.video import read_i420
from talker.video_avatar import FORMAT, VideoAvatarError, VideoAvatarInfo, avatars_dir, check_name


def _load_bank(path: Path) -> MouthBank:
    with np.load(path) as z:
        gaps = z["gaps"]
        return MouthBank(
            [MouthSample(float(g), z[f"image_{k}"], z[f"points_{k}"].astype(np.float64)) for k, g in enumerate(gaps)]
        )


def load_video_avatar(name: str | Path, data_dir: str | Path | None = None) -> VideoAvatar:
    """A prepared video avatar by name (in ``avatars_dir(data_dir)``) or by its folder."""
    folder = Path(name)
    if not (folder / "avatar.json").is_file():
        folder = avatars_dir(data_dir) / check_name(str(name))
    if not (folder / "avatar.json").is_file():
        raise VideoAvatarError(f"no video avatar named {str(name)!r} (make one with `talker avatar create`)")
    return VideoAvatar(folder)


class VideoAvatar:
    """A prepared video avatar: its loop, landmarks and mouth bank (loaded once, shared by renderers)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        try:
            self.info = VideoAvatarInfo.from_json(json.loads((self.folder / "avatar.json").read_text()))
            with np.load(self.folder / "track.npz") as z:
                self.points = z["points"].astype(np.float32)
                self.lips = [FrameLips(p, c, k) for p, c, k in zip(self.points, z["lip_rgb"], z["skin_rgb"])]
            self.bank = _load_bank(self.folder / "bank.npz")
        except (OSError, KeyError, ValueError) as e:
            raise VideoAvatarError(f"video avatar in {self.folder} is damaged ({e}); prepare it again") from e
        if self.info.format != FORMAT:
            raise VideoAvatarError(f"video avatar {self.info.name!r} was prepared by another version; prepare it again")
        if len(self.points) != self.info.n_frames:
            raise VideoAvatarError(f"video avatar {self.info.name!r} is damaged (landmarks); prepare it again")

    @property
    def size(self) -> tuple[int, int]:
        return self.info.size

    @property
    def source(self) -> str:
        return f"video avatar {self.info.name}"

    @property
    def fps(self) -> float:
        return self.info.fps

    def loop(self) -> Path:
        return self.folder / "loop.mp4"

    def frame_renderer(self, renderer: object = None, fps: float | None = None) -> VideoAvatarRenderer:
        """A renderer playing this avatar at ``fps`` frames a second (default its own rate; ``renderer``, a
        portrait's renderer component, is not used: the mouth is redrawn into the loop's own frames)."""
        return VideoAvatarRenderer(self, fps)


_ACTIVE_JAW = 0.03  # a motion row speaks when its jaw is open past this ...
_ACTIVE_SHAPE = 0.05  # ... or a lip shape is past this
_ATTACK = 3  # frames for the redraw to fade in when speech starts
_HOLD = 6  # silent frames before it fades out ...
_RELEASE = 6  # ... over this many frames
REWIND_FRAMES = 16  # loop frames a renderer can show again (``rewind``)


class VideoAvatarRenderer:
    """Plays a video avatar: each ``render`` call is the loop's next frame at the playing rate (``fps``;
    frames repeated or skipped when it differs from the clip's), its mouth redrawn to the row's mouth
    channels while speaking, the frame itself while silent. Not thread-safe."""

    def __init__(self, avatar: VideoAvatar, fps: float | None = None) -> None:
        if fps is not None and not 0 < fps <= 120:
            raise ValueError(f"fps must be within 1-120, got {fps}")
        self.avatar = avatar
        self._frames: Iterator[np.ndarray] = iter(())
        self._dk = -1  # the loop frame decoded last
        self._k = 0  # the loop frame shown last
        self._step = avatar.fps / fps if fps else 1.0  # loop frames per rendered frame
        self._t = 0.0  # loop frames played, as a fraction
        self._weight = 0.0
        self._quiet = _HOLD
        self._mouth_idx = [CHANNEL_INDEX[c] for c in MOUTH_CHANNELS]
        self._cur = self._next_frame()
        self._played = 0  # loop frames decoded before the current one
        rgb = cv2.cvtColor(self._cur, cv2.COLOR_YUV2RGB_I420)
        try:
            rest = closed_frame(avatar.points)
            self._redrawer: MouthRedrawer | None = MouthRedrawer(
                rgb, avatar.points[0], avatar.bank, rest=None if rest is None else avatar.points[rest]
            )
        except RigError:
            self._redrawer = None  # the loop plays without a redrawn mouth
        self._shown: deque[tuple[int, np.ndarray]] = deque(maxlen=REWIND_FRAMES)  # (loop index, frame as decoded)
        self._replay: list[tuple[int, np.ndarray]] = []

    def _next_frame(self) -> np.ndarray:
        self._dk = (self._dk + 1) % self.avatar.info.n_frames
        if self._dk == 0:
            self._frames = read_i420(self.avatar.loop(), self.avatar.info.n_frames)
        frame = next(self._frames, None)
        if frame is None:
            raise VideoAvatarError(f"video avatar {self.avatar.info.name!r}: its loop is damaged; prepare it again")
        return frame

    def _advance(self) -> np.ndarray:
        """The loop frame for the next render, as decoded (not to be modified; decoding past frames the
        playing rate skips)."""
        target = int(self._t + 1e-9)
        self._t += self._step
        while self._played < target:
            self._cur = self._next_frame()
            self._played += 1
        self._k = self._dk
        return self._cur

    @property
    def frame_index(self) -> int:
        """The loop frame the last ``render`` showed."""
        return self._k

    def rewind(self, n: int) -> None:
        """Make the next ``n`` renders (at most ``REWIND_FRAMES``) show the loop frames of the last ``n`` again:
        a live session renders a few frames ahead and renders them anew when speech starts or stops."""
        n = min(n, len(self._shown))
        if n > 0:
            back = [self._shown.pop() for _ in range(n)][::-1]
            self._replay = back + self._replay

    def render_i420(self, values: np.ndarray) -> np.ndarray:
        """The next frame as I420 (a new array), its mouth redrawn to ``values`` (a row of all channels)."""
        if self._replay:
            self._k, raw = self._replay.pop(0)
        else:
            raw = self._advance()
        self._shown.append((self._k, raw))
        yuv = raw.copy()  # redrawn in place; the decoded frame may be shown again
        mouth = np.asarray(values, np.float32)[self._mouth_idx]
        shape = float(np.abs(mouth[2:]).max())
        if mouth[0] > _ACTIVE_JAW or shape > _ACTIVE_SHAPE:
            self._quiet = 0
            self._weight = min(1.0, self._weight + 1.0 / _ATTACK)
        else:
            self._quiet += 1
            if self._quiet > _HOLD:
                self._weight = max(0.0, self._weight - 1.0 / _RELEASE)
        if self._weight <= 0.0 or self._redrawer is None:
            return yuv
        points = self.avatar.points[self._k]
        own = np.zeros(len(MOUTH_CHANNELS), np.float32)
        own[0] = max(lip_gap_iod(points), 0.0) / MAX_LIP_GAP_IOD
        mixed = self._weight * mouth + (1.0 - self._weight) * own
        try:
            i420.redraw_mouth(yuv, self._redrawer, points, mixed, self.avatar.lips[self._k])
        except RigError:
            pass  # this frame keeps its own mouth
        return yuv

    def render(self, values: np.ndarray) -> np.ndarray:
        """``render_i420`` as RGB uint8 (the ``FrameRenderer`` contract)."""
        return np.asarray(cv2.cvtColor(self.render_i420(values), cv2.COLOR_YUV2RGB_I420))
