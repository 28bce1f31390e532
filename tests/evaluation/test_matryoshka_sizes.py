"""Each Matryoshka size is evaluated from the full-size vectors, cut as the model cuts them."""

import numpy as np
import pytest

from model_code.data.catalogue import drawing_of, openclipart_items
from model_code.data.synthetic import synthetic_openclipart
from model_code.embed import Embedder
from model_code.evaluation.suite import openclipart_retrieval, prefix

pytestmark = pytest.mark.numeric_paths  # make test runs these again under other CPU kernels


def test_prefix_is_the_renormalised_cut_and_none_keeps_everything():
    vectors = np.array([[3.0, 4.0, 12.0]], dtype=np.float32) / 13.0
    assert np.allclose(prefix(vectors, 2), [[0.6, 0.8]])
    assert prefix(vectors, None) is vectors
    assert prefix(vectors, 3) is vectors  # the full width is the vector itself


def test_every_size_matches_embedding_at_that_size(tiny, tmp_path):
    embedder = Embedder(*tiny)
    pairs = synthetic_openclipart(30, tmp_path, distinct=True)
    reports = openclipart_retrieval(embedder, pairs, dims=(None, 16, 32))
    assert set(reports) == {None, 16, 32}
    assert reports[None] == openclipart_retrieval(embedder, pairs)
    items = openclipart_items(pairs)
    embedded = {
        dim: embedder.embed(
            [drawing_of(i) for i in items],
            instruction="Represent the drawing.",
            dim=dim,
            progress=False,
        ).vectors
        for dim in (None, 16)
    }
    assert np.allclose(prefix(embedded[None], 16), embedded[16], atol=1e-5)
    assert reports[16] != reports[None]
