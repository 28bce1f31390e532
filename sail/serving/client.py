"""A small client of the embedding server: one text embedded, with the model version that did it.

`embed_text(url, text)` posts to the OpenAI route and returns the unit vector and the version the
server reports in its `x-sail-model-version` header, the version whose catalogue rows the vector
may be compared with (`sail.feature_store.query.search`).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np

from sail.serving.model import MODEL_NAME
from sail.serving.openai import OPENAI_PREFIX
from sail.serving.server import VERSION_HEADER

TIMEOUT_S = 60.0


class ServerError(RuntimeError):
    """The server did not answer, refused the request, or did not say which version it serves."""


def embed_text(
    url: str, text: str, side: str = "query", timeout: float = TIMEOUT_S
) -> tuple[np.ndarray, str]:
    """(full-size vector, model version) for `text` embedded by the server at `url`."""
    body = {"model": MODEL_NAME, "input": [text], "side": side}
    request = urllib.request.Request(
        f"{url.rstrip('/')}{OPENAI_PREFIX}/embeddings",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            version = response.headers.get(VERSION_HEADER)
            payload = json.load(response)
    except urllib.error.HTTPError as error:
        raise ServerError(f"{url} answered {error.code}: {error.read().decode()[:500]}") from None
    except (urllib.error.URLError, TimeoutError) as error:
        raise ServerError(f"no embedding server at {url}: {error}") from None
    if not version:
        raise ServerError(
            f"{url} does not report its model version ({VERSION_HEADER}); start it with "
            "--model-version or a pinned models:/NAME/VERSION"
        )
    return np.asarray(payload["data"][0]["embedding"], dtype=np.float32), version
