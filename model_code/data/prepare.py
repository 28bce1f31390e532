"""`prepare_all`: what `sail data prepare` runs, one folder per data set under `data_dir()`."""

import json
import logging

from model_code.data.movielens import prepare_movielens
from model_code.data.openclipart import prepare_openclipart
from model_code.data.storage import MANIFEST_NAME
from model_code.paths import data_dir, render_cache_dir

logger = logging.getLogger(__name__)


def prepare_all(limit: int | None = None, workers: int = 2, force: bool = False) -> dict[str, dict]:
    """Prepare every real data set under `data_dir()` and return their manifests by name.

    `limit` caps the openclipart pairs rendered (for quick runs); MovieLens is small and always
    complete. A data set already prepared with the same `limit` is kept unless `force`: the
    pipeline's validation step, not this one, checks what is on disk.
    """
    manifests = {}
    for name, wanted_limit, prepare in (
        (
            "openclipart",
            limit,
            lambda: prepare_openclipart(
                limit=limit, workers=workers, render_cache=render_cache_dir()
            ),
        ),
        ("movielens", None, prepare_movielens),
    ):
        existing = _manifest(name)
        if existing is not None and not force and existing.get("limit") == wanted_limit:
            logger.info("%s: already prepared; --force rebuilds it", name)
            manifests[name] = existing
        else:
            manifests[name] = prepare()
    return manifests


def _manifest(name: str) -> dict | None:
    path = data_dir() / name / MANIFEST_NAME
    return json.loads(path.read_text()) if path.is_file() else None
