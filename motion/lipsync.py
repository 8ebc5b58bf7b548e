"""Learned audio -> mouth motion: a small causal network from log-mel frames to mouth channels.

Any voice in any language drives the mouth without phone timings. The network reads 50 log-mel frames
per second (``audio.mel``) and predicts, per frame, the mouth channels the phonetic generator would
produce from exact phone timings (``mouth_targets``) plus viseme posteriors. It is a stack of dilated
causal convolutions with a fixed look-ahead of ``lookahead`` frames: output frame j reads audio up to
``LOOKAHEAD_S`` (56 ms by default) after its centre. Each layer keeps its own past as state, so ``LipsyncStream``
fed audio in any chunking gives the frames ``LipsyncModel.predict`` gives on the whole file.

A model is a folder: ``config.json`` (architecture and feature normalisation) and ``model.safetensors``.
Loading is explicit (``LipsyncModel.load``). Inference runs in numpy (batch norm folded into the
convolutions); torch is imported only to build and train a network (``build_net``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audio.io import resample
from audio.mel import FRAME_RATE, HOP, LOG_FLOOR, N_MELS, SAMPLE_RATE, WIN, MelStream, log_mel
from audio.types import SILENCE, Phone
from motion.generator import mouth_curves
from motion.visemes import VISEMES, visemes_for

OUTPUTS: tuple[str, ...] = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthStretch", "mouthRollLower")
VISEME_CLASSES: tuple[str, ...] = tuple(VISEMES)
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "assets" / "lipsync"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
# mouth_curves returns jawOpen, funnel, pucker, stretch, rollLower, mouthClose: reordered to OUTPUTS
_CURVE_ORDER = (0, 5, 1, 2, 3, 4)
_TARGET_FPS = 25.0  # the closure plateaus of the targets are those of a 25 fps track


class LipsyncError(RuntimeError):
    """A lip-sync model folder is missing, incomplete or does not match its config."""


@dataclass(frozen=True)
class LipsyncConfig:
    """Architecture and input normalisation of a lip-sync model (saved as ``config.json``)."""

    n_mels: int = N_MELS
    channels: int = 96
    kernel: int = 3
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 1, 2, 4)
    lookahead: int = 2  # model frames (20 ms each) read after the frame being predicted
    outputs: tuple[str, ...] = OUTPUTS
    visemes: tuple[str, ...] = VISEME_CLASSES
    feature_mean: tuple[float, ...] = field(default_factory=lambda: (0.0,) * N_MELS)
    feature_std: tuple[float, ...] = field(default_factory=lambda: (1.0,) * N_MELS)
    frame_rate: float = FRAME_RATE

    def __post_init__(self) -> None:
        if self.n_mels != N_MELS or self.frame_rate != FRAME_RATE:
            raise LipsyncError(
                f"model expects {self.n_mels} mels at {self.frame_rate} fps; audio.mel gives {N_MELS} at {FRAME_RATE}"
            )
        if len(self.feature_mean) != self.n_mels or len(self.feature_std) != self.n_mels:
            raise LipsyncError(f"feature_mean and feature_std need {self.n_mels} values each")
        if self.lookahead < 0:
            raise LipsyncError(f"lookahead must be >= 0 frames, got {self.lookahead}")

    @property
    def lookahead_s(self) -> float:
        """Audio read after a frame's centre before the frame is final (seconds)."""
        return self.lookahead / self.frame_rate + (WIN / 2) / SAMPLE_RATE

    @property
    def receptive_frames(self) -> int:
        """Past frames (including the current one) that reach an output."""
        return 1 + (self.kernel - 1) * (1 + sum(self.dilations))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @staticmethod
    def from_json(text: str) -> LipsyncConfig:
        d = json.loads(text)
        for key in ("dilations", "outputs", "visemes", "feature_mean", "feature_std"):
            if key in d:
                d[key] = tuple(d[key])
        try:
            return LipsyncConfig(**d)
        except TypeError as e:
            raise LipsyncError(f"bad lip-sync config: {e}") from e


LOOKAHEAD_S = LipsyncConfig().lookahead_s


def mouth_targets(phones: Sequence[Phone], n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Training targets at the model frame rate from exact phone timings.

    Returns (channels (n_frames, len(OUTPUTS)) float32 in 0..1, viseme class index (n_frames,) int64);
    the channels are those of the phonetic generator (coarticulation, closures, pauses).
    """
    times = (np.arange(n_frames) + 0.5) / FRAME_RATE
    curves = mouth_curves(tuple(phones), times, _TARGET_FPS)[:, _CURVE_ORDER].astype(np.float32)
    vis = np.zeros(n_frames, np.int64)
    for p in phones:
        a = int(np.ceil(p.start_s * FRAME_RATE - 0.5))
        b = int(np.ceil(p.end_s * FRAME_RATE - 0.5))
        if b <= a or p.symbol == SILENCE:
            continue
        names = visemes_for(p.symbol)
        edges = np.linspace(a, b, len(names) + 1).round().astype(int)
        for v, lo, hi in zip(names, edges[:-1], edges[1:]):
            vis[max(lo, 0) : min(hi, n_frames)] = VISEME_CLASSES.index(v.name)
    return np.clip(curves, 0.0, 1.0), vis


@functools.lru_cache(maxsize=1)
def _torch() -> Any:
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is a dependency
        raise LipsyncError("the learned lip-sync model needs torch: pip install torch") from e
    return torch


@functools.lru_cache(maxsize=1)
def _net_class() -> Any:
    torch = _torch()
    nn = torch.nn

    class Block(nn.Module):  # type: ignore[misc,name-defined]
        """Dilated causal convolution -> norm -> GELU -> pointwise, added to its input."""

        def __init__(self, ch: int, kernel: int, dilation: int) -> None:
            super().__init__()
            self.context = (kernel - 1) * dilation
            self.conv = nn.Conv1d(ch, ch, kernel, dilation=dilation)
            self.norm = nn.BatchNorm1d(ch)
            self.pw = nn.Conv1d(ch, ch, 1)

        def forward(self, x: Any, cache: Any) -> tuple[Any, Any]:
            xin = torch.cat([cache, x], dim=2)
            h = self.pw(torch.nn.functional.gelu(self.norm(self.conv(xin))))
            return x + h, xin[:, :, xin.shape[2] - self.context :]

    class LipsyncNet(nn.Module):  # type: ignore[misc,name-defined]
        """(batch, n_mels, frames) normalised features -> (batch, outputs + visemes, frames) raw scores.

        Output frame i reads input frames <= i only; the look-ahead is a shift applied by the caller.
        """

        def __init__(self, cfg: LipsyncConfig) -> None:
            super().__init__()
            self.cfg = cfg
            self.inp = nn.Conv1d(cfg.n_mels, cfg.channels, cfg.kernel)
            self.blocks = nn.ModuleList([Block(cfg.channels, cfg.kernel, d) for d in cfg.dilations])
            self.head = nn.Conv1d(cfg.channels, len(cfg.outputs) + len(cfg.visemes), 1)
            silence = (np.full(cfg.n_mels, np.log10(LOG_FLOOR)) - np.array(cfg.feature_mean)) / np.array(
                cfg.feature_std
            )
            self.register_buffer("silence", torch.tensor(silence, dtype=torch.float32), persistent=False)

        def initial_state(self, batch: int) -> list[Any]:
            """Each layer's past before the start: silence features for the input, zeros inside."""
            k = self.cfg.kernel - 1
            first = self.silence[None, :, None].expand(batch, -1, k).contiguous()
            return [first] + [torch.zeros(batch, self.cfg.channels, b.context) for b in self.blocks]

        def forward(self, x: Any, state: list[Any] | None = None) -> tuple[Any, list[Any]]:
            state = self.initial_state(x.shape[0]) if state is None else state
            xin = torch.cat([state[0], x], dim=2)
            new = [xin[:, :, xin.shape[2] - (self.cfg.kernel - 1) :]]
            h = self.inp(xin)
            for block, cache in zip(self.blocks, state[1:]):
                h, c = block(h, cache)
                new.append(c)
            return self.head(h), new

    return LipsyncNet


def build_net(config: LipsyncConfig) -> Any:
    """A freshly initialised network for ``config`` (torch module)."""
    return _net_class()(config)


@dataclass(frozen=True)
class LipsyncFrames:
    """Model output at ``frame_rate``: mouth channels (n, len(outputs)) in 0..1, viseme posteriors (n, classes)."""

    frame_rate: float
    mouth: np.ndarray
    visemes: np.ndarray
    outputs: tuple[str, ...] = OUTPUTS


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return (0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))).astype(np.float32)


def _conv(xin: np.ndarray, taps: np.ndarray, b: np.ndarray, dilation: int) -> np.ndarray:
    """Valid 1-D convolution over time: xin (T + (K-1)*d, C_in), taps (K, C_in, C_out) -> (T, C_out)."""
    k = taps.shape[0]
    t = xin.shape[0] - (k - 1) * dilation
    out = np.broadcast_to(b, (t, len(b))).copy()
    for i in range(k):
        out += xin[i * dilation : i * dilation + t] @ taps[i]
    return out


class LipsyncModel:
    """A lip-sync network for inference: numpy weights with batch norm folded into the convolutions,
    so running it needs neither torch nor more than one core."""

    def __init__(self, config: LipsyncConfig, weights: dict[str, np.ndarray]) -> None:
        self.config = config
        self.weights = {k: np.asarray(v, np.float32) for k, v in weights.items()}
        try:
            self._layers = self._fold()
            self._head = np.ascontiguousarray(self.weights["head.weight"][:, :, 0].T)
        except KeyError as e:
            raise LipsyncError(f"lip-sync weights lack {e} for the architecture in the config") from e
        self.silence = (
            (np.full(config.n_mels, np.log10(LOG_FLOOR)) - np.array(config.feature_mean)) / np.array(config.feature_std)
        ).astype(np.float32)

    @staticmethod
    def from_net(config: LipsyncConfig, net: Any) -> LipsyncModel:
        """The inference model of a torch ``build_net`` network (its current weights and statistics)."""
        return LipsyncModel(config, {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()})

    def _fold(self) -> list[tuple[np.ndarray, np.ndarray, int, np.ndarray | None, np.ndarray | None]]:
        """Per layer: (conv taps (K, C_in, C_out), conv bias, dilation, pointwise weight (C, C) transposed,
        pointwise bias), batch norm folded into the convolution; contiguous so every product is one BLAS call."""
        w, cfg = self.weights, self.config
        shape = (cfg.channels, cfg.n_mels, cfg.kernel)
        if w["inp.weight"].shape != shape:
            raise LipsyncError(f"input layer weights are {w['inp.weight'].shape}, the config says {shape}")

        def taps(cw: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(cw.transpose(2, 1, 0))

        layers: list[tuple[np.ndarray, np.ndarray, int, np.ndarray | None, np.ndarray | None]] = [
            (taps(w["inp.weight"]), w["inp.bias"], 1, None, None)
        ]
        for i, d in enumerate(cfg.dilations):
            p = f"blocks.{i}."
            scale = w[p + "norm.weight"] / np.sqrt(w[p + "norm.running_var"] + 1e-5)
            cw = w[p + "conv.weight"] * scale[:, None, None]
            cb = (w[p + "conv.bias"] - w[p + "norm.running_mean"]) * scale + w[p + "norm.bias"]
            pw = np.ascontiguousarray(w[p + "pw.weight"][:, :, 0].T)
            layers.append((taps(cw), cb.astype(np.float32), d, pw, w[p + "pw.bias"]))
        n_blocks = sum(1 for k in w if k.endswith(".pw.weight"))
        if n_blocks != len(cfg.dilations):
            raise LipsyncError(f"weights have {n_blocks} blocks, the config {len(cfg.dilations)}")
        return layers

    @staticmethod
    def load(folder: str | Path | None = None) -> LipsyncModel:
        """Load ``config.json`` + ``model.safetensors`` from ``folder`` (default: the model shipped in the package)."""
        folder = Path(folder) if folder is not None else DEFAULT_MODEL_DIR
        cfg_path, w_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
        if not cfg_path.is_file() or not w_path.is_file():
            raise LipsyncError(f"no lip-sync model in {folder}: need {CONFIG_FILE} and {WEIGHTS_FILE}")
        try:
            config = LipsyncConfig.from_json(cfg_path.read_text(encoding="utf-8"))
        except (ValueError, AttributeError) as e:  # not JSON, or JSON that is not an object
            raise LipsyncError(f"{cfg_path} is not a lip-sync model's config: {e}") from e
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            weights = load_file(str(w_path))
        except (SafetensorError, OSError) as e:
            raise LipsyncError(f"{w_path} is not a safetensors file: {e}") from e
        try:
            return LipsyncModel(config, weights)
        except (LipsyncError, ValueError) as e:
            raise LipsyncError(f"weights in {w_path} do not match {cfg_path}: {e}") from e

    def save(self, folder: str | Path) -> None:
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_FILE).write_text(self.config.to_json() + "\n", encoding="utf-8")
        save_file({k: np.ascontiguousarray(v) for k, v in self.weights.items()}, str(folder / WEIGHTS_FILE))

    def n_params(self) -> int:
        stats = ("running_mean", "running_var", "num_batches_tracked")
        return int(sum(v.size for k, v in self.weights.items() if not k.endswith(stats)))

    def normalise(self, feats: np.ndarray) -> np.ndarray:
        mean = np.asarray(self.config.feature_mean, np.float32)
        std = np.asarray(self.config.feature_std, np.float32)
        return ((feats - mean) / std).astype(np.float32)

    def initial_state(self) -> list[np.ndarray]:
        """Each layer's past before the start: silence features for the input, zeros inside."""
        k = self.config.kernel - 1
        return [np.tile(self.silence[None, :], (k, 1))] + [
            np.zeros(((k * d), self.config.channels), np.float32) for d in self.config.dilations
        ]

    def run(self, feats: np.ndarray, state: list[np.ndarray] | None) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """Normalised features (n, n_mels) -> (mouth (n, outputs), viseme posteriors (n, classes), new state).

        Row i is the prediction for frame ``i - lookahead`` of the features pushed so far.
        """
        state = self.initial_state() if state is None else state
        new = []
        h = feats.astype(np.float32)
        for (cw, cb, d, pw, pb), cache in zip(self._layers, state):
            xin = np.concatenate([cache, h])
            new.append(xin[len(xin) - len(cache) :])
            y = _conv(xin, cw, cb, d)
            h = y if pw is None else h + _gelu(y) @ pw + pb
        w = self.weights
        y = h @ self._head + w["head.bias"]
        n_out = len(self.config.outputs)
        mouth = 1.0 / (1.0 + np.exp(-y[:, :n_out]))
        logits = y[:, n_out:] - y[:, n_out:].max(axis=1, keepdims=True)
        vis = np.exp(logits)
        vis /= vis.sum(axis=1, keepdims=True)
        return mouth.astype(np.float32), vis.astype(np.float32), new

    def predict(self, samples: np.ndarray, sample_rate: int) -> LipsyncFrames:
        """Whole recording (mono float samples at any rate) -> one row per 20 ms frame."""
        x = resample(np.asarray(samples, np.float32), sample_rate, SAMPLE_RATE)
        feats = self.normalise(log_mel(x))
        la = self.config.lookahead
        mouth, vis, _ = self.run(np.concatenate([feats, np.tile(self.silence[None, :], (la, 1))]), None)
        return LipsyncFrames(self.config.frame_rate, mouth[la:], vis[la:], self.config.outputs)

    def stream(self) -> LipsyncStream:
        return LipsyncStream(self)


class LipsyncStream:
    """``LipsyncModel.predict`` while 16 kHz audio arrives: each push returns the frames that became final."""

    def __init__(self, model: LipsyncModel) -> None:
        self.model = model
        self._mel = MelStream()
        self._state: list[np.ndarray] | None = None
        self._skip = model.config.lookahead  # the first outputs predict frames before the start
        self._done = False

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """16 kHz mono samples -> (mouth, visemes) rows that are now final (possibly none)."""
        if self._done:
            raise RuntimeError("push() after finish()")
        return self._run(self._mel.push(samples))

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        self._done = True
        feats = self.model.normalise(self._mel.finish())
        la = self.model.config.lookahead
        return self._run_normalised(np.concatenate([feats, np.tile(self.model.silence[None, :], (la, 1))]))

    def _run(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._run_normalised(self.model.normalise(feats))

    def _run_normalised(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_out, n_vis = len(self.model.config.outputs), len(self.model.config.visemes)
        if len(feats) == 0:
            return np.zeros((0, n_out), np.float32), np.zeros((0, n_vis), np.float32)
        mouth, vis, self._state = self.model.run(feats, self._state)
        drop = min(self._skip, len(mouth))
        self._skip -= drop
        return mouth[drop:], vis[drop:]


__all__ = [
    "DEFAULT_MODEL_DIR",
    "HOP",
    "LOOKAHEAD_S",
    "LipsyncConfig",
    "LipsyncError",
    "LipsyncFrames",
    "LipsyncModel",
    "LipsyncStream",
    "build_net",
    "mouth_targets",
]
