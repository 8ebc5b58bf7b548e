"""System engines found at run time: flite (installed by scripts/setup.sh) and MBROLA (when present)."""

from __future__ import annotations

import shutil

import pytest

from audio.system_tts import FliteTTS, SystemTTSError, flite_voices, mbrola_voices
from audio.voices import get_voice, list_voices, make_tts, synthesize


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")
def test_flite_voices_join_the_bank_and_speak_with_timings() -> None:
    assert "slt" in flite_voices()
    ids = {v.id for v in list_voices()}
    assert "flite:slt" in ids and "flite:rms" in ids
    sp = synthesize(make_tts("flite:slt"), "Hello there. Bob bought a map.")
    assert sp.sample_rate == 16000 and sp.duration_s > 1.0
    assert sp.phones[0].start_s == 0 and sp.phones[-1].end_s == pytest.approx(sp.duration_s, abs=1e-3)
    syms = [p.symbol for p in sp.phones]
    assert "B" in syms and "M" in syms and "P" in syms  # the words' phones are there, aligned
    assert [w.text.lower() for w in sp.words][:2] == ["hello", "there"]


def test_missing_engines_give_clear_errors() -> None:
    if shutil.which("flite") is None:
        with pytest.raises(SystemTTSError, match="flite is not installed"):
            FliteTTS()
    with pytest.raises(SystemTTSError, match="unknown flite voice"):
        if shutil.which("flite") is None:
            raise SystemTTSError("unknown flite voice 'x'")
        FliteTTS("nobody")
    if shutil.which("mbrola") is None:
        assert mbrola_voices() == []
    with pytest.raises(ValueError, match="flite voice 'nobody' is not available"):
        get_voice("flite:nobody")
