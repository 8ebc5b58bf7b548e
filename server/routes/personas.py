"""Personas: a face, a voice and a manner (and a chat endpoint), created once and used by sessions
and renders. The same SQLite store as ``talker persona`` (``talker.persona.PersonaStore``)."""

from __future__ import annotations

import asyncio
import re
from pathlib import PurePath
from typing import Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, Response, UploadFile
from fastapi.responses import FileResponse

from server.deps import get_engine, get_persona_maker, get_personas, get_settings
from server.engine import Engine
from server.portraits import check_image, decode_rgb
from server.routes.portraits import read_upload
from server.schemas import PersonaChat, PersonaCreated, PersonaInfo, Problem, VoiceRankInfo
from server.settings import Settings
from talker.chat import ChatSettings
from talker.persona import Created, Persona, PersonaMaker, PersonaNotFound, PersonaStore
from talker.points import FIVE_POINT_NAMES
from talker.stages import NoFaceError

router = APIRouter(prefix="/personas", tags=["personas"])

MAX_RANKED_VOICES = 10

_POINT_ORDER = "the face's right eye, left eye, nose tip, right and left mouth corner"
assert len(FIVE_POINT_NAMES) == 5  # the order above is talker.points' order
_POINTS_HELP = (
    f"five guide points 'x,y;x,y;x,y;x,y;x,y' in pixels of the image ({_POINT_ORDER}), for faces the "
    "detector cannot find (cartoons, animals, paintings)"
)


def persona_info(p: Persona, request: Request) -> PersonaInfo:
    return PersonaInfo(**_fields(p, request))


def _fields(p: Persona, request: Request) -> dict[str, Any]:
    c = p.chat
    return {
        "persona_id": p.id,
        "name": p.name,
        "description": p.description,
        "voice_id": p.voice_id,
        "voice_params": dict(p.voice_params),
        "face_source": p.face_source,
        "face_points": [list(pt) for pt in p.face_points] if p.face_points is not None else None,
        "face_url": str(request.url_for("persona_face", persona_id=p.id)),
        "expression": p.expression,
        "intensity": p.intensity,
        "idle": p.idle,
        "chat": PersonaChat(
            base_url=c.base_url,
            model=c.model,
            api_key_env=c.api_key_env,
            system_prompt=c.system_prompt,
            temperature=c.temperature,
            max_tokens=c.max_tokens,
        ),
        "created_at": p.created_at,
    }


def _created(c: Created, request: Request) -> PersonaCreated:
    return PersonaCreated(
        **_fields(c.persona, request),
        voice_ranking=[VoiceRankInfo(voice_id=r.voice_id, score=r.score, summary=r.summary) for r in c.voice_ranking][
            :MAX_RANKED_VOICES
        ],
        portrait_ranking=[(n, s) for n, s in c.portrait_ranking],
        notes=list(c.notes),
    )


def _get(store: PersonaStore, persona_id: str) -> Persona:
    try:
        return store.get(persona_id)
    except PersonaNotFound as e:
        raise HTTPException(404, f"no persona {persona_id!r}") from e


def _name_from_filename(filename: str) -> str | None:
    stem = PurePath(filename).stem
    words = re.sub(r"[_\-.]+", " ", stem).split()
    return " ".join(w[:1].upper() + w[1:] for w in words)[:80] or None


def _chat(
    base_url: str | None, model: str | None, api_key_env: str | None, system_prompt: str | None
) -> ChatSettings | None:
    if all(v is None or v == "" for v in (base_url, model, api_key_env, system_prompt)):
        return None
    base = ChatSettings()
    if base_url and not base_url.startswith(("http://", "https://")):
        raise HTTPException(422, f"chat_base_url {base_url!r} is not an http(s) URL")
    return ChatSettings(
        base_url=base_url or base.base_url,
        model=model or base.model,
        api_key_env=api_key_env if api_key_env is not None else base.api_key_env,
        system_prompt=system_prompt or "",
    )


@router.post(
    "",
    status_code=201,
    response_model=PersonaCreated,
    responses={
        400: {"model": Problem},
        413: {"model": Problem},
        415: {"model": Problem},
        422: {"model": Problem},
    },
)
async def create_persona(
    request: Request,
    description: str = Form("", max_length=2000, description="who it is, in words: voice, face and manner follow"),
    image: UploadFile | None = File(None, description="a photo, painting, cartoon or animal (else one is chosen)"),
    points: str | None = Form(None, description=_POINTS_HELP),
    name: str | None = Form(None, max_length=80, description="display name (default: from the description)"),
    voice_id: str | None = Form(None, description="a voice bank id instead of choosing by description"),
    expression: str | None = Form(None, description="neutral, happy, sad, angry, surprised (default: described)"),
    intensity: float | None = Form(None, ge=0.0, le=1.5),
    idle: str | None = Form(None, description="calm, neutral or lively (default: from the description)"),
    chat_base_url: str | None = Form(None, description="OpenAI-compatible API root, e.g. http://127.0.0.1:8080/v1"),
    chat_model: str | None = Form(None),
    chat_api_key_env: str | None = Form(None, description="NAME of the environment variable holding the key"),
    system_prompt: str | None = Form(None, max_length=4000),
    seed: int = Form(0, description="seed of face generation"),
    settings: Settings = Depends(get_settings),
    store: PersonaStore = Depends(get_personas),
    maker: PersonaMaker = Depends(get_persona_maker),
    engine: Engine = Depends(get_engine),
) -> PersonaCreated:
    """Create a persona from a description, an image, or both. The voice is chosen from the voice bank
    by the description, the face is the image (detected, or located by five guide ``points``), else a
    face generated from the description (when a model folder is configured) or the best-matching
    bundled portrait. 422 when the image has no face the detector finds and no points are given."""
    description = description.strip()
    rgb = None
    if image is not None and image.filename:
        data = await read_upload(image, settings)
        check_image(data, settings.max_upload_bytes, settings.max_image_pixels)
        rgb = await asyncio.to_thread(decode_rgb, data)
    if not description and rgb is None:
        raise HTTPException(422, "a persona needs a description, an image, or both")
    if points is not None and not points.strip():
        points = None
    if points is not None and rgb is None:
        raise HTTPException(422, "guide points locate a face in an image: upload the image too")
    if not (name and name.strip()) and not description and image is not None and image.filename:
        name = _name_from_filename(image.filename)
    chat = _chat(chat_base_url, chat_model, chat_api_key_env, system_prompt)
    if voice_id:
        await asyncio.to_thread(engine.voice_for, voice_id, {})  # 422 naming an unknown voice
    try:
        created = await asyncio.to_thread(
            engine.create_persona,
            store,
            maker,
            description=description,
            image=rgb,
            points=points,
            name=name,
            voice_id=voice_id or None,
            expression=expression or None,
            intensity=intensity,
            idle=idle or None,
            chat=chat,
            seed=seed,
        )
    except NoFaceError as e:
        raise HTTPException(
            422,
            "no face found in the uploaded image (the detector needs a clearly visible, roughly frontal face); "
            "send five guide points in the form field 'points' as 'x,y;x,y;x,y;x,y;x,y' "
            f"({_POINT_ORDER}, in pixels of the image)",
        ) from e
    except ValueError as e:  # bad points, voice, expression, idle style, name... (each names the value)
        raise HTTPException(422, str(e)) from e
    return _created(created, request)


@router.get("", response_model=list[PersonaInfo])
async def list_personas(request: Request, store: PersonaStore = Depends(get_personas)) -> list[PersonaInfo]:
    """All personas, oldest first."""
    personas = await asyncio.to_thread(store.list)
    return [persona_info(p, request) for p in personas]


@router.get("/{persona_id}", response_model=PersonaInfo, responses={404: {"model": Problem}})
async def get_persona(persona_id: str, request: Request, store: PersonaStore = Depends(get_personas)) -> PersonaInfo:
    return persona_info(await asyncio.to_thread(_get, store, persona_id), request)


@router.get(
    "/{persona_id}/face",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}, 404: {"model": Problem}},
)
async def persona_face(persona_id: str, store: PersonaStore = Depends(get_personas)) -> FileResponse:
    """The persona's face image (PNG)."""
    p = await asyncio.to_thread(_get, store, persona_id)
    return FileResponse(p.face_path, media_type="image/png")


@router.delete("/{persona_id}", status_code=204, responses={404: {"model": Problem}})
async def delete_persona(
    persona_id: str, store: PersonaStore = Depends(get_personas), engine: Engine = Depends(get_engine)
) -> Response:
    """Delete a persona and its face image. Sessions already open with it keep running."""
    if not await asyncio.to_thread(store.delete, persona_id):
        raise HTTPException(404, f"no persona {persona_id!r}")
    engine.forget(f"persona:{persona_id}")
    return Response(status_code=204)
