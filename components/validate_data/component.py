"""validate_data: Great Expectations over the prepared data; a failure stops the run."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Output

from components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def validate_data(
    pipeline_run_id: str, sail_home: str, data: Output[Dataset], report: Output[HTML]
):
    """Validate SAIL_HOME/data; `data` records its location and fingerprint, `report` the
    HTML data docs (written even when validation fails)."""
    import json
    import shutil
    from pathlib import Path

    from sail.pipeline import steps

    steps.use_home(sail_home)
    docs = Path(data.path + "-docs")
    try:
        summary = steps.validate_data(pipeline_run_id, docs)
    finally:
        if (docs / "index.html").is_file():
            shutil.copyfile(docs / "index.html", report.path)
    Path(data.path).write_text(json.dumps(summary, indent=2))
    data.metadata.update({"root": summary["root"], "fingerprint": summary["fingerprint"]})
