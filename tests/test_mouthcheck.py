"""The open-mouth measure: what shows inside the lips, on renders and on filmed frames alike."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import media


@pytest.fixture(scope="module")
def mesh():
    from render.landmarks import MediaPipeFaceMesh

    m = MediaPipeFaceMesh(max_faces=1)
    yield m
    m.close()


def test_a_renders_opening_is_measured_as_it_widens(mesh) -> None:
    from tools.mouthcheck import JAW_SWEEP, measure_frames, render_sweep

    rows = measure_frames(render_sweep(str(media("faces", "obama_biden_two_people.jpg"))), mesh)
    got = [(j, r) for j, r in zip(JAW_SWEEP, rows) if r is not None]
    assert len(got) >= len(JAW_SWEEP) - 1  # every open mouth is found
    gaps = [r.gap for _, r in got]
    assert gaps[-1] > 0.3 and gaps[0] < 0.12, gaps
    assert np.corrcoef([j for j, _ in got], gaps)[0, 1] > 0.95
    for _, r in got:
        assert 0.0 <= r.teeth <= 1.0 and 0.0 <= r.dark <= 1.0 and r.teeth + r.dark <= 1.0
    # his portrait shows no teeth: the drawn ones are found, and from a speech-sized opening on (a
    # narrower slit is mostly its dark edges) the cavity darkens as the mouth widens
    assert max(r.teeth for _, r in got) > 0.3
    speech = [r for _, r in got if r.gap >= 0.1]
    assert speech[-1].dark > speech[0].dark + 0.1  # a wider opening shows more dark


def test_a_shut_mouth_has_no_opening_to_measure(mesh) -> None:
    import cv2

    from tools.mouthcheck import mouth_interior

    img = cv2.cvtColor(cv2.imread(str(media("faces", "obama_biden_two_people.jpg"))), cv2.COLOR_BGR2RGB)
    face = max(mesh.detect(img), key=lambda f: f.area)
    r = mouth_interior(img, face)
    assert r is None or r.gap < 0.03


@pytest.mark.slow  # filmed footage: in the larger media set only
def test_a_filmed_speakers_teeth_are_found(mesh, capsys) -> None:
    # the HDTF speaker shows her teeth as she talks: at gaps over 0.12 eye distances about half the opening
    from tools.mouthcheck import main

    assert main(["--video", str(media("video", "hdtf_WDA_KatieHill_000.mp4")), "--max-frames", "120"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "gap 0.12-0.20" in x)
    teeth = float(line.split("teeth")[1].split()[0])
    assert 0.3 < teeth < 0.8, line


def test_a_talking_video_is_read_and_its_teeth_found(tmp_path, capsys) -> None:
    # a video of our own making from a repository portrait: Obama smiles with his own teeth, which the
    # render moves with the jaw, so a speech-sized opening shows mostly teeth and little dark
    import talker
    from tools.mouthcheck import main

    video = tmp_path / "obama.mp4"
    text = "Hello there, how are you today? I am glad to meet you all."
    done = talker.render(text=text, out=video, face=media("faces", "obama.jpg"), voice="espeak:en-us", size=384)
    assert main(["--video", str(video), "--max-frames", "120"]) == 0
    out = capsys.readouterr().out
    assert f" {(min(done.n_frames, 120) + 1) // 2} frames)" in out.splitlines()[0]  # every second frame
    rows = {line.split(":")[0].strip(): line for line in out.splitlines() if "gap " in line}
    assert len(rows) >= 3  # the mouth opens to several widths while speaking
    speech = rows["gap 0.20-0.30"]
    assert float(speech.split("teeth")[1].split()[0]) > 0.5 and float(speech.split("dark")[1].split()[0]) < 0.2
