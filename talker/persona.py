# Over 400 lines: a persona is made and stored as one record; the model and rules are in persona_model, persona_rules.
"""Personas: a face, a voice and a manner, chosen once from a description and reused for every utterance.

A ``Persona`` holds the voice (a voice-bank id + parameters), the face (an image file in the store, and
five points when no detector finds a face in it), expression and idle-motion defaults, and the chat
settings of an OpenAI-compatible endpoint. ``PersonaStore`` keeps them in SQLite (``personas.sqlite3``, or
PostgreSQL with ``TALKER_DATABASE_URL``) with the face images under ``persona_faces/`` in one data folder,
so a restart loses nothing.

Creating one (``PersonaStore.create``, built by ``PersonaMaker``) takes a description, an image, or both:

* voice: ``choose_voice(description)`` of the voice bank (``audio.voices``), ranking kept for display;
* face: the image given (its face detected, or fitted to the five points given); with no image, a face
  generated from the description when a diffusers model folder is configured (``talker.facegen``), else
  the bundled public-domain portrait that best matches the description (``BUNDLED_PORTRAITS``);
* expression, idle style, name and system prompt: from words of the description unless given.

The persona itself is in ``talker.persona_model``, the rules that choose from a description in
``talker.persona_rules``; their names are importable from here.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from render.landmarks import LandmarkDetector, MediaPipeFaceMesh, NoFaceError
from talker.chat import ChatSettings
from talker.db import Database
from talker.persona_model import (
    DB_NAME,
    FACES_DIR,
    IDLE_STYLES,
    MAX_DESCRIPTION_CHARS,
    MAX_NAME_CHARS,
    SCHEMA_VERSION,
    Persona,
    PersonaError,
    PersonaNotFound,
)
from talker.persona_rules import (
    BUNDLED_PORTRAITS,
    AudioVoiceBank,
    BundledPortrait,
    VoiceBank,
    VoicePick,
    VoiceRank,
    default_voice_bank,
    expression_from_description,
    idle_from_description,
    name_from_description,
    rank_portraits,
    system_prompt_for,
)
from talker.pipeline import DEFAULT_SIZE, Avatar, Pipeline, RenderResult, RenderSettings
from talker.points import avatar_for, face_from_points, parse_points
from talker.portrait import ImageError, find_face, load_image

__all__ = [
    "BUNDLED_PORTRAITS",
    "DB_NAME",
    "FACES_DIR",
    "IDLE_STYLES",
    "MAX_DESCRIPTION_CHARS",
    "MAX_NAME_CHARS",
    "SCHEMA_VERSION",
    "AudioVoiceBank",
    "BundledPortrait",
    "Created",
    "Draft",
    "Persona",
    "PersonaError",
    "PersonaMaker",
    "PersonaNotFound",
    "PersonaStore",
    "VoiceBank",
    "VoicePick",
    "VoiceRank",
    "default_voice_bank",
    "expression_from_description",
    "idle_from_description",
    "name_from_description",
    "persona_avatar",
    "rank_portraits",
    "render_persona",
    "system_prompt_for",
]

# --- making a persona ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """A persona before it is stored, with the image to store and how each choice was made."""

    persona: Persona
    image: np.ndarray  # RGB uint8, the face image to keep
    voice_ranking: tuple[VoiceRank, ...] = ()
    portrait_ranking: tuple[tuple[str, float], ...] = ()
    notes: tuple[str, ...] = ()


class PersonaMaker:
    """Turns a description and/or an image into a ``Draft`` (components injected, built lazily).

    face_generator: a ``talker.facegen.FaceGenerator`` (or a factory returning one), used for faces when
    no image is given and for images without a face when no points are given; None = bundled portraits.
    """

    def __init__(
        self,
        voices: VoiceBank | None = None,
        detector: LandmarkDetector | None = None,
        face_generator: Any = None,
        portraits: Sequence[BundledPortrait] = BUNDLED_PORTRAITS,
    ) -> None:
        self._voices = voices
        self._detector = detector
        self._face_generator = face_generator
        self.portraits = tuple(portraits)

    @property
    def voices(self) -> VoiceBank:
        if self._voices is None:
            self._voices = default_voice_bank()
        return self._voices

    @property
    def detector(self) -> LandmarkDetector:
        if self._detector is None:
            self._detector = MediaPipeFaceMesh()
        return self._detector

    def _generator(self) -> Any:
        gen = self._face_generator
        if callable(gen) and not hasattr(gen, "generate"):
            gen = self._face_generator = gen()
        return gen

    def make(
        self,
        description: str = "",
        image: str | Path | np.ndarray | None = None,
        points: str | np.ndarray | Sequence[Sequence[float]] | None = None,
        name: str | None = None,
        *,
        voice_id: str | None = None,
        voice_params: dict[str, Any] | None = None,
        expression: str | None = None,
        intensity: float | None = None,
        idle: str | None = None,
        chat: ChatSettings | None = None,
        seed: int = 0,
    ) -> Draft:
        description = " ".join((description or "").split())
        if not description and image is None:
            raise PersonaError("a persona needs a description, an image, or both")
        if points is not None and image is None:
            raise PersonaError("five points locate a face in an image: give the image too")
        notes: list[str] = []
        image_name = ""
        if image is not None and not isinstance(image, np.ndarray):
            image_name = Path(image).stem
        if name is None or not name.strip():
            name = name_from_description(description) if description else _name_from_file(image_name)
        name = name.strip()

        # voice
        ranking: tuple[VoiceRank, ...] = ()
        if voice_id is None:
            pick = self.voices.choose(description)
            voice_id, params, ranking = pick.voice_id, dict(pick.params), pick.ranking
        else:
            params = {}
        if voice_params:
            params.update(voice_params)
        self.voices.tts(voice_id, params)  # an unknown voice or bad parameters fail now, not at the first render

        # face
        pts_tuple: tuple[tuple[float, float], ...] | None = None
        portrait_ranking: tuple[tuple[str, float], ...] = ()
        if image is not None:
            rgb = image if isinstance(image, np.ndarray) else load_image(image)
            source = "the given image" if isinstance(image, np.ndarray) else str(image)
            if points is not None:
                pts = parse_points(points) if isinstance(points, str) else np.asarray(points, np.float64)
                face_from_points(pts, (rgb.shape[1], rgb.shape[0]))  # fails early on a bad layout
                pts_tuple = tuple((float(x), float(y)) for x, y in pts)
                face_source = "image"
                notes.append("face: the image, located by the five points given")
            else:
                try:
                    find_face(rgb, self.detector, source)
                    face_source = "image"
                    notes.append("face: the image (face detected)")
                except NoFaceError as e:
                    gen = self._generator()
                    if gen is None:
                        raise NoFaceError(
                            f"{e}; give five points (--points 'x,y;x,y;x,y;x,y;x,y': right eye, left eye, nose tip, "
                            "right and left mouth corner) or configure a face generator model folder"
                        ) from e
                    out = gen.generate(description or name, image=rgb, seed=seed)
                    rgb, face_source = out.image, "generated-from-image"
                    notes.append(f"face: generated from the image in {len(out.attempts)} attempt(s)")
        else:
            gen = self._generator()
            if gen is not None:
                out = gen.generate(description, seed=seed)
                rgb, face_source = out.image, "generated"
                notes.append(f"face: generated from the description in {len(out.attempts)} attempt(s)")
            else:
                ranked = rank_portraits(description, self.portraits)
                portrait_ranking = tuple((p.name, s) for p, s in ranked)
                best = ranked[0][0]
                rgb, face_source = load_image(best.path), f"bundled:{best.name}"
                notes.append(f"face: bundled portrait {best.name} ({best.credit})")

        chat = chat or ChatSettings()
        if not chat.system_prompt:
            chat = replace(chat, system_prompt=system_prompt_for(name, description))
        expr, inten = expression_from_description(description)
        persona = Persona(
            id="",
            name=name,
            description=description,
            voice_id=voice_id,
            voice_params=params,
            face_source=face_source,
            face_points=pts_tuple,
            expression=expression or expr,
            intensity=intensity if intensity is not None else (inten if expression is None else 1.0),
            idle=idle or idle_from_description(description),
            chat=chat,
        )
        return Draft(persona, np.ascontiguousarray(rgb), ranking, portrait_ranking, tuple(notes))


def _name_from_file(stem: str) -> str:
    words = re.sub(r"[_\-.]+", " ", stem).split()
    return " ".join(w[:1].upper() + w[1:] for w in words)[:MAX_NAME_CHARS] or "Persona"


# --- the store ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    """A stored persona and how it was chosen (for display)."""

    persona: Persona
    voice_ranking: tuple[VoiceRank, ...]
    portrait_ranking: tuple[tuple[str, float], ...]
    notes: tuple[str, ...]


class PersonaStore:
    """Personas in ``data_dir/personas.sqlite3`` (or a PostgreSQL database), their face images in
    ``data_dir/persona_faces/<id>.png``.

    Safe to share between threads (serialized writes); several processes may open the same folder
    (SQLite's own locking) or, with PostgreSQL, the same database and shared folder from several machines.
    """

    def __init__(self, data_dir: str | Path, database_url: str | None = None) -> None:
        """``database_url``: the records in that PostgreSQL database instead of the SQLite file (several
        processes and machines share them; every one must see ``data_dir`` at the same path)."""
        self.root = Path(data_dir)
        self.faces = self.root / FACES_DIR
        self.faces.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / DB_NAME
        self.db = Database.open(self.db_path, database_url)
        self._lock = threading.Lock()
        version = self.db.schema_version("personas")
        if version > SCHEMA_VERSION:
            raise PersonaError(f"{self.db.where} was written by a newer talker (schema {version} > {SCHEMA_VERSION})")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS personas ("
            " id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL,"
            " created_at DOUBLE PRECISION NOT NULL, data TEXT NOT NULL)"
        )
        self.db.set_schema_version("personas", SCHEMA_VERSION)

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.db.execute(sql, args)

    def close(self) -> None:
        """Close a database connection the store holds (SQLite holds none between calls)."""
        self.db.close()

    def create(
        self,
        description: str = "",
        image: str | Path | np.ndarray | None = None,
        points: str | np.ndarray | Sequence[Sequence[float]] | None = None,
        name: str | None = None,
        *,
        maker: PersonaMaker | None = None,
        **options: Any,
    ) -> Created:
        """Make a persona (``PersonaMaker.make``: description and/or image) and store it."""
        draft = (maker or PersonaMaker()).make(description, image, points, name, **options)
        persona = self.add(draft.persona, draft.image)
        return Created(persona, draft.voice_ranking, draft.portrait_ranking, draft.notes)

    def add(self, persona: Persona, image: np.ndarray | str | Path) -> Persona:
        """Store a persona with its face image (copied in); a new id and time are given when missing."""
        pid = persona.id or uuid.uuid4().hex[:12]
        if not re.fullmatch(r"[0-9a-zA-Z_-]{1,64}", pid):
            raise PersonaError(f"persona id {pid!r} may use only letters, digits, '-' and '_' (1-64 characters)")
        face = self.faces / f"{pid}.png"
        tmp = self.faces / f".{pid}.part.png"
        try:
            if isinstance(image, np.ndarray):
                from PIL import Image

                Image.fromarray(np.ascontiguousarray(image)).save(tmp, format="PNG")
            else:
                rgb = load_image(image)  # re-encode: EXIF orientation applied, so points stay valid
                from PIL import Image

                Image.fromarray(rgb).save(tmp, format="PNG")
            stored = replace(persona, id=pid, face_path=str(face), created_at=persona.created_at or time.time())
            data = self._dump(stored)
            with self._lock:
                if self._query("SELECT 1 FROM personas WHERE id = ?", (pid,)):
                    raise PersonaError(f"a persona with id {pid} already exists")
                tmp.replace(face)
                try:
                    self._query(
                        "INSERT INTO personas (id, name, description, created_at, data) VALUES (?, ?, ?, ?, ?)",
                        (pid, stored.name, stored.description, stored.created_at, data),
                    )
                except self.db.errors:
                    face.unlink(missing_ok=True)
                    raise
        finally:
            tmp.unlink(missing_ok=True)
        return stored

    def _dump(self, p: Persona) -> str:
        """JSON of a persona; a face image inside the store is kept relative, so the folder can move."""
        d = p.to_dict()
        face = Path(p.face_path)
        if face.parent == self.faces:
            d["face_path"] = f"{FACES_DIR}/{face.name}"
        return json.dumps(d)

    def _load(self, data: str) -> Persona:
        d = json.loads(data)
        if d.get("face_path") and not Path(d["face_path"]).is_absolute():
            d["face_path"] = str(self.root / d["face_path"])
        return Persona.from_dict(d)

    def list(self) -> list[Persona]:
        """All personas, oldest first."""
        rows = self._query("SELECT data FROM personas ORDER BY created_at, id")
        return [self._load(r[0]) for r in rows]

    def get(self, persona_id: str) -> Persona:
        rows = self._query("SELECT data FROM personas WHERE id = ?", (persona_id,))
        if not rows:
            where = self.db.where if self.db.postgres else self.root
            raise PersonaNotFound(f"no persona with id {persona_id!r} in {where}")
        return self._load(rows[0][0])

    def delete(self, persona_id: str) -> bool:
        """Remove a persona and its face image; False when there was none."""
        with self._lock:
            rows = self._query("SELECT data FROM personas WHERE id = ?", (persona_id,))
            if not rows:
                return False
            self._query("DELETE FROM personas WHERE id = ?", (persona_id,))
        face = Path(self._load(rows[0][0]).face_path)
        if face.parent == self.faces:
            face.unlink(missing_ok=True)
        return True

    def export(self, persona_id: str, folder: str | Path) -> Path:
        """Copy a persona (JSON + face image) to ``folder``; returns the JSON path."""
        p = self.get(persona_id)
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p.face_path, out / Path(p.face_path).name)
        j = out / f"{p.id}.json"
        j.write_text(json.dumps(p.to_dict(), indent=1), encoding="utf-8")
        return j


# --- speaking as a persona -------------------------------------------------------------------------


def persona_avatar(
    persona: Persona, detector: LandmarkDetector, size: tuple[int, int] | None = DEFAULT_SIZE, framing: str = "bust"
) -> Avatar:
    """The persona's rigged face at ``size``, framed by ``framing`` (points when stored, else the detector's
    face)."""
    if not Path(persona.face_path).is_file():
        raise ImageError(f"the face image of persona {persona.id} is missing: {persona.face_path}")
    pts = np.asarray(persona.face_points, np.float64) if persona.face_points is not None else None
    return avatar_for(persona.face_path, pts, detector, size, framing=framing)


def render_persona(
    persona: Persona,
    text: str,
    out: str | Path,
    settings: RenderSettings | None = None,
    voices: VoiceBank | None = None,
    detector: LandmarkDetector | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RenderResult:
    """Render ``text`` spoken by the persona (its voice, face, expression and manner) to an MP4.

    The style of ``settings`` is replaced by the persona's (``Persona.motion_style``).
    """
    settings = replace(settings or RenderSettings(), style=persona.motion_style())
    tts = (voices or default_voice_bank()).tts(persona.voice_id, persona.voice_params)
    pipe = Pipeline(tts=tts, detector=detector)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    avatar = persona_avatar(persona, pipe.detector, settings.size, settings.framing)
    timings["face"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    speech = pipe.synthesize(text)
    timings["tts"] = time.perf_counter() - t0
    return pipe.render_mp4(avatar, speech, out, settings, progress, timings)
