"""Piper, streamed within a sentence: the first audio of a sentence long before the whole is decoded.

A Piper voice is one VITS graph: text encoder, duration predictor and flow turn phoneme ids into a
latent sequence (one 192-d column per ``hop_length`` audio samples) and per-phoneme durations; the
HiFi-GAN decoder turns latent columns into audio. The decoder costs most of the time and grows with
the sentence, and it is convolutional: a window of latent columns with ``pad`` columns of context on
each side decodes to exactly the samples that decoding everything at once gives for that window
(with 16 columns of context the difference is below 1e-6 on the bundled voice). So the graph is cut
in two at the decoder's input (``onnx.utils.Extractor``, in memory): the front runs once per
sentence and gives the full phone timeline at once; the decoder then runs window by window, first a
short one, then each twice as long as the one before.

``stream_sentence`` yields consecutive ``Speech`` pieces that join into what
``PiperTTS.synthesize_sentence`` gives for the same sentence and noise.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from audio.piper_common import TTSError, _alignments_to_timeline, _merge_silences, cpu_session
from audio.text import check_script
from audio.types import Speech
from audio.words import label_words

if TYPE_CHECKING:
    from audio.piper_tts import PiperTTS

FIRST_FRAMES = 48
"""Latent columns in the first decoded window (48 x 256 samples at 22.05 kHz = 0.56 s of audio)."""

CONTEXT_FRAMES = 16
"""Latent columns of context decoded on each side of a window and thrown away."""


@dataclass(frozen=True)
class _Align:
    phoneme: str
    num_samples: int


class NotStreamable(TTSError):
    """This voice's graph cannot be cut at its decoder; synthesize whole sentences instead."""


class SplitVoice:
    """A Piper model cut at its decoder: ``front`` (phoneme ids -> latent, durations) and ``decode``."""

    def __init__(self, model_path: Path, threads: int | None) -> None:
        import onnx

        model = onnx.load(str(model_path))
        graph = model.graph
        dec = [n for n in graph.node if n.name.startswith("/dec/")]
        if not dec:
            raise ValueError(f"{model_path.name}: no decoder (/dec/) nodes; not a Piper VITS export")
        made = {o for n in dec for o in n.output}
        weights = {i.name for i in graph.initializer}
        external = sorted({i for n in dec for i in n.input if i and i not in made and i not in weights})
        pre = next((n for n in dec if n.name.endswith("conv_pre/Conv")), None)
        if pre is None or pre.input[0] not in external:
            raise ValueError(f"{model_path.name}: cannot find the decoder's latent input")
        ceil = [o for n in graph.node if n.op_type == "Ceil" for o in n.output]
        if len(ceil) != 1:
            raise ValueError(f"{model_path.name}: cannot find the duration (Ceil) tensor")
        self.latent = pre.input[0]
        self.external = external
        self.inputs = [i.name for i in graph.input]
        out = graph.output[0].name
        front = _subgraph(model, self.inputs, external + ceil)
        decoder = _subgraph(model, external, [out])

        self._front = cpu_session(front, threads)
        self._dec = cpu_session(decoder, threads)

    def front(self, args: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Decoder inputs (by name) and the duration of every phoneme id in latent columns."""
        res = self._front.run(None, {k: v for k, v in args.items() if k in self.inputs})
        return dict(zip(self.external, res[:-1])), np.asarray(res[-1]).reshape(-1)

    def decode(self, inputs: dict[str, np.ndarray], a: int, b: int, pad: int) -> np.ndarray:
        """Audio of latent columns [a, b), decoded with up to ``pad`` columns of context each side."""
        z = inputs[self.latent]
        t = z.shape[2]
        lo, hi = max(0, a - pad), min(t, b + pad)
        feed = dict(inputs)
        feed[self.latent] = np.ascontiguousarray(z[:, :, lo:hi])
        y = np.asarray(self._dec.run(None, feed)[0]).reshape(-1)
        hop = len(y) // (hi - lo)
        return y[(a - lo) * hop : (b - lo) * hop]


def _subgraph(model: Any, inputs: list[str], outputs: list[str]) -> Any:
    """The part of ``model`` that computes ``outputs`` from ``inputs`` (and the weights).

    ``onnx.utils.Extractor`` does the same but takes ~9 s on a Piper voice; this walk takes ~0.1 s.
    Inputs that were inner tensors are declared float tensors of unknown shape (all a VITS decoder
    takes)."""
    import onnx

    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    weights = {w.name: w for w in g.initializer}
    stop = set(inputs)
    keep: set[int] = set()
    seen: set[str] = set()
    stack = list(outputs)
    while stack:
        t = stack.pop()
        if t in seen or t in stop or t in weights:
            continue
        seen.add(t)
        node = producer.get(t)
        if node is None:
            raise ValueError(f"tensor {t!r} is neither computed nor an input")
        if id(node) not in keep:
            keep.add(id(node))
            stack.extend(i for i in node.input if i)
    nodes = [n for n in g.node if id(n) in keep]
    used = {i for n in nodes for i in n.input}
    declared = {i.name: i for i in g.input}
    typed = {v.name: v for v in list(g.value_info) + list(g.output)}
    graph_inputs = [
        declared[name] if name in declared else onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        for name in inputs
        if name in used or name in declared
    ]
    graph_outputs = [
        typed[name] if name in typed else onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        for name in outputs
    ]
    sub = onnx.helper.make_graph(
        nodes, g.name, graph_inputs, graph_outputs, [w for name, w in weights.items() if name in used]
    )
    return onnx.helper.make_model(sub, opset_imports=model.opset_import, ir_version=model.ir_version)


_split: dict[tuple[str, int | None], SplitVoice] = {}
_split_lock = threading.Lock()


def split_voice(model_path: Path, threads: int | None) -> SplitVoice:
    """The split model of a voice, built once per process and thread count."""
    key = (str(model_path.resolve()), threads)
    with _split_lock:
        if key not in _split:
            _split[key] = SplitVoice(model_path, threads)
        return _split[key]


def stream_sentence(
    tts: PiperTTS,
    sentence: str,
    threads: int | None = 1,
    first_frames: int = FIRST_FRAMES,
    pad: int = CONTEXT_FRAMES,
) -> Iterator[Speech]:
    """Consecutive pieces of one sentence's speech, the first after the front and one short window.

    The work happens inside ``next()``: a caller that must serialize Piper holds its lock around each
    step. Raises ``TTSError`` like ``synthesize_sentence`` (nothing to say, model failure).
    """
    voice = tts._load()
    check_script(sentence, tts._espeak_voice(), f"piper:{tts.model_path.stem}")
    cfg = tts._syn_config()
    sr = int(voice.config.sample_rate)
    hop = int(voice.config.hop_length)
    try:
        split = split_voice(tts.model_path, threads)
    except (ImportError, ValueError) as e:
        raise NotStreamable(f"cannot stream Piper voice {tts.model_path.name}: {e}") from e

    # front: every espeak sentence of the text, then the whole phone timeline at once
    parts: list[tuple[dict[str, np.ndarray], int]] = []
    phones: list[Any] = []
    spans: list[tuple[float, float]] = []
    offset = 0
    for phonemes in voice.phonemize(sentence):
        if not phonemes:
            continue
        ids = voice.phonemes_to_ids(phonemes)
        inputs, widths = split.front(_args(voice, ids, cfg))
        aligns = _group(voice, phonemes, ids, (widths * hop).astype(np.int64))
        if aligns is None:
            raise TTSError(f"Piper voice {tts.model_path.name} gave no phoneme alignments")
        p, w = _alignments_to_timeline(aligns, sr, offset)
        phones.extend(p)
        spans.extend((x.start_s, x.end_s) for x in w)
        cols = int(inputs[split.latent].shape[2])
        parts.append((inputs, cols))
        offset += cols * hop
    if not parts:
        raise TTSError(f"Piper produced no audio for {sentence[:60]!r}")
    merged = _merge_silences(phones)
    words = tuple(label_words(merged, spans, sentence, tts._espeak_voice()))
    timeline = Speech(np.zeros(offset, np.float32), sr, tuple(merged), words, sentence)

    # decoder: windows growing 2x, across the espeak sentences
    pos = 0
    size = max(1, first_frames)
    for inputs, cols in parts:
        a = 0
        while a < cols:
            b = min(cols, a + size)
            y = split.decode(inputs, a, b, pad) * cfg.volume
            y = np.clip(y, -1.0, 1.0).astype(np.float32)
            piece = timeline.slice(pos, pos + len(y))
            yield Speech(y, sr, piece.phones, piece.words, sentence)
            pos += len(y)
            a = b
            size *= 2


def _args(voice: Any, ids: list[int], cfg: Any) -> dict[str, np.ndarray]:
    """The front's inputs, as Piper's own ``phoneme_ids_to_audio`` builds them."""
    c = voice.config
    scales = np.array(
        [
            c.noise_scale if cfg.noise_scale is None else cfg.noise_scale,
            c.length_scale if cfg.length_scale is None else cfg.length_scale,
            c.noise_w_scale if cfg.noise_w_scale is None else cfg.noise_w_scale,
        ],
        np.float32,
    )
    args: dict[str, np.ndarray] = {
        "input": np.array([ids], np.int64),
        "input_lengths": np.array([len(ids)], np.int64),
        "scales": scales,
    }
    if c.num_speakers > 1:
        sid = c.default_speaker_id if cfg.speaker_id is None else cfg.speaker_id
        args["sid"] = np.array([sid or 0], np.int64)
    return args


def _group(voice: Any, phonemes: list[str], ids: list[int], id_samples: np.ndarray) -> list[_Align] | None:
    """Samples per phoneme: each phoneme's ids and the pad after it (BOS first, EOS last), as Piper
    groups them for its alignments."""
    from piper.const import BOS, EOS, PAD

    if len(id_samples) != len(ids):
        return None
    id_map = voice.config.phoneme_id_map
    pad_ids = id_map.get(PAD, [])
    out: list[_Align] = []
    k = 0
    for ph in [BOS, *phonemes, EOS]:
        expect = list(id_map.get(ph, [])) + (list(pad_ids) if ph != EOS else [])
        if ids[k : k + len(expect)] != expect:
            return None
        out.append(_Align(ph, int(id_samples[k : k + len(expect)].sum())))
        k += len(expect)
    return out
