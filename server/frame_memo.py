"""Where a live frame's image comes from (``FrameSource``), and the listening frames kept for their next
showing: a portrait's idle motion repeats every ``motion.idle.IDLE_LOOP_S``, so once a session has listened
through a loop it shows those frames again from ``FrameMemo`` instead of rendering them."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from talker.stages import Drawn, StillFrames, reuse_px

KEY_STEP = 1e-3
"""Channel values are matched to this step (a thousandth of a degree or of a shape's range: nothing
visible), so values computed one loop apart in other float rounding still find their frame."""


@dataclass(frozen=True)
class _Rows:
    """Rows ``lo:hi`` of one plane's part of an I420 image and, for the luma, columns ``x0:x1``."""

    lo: int
    hi: int
    x0: int
    x1: int
    pixels: np.ndarray


@dataclass
class _Image:
    parts: tuple[_Rows, ...]  # where the image differs from the memo's base image
    users: int = 0  # entries that show it
    nbytes: int = 0


@dataclass(frozen=True)
class Recalled:
    """A frame found in the memo."""

    image: np.ndarray  # I420, the memo's own buffer: read it before the next ``recall``
    shown: np.ndarray  # the channel values the image shows (an eyes-only frame's are not those asked)
    same_as_last: bool  # the image is the one recalled or stored just before (nothing moved: a repeat)


def key_of(values: np.ndarray) -> bytes:
    return np.round(np.asarray(values, np.float64) / KEY_STEP).astype(np.int64).tobytes()


class FrameMemo:
    """I420 frames of one session's portrait by the channel values asked for them, within ``budget_bytes``.
    Each image is stored as the rows (and luma columns) where it differs from the first image stored.

    Frames are asked for in a loop, so a full memo keeps what it holds (dropping the least recently used
    would lose each frame just before it is asked for again) and drops only frames not shown for a whole
    loop (``loop_frames``): those of the moments after speech, which do not come again. Not thread-safe."""

    def __init__(self, budget_bytes: int, loop_frames: int) -> None:
        self.budget_bytes = int(budget_bytes)
        self.loop_frames = int(loop_frames)
        # key -> (image id, shown values, frame index last shown), least recently shown first
        self._entries: OrderedDict[bytes, tuple[int, np.ndarray, int]] = OrderedDict()
        self._images: dict[int, _Image] = {}
        self._base: np.ndarray | None = None
        self._buf: np.ndarray | None = None  # the image recalled last (``_buf_id``)
        self._buf_id = -1
        self._last_id = -1  # the image recalled or stored last
        self._next_id = 0
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def recall(self, values: np.ndarray, index: int) -> Recalled | None:
        """The frame stored for ``values`` (shown as the session's frame ``index``), or None."""
        key = key_of(values)
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        image_id, shown, _ = entry
        self._entries[key] = (image_id, shown, index)
        self._entries.move_to_end(key)
        same = image_id == self._last_id
        if self._buf is None or self._buf_id != image_id:
            self._buf, self._buf_id = self._restore(self._images[image_id]), image_id
        self._last_id = image_id
        return Recalled(self._buf, shown, same)

    def store(self, values: np.ndarray, image: np.ndarray, shown: np.ndarray, same_as_last: bool, index: int) -> None:
        """Keep ``image`` (I420, copied) as the frame of ``values`` (the session's frame ``index``),
        showing ``shown``; ``same_as_last``: it is the image stored or recalled just before (kept once).
        Not kept when the memo is full of frames shown within the last loop."""
        key = key_of(values)
        if key in self._entries:
            return
        while len(self._entries) >= 2 * self.loop_frames and self._drop_stale(index):
            pass
        if len(self._entries) >= 2 * self.loop_frames:
            self._last_id = -1
            return
        if same_as_last and self._last_id in self._images:
            image_id = self._last_id
        else:
            if self._base is None:
                self._base = image.copy()
            stored = self._diff(image)
            while self.nbytes + stored.nbytes > self.budget_bytes and self._drop_stale(index):
                pass
            if self.nbytes + stored.nbytes > self.budget_bytes:
                self._last_id = -1
                return
            image_id = self._next_id
            self._next_id += 1
            self._images[image_id] = stored
            self.nbytes += stored.nbytes
        self._images[image_id].users += 1
        self._entries[key] = (image_id, np.array(shown, np.float64), index)
        self._last_id = image_id

    def _drop_stale(self, index: int) -> bool:
        """Drop the least recently shown frame if it was not shown within a loop of ``index``."""
        if not self._entries:
            return False
        key, (old, _, shown_at) = next(iter(self._entries.items()))
        if index - shown_at <= self.loop_frames:
            return False
        del self._entries[key]
        img = self._images[old]
        img.users -= 1
        if img.users <= 0:
            del self._images[old]
            self.nbytes -= img.nbytes
        return True

    def forget_last(self) -> None:
        """The next image shown was not recalled from here (a repeat is then not this memo's to tell)."""
        self._last_id = -1

    def _diff(self, image: np.ndarray) -> _Image:
        assert self._base is not None
        h = image.shape[0] * 2 // 3
        q = h // 4
        parts = []
        for lo, hi in ((0, h), (h, h + q), (h + q, h + 2 * q)):
            rows = np.flatnonzero((image[lo:hi] != self._base[lo:hi]).any(axis=1))
            if not len(rows):
                continue
            r0, r1 = lo + int(rows[0]), lo + int(rows[-1]) + 1
            x0, x1 = 0, image.shape[1]
            if lo == 0:  # luma: its columns too (a chroma row holds two half-width rows side by side)
                cols = np.flatnonzero((image[r0:r1] != self._base[r0:r1]).any(axis=0))
                x0, x1 = int(cols[0]), int(cols[-1]) + 1
            parts.append(_Rows(r0, r1, x0, x1, image[r0:r1, x0:x1].copy()))
        return _Image(tuple(parts), nbytes=sum(p.pixels.nbytes for p in parts) + 256)

    def _restore(self, img: _Image) -> np.ndarray:
        assert self._base is not None
        out = self._base.copy()
        for p in img.parts:
            out[p.lo : p.hi, p.x0 : p.x1] = p.pixels
        return out


RenderFn = Callable[[int, np.ndarray, int, bool, bool], tuple[np.ndarray, float, Drawn]]
"""(slot, channel values, frame index, listening, fresh) -> (I420 image, render seconds, how it was made);
``fresh``: the frame shown last was not the renderer's, so it draws anew (see ``RenderWorker._renderer``)."""


@dataclass(frozen=True)
class Sourced:
    """A frame's image and where it came from."""

    image: np.ndarray  # I420: valid until the next image that is not ``reused``
    seconds: float  # render time (0: not rendered)
    reused: bool  # the image shown before again (nothing moved)
    recalled: bool  # from the memo of the idle loop


class FrameSource:
    """Where each frame's image comes from, in frame order: the image before again when the values surely
    move nothing (``StillFrames``), the memo of the idle loop for a listening frame shown before, else the
    renderer (whose listening frames the memo keeps)."""

    def __init__(self, render: RenderFn, still: StillFrames | None, memo: FrameMemo | None) -> None:
        self.render = render
        self.still = still
        self.memo = memo if still is not None else None
        self.drawn: np.ndarray | None = None  # the image shown last
        self._stale = False  # the renderer's last frame is not the one shown last (that came from the memo)

    def next(self, slot: int, values: np.ndarray, index: int, speaking: bool) -> Sourced:
        """The image of frame ``index`` showing ``values`` (rendered into ``slot`` when rendered)."""
        still, memo, drawn = self.still, self.memo, self.drawn
        if drawn is not None and still is not None and still.still(values, reuse_px(not speaking)):
            return Sourced(drawn, 0.0, True, False)  # (the renderer would reuse it: not asked)
        if memo is not None and not speaking and (recalled := memo.recall(values, index)) is not None:
            assert still is not None
            still.drawn(recalled.shown, Drawn.WHOLE)
            self._stale = True
            reused = recalled.same_as_last and drawn is not None
            if not reused:
                self.drawn = drawn = recalled.image  # (the memo hands out a new array per image)
            assert drawn is not None
            return Sourced(drawn, 0.0, reused, True)
        image, seconds, how = self.render(slot, values, index, not speaking, self._stale)
        self._stale = False
        reused = how is Drawn.REUSED and drawn is not None
        if still is not None:
            still.drawn(values, how)
        if not reused:
            # (no copy: a render that reuses its image writes nothing, so the slot stays valid until the next
            # image drawn anew replaces it)
            self.drawn = drawn = image
        assert drawn is not None
        if memo is not None and still is not None and still.last is not None:
            if speaking:
                memo.forget_last()
            else:
                memo.store(values, drawn, still.last, reused, index)
        return Sourced(drawn, seconds, reused, False)
