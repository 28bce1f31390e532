"""`prepare_all`: what `sail data prepare` runs, one folder per data set under `data_dir()`."""

from model_code.data.movielens import prepare_movielens
from model_code.data.openclipart import prepare_openclipart


def prepare_all(limit: int | None = None, workers: int = 2) -> dict[str, dict]:
    """Prepare every real data set under `data_dir()` and return their manifests by name.

    `limit` caps the openclipart pairs rendered (for quick runs); MovieLens is small and always
    complete.
    """
    return {
        "openclipart": prepare_openclipart(limit=limit, workers=workers),
        "movielens": prepare_movielens(),
    }
