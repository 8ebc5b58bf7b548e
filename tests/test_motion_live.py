"""MixedMotionStream: phones move the mouth the phonetic way, audio without phones through the lip-sync model."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from audio.io import load_audio
from audio.types import SILENCE, Phone, Speech
from motion.audio_motion import audio_motion
from motion.generator import MotionStream
from motion.lipsync import LipsyncModel
from motion.live import MixedMotionStream
from motion.types import CHANNEL_INDEX
from server.audio_in import AudioFormatError, PcmFormat
from tests.conftest import media


@pytest.fixture(scope="module")
def model() -> LipsyncModel:
    return LipsyncModel.load()


def test_without_outside_audio_it_is_the_phonetic_stream(model: LipsyncModel) -> None:
    sr = 16000
    phones = (Phone(0.0, 0.2, SILENCE), Phone(0.2, 0.5, "AA", 1), Phone(0.5, 0.6, "M"), Phone(0.6, 1.0, SILENCE))
    speech = Speech(np.zeros(sr, np.float32), sr, phones)
    a, b = MotionStream(25.0, seed=3), MixedMotionStream(model, 25.0, seed=3)
    want = np.concatenate([a.push(speech), a.push(speech), a.finish()])
    got = np.concatenate([b.push(speech), b.push(speech), b.finish()])
    assert not b.model_driven
    np.testing.assert_array_equal(got, want)


def test_outside_audio_in_chunks_equals_the_whole_file_model_track(model: LipsyncModel) -> None:
    x, sr = load_audio(str(media("speech", "cards_001.wav")))
    want = audio_motion(model, x, sr, 25.0, seed=0)
    s = MixedMotionStream(model, 25.0, seed=0)
    spf = sr // 25
    out = []
    for i in range(0, len(x), 3 * spf):
        out.append(s.push(Speech(x[i : i + 3 * spf], sr, ())))
        s = copy.deepcopy(s)  # the timeline snapshots the stream before every push
        assert s.model is model, "a snapshot shares the model's weights"
    got = np.concatenate([*out, s.finish()])
    np.testing.assert_allclose(got, want, atol=1e-5)
    jaw = got[:, CHANNEL_INDEX["jawOpen"]]
    assert jaw.max() > 0.2, "speech opens the mouth"


def test_silence_after_outside_speech_closes_the_mouth(model: LipsyncModel) -> None:
    x, sr = load_audio(str(media("speech", "cards_001.wav")))
    s = MixedMotionStream(model, 25.0)
    rows = [s.push(Speech(x, sr, ()))]
    silence = Speech(np.zeros(sr, np.float32), sr, (Phone(0.0, 1.0, SILENCE),))  # what an idle timeline pushes
    rows += [s.push(silence), s.push(silence)]
    tail = np.concatenate(rows)[-25:]
    gap = tail[:, CHANNEL_INDEX["jawOpen"]] * (1 - tail[:, CHANNEL_INDEX["mouthClose"]])
    assert gap.max() < 0.04


def test_pcm_format_is_checked_and_decoded() -> None:
    fmt = PcmFormat.parse({"sample_rate": "44100", "channels": "2"})
    assert fmt == PcmFormat(44100, 2, "s16le")
    stereo = np.array([[1000, 3000], [-2000, -4000]], "<i2").tobytes()
    np.testing.assert_array_equal(fmt.decode(stereo), [2000, -3000])
    with pytest.raises(AudioFormatError, match="not whole s16le frames of 2 channel"):
        fmt.decode(stereo[:6])
    for fields, words in (
        ({}, "declare the audio format"),
        ({"sample_rate": 100}, "sample_rate 100 is outside"),
        ({"sample_rate": 16000, "channels": 0}, "channels 0 is outside"),
        ({"sample_rate": 16000, "encoding": "mp3"}, "encoding 'mp3' is not supported"),
    ):
        with pytest.raises(AudioFormatError, match=words):
            PcmFormat.parse(fields)
