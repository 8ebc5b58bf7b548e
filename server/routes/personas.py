"""Personas: a face, a voice and a manner (and a chat endpoint), created once and used by sessions
and renders. The same SQLite store as ``talker persona`` (``talker.persona.PersonaStore``)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path, PurePath
from typing import Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, Response, UploadFile
from fastapi.responses import FileResponse

from server.deps import (
    check_quota,
    get_engine,
    get_owners,
    get_persona_maker,
    get_personas,
    get_settings,
    get_state,
    require_api_key,
)
from server.egress import EndpointRefused, check_persona_endpoint
from server.engine import Engine
from server.portraits import release_memory
from server.routes.portraits import check_upload, in_upload_pool, read_upload
from server.schemas import MAX_SEED, PersonaChat, PersonaCreated, PersonaInfo, Problem, VoiceRankInfo
from server.settings import Settings
from server.tenancy import OwnerStore, Principal
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


def _get(store: PersonaStore, owners: OwnerStore, who: Principal, persona_id: str) -> Persona:
    try:
        persona = store.get(persona_id)
    except PersonaNotFound as e:
        raise HTTPException(404, f"no persona {persona_id!r}") from e
    if not owners.may_see(who, "persona", persona_id):
        raise HTTPException(404, f"no persona {persona_id!r}")
    return persona


def _create(engine: Engine, *args: Any, **kwargs: Any) -> Created:
    try:
        return engine.create_persona(*args, **kwargs)  # type: ignore[no-any-return]
    finally:
        release_memory()


def _scaled_points(points: str, scale: float) -> str:
    """Guide points given in the uploaded picture's pixels, moved to the scaled-down copy's (422 if bad)."""
    from talker.points import PointsError, format_points, parse_points

    try:
        return format_points(parse_points(points) * scale)
    except PointsError as e:
        raise HTTPException(422, str(e)) from e


def _name_from_filename(filename: str) -> str | None:
    stem = PurePath(filename).stem
    words = re.sub(r"[_\-.]+", " ", stem).split()
    return " ".join(w[:1].upper() + w[1:] for w in words)[:80] or None


def _chat(
    base_url: str | None, model: str | None, api_key_env: str | None, system_prompt: str | None, settings: Settings
) -> ChatSettings | None:
    """A persona's chat settings from the form; the endpoint must be one the server allows (422 otherwise),
    and its key is the one the operator bound to it, never one the client names."""
    if all(v is None or v == "" for v in (base_url, model, api_key_env, system_prompt)):
        return None
    base = ChatSettings()
    try:
        url = check_persona_endpoint(base_url, api_key_env, settings)
    except EndpointRefused as e:
        raise HTTPException(422, str(e)) from e
    return ChatSettings(
        base_url=url or base.base_url,
        model=model or base.model,
        api_key_env=None,
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
        429: {"model": Problem},
        507: {"model": Problem},
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
    chat_api_key_env: str | None = Form(
        None, description="not settable by clients: each allowed endpoint's key is bound by the operator"
    ),
    system_prompt: str | None = Form(None, max_length=4000),
    seed: int = Form(0, ge=0, le=MAX_SEED, description="seed of face generation"),
    settings: Settings = Depends(get_settings),
    store: PersonaStore = Depends(get_personas),
    maker: PersonaMaker = Depends(get_persona_maker),
    engine: Engine = Depends(get_engine),
    owners: OwnerStore = Depends(get_owners),
    who: Principal = Depends(require_api_key),
) -> PersonaCreated:
    """Create a persona from a description, an image, or both. The voice is chosen from the voice bank
    by the description, the face is the image (detected, or located by five guide ``points``), else a
    face generated from the description (when a model folder is configured) or the best-matching
    bundled portrait. 422 when the image has no face the detector finds and no points are given."""
    description = description.strip()
    chat = _chat(chat_base_url, chat_model, chat_api_key_env, system_prompt, settings)
    if voice_id and ("/" in voice_id or "\\" in voice_id or voice_id.endswith(".onnx")):
        raise HTTPException(422, f"voice_id {voice_id!r}: choose a voice from GET /voices (files are not accepted)")
    check_quota(who, settings, get_state(request).jobs, owners)
    rgb = None
    if image is not None and image.filename:
        data = await read_upload(image, settings)
        prepared = await check_upload(request, data)
        rgb = prepared.rgb
        if points is not None and points.strip() and prepared.scale != 1.0:
            points = _scaled_points(points, prepared.scale)
    if not description and rgb is None:
        raise HTTPException(422, "a persona needs a description, an image, or both")
    if points is not None and not points.strip():
        points = None
    if points is not None and rgb is None:
        raise HTTPException(422, "guide points locate a face in an image: upload the image too")
    if not (name and name.strip()) and not description and image is not None and image.filename:
        name = _name_from_filename(image.filename)
    if voice_id:
        await asyncio.to_thread(engine.voice_for, voice_id, {})  # 422 naming an unknown voice
    try:
        created = await in_upload_pool(
            request,
            _create,
            engine,
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
    face_bytes = Path(created.persona.face_path).stat().st_size if Path(created.persona.face_path).is_file() else 0
    await asyncio.to_thread(owners.add, "persona", created.persona.id, who.tenant, face_bytes)
    return _created(created, request)


@router.get("", response_model=list[PersonaInfo])
async def list_personas(
    request: Request,
    store: PersonaStore = Depends(get_personas),
    owners: OwnerStore = Depends(get_owners),
    who: Principal = Depends(require_api_key),
) -> list[PersonaInfo]:
    """Your personas, oldest first (an admin key lists every tenant's)."""
    personas = await asyncio.to_thread(store.list)
    return [persona_info(p, request) for p in personas if owners.may_see(who, "persona", p.id)]


@router.get("/{persona_id}", response_model=PersonaInfo, responses={404: {"model": Problem}})
async def get_persona(
    persona_id: str,
    request: Request,
    store: PersonaStore = Depends(get_personas),
    owners: OwnerStore = Depends(get_owners),
    who: Principal = Depends(require_api_key),
) -> PersonaInfo:
    return persona_info(await asyncio.to_thread(_get, store, owners, who, persona_id), request)


@router.get(
    "/{persona_id}/face",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}, 404: {"model": Problem}},
)
async def persona_face(
    persona_id: str,
    store: PersonaStore = Depends(get_personas),
    owners: OwnerStore = Depends(get_owners),
    who: Principal = Depends(require_api_key),
) -> FileResponse:
    """The persona's face image (PNG)."""
    p = await asyncio.to_thread(_get, store, owners, who, persona_id)
    return FileResponse(p.face_path, media_type="image/png")


@router.delete("/{persona_id}", status_code=204, responses={404: {"model": Problem}})
async def delete_persona(
    persona_id: str,
    store: PersonaStore = Depends(get_personas),
    engine: Engine = Depends(get_engine),
    owners: OwnerStore = Depends(get_owners),
    who: Principal = Depends(require_api_key),
) -> Response:
    """Delete a persona and its face image. Sessions already open with it keep running."""
    await asyncio.to_thread(_get, store, owners, who, persona_id)
    if not await asyncio.to_thread(store.delete, persona_id):
        raise HTTPException(404, f"no persona {persona_id!r}")
    await asyncio.to_thread(owners.remove, "persona", persona_id)
    engine.forget(f"persona:{persona_id}")
    return Response(status_code=204)
