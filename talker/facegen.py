"""Mixture of diffusers: a face for a persona, generated from its description.

Stable Diffusion (text -> image) steered by a face-landmark ControlNet: the canonical 478-point face
mesh (``render.canonical.canonical_mesh``) is drawn into the control image at a fixed, frontal, centred
placement, so the picture has a face where the rig wants one. With a user's image (an object, an animal)
the same components run image-to-image: the picture is pushed towards a face (ChatAnything's recipe).

Generated images do not always contain a face the landmark detector accepts, so generation retries,
varying the ControlNet conditioning scale, the image-to-image strength and the seed, until the detector
finds one (as ChatAnything does), and fails with every attempt listed otherwise.

Weights are never downloaded: ``model_dir`` is a LOCAL diffusers folder (``model_index.json``), either a
saved ``StableDiffusionControlNetPipeline`` or a Stable Diffusion folder plus a ControlNet folder (its
``controlnet/`` subfolder, or ``controlnet_dir``). torch and diffusers are imported only when a generator
is built.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from render import topology as T
from render.canonical import IBUG68_TO_MP, canonical_mesh
from render.landmarks import FaceLandmarks, LandmarkDetector, MediaPipeFaceMesh, pick_face

ENV_MODEL_DIR = "TALKER_FACEGEN_MODEL"
"""Environment variable naming the local diffusers model folder (used when no folder is passed)."""
ENV_CONTROLNET_DIR = "TALKER_FACEGEN_CONTROLNET"
"""Environment variable naming a separate face-landmark ControlNet folder (optional)."""

CONTROL_STYLES = ("dots", "mesh")


class FaceGenError(RuntimeError):
    """Face generation failed: no model, a broken model folder, or no face after every attempt."""


class FaceGenNotConfigured(FaceGenError):
    """No model folder was given or configured."""


@dataclass(frozen=True)
class FaceGenSettings:
    """How faces are generated.

    size: output side in pixels (square; a multiple of 8). steps: denoising steps per attempt.
    attempts: tries before giving up. conditioning_scales: ControlNet scales tried in turn (cycled).
    strength_start / strength_step: image-to-image strength of the first attempt and its increase per
    retry (capped at 1.0). iod_frac: distance between the eyes as a fraction of the side; eyes_y_frac:
    height of the eyes as a fraction of the side. control_style: "dots" (68 white dots, like the
    Face-Landmark-ControlNet ChatAnything uses) or "mesh" (coloured contours, like ControlNetMediaPipeFace).
    """

    size: int = 512
    steps: int = 25
    guidance_scale: float = 7.0
    attempts: int = 6
    conditioning_scales: tuple[float, ...] = (1.0, 1.2, 0.8, 1.4, 0.6)
    strength_start: float = 0.8
    strength_step: float = 0.04
    iod_frac: float = 0.2
    eyes_y_frac: float = 0.42
    control_style: str = "dots"
    prompt_template: str = (
        "portrait of {}, head and shoulders, facing the camera, centred face, both eyes visible, detailed, soft light"
    )
    negative_prompt: str = (
        "profile, side view, back of head, several faces, cropped head, closed eyes, blurry, deformed, text, watermark"
    )

    def __post_init__(self) -> None:
        if self.size < 32 or self.size % 8:
            raise ValueError(f"face size {self.size} must be a multiple of 8 and at least 32 pixels")
        if self.steps < 1 or self.attempts < 1:
            raise ValueError("steps and attempts must be at least 1")
        if not self.conditioning_scales:
            raise ValueError("give at least one ControlNet conditioning scale")
        if self.control_style not in CONTROL_STYLES:
            raise ValueError(f"control style {self.control_style!r}: choose from {', '.join(CONTROL_STYLES)}")
        if not 0.0 < self.strength_start <= 1.0:
            raise ValueError(f"strength_start must be within (0, 1], got {self.strength_start}")


@dataclass(frozen=True)
class Attempt:
    """One generation try: its seed and scales, whether the detector found a face, and its time."""

    index: int
    seed: int
    conditioning_scale: float
    strength: float | None  # None: text to image
    found_face: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class GeneratedFace:
    """A generated portrait (RGB uint8, size x size) with the face the detector found in it."""

    image: np.ndarray
    face: FaceLandmarks
    prompt: str
    attempts: tuple[Attempt, ...] = field(default_factory=tuple)


# --- the control image ------------------------------------------------------------------------------


def template_points(size: int, iod_frac: float = 0.2, eyes_y_frac: float = 0.42) -> np.ndarray:
    """The canonical mesh placed frontal and centred in a ``size`` x ``size`` image: (478, 2) pixels."""
    mesh = canonical_mesh()[:, :2]
    scale = iod_frac * size
    return mesh * scale + np.array([size / 2.0, eyes_y_frac * size])


_MESH_PARTS: tuple[tuple[list[int], tuple[int, int, int], bool], ...] = (
    (T.FACE_OVAL, (255, 255, 255), True),
    (T.R_BROW[:5], (255, 48, 48), False),
    (T.L_BROW[:5], (48, 255, 48), False),
    (T.R_EYE_UPPER + T.R_EYE_LOWER[::-1][1:-1], (255, 48, 48), True),
    (T.L_EYE_UPPER + T.L_EYE_LOWER[::-1][1:-1], (48, 255, 48), True),
    (T.LIP_OUTER_UPPER + T.LIP_OUTER_LOWER[::-1][1:-1], (255, 48, 255), True),
    (T.LIP_INNER_UPPER + T.LIP_INNER_LOWER[::-1][1:-1], (255, 48, 255), True),
    ([168, 197, 5, 4, 1], (48, 200, 255), False),
    ([98, 97, 2, 326, 327], (48, 200, 255), False),
)


def control_image(points: np.ndarray, size: int, style: str = "dots") -> np.ndarray:
    """Landmarks drawn on black: RGB uint8 (size, size, 3).

    ``points`` is a (478, 2) mesh in pixels. "dots": the 68 iBUG points as white dots; "mesh": eye, brow,
    lip, nose and face-oval contours in colours (right side red, left side green, lips magenta).
    """
    img = np.zeros((size, size, 3), np.uint8)
    p = np.asarray(points, np.float64)[:, :2]
    if style == "dots":
        r = max(1, int(round(size / 200)))
        for i in IBUG68_TO_MP:
            cv2.circle(img, (int(round(p[i, 0])), int(round(p[i, 1]))), r, (255, 255, 255), -1, cv2.LINE_AA)
    elif style == "mesh":
        t = max(1, int(round(size / 256)))
        for idx, colour, closed in _MESH_PARTS:
            poly = np.round(p[idx]).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(img, [poly], closed, colour, t, cv2.LINE_AA)
        for iris in (T.R_IRIS, T.L_IRIS):
            c = p[iris[0]]
            rad = max(1.0, float(np.linalg.norm(p[iris[1:]] - c, axis=1).mean()))
            cv2.circle(img, (int(round(c[0])), int(round(c[1]))), int(round(rad)), (255, 255, 96), t, cv2.LINE_AA)
    else:
        raise ValueError(f"control style {style!r}: choose from {', '.join(CONTROL_STYLES)}")
    return img


def square_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Centre square crop of an RGB image, scaled to ``size`` (the image-to-image starting picture)."""
    h, w = image.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    crop = image[y0 : y0 + s, x0 : x0 + s]
    interp = cv2.INTER_AREA if s > size else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(crop, (size, size), interpolation=interp))


def build_prompt(description: str, template: str) -> str:
    d = " ".join(description.split()).strip().rstrip(".")
    if not d:
        raise ValueError("a face is generated from a description: give one (e.g. 'a cheerful old sea captain')")
    return template.format(d)


# --- loading -----------------------------------------------------------------------------------------


def resolve_model_dir(model_dir: str | Path | None) -> Path:
    """The model folder to use: the one given, else ``$TALKER_FACEGEN_MODEL``; a clear error when neither."""
    chosen = model_dir if model_dir not in (None, "") else os.environ.get(ENV_MODEL_DIR, "")
    if not chosen:
        raise FaceGenNotConfigured(
            "no face generator model folder is configured: pass one (--facegen-model DIR) or set "
            f"${ENV_MODEL_DIR} to a local diffusers Stable Diffusion folder with a face-landmark ControlNet "
            "(in its controlnet/ subfolder, or in $" + ENV_CONTROLNET_DIR + "); weights are never downloaded"
        )
    d = Path(chosen).expanduser()
    if not (d / "model_index.json").is_file():
        raise FaceGenError(
            f"face generator model folder {d} has no model_index.json: it must be a diffusers pipeline folder "
            "(saved with save_pretrained)"
        )
    return d


def _import_diffusers() -> Any:
    try:
        import diffusers
        import transformers  # noqa: F401 - the text encoder and tokenizer of Stable Diffusion
    except ImportError as e:  # pragma: no cover - install problem
        raise FaceGenError(
            f"the face generator needs torch, diffusers and transformers ({e}): pip install diffusers transformers"
        ) from e
    return diffusers


def load_pipeline(
    model_dir: str | Path | None,
    controlnet_dir: str | Path | None = None,
    device: str = "cpu",
    dtype: Any = None,
) -> Any:
    """A ``StableDiffusionControlNetPipeline`` from local folders (nothing is downloaded).

    The ControlNet comes from ``controlnet_dir`` (or ``$TALKER_FACEGEN_CONTROLNET``) when given, else
    from the model folder itself (a saved ControlNet pipeline, or a ``controlnet/`` subfolder).
    """
    import torch

    diffusers = _import_diffusers()
    d = resolve_model_dir(model_dir)
    if dtype is None:
        dtype = torch.float16 if str(device).startswith("cuda") else torch.float32
    try:
        index = json.loads((d / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise FaceGenError(f"cannot read {d / 'model_index.json'}: {e}") from e
    cn_dir = controlnet_dir if controlnet_dir not in (None, "") else os.environ.get(ENV_CONTROLNET_DIR) or None
    kwargs: dict[str, Any] = {}
    try:
        if cn_dir is not None or "controlnet" not in index:
            cn_path = Path(cn_dir) if cn_dir is not None else d / "controlnet"
            if not (cn_path / "config.json").is_file():
                raise FaceGenError(
                    f"no face-landmark ControlNet found: {cn_path} has no config.json (give the ControlNet folder "
                    f"with --facegen-controlnet or ${ENV_CONTROLNET_DIR})"
                )
            kwargs["controlnet"] = diffusers.ControlNetModel.from_pretrained(cn_path, local_files_only=True)
        pipe = diffusers.StableDiffusionControlNetPipeline.from_pretrained(d, local_files_only=True, **kwargs)
    except FaceGenError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        raise FaceGenError(f"cannot load the face generator from {d}: {e}") from e
    pipe = pipe.to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# --- generation --------------------------------------------------------------------------------------


class FaceGenerator:
    """Description (and optionally a picture to turn into a face) -> a portrait with a detectable face.

    ``pipeline`` may be passed in (tests, servers sharing one); otherwise it is loaded from the model
    folder on first use. ``detector`` decides whether an attempt has a face (mediapipe by default).
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        controlnet_dir: str | Path | None = None,
        detector: LandmarkDetector | None = None,
        settings: FaceGenSettings | None = None,
        device: str = "cpu",
        pipeline: Any = None,
    ) -> None:
        self.settings = settings or FaceGenSettings()
        self.device = device
        self.controlnet_dir = controlnet_dir
        self.model_dir = resolve_model_dir(model_dir) if pipeline is None else model_dir
        self._pipe = pipeline
        self._img2img: Any = None
        self._detector = detector

    @property
    def detector(self) -> LandmarkDetector:
        if self._detector is None:
            self._detector = MediaPipeFaceMesh()
        return self._detector

    @property
    def pipeline(self) -> Any:
        if self._pipe is None:
            self._pipe = load_pipeline(self.model_dir, self.controlnet_dir, self.device)
        return self._pipe

    def _img2img_pipeline(self) -> Any:
        if self._img2img is None:
            diffusers = _import_diffusers()
            comps = {k: v for k, v in self.pipeline.components.items()}
            self._img2img = diffusers.StableDiffusionControlNetImg2ImgPipeline(**comps)
            self._img2img.set_progress_bar_config(disable=True)
        return self._img2img

    def plan(self, seed: int, image_given: bool) -> list[Attempt]:
        """The attempts, in order: seed + k, the k-th conditioning scale (cycled), rising strength."""
        s = self.settings
        out = []
        for k in range(s.attempts):
            scale = s.conditioning_scales[k % len(s.conditioning_scales)]
            strength = min(1.0, s.strength_start + k * s.strength_step) if image_given else None
            out.append(Attempt(k, seed + k, scale, strength))
        return out

    def generate(
        self,
        description: str,
        image: np.ndarray | None = None,
        seed: int = 0,
        progress: Callable[[Attempt], None] | None = None,
    ) -> GeneratedFace:
        """Generate until the detector finds a face; raise ``FaceGenError`` listing every attempt otherwise.

        ``image`` (RGB uint8), when given, is the starting picture (image to image): a thing to give a face.
        """
        import torch
        from PIL import Image

        s = self.settings
        prompt = build_prompt(description, s.prompt_template)
        control = Image.fromarray(
            control_image(template_points(s.size, s.iod_frac, s.eyes_y_frac), s.size, s.control_style)
        )
        init = Image.fromarray(square_crop(image, s.size)) if image is not None else None
        done: list[Attempt] = []
        for attempt in self.plan(seed, init is not None):
            t0 = time.perf_counter()
            common: dict[str, Any] = dict(
                prompt=prompt,
                negative_prompt=s.negative_prompt,
                num_inference_steps=s.steps,
                guidance_scale=s.guidance_scale,
                controlnet_conditioning_scale=attempt.conditioning_scale,
                generator=torch.Generator(device="cpu").manual_seed(attempt.seed),
                height=s.size,
                width=s.size,
                output_type="np",
            )
            if init is None:
                out = self.pipeline(image=control, **common)
            else:
                out = self._img2img_pipeline()(image=init, control_image=control, strength=attempt.strength, **common)
            rgb = np.ascontiguousarray((np.clip(out.images[0], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))
            faces = self.detector.detect(rgb)
            result = replace(attempt, found_face=bool(faces), seconds=time.perf_counter() - t0)
            done.append(result)
            if progress is not None:
                progress(result)
            if faces:
                return GeneratedFace(rgb, pick_face(faces), prompt, tuple(done))
        tried = "; ".join(
            f"seed {a.seed} scale {a.conditioning_scale:g}" + (f" strength {a.strength:.2f}" if a.strength else "")
            for a in done
        )
        raise FaceGenError(f"no face was found in {len(done)} generated images for {description!r} ({tried})")
