"""Command line: ``talker render`` (text + portrait -> MP4), ``motion``, ``voices``, ``sheet``, ``bench``,
``serve``, ``persona``, ``motion-stats`` and ``train-lipsync``: parse, build the settings, call the library."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audio.text import TextError

if TYPE_CHECKING:
    from audio.voices import TTS, Voice


def _render(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from talker.pipeline import Pipeline, RenderSettings
    from talker.portrait import parse_size

    if not (args.text or args.text_file or args.audio):
        raise ValueError("give the words: --text, --text-file, or a recording with --audio")
    text = _read_text(args) if (args.text or args.text_file) else None
    _check_out(args.out)
    size = None if args.size == "source" else parse_size(args.size)
    settings = RenderSettings(
        fps=_check_fps(args.fps),
        size=size,
        seed=args.seed,
        face_index=args.face_index,
        style=_style(args),
        face_points=args.points,
        label=args.label,
    )
    bar = tqdm(total=0, unit="frame", desc="rendering", disable=args.quiet)

    def progress(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    from render.landmarks import make_detector

    if args.audio and (args.voice or args.language):
        raise ValueError("--voice and --language choose a TTS voice: not used with --audio")
    if not args.audio and (args.lipsync or args.lipsync_model):
        raise ValueError("--lipsync and --lipsync-model choose how a recording drives the mouth: use them with --audio")
    voice = _voice(args)
    tts = None if voice is None else _make_tts(voice)
    lipsync = None
    if args.lipsync_model:
        from motion.lipsync import LipsyncModel

        lipsync = LipsyncModel.load(args.lipsync_model)
    pipeline = Pipeline(tts=tts, detector=make_detector(args.landmarks), lipsync=lipsync)
    if args.audio:
        align = not (args.lipsync or args.lipsync_model)
        result = pipeline.render_audio(args.audio, args.out, args.face, text, settings, progress, align=align)
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


def _train_lipsync(args: argparse.Namespace) -> int:
    from motion.lipsync_train import train

    report = train(
        args.data_dir,
        args.out,
        epochs=args.epochs,
        lr=args.lr,
        batch_frames=args.batch_frames,
        threads=args.threads,
        seed=args.seed,
        show_progress=not args.quiet,
    )
    best = min(report["history"], key=lambda h: h["val_loss"]) if report["history"] else None
    if best is not None:
        print(
            f"best epoch {best['epoch']:.0f}: validation jaw r {best['jaw_r']:.3f}, bilabial frames closed "
            f"{100 * best['bilabial_frames_closed']:.1f}%, "
            f"pause frames closed {100 * best['pause_frames_closed']:.1f}%;"
            f" model in {args.out} (report.json has every epoch)"
        )
    return 0


def _verify(args: argparse.Namespace) -> int:
    """Exit 0 when a mark is found (watermark or C2PA manifest), 1 when none; unreadable input is 2."""
    from talker.provenance import verify

    report = verify(args.file, max_s=args.seconds)
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
        return 0 if report.found else 1
    print(f"{report.path} ({report.kind})")
    for name, d in (("pixels", report.pixels), ("audio", report.audio)):
        if d is None:
            continue
        if d.found:
            payload = "payload unreadable" if d.output_id is None else f"talker output id {d.output_id:08x}"
            more = f", {d.detail}" if d.detail else ""
            print(f"  {name:8} watermark found: {payload} (confidence z {d.z:.1f}{more})")
        else:
            print(f"  {name:8} no watermark (z {d.z:.1f})")
    m = report.manifest
    trust = "trusted signer" if m.trusted else "signer not in any trust list"
    line = {"valid": f"valid ({trust}); generator {m.generator}; {m.source_type.rsplit('/', 1)[-1]}",
            "invalid": f"INVALID: {m.detail}", "absent": "absent" + (f" ({m.detail})" if m.detail else "")}  # fmt: skip
    print(f"  C2PA manifest {line[m.state]}")
    print("marked as synthetic" if report.found else "no provenance mark found")
    return 0 if report.found else 1


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
    voice = _voice(args)
    p = Pipeline(tts=None if voice is None else _make_tts(voice))
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


def _voice(args: argparse.Namespace) -> Voice | None:
    """The voice chosen with --voice / --language, or None for the default voice."""
    from talker.api import resolve_voice

    return resolve_voice(args.voice, args.language)


def _make_tts(voice: Voice) -> TTS:
    from audio.voices import make_tts

    return make_tts(voice)


def _voices(args: argparse.Namespace) -> int:
    from talker.api import list_voices

    found = list_voices(args.language)
    if args.json:
        rows = [
            {"id": v.id, "backend": v.backend, "language": v.language, "language_name": v.language_name,
             "gender": v.gender, "age": v.age, "description": v.description}
            for v in found
        ]  # fmt: skip
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    if not found:
        raise ValueError(f"no voice speaks {args.language!r} (`talker voices` lists them all)")
    width = max(len(v.id) for v in found)
    for v in found:
        print(f"{v.id:{width}}  {v.language:12} {v.gender:7} {v.age:6} {v.description}")
    if not args.language:
        print(f"{len(found)} voices in {len({v.language for v in found})} languages")
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
    from talker.dub import DubSettings, dub_video, new_speech

    settings = DubSettings(fit=args.fit, face_index=args.face_index, seed=args.seed)
    if args.audio and args.voice:
        raise ValueError("--voice chooses the voice for --text; with --audio the recording is the voice")
    if not (args.audio or args.text):
        raise ValueError("give the new speech: --audio RECORDING (with --text as its transcript), or --text")
    speech, notes = new_speech(args.audio, args.text, args.voice)
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
    if not math.isfinite(fps) or not 1 <= fps <= 60:
        raise ValueError(f"--fps must be between 1 and 60, got {fps}")
    return fps


def _check_out(path: str) -> str:
    """The output path, checked before any work: a file we can create (its folder is made)."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"--out {path} is a folder; give a file name, e.g. {p / 'talker.mp4'}")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p.parent, prefix=".talker-", suffix=".probe"):
            pass
    except OSError as e:
        raise ValueError(f"cannot write --out {path}: {e.strerror or e}") from e
    return path


def _style(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from motion.generator import MotionStyle

    return MotionStyle(energy=args.energy).with_expression(args.expression, args.intensity)


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
    p.add_argument("--energy", type=float, default=0.5, help="0 calm .. 1 animated (default 0.5: like filmed speakers)")


def _voice_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--voice", default=None, help="voice id from `talker voices` (default: piper:joe)")
    p.add_argument("--language", default=None, help="speak with this language's voice: a tag (fr, en-gb) or a name")


def quiet_third_party_logs() -> None:
    """Hide mediapipe's and TensorFlow Lite's log lines (glog, absl): set before mediapipe is imported, and
    inherited by the server's render processes."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        from absl import logging as absl_logging
    except ImportError:
        return
    absl_logging.set_verbosity(absl_logging.ERROR)
    absl_logging.set_stderrthreshold("error")


def _serve(args: argparse.Namespace) -> int:
    from server.app import serve

    serve(
        args.host,
        args.port,
        args.log_level,
        data_dir=args.data_dir,
        max_sessions=args.max_sessions,
        api_key=args.api_key,
        api_keys_file=args.api_keys_file,
        allow_no_auth=args.allow_no_auth or None,
    )
    return 0


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port {text!r} is not a whole number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is outside 1-65535")
    return port


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="talker", description="Talking-head videos from one portrait and words.")
    ap.add_argument("--verbose", "-v", action="store_true", help="show third-party log lines (mediapipe, TF Lite)")
    # the same flag after the subcommand; SUPPRESS keeps a subcommand from resetting one given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--verbose", "-v", action="store_true", default=argparse.SUPPRESS, help="show third-party log lines"
    )
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", parents=[common], help="render a portrait speaking text (or a recording) to an MP4")
    src = r.add_mutually_exclusive_group()
    src.add_argument("--text", help="the words to speak (with --audio: the recording's transcript)")
    src.add_argument("--text-file", help="a UTF-8 text file with the words to speak (or the transcript)")
    r.add_argument("--audio", help="recorded speech to lip-sync instead of synthesizing (wav, mp3, flac, ogg, m4a)")
    r.add_argument(
        "--lipsync",
        action="store_true",
        help="with --audio: drive the mouth from the sound with the learned lip-sync model (any language, no "
        "transcript). Default: lips on phones from pocketsphinx (forced to --text, or English recognition)",
    )
    r.add_argument(
        "--lipsync-model", default=None, help="with --audio: drive the mouth with this lip-sync model folder"
    )
    r.add_argument("--face", help="portrait image (default: the bundled public-domain portrait)")
    r.add_argument("--face-index", type=int, default=None, help="which face when there are several (0 = leftmost)")
    r.add_argument(
        "--points",
        default=None,
        help="five guide points 'x,y;x,y;x,y;x,y;x,y' (right eye, left eye, nose tip, right and left mouth "
        "corner, in image pixels) for a face the detector cannot find: cartoons, animals, objects",
    )
    r.add_argument("--out", default="talker.mp4", help="output MP4 path (default: talker.mp4)")
    r.add_argument("--fps", type=float, default=25.0, help="video frame rate (default 25)")
    r.add_argument("--size", default="512", help="output size: 512, 640x480, or 'source' (default 512)")
    r.add_argument("--seed", type=int, default=0, help="seed for blinks and head motion (default 0)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--label", default=None, help="visible disclosure drawn on every frame, e.g. 'AI-generated'")
    r.add_argument(
        "--landmarks", default="mediapipe", help="landmark backend: mediapipe (default), dlib, or fan:MODEL_DIR"
    )
    _voice_args(r)
    _expression_args(r)
    r.set_defaults(func=_render)
    ve = sub.add_parser(
        "verify", parents=[common], help="look for talker's provenance marks (watermark, C2PA) in a file"
    )
    ve.add_argument("file", help="video, image or audio file")
    ve.add_argument("--json", action="store_true", help="print the report as JSON")
    ve.add_argument("--seconds", type=float, default=20.0, help="how much of a video or audio to read (default 20)")
    ve.set_defaults(func=_verify)
    m = sub.add_parser(
        "motion", parents=[common], help="export the motion of spoken text as ARKit blendshape curves (JSON/CSV)"
    )
    msrc = m.add_mutually_exclusive_group(required=True)
    msrc.add_argument("--text", help="the words to speak")
    msrc.add_argument("--text-file", help="a UTF-8 text file with the words to speak")
    msrc.add_argument("--video", help="read the motion of the face in this video instead (the motion encoder)")
    m.add_argument("--face-index", type=int, default=None, help="with --video: which face (0 = leftmost)")
    m.add_argument("--out", default="motion.json", help="output .json or .csv (default motion.json)")
    m.add_argument("--wav", default=None, help="also write the speech audio to this WAV file")
    m.add_argument("--fps", type=float, default=25.0)
    m.add_argument("--seed", type=int, default=0)
    _voice_args(m)
    _expression_args(m)
    m.set_defaults(func=_motion)
    vo = sub.add_parser("voices", parents=[common], help="list the voices (id, language, gender, age, tone)")
    vo.add_argument("--language", default=None, help="only voices of this language: a tag (de, en-gb) or a name")
    vo.add_argument("--json", action="store_true", help="print a JSON list")
    vo.set_defaults(func=_voices)
    b = sub.add_parser("bench", parents=[common], help="time every stage on a ~10 s utterance")
    b.add_argument("--size", default="512")
    b.add_argument("--face", default=None)
    b.add_argument("--out", default=None, help="keep the rendered MP4 here")
    b.set_defaults(func=_bench)
    d = sub.add_parser(
        "dub", parents=[common], help="re-sync the lips of a face video to new speech (a recording or text)"
    )
    d.add_argument("--video", required=True, help="the video of the face to dub")
    d.add_argument("--audio", help="the new speech, recorded (wav, mp3, flac, ogg, m4a)")
    d.add_argument("--text", help="the new words to synthesize (with --audio: the recording's transcript)")
    d.add_argument("--voice", default=None, help="voice id for --text (see talker voices)")
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
    s = sub.add_parser(
        "sheet", parents=[common], help="contact sheet PNG of key poses (blink, vowels, bilabial, head turn)"
    )
    s.add_argument("faces", nargs="+", help="portrait images (one row each)")
    s.add_argument("--out", default="contact_sheet.png")
    s.add_argument("--tile", type=int, default=256, help="tile size in pixels")
    s.set_defaults(func=_sheet)
    v = sub.add_parser(
        "serve", parents=[common], help="run the live avatar server (HTTP API, WebRTC sessions, render jobs)"
    )
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    v.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    v.add_argument(
        "--data-dir", default=None, help="jobs database and files (default: $TALKER_DATA_DIR or ~/.local/share/talker)"
    )
    v.add_argument("--max-sessions", type=int, default=None, help="concurrent live sessions (default 4)")
    v.add_argument("--api-key", default=None, help="require this key on API calls (default: $TALKER_API_KEY)")
    v.add_argument("--api-keys-file", default=None, help="JSON file of API keys mapped to tenants (docs/security.md)")
    v.add_argument(
        "--allow-no-auth", action="store_true", help="serve beyond loopback without an API key (everyone is admin)"
    )
    v.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    v.set_defaults(func=_serve)
    t = sub.add_parser(
        "train-lipsync", parents=[common], help="train the audio -> mouth model on data from tools/lipsync_data.py"
    )
    t.add_argument("data_dir", help="folder with train/ and val/ shards (python -m tools.lipsync_data DATA_DIR)")
    t.add_argument("--out", required=True, help="model folder: config.json, model.safetensors, checkpoint, report")
    t.add_argument("--epochs", type=int, default=20, help="passes over the training data (default 20)")
    t.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default 0.002, cosine decay)")
    t.add_argument("--batch-frames", type=int, default=6000, help="padded frames per batch (default 6000)")
    t.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_train_lipsync)
    from talker.cli_persona import add_persona_parser

    add_persona_parser(sub)
    from talker.cli_motionstats import add_motion_stats_parser

    add_motion_stats_parser(sub)
    return ap


@contextlib.contextmanager
def native_stderr_hidden() -> Iterator[None]:
    """Send what native libraries write to file descriptor 2 (mediapipe's absl and TF Lite lines, which no
    setting turns off) to the null device, while Python's ``sys.stderr`` (progress bars, errors) keeps the
    real stderr. Restored on exit."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real file descriptor 2 (an embedding host): leave it alone
        yield
        return
    old_stderr = sys.stderr
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="backslashreplace")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = old_stderr
        os.dup2(saved, 2)
        os.close(saved)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet = not args.verbose
    if quiet:
        quiet_third_party_logs()
    # the server's logs and its render processes' tracebacks go to stderr: never hidden
    hide = quiet and args.command != "serve"
    with native_stderr_hidden() if hide else contextlib.nullcontext():
        try:
            return int(args.func(args))
        except (ValueError, TextError, OSError, RuntimeError) as e:
            print(f"talker: error: {e}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
