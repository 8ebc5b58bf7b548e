"""``talker dub`` and ``drive``: a face video re-voiced, a portrait driven by a video."""

from __future__ import annotations

import argparse
from typing import Any


class _Bar:
    """A progress bar that appears with the first frame (not before an input error)."""

    def __init__(self, quiet: bool, desc: str) -> None:
        self.quiet, self.desc = quiet, desc
        self._bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(total=total, unit="frame", desc=self.desc, disable=self.quiet)
        if self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _dub(args: argparse.Namespace) -> int:
    from talker.dub import DubSettings, dub_video, new_speech

    settings = DubSettings(fit=args.fit, face_index=args.face_index, seed=args.seed)
    if args.audio and args.voice:
        raise ValueError("--voice chooses the voice for --text; with --audio the recording is the voice")
    if not (args.audio or args.text):
        raise ValueError("give the new speech: --audio RECORDING (with --text as its transcript), or --text")
    if args.align and not args.audio:
        raise ValueError("--align recognises the phones of a recording: use it with --audio")
    speech, notes = new_speech(args.audio, args.text, args.voice, args.align)
    bar = _Bar(args.quiet, "dubbing")
    result = dub_video(args.video, speech, args.out, settings, bar)
    bar.close()
    if not args.quiet:
        t = result.timings_s
        print(
            f"wrote {result.path} ({result.n_frames} frames, {result.duration_s:.2f} s at {result.fps:g} fps; "
            f"mouth redrawn in {100 * result.face_share:.0f}% of frames); "
            + ", ".join(f"{k} {v:.2f}s" for k, v in t.items())
        )
        for note in (*notes, *result.notes):
            print(f"note: {note}")
    return 0


def _drive(args: argparse.Namespace) -> int:
    from render.landmarks import make_detector
    from talker.drive import drive_portrait
    from talker.pipeline import Pipeline
    from talker.portrait import parse_size

    size = None if args.size == "source" else parse_size(args.size)
    bar = _Bar(args.quiet, "driving")
    result = drive_portrait(
        args.face, args.video, args.out, size, args.face_index, Pipeline(detector=make_detector("mediapipe")),
        progress=bar,
    )  # fmt: skip
    bar.close()
    if not args.quiet:
        t = result.timings_s
        print(
            f"wrote {result.path} ({result.n_frames} frames, {result.duration_s:.2f} s at {result.fps:g} fps; "
            f"driving face tracked in {100 * result.face_share:.0f}% of frames); "
            + ", ".join(f"{k} {v:.2f}s" for k, v in t.items())
        )
    return 0


def add_video_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``dub`` and ``drive`` subcommands."""
    d = sub.add_parser(
        "dub", parents=[common], help="re-sync the lips of a face video to new speech (a recording or text)"
    )
    d.add_argument("--video", required=True, help="the video of the face to dub")
    d.add_argument("--audio", help="the new speech, recorded (wav, mp3, flac, ogg, m4a)")
    d.add_argument("--text", help="the new words to synthesize (with --audio: the recording's transcript)")
    d.add_argument("--voice", default=None, help="voice id for --text (see talker voices)")
    d.add_argument(
        "--align",
        action="store_true",
        help="with --audio and no --text: lips on phones from pocketsphinx's English recognition instead of the "
        "learned lip-sync model (English speech only)",
    )
    d.add_argument("--out", default="dubbed.mp4", help="output MP4 path (default: dubbed.mp4)")
    d.add_argument(
        "--fit",
        default="loop",
        choices=["loop", "pingpong", "hold", "cut"],
        help="when speech and video differ in length: repeat the video (loop), play it back and forth "
        "(pingpong), hold its last frame (hold), or stop at the shorter (cut). Default loop",
    )
    d.add_argument("--face-index", type=int, default=None, help="which face when there are several (0 = leftmost)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=_dub)
    dr = sub.add_parser(
        "drive", parents=[common], help="a portrait performs the head, eye and mouth motion of a driving video"
    )
    dr.add_argument("--face", default=None, help="portrait image (default: the bundled portrait)")
    dr.add_argument("--video", required=True, help="the driving video (its audio is kept)")
    dr.add_argument("--out", default="driven.mp4", help="output MP4 path (default: driven.mp4)")
    dr.add_argument("--size", default="512", help="output size: 512, 640x480, or 'source' (default 512)")
    dr.add_argument("--face-index", type=int, default=None, help="which driving face when there are several")
    dr.add_argument("--quiet", action="store_true", help="no progress bar")
    dr.set_defaults(func=_drive)
