"""Personas: made from a description and/or an image, persisted in SQLite with their images, rendered."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import media

from motion.generator import MotionStyle
from render.landmarks import MEDIAPIPE_478, FaceLandmarks, MediaPipeFaceMesh, NoFaceError
from talker.chat import ChatSettings
from talker.facegen import Attempt, GeneratedFace
from talker.persona import (
    BUNDLED_PORTRAITS,
    DB_NAME,
    AudioVoiceBank,
    BundledPortrait,
    Persona,
    PersonaError,
    PersonaMaker,
    PersonaNotFound,
    PersonaStore,
    expression_from_description,
    name_from_description,
    rank_portraits,
    render_persona,
)
from talker.pipeline import RenderSettings
from talker.portrait import load_image

CAT_POINTS = "170,115;320,137;263,248;232,280;292,283"


@pytest.fixture(scope="module")
def detector():
    return MediaPipeFaceMesh()


@pytest.fixture(scope="module")
def maker(detector):
    # keyword ranking: no embedding model to load (the CLI test covers the embedding path)
    return PersonaMaker(voices=AudioVoiceBank(use_embeddings=False), detector=detector)


def test_description_alone(tmp_path, maker):
    store = PersonaStore(tmp_path)
    made = store.create("a grumpy old woman who sells fish", maker=maker)
    p = made.persona
    assert p.name == "Grumpy Old Woman Who Sells Fish"
    assert p.expression == "angry" and p.intensity == 0.5 and p.idle == "calm"
    # a bundled portrait of a woman (the description says so)
    assert p.face_source in ("bundled:eileen_collins", "bundled:mona_lisa")
    ranked = [r.voice_id for r in made.voice_ranking]
    assert ranked[0] == p.voice_id and len(ranked) > 10
    assert "female" in made.voice_ranking[0].summary and "old" in made.voice_ranking[0].summary
    assert Path(p.face_path).is_file() and Path(p.face_path).parent == tmp_path / "persona_faces"
    assert "Grumpy Old Woman" in p.chat.system_prompt
    # a second store on the same folder (a restart) sees the same persona
    again = PersonaStore(tmp_path)
    assert again.get(p.id) == p
    assert [x.id for x in again.list()] == [p.id]
    # ... and so does a store on the folder after it moved
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    tmp_path.rename(moved)
    q = PersonaStore(moved).get(p.id)
    assert Path(q.face_path).is_file() and Path(q.face_path).parent == moved / "persona_faces"


def test_image_alone(tmp_path, maker):
    store = PersonaStore(tmp_path)
    p = store.create(image=media("faces", "obama.jpg"), maker=maker).persona
    assert p.name == "Obama" and p.description == ""
    assert p.face_source == "image" and p.face_points is None
    stored = load_image(p.face_path)
    assert stored.shape == load_image(media("faces", "obama.jpg")).shape


def test_description_image_and_points_then_render(tmp_path, maker, detector):
    store = PersonaStore(tmp_path)
    p = store.create(
        "a lazy cat who speaks slowly", media("nonhuman", "chelsea_cat.png"), CAT_POINTS, maker=maker
    ).persona
    assert p.face_points is not None and p.face_points[0] == (170.0, 115.0)
    assert p.voice_params["rate"] < 1.0  # "slowly"
    out = tmp_path / "cat.mp4"
    result = render_persona(
        p, "Feed me now.", out, RenderSettings(size=(128, 128)), voices=AudioVoiceBank(False), detector=detector
    )
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.width == 128
        assert c.streams.audio
        n = sum(1 for _ in c.decode(video=0))
    assert n == result.n_frames > 10


def test_image_without_a_face_needs_points(tmp_path, maker):
    store = PersonaStore(tmp_path)
    with pytest.raises(NoFaceError, match="--points"):
        store.create("a cat", media("nonhuman", "chelsea_cat.png"), maker=maker)
    assert store.list() == [] and list((tmp_path / "persona_faces").iterdir()) == []


def test_bad_input_is_refused(tmp_path, maker):
    store = PersonaStore(tmp_path)
    with pytest.raises(PersonaError, match="description, an image, or both"):
        store.create(maker=maker)
    with pytest.raises(PersonaError, match="give the image too"):
        store.create("a cat", points=CAT_POINTS, maker=maker)
    with pytest.raises(PersonaError, match="unknown expression"):
        store.create("a cat", maker=maker, expression="smug")
    with pytest.raises(PersonaError, match="idle style"):
        store.create("a cat", maker=maker, idle="frantic")
    with pytest.raises(ValueError, match="swap them"):
        store.create(
            "a cat", media("nonhuman", "chelsea_cat.png"), "320,137;170,115;263,248;232,280;292,283", maker=maker
        )
    with pytest.raises(PersonaNotFound):
        store.get("nope")
    assert store.delete("nope") is False


def test_delete_removes_row_and_image(tmp_path, maker):
    store = PersonaStore(tmp_path)
    a = store.create("a jolly baker", maker=maker).persona
    b = store.create("a shy librarian", maker=maker, voice_id="piper:joe", voice_params={"rate": 1.2}).persona
    assert b.voice_id == "piper:joe" and b.voice_params == {"rate": 1.2}
    assert store.delete(a.id) is True
    assert not Path(a.face_path).exists() and Path(b.face_path).exists()
    assert [p.id for p in store.list()] == [b.id]
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        assert db.execute("SELECT count(*) FROM personas").fetchone()[0] == 1


def test_options_override_the_description(tmp_path, maker):
    chat = ChatSettings(base_url="http://llm.local/v1", model="m", api_key_env="MY_KEY", system_prompt="Be brief.")
    p = (
        PersonaStore(tmp_path)
        .create(
            "a cheerful pirate",
            maker=maker,
            name="Long John",
            expression="sad",
            intensity=1.2,
            idle="lively",
            chat=chat,
        )
        .persona
    )
    assert (p.name, p.expression, p.intensity, p.idle) == ("Long John", "sad", 1.2, "lively")
    assert p.chat == chat
    style = p.motion_style()
    assert isinstance(style, MotionStyle) and style.expression == "sad" and style.head_amplitude_deg > 2


def test_round_trip_json():
    p = Persona(
        id="abc",
        name="N",
        description="d",
        voice_id="espeak:en-us+f3",
        voice_params={"rate": 1.1, "variant": "f3"},
        face_path="/x.png",
        face_points=((1.0, 2.0), (9.0, 2.0), (5.0, 6.0), (3.0, 9.0), (7.0, 9.0)),
        chat=ChatSettings(model="m"),
    )
    assert Persona.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_concurrent_creates(tmp_path, maker):
    store = PersonaStore(tmp_path)
    ids: list[str] = []
    errors: list[Exception] = []

    def work(i: int) -> None:
        try:
            ids.append(store.create(f"a calm sailor number {i}", maker=maker, voice_id="piper:joe").persona.id)
        except Exception as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(p.id for p in store.list()) == sorted(ids) and len(ids) == 4


class FakeGenerator:
    """Stands in for talker.facegen.FaceGenerator: 'generates' the bundled portrait."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def generate(self, description, image=None, seed=0, progress=None):
        self.calls.append((description, image is not None))
        rgb = load_image(BUNDLED_PORTRAITS[0].path)
        face = FaceLandmarks(np.zeros((478, 3), np.float32), MEDIAPIPE_478, (rgb.shape[1], rgb.shape[0]))
        return GeneratedFace(rgb, face, description, (Attempt(0, seed, 1.0, None, True),))


def test_generator_makes_the_face_when_configured(tmp_path, detector):
    gen = FakeGenerator()
    maker = PersonaMaker(voices=AudioVoiceBank(False), detector=detector, face_generator=lambda: gen)
    store = PersonaStore(tmp_path)
    made = store.create("a wise old wizard", maker=maker)
    assert made.persona.face_source == "generated" and gen.calls == [("a wise old wizard", False)]
    assert any("generated" in n for n in made.notes)
    # an image without a face and no points: the generator turns it into a face
    p2 = store.create("a talking cat", media("nonhuman", "chelsea_cat.png"), maker=maker).persona
    assert p2.face_source == "generated-from-image" and gen.calls[-1] == ("a talking cat", True)


def test_portrait_picking_is_general():
    old_man = BundledPortrait("old_man", "portrait.png", "an old man with a white beard", "male", "old", "test")
    ranked = rank_portraits("a grumpy old man", BUNDLED_PORTRAITS + (old_man,))
    assert ranked[0][0].name == "old_man"
    ranked = rank_portraits("a smiling woman astronaut", BUNDLED_PORTRAITS + (old_man,))
    assert ranked[0][0].name == "eileen_collins"


def test_words_of_the_description():
    assert name_from_description("a cheerful old sea captain, who loves the sea") == "Cheerful Old Sea Captain"
    assert expression_from_description("a jolly fellow") == ("happy", 0.5)
    assert expression_from_description("a plain man") == ("neutral", 1.0)
