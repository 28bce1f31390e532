"""publish_embeddings: item, semantic-ID and user-interest features into the Feast store."""

from kfp import dsl
from kfp.dsl import Metrics, Output

from components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def publish_embeddings(
    pipeline_run_id: str, sail_home: str, version: str, dim: int, metrics: Output[Metrics]
):
    """Embed every catalogue item with registered version `version` at Matryoshka size `dim`,
    write the offline Parquet, apply the feature repository and materialize it online."""
    from sail.pipeline import steps

    steps.use_home(sail_home)
    summary = steps.publish(pipeline_run_id, version, dim)
    for name, value in summary.items():
        if isinstance(value, int | float):
            metrics.log_metric(name, value)
