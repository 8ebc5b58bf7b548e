"""``talker render``, ``motion`` and ``voices``: words or a recording on a portrait, motion curves, the
voice bank."""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
        framing=args.framing,
    )
    bar = tqdm(total=0, unit="frame", desc="rendering", disable=args.quiet)

    def progress(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    from render.landmarks import make_detector

    if args.audio and (args.voice or args.language):
        raise ValueError("--voice and --language choose a TTS voice: not used with --audio")
    if not args.audio and (args.lipsync or args.lipsync_model or args.align):
        raise ValueError(
            "--align, --lipsync and --lipsync-model choose how a recording drives the mouth: use them with --audio"
        )
    if args.align and (args.lipsync or args.lipsync_model):
        raise ValueError("--align puts the lips on recognised phones, --lipsync on the learned model: choose one")
    voice = _voice(args)
    tts = None if voice is None else _make_tts(voice)
    lipsync = None
    if args.lipsync_model:
        from motion.lipsync import LipsyncModel

        lipsync = LipsyncModel.load(args.lipsync_model)
    face: Any = args.face
    if args.avatar:
        if args.face or args.points:
            raise ValueError("--avatar renders a video avatar: --face and --points choose a portrait instead")
        from talker.avatar_player import load_video_avatar

        face = load_video_avatar(args.avatar, args.data_dir)
    pipeline = Pipeline(tts=tts, detector=make_detector(args.landmarks), lipsync=lipsync)
    if args.audio:
        # the model for a recording alone (any language); pocketsphinx for a transcript or --align (English)
        align = args.align or (text is not None and not (args.lipsync or args.lipsync_model))
        result = pipeline.render_audio(args.audio, args.out, face, text, settings, progress, align=align)
    else:
        assert text is not None
        result = pipeline.render_text(text, args.out, face, settings, progress)
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


def add_speak_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``render``, ``motion`` and ``voices`` subcommands."""
    r = sub.add_parser("render", parents=[common], help="render a portrait speaking text (or a recording) to an MP4")
    src = r.add_mutually_exclusive_group()
    src.add_argument("--text", help="the words to speak (with --audio: the recording's transcript)")
    src.add_argument("--text-file", help="a UTF-8 text file with the words to speak (or the transcript)")
    r.add_argument("--audio", help="recorded speech to lip-sync instead of synthesizing (wav, mp3, flac, ogg, m4a)")
    r.add_argument(
        "--lipsync",
        action="store_true",
        help="with --audio: drive the mouth from the sound with the learned lip-sync model even with a transcript. "
        "Default: the model without --text (any language), phones force-aligned by pocketsphinx with it",
    )
    r.add_argument(
        "--align",
        action="store_true",
        help="with --audio and no --text: lips on phones from pocketsphinx's English recognition instead of the "
        "lip-sync model (English speech only; about 1.5x real time)",
    )
    r.add_argument(
        "--lipsync-model", default=None, help="with --audio: drive the mouth with this lip-sync model folder"
    )
    r.add_argument("--face", help="portrait image (default: the bundled public-domain portrait)")
    r.add_argument(
        "--avatar",
        default=None,
        help="a video avatar's name (talker avatar create) instead of a portrait: its clip plays with the mouth "
        "re-rendered, at the avatar's own size and frame rate",
    )
    r.add_argument(
        "--data-dir", default=None, help="where --avatar is kept (default: $TALKER_DATA_DIR or ~/.local/share/talker)"
    )
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
    framing_arg(r)
    r.add_argument("--seed", type=int, default=0, help="seed for blinks and head motion (default 0)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--label", default=None, help="visible disclosure drawn on every frame, e.g. 'AI-generated'")
    r.add_argument(
        "--landmarks", default="mediapipe", help="landmark backend: mediapipe (default), dlib, or fan:MODEL_DIR"
    )
    _voice_args(r)
    _expression_args(r)
    r.set_defaults(func=_render)
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


def framing_arg(p: argparse.ArgumentParser) -> None:
    from talker.portrait import FRAMINGS

    p.add_argument(
        "--framing",
        default="bust",
        choices=FRAMINGS,
        help="bust: head and shoulders (default); head: closer; source: the whole picture",
    )
