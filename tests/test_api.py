"""The public API: ``import talker`` stays light, the README's Python example runs as written, voices by
language, and the ``talker voices`` command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_python() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_import_talker_loads_no_heavy_module() -> None:
    code = (
        "import sys, talker\n"
        "heavy = {'numpy', 'cv2', 'mediapipe', 'torch', 'onnxruntime', 'av', 'audio', 'render', 'motion'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
        "print(all(hasattr(talker, n) for n in talker.__all__))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded, has_all = out.stdout.splitlines()
    assert loaded == "[]"
    assert has_all == "True"  # every exported name resolves (after the first line checked what import loaded)


def test_unknown_name_is_an_attribute_error() -> None:
    import talker

    with pytest.raises(AttributeError, match="no_such_name"):
        _ = talker.no_such_name  # type: ignore[attr-defined]


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _readme_python()
    assert blocks, "the README has a Python example"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})
    import av

    for name in ("hello.mp4", "bonjour.mp4"):
        with av.open(str(tmp_path / name)) as f:
            kinds = {s.type for s in f.streams}
            assert kinds == {"video", "audio"}, name
            assert f.duration and f.duration > 0.5e6, name  # microseconds


def test_voices_by_language() -> None:
    import talker

    german = talker.list_voices(language="de")
    assert german and all(v.language.split("-")[0] == "de" for v in german)
    assert talker.list_voices(language="German") == german
    assert talker.voice_for_language("en").id == "piper:joe"
    assert talker.voice_for_language("fr").language == "fr-fr"
    with pytest.raises(talker.VoiceError, match="no voice speaks"):
        talker.voice_for_language("xx-nowhere")


def test_render_checks_its_arguments(tmp_path: Path) -> None:
    import talker

    out = tmp_path / "x.mp4"
    with pytest.raises(ValueError, match="give the words"):
        talker.render(out=out)
    with pytest.raises(ValueError, match="fps"):
        talker.render(text="Hi", out=out, fps=0)
    with pytest.raises(ValueError, match="expression"):
        talker.render(text="Hi", out=out, expression="bored")
    with pytest.raises(talker.VoiceError, match="speaks"):
        talker.render(text="Hi", out=out, voice="piper:joe", language="de")
    with pytest.raises(ValueError, match="recording"):
        talker.render(audio="talk.wav", out=out, voice="espeak:de")
    assert not out.exists()


def test_render_a_recording_with_the_learned_lipsync(tmp_path: Path) -> None:
    import talker
    from motion.lipsync import LipsyncError
    from tests.conftest import media

    clip = media("speech", "cards_001.wav")
    out = tmp_path / "lips.mp4"
    result = talker.render(audio=clip, out=out, size=128)  # (a recording alone: the model by default)
    assert out.stat().st_size > 0 and any("learned lip-sync" in n for n in result.notes)
    assert abs(result.n_frames - 25 * result.duration_s) <= 1 and result.duration_s > 1.0
    with pytest.raises(LipsyncError, match="no lip-sync model in"):
        talker.render(audio=clip, lipsync=tmp_path, out=out)
    with pytest.raises(ValueError, match="transcript"):
        talker.render(audio=clip, text="two of hearts", lipsync=True, out=out)
    with pytest.raises(ValueError, match="use it with audio"):
        talker.render(text="Hi", lipsync=True, out=out)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "talker.cli", *args], cwd=ROOT, capture_output=True, text=True)


def test_cli_voices() -> None:
    r = _cli("voices", "--language", "de", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert rows and {"id", "language", "gender", "age", "description"} <= set(rows[0])
    assert all(row["language"].split("-")[0] == "de" for row in rows)
    r = _cli("voices")
    assert r.returncode == 0 and "piper:joe" in r.stdout and "languages" in r.stdout.splitlines()[-1]
    r = _cli("voices", "--language", "xx-nowhere")
    assert r.returncode == 2 and "no voice speaks" in r.stderr


def test_cli_voice_errors_exit_2() -> None:
    r = _cli("render", "--text", "Hi", "--voice", "nobackend", "--out", "never.mp4")
    assert r.returncode == 2 and "voice id" in r.stderr
    r = _cli("render", "--audio", "talk.wav", "--voice", "espeak:de", "--out", "never.mp4")
    assert r.returncode == 2 and "--audio" in r.stderr
    assert not (ROOT / "never.mp4").exists()


def test_readme_commands_parse() -> None:
    """Every ``talker ...`` line of the README's shell examples is a valid command line (parsed, not run)."""
    import shlex

    from talker.cli import build_parser

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [
        line.split("#")[0].strip()
        for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)
        for line in block.splitlines()
    ]
    commands = [c for c in lines if c.startswith("talker ") and "[" not in c and "|" not in c]
    assert len(commands) >= 15
    parser = build_parser()
    for command in commands:
        try:
            parser.parse_args(shlex.split(command)[1:])
        except SystemExit as e:
            raise AssertionError(f"README command does not parse: {command}") from e
