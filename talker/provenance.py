"""Provenance: every output is marked as synthetic, and ``talker verify`` finds the marks.

Three marks, each found without the others:

* an invisible pattern in the pixels of every frame (``render.watermark``), carrying a 64-bit payload
  (talker tag, a random id per output, CRC);
* an inaudible spread-spectrum pattern in the speech audio (``audio.watermark``), same payload;
* a C2PA manifest in every MP4 (``trainedAlgorithmicMedia``, the software version), signed with the
  deployer's certificate (``TALKER_C2PA_CERT`` chain + ``TALKER_C2PA_KEY``) or, without one, with a
  certificate issued at first use by a local CA kept in the data folder.

``TALKER_PROVENANCE=off`` turns every mark off (see docs/provenance.md for what that means).
"""

from __future__ import annotations

import datetime
import io
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from audio.watermark import AudioMarker, Detection, detect_audio, new_output_id
from render.watermark import PixelDetector, PixelMarker
from talker import __version__
from talker.paths import user_data_dir

log = logging.getLogger(__name__)

ENV_PROVENANCE = "TALKER_PROVENANCE"  # "off" disables every mark
ENV_CERT = "TALKER_C2PA_CERT"  # PEM chain: signing certificate first, then its issuers
ENV_KEY = "TALKER_C2PA_KEY"  # PEM private key of the signing certificate
SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
VERIFY_MAX_S = 20.0  # seconds of video and audio read by ``verify``
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
MIME = {".mp4": "video/mp4", ".m4a": "audio/mp4", ".mov": "video/quicktime", ".png": "image/png",
        ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".wav": "audio/wav", ".mp3": "audio/mpeg",
        ".webp": "image/webp"}  # fmt: skip


class UnreadableMedia(ValueError):
    """The file is no image, video or audio that can be decoded."""


def marks_enabled() -> bool:
    """False only when the deployer set ``TALKER_PROVENANCE=off``."""
    return os.environ.get(ENV_PROVENANCE, "on").strip().lower() not in ("off", "0", "false", "no")


@dataclass
class Marker:
    """The marks of one output: pixels and audio share one random id."""

    output_id: int = field(default_factory=new_output_id)

    def __post_init__(self) -> None:
        self.pixels = PixelMarker(self.output_id)
        self._audio: AudioMarker | None = None

    def audio(self, samples: np.ndarray, sample_rate: int, start: int | None = None) -> np.ndarray:
        """The next chunk of this output's audio (float32), marked; ``start``: its first sample's
        index in the output when chunks are not contiguous."""
        if self._audio is None or self._audio.sample_rate != sample_rate:
            self._audio = AudioMarker(self.output_id, sample_rate)
        return self._audio(samples, start)


class Label:
    """A visible disclosure (e.g. "AI-generated") drawn in the bottom-left corner of every frame:
    light text on a dark box, scaled to the frame, drawn once per frame size."""

    def __init__(self, text: str) -> None:
        text = " ".join(text.split())
        if not text or len(text) > 80 or not text.isascii():
            raise ValueError(f"label {text!r}: give 1-80 printable ASCII characters")
        self.text = text
        self._cache: dict[tuple[int, ...], tuple[tuple[slice, slice], np.ndarray]] = {}

    def _patch(self, shape: tuple[int, ...]) -> tuple[tuple[slice, slice], np.ndarray]:
        import cv2

        got = self._cache.get(shape)
        if got is None:
            h, w = shape[:2]
            scale = max(0.35, min(h, w) / 900)
            thick = max(1, round(scale * 2))
            (tw, th), base = cv2.getTextSize(self.text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
            pad = max(3, th // 3)
            bw, bh = min(w, tw + 2 * pad), min(h, th + base + 2 * pad)
            box = np.full((bh, bw), 24, np.uint8)
            cv2.putText(box, self.text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (235,), thick, cv2.LINE_AA)
            where = (slice(h - bh - pad, h - pad), slice(pad, pad + bw))
            if len(shape) == 3:
                box = np.repeat(box[:, :, None], shape[2], axis=2)
            got = (where, box)
            self._cache[shape] = got
        return got

    def draw(self, image: np.ndarray) -> np.ndarray:
        """``image`` (H x W luma or H x W x 3, uint8) with the label drawn on it, in place."""
        where, box = self._patch(image.shape)
        image[where] = box
        return image


# ---------------------------------------------------------------- C2PA


@dataclass(frozen=True)
class Manifest:
    """``state``: "valid" (signature and content hashes check), "invalid" or "absent"; ``trusted``:
    whether the signer chains to a trust anchor the reader knows (a local CA never does)."""

    state: Literal["valid", "invalid", "absent"]
    trusted: bool = False
    generator: str = ""
    source_type: str = ""
    detail: str = ""


def signing_credentials(data_dir: Path | None = None) -> tuple[bytes, bytes]:
    """(PEM certificate chain, PEM private key): the deployer's, else the local ones (made once)."""
    cert, key = os.environ.get(ENV_CERT), os.environ.get(ENV_KEY)
    if cert and key:
        return Path(cert).read_bytes(), Path(key).read_bytes()
    folder = (data_dir or user_data_dir()) / "c2pa"
    chain, pkey = folder / "chain.pem", folder / "signer.key"
    if not (chain.exists() and pkey.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        c, k = _local_credentials()
        tmp = pkey.with_suffix(".tmp")
        tmp.write_bytes(k)
        tmp.chmod(0o600)
        tmp.replace(pkey)
        chain.write_bytes(c)
        log.info("made a local C2PA signing certificate in %s (untrusted outside this machine)", folder)
    return chain.read_bytes(), pkey.read_bytes()


def _local_credentials() -> tuple[bytes, bytes]:
    """A local CA and an ES256 claim-signing certificate it issued (c2pa refuses self-signed leaves)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=3650)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "talker (local, untrusted)")])  # fmt: skip

    def usage(sign: bool, ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                             encipher_only=False, decipher_only=False)  # fmt: skip

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(name("talker local CA")).issuer_name(name("talker local CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(False, True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder().subject_name(name("talker signer")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(True, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    chain = leaf.public_bytes(pem) + ca.public_bytes(pem)
    pkey = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return chain, pkey


def sign_mp4(path: str | Path, output_id: int | None = None, data_dir: Path | None = None) -> None:
    """Embed a signed C2PA manifest in the MP4 at ``path`` (rewritten in place)."""
    try:
        import c2pa
    except ImportError as e:
        raise RuntimeError("C2PA signing needs c2pa-python: pip install c2pa-python") from e
    path = Path(path)
    chain, pkey = signing_credentials(data_dir)
    agent = {"name": "talker", "version": __version__}
    created: dict[str, Any] = {"action": "c2pa.created", "digitalSourceType": SOURCE_TYPE, "softwareAgent": agent}
    if output_id is not None:
        created["parameters"] = {"talker.output_id": f"{output_id:08x}"}
    manifest = {
        "claim_generator_info": [agent],
        "title": path.name,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [created]}}],
    }
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", chain, pkey, None))
    builder = c2pa.Builder(json.dumps(manifest))
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".c2pa", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w+b") as dst, path.open("rb") as src:
            builder.sign(signer, "video/mp4", src, dst)
        shutil.copymode(path, tmp)  # (mkstemp makes the file private; the signed video keeps the original's mode)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
        builder.close()
        signer.close()


def read_manifest(path: Path) -> Manifest:
    """The C2PA manifest's state in the file at ``path``."""
    try:
        import c2pa
    except ImportError:
        return Manifest("absent", detail="c2pa-python is not installed: pip install c2pa-python")
    mime = MIME.get(path.suffix.lower())
    if mime is None:
        return Manifest("absent", detail=f"no C2PA reader for {path.suffix or 'this file'}")
    try:
        with path.open("rb") as f, c2pa.Reader(mime, f) as r:
            state = str(r.get_validation_state() or "")
            results = r.get_validation_results() or {}
            store = json.loads(r.json())
    except c2pa.C2paError as e:
        if "ManifestNotFound" in type(e).__name__ or "no JUMBF" in str(e):
            return Manifest("absent")
        return Manifest("invalid", detail=str(e))
    failures = [f.get("code", "") for f in (results.get("activeManifest") or {}).get("failure", [])]
    active = store.get("manifests", {}).get(store.get("active_manifest", ""), {})
    gen = ", ".join(f"{g.get('name')} {g.get('version', '')}".strip() for g in active.get("claim_generator_info", []))
    src = ""
    for a in active.get("assertions", []):
        for act in a.get("data", {}).get("actions", []) if a.get("label", "").startswith("c2pa.actions") else []:
            src = act.get("digitalSourceType", src) or src
    trusted = state == "Trusted"
    if state in ("Valid", "Trusted"):
        untrusted = [f for f in failures if f != "signingCredential.untrusted"]
        if not untrusted:
            return Manifest("valid", trusted, gen, src)
    return Manifest("invalid", False, gen, src, detail=", ".join(failures) or state)


# ---------------------------------------------------------------- verify


@dataclass
class Report:
    """What ``verify`` found in one file; ``found`` when any mark is there."""

    path: str
    kind: Literal["video", "image", "audio"]
    pixels: Detection | None
    audio: Detection | None
    manifest: Manifest

    @property
    def found(self) -> bool:
        marks = [d for d in (self.pixels, self.audio) if d is not None]
        return any(d.found for d in marks) or self.manifest.state != "absent"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for k in ("pixels", "audio"):
            d = getattr(self, k)
            if d is not None:
                out[k]["output_id"] = None if d.output_id is None else f"{d.output_id:08x}"
        out["found"] = self.found
        return out


def verify(path: str | Path, max_s: float = VERIFY_MAX_S, max_pixels: int | None = None) -> Report:
    """Look for every mark in an image, video or audio file (the first ``max_s`` seconds).

    Raises ``UnreadableMedia`` when the file cannot be decoded or its frames have more than
    ``max_pixels`` pixels."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableMedia(f"{path}: no such file")
    if path.suffix.lower() in IMAGE_EXTS:
        grey = _read_image(path, max_pixels)
        det = PixelDetector()
        det.add(grey)
        return Report(str(path), "image", det.result(), None, read_manifest(path))
    pixels, audio = _read_av(path, max_s, max_pixels)
    return Report(str(path), "video" if pixels is not None else "audio", pixels, audio, read_manifest(path))


def _read_image(path: Path, max_pixels: int | None) -> np.ndarray:
    import cv2

    if max_pixels is not None:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                w, h = im.size
        except (UnidentifiedImageError, OSError) as e:
            raise UnreadableMedia(f"{path.name}: not an image that can be read") from e
        _check_size(w, h, max_pixels)
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise UnreadableMedia(f"{path}: not an image that can be read")
    return img


def _check_size(w: int, h: int, max_pixels: int | None) -> None:
    if max_pixels is not None and w * h > max_pixels:
        raise UnreadableMedia(f"{w}x{h} frames are over the limit of {max_pixels} pixels")


def _read_av(path: Path, max_s: float, max_pixels: int | None) -> tuple[Detection | None, Detection | None]:
    import av

    try:
        c = av.open(str(path))
    except (av.FFmpegError, OSError) as e:
        raise UnreadableMedia(f"{path}: not a video or audio file that can be read ({e})") from e
    with c:
        if not c.streams.video and not c.streams.audio:
            raise UnreadableMedia(f"{path}: no video or audio stream")
        pixels = audio = None
        try:
            if c.streams.video:
                v = c.streams.video[0].codec_context
                _check_size(v.width, v.height, max_pixels)
                c.streams.video[0].thread_type = "AUTO"  # frame-parallel decoding
                det = PixelDetector()
                for f in c.decode(video=0):
                    det.add(_luma(f))
                    if f.time is not None and f.time >= max_s:
                        break
                if det.frames:
                    pixels = det.result()
            has_audio = bool(c.streams.audio)
        except av.FFmpegError as e:
            raise UnreadableMedia(f"{path}: cannot decode ({e})") from e
    if has_audio:
        try:
            with av.open(str(path)) as c:
                x, sr = _decode_audio(c, max_s)
            audio = detect_audio(x, sr) if len(x) else None
        except av.FFmpegError as e:
            raise UnreadableMedia(f"{path}: cannot decode ({e})") from e
    if pixels is None and audio is None:
        raise UnreadableMedia(f"{path}: no frame or sample could be decoded")
    return pixels, audio


def _luma(frame: Any) -> np.ndarray:
    """A decoded frame's luma (H x W uint8): the Y plane itself for YUV frames, no conversion."""
    if frame.format.name.startswith(("yuv", "yuvj", "nv12", "gray")):
        y = frame.planes[0]
        return np.frombuffer(memoryview(y), np.uint8).reshape(-1, y.line_size)[: frame.height, : frame.width]
    return np.asarray(frame.to_ndarray(format="gray"))


def _decode_audio(c: Any, max_s: float) -> tuple[np.ndarray, int]:
    """The first audio stream of an open container as mono float32, up to ``max_s`` seconds."""
    import av

    stream = c.streams.audio[0]
    sr = int(stream.rate or stream.codec_context.sample_rate)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
    parts: list[np.ndarray] = []
    n = 0
    for frame in c.decode(stream):
        for out in resampler.resample(frame):
            a = out.to_ndarray().reshape(-1)
            parts.append(a)
            n += len(a)
        if n >= max_s * sr:
            break
    return (np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)), sr


def read_audio(data: bytes | str | Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples and their rate from an audio file (path or bytes)."""
    import av

    src: Any = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    try:
        with av.open(src) as c:
            if not c.streams.audio:
                raise UnreadableMedia("no audio stream")
            return _decode_audio(c, float("inf"))
    except av.FFmpegError as e:
        raise UnreadableMedia(f"cannot decode audio ({e})") from e
