"""The output basis: identity at the preset; once fitted, centred and in principal directions."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from model_code.data.synthetic import synthetic_openclipart
from model_code.embed import Embedder
from model_code.encoders.output_basis import OutputBasis
from model_code.factory import create_model
from model_code.training.run import fit_closed_form
from model_code.training.sources import TrainingData, build_sources
from model_code.training.stages import load_stage


def _cloud(n=200, width=6, seed=0):
    """Unit vectors in a narrow cone with unequal spread per direction."""
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(n, width)) * np.array([0.05, 0.4, 0.1, 0.2, 0.02, 0.3]) + 1.0
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def test_unfitted_it_passes_embeddings_through():
    vectors = F.normalize(torch.randn(5, 6), dim=-1)
    assert torch.allclose(OutputBasis(6)(vectors), vectors, atol=1e-6)


def test_fitted_it_keeps_the_centred_cosines_and_orders_directions_by_variance():
    cloud = _cloud()
    basis = OutputBasis(6)
    basis.fit(cloud)
    vectors = torch.tensor(cloud, dtype=torch.float32)
    out = basis(vectors)
    centred = F.normalize(vectors - torch.tensor(cloud.mean(0), dtype=torch.float32), dim=-1)
    assert torch.allclose(out @ out.T, centred @ centred.T, atol=1e-5)
    assert torch.allclose(basis.basis @ basis.basis.T, torch.eye(6), atol=1e-5)  # orthonormal
    projected = (vectors - basis.centre) @ basis.basis.T
    spread = projected.var(0)
    assert torch.all(spread[:-1] >= spread[1:])  # the widest direction first
    mean_cosine = float((vectors @ vectors.T).mean())
    assert float((out @ out.T).mean()) < 0.05 < mean_cosine  # the shared component is gone
    basis.reset()
    assert torch.allclose(basis(vectors), vectors, atol=1e-6)


@pytest.mark.parametrize("whitening", [0.5, 1.0])
def test_whitening_evens_out_the_spread_of_the_directions(whitening):
    cloud = _cloud()
    plain, whitened = OutputBasis(6), OutputBasis(6)
    plain.fit(cloud)
    whitened.fit(cloud, whitening=whitening)
    vectors = torch.tensor(cloud, dtype=torch.float32)
    spread = ((vectors - plain.centre) @ plain.basis.T).std(0)
    whitened_spread = ((vectors - whitened.centre) @ whitened.basis.T).std(0)
    # each direction keeps (its share of the widest one's spread) ** (1 - whitening)
    expected = (spread / spread[0]) ** (1 - whitening)
    assert torch.allclose(whitened_spread / whitened_spread[0], expected, atol=1e-4)
    assert torch.allclose(F.normalize(whitened.basis, dim=-1), plain.basis, atol=1e-5)


def test_whitening_leaves_a_direction_without_variance_bounded():
    flat = _cloud(n=3)  # 3 points span 2 centred directions of 6
    basis = OutputBasis(6)
    basis.fit(flat, whitening=1.0)
    assert float(basis.basis.norm(dim=-1).max()) <= 100.0 + 1e-3  # 1e-4 ** -0.5


def test_fit_names_a_wrong_shape():
    with pytest.raises(ValueError, match="at least 2 vectors of size 6"):
        OutputBasis(6).fit(np.ones((1, 6)))
    with pytest.raises(ValueError, match="got \\(4, 5\\)"):
        OutputBasis(6).fit(np.ones((4, 5)))
    with pytest.raises(ValueError, match="whitening must be within"):
        OutputBasis(6).fit(_cloud(), whitening=1.5)


def test_the_stage_fits_it_on_the_captions_the_model_embeds(tmp_path):
    stage = load_stage("content1")
    source = build_sources(stage, TrainingData(openclipart=synthetic_openclipart(40, tmp_path)))[
        stage.closed_form_init
    ]
    embedder = Embedder(*create_model("tiny"))
    embedder.model.eval()
    before = embedder.embed(source.items, progress=False).vectors
    fit_closed_form(embedder, source, stage.ridge_alpha)
    after = embedder.embed(source.items, progress=False).vectors
    assert not torch.equal(embedder.model.output_basis.centre, torch.zeros(64))
    assert np.abs(after.mean(0)).sum() < np.abs(before.mean(0)).sum()
    fit_closed_form(embedder, source, stage.ridge_alpha)  # a refit starts from the identity
    assert np.allclose(embedder.embed(source.items, progress=False).vectors, after, atol=1e-5)
