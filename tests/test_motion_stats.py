"""motion.stats: the statistics mean what they say, and the generator moves like the filmed reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import media

from audio.types import Phone
from motion.generator import MotionGenerator, MotionStyle
from motion.stats import compare, lip_gap_iod, motion_stats, reference_ranges
from motion.types import MotionTrack


def _track(fps: float = 25.0, seconds: float = 6.0) -> MotionTrack:
    return MotionTrack.neutral(int(fps * seconds), fps)


def test_articulation_speed_and_blinks_of_a_known_track() -> None:
    t = _track()
    n = t.n_frames
    time = (np.arange(n) + 0.5) / t.fps
    v = t.values.copy()
    tr = MotionTrack(t.fps, v)
    # the jaw swings 0..0.4 at 2 Hz: the lip gap (0.2 IOD peak to peak) travels 0.8 IOD a second
    v[:, tr.channels.index("jawOpen")] = 0.2 * (1 - np.cos(2 * np.pi * 2 * time))
    # three blinks, 0.12 s shut each
    for start in (1.0, 3.0, 5.0):
        shut = (time >= start) & (time < start + 0.12)
        v[shut, tr.channels.index("eyeBlinkLeft")] = 1.0
        v[shut, tr.channels.index("eyeBlinkRight")] = 1.0
    s = motion_stats(tr)
    assert s["articulation_speed_iod_s"] == pytest.approx(0.8, rel=0.05)
    assert s["blinks_per_min"] == pytest.approx(30.0)
    assert s["blink_s"] == pytest.approx(0.12)
    assert lip_gap_iod(tr).max() == pytest.approx(0.2, abs=1e-3)


def test_speaking_and_listening_are_told_apart_by_phones() -> None:
    tr = _track()
    v = tr.values.copy()
    time = (np.arange(tr.n_frames) + 0.5) / tr.fps
    v[:, tr.channels.index("headRoll")] = np.where(time < 3.0, 3.0 * np.sin(2 * np.pi * time), 0.0)
    phones = [Phone(0.0, 3.0, "AA", 1), Phone(3.0, 6.0, "SIL")]
    s = motion_stats(MotionTrack(tr.fps, v), phones)
    assert s["speaking_share"] == pytest.approx(0.5)
    assert s["head_roll_sd_speaking_deg"] > 1.5 and s["head_roll_sd_listening_deg"] < 1e-6
    assert 0.7 < s["head_roll_centroid_hz"] < 1.3


def _speech(stem: str = "librivox_ss01_0880"):  # type: ignore[no-untyped-def]
    from audio.io import load_audio
    from tools.eval_align import read_reference_tsv
    from tools.eval_motion import _speech
    from tools.motion_metrics import phones_from_segments

    wav = media("speech", f"{stem}.wav")
    tsv = media("groundtruth", "align", f"{stem}.phones.tsv")
    s, sr = load_audio(wav)
    return _speech(s, sr, phones_from_segments(read_reference_tsv(tsv)[0], len(s) / sr))


def test_generated_mouth_and_head_fall_inside_the_filmed_reference() -> None:
    """Real speech at a conversational rate, three seeds: the mouth's speed and opening and the head's pitch
    lie inside what filmed speakers do. (Slow reading articulates slower, as it should.)"""
    speech = _speech()
    ranges = reference_ranges()
    for seed in (0, 1, 2):
        s = motion_stats(MotionGenerator(25.0, seed).generate(speech), speech.phones)
        inside = compare(s, ranges)
        for k in ("articulation_speed_iod_s", "lip_gap_p50_iod", "lip_gap_p90_iod", "head_pitch_sd_speaking_deg"):
            assert inside[k], (seed, k, s[k], ranges[k])


def test_energy_scales_head_and_mouth_and_keeps_closures() -> None:
    from tools.motion_metrics import evaluate

    speech = _speech()
    stats = []
    for energy in (0.0, 0.5, 1.0):
        track = MotionGenerator(25.0, 0, MotionStyle(energy=energy)).generate(speech)
        rep = evaluate(track, speech.phones)
        assert rep.bilabial_closed == 1.0 and rep.pause_closed >= 0.98
        stats.append(motion_stats(track, speech.phones))
    for k in ("articulation_speed_iod_s", "head_roll_sd_speaking_deg", "head_pitch_sd_speaking_deg"):
        assert stats[0][k] < stats[1][k] < stats[2][k], k
    with pytest.raises(ValueError, match="energy"):
        MotionStyle(energy=1.5)


@pytest.mark.slow
def test_motion_stats_cli_reads_a_filmed_clip(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from talker.cli import main

    video = media("video", "hdtf_WDA_KatieHill_000.mp4")
    assert main(["motion-stats", "--json", str(video)]) == 0
    rep = json.loads(capsys.readouterr().out)[str(video)]
    assert 0.3 < rep["stats"]["articulation_speed_iod_s"] < 0.8
    assert rep["stats"]["blinks_per_min"] > 10
    assert rep["inside_reference"]["articulation_speed_iod_s"] is True


def test_motion_stats_cli_bad_file_is_a_clear_error(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from talker.cli import main

    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"not a video")
    assert main(["motion-stats", str(bad)]) == 2
    assert "x.mp4" in capfd.readouterr().err


def test_mouth_curves_do_not_depend_on_the_sampling_step() -> None:
    """The learned lip-sync model's targets are drawn at 50 frames a second: the same curves as at 25."""
    from motion.coarticulation import mouth_curves

    speech = _speech()
    n = int(speech.duration_s * 25) - 1
    t25 = np.arange(n) * 0.04 + 0.01
    t50 = np.arange(2 * n) * 0.02 + 0.01
    a = mouth_curves(speech.phones, t25, 25.0)
    b = mouth_curves(speech.phones, t50, 25.0)[::2]
    assert np.abs(a - b).max() < 0.02
