"""Training the lip-sync model on a folder made by ``tools/lipsync_data.py`` (``talker train-lipsync``).

DATA_DIR/train/*.npz and DATA_DIR/val/*.npz hold 16 kHz audio with per-frame mouth targets and viseme
labels. Features are computed once at start; batches are whole utterances (so every utterance is seen
from its start, as at inference), padded with silence. Loss: binary cross-entropy on the mouth channels
(targets in 0..1), the lip channels jawOpen and mouthClose weighted double and mouthClose on p/b/m
frames five times more, plus 0.3 x viseme cross-entropy. A checkpoint after every epoch makes a run
resumable; the epoch with the best validation loss is saved as the model folder.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from audio.mel import log_mel
from motion.lipsync import LipsyncConfig, LipsyncModel, build_net

CHECKPOINT = "checkpoint.pt"
REPORT = "report.json"
CLOSED_GAP = 0.04  # lip gap jawOpen * (1 - mouthClose) under which the mouth reads as closed
_CHANNEL_WEIGHTS = (2.0, 2.0, 1.0, 1.0, 1.0, 1.0)
_VISEME_WEIGHT = 0.3
# p/b/m frames count this much more in the mouthClose loss: short and rare, yet the closure a viewer checks first
_BILABIAL_CLOSE_WEIGHT = 4.0


@dataclass(frozen=True)
class Utterances:
    """Per utterance: raw log-mel (n, n_mels), targets (n, channels), viseme labels (n,)."""

    feats: list[np.ndarray]
    targets: list[np.ndarray]
    visemes: list[np.ndarray]

    @property
    def n_frames(self) -> int:
        return int(sum(len(f) for f in self.feats))


def load_split(folder: Path, progress: Callable[[str], None] | None = None) -> Utterances:
    shards = sorted(folder.glob("*.npz"))
    if not shards:
        raise FileNotFoundError(f"no *.npz shards in {folder} (make them with python -m tools.lipsync_data)")
    feats, targets, visemes = [], [], []
    for path in shards:
        with np.load(path) as d:
            audio = d["audio"].astype(np.float32) / 32768.0
            offs, foffs = d["offsets"], d["frame_offsets"]
            tg, vis = d["targets"].astype(np.float32), d["visemes"].astype(np.int64)
        for i in range(len(offs) - 1):
            f = log_mel(audio[offs[i] : offs[i + 1]])
            if len(f) != foffs[i + 1] - foffs[i]:
                raise ValueError(f"{path}: utterance {i} has {len(f)} feature frames but targets for "
                                 f"{foffs[i + 1] - foffs[i]}")  # fmt: skip
            feats.append(f)
            targets.append(tg[foffs[i] : foffs[i + 1]])
            visemes.append(vis[foffs[i] : foffs[i + 1]])
        if progress is not None:
            progress(f"{path.parent.name}/{path.name}")
    return Utterances(feats, targets, visemes)


def _batches(lengths: list[int], max_frames: int, rng: np.random.Generator) -> list[list[int]]:
    """Utterances grouped by similar length, at most ``max_frames`` padded frames per batch, in random order."""
    order = np.argsort(np.array(lengths) + rng.uniform(0, 40, len(lengths)))
    out: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        if cur and (len(cur) + 1) * max(lengths[j] for j in cur + [int(i)]) > max_frames:
            out.append(cur)
            cur = []
        cur.append(int(i))
    if cur:
        out.append(cur)
    rng.shuffle(out)  # type: ignore[arg-type]
    return out


def _collate(torch: Any, data: Utterances, idx: list[int], model: LipsyncModel) -> tuple[Any, Any, Any, Any]:
    """Utterances ``idx`` padded with silence: features (B, n_mels, n + lookahead), targets, visemes, mask."""
    la = model.config.lookahead
    n = max(len(data.feats[i]) for i in idx)
    sil = model.silence
    x = np.tile(sil[None, :, None], (len(idx), 1, n + la)).astype(np.float32)
    y = np.zeros((len(idx), data.targets[0].shape[1], n), np.float32)
    v = np.zeros((len(idx), n), np.int64)
    mask = np.zeros((len(idx), n), np.float32)
    for b, i in enumerate(idx):
        m = len(data.feats[i])
        x[b, :, :m] = model.normalise(data.feats[i]).T
        y[b, :, :m] = data.targets[i].T
        v[b, :m] = data.visemes[i]
        mask[b, :m] = 1.0
    return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(v), torch.from_numpy(mask)


def _loss(torch: Any, net: Any, cfg: LipsyncConfig, batch: tuple[Any, Any, Any, Any]) -> tuple[Any, Any]:
    x, y, v, mask = batch
    la = cfg.lookahead
    n_out = len(cfg.outputs)
    out, _ = net(x)
    out = out[:, :, la:]
    w = torch.tensor(_CHANNEL_WEIGHTS[:n_out])[None, :, None].expand(-1, -1, y.shape[2])
    bilabial = (v == cfg.visemes.index("PP")).float()
    close = cfg.outputs.index("mouthClose")
    w = w.expand(y.shape[0], -1, -1).clone()
    w[:, close] = w[:, close] * (1.0 + _BILABIAL_CLOSE_WEIGHT * bilabial)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(out[:, :n_out], y, reduction="none")
    denom = mask.sum().clamp(min=1.0)
    l_ch = (bce * w * mask[:, None]).sum() / (denom * float(sum(_CHANNEL_WEIGHTS[:n_out])))
    ce = torch.nn.functional.cross_entropy(out[:, n_out:], v, reduction="none")
    l_vis = (ce * mask).sum() / denom
    return l_ch + _VISEME_WEIGHT * l_vis, out


def validate(model: LipsyncModel, data: Utterances) -> dict[str, float]:
    """Frame-level figures on ``data``: loss, mean absolute error per channel, jaw correlation, closure rates."""
    pred, true, vis, vis_pred = [], [], [], []
    for f, t, v in zip(data.feats, data.targets, data.visemes):
        la = model.config.lookahead
        silence = np.tile(model.silence[None, :], (la, 1))
        mouth, post, _ = model.run(np.concatenate([model.normalise(f), silence]), None)
        pred.append(mouth[la:])
        vis_pred.append(post[la:].argmax(1))
        true.append(t)
        vis.append(v)
    p, t = np.concatenate(pred), np.concatenate(true)
    v, vp = np.concatenate(vis), np.concatenate(vis_pred)
    names = model.config.outputs
    gap_p = p[:, names.index("jawOpen")] * (1 - p[:, names.index("mouthClose")])
    gap_t = t[:, names.index("jawOpen")] * (1 - t[:, names.index("mouthClose")])
    pp = v == model.config.visemes.index("PP")
    # frames the target holds closed for a pause (closure with no bilabial viseme)
    pause = (t[:, names.index("mouthClose")] > 0.99) & (v == 0)
    out = {f"mae_{n}": float(np.abs(p[:, i] - t[:, i]).mean()) for i, n in enumerate(names)}
    out["jaw_r"] = float(np.corrcoef(p[:, 0], t[:, 0])[0, 1])
    out["gap_r"] = float(np.corrcoef(gap_p, gap_t)[0, 1])
    out["bilabial_frames_closed"] = float((gap_p[pp] < CLOSED_GAP).mean()) if pp.any() else 1.0
    out["pause_frames_closed"] = float((gap_p[pause] < CLOSED_GAP).mean()) if pause.any() else 1.0
    out["viseme_accuracy"] = float((vp == v).mean())
    out["frames"] = float(len(p))
    return out


def feature_stats(data: Utterances) -> tuple[tuple[float, ...], tuple[float, ...]]:
    allf = np.concatenate(data.feats)
    return tuple(float(m) for m in allf.mean(0)), tuple(float(max(s, 1e-3)) for s in allf.std(0))


def train(
    data_dir: str | Path,
    out_dir: str | Path,
    epochs: int = 12,
    lr: float = 2e-3,
    batch_frames: int = 6000,
    threads: int = 1,
    seed: int = 0,
    config: LipsyncConfig | None = None,
    log: Callable[[str], None] = print,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Train (or resume from ``out_dir/checkpoint.pt``) and write the best model to ``out_dir``.

    Returns the report written to ``out_dir/report.json``: validation figures per epoch and the best.
    """
    import torch
    from tqdm import tqdm

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_load = time.time()
    train_set = load_split(data_dir / "train")
    val_set = load_split(data_dir / "val")
    log(
        f"data: {train_set.n_frames / 50 / 60:.1f} min training ({len(train_set.feats)} utterances), "
        f"{val_set.n_frames / 50 / 60:.1f} min validation; features in {time.time() - t_load:.0f} s"
    )
    ckpt_path = out_dir / CHECKPOINT
    ckpt = torch.load(ckpt_path, weights_only=False) if ckpt_path.is_file() else None
    if ckpt is not None:
        cfg = LipsyncConfig.from_json(ckpt["config"])
    else:
        mean, std = feature_stats(train_set)
        cfg = replace(config or LipsyncConfig(), feature_mean=mean, feature_std=std)
    net = build_net(cfg)
    model = LipsyncModel.from_net(cfg, net)  # for normalising and padding; refreshed after every epoch
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    lengths = [len(f) for f in train_set.feats]
    steps_per_epoch = len(_batches(lengths, batch_frames, np.random.default_rng(0)))
    total = max(1, epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 200) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
    )
    history: list[dict[str, float]] = []
    start_epoch, best = 0, float("inf")
    if ckpt is not None:
        net.load_state_dict(ckpt["net"])
        opt.load_state_dict(ckpt["opt"])
        sched.load_state_dict(ckpt["sched"])
        start_epoch, best, history = ckpt["epoch"], ckpt["best"], ckpt["history"]
        log(f"resumed from {ckpt_path} after epoch {start_epoch}")
    log(f"model: {model.n_params()} parameters, look-ahead {cfg.lookahead_s * 1000:.0f} ms, "
        f"receptive field {cfg.receptive_frames} frames; {epochs} epochs of {steps_per_epoch} steps")  # fmt: skip
    t0 = time.time()
    for epoch in range(start_epoch, epochs):
        net.train()
        batches = _batches(lengths, batch_frames, np.random.default_rng([seed, epoch]))  # same order on resume
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", disable=not show_progress)
        run = 0.0
        for i, idx in enumerate(bar):
            loss, _ = _loss(torch, net, cfg, _collate(torch, train_set, idx, model))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            run = loss.item() if i == 0 else 0.98 * run + 0.02 * loss.item()
            bar.set_postfix(loss=f"{run:.4f}")
        bar.close()
        net.eval()
        model = LipsyncModel.from_net(cfg, net)
        with torch.no_grad():
            vloss = float(
                np.mean([_loss(torch, net, cfg, _collate(torch, val_set, [i], model))[0].item()
                         for i in range(len(val_set.feats))])
            )  # fmt: skip
        fig = validate(model, val_set)
        fig.update(epoch=epoch + 1, train_loss=run, val_loss=vloss, minutes=(time.time() - t0) / 60)
        history.append(fig)
        log(
            f"epoch {epoch + 1}: train {run:.4f} val {vloss:.4f} | jaw r {fig['jaw_r']:.3f} | "
            f"bilabial frames closed {100 * fig['bilabial_frames_closed']:.1f}% | "
            f"pause frames closed {100 * fig['pause_frames_closed']:.1f}% | visemes {100 * fig['viseme_accuracy']:.1f}%"
        )
        if vloss < best:
            best = vloss
            model.save(out_dir)
        torch.save(
            {"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
             "epoch": epoch + 1, "best": best, "history": history, "config": cfg.to_json()},
            ckpt_path,
        )  # fmt: skip
    report = {
        "data_dir": str(data_dir),
        "train_minutes": train_set.n_frames / 50 / 60,
        "val_minutes": val_set.n_frames / 50 / 60,
        "parameters": model.n_params(),
        "epochs": epochs,
        "best_val_loss": best,
        "history": history,
    }
    (out_dir / REPORT).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report
