"""Instruction adapters: the identity until trained, reached only under their instruction, saved
with the model, and trained by the CRE stages while captions and drawings stay where they were."""

import torch
import torch.nn.functional as F

from model_code.data.synthetic import synthetic_openclipart
from model_code.embed import Embedder
from model_code.encoders.instruction_adapter import InstructionAdapters
from model_code.factory import create_model, load_pretrained, save_pretrained
from model_code.items import Item
from model_code.training.run import train_stage
from model_code.training.stages import load_stage

MOVIE = "Represent the movie."
MOVIES = [Item(id=str(i), title=title) for i, title in enumerate(["Heat (1995)", "Up (2009)"])]


def _unit(rows: int = 3, width: int = 8) -> torch.Tensor:
    return F.normalize(torch.randn(rows, width), dim=-1)


def test_a_new_adapter_is_the_identity_and_other_instructions_pass_by():
    adapters = InstructionAdapters([MOVIE], 8)
    embeddings = _unit()
    assert torch.allclose(adapters(embeddings, MOVIE), embeddings, atol=1e-6)
    with torch.no_grad():
        adapters.adapters[0].up.weight.normal_()
    assert not torch.allclose(adapters(embeddings, MOVIE), embeddings, atol=1e-3)
    assert adapters(embeddings, "Represent the drawing.") is embeddings
    assert adapters.add(MOVIE) is False and len(adapters.adapters) == 1


def test_an_adapter_is_saved_and_loaded_with_the_model(tmp_path):
    model, processor = create_model("tiny")
    model.add_instruction_adapter(MOVIE)
    with torch.no_grad():
        model.instruction_adapters.adapters[0].up.weight.normal_()
    before = Embedder(model, processor).embed(MOVIES, instruction=MOVIE).vectors
    save_pretrained(model, processor, tmp_path)
    loaded, loaded_processor = load_pretrained(tmp_path)
    assert loaded.config.instruction_adapters == (MOVIE,)
    after = Embedder(loaded, loaded_processor).embed(MOVIES, instruction=MOVIE).vectors
    assert torch.allclose(torch.as_tensor(before), torch.as_tensor(after), atol=1e-5)
    plain = Embedder(loaded, loaded_processor).embed(MOVIES).vectors
    assert not torch.allclose(torch.as_tensor(plain), torch.as_tensor(after), atol=1e-3)


def test_cre_trains_the_movie_adapter_and_leaves_captions_and_drawings_alone(tmp_path):
    start = train_stage("tiny", "content1", tmp_path / "content1", steps=2, batch_size=4)
    cre = train_stage(
        "tiny", "id2item", tmp_path / "id2item", steps=3, batch_size=4, init=start.model_dir
    )
    pairs = synthetic_openclipart(6, tmp_path / "media")
    instructions = load_stage("content2").dataset("openclipart").instructions
    captions = [Item(id=row.id, title=row.title) for row in pairs.itertuples()]
    drawings = [Item(id=row.id, image=row.image) for row in pairs.itertuples()]

    def embed(model_dir, rows, instruction):
        embedder = Embedder(*load_pretrained(model_dir))
        return torch.as_tensor(embedder.embed(rows, instruction=instruction).vectors)

    query, target = instructions["query"], instructions["target"]
    assert torch.equal(
        embed(start.model_dir, captions, query), embed(cre.model_dir, captions, query)
    )
    # no id2item step reaches the image path's Perceiver and projection; only weight decay moves
    # them, by a rounding's worth of each drawing's vector
    drawn = embed(start.model_dir, drawings, target), embed(cre.model_dir, drawings, target)
    assert torch.allclose(*drawn, rtol=0, atol=1e-6)
    moved = embed(cre.model_dir, MOVIES, MOVIE) - embed(start.model_dir, MOVIES, MOVIE)
    assert moved.abs().max() > 1e-4
    assert load_pretrained(cre.model_dir)[0].config.instruction_adapters == (MOVIE,)
