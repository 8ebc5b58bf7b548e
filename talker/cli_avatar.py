"""``talker avatar``: video avatars made from a clip of a person (create, list, show, delete)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from talker.paths import ENV_DATA_DIR


def _size(text: str) -> tuple[int, int] | None:
    from talker.portrait import parse_size

    return None if text == "source" else parse_size(text)


def _create(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from talker.video_avatar import prepare_video_avatar

    bar: Any = None

    def progress(stage: str, share: float) -> None:
        nonlocal bar
        if args.quiet:
            return
        if bar is None or bar.desc != stage:
            if bar is not None:
                bar.close()
            bar = tqdm(total=100, desc=stage, unit="%")
        bar.update(int(100 * share) - bar.n)

    info = prepare_video_avatar(
        args.video, args.name, args.data_dir, _size(args.size), args.framing, args.face_index, args.replace, progress
    )
    if bar is not None:
        bar.close()
    if not args.quiet:
        print(
            f"video avatar {info.name}: a {info.n_frames / info.fps:.1f} s loop at {info.size[0]}x{info.size[1]}, "
            f"{info.bank} of the person's own open mouths; prepared in {info.prepare_s:.1f} s, "
            f"{info.bytes / 1e6:.1f} MB on disk"
        )
        for note in info.notes:
            print(f"note: {note}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from talker.video_avatar import list_video_avatars

    found = list_video_avatars(args.data_dir)
    if not found:
        print("no video avatars (make one: talker avatar create --video CLIP.mp4 --name NAME)")
    for info in found:
        print(
            f"{info.name}\t{info.size[0]}x{info.size[1]}\t{info.n_frames / info.fps:.1f} s loop\t"
            f"{info.bytes / 1e6:.1f} MB\tfrom {info.source}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    from talker.avatar_player import load_video_avatar

    print(json.dumps(load_video_avatar(args.name, args.data_dir).info.to_json(), indent=1))
    return 0


def _delete(args: argparse.Namespace) -> int:
    from talker.video_avatar import delete_video_avatar

    delete_video_avatar(args.name, args.data_dir)
    print(f"deleted video avatar {args.name}")
    return 0


def add_avatar_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``avatar`` subcommand (create, list, show, delete)."""
    a = sub.add_parser("avatar", parents=[common], help="video avatars: a clip of a person that speaks new words")
    a.add_argument(
        "--data-dir", default=None, help=f"where avatars are kept (default: ${ENV_DATA_DIR} or ~/.local/share/talker)"
    )
    s = a.add_subparsers(dest="avatar_command", required=True)
    c = s.add_parser("create", help="prepare a 5 s - 3 min clip of a person (sitting, listening) as a video avatar")
    c.add_argument("--video", required=True, help="the clip (MP4, MOV, WebM ...)")
    c.add_argument("--name", required=True, help="the avatar's name (letters, digits, - and _)")
    c.add_argument("--size", default="512", help="output size: 512, 640x480, or 'source' (default 512)")
    c.add_argument(
        "--framing", default="bust", choices=["bust", "head", "source"], help="how the clip is framed (default bust)"
    )
    c.add_argument("--face-index", type=int, default=None, help="which face when there are several (0 = leftmost)")
    c.add_argument("--replace", action="store_true", help="replace an avatar of the same name")
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    c.set_defaults(func=_create)
    ls = s.add_parser("list", help="the prepared video avatars")
    ls.set_defaults(func=_list)
    sh = s.add_parser("show", help="one avatar's details (JSON)")
    sh.add_argument("name")
    sh.set_defaults(func=_show)
    d = s.add_parser("delete", help="delete a video avatar")
    d.add_argument("name")
    d.set_defaults(func=_delete)
