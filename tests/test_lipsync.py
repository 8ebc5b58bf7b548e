"""The learned lip-sync model: features and model stream exactly as they run on whole files, the shipped
model closes the mouth on bilabials, silence and noise, and the training CLI produces a loadable model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, media

from audio.espeak_tts import EspeakTTS
from audio.io import load_audio
from audio.mel import N_MELS, SAMPLE_RATE, MelStream, log_mel, n_frames_for
from audio.types import SILENCE, Phone, Speech, concat_speech, silence
from motion.audio_motion import AudioMotionStream, audio_motion
from motion.lipsync import OUTPUTS, VISEME_CLASSES, LipsyncConfig, LipsyncError, LipsyncModel, build_net, mouth_targets
from motion.types import CHANNEL_INDEX, MotionTrack
from tools.motion_metrics import CLOSED_GAP, _frames_in, evaluate, lip_gap

FPS = 25.0


def _chunks(x: np.ndarray, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out, a = [], 0
    while a < len(x):
        n = int(rng.choice([1, 7, 160, 320, 999, 4000]))
        out.append(x[a : a + n])
        a += n
    return out


def _speech_like(seconds: float = 3.0) -> np.ndarray:
    """Voiced bursts and pauses: enough structure for a random network to give varied outputs."""
    rng = np.random.default_rng(3)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    env = (np.sin(2 * np.pi * 2.5 * t) > 0).astype(np.float64)
    x = env * (0.3 * np.sin(2 * np.pi * 140 * t) + 0.05 * rng.normal(0, 1, len(t)))
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def tiny() -> LipsyncModel:
    import torch

    torch.manual_seed(0)
    cfg = LipsyncConfig(channels=8, dilations=(1, 2, 4), lookahead=3)
    net = build_net(cfg).eval()
    # random batch-norm statistics, so folding them into the convolutions is checked
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return LipsyncModel.from_net(cfg, net)


@pytest.fixture(scope="module")
def shipped() -> LipsyncModel:
    return LipsyncModel.load()


def test_log_mel_streamed_in_any_chunks_equals_whole_file() -> None:
    x = _speech_like(2.0)
    whole = log_mel(x)
    assert whole.shape == (n_frames_for(len(x)), N_MELS)
    for seed in (0, 1):
        s = MelStream()
        parts = [s.push(c) for c in _chunks(x, seed)] + [s.finish()]
        np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_numpy_inference_equals_the_torch_network(tiny: LipsyncModel) -> None:
    import torch

    net = build_net(tiny.config)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in tiny.weights.items()})
    net.eval()
    feats = tiny.normalise(log_mel(_speech_like(2.0)))
    with torch.no_grad():
        y, _ = net(torch.from_numpy(np.ascontiguousarray(feats.T))[None])
    mouth, _, _ = tiny.run(feats, None)
    np.testing.assert_allclose(mouth, torch.sigmoid(y[0, : len(OUTPUTS)]).numpy().T, atol=1e-5)


def test_model_streamed_in_any_chunks_equals_whole_file(tiny: LipsyncModel) -> None:
    x = _speech_like()
    whole = tiny.predict(x, SAMPLE_RATE)
    assert whole.mouth.shape == (n_frames_for(len(x)), len(OUTPUTS))
    assert np.ptp(whole.mouth[:, 0]) > 1e-3  # the check below compares something that moves
    s = tiny.stream()
    parts = [s.push(c) for c in _chunks(x, 2)] + [s.finish()]
    mouth = np.concatenate([p[0] for p in parts])
    vis = np.concatenate([p[1] for p in parts])
    np.testing.assert_allclose(mouth, whole.mouth, atol=1e-5)
    np.testing.assert_allclose(vis, whole.visemes, atol=1e-5)


def test_output_reads_no_further_ahead_than_the_look_ahead(tiny: LipsyncModel) -> None:
    x = _speech_like()
    changed = x.copy()
    cut = 2 * SAMPLE_RATE
    changed[cut:] = np.random.default_rng(9).normal(0, 0.5, len(x) - cut)
    a, b = tiny.predict(x, SAMPLE_RATE).mouth, tiny.predict(changed, SAMPLE_RATE).mouth
    rate = tiny.config.frame_rate
    # frame j is final once audio reaches its centre plus the look-ahead
    last_final = int(np.floor((cut / SAMPLE_RATE - tiny.config.lookahead_s) * rate - 0.5))
    np.testing.assert_array_equal(a[: last_final + 1], b[: last_final + 1])
    assert np.abs(a[last_final + 3 :] - b[last_final + 3 :]).max() > 0
    assert tiny.config.lookahead_s <= 0.1


def test_motion_streamed_equals_whole_file_at_another_rate_and_fps(tiny: LipsyncModel) -> None:
    x = _speech_like()
    speech = Speech(x, SAMPLE_RATE, ())
    for fps in (25.0, 30.0):
        whole = audio_motion(tiny, x, SAMPLE_RATE, fps)
        s = AudioMotionStream(tiny, fps)
        pieces = [s.push(speech.slice(a, a + 1234)) for a in range(0, len(x), 1234)]
        # frames come out as soon as the audio covers their centre plus the look-ahead (<= 150 ms)
        assert s.lookahead_s <= 0.15
        assert sum(len(p) for p in pieces) >= int((len(x) / SAMPLE_RATE - s.lookahead_s - 1234 / SAMPLE_RATE) * fps)
        pieces.append(s.finish())
        np.testing.assert_allclose(np.concatenate(pieces), whole, atol=1e-5)
        assert len(whole) == int(np.ceil(len(x) / SAMPLE_RATE * fps - 1e-9))


def test_save_load_round_trip_and_mismatched_weights(tiny: LipsyncModel, tmp_path: Path) -> None:
    tiny.save(tmp_path / "m")
    back = LipsyncModel.load(tmp_path / "m")
    x = _speech_like(1.0)
    np.testing.assert_array_equal(back.predict(x, SAMPLE_RATE).mouth, tiny.predict(x, SAMPLE_RATE).mouth)
    cfg = (tmp_path / "m" / "config.json").read_text().replace('"channels": 8', '"channels": 12')
    (tmp_path / "m" / "config.json").write_text(cfg)
    with pytest.raises(LipsyncError, match="do not match"):
        LipsyncModel.load(tmp_path / "m")
    with pytest.raises(LipsyncError, match="no lip-sync model"):
        LipsyncModel.load(tmp_path / "nothing")


def test_targets_close_the_lips_on_bilabials_and_pauses() -> None:
    phones = (
        Phone(0.0, 0.5, "SIL"),
        Phone(0.5, 0.6, "M"),
        Phone(0.6, 0.8, "AA", 1),
        Phone(0.8, 0.9, "P"),
        Phone(0.9, 1.1, "AA"),
        Phone(1.1, 1.6, "SIL"),
    )
    tg, vis = mouth_targets(phones, 80)
    close, jaw = tg[:, OUTPUTS.index("mouthClose")], tg[:, OUTPUTS.index("jawOpen")]
    t = (np.arange(80) + 0.5) / 50
    assert close[(t > 0.53) & (t < 0.57)].min() > 0.99 and close[(t > 0.83) & (t < 0.87)].min() > 0.99
    assert jaw[(t > 0.65) & (t < 0.75)].min() > 0.4
    assert close[(t > 0.05) & (t < 0.45)].min() > 0.99  # the leading pause is closed
    assert VISEME_CLASSES[vis[(t > 0.83) & (t < 0.87)][0]] == "PP"


def test_shipped_model_silence_is_closed_and_noise_does_not_move_the_lips(shipped: LipsyncModel) -> None:
    n = 4 * SAMPLE_RATE
    t = np.arange(n) / SAMPLE_RATE
    rng = np.random.default_rng(0)
    inputs = {
        "silence": np.zeros(n),
        "white noise": rng.normal(0, 0.1, n),
        "tone sweep": 0.3 * np.sin(2 * np.pi * (100 * t + 2000 * t**2 / 4)),
    }
    for name, x in inputs.items():
        track = MotionTrack(FPS, audio_motion(shipped, x.astype(np.float32), SAMPLE_RATE, FPS))
        closed = float((lip_gap(track) < CLOSED_GAP).mean())
        assert closed >= (1.0 if name == "silence" else 0.9), f"{name}: mouth closed in {100 * closed:.0f}% of frames"


def test_shipped_model_closes_bilabials_and_opens_vowels_in_a_language_it_never_heard(
    shipped: LipsyncModel,
) -> None:
    tts = EspeakTTS("it")
    sr = tts.sample_rate
    speech = concat_speech(
        [silence(0.4, sr), tts.synthesize_sentence("Il mio babbo mangia una mela buona."), silence(0.5, sr)]
    )
    track = MotionTrack(FPS, audio_motion(shipped, speech.samples, sr, FPS))
    rep = evaluate(track, speech.phones)
    assert rep.bilabials >= 5
    assert rep.bilabial_closed >= 0.6, rep.row()
    # the mouth shuts within 160 ms of the speech's end and stays shut until it opens for the next word
    gap = lip_gap(track)
    for p in speech.phones:
        if p.symbol == SILENCE and p.duration_s > 0.3:
            late = _frames_in(track, p.start_s + 0.16, p.end_s - 0.1)
            assert (gap[late] < CLOSED_GAP).all(), f"open in the pause at {p.start_s:.2f} s"
    assert track.channel("jawOpen").max() > 0.3  # the vowels open the mouth


def test_silence_shuts_the_lips_whatever_the_model_says(tiny: LipsyncModel) -> None:
    # a model can let the lips part in a pause (the bundled one for a few frames after speech ends, an
    # untrained one throughout); where the audio is silent the mouth is shut from the pause's second frame
    # to the frame before the next word, and the words keep the model's mouth
    tts = EspeakTTS("pl")
    sr = tts.sample_rate
    speech = concat_speech(
        [tts.synthesize_sentence("Mama ma malego psa."), silence(0.6, sr), tts.synthesize_sentence("Pada deszcz.")]
    )
    rows = audio_motion(tiny, speech.samples, sr, FPS)
    track = MotionTrack(FPS, rows)
    mouth = [CHANNEL_INDEX[c] for c in tiny.config.outputs]
    pause = next(p for p in speech.phones if p.symbol == SILENCE and p.duration_s > 0.3)
    inside = _frames_in(track, pause.start_s + 0.08, pause.end_s - 0.08)
    assert len(inside) >= 8
    assert np.abs(rows[np.ix_(inside, mouth)]).max() < 1e-6  # shut (no expression offsets at rest)
    words = _frames_in(track, 0.2, pause.start_s - 0.1)
    assert np.abs(rows[np.ix_(words, mouth)]).max() > 0.05  # the model's mouth while speaking


def test_shipped_model_follows_a_real_recording(shipped: LipsyncModel) -> None:
    from motion.generator import MotionGenerator
    from tools.eval_align import read_reference_tsv
    from tools.motion_metrics import phones_from_segments

    x, sr = load_audio(media("speech", "goforward.wav"))
    phones = phones_from_segments(read_reference_tsv(media("groundtruth", "align", "goforward.phones.tsv"))[0])
    track = MotionTrack(FPS, audio_motion(shipped, x, sr, FPS))
    ref = MotionGenerator(FPS).generate(Speech(x, sr, tuple(phones)), n_frames=track.n_frames)
    r = float(np.corrcoef(track.channel("jawOpen"), ref.channel("jawOpen"))[0, 1])
    assert r > 0.6, f"jaw correlation with the phonetic motion on the true phones: {r:.2f}"
    assert evaluate(track, phones).pause_closed >= 0.9


def test_mouth_channels_from_the_model_and_the_rest_from_the_generator(shipped: LipsyncModel) -> None:
    vals = audio_motion(shipped, _speech_like(), SAMPLE_RATE, FPS)
    assert np.ptp(vals[:, CHANNEL_INDEX["headYaw"]]) > 0  # the head still moves
    assert np.all((vals[:, CHANNEL_INDEX["jawOpen"]] >= 0) & (vals[:, CHANNEL_INDEX["jawOpen"]] <= 1.5))


def test_train_cli_writes_a_model_and_resumes(tmp_path: Path) -> None:
    from tools.lipsync_data import generate

    data = tmp_path / "data"
    generate(data, "val", 0.1, 0, 0.0, ("it",))
    generate(data, "train", 0.3, 0, 0.0, ("de", "fr"))
    out = tmp_path / "model"
    exe = [sys.executable, "-m", "talker.cli", "train-lipsync", str(data), "--out", str(out), "--quiet"]
    r = subprocess.run(exe + ["--epochs", "1"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "best epoch 1" in r.stdout
    model = LipsyncModel.load(out)
    assert model.predict(_speech_like(1.0), SAMPLE_RATE).mouth.shape[1] == len(OUTPUTS)
    r = subprocess.run(exe + ["--epochs", "2"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(x.startswith("resumed") for x in lines) and any(x.startswith("epoch 2:") for x in lines)
    assert not any(x.startswith("epoch 1:") for x in lines)  # the first epoch is not run again
    assert LipsyncModel.load(out).config.lookahead == LipsyncModel.load().config.lookahead == 2
    # a shorter look-ahead for live use: the model's frames are final sooner
    quick = tmp_path / "quick"
    r = subprocess.run(
        exe[:6] + [str(quick), "--quiet", "--epochs", "1", "--lookahead", "1"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    # a 20 ms frame sooner
    assert LipsyncModel.load(quick).config.lookahead_s < LipsyncModel.load(out).config.lookahead_s - 0.015


def test_render_a_recording_with_the_learned_model_moves_the_mouth(tmp_path: Path, pipeline) -> None:
    import av

    from talker.pipeline import RenderSettings

    wav = media("speech", "librivox_ss01_0880.wav")
    out = tmp_path / "learned.mp4"
    settings = RenderSettings(size=(128, 128), seed=2)
    face = media("faces", "liveportrait_s9_mona_lisa.jpg")
    done = pipeline.render_audio(wav, out, face, None, settings, align=False)
    assert any("learned lip-sync model" in n for n in done.notes)
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24").astype(np.float32) for f in c.decode(video=0)]
    x, sr = load_audio(wav)
    assert abs(len(frames) / FPS - len(x) / sr) <= 1 / FPS + 0.04
    assert np.stack(frames).std(axis=0).max() > 20  # something (the mouth) moves a lot


def test_festival_voices_give_speech_with_exact_phone_timings() -> None:
    from tools.festival_speech import FestivalVoice, festival_voices, read_segments
    from tools.lipsync_data import recorded_voice_utterance

    assert festival_voices(), "scripts/setup.sh installs festival and its English voices"
    speech = FestivalVoice("kal_diphone").synthesize_sentence("Bob may buy a map.")
    symbols = [p.symbol for p in speech.phones]
    assert [s for s in symbols if s in ("P", "B", "M")] == ["B", "B", "M", "B", "M", "P"]
    assert speech.phones[0].start_s == 0 and abs(speech.phones[-1].end_s - speech.duration_s) < 1e-6
    # the closure of the final p is quiet against the vowel before it: the timings are where the sound is
    x = speech.samples
    p = next(ph for ph in reversed(speech.phones) if ph.symbol == "P")
    vowel = speech.phones[speech.phones.index(p) - 1]

    def rms(a: float, b: float) -> float:
        return float(np.sqrt(np.mean(x[int(a * speech.sample_rate) : int(b * speech.sample_rate)] ** 2)))

    assert rms(p.start_s, p.start_s + 0.6 * p.duration_s) < 0.3 * rms(vowel.start_s, vowel.end_s)
    slow = FestivalVoice("kal_diphone", stretch=1.5).synthesize_sentence("Bob may buy a map.")
    assert slow.duration_s > 1.3 * speech.duration_s
    # the label file's symbols outside ARPAbet are mapped, pauses become silence
    labels = read_segments("#\n0.1 100 pau\n0.2 100 ax\n0.3 100 m\n", 0.35)
    assert [p.symbol for p in labels] == ["SIL", "AH", "M", "SIL"]
    u = recorded_voice_utterance(np.random.default_rng(3), "festival")
    assert u is not None and u.meta["engine"] == "festival" and len(u.audio) > 16000
