"""``talker verify``, ``bench``, ``sheet`` and ``train-lipsync``: provenance, timings, contact sheets,
training."""

from __future__ import annotations

import argparse
import json


def _train_lipsync(args: argparse.Namespace) -> int:
    from motion.lipsync import LipsyncConfig
    from motion.lipsync_train import train

    report = train(
        args.data_dir,
        args.out,
        epochs=args.epochs,
        lr=args.lr,
        batch_frames=args.batch_frames,
        threads=args.threads,
        seed=args.seed,
        config=LipsyncConfig(lookahead=args.lookahead) if args.lookahead is not None else None,
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


def _sheet(args: argparse.Namespace) -> int:
    from talker.sheet import contact_sheet

    out = contact_sheet(args.faces, args.out, tile=args.tile)
    print(f"wrote {out}")
    return 0


def add_tool_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``verify``, ``bench``, ``sheet`` and ``train-lipsync`` subcommands."""
    ve = sub.add_parser(
        "verify", parents=[common], help="look for talker's provenance marks (watermark, C2PA) in a file"
    )
    ve.add_argument("file", help="video, image or audio file")
    ve.add_argument("--json", action="store_true", help="print the report as JSON")
    ve.add_argument("--seconds", type=float, default=20.0, help="how much of a video or audio to read (default 20)")
    ve.set_defaults(func=_verify)
    b = sub.add_parser("bench", parents=[common], help="time every stage on a ~10 s utterance")
    b.add_argument("--size", default="512")
    b.add_argument("--face", default=None)
    b.add_argument("--out", default=None, help="keep the rendered MP4 here")
    b.set_defaults(func=_bench)
    s = sub.add_parser(
        "sheet", parents=[common], help="contact sheet PNG of key poses (blink, vowels, bilabial, head turn)"
    )
    s.add_argument("faces", nargs="+", help="portrait images (one row each)")
    s.add_argument("--out", default="contact_sheet.png")
    s.add_argument("--tile", type=int, default=256, help="tile size in pixels")
    s.set_defaults(func=_sheet)
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
    t.add_argument(
        "--lookahead",
        type=int,
        default=None,
        choices=range(6),
        metavar="0..5",
        help="20 ms frames of audio heard after the predicted frame (default 2, the bundled model's; fewer: a "
        "live mouth sooner, less sure; a resumed run keeps its checkpoint's)",
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_train_lipsync)
