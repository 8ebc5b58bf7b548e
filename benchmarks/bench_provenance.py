"""Provenance marks: cost, invisibility, robustness and false positives.

    python -m benchmarks.bench_provenance [--clips N] [--out DIR]

Pixels: 2 s clips of real talking-head videos (``../shared/media/video``) are marked frame by frame,
written as H.264 (crf 20, as ``talker render`` writes them), then put through each transform and
checked. Audio: real speech recordings (``../shared/media/speech``) marked, then transformed.
False positives: the same media unmarked, plus random crops and rescales of every still image.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
CLIP_FRAMES = 50  # 2 s at 25 fps


def _frames(path: Path) -> Iterator[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            yield f.to_ndarray(format="rgb24")


def encode_h264(frames: list[np.ndarray], bitrate: int | None = None, crf: int = 20) -> bytes:
    """Frames (RGB or grey uint8) as an H.264 MP4 in memory: at ``bitrate`` bit/s, or at ``crf``."""
    import av

    buf = io.BytesIO()
    h, w = frames[0].shape[:2]
    with av.open(buf, mode="w", format="mp4") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        if bitrate:
            s.bit_rate = bitrate
            s.options = {"preset": "veryfast"}
        else:
            s.options = {"crf": str(crf), "preset": "veryfast"}
        for i, img in enumerate(frames):
            fmt = "gray" if img.ndim == 2 else "rgb24"
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format=fmt)
            vf.pts, vf.time_base = i, Fraction(1, 25)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return buf.getvalue()


def decode_video(data: bytes) -> list[np.ndarray]:
    import av

    with av.open(io.BytesIO(data), mode="r") as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _even(x: int) -> int:
    return x - x % 2


def resize_half(frames: list[np.ndarray]) -> list[np.ndarray]:
    import cv2

    h, w = frames[0].shape[:2]
    return [cv2.resize(f, (_even(w // 2), _even(h // 2)), interpolation=cv2.INTER_AREA) for f in frames]


def _resize(frames: list[np.ndarray], s: float) -> list[np.ndarray]:
    import cv2

    h, w = frames[0].shape[:2]
    return [cv2.resize(f, (_even(round(w * s)), _even(round(h * s))), interpolation=cv2.INTER_AREA) for f in frames]


def crop10(frames: list[np.ndarray]) -> list[np.ndarray]:
    h, w = frames[0].shape[:2]
    dy, dx = h // 10, w // 10
    return [f[dy : dy + _even(h - 2 * dy), dx : dx + _even(w - 2 * dx)] for f in frames]


def grey(frames: list[np.ndarray]) -> list[np.ndarray]:
    import cv2

    return [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]


VIDEO_TRANSFORMS: dict[str, Callable[[list[np.ndarray]], list[np.ndarray]]] = {
    "none (crf 20 file)": lambda f: f,
    "h264 500 kbit/s": lambda f: decode_video(encode_h264(f, bitrate=500_000)),
    "resize to half": resize_half,
    "crop 10% per side": crop10,
    "grayscale": grey,
    "resize to 70%": lambda f: _resize(f, 0.7),
    "resize to 94%": lambda f: _resize(f, 480 / 512),
    "resize to 140%": lambda f: _resize(f, 1.4),
    "all four": lambda f: decode_video(encode_h264(grey(resize_half(crop10(f))), bitrate=500_000)),
}


def audio_mp3(x: np.ndarray, sr: int, bitrate: int = 64_000) -> tuple[np.ndarray, int]:
    """Mono float32 through an MP3 encoder at ``bitrate`` and back."""
    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp3") as c:
        s = c.add_stream("libmp3lame", rate=sr)
        s.layout = "mono"
        s.bit_rate = bitrate
        n = 0
        for i in range(0, len(x), 1152):
            chunk = x[i : i + 1152].astype(np.float32).reshape(1, -1)
            fr = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            fr.sample_rate, fr.pts, fr.time_base = sr, n, Fraction(1, sr)
            n += chunk.shape[1]
            for p in s.encode(fr):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    from talker.provenance import read_audio

    return read_audio(buf.getvalue())


def audio_resample16(x: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
    from scipy.signal import resample_poly

    g = np.gcd(sr, 16000)
    return resample_poly(x, 16000 // g, sr // g).astype(np.float32), 16000


AUDIO_TRANSFORMS: dict[str, Callable[[np.ndarray, int], tuple[np.ndarray, int]]] = {
    "none": lambda x, sr: (x, sr),
    "mp3 64 kbit/s": audio_mp3,
    "resample to 16 kHz": audio_resample16,
    "resample 16 kHz + mp3 64 kbit/s": lambda x, sr: audio_mp3(*audio_resample16(x, sr)),
}


def _clips(n: int) -> list[list[np.ndarray]]:
    """``n`` 2 s clips (RGB frames) cut from the real videos, overlapping when needed."""
    videos = [list(_frames(p)) for p in sorted((MEDIA / "video").glob("*.mp4"))]
    out: list[list[np.ndarray]] = []
    k = 0
    while len(out) < n:
        v = videos[k % len(videos)]
        start = (k // len(videos)) * 17 % max(1, len(v) - CLIP_FRAMES)
        out.append(v[start : start + CLIP_FRAMES])
        k += 1
    return out


def _stills() -> list[np.ndarray]:
    import cv2

    out = []
    for p in sorted(MEDIA.rglob("*")):
        if p.suffix.lower() in (".png", ".jpg", ".jpeg"):
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is not None:
                out.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    return out


def bench_pixels(n_clips: int, out: Path | None) -> str:
    from render.watermark import PixelMarker, detect_pixels

    clips = _clips(n_clips)
    marker = PixelMarker(0x1234ABCD)
    img = clips[0][0]
    t0 = time.perf_counter()
    for _ in range(200):
        marker.mark(img)
    rgb_ms = (time.perf_counter() - t0) / 200 * 1e3
    y = np.ascontiguousarray(img[..., 1])
    t0 = time.perf_counter()
    for _ in range(200):
        marker.mark(y, out=y)
    y_ms = (time.perf_counter() - t0) / 200 * 1e3
    marked = [[marker.mark(f) for f in c] for c in clips]
    psnr = [_psnr(a, b) for c, m in zip(clips, marked, strict=True) for a, b in zip(c, m, strict=True)]
    print(f"embed 512x512: RGB {rgb_ms:.2f} ms/frame, I420 luma {y_ms:.2f} ms/frame")
    print(f"PSNR marked vs unmarked: min {min(psnr):.2f} dB, mean {np.mean(psnr):.2f} dB")
    if out is not None:
        _crops(clips[0][0], marked[0][0], out)
    files = [decode_video(encode_h264(m)) for m in marked]
    plain = [decode_video(encode_h264(c)) for c in clips]
    print(f"{'transform':34} {'found':>8} {'id read':>8} {'min z':>6} {'FP':>6} {'max z':>6}  verify x real time")
    summary = [f"pixels: embed {rgb_ms:.2f} ms/frame RGB, {y_ms:.2f} I420; PSNR >= {min(psnr):.1f} dB"]
    for name, tf in VIDEO_TRANSFORMS.items():
        found = ids = 0
        zs, fz = [], []
        t_verify = 0.0
        for m, p in zip(files, plain, strict=True):
            tm = tf(m)
            t0 = time.perf_counter()
            d = detect_pixels(tm)
            t_verify += time.perf_counter() - t0
            found += d.found
            ids += d.output_id == marker.output_id
            zs.append(d.z)
            dp = detect_pixels(tf(p))
            fz.append(dp.z)
            if dp.found:
                print(f"  false positive: {dp}")
        speed = len(files) * CLIP_FRAMES / 25 / t_verify
        fp = sum(z >= 6.5 for z in fz)
        print(f"{name:34} {found:>4}/{len(files):<3} {ids:>4}/{len(files):<3} {min(zs):6.1f} "
              f"{fp:>6} {max(fz):6.1f}  {speed:.0f}x")  # fmt: skip
        summary.append(f"{name}: found {found}/{len(files)}, id {ids}, min z {min(zs):.1f}, FP {fp}")
    return ", ".join(summary)


def bench_false_positives(n_crops: int) -> str:
    """Unmarked stills: each whole, and ``n_crops`` random crops and rescales of each."""
    import cv2

    from render.watermark import detect_pixels

    rng = np.random.default_rng(0)
    zs = []
    hits = 0
    for img in _stills():
        h, w = img.shape[:2]
        views = [img]
        for _ in range(n_crops):
            ch, cw = int(h * rng.uniform(0.4, 1)), int(w * rng.uniform(0.4, 1))
            y0, x0 = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            v = img[y0 : y0 + ch, x0 : x0 + cw]
            s = rng.uniform(0.5, 1.5)
            views.append(cv2.resize(v, (max(64, int(cw * s)), max(64, int(ch * s)))))
        for v in views:
            d = detect_pixels([v])
            zs.append(d.z)
            hits += d.found
    line = f"unmarked stills and crops: {hits} false positives in {len(zs)}; max z {max(zs):.2f}"
    print(line)
    return line


def bench_audio() -> str:
    from audio.watermark import AudioMarker, detect_audio
    from talker.provenance import read_audio

    recs = []
    for p in sorted((MEDIA / "speech").glob("*.wav")) + sorted((MEDIA / "groundtruth").glob("*.wav")):
        x, sr = read_audio(p.read_bytes())
        recs.append((p.name, x, sr))
    snrs = []
    marked = []
    t_embed = 0.0
    total_s = 0.0
    for _, x, sr in recs:
        t0 = time.perf_counter()
        m = AudioMarker(0x1234ABCD, sr)
        step = sr // 25  # as the MP4 sink sees it: one video frame's slice at a time
        y = np.concatenate([m(x[i : i + step]) for i in range(0, len(x), step)])
        t_embed += time.perf_counter() - t0
        total_s += len(x) / sr
        snrs.append(10 * np.log10(np.sum(x**2) / np.sum((y - x) ** 2)))
        marked.append(y)
    head = f"audio: embed {total_s / t_embed:.0f}x real time; SNR min {min(snrs):.1f} dB, mean {np.mean(snrs):.1f} dB"
    print(head)
    summary = [head]
    print(f"{'transform':34} {'found':>8} {'id read':>8} {'min z':>6} {'FP':>6} {'max z':>6}")
    for name, tf in AUDIO_TRANSFORMS.items():
        found = ids = fp = 0
        zs, fz = [], []
        for (_, x, sr), y in zip(recs, marked, strict=True):
            d = detect_audio(*tf(y, sr))
            found += d.found
            ids += d.output_id == 0x1234ABCD
            zs.append(d.z)
            dp = detect_audio(*tf(x, sr))
            fp += dp.found
            fz.append(dp.z)
        print(f"{name:34} {found:>4}/{len(recs):<3} {ids:>4}/{len(recs):<3} {min(zs):6.1f} {fp:>6} {max(fz):6.1f}")
        summary.append(f"{name}: found {found}/{len(recs)}, id {ids}, FP {fp}")
    return ", ".join(summary)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def _crops(plain: np.ndarray, marked: np.ndarray, out: Path) -> None:
    """4x crops of the cheek: unmarked, marked, and the difference amplified 20x around grey."""
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    h, w = plain.shape[:2]
    y0, x0 = int(h * 0.45), int(w * 0.3)
    sl = (slice(y0, y0 + 96), slice(x0, x0 + 96))
    diff = np.clip(128 + 20 * (marked[sl].astype(np.float32) - plain[sl]), 0, 255).astype(np.uint8)
    for name, im in (("plain", plain[sl]), ("marked", marked[sl]), ("diff20x", diff)):
        big = cv2.resize(im, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(out / f"cheek_{name}.png"), cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
    print(f"wrote 4x cheek crops to {out}")


def main(argv: list[str] | None = None) -> None:
    from benchmarks.results import command_line, record

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=20, help="2 s video clips per transform")
    ap.add_argument("--crops", type=int, default=20, help="random crops of each unmarked still")
    ap.add_argument("--out", type=Path, default=None, help="folder for the 4x crops (PNG)")
    ap.add_argument("--only", choices=("pixels", "stills", "audio"), default=None)
    ap.add_argument("--no-record", action="store_true", help="do not append the figures to results.tsv")
    a = ap.parse_args(argv)
    lines = []
    if a.only in (None, "pixels"):
        lines.append(bench_pixels(a.clips, a.out))
    if a.only in (None, "stills"):
        lines.append(bench_false_positives(a.crops))
    if a.only in (None, "audio"):
        lines.append(bench_audio())
    if not a.no_record:
        print(f"recorded in {record(command_line('benchmarks.bench_provenance', argv), chr(10).join(lines))}")


if __name__ == "__main__":
    main()
