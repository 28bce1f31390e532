"""The output basis: every embedding is centred and expressed in principal directions.

Sentence encoders such as MiniLM put all their vectors in a narrow cone (openclipart captions
have a mutual cosine of about 0.43), so cosine scores are dominated by a shared component and a
few items sit close to everything. Subtracting the mean embedding removes that component; an
orthonormal basis ordered by variance then leaves full-size cosines of the centred vectors as they
are while putting the most informative directions first, so a Matryoshka prefix (the first 128
of 384 numbers, say) keeps most of what separates items. Partial whitening (`whitening` p > 0)
also scales each direction by its standard deviation to the power -p, relative to the widest
one, so that a few wide directions no longer decide every cosine (p = 1 would give every
direction the same variance). All of it is fitted in closed form before training (`fit`) and then
stays fixed; at the preset it is the identity (centre 0, basis I), so an untrained model embeds
exactly as its encoders do.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MIN_RELATIVE_VARIANCE = 1e-4


class OutputBasis(nn.Module):
    """embedding -> normalize(basis @ (embedding - centre)); buffers, not trained."""

    def __init__(self, width: int):
        super().__init__()
        self.register_buffer("centre", torch.zeros(width))
        self.register_buffer("basis", torch.eye(width))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        centred = embeddings - self.centre.to(embeddings.dtype)
        return F.normalize(centred @ self.basis.to(embeddings.dtype).T, dim=-1)

    @torch.no_grad()
    def reset(self) -> None:
        """Back to the identity: embeddings pass through unchanged."""
        self.centre.zero_()
        self.basis.copy_(torch.eye(self.centre.numel()))

    @torch.no_grad()
    def fit(self, vectors: np.ndarray, whitening: float = 0.0) -> None:
        """Centre = the mean of `vectors` (unit embeddings of the model so far); basis = the
        principal directions of the centred vectors, largest variance first, each scaled by
        (its standard deviation / the largest one) ** -whitening."""
        if not 0.0 <= whitening <= 1.0:
            raise ValueError(f"whitening must be within [0, 1], got {whitening}")
        data = torch.as_tensor(vectors, dtype=torch.float64)
        if data.shape[0] < 2 or data.shape[1] != self.centre.numel():
            raise ValueError(
                f"fitting the output basis needs at least 2 vectors of size {self.centre.numel()}, "
                f"got {tuple(data.shape)}"
            )
        centre = data.mean(0)
        # Eigenvectors of the covariance cover every direction (an SVD of fewer rows than
        # columns would not); eigh returns them in ascending order of variance.
        variances, vectors_ = torch.linalg.eigh((data - centre).T @ (data - centre))
        variances, directions = variances.flip(0), vectors_.flip(1).T
        # A direction with (almost) no variance among `vectors` is scaled as one with
        # MIN_RELATIVE_VARIANCE of the widest's, so that whitening cannot blow up its noise.
        relative = (variances / variances[0]).clamp(min=MIN_RELATIVE_VARIANCE)
        scales = relative ** (-whitening / 2)
        self.centre.copy_(centre.to(self.centre.dtype))
        self.basis.copy_((directions * scales[:, None]).to(self.basis.dtype))
