"""Command line: parse, build the settings, call the library. Each group of subcommands is a module with
an ``add_*_parsers(sub, common)`` that registers them: ``cli_speak`` (``render``, ``motion``, ``voices``),
``cli_video`` (``dub``, ``drive``), ``cli_tools`` (``verify``, ``bench``, ``sheet``, ``train-lipsync``),
``cli_persona`` (``persona``), ``cli_avatar`` (``avatar``), ``cli_motionstats`` (``motion-stats``);
``serve`` is here, at the edge where the server starts."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator

from audio.text import TextError


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
        ray_address=args.ray,
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
    from talker.cli_avatar import add_avatar_parser
    from talker.cli_persona import add_persona_parser
    from talker.cli_speak import add_speak_parsers
    from talker.cli_tools import add_tool_parsers
    from talker.cli_video import add_video_parsers

    add_speak_parsers(sub, common)
    add_tool_parsers(sub, common)
    add_video_parsers(sub, common)
    add_avatar_parser(sub, common)
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
    v.add_argument(
        "--ray",
        default=None,
        metavar="auto|ADDRESS",
        help="run render and dub jobs on a Ray cluster (default: $TALKER_RAY_ADDRESS, else in this process)",
    )
    v.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    v.set_defaults(func=_serve)
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
