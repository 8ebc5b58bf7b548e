"""Video avatars kept by the server: each tenant's in a folder of its own, prepared by the job runners.

A tenant's avatars live in ``avatars/`` under its own data folder (``talker.video_avatar`` keeps them
there): the default tenant's is the server's data folder itself, so avatars made with ``talker avatar
create`` on the same data folder are the default tenant's; any other tenant's is
``tenants/<hash of its name>/``. Names are per tenant: two tenants may both have an avatar called
``anna``, and neither can see, use or delete the other's. Ready avatars are recorded in the owners table
with their size, so they count against the tenant's storage quota.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from server.tenancy import DEFAULT_TENANT, OwnerStore
from talker.avatar_player import VideoAvatar
from talker.video_avatar import (
    VideoAvatarError,
    VideoAvatarInfo,
    avatars_dir,
    check_name,
    delete_video_avatar,
    list_video_avatars,
    prepare_video_avatar,
)

KIND = "avatar"
"""The owners table's kind, and the job kind, of video avatars."""


class AvatarStore:
    """Every tenant's prepared video avatars under ``data_dir``. Thread-safe."""

    def __init__(self, data_dir: Path, owners: OwnerStore | None = None, cache: int = 8) -> None:
        self.data_dir = Path(data_dir)
        self.owners = owners
        self._lock = threading.Lock()
        self.naming = threading.Lock()  # held while a name is checked and claimed (routes) or freed
        self._loaded: OrderedDict[tuple[str, float], VideoAvatar] = OrderedDict()
        self._cache = cache

    def root(self, tenant: str) -> Path:
        """The data folder of a tenant's avatars (``talker.video_avatar``'s ``data_dir``)."""
        if tenant == DEFAULT_TENANT:
            return self.data_dir
        return self.data_dir / "tenants" / hashlib.sha256(tenant.encode()).hexdigest()[:16]

    def folder(self, tenant: str, name: str) -> Path | None:
        """The folder of a tenant's ready avatar, or None."""
        try:
            d = avatars_dir(self.root(tenant)) / check_name(name)
        except VideoAvatarError:
            return None
        return d if (d / "avatar.json").is_file() else None

    def info(self, tenant: str, name: str) -> VideoAvatarInfo | None:
        folder = self.folder(tenant, name)
        if folder is None:
            return None
        return next((a for a in list_video_avatars(self.root(tenant)) if a.name == name), None)

    def list(self, tenant: str) -> list[VideoAvatarInfo]:
        return list_video_avatars(self.root(tenant))

    def prepare(
        self,
        tenant: str,
        video: Path,
        name: str,
        size: tuple[int, int],
        framing: str,
        face_index: int | None,
        progress: Callable[[str, float], None] | None = None,
    ) -> VideoAvatarInfo:
        """``prepare_video_avatar`` into the tenant's folder, then record it as the tenant's (its bytes count
        against the quota). Raises what ``prepare_video_avatar`` raises."""
        info = prepare_video_avatar(video, name, self.root(tenant), size, framing, face_index, progress=progress)
        if self.owners is not None:
            self.owners.add(KIND, name, tenant, info.bytes)
        return info

    def load(self, tenant: str, name: str) -> VideoAvatar | None:
        """A tenant's ready avatar, loaded (kept for the next session while its files are unchanged)."""
        folder = self.folder(tenant, name)
        if folder is None:
            return None
        try:
            key = (str(folder), (folder / "avatar.json").stat().st_mtime)
        except OSError:
            return None
        with self._lock:
            hit = self._loaded.get(key)
            if hit is not None:
                self._loaded.move_to_end(key)
                return hit
        avatar = VideoAvatar(folder)  # (raises VideoAvatarError when its files are damaged)
        with self._lock:
            self._loaded[key] = avatar
            while len(self._loaded) > self._cache:
                self._loaded.popitem(last=False)
        return avatar

    def delete(self, tenant: str, name: str) -> bool:
        """Delete a tenant's ready avatar; False when it has none by that name."""
        if self.folder(tenant, name) is None:
            return False
        folder = str(avatars_dir(self.root(tenant)) / name)
        with self._lock:
            for key in [k for k in self._loaded if k[0] == folder]:
                del self._loaded[key]
        try:
            delete_video_avatar(name, self.root(tenant))
        except VideoAvatarError:
            return False
        if self.owners is not None:
            self.owners.remove(KIND, name, tenant)
        return True


LOOK_S = (0.5, 2.0, 4.0)
"""Seconds into an uploaded clip at which ``first_look`` searches for faces."""


def first_look(video: Path, fps: float) -> int:
    """The most faces seen at ``LOOK_S`` into the clip (0: no face there), so an upload without a person is
    refused at once instead of after its preparation. Raises ``talker.video.VideoError`` when the frames
    cannot be decoded."""
    from talker.stages import MediaPipeFaceMesh
    from talker.video import read_frames

    wanted = {int(round(t * fps)) for t in LOOK_S}
    mesh = MediaPipeFaceMesh()
    most = 0
    try:
        for k, image in enumerate(read_frames(video, max(wanted) + 1)):
            if k in wanted:
                most = max(most, len(mesh.detect(image)))
    finally:
        mesh.close()
    return most
