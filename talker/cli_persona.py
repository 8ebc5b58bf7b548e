"""``talker persona ...``: create, list, show, delete and render personas.

``add_persona_parser(subparsers)`` registers the command on talker's main parser; ``main`` runs it
alone (``python -m talker.cli_persona persona list``). Personas live in the data folder
(``--data-dir``, default ``$TALKER_DATA_DIR`` or ``~/.local/share/talker``), shared with ``talker serve``;
with ``$TALKER_DATABASE_URL`` their records are in that PostgreSQL database, as the server's are.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from talker.cli_speak import framing_arg
from talker.paths import ENV_DATA_DIR, user_data_dir


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir) if args.data_dir else user_data_dir()


def _store(args: argparse.Namespace, create: bool = True) -> Any:
    """The persona store; reading commands do not create a data folder where there is none."""
    from talker.db import database_url_from_env
    from talker.persona import DB_NAME, PersonaNotFound, PersonaStore

    d = _data_dir(args)
    url = database_url_from_env()
    if not create and url is None and not (d / DB_NAME).is_file():
        if getattr(args, "id", None):
            raise PersonaNotFound(f"no persona with id {args.id!r} in {d} (no personas there)")
        return None
    return PersonaStore(d, url)


def _print_persona(p: Any) -> None:
    from talker.points import format_points

    print(f"id          {p.id}")
    print(f"name        {p.name}")
    if p.description:
        print(f"description {p.description}")
    params = ", ".join(f"{k}={v}" for k, v in p.voice_params.items() if v is not None)
    print(f"voice       {p.voice_id}" + (f" ({params})" if params else ""))
    face = f"{p.face_path} [{p.face_source}]"
    if p.face_points is not None:
        face += f" points {format_points(p.face_points)}"
    print(f"face        {face}")
    print(f"expression  {p.expression} {p.intensity:g}; idle {p.idle}")
    key = f", key from ${p.chat.api_key_env}" if p.chat.api_key_env else ""
    print(f"chat        {p.chat.model} at {p.chat.base_url}{key}")


def _create(args: argparse.Namespace) -> int:
    from talker.chat import ChatSettings
    from talker.persona import AudioVoiceBank, PersonaMaker

    if not args.description and not args.image:
        raise ValueError("persona create needs --description, --image, or both")
    generator = None
    if args.facegen_model or os.environ.get("TALKER_FACEGEN_MODEL"):
        from talker.facegen import FaceGenerator

        model, cn, device = args.facegen_model, args.facegen_controlnet, args.facegen_device

        def generator() -> FaceGenerator:
            return FaceGenerator(model, cn, device=device)

    voice_params: dict[str, Any] = {}
    if args.rate is not None:
        voice_params["rate"] = args.rate
    if args.pitch is not None:
        voice_params["pitch_semitones"] = args.pitch
    chat = None
    if any(v is not None for v in (args.chat_base_url, args.chat_model, args.chat_api_key_env, args.system_prompt)):
        base = ChatSettings()
        chat = ChatSettings(
            base_url=args.chat_base_url or base.base_url,
            model=args.chat_model or base.model,
            api_key_env=args.chat_api_key_env if args.chat_api_key_env is not None else base.api_key_env,
            system_prompt=args.system_prompt or "",
        )
    maker = PersonaMaker(voices=AudioVoiceBank(use_embeddings=not args.keywords), face_generator=generator)
    store = _store(args)
    created = store.create(
        args.description or "",
        args.image,
        args.points,
        args.name,
        maker=maker,
        voice_id=args.voice,
        voice_params=voice_params or None,
        expression=args.expression,
        intensity=args.intensity,
        idle=args.idle,
        chat=chat,
        seed=args.seed,
    )
    p = created.persona
    if created.voice_ranking:
        top = created.voice_ranking[: args.top]
        print(f"voice ranking for {p.description!r} (top {len(top)} of {len(created.voice_ranking)}):")
        for i, r in enumerate(top, 1):
            mark = "*" if r.voice_id == p.voice_id else " "
            print(f" {mark}{i:2d}. {r.score:6.3f}  {r.voice_id:<28} {r.summary[:90]}")
    if created.portrait_ranking:
        print("portrait ranking: " + ", ".join(f"{n} {s:.3f}" for n, s in created.portrait_ranking))
    for note in created.notes:
        print(note)
    print(f"created persona {p.id} in {store.root}")
    _print_persona(p)
    print(f'render it: talker persona render {p.id} --text "Hello there." --out {p.id}.mp4')
    return 0


def _list(args: argparse.Namespace) -> int:
    store = _store(args, create=False)
    personas = store.list() if store is not None else []
    if args.json:
        print(json.dumps([p.to_dict() for p in personas], indent=1))
        return 0
    if not personas:
        print(f"no personas in {_data_dir(args)}")
        return 0
    for p in personas:
        desc = f"  {p.description[:60]}" if p.description else ""
        print(f"{p.id}  {p.name[:32]:<32} {p.voice_id:<26}{desc}")
    return 0


def _show(args: argparse.Namespace) -> int:
    p = _store(args, create=False).get(args.id)
    if args.json:
        print(json.dumps(p.to_dict(), indent=1))
    else:
        _print_persona(p)
    return 0


def _delete(args: argparse.Namespace) -> int:
    from talker.persona import PersonaNotFound

    if not _store(args, create=False).delete(args.id):
        raise PersonaNotFound(f"no persona with id {args.id!r} in {_data_dir(args)}")
    print(f"deleted persona {args.id}")
    return 0


def _render(args: argparse.Namespace) -> int:
    from talker.persona import render_persona
    from talker.pipeline import RenderSettings
    from talker.portrait import parse_size

    persona = _store(args, create=False).get(args.id)
    if args.reply_to:
        text = _chat_reply(persona, args.reply_to, args.quiet)
    elif args.text_file:
        try:
            text = Path(args.text_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"cannot read text file {args.text_file}: {e}") from e
    else:
        text = str(args.text)
    if args.fps <= 0 or args.fps > 60:
        raise ValueError(f"--fps must be between 1 and 60, got {args.fps}")
    size = None if args.size == "source" else parse_size(args.size)
    settings = RenderSettings(fps=args.fps, size=size, seed=args.seed, framing=args.framing)
    result = render_persona(persona, text, args.out, settings)
    if not args.quiet:
        t = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings_s.items())
        print(f"wrote {result.path} ({result.n_frames} frames, {result.duration_s:.2f} s) as {persona.name}; {t}")
    return 0


def _chat_reply(persona: Any, message: str, quiet: bool) -> str:
    """Ask the persona's chat endpoint; print sentences as they complete; return the whole reply."""
    from talker.chat import ChatClient, iter_sentences

    client = ChatClient(persona.chat)
    sentences = []
    for s in iter_sentences(client.stream(message)):
        sentences.append(s)
        if not quiet:
            print(f"{persona.name}: {s}", flush=True)
    if not sentences:
        raise ValueError(f"the chat endpoint {client.url} gave an empty reply")
    return " ".join(sentences)


def add_persona_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``persona`` (create, list, show, delete, render) to talker's subcommands; returns its parser."""
    p = subparsers.add_parser("persona", help="create, list, show, delete and render personas (face + voice + manner)")
    p.add_argument(
        "--data-dir", default=None, help=f"personas folder (default: ${ENV_DATA_DIR} or ~/.local/share/talker)"
    )
    sub = p.add_subparsers(dest="persona_command", required=True)

    c = sub.add_parser("create", help="a persona from a description and/or an image")
    c.add_argument("--description", "-d", default=None, help='who it is, e.g. "a cheerful old sea captain"')
    c.add_argument("--image", default=None, help="face image (default: generated or a bundled portrait)")
    c.add_argument(
        "--points",
        default=None,
        help="five points 'x,y;x,y;x,y;x,y;x,y' (right eye, left eye, nose tip, right and left mouth corner, "
        "subject's sides, image pixels) for faces no detector finds: cartoons, animals, objects",
    )
    c.add_argument("--name", default=None, help="display name (default: from the description or file name)")
    c.add_argument("--voice", default=None, help="voice id (default: chosen from the description), e.g. piper:joe")
    c.add_argument("--rate", type=float, default=None, help="speech rate factor (default: from the description)")
    c.add_argument("--pitch", type=float, default=None, help="pitch shift in semitones (-12..12)")
    c.add_argument(
        "--expression",
        default=None,
        choices=["neutral", "happy", "sad", "angry", "surprised"],
        help="expression kept while speaking (default: from the description)",
    )
    c.add_argument("--intensity", type=float, default=None, help="expression strength 0..1.5")
    c.add_argument("--idle", default=None, choices=["calm", "neutral", "lively"], help="head motion and blinking")
    c.add_argument("--chat-base-url", default=None, help="OpenAI-compatible API root (default Ollama's, .../v1)")
    c.add_argument("--chat-model", default=None, help="chat model name")
    c.add_argument("--chat-api-key-env", default=None, help="NAME of the environment variable holding the API key")
    c.add_argument("--system-prompt", default=None, help="chat instructions (default: from name and description)")
    c.add_argument("--facegen-model", default=None, help="local diffusers folder (default $TALKER_FACEGEN_MODEL)")
    c.add_argument("--facegen-controlnet", default=None, help="face-landmark ControlNet folder, if separate")
    c.add_argument("--facegen-device", default="cpu", help="torch device for face generation (default cpu)")
    c.add_argument("--seed", type=int, default=0, help="face generation seed")
    c.add_argument("--keywords", action="store_true", help="rank voices by keywords only (no embedding model)")
    c.add_argument("--top", type=int, default=8, help="voice ranking lines to print (default 8)")
    c.set_defaults(func=_guarded(_create))

    ls = sub.add_parser("list", help="all personas")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_guarded(_list))

    s = sub.add_parser("show", help="one persona")
    s.add_argument("id")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_guarded(_show))

    d = sub.add_parser("delete", help="remove a persona and its face image")
    d.add_argument("id")
    d.set_defaults(func=_guarded(_delete))

    r = sub.add_parser("render", help="render the persona speaking to an MP4")
    r.add_argument("id")
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="the words to speak")
    src.add_argument("--text-file", help="a UTF-8 text file with the words to speak")
    src.add_argument("--reply-to", help="ask the persona's chat endpoint this and speak its reply")
    r.add_argument("--out", default="persona.mp4", help="output MP4 (default persona.mp4)")
    r.add_argument("--size", default="512", help="512, 640x480 or 'source' (default 512)")
    framing_arg(r)
    r.add_argument("--fps", type=float, default=25.0)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=_guarded(_render))
    return p


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """The command with its expected failures (bad input, no face, unreachable chat endpoint, face generator
    not configured, TTS errors) reported on one line with exit status 2, whoever calls it."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(command(args))
        except (ValueError, OSError, KeyError, RuntimeError) as e:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else e
            print(f"talker: error: {msg}", file=sys.stderr)
            return 2

    run.__name__ = command.__name__
    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="talker", description="Talking-head personas.")
    sub = ap.add_subparsers(dest="command", required=True)
    add_persona_parser(sub)
    args = ap.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
