"""validate_data: Great Expectations over the ingested data; a failure stops the run."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Output

from components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def validate_data(data: Input[Dataset], report: Output[HTML]):
    """Validate the `data` artifact under the validation policy; `report` is the HTML data docs
    (written even when validation fails). Training steps run after this one."""
    import shutil
    from pathlib import Path

    from sail.pipeline import steps
    from sail.pipeline.isolation import step_scope

    with step_scope("validate_data", data.path) as scope:
        docs = scope.scratch / "docs"
        try:
            steps.validate_data(Path(data.path), docs)
        finally:
            if (docs / "index.html").is_file():
                shutil.copyfile(docs / "index.html", report.path)
