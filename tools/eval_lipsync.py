"""Evaluation of the learned lip-sync model on speech it was not trained on, and on non-speech.

    python -m tools.eval_lipsync [--model MODEL_DIR] [--media MEDIA_DIR] [--recognition]

* Real recordings with ground-truth phone timings (``groundtruth/align/*.phones.tsv``: the LibriVox,
  card and other clips of ../shared/media, or the repository's copies): the model hears only the audio;
  its track is scored with ``tools.motion_metrics`` against the true phones (p/b/m reach a closed mouth,
  frames of pauses over 300 ms closed) and its jaw is correlated with the phonetic generator's jaw on the
  true phones. ``--recognition`` adds the transcript-free alternative: pocketsphinx phone recognition.
* Real Russian speech (``tools.recorded_corpus``: the recordings of Festival's festvox-ru voice with their
  phone labels), the sentences held out of the training data; the speaker is one the training data has
  (other sentences of his), so this is real speech in another language, not an unheard speaker.
* Festival's Italian and Finnish diphone voices (diphones recorded by real speakers; none of them in the
  training data), their exact segment times, when installed.
* Held-out TTS voices in three languages the model never heard (espeak-ng Italian, Polish, Turkish,
  sentences written for this check), scored the same way against their exact phone timings.
* Non-speech (white and pink noise, tone sweeps, chords, silence): the share of frames under the closed
  threshold.

Speed is measured by ``python -m benchmarks.bench_lipsync``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from audio.espeak_tts import EspeakParams, EspeakTTS
from audio.mel import SAMPLE_RATE
from audio.types import Speech, concat_speech, silence
from motion.audio_motion import audio_motion
from motion.generator import MotionGenerator
from motion.lipsync import LipsyncModel
from motion.types import MotionTrack
from tools.eval_align import media_dir
from tools.eval_motion import corpus
from tools.motion_metrics import CLOSED_GAP, MotionReport, evaluate, lip_gap

FPS = 25.0
HELD_OUT = {
    "it": (
        "Il mio babbo mangia una mela buona ogni mattina.",
        "Domani andiamo al mare con la barca di Paolo.",
        "Per favore, prendi il libro blu sopra il tavolo.",
        "Mamma ha comprato pane, pomodori e mozzarella.",
    ),
    "pl": (
        "Mama ma małego kota i duży dom.",
        "Proszę podać mi butelkę wody i mapę miasta.",
        "Po obiedzie pójdziemy na spacer do parku.",
        "Bartek pisze piękne wiersze o morzu.",
    ),
    "tr": (
        "Babam bu sabah bize ekmek ve peynir aldı.",
        "Yarın deniz kenarında balık yiyeceğiz.",
        "Bu kitap benim en sevdiğim kitap.",
        "Mehmet pazartesi günü Bursa'ya gidecek.",
    ),
}
FINNISH = (
    "Mamma ja pappa menivät kauppaan aamulla.",
    "Pekka osti punaisen pallon ja banaanin.",
    "Huomenna me menemme mökille veneellä.",
    "Tämä kirja on minun paras ystäväni.",
)


def _track(model: LipsyncModel, speech: Speech) -> MotionTrack:
    return MotionTrack(FPS, audio_motion(model, speech.samples, speech.sample_rate, FPS))


def _jaw_r(a: MotionTrack, b: MotionTrack) -> float:
    n = min(a.n_frames, b.n_frames)
    return float(np.corrcoef(a.channel("jawOpen")[:n], b.channel("jawOpen")[:n])[0, 1])


def _row(name: str, rep: MotionReport, r: float) -> str:
    return (
        f"| {name} | {100 * rep.bilabial_closed:.0f}% of {rep.bilabials} | "
        f"{100 * rep.pause_closed:.0f}% of {rep.pause_frames} | {r:.2f} |"
    )


def _total(name: str, reps: list[MotionReport], rs: list[float], weights: list[float]) -> str:
    nb = sum(r.bilabials for r in reps)
    npf = sum(r.pause_frames for r in reps)
    b = sum(r.bilabial_closed * r.bilabials for r in reps) / max(nb, 1)
    p = sum(r.pause_closed * r.pause_frames for r in reps) / max(npf, 1)
    jr = float(np.average(rs, weights=weights)) if rs else float("nan")
    return f"| **{name}** | **{100 * b:.0f}% of {nb}** | **{100 * p:.0f}% of {npf}** | **{jr:.2f}** |"


def score(model: LipsyncModel, items: list[tuple[str, Speech]], title: str) -> None:
    gen = MotionGenerator(FPS, seed=0)
    print(f"\n{title}\n\n| clip | p/b/m closed | pause frames closed | jaw r |\n|---|---|---|---|")
    reps, rs, ws = [], [], []
    for name, speech in items:
        track = _track(model, speech)
        ref = gen.generate(speech)
        rep, r = evaluate(track, speech.phones), _jaw_r(track, ref)
        reps.append(rep)
        rs.append(r)
        ws.append(speech.duration_s)
        print(_row(name, rep, r))
    print(_total("all", reps, rs, ws))


def score_recognition(items: list[tuple[str, Speech]]) -> None:
    """The same figures for pocketsphinx phone recognition (no transcript) driving the phonetic generator."""
    from audio.align import align

    gen = MotionGenerator(FPS, seed=0)
    print("\npocketsphinx recognition without a transcript (for comparison)\n")
    print("| clip | p/b/m closed | pause frames closed | jaw r |\n|---|---|---|---|")
    reps, rs, ws = [], [], []
    for name, speech in items:
        rec = align(speech.samples, speech.sample_rate, None)
        track = gen.generate(rec, n_frames=gen.generate(speech).n_frames)
        rep, r = evaluate(track, speech.phones), _jaw_r(track, gen.generate(speech))
        reps.append(rep)
        rs.append(r)
        ws.append(speech.duration_s)
        print(_row(name, rep, r))
    print(_total("all", reps, rs, ws))


def held_out_tts() -> list[tuple[str, Speech]]:
    items = []
    for lang, sentences in HELD_OUT.items():
        for variant in (None, "f2"):
            tts = EspeakTTS(lang, EspeakParams(variant=variant))
            parts: list[Speech] = [silence(0.4, tts.sample_rate)]
            for s in sentences:
                parts += [tts.synthesize_sentence(s), silence(0.5, tts.sample_rate)]
            items.append((f"espeak {lang}{'+' + variant if variant else ''}", concat_speech(parts)))
    return items


def held_out_recorded(per_row: int = 10) -> list[tuple[str, Speech]]:
    """The held-out recordings of the installed corpora, ``per_row`` sentences per scored item."""
    from tools.recorded_corpus import load, recordings

    recs = [r for r in recordings() if r.held_out]
    items = []
    for i in range(0, len(recs), per_row):
        group = recs[i : i + per_row]
        speech = concat_speech([load(r, SAMPLE_RATE) for r in group])
        items.append((f"{group[0].lang} {group[0].name}..{group[-1].name}", speech))
    return items


def held_out_recorded_voices() -> list[tuple[str, Speech]]:
    """Festival's Italian and Finnish diphone voices (recorded speakers' diphones), where installed."""
    from tools.festival_speech import OTHER_VOICES, FestivalVoice, festival_voices

    items = []
    for voice in festival_voices(tuple(OTHER_VOICES)):
        lang = OTHER_VOICES[voice]
        tts = FestivalVoice(voice)
        parts: list[Speech] = []
        for s in HELD_OUT["it"] if lang == "it" else FINNISH:
            sp = tts.synthesize_sentence(s)
            parts += [silence(0.4, sp.sample_rate), sp]
        parts.append(silence(0.4, parts[-1].sample_rate))
        items.append((f"festival {lang} {voice}", concat_speech(parts)))
    return items


def nonspeech(seed: int = 7) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    n = 10 * SAMPLE_RATE
    t = np.arange(n) / SAMPLE_RATE
    white = rng.normal(0, 0.1, n)
    spec = np.fft.rfft(rng.normal(0, 1, n)) / np.sqrt(np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 20.0))
    pink = np.fft.irfft(spec, n)
    pink *= 0.1 / pink.std()
    sweep = 0.3 * np.sin(2 * np.pi * (100 * t + (8000 - 100) * t**2 / 20))
    chords = np.zeros(n)
    for a in range(0, n, SAMPLE_RATE // 2):
        root = 130.8 * 2 ** (rng.integers(0, 12) / 12)
        seg = t[a : a + SAMPLE_RATE // 2] - t[a]
        for ratio in (1.0, 1.26, 1.5):
            chords[a : a + SAMPLE_RATE // 2] += 0.1 * np.exp(-2 * seg) * np.sin(2 * np.pi * root * ratio * seg)
    return [
        ("silence", np.zeros(n)),
        ("white noise", white),
        ("pink noise", pink),
        ("tone sweep 100 Hz-8 kHz", sweep),
        ("chords (piano-like)", chords),
        ("white noise, loud", white * 5),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.eval_lipsync", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    ap.add_argument("--media", default=None, help="media folder with speech/ and groundtruth/ (default ../shared)")
    ap.add_argument("--recognition", action="store_true", help="also score pocketsphinx recognition (slow)")
    args = ap.parse_args(argv)
    model = LipsyncModel.load(args.model)
    media = media_dir(args.media)
    real = [(n, s) for n, s in corpus(media) if not n.startswith(("mbrola", "espeak"))]
    score(model, real, f"real recordings ({media}/speech, true phones from groundtruth/align)")
    if args.recognition:
        score_recognition(real)
    recorded = held_out_recorded()
    if recorded:
        score(model, recorded, "real Russian speech (festvox-ru recordings held out of training, their phone labels)")
    voices = held_out_recorded_voices()
    if voices:
        score(model, voices, "Festival's Italian and Finnish diphone voices (recorded speakers, never trained on)")
    score(model, held_out_tts(), "held-out TTS voices (languages not in the training data)")
    print("\nnon-speech: frames with the mouth closed (lip gap under the closed threshold)\n")
    print("| input | closed frames |\n|---|---|")
    for name, x in nonspeech():
        track = MotionTrack(FPS, audio_motion(model, x.astype(np.float32), SAMPLE_RATE, FPS))
        print(f"| {name} | {100 * float((lip_gap(track) < CLOSED_GAP).mean()):.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
