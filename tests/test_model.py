import numpy as np
import pytest
import torch

from model_code.config import ConfigError
from model_code.factory import describe, load_pretrained, save_pretrained
from model_code.model import truncate


def test_mixed_batch_gives_unit_vectors(tiny, items):
    model, processor = tiny
    with torch.no_grad():
        embeddings = model(processor(items))
    assert embeddings.shape == (8, 64)
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(8), atol=1e-5)


def test_an_item_embeds_the_same_alone_and_in_a_batch(tiny, items):
    model, processor = tiny
    with torch.no_grad():
        batched = model(processor(items))
        alone = torch.cat([model(processor([item])) for item in items])
    assert torch.allclose(batched, alone, atol=1e-4)


def test_each_modality_changes_the_embedding(tiny, items):
    model, processor = tiny
    omni = items[3]
    variants = [
        processor.collate([processor.prepare(omni, modalities=m)], processor.instruction("target"))
        for m in [("text",), ("text", "vision"), ("text", "vision", "audio")]
    ]
    with torch.no_grad():
        vectors = [model(v) for v in variants]
    assert not torch.allclose(vectors[0], vectors[1], atol=1e-4)
    assert not torch.allclose(vectors[1], vectors[2], atol=1e-4)


def test_matryoshka_prefix_is_renormalised():
    full = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    prefix = truncate(full, 4)
    assert torch.allclose(prefix.norm(dim=-1), torch.ones(3))
    assert torch.allclose(prefix * full[:, :4].norm(dim=-1, keepdim=True), full[:, :4])


def test_base_classes_run_from_tiny_configs(base_tiny, items):
    model, processor = base_tiny
    assert type(model.fuser).__name__ == "Qwen2Fuser"
    assert type(model.vision.tower).__name__ == "SiglipTower"
    assert type(model.audio.tower).__name__ == "ClapTower"
    with torch.no_grad():
        embeddings = model(processor(items))
    assert embeddings.shape == (8, 64)
    assert torch.isfinite(embeddings).all()


@pytest.mark.parametrize("fixture", ["tiny", "base_tiny"])
def test_save_and_load_round_trip(fixture, request, items, tmp_path):
    model, processor = request.getfixturevalue(fixture)
    save_pretrained(model, processor, tmp_path / "model")
    loaded, loaded_processor = load_pretrained(tmp_path / "model")
    loaded.eval()
    with torch.no_grad():
        before = model(processor(items)).numpy()
        after = loaded(loaded_processor(items)).numpy()
    np.testing.assert_allclose(before, after, atol=1e-5)
    assert describe(loaded)["total"] == describe(model)["total"]


def test_loading_a_checkpoint_of_another_preset_is_refused(tiny, tmp_path):
    model, processor = tiny
    save_pretrained(model, processor, tmp_path / "model")
    with pytest.raises(ConfigError, match="trained with preset 'tiny', not 'mini'"):
        load_pretrained(tmp_path / "model", expected_preset="mini")
    with pytest.raises(FileNotFoundError, match="is not a saved model"):
        load_pretrained(tmp_path)
