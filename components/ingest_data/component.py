"""ingest_data: the run's data sets, from the packaged sources or the newest snapshot of a URI."""

from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def ingest_data(
    data_uri: str,
    data_limit: int,
    run_parameters: dict,
    data: Output[Dataset],
    metrics: Output[Metrics],
):
    """Prepare every data set (model_code.data.sources) into `data` (one folder per data set
    and `snapshot.json`); `data_uri` "" means the packaged sources, `data_limit` 0 every
    record. The snapshot's name and the data fingerprint go into the artifact's metadata. As the
    first step, it opens the run's MLflow parent run, named and parametrised by
    `run_parameters` (the pipeline's parameters)."""
    from sail.pipeline import steps
    from sail.pipeline.isolation import step_scope

    with step_scope("ingest_data"):
        summary = steps.ingest_data(data.path, data_uri, data_limit, run_parameters)
    data.metadata.update({key: summary[key] for key in ("snapshot", "fingerprint", "sources")})
    for name, count in summary["rows"].items():
        metrics.log_metric(name.replace("/", "."), count)
