"""Command line: ``talker render`` (text + portrait -> MP4) and ``talker bench``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from audio.text import TextError


def _render(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from talker.pipeline import Pipeline, RenderSettings
    from talker.portrait import parse_size

    if not (args.text or args.text_file or args.audio):
        raise ValueError("give the words: --text, --text-file, or a recording with --audio")
    text = _read_text(args) if (args.text or args.text_file) else None
    size = None if args.size == "source" else parse_size(args.size)
    settings = RenderSettings(
        fps=_check_fps(args.fps), size=size, seed=args.seed, face_index=args.face_index, style=_style(args)
    )
    bar = tqdm(total=0, unit="frame", desc="rendering", disable=args.quiet)

    def progress(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    from render.landmarks import make_detector

    pipeline = Pipeline(detector=make_detector(args.landmarks))
    if args.audio:
        result = pipeline.render_audio(args.audio, args.out, args.face, text, settings, progress)
    else:
        assert text is not None
        result = pipeline.render_text(text, args.out, args.face, settings, progress)
    bar.total = bar.n
    bar.refresh()
    bar.close()
    if not args.quiet:
        t = result.timings_s
        print(
            f"wrote {result.path} ({result.n_frames} frames, {result.duration_s:.2f} s at {result.fps:g} fps); "
            + ", ".join(f"{k} {v:.2f}s" for k, v in t.items())
        )
        for note in result.notes:
            print(f"note: {note}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from talker.bench import main as bench_main

    return bench_main(args)


def _motion(args: argparse.Namespace) -> int:
    from motion.export import write_track
    from talker.pipeline import Pipeline, RenderSettings

    if Path(args.out).suffix.lower() not in (".json", ".csv"):
        raise ValueError(f"motion export {args.out}: use a .json or .csv file name")
    if args.video:
        from render.encoder import encode_frames
        from talker.video import probe_video, read_frames

        info = probe_video(args.video)
        encoded = encode_frames(read_frames(info.path), info.fps, args.face_index)
        out = write_track(encoded.track, args.out)
        share = 100 * float(encoded.faces.valid.mean())
        print(f"wrote {out} ({encoded.track.n_frames} frames at {info.fps:g} fps; face tracked in {share:.0f}%)")
        return 0
    text = _read_text(args)
    settings = RenderSettings(fps=_check_fps(args.fps), seed=args.seed, style=_style(args))
    p = Pipeline()
    speech = p.synthesize(text)
    track = p.motion(speech, settings)
    out = write_track(track, args.out)
    print(f"wrote {out} ({track.n_frames} frames at {track.fps:g} fps, {speech.duration_s:.2f} s)")
    if args.wav:
        import wave

        import numpy as np

        with wave.open(args.wav, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(speech.sample_rate)
            w.writeframes((np.clip(speech.samples, -1, 1) * 32767).astype("<i2").tobytes())
        print(f"wrote {args.wav}")
    return 0


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
    from talker.dub import DubSettings, dub_video

    settings = DubSettings(fit=args.fit, face_index=args.face_index, seed=args.seed)
    if args.audio:
        if args.voice:
            raise ValueError("--voice chooses the voice for --text; with --audio the recording is the voice")
        from audio.align import align_file

        aligned = align_file(args.audio, args.text)
        speech, notes = aligned.speech, aligned.notes
    elif args.text:
        from audio.types import concat_speech, silence
        from audio.voices import DEFAULT_VOICE_ID, make_tts, synthesize

        tts = make_tts(args.voice or DEFAULT_VOICE_ID)
        said = synthesize(tts, args.text)
        sr = said.sample_rate
        speech, notes = concat_speech([silence(0.2, sr), said, silence(0.3, sr)], args.text), ()
    else:
        raise ValueError("give the new speech: --audio RECORDING (with --text as its transcript), or --text")
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


def _read_text(args: argparse.Namespace) -> str:
    if args.text_file:
        p = Path(args.text_file)
        try:
            return p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"cannot read text file {p}: {e}") from e
    return str(args.text)


def _check_fps(fps: float) -> float:
    if fps <= 0 or fps > 60:
        raise ValueError(f"--fps must be between 1 and 60, got {fps}")
    return fps


def _style(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from motion.generator import MotionStyle

    return MotionStyle().with_expression(args.expression, args.intensity)


def _sheet(args: argparse.Namespace) -> int:
    from talker.sheet import contact_sheet

    out = contact_sheet(args.faces, args.out, tile=args.tile)
    print(f"wrote {out}")
    return 0


def _expression_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--expression",
        default="neutral",
        choices=["neutral", "happy", "sad", "angry", "surprised"],
        help="emotion preset mixed with the speech (default neutral)",
    )
    p.add_argument("--intensity", type=float, default=1.0, help="expression strength 0..1.5 (default 1)")


def _serve(args: argparse.Namespace) -> int:
    from server.app import serve

    serve(
        args.host,
        args.port,
        args.log_level,
        data_dir=args.data_dir,
        max_sessions=args.max_sessions,
        api_key=args.api_key,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="talker", description="Talking-head videos from one portrait and words.")
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="render a portrait speaking text (or a recording) to an MP4")
    src = r.add_mutually_exclusive_group()
    src.add_argument("--text", help="the words to speak (with --audio: the recording's transcript)")
    src.add_argument("--text-file", help="a UTF-8 text file with the words to speak (or the transcript)")
    r.add_argument("--audio", help="recorded speech to lip-sync instead of synthesizing (wav, mp3, flac, ogg, m4a)")
    r.add_argument("--face", help="portrait image (default: the bundled public-domain portrait)")
    r.add_argument("--face-index", type=int, default=None, help="which face when there are several (0 = leftmost)")
    r.add_argument("--out", default="talker.mp4", help="output MP4 path (default: talker.mp4)")
    r.add_argument("--fps", type=float, default=25.0, help="video frame rate (default 25)")
    r.add_argument("--size", default="512", help="output size: 512, 640x480, or 'source' (default 512)")
    r.add_argument("--seed", type=int, default=0, help="seed for blinks and head motion (default 0)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument(
        "--landmarks", default="mediapipe", help="landmark backend: mediapipe (default), dlib, or fan:MODEL_DIR"
    )
    _expression_args(r)
    r.set_defaults(func=_render)
    m = sub.add_parser("motion", help="export the motion of spoken text as ARKit blendshape curves (JSON/CSV)")
    msrc = m.add_mutually_exclusive_group(required=True)
    msrc.add_argument("--text", help="the words to speak")
    msrc.add_argument("--text-file", help="a UTF-8 text file with the words to speak")
    msrc.add_argument("--video", help="read the motion of the face in this video instead (the motion encoder)")
    m.add_argument("--face-index", type=int, default=None, help="with --video: which face (0 = leftmost)")
    m.add_argument("--out", default="motion.json", help="output .json or .csv (default motion.json)")
    m.add_argument("--wav", default=None, help="also write the speech audio to this WAV file")
    m.add_argument("--fps", type=float, default=25.0)
    m.add_argument("--seed", type=int, default=0)
    _expression_args(m)
    m.set_defaults(func=_motion)
    b = sub.add_parser("bench", help="time every stage on a ~10 s utterance")
    b.add_argument("--size", default="512")
    b.add_argument("--face", default=None)
    b.add_argument("--out", default=None, help="keep the rendered MP4 here")
    b.set_defaults(func=_bench)
    d = sub.add_parser("dub", help="re-sync the lips of a face video to new speech (a recording or text)")
    d.add_argument("--video", required=True, help="the video of the face to dub")
    d.add_argument("--audio", help="the new speech, recorded (wav, mp3, flac, ogg, m4a)")
    d.add_argument("--text", help="the new words to synthesize (with --audio: the recording's transcript)")
    d.add_argument("--voice", default=None, help="voice id for --text (see talker persona voices)")
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
    dr = sub.add_parser("drive", help="a portrait performs the head, eye and mouth motion of a driving video")
    dr.add_argument("--face", default=None, help="portrait image (default: the bundled portrait)")
    dr.add_argument("--video", required=True, help="the driving video (its audio is kept)")
    dr.add_argument("--out", default="driven.mp4", help="output MP4 path (default: driven.mp4)")
    dr.add_argument("--size", default="512", help="output size: 512, 640x480, or 'source' (default 512)")
    dr.add_argument("--face-index", type=int, default=None, help="which driving face when there are several")
    dr.add_argument("--quiet", action="store_true", help="no progress bar")
    dr.set_defaults(func=_drive)
    s = sub.add_parser("sheet", help="contact sheet PNG of key poses (blink, vowels, bilabial, head turn)")
    s.add_argument("faces", nargs="+", help="portrait images (one row each)")
    s.add_argument("--out", default="contact_sheet.png")
    s.add_argument("--tile", type=int, default=256, help="tile size in pixels")
    s.set_defaults(func=_sheet)
    v = sub.add_parser("serve", help="run the live avatar server (HTTP API, WebRTC sessions, render jobs)")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    v.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    v.add_argument(
        "--data-dir", default=None, help="jobs database and files (default: $TALKER_DATA_DIR or ./talker-data)"
    )
    v.add_argument("--max-sessions", type=int, default=None, help="concurrent live sessions (default 4)")
    v.add_argument("--api-key", default=None, help="require this key on API calls (default: $TALKER_API_KEY)")
    v.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    v.set_defaults(func=_serve)
    from talker.cli_persona import add_persona_parser

    add_persona_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, TextError, OSError, RuntimeError) as e:
        print(f"talker: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
