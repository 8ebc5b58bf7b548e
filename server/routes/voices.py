"""Voices the server can speak with."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends

from server.deps import get_engine
from server.engine import Engine
from server.schemas import VoiceInfo

router = APIRouter(prefix="/voices", tags=["voices"])


@router.get("", response_model=list[VoiceInfo])
async def list_voices(engine: Engine = Depends(get_engine)) -> list[VoiceInfo]:
    """The loaded Piper voice (one per server for now)."""
    tts = engine.tts
    language = None
    cfg = tts.model_path.with_name(tts.model_path.name + ".json")
    try:
        lang = json.loads(cfg.read_text(encoding="utf-8")).get("language", {})
        language = lang.get("code") if isinstance(lang, dict) else None
    except (OSError, ValueError):
        language = None
    return [VoiceInfo(voice_id=engine.voice_name, sample_rate=tts.sample_rate, language=language)]
