"""The output basis: every embedding is centred and expressed in principal directions.

Sentence encoders such as MiniLM put all their vectors in a narrow cone (openclipart captions
have a mutual cosine of about 0.43), so cosine scores are dominated by a shared component and a
few items sit close to everything. Subtracting the mean embedding removes that component; an
orthonormal basis ordered by variance then leaves full-size cosines of the centred vectors as they
are while putting the most informative directions first, so a Matryoshka prefix (the first 128
of 384 numbers, say) keeps most of what separates items. Both are fitted in closed form before
training (`fit`) and then stay fixed; at the preset they are the identity (centre 0, basis I), so
an untrained model embeds exactly as its encoders do.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


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
    def fit(self, vectors: np.ndarray) -> None:
        """Centre = the mean of `vectors` (unit embeddings of the model so far); basis = the
        principal directions of the centred vectors, largest variance first."""
        data = torch.as_tensor(vectors, dtype=torch.float64)
        if data.shape[0] < 2 or data.shape[1] != self.centre.numel():
            raise ValueError(
                f"fitting the output basis needs at least 2 vectors of size {self.centre.numel()}, "
                f"got {tuple(data.shape)}"
            )
        centre = data.mean(0)
        # Eigenvectors of the covariance cover every direction (an SVD of fewer rows than
        # columns would not); eigh returns them in ascending order of variance.
        _, vectors_ = torch.linalg.eigh((data - centre).T @ (data - centre))
        self.centre.copy_(centre.to(self.centre.dtype))
        self.basis.copy_(vectors_.flip(1).T.to(self.basis.dtype))
