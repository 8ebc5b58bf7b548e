"""Where a live frame's image comes from (``FrameSource``), and the listening frames kept for their next
showing: a portrait's idle motion repeats every ``motion.idle.IDLE_LOOP_S``, so once its sessions have
listened through a loop they show those frames again from the portrait's ``FrameMemo`` instead of
rendering them."""

from __future__ import annotations

import threading
import time
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
    parts: tuple[_Rows, ...]  # where the image differs from the memo's first image
    users: int = 0  # entries that show it
    nbytes: int = 0


def key_of(values: np.ndarray) -> bytes:
    return np.round(np.asarray(values, np.float64) / KEY_STEP).astype(np.int64).tobytes()


class FrameMemo:
    """I420 frames of one portrait by the channel values asked for them, within ``budget_bytes``, shared by
    the portrait's live sessions (thread-safe). Each image is stored as the rows (and luma columns) where it
    differs from the first image stored.

    Frames are asked for in a loop, so a full memo keeps what it holds (dropping the least recently used
    would lose each frame just before it is asked for again) and drops only frames not shown for a whole
    loop (``loop_s`` seconds): those of the moments after speech, which do not come again."""

    def __init__(self, budget_bytes: int, loop_s: float) -> None:
        self.budget_bytes = int(budget_bytes)
        self.loop_s = float(loop_s)
        self._lock = threading.Lock()
        # key -> (image id, shown values, when last shown), least recently shown first
        self._entries: OrderedDict[bytes, tuple[int, np.ndarray, float]] = OrderedDict()
        self._images: dict[int, _Image] = {}
        self._base: np.ndarray | None = None
        self._next_id = 0
        self.nbytes = 0

    def recall(self, values: np.ndarray, now: float) -> tuple[int, np.ndarray] | None:
        """(the id of the image stored for ``values``, the channel values it shows), or None. ``now``:
        the time it is shown (seconds, monotonic)."""
        key = key_of(values)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            image_id, shown, _ = entry
            self._entries[key] = (image_id, shown, now)
            self._entries.move_to_end(key)
            return image_id, shown

    def image(self, image_id: int) -> np.ndarray | None:
        """A new array holding image ``image_id`` (None: dropped since it was recalled)."""
        with self._lock:
            img = self._images.get(image_id)
            base = self._base
        if img is None or base is None:
            return None
        out = base.copy()
        for p in img.parts:
            out[p.lo : p.hi, p.x0 : p.x1] = p.pixels
        return out

    def store(
        self, values: np.ndarray, image: np.ndarray, shown: np.ndarray, now: float, same_as: int | None
    ) -> int | None:
        """Keep ``image`` (I420, copied) as the frame of ``values``, showing ``shown``; ``same_as``: the id of
        a stored image ``image`` is (kept once). Returns the image's id, None where the memo is full of frames
        shown within the last loop."""
        key = key_of(values)
        stored = None
        with self._lock:
            known = self._entries.get(key)
            if known is not None:
                return known[0]
            new_image = same_as is None or same_as not in self._images
            if new_image and self.nbytes >= self.budget_bytes and not self._drop_stale(now):
                return None  # (full of frames of the loop: refused before comparing it with the first)
            base = None
            if new_image:
                if self._base is None:
                    self._base = image.copy()
                base = self._base
        if base is not None:
            stored = _diff(image, base)  # (outside the lock: other sessions go on meanwhile)
        with self._lock:
            if len(self._entries) >= _MAX_ENTRIES:
                self._drop_stale(now)
            if len(self._entries) >= _MAX_ENTRIES:
                return None
            if stored is None and same_as is not None and same_as in self._images:
                image_id = same_as
            else:
                if stored is None:
                    return None  # (its twin was dropped meanwhile)
                while self.nbytes + stored.nbytes > self.budget_bytes and self._drop_stale(now):
                    pass
                if self.nbytes + stored.nbytes > self.budget_bytes:
                    return None
                image_id = self._next_id
                self._next_id += 1
                self._images[image_id] = stored
                self.nbytes += stored.nbytes
            self._images[image_id].users += 1
            self._entries[key] = (image_id, np.array(shown, np.float64), now)
            return image_id

    def _drop_stale(self, now: float) -> bool:
        """Drop the least recently shown frame if it was not shown within a loop of ``now`` (lock held)."""
        if not self._entries:
            return False
        key, (old, _, shown_at) = next(iter(self._entries.items()))
        if now - shown_at <= self.loop_s:
            return False
        del self._entries[key]
        img = self._images[old]
        img.users -= 1
        if img.users <= 0:
            del self._images[old]
            self.nbytes -= img.nbytes
        return True


_MAX_ENTRIES = 20_000
"""Most frames one memo keys (an entry without an image of its own costs about 0.6 KB)."""


def _diff(image: np.ndarray, base: np.ndarray) -> _Image:
    """``image`` as the rows (and luma columns) of each plane where it differs from ``base``."""
    h = image.shape[0] * 2 // 3
    q = h // 4
    parts = []
    for lo, hi in ((0, h), (h, h + q), (h + q, h + 2 * q)):
        rows = np.flatnonzero((image[lo:hi] != base[lo:hi]).any(axis=1))
        if not len(rows):
            continue
        r0, r1 = lo + int(rows[0]), lo + int(rows[-1]) + 1
        x0, x1 = 0, image.shape[1]
        if lo == 0:  # luma: its columns too (a chroma row holds two half-width rows side by side)
            cols = np.flatnonzero((image[r0:r1] != base[r0:r1]).any(axis=0))
            x0, x1 = int(cols[0]), int(cols[-1]) + 1
        parts.append(_Rows(r0, r1, x0, x1, image[r0:r1, x0:x1].copy()))
    return _Image(tuple(parts), nbytes=sum(p.pixels.nbytes for p in parts) + 256)


class MemoShelf:
    """The memos of the portraits live sessions show: one per portrait (its rig object), shared by the
    sessions showing it. When the last of them closes the memo is kept for the portrait's next session,
    for the ``keep`` portraits whose sessions closed last (their memos' memory stays in use)."""

    def __init__(self, budget_bytes: int, loop_s: float, keep: int = 0) -> None:
        self.budget_bytes = int(budget_bytes)
        self.loop_s = float(loop_s)
        self.keep = int(keep)
        self._lock = threading.Lock()
        # id(face) -> (face, memo, sessions using it); the face is held so that its id is not reused
        self._memos: dict[int, tuple[object, FrameMemo, int]] = {}
        self._idle: OrderedDict[int, None] = OrderedDict()  # memos no session uses, the oldest first

    def take(self, face: object) -> FrameMemo | None:
        """The memo of ``face`` for one more session (None: memos are off); give it back at the end."""
        if self.budget_bytes <= 0:
            return None
        with self._lock:
            _, memo, users = self._memos.get(id(face), (face, None, 0))
            if memo is None:
                memo = FrameMemo(self.budget_bytes, self.loop_s)
            self._memos[id(face)] = (face, memo, users + 1)
            self._idle.pop(id(face), None)
            return memo

    def give_back(self, face: object) -> None:
        with self._lock:
            _, memo, users = self._memos.get(id(face), (face, None, 0))
            if memo is None:
                return
            if users > 1:
                self._memos[id(face)] = (face, memo, users - 1)
                return
            self._memos[id(face)] = (face, memo, 0)
            self._idle[id(face)] = None
            while len(self._idle) > self.keep:
                old, _ = self._idle.popitem(last=False)
                del self._memos[old]


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
    move nothing (``StillFrames``), the portrait's memo of its idle loop for a listening frame shown before,
    else the renderer (whose listening frames the memo keeps)."""

    def __init__(
        self,
        render: RenderFn,
        still: StillFrames | None,
        memo: FrameMemo | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.render = render
        self.still = still
        self.memo = memo if still is not None else None
        self.clock = clock
        self.drawn: np.ndarray | None = None  # the image shown last
        self.recalled = 0  # frames shown from the memo
        self._shown_id: int | None = None  # the memo's id of the image shown last (None: not in it)
        self._stale = False  # the renderer's last frame is not the one shown last (that came from the memo)

    def next(self, slot: int, values: np.ndarray, index: int, speaking: bool) -> Sourced:
        """The image of frame ``index`` showing ``values`` (rendered into ``slot`` when rendered)."""
        still, memo, drawn = self.still, self.memo, self.drawn
        if drawn is not None and still is not None and still.still(values, reuse_px(not speaking)):
            return Sourced(drawn, 0.0, True, False)  # (the renderer would reuse it: not asked)
        now = self.clock()
        if memo is not None and not speaking and (hit := memo.recall(values, now)) is not None:
            assert still is not None
            image_id, shown = hit
            same = image_id == self._shown_id and drawn is not None
            image = drawn if same else memo.image(image_id)
            if image is not None:
                still.drawn(shown, Drawn.WHOLE)
                self._stale = True
                self._shown_id = image_id
                self.drawn = image
                self.recalled += 1
                return Sourced(image, 0.0, same, True)
        image, seconds, how = self.render(slot, values, index, not speaking, self._stale)
        self._stale = False
        reused = how is Drawn.REUSED and drawn is not None
        if still is not None:
            still.drawn(values, how)
        if not reused:
            # (no copy: a render that reuses its image writes nothing, so the slot stays valid until the next
            # image drawn anew replaces it; the memo hands out a new array per image)
            self.drawn = drawn = image
        assert drawn is not None
        if memo is not None and still is not None and still.last is not None:
            if speaking:
                self._shown_id = None
            else:
                same_as = self._shown_id if reused else None
                self._shown_id = memo.store(values, drawn, still.last, now, same_as)
        return Sourced(drawn, seconds, reused, False)
