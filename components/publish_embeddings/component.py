"""publish_embeddings: item, semantic-ID and user-interest features into the Feast store."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def publish_embeddings(data: Input[Dataset], version: str, dim: int, metrics: Output[Metrics]):
    """Embed every catalogue item of `data` with registered version `version` at Matryoshka
    size `dim`, write the offline Parquet, apply the feature repository and materialize it
    online (the store $SAIL_FEATURE_STORE or $SAIL_FEAST_CONFIG names)."""
    from sail.pipeline import steps
    from sail.pipeline.isolation import step_scope

    with step_scope("publish", data.path):
        summary = steps.publish(version, dim)
    for name, value in summary.items():
        if isinstance(value, int | float):
            metrics.log_metric(name, value)
