"""Face generator: tiny random diffusers components saved to a folder, loaded back by talker's own loader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from render.landmarks import MEDIAPIPE_478, FaceLandmarks
from talker.facegen import (
    FaceGenerator,
    FaceGenError,
    FaceGenNotConfigured,
    FaceGenSettings,
    control_image,
    load_pipeline,
    resolve_model_dir,
    template_points,
)

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

SIZE = 32  # pixels; the tiny VAE downsamples by 2, so latents are 16x16


def _tiny_components() -> dict:
    import torch
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    # a byte-level BPE vocabulary with no merges: every character is a token
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in sorted(ByteLevel.alphabet()):
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    torch.manual_seed(0)
    blocks = dict(block_out_channels=(4, 8), layers_per_block=1, norm_num_groups=1, attention_head_dim=2)
    unet = UNet2DConditionModel(
        sample_size=SIZE // 2,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=8,
        **blocks,
    )
    controlnet = ControlNetModel(
        in_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        cross_attention_dim=8,
        conditioning_embedding_out_channels=(4, 8),
        **blocks,
    )
    vae = AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        norm_num_groups=2,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            hidden_size=8,
            intermediate_size=16,
            num_attention_heads=2,
            num_hidden_layers=1,
            vocab_size=len(vocab),
            max_position_embeddings=77,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return dict(
        unet=unet, controlnet=controlnet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler
    )


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    """Two layouts: a saved ControlNet pipeline, and a plain SD folder with the ControlNet in controlnet/."""
    from diffusers import StableDiffusionControlNetPipeline, StableDiffusionPipeline

    comps = _tiny_components()
    root = tmp_path_factory.mktemp("facegen")
    full = root / "sd-controlnet"
    StableDiffusionControlNetPipeline(
        **comps, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    ).save_pretrained(full)
    split = root / "sd-base"
    base = {k: v for k, v in comps.items() if k != "controlnet"}
    StableDiffusionPipeline(
        **base, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    ).save_pretrained(split)
    comps["controlnet"].save_pretrained(split / "controlnet")
    return {"full": full, "split": split}


class FlakyDetector:
    """Finds no face in the first ``misses`` images, then one face (the template) in every image."""

    scheme = MEDIAPIPE_478

    def __init__(self, misses: int) -> None:
        self.misses = misses
        self.calls = 0
        self.shapes: list[tuple[int, ...]] = []

    def detect(self, image: np.ndarray) -> list[FaceLandmarks]:
        self.calls += 1
        self.shapes.append(image.shape)
        if self.calls <= self.misses:
            return []
        h, w = image.shape[:2]
        pts = np.column_stack([template_points(w), np.zeros(478)]).astype(np.float32)
        return [FaceLandmarks(pts, MEDIAPIPE_478, (w, h))]


def _settings(**kw) -> FaceGenSettings:
    return FaceGenSettings(size=SIZE, steps=2, attempts=4, **kw)


def test_no_model_folder_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("TALKER_FACEGEN_MODEL", raising=False)
    with pytest.raises(FaceGenNotConfigured, match="TALKER_FACEGEN_MODEL"):
        FaceGenerator()
    with pytest.raises(FaceGenError, match="model_index.json"):
        resolve_model_dir(tmp_path)


def test_plain_sd_folder_without_controlnet_is_refused(model_dirs, tmp_path):
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(model_dirs["split"], bare)
    shutil.rmtree(bare / "controlnet")
    with pytest.raises(FaceGenError, match="ControlNet"):
        load_pipeline(bare)


@pytest.mark.parametrize("layout", ["full", "split"])
def test_text_to_face_retries_until_a_face_is_found(model_dirs, layout):
    det = FlakyDetector(misses=2)
    gen = FaceGenerator(model_dirs[layout], detector=det, settings=_settings())
    seen = []
    out = gen.generate("a cheerful old sea captain", seed=7, progress=seen.append)
    assert out.image.shape == (SIZE, SIZE, 3) and out.image.dtype == np.uint8
    assert out.image.std() > 0  # the tiny random model still draws something
    assert [a.found_face for a in out.attempts] == [False, False, True]
    assert [a.seed for a in out.attempts] == [7, 8, 9]
    assert [a.conditioning_scale for a in out.attempts] == [1.0, 1.2, 0.8]
    assert all(a.strength is None for a in out.attempts)
    assert seen == list(out.attempts)
    assert "sea captain" in out.prompt
    assert det.shapes == [(SIZE, SIZE, 3)] * 3


def test_same_seed_same_image(model_dirs):
    a = FaceGenerator(model_dirs["full"], detector=FlakyDetector(0), settings=_settings()).generate("a cat", seed=3)
    b = FaceGenerator(model_dirs["full"], detector=FlakyDetector(0), settings=_settings()).generate("a cat", seed=3)
    np.testing.assert_array_equal(a.image, b.image)


def test_image_to_face_raises_strength(model_dirs):
    det = FlakyDetector(misses=1)
    gen = FaceGenerator(model_dirs["full"], detector=det, settings=_settings(strength_start=0.5, strength_step=0.25))
    thing = np.zeros((40, 60, 3), np.uint8)
    thing[:, :, 1] = 200  # a green object, not square: centre-cropped to 32x32
    out = gen.generate("a talking watermelon", image=thing, seed=1)
    assert [a.strength for a in out.attempts] == [0.5, 0.75]
    assert out.attempts[-1].found_face


def test_gives_up_after_every_attempt(model_dirs):
    gen = FaceGenerator(model_dirs["full"], detector=FlakyDetector(misses=99), settings=_settings())
    with pytest.raises(FaceGenError, match="no face was found in 4 generated images"):
        gen.generate("a lamp")


def test_real_detector_on_random_model_finds_nothing(model_dirs):
    """The default detector is mediapipe: noise from an untrained model is no face."""
    gen = FaceGenerator(model_dirs["full"], settings=FaceGenSettings(size=64, steps=2, attempts=1))
    with pytest.raises(FaceGenError, match="no face"):
        gen.generate("a lamp")


def test_control_image_draws_the_template():
    pts = template_points(256)
    dots = control_image(pts, 256, "dots")
    mesh = control_image(pts, 256, "mesh")
    assert dots.shape == mesh.shape == (256, 256, 3)
    ys, xs = np.nonzero(dots.max(axis=2))
    # the face sits in the middle: eyes at 42 % of the height, ~2.5 inter-ocular distances tall
    assert 0.3 * 256 < xs.mean() < 0.7 * 256 and 0.35 * 256 < ys.mean() < 0.7 * 256
    assert (mesh[..., 0] > 0).sum() > 500
    with pytest.raises(ValueError):
        control_image(pts, 256, "scribble")


def test_model_index_is_a_controlnet_pipeline(model_dirs):
    index = json.loads((model_dirs["full"] / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionControlNetPipeline"
