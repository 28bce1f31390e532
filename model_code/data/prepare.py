"""`prepare_all`: what `sail data prepare` runs, one folder per data set under `data_dir()`."""

import json
import logging

from model_code.data.sources import SOURCES
from model_code.data.storage import MANIFEST_NAME
from model_code.paths import data_dir

logger = logging.getLogger(__name__)


def prepare_all(limit: int | None = None, force: bool = False) -> dict[str, dict]:
    """Prepare every real data set (`model_code.data.sources.SOURCES`, from their packaged
    sources) under `data_dir()` and return their manifests by name.

    `limit` caps each data set's records (for quick runs; MovieLens is small and always complete).
    A data set already prepared with the same `limit` is kept unless `force`: the pipeline's
    validation step, not this one, checks what is on disk.
    """
    manifests = {}
    for source in SOURCES:
        existing, wanted = _manifest(source.name), limit if source.limited else None
        if existing is not None and not force and existing.get("limit") == wanted:
            logger.info("%s: already prepared; --force rebuilds it", source.name)
            manifests[source.name] = existing
        else:
            manifests[source.name] = source.prepare(data_dir() / source.name, None, limit)
    return manifests


def _manifest(name: str) -> dict | None:
    path = data_dir() / name / MANIFEST_NAME
    return json.loads(path.read_text()) if path.is_file() else None
